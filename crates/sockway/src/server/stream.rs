//! [`ServerStream`]: the transport under a WebSocket accepted through hyper. When hyper hands
//! over an upgraded HTTP/1.1 connection (RFC 6455 section 4.2.2, RFC 9110 section 7.8) that
//! the [`super::Server`] runner (or a plain `hyper` server on `TokioIo<TcpStream>`) served,
//! the TCP or TLS stream is taken back out of hyper's `Upgraded`, so that reads and writes go
//! straight to the socket instead of through hyper's boxed, rewinding wrapper.

use std::fmt;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use super::runner::Rewind;

/// The transport of a server-side WebSocket accepted through hyper: the connection's own TCP
/// (or TLS) stream when it could be taken back from hyper, otherwise hyper's `Upgraded` (an
/// HTTP/2 stream, or an HTTP/1.1 connection over an I/O type this crate does not know).
/// Reads and writes behave the same either way.
pub struct ServerStream {
    transport: Transport,
}

enum Transport {
    Tcp(TcpStream),
    #[cfg(feature = "tls")]
    Tls(Box<tokio_rustls::server::TlsStream<TcpStream>>),
    /// Boxed: it is the rare case, and inline it would make every socket 16 bytes larger.
    Upgraded(Box<TokioIo<Upgraded>>),
}

impl fmt::Debug for ServerStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match &self.transport {
            Transport::Tcp(_) => "tcp",
            #[cfg(feature = "tls")]
            Transport::Tls(_) => "tls",
            Transport::Upgraded(_) => "upgraded",
        };
        f.debug_struct("ServerStream")
            .field("transport", &kind)
            .finish()
    }
}

impl ServerStream {
    /// The stream under `upgraded`, with the bytes that were read from it but not yet
    /// consumed (hyper's read-ahead, then what the runner's head reader still holds): the
    /// WebSocket must read those first. The bytes are copied, so hyper's read buffer is not
    /// kept alive by them.
    pub(crate) fn from_upgraded(upgraded: Upgraded) -> (Self, BytesMut) {
        let upgraded = match upgraded.downcast::<TokioIo<Rewind<TcpStream>>>() {
            Ok(parts) => {
                let (stream, prefix) = parts.io.into_inner().into_parts();
                return (
                    Self::new(Transport::Tcp(stream)),
                    leftover(&parts.read_buf, &prefix),
                );
            }
            Err(upgraded) => upgraded,
        };
        let upgraded = match upgraded.downcast::<TokioIo<TcpStream>>() {
            Ok(parts) => {
                let stream = Transport::Tcp(parts.io.into_inner());
                return (Self::new(stream), leftover(&parts.read_buf, &[]));
            }
            Err(upgraded) => upgraded,
        };
        #[cfg(feature = "tls")]
        let upgraded = match upgraded
            .downcast::<TokioIo<Rewind<tokio_rustls::server::TlsStream<TcpStream>>>>()
        {
            Ok(parts) => {
                let (stream, prefix) = parts.io.into_inner().into_parts();
                let stream = Transport::Tls(Box::new(stream));
                return (Self::new(stream), leftover(&parts.read_buf, &prefix));
            }
            Err(upgraded) => upgraded,
        };
        let stream = Transport::Upgraded(Box::new(TokioIo::new(upgraded)));
        (Self::new(stream), BytesMut::new())
    }

    fn new(transport: Transport) -> Self {
        Self { transport }
    }

    /// Whether reads and writes go straight to the TCP (or TLS) stream, rather than through
    /// hyper's `Upgraded`.
    pub fn is_direct(&self) -> bool {
        !matches!(self.transport, Transport::Upgraded(_))
    }
}

/// `first` then `second` in a buffer of their own (none at all when both are empty).
fn leftover(first: &Bytes, second: &[u8]) -> BytesMut {
    let mut buf = BytesMut::new();
    if !first.is_empty() || !second.is_empty() {
        buf.reserve(first.len() + second.len());
        buf.extend_from_slice(first);
        buf.extend_from_slice(second);
    }
    buf
}

/// Calls `$method` on whichever stream is inside.
macro_rules! delegate {
    ($self:ident, $io:ident => $call:expr) => {
        match &mut $self.get_mut().transport {
            Transport::Tcp($io) => {
                let $io = Pin::new($io);
                $call
            }
            #[cfg(feature = "tls")]
            Transport::Tls($io) => {
                let $io = Pin::new(&mut **$io);
                $call
            }
            Transport::Upgraded($io) => {
                let $io = Pin::new(&mut **$io);
                $call
            }
        }
    };
}

impl AsyncRead for ServerStream {
    #[inline]
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        delegate!(self, io => io.poll_read(cx, buf))
    }
}

impl AsyncWrite for ServerStream {
    #[inline]
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        delegate!(self, io => io.poll_write(cx, buf))
    }

    #[inline]
    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        delegate!(self, io => io.poll_write_vectored(cx, bufs))
    }

    fn is_write_vectored(&self) -> bool {
        match &self.transport {
            Transport::Tcp(io) => io.is_write_vectored(),
            #[cfg(feature = "tls")]
            Transport::Tls(io) => io.is_write_vectored(),
            Transport::Upgraded(io) => io.is_write_vectored(),
        }
    }

    #[inline]
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        delegate!(self, io => io.poll_flush(cx))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        delegate!(self, io => io.poll_shutdown(cx))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leftover_keeps_order_and_allocates_only_when_needed() {
        assert_eq!(leftover(&Bytes::new(), &[]).capacity(), 0);
        assert_eq!(&leftover(&Bytes::from_static(b"ab"), b"cd")[..], b"abcd");
        assert_eq!(&leftover(&Bytes::new(), b"cd")[..], b"cd");
    }
}
