//! [`StreamWebSocket`]: the Windows Runtime's `StreamWebSocket` on RFC 6455: a byte stream over
//! binary messages (`AsyncRead + AsyncWrite`), for large transfers without holding a whole message
//! in memory.
//!
//! - **Reads** return the bytes of received messages as they arrive, in sections as large as
//!   the caller's buffer, across message boundaries (which are not visible, as with TCP).
//!   Text messages are delivered as their UTF-8 bytes. A close 1000, 1001 or 1005 from the
//!   server is the end of the stream (`Ok(0)`); another code is an error, then the end.
//! - **Writes**: each `poll_write` sends at most `stream_chunk_size` bytes (default 64 KiB; at
//!   most half the socket's `write_buffer_limit`) as one complete binary message and returns
//!   how many it took, so memory stays bounded by one chunk, and each message stays under any
//!   reasonable server message limit. A write first waits until the previous messages are
//!   written to the transport, queues its message and starts writing it; what the transport
//!   does not take at once goes out with the next write, or with `flush`.
//! - **Shutdown** (`poll_shutdown`) sends close 1000 and flushes: like a TCP half-close, reads
//!   go on until the server's close frame ends the stream.
//!
//! The reading and writing halves ([`StreamWebSocket::into_split`]) can live in two tasks.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures_sink::Sink;
use sockway_proto::{CloseCode, Message};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Sleep;

use super::info::ConnectionInfo;
use super::settings::Settings;
use super::transport::ClientStream;
use crate::{ReceivedKind, Stats, WebSocket, WebSocketReader, WebSocketWriter};

/// Turns a socket error into an I/O error, keeping transport errors (resets) as they were.
fn to_io(error: crate::Error) -> io::Error {
    match error {
        crate::Error::Io(e) => e,
        crate::Error::AbnormalClosure => io::Error::new(io::ErrorKind::UnexpectedEof, error),
        crate::Error::Send(_) | crate::Error::Closed => {
            io::Error::new(io::ErrorKind::BrokenPipe, error)
        }
        other => io::Error::new(io::ErrorKind::InvalidData, other),
    }
}

/// A timer that runs only while an operation waits, for the send and receive timeouts.
#[derive(Debug)]
struct Deadline {
    limit: Option<Duration>,
    sleep: Option<Pin<Box<Sleep>>>,
}

impl Deadline {
    fn new(limit: Option<Duration>) -> Self {
        Self { limit, sleep: None }
    }

    /// Called when the operation is pending: starts the timer, and says whether it expired.
    fn poll_expired(&mut self, cx: &mut Context<'_>) -> bool {
        let Some(limit) = self.limit else {
            return false;
        };
        let sleep = self
            .sleep
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
        sleep.as_mut().poll(cx).is_ready()
    }

    /// Called on progress.
    fn reset(&mut self) {
        self.sleep = None;
    }

    fn error(&mut self, what: &str) -> io::Error {
        self.sleep = None;
        io::Error::new(
            io::ErrorKind::TimedOut,
            format!(
                "{what} timed out after {:?}",
                self.limit.unwrap_or_default()
            ),
        )
    }
}

/// The reading half of a [`StreamWebSocket`].
#[derive(Debug)]
pub struct StreamReader {
    reader: WebSocketReader<ClientStream>,
    ended: bool,
    timeout: Deadline,
}

/// The writing half of a [`StreamWebSocket`].
#[derive(Debug)]
pub struct StreamWriter {
    writer: WebSocketWriter<ClientStream>,
    chunk: usize,
    timeout: Deadline,
}

/// A client WebSocket as a byte stream (as the Windows Runtime's `StreamWebSocket`); see the module
/// docs for how reads, writes and shutdown map onto messages.
#[derive(Debug)]
pub struct StreamWebSocket {
    reader: StreamReader,
    writer: StreamWriter,
    info: ConnectionInfo,
}

impl StreamWebSocket {
    pub(crate) fn new(
        socket: WebSocket<ClientStream>,
        info: ConnectionInfo,
        settings: &Settings,
    ) -> Self {
        let (reader, writer) = socket.split();
        Self {
            reader: StreamReader {
                reader,
                ended: false,
                timeout: Deadline::new(settings.receive_timeout),
            },
            writer: StreamWriter {
                writer,
                chunk: settings
                    .stream_chunk
                    .min(settings.websocket.write_buffer_limit / 2)
                    .max(1),
                timeout: Deadline::new(settings.send_timeout),
            },
            info,
        }
    }

    /// Facts about the connection.
    pub fn info(&self) -> &ConnectionInfo {
        &self.info
    }

    /// Bytes and messages sent and received so far.
    pub fn stats(&self) -> Stats {
        self.writer.stats()
    }

