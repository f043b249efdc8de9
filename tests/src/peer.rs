//! [`RawPeer`]: one end of a WebSocket connection written by hand over a `TcpStream`, for
//! sending arbitrary (also invalid) frames to the implementation under test and judging every
//! byte it sends back.

use std::fmt;
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::time::Instant;

use crate::frame::{Assembler, Event, Frame, FrameReader, Sender};

/// Why [`RawPeer::next_event`] produced no event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeerError {
    /// Nothing (complete) arrived in time.
    Timeout,
    /// The transport failed (for example, the peer reset the connection).
    Io(String),
    /// The peer sent something a correct endpoint never sends.
    Protocol(String),
}

impl fmt::Display for PeerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Timeout => f.write_str("timed out waiting for the peer"),
            Self::Io(e) => write!(f, "I/O error: {e}"),
            Self::Protocol(e) => write!(f, "peer broke the protocol: {e}"),
        }
    }
}

/// A hand-written WebSocket end. It plays `me` (the test's role) and checks that the other end
/// follows the rules for the opposite role.
#[derive(Debug)]
pub struct RawPeer {
    me: Sender,
    read: OwnedReadHalf,
    write: Option<OwnedWriteHalf>,
    buf: BytesMut,
    reader: FrameReader,
    assembler: Assembler,
    eof: bool,
    mask_keys: Vec<[u8; 4]>,
}

impl RawPeer {
    /// Wraps a stream on which the opening handshake is done; `leftover` holds bytes read past
    /// the handshake.
    pub fn new(stream: TcpStream, me: Sender, leftover: BytesMut) -> Self {
        let _ = stream.set_nodelay(true);
        let (read, write) = stream.into_split();
        let them = match me {
            Sender::Client => Sender::Server,
            Sender::Server => Sender::Client,
        };
        Self {
            me,
            read,
            write: Some(write),
            buf: leftover,
            reader: FrameReader { sender: them },
            assembler: Assembler::default(),
            eof: false,
            mask_keys: Vec::new(),
        }
    }

    /// The role this end plays.
    pub fn role(&self) -> Sender {
        self.me
    }

    /// The masking keys of the frames received so far (from a client).
    pub fn mask_keys(&self) -> &[[u8; 4]] {
        &self.mask_keys
    }

    /// How many bytes of an unfinished message the peer had sent when it closed.
    pub fn unfinished_at_close(&self) -> Option<usize> {
        self.assembler.unfinished_at_close
    }

    fn writer(&mut self) -> Result<&mut OwnedWriteHalf, PeerError> {
        self.write
            .as_mut()
            .ok_or_else(|| PeerError::Io("write half already shut down".into()))
    }

    /// Writes bytes at once.
    pub async fn send_bytes(&mut self, bytes: &[u8]) -> Result<(), PeerError> {
        let w = self.writer()?;
        w.write_all(bytes)
            .await
            .map_err(|e| PeerError::Io(e.to_string()))
    }

    /// Encodes frames as this end's role writes them and sends them in one write.
    pub async fn send(&mut self, frames: &[Frame]) -> Result<(), PeerError> {
        let mut bytes = Vec::new();
        for frame in frames {
            bytes.extend(frame.encode(self.me));
        }
        self.send_bytes(&bytes).await
    }

    /// Sends bytes `chunk` at a time, one write each (`chunk == 1`: byte by byte). The first
    /// 16 writes (where the header lives) are spaced by a millisecond so that they really
    /// arrive apart; the rest only yield between writes.
    pub async fn send_chopped(&mut self, bytes: &[u8], chunk: usize) -> Result<(), PeerError> {
        for (i, piece) in bytes.chunks(chunk.max(1)).enumerate() {
            self.send_bytes(piece).await?;
            if i < 16 {
                tokio::time::sleep(Duration::from_millis(1)).await;
            } else {
                tokio::task::yield_now().await;
            }
        }
        Ok(())
    }

    /// Sends our FIN (half-close); reading goes on.
    pub async fn shutdown_write(&mut self) -> Result<(), PeerError> {
        if let Some(mut w) = self.write.take() {
            w.shutdown()
                .await
                .map_err(|e| PeerError::Io(e.to_string()))?;
        }
        Ok(())
    }

    /// The next event from the peer, waiting at most until `deadline`. After the end of stream
    /// every call returns [`Event::Eof`].
    pub async fn next_event(&mut self, deadline: Instant) -> Result<Event, PeerError> {
        loop {
            while let Some(frame) = self
                .reader
                .next_frame(&mut self.buf)
                .map_err(PeerError::Protocol)?
            {
                self.mask_keys.extend(frame.mask_key);
                if let Some(event) = self.assembler.push(frame).map_err(PeerError::Protocol)? {
                    return Ok(event);
                }
            }
            if self.eof {
                if !self.buf.is_empty() {
                    return Err(PeerError::Protocol(format!(
                        "stream ended inside a frame ({} bytes left over)",
                        self.buf.len()
                    )));
                }
                return Ok(Event::Eof);
            }
            self.buf.reserve(64 * 1024);
            let read = tokio::time::timeout_at(deadline, self.read.read_buf(&mut self.buf)).await;
            match read {
                Err(_) => return Err(PeerError::Timeout),
                Ok(Err(e)) => return Err(PeerError::Io(e.to_string())),
                Ok(Ok(0)) => self.eof = true,
                Ok(Ok(_)) => {}
            }
        }
    }

    /// Checks that nothing at all arrives (no frame, no end of stream) for `duration`.
    pub async fn expect_quiet(&mut self, duration: Duration) -> Result<(), String> {
        match self.next_event(Instant::now() + duration).await {
            Err(PeerError::Timeout) => Ok(()),
            Ok(event) => Err(format!("expected silence, got {event}")),
            Err(e) => Err(e.to_string()),
        }
    }
}
