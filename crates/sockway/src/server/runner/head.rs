//! Reading a connection's first request head with a bounded buffer, before hyper sees it, so
//! that an oversized head gets a real 431 with a body and a slow one (slowloris) is cut off
//! at the handshake timeout. Where the head ends and whether it keeps within the limits is
//! the core's rule ([`handshake::check_head`]); this module only reads. The bytes read are then replayed to hyper by [`Rewind`].

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Buf, BytesMut};
use sockway_proto::handshake::{self, HeadLimits};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};

/// Why no complete head was read.
#[derive(Debug)]
pub(super) enum HeadError {
    /// The head broke a limit (431); the core's [`Refusal::from_head`] says why.
    ///
    /// [`Refusal::from_head`]: sockway_proto::handshake::Refusal::from_head
    Limit(handshake::HeadError),
    /// The peer closed the connection first.
    Closed,
    /// The transport failed.
    Io(io::Error),
}

/// Reads into `buf` until it holds a complete request head, checked against `limits` by the
/// core's [`handshake::check_head`]. Bytes after the head (a pipelined request, an HTTP/2
/// preface's tail) stay in `buf`. The caller bounds the time; `buf` keeps what arrived so far,
/// so the caller can tell a silent connection from a slow one.
pub(super) async fn read_head<R: AsyncRead + Unpin>(
    io: &mut R,
    buf: &mut BytesMut,
    limits: HeadLimits,
) -> Result<(), HeadError> {
    let mut searched = 0;
    loop {
        if handshake::check_head(buf, searched, &limits)
            .map_err(HeadError::Limit)?
            .is_some()
        {
            return Ok(());
        }
        // Look again only where a terminator could newly appear.
        searched = buf.len().saturating_sub(3);
        // Read at most one byte past the limit's worth, in steps of at most 4 KiB.
        let room = (limits.max_bytes + 1)
            .saturating_sub(buf.len())
            .clamp(1, 4096);
        buf.reserve(room);
        let n = (&mut *io)
            .take(room as u64)
            .read_buf(buf)
            .await
            .map_err(HeadError::Io)?;
        if n == 0 {
            return Err(HeadError::Closed);
        }
    }
}

/// A transport that first yields bytes already read from it.
#[derive(Debug)]
pub(crate) struct Rewind<T> {
    prefix: BytesMut,
    inner: T,
}

impl<T> Rewind<T> {
    pub(super) fn new(inner: T, prefix: BytesMut) -> Self {
        Self { prefix, inner }
    }

    /// The transport and the bytes not replayed yet, which come before anything it yields.
    pub(crate) fn into_parts(self) -> (T, BytesMut) {
        (self.inner, self.prefix)
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Rewind<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if !self.prefix.is_empty() {
            let n = self.prefix.len().min(buf.remaining());
            buf.put_slice(&self.prefix[..n]);
            self.prefix.advance(n);
            if self.prefix.is_empty() {
                // Replayed: free the head buffer rather than keep it for the connection's life.
                self.prefix = BytesMut::new();
            }
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Rewind<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: HeadLimits = HeadLimits {
        max_bytes: 64,
        max_fields: 2,
    };

    async fn read(input: &[u8]) -> (Result<(), HeadError>, BytesMut) {
        let mut buf = BytesMut::new();
        let result = read_head(&mut &input[..], &mut buf, LIMITS).await;
        (result, buf)
    }

    #[tokio::test]
    async fn a_complete_head_is_read_and_what_follows_kept() {
        let (result, buf) = read(b"GET / HTTP/1.1\r\nHost: a\r\n\r\nrest").await;
        assert!(result.is_ok());
        assert!(buf.starts_with(b"GET / HTTP/1.1\r\n"));
        let (result, _) = read(b"GET / HTTP/1.1\nHost: a\n\n").await;
        assert!(result.is_ok());
    }

    #[tokio::test]
    async fn limits_are_enforced() {
        let long = format!("GET / HTTP/1.1\r\nX: {}\r\n\r\n", "a".repeat(100));
        assert!(matches!(
            read(long.as_bytes()).await.0,
            Err(HeadError::Limit(handshake::HeadError::TooLarge {
                limit: 64
            }))
        ));
        let many = b"GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n";
        assert!(matches!(
            read(many).await.0,
            Err(HeadError::Limit(handshake::HeadError::TooManyFields {
                count: 3,
                limit: 2
            }))
        ));
        assert!(matches!(read(b"GET / HT").await.0, Err(HeadError::Closed)));
    }

    #[tokio::test]
    async fn rewind_replays_the_prefix_first() {
        let mut io = Rewind::new(&b" world"[..], BytesMut::from(&b"hello"[..]));
        let mut out = Vec::new();
        io.read_to_end(&mut out).await.unwrap();
        assert_eq!(out, b"hello world");
    }
}