    /// Splits into a reading and a writing half for two tasks.
    pub fn into_split(self) -> (StreamReader, StreamWriter) {
        (self.reader, self.writer)
    }

    /// Runs the whole close handshake with `code`: sends the close frame, discards what the
    /// server still sends until its close frame, and returns the server's close status.
    pub async fn close(
        mut self,
        code: CloseCode,
        reason: &str,
    ) -> Result<crate::CloseInfo, super::ClientError> {
        self.writer.writer.close(code, reason).await?;
        let mut scratch = vec![0u8; 16 * 1024];
        loop {
            let result = self.reader.reader.receive(&mut scratch).await?;
            if let ReceivedKind::Close(info) = result.kind {
                return Ok(info);
            }
        }
    }
}

impl StreamReader {
    /// How the connection ended, once it has.
    pub fn close_info(&self) -> Option<crate::CloseInfo> {
        self.reader.close_info()
    }
}

impl StreamWriter {
    /// Bytes and messages sent and received so far (both halves).
    pub fn stats(&self) -> Stats {
        self.writer.stats()
    }
}

impl AsyncRead for StreamReader {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.ended || buf.remaining() == 0 {
            return Poll::Ready(Ok(()));
        }
        loop {
            let dst = buf.initialize_unfilled();
            let result = match this.reader.poll_receive(cx, dst) {
                Poll::Ready(result) => result,
                Poll::Pending if this.timeout.poll_expired(cx) => {
                    return Poll::Ready(Err(this.timeout.error("receive")))
                }
                Poll::Pending => return Poll::Pending,
            };
            this.timeout.reset();
            let result = match result {
                Ok(result) => result,
                Err(error) => {
                    this.ended = true;
                    return Poll::Ready(Err(to_io(error)));
                }
            };
            match result.kind {
                ReceivedKind::Close(info) => {
                    this.ended = true;
                    let clean = matches!(
                        info.code,
                        CloseCode::NORMAL | CloseCode::GOING_AWAY | CloseCode::NO_STATUS
                    );
                    return Poll::Ready(if clean || info.initiated_locally {
                        Ok(())
                    } else {
                        Err(io::Error::new(
                            io::ErrorKind::ConnectionAborted,
                            format!(
                                "the server closed the stream with {} {}",
                                info.code, info.reason
                            ),
                        ))
                    });
                }
                ReceivedKind::Text | ReceivedKind::Binary if result.count > 0 => {
                    buf.advance(result.count);
                    return Poll::Ready(Ok(()));
                }
                // An empty message carries no bytes; a read of 0 would mean the end.
                ReceivedKind::Text | ReceivedKind::Binary => continue,
            }
        }
    }
}

impl StreamWriter {
    fn poll_wait<T>(
        &mut self,
        cx: &mut Context<'_>,
        poll: Poll<Result<T, crate::Error>>,
    ) -> Poll<io::Result<T>> {
        match poll {
            Poll::Ready(result) => {
                self.timeout.reset();
                Poll::Ready(result.map_err(to_io))
            }
            Poll::Pending if self.timeout.poll_expired(cx) => {
                Poll::Ready(Err(self.timeout.error("send")))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

impl AsyncWrite for StreamWriter {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if data.is_empty() {
            return Poll::Ready(Ok(0));
        }
        // Queue a message only once the previous ones are written, so the queue never reaches
        // the socket's write limit: the engine stops reading while the queue is over that limit
        // and the transport is full, and a peer that echoes (or otherwise waits for us to read
        // before it reads) would then never drain it.
        let flushed = Pin::new(&mut this.writer).poll_flush(cx);
        ready!(this.poll_wait(cx, flushed))?;
        let n = data.len().min(this.chunk);
        let message = Message::Binary(Bytes::copy_from_slice(&data[..n]));
        Pin::new(&mut this.writer)
            .start_send(message)
            .map_err(to_io)?;
        // Start writing now; what the transport does not take yet goes with the next call.
        if let Poll::Ready(Err(e)) = Pin::new(&mut this.writer).poll_flush(cx) {
            return Poll::Ready(Err(to_io(e)));
        }
        Poll::Ready(Ok(n))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let flushed = Pin::new(&mut this.writer).poll_flush(cx);
        this.poll_wait(cx, flushed)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let closed = Pin::new(&mut this.writer).poll_close(cx);
        this.poll_wait(cx, closed)
    }
}

impl AsyncRead for StreamWebSocket {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().reader).poll_read(cx, buf)
    }
}

impl AsyncWrite for StreamWebSocket {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().writer).poll_write(cx, data)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().writer).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().writer).poll_shutdown(cx)
    }
}
