//! A client's TLS 1.3 session as a stream again, after an io_uring loop took it over from
//! rustls ([`Records`]) and hands it back to the relay's tasks: what `tokio_rustls` was
//! before the takeover, over the same socket.

use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::front_socket::FrontSocket;
use super::tls13_records::{Opened, Records};

/// Bytes read off the socket at once.
const READ_CHUNK: usize = 16 * 1024 + 256;
/// Plaintext sealed from one write at most (four full records).
const WRITE_CHUNK: usize = 64 * 1024;

/// The session's stream (see the module's documentation).
pub struct RecordStream {
    socket: FrontSocket,
    records: Records,
    /// Plaintext decrypted and not read yet, from `plain_at`.
    plain: Vec<u8>,
    plain_at: usize,
    /// Records to write, from `out_at`.
    out: Vec<u8>,
    out_at: usize,
    /// The client closed its side (`close_notify`).
    read_closed: bool,
    /// `close_notify` is queued or sent.
    close_sent: bool,
}

impl RecordStream {
    /// The session over `socket` (in tokio's reactor), its records at `records`.
    pub(super) fn new(socket: FrontSocket, records: Records) -> Self {
        Self {
            socket,
            records,
            plain: Vec::new(),
            plain_at: 0,
            out: Vec::new(),
            out_at: 0,
            read_closed: false,
            close_sent: false,
        }
    }

    /// Writes queued records; ready once none are left.
    fn poll_out(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.records.wants_write() {
            self.records.seal(&[], &mut self.out)?;
        }
        while self.out_at < self.out.len() {
            let pending = &self.out[self.out_at..];
            match ready!(Pin::new(&mut self.socket).poll_write(cx, pending))? {
                0 => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                n => self.out_at += n,
            }
        }
        self.out.clear();
        self.out_at = 0;
        Poll::Ready(Ok(()))
    }
}

impl AsyncRead for RecordStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        while this.plain_at == this.plain.len() {
            if this.read_closed {
                return Poll::Ready(Ok(()));
            }
            let mut cipher = [0u8; READ_CHUNK];
            let mut read = ReadBuf::new(&mut cipher);
            ready!(Pin::new(&mut this.socket).poll_read(cx, &mut read))?;
            if read.filled().is_empty() {
                // As `tokio_rustls`: the TCP stream ended without `close_notify`.
                return Poll::Ready(Err(io::ErrorKind::UnexpectedEof.into()));
            }
            this.plain.clear();
            this.plain_at = 0;
            let opened = match this.records.open(read.filled(), &mut this.plain) {
                Ok(opened) => opened,
                Err(e) => {
                    // The alert that ends the session, as far as the socket takes it now.
                    this.records.final_alert(&mut this.out);
                    let _ = this.poll_out(cx);
                    return Poll::Ready(Err(e));
                }
            };
            this.read_closed = opened == Opened::Closed;
            if this.records.wants_write() {
                // A key update's answer: out now, as far as the socket takes it.
                let _ = this.poll_out(cx)?;
            }
        }
        let n = buf.remaining().min(this.plain.len() - this.plain_at);
        buf.put_slice(&this.plain[this.plain_at..this.plain_at + n]);
        this.plain_at += n;
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for RecordStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        ready!(this.poll_out(cx))?;
        if this.close_sent {
            return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into()));
        }
        let n = buf.len().min(WRITE_CHUNK);
        this.records.seal(&buf[..n], &mut this.out)?;
        // The records are made and the bytes taken: what the socket does not take now goes
        // with the next write or flush.
        let _ = this.poll_out(cx)?;
        Poll::Ready(Ok(n))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_out(cx))?;
        Pin::new(&mut this.socket).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if !this.close_sent {
            ready!(this.poll_out(cx))?;
            this.records.close_notify(&mut this.out)?;
            this.close_sent = true;
        }
        ready!(this.poll_out(cx))?;
        Pin::new(&mut this.socket).poll_shutdown(cx)
    }
}
