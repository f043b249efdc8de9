//! TLS on the event loop: a rustls server session between the socket and the slot (uWebSockets'
//! `SSLApp`, the same loop with TLS under it).
//!
//! rustls is sans-I/O like the WebSocket core: records read from the socket go in, decrypted
//! bytes come out of its reader; application bytes go into its writer and records come out
//! for the socket. Two rules keep memory bounded and readiness exact. Reading drains the
//! decrypted bytes before reading more records, and reads records until the socket has no
//! more (edge-triggered readiness), so nothing is left waiting without an event to come back
//! for; as on the plain path, a read that returns fewer bytes than it asked for says so, and
//! no further read is spent learning that the socket would block. Writing gives rustls new
//! bytes only once its last records are on the socket, so what the socket does not take stays
//! in the WebSocket's own output, where the write buffer limit and backpressure already count
//! it, and rustls holds at most one write's records.

use std::io::{self, BufRead, IoSlice, Read, Write};
use std::sync::Arc;

use bytes::BytesMut;
use mio::net::TcpStream;
use rustls::{ServerConfig, ServerConnection};

use super::Transport;

/// A TLS server session over a socket.
pub(in crate::event_loop) struct Tls {
    stream: TcpStream,
    session: ServerConnection,
    /// The peer's stream ended: its `close_notify` came, or the socket's end of stream.
    closed: bool,
}

/// How far one read of records went.
enum Records {
    /// The socket would block: nothing was read.
    None,
    /// Records were read and processed; `drained` when the read came back short.
    Read { drained: bool },
}

/// The socket as rustls reads it, noting whether the last read returned fewer bytes than it
/// asked for.
struct Noting<'a> {
    stream: &'a TcpStream,
    short: bool,
}

impl Read for Noting<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = (&mut &*self.stream).read(buf)?;
        self.short = n < buf.len();
        Ok(n)
    }
}

impl Tls {
    /// Reads records from the socket once and processes them.
    fn read_records(&mut self) -> io::Result<Records> {
        let mut socket = Noting {
            stream: &self.stream,
            short: false,
        };
        loop {
            match self.session.read_tls(&mut socket) {
                Ok(_) => break,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(Records::None),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        let drained = socket.short;
        if let Err(error) = self.session.process_new_packets() {
            // rustls queued the alert that tells the peer why (RFC 8446 section 6.2).
            let _ = self.flush_pending();
            return Err(io::Error::new(io::ErrorKind::InvalidData, error));
        }
        // Handshake messages, session tickets, key updates.
        self.flush_pending()?;
        Ok(Records::Read { drained })
    }
}

impl Transport for Tls {
    type Setup = Arc<ServerConfig>;

    const PLAIN: bool = false;

    fn new(stream: TcpStream, config: &Arc<ServerConfig>) -> Option<Self> {
        let session = ServerConnection::new(Arc::clone(config)).ok()?;
        Some(Self {
            stream,
            session,
            closed: false,
        })
    }

    fn socket(&mut self) -> &mut TcpStream {
        &mut self.stream
    }

    fn server_name(&self) -> Option<&str> {
        self.session.server_name()
    }

    fn receive(&mut self, buffer: &mut BytesMut, room: usize) -> io::Result<usize> {
        let mut filled = 0;
        let mut drained = false;
        loop {
            let mut reader = self.session.reader();
            while filled < room {
                match reader.fill_buf() {
                    // Empty only once the peer's `close_notify` came and everything before it
                    // was read.
                    Ok([]) => {
                        self.closed = true;
                        break;
                    }
                    Ok(chunk) => {
                        let take = chunk.len().min(room - filled);
                        buffer.extend_from_slice(&chunk[..take]);
                        reader.consume(take);
                        filled += take;
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    // The socket ended without `close_notify`: the same end of stream for the
                    // WebSocket, which tells a clean end from this one by its close frame.
                    Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                        self.closed = true;
                        break;
                    }
                    Err(e) => return Err(e),
                }
            }
            if filled == room || self.closed {
                return Ok(filled);
            }
            if !drained {
                match self.read_records()? {
                    Records::Read { drained: short } => {
                        drained = short;
                        continue;
                    }
                    Records::None => {}
                }
            }
            return match filled {
                0 => Err(io::ErrorKind::WouldBlock.into()),
                _ => Ok(filled),
            };
        }
    }

    fn drained(&self) -> bool {
        // After the end of the stream the next receive reports it (0 bytes).
        !self.closed
    }

    fn send(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.send_vectored(&[IoSlice::new(bytes)])
    }

    fn send_vectored(&mut self, slices: &[IoSlice<'_>]) -> io::Result<usize> {
        self.flush_pending()?;
        if self.session.wants_write() {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let taken = self.session.writer().write_vectored(slices)?;
        self.flush_pending()?;
        Ok(taken)
    }

    fn has_pending(&self) -> bool {
        self.session.wants_write()
    }

    fn flush_pending(&mut self) -> io::Result<()> {
        while self.session.wants_write() {
            match self.session.write_tls(&mut &self.stream) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// The alert goes out after everything else was written, so the socket has room for
    /// its few dozen bytes; if it had none, the write half is shut without it.
    fn shutdown_write(&mut self) -> io::Result<()> {
        self.session.send_close_notify();
        self.flush_pending()?;
        self.stream.shutdown(std::net::Shutdown::Write)
    }
}
