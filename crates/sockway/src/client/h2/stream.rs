//! [`Http2Stream`]: one HTTP/2 stream opened by an extended CONNECT (RFC 8441 section 5) as
//! `AsyncRead + AsyncWrite`, so that a WebSocket runs over it as over TCP.
//!
//! Flow control (RFC 9113 section 5.2) is respected both ways: a write sends at most the send
//! capacity HTTP/2 has granted the stream and waits for more otherwise (so a slow peer slows
//! the writer instead of filling memory), and received bytes are handed back to the peer's
//! window (`WINDOW_UPDATE`) only as the WebSocket reads them.

use std::fmt;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use bytes::{Buf, Bytes};
use h2::{RecvStream, SendStream};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::pool::StreamLease;

/// The most bytes one write asks HTTP/2 capacity for.
const MAX_WRITE: usize = 64 * 1024;

/// A WebSocket's transport when it runs over HTTP/2: one stream of a connection that other
/// sockets to the same origin may share. Dropping it resets the stream if it is still open
/// (`RST_STREAM` with `CANCEL`), which closes only this socket.
pub struct Http2Stream {
    send: SendStream<Bytes>,
    recv: RecvStream,
    /// Received and not yet read.
    buffered: Bytes,
    /// `END_STREAM` has been sent.
    write_closed: bool,
    lease: StreamLease,
}

impl fmt::Debug for Http2Stream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Http2Stream")
            .field("stream_id", &self.send.stream_id().as_u32())
            .field("connection", &self.lease.connection_id())
            .field("buffered", &self.buffered.len())
            .field("write_closed", &self.write_closed)
            .finish()
    }
}

impl Http2Stream {
    pub(crate) fn new(send: SendStream<Bytes>, recv: RecvStream, lease: StreamLease) -> Self {
        Self {
            send,
            recv,
            buffered: Bytes::new(),
            write_closed: false,
            lease,
        }
    }

    /// The server's certificate chain (DER, end entity first); empty over plain TCP.
    pub(crate) fn peer_certificates(&self) -> Vec<Vec<u8>> {
        self.lease.peer_certificates().to_vec()
    }

    /// Which of the pool's connections carries this stream; equal ids mean a shared
    /// connection.
    pub fn connection_id(&self) -> u64 {
        self.lease.connection_id()
    }

    /// The facts of the connection under this stream.
    pub(crate) fn facts(&self) -> &Arc<super::pool::ConnectionFacts> {
        self.lease.facts()
    }
}

/// An HTTP/2 error as an I/O error: transport failures keep their kind; a reset stream or a
/// connection ended by `GOAWAY` reads as a reset connection.
pub(crate) fn io_error(error: h2::Error) -> io::Error {
    if error.is_io() {
        return error
            .into_io()
            .unwrap_or_else(|| io::Error::from(io::ErrorKind::ConnectionReset));
    }
    io::Error::new(io::ErrorKind::ConnectionReset, error)
}

impl AsyncRead for Http2Stream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if buf.remaining() == 0 {
            return Poll::Ready(Ok(()));
        }
        while self.buffered.is_empty() {
            match ready!(self.recv.poll_data(cx)) {
                // END_STREAM: the peer has finished sending.
                None => return Poll::Ready(Ok(())),
                Some(Ok(data)) => self.buffered = data,
                Some(Err(error)) => return Poll::Ready(Err(io_error(error))),
            }
        }
        let n = self.buffered.len().min(buf.remaining());
        buf.put_slice(&self.buffered[..n]);
        self.buffered.advance(n);
        // Hand the bytes back to the peer's window now that the socket has them.
        let _ = self.recv.flow_control().release_capacity(n);
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for Http2Stream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        if self.write_closed {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "the HTTP/2 stream is closed for writing",
            )));
        }
        loop {
            let capacity = self.send.capacity();
            if capacity > 0 {
                let n = capacity.min(buf.len());
                self.send
                    .send_data(Bytes::copy_from_slice(&buf[..n]), false)
                    .map_err(io_error)?;
                // Give capacity this write did not use back to the connection, so an idle
                // socket does not hold part of the shared window.
                self.send.reserve_capacity(0);
                return Poll::Ready(Ok(n));
            }
            self.send.reserve_capacity(buf.len().min(MAX_WRITE));
            match ready!(self.send.poll_capacity(cx)) {
                Some(Ok(_)) => {}
                Some(Err(error)) => return Poll::Ready(Err(io_error(error))),
                None => {
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::BrokenPipe,
                        "the HTTP/2 stream was closed or reset",
                    )))
                }
            }
        }
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // Data handed to HTTP/2 is within the granted window; the connection task writes it.
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if !self.write_closed {
            self.write_closed = true;
            // END_STREAM on an empty DATA frame (RFC 8441 section 5: the TCP FIN's analogue).
            self.send.send_data(Bytes::new(), true).map_err(io_error)?;
        }
        Poll::Ready(Ok(()))
    }
}
