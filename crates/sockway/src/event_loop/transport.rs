//! What a connection's bytes travel over: the TCP socket itself ([`Plain`]), or a TLS session
//! on it (`tls::Tls`, feature `tls`).
//!
//! A worker is built for one transport (the server's options choose), so the plain server's
//! connections carry nothing for TLS and its reads and writes are the same system calls as
//! without this layer: every method of [`Plain`] is one call or a constant.

use std::io::{self, IoSlice};

use bytes::BytesMut;
use mio::net::TcpStream;

#[cfg(feature = "tls")]
pub(super) mod tls;

/// A connection's byte stream, for the slot that drives it (edge-triggered readiness: a read
/// or write that stops short must be followed by `WouldBlock` before the next event comes).
pub(super) trait Transport: Sized {
    /// What every connection of a worker is made with (the TLS configuration).
    type Setup: Clone + Send + 'static;

    /// Whether a refusal can be written on the socket as soon as it is accepted: a TLS client
    /// would take plain HTTP for a broken handshake.
    const PLAIN: bool;

    /// The transport of a socket just accepted; `None` when it cannot be set up.
    fn new(stream: TcpStream, setup: &Self::Setup) -> Option<Self>;

    /// The socket, for (de)registration and shutdown.
    fn socket(&mut self) -> &mut TcpStream;

    /// The host name a TLS client asked for (SNI); `None` without TLS.
    fn server_name(&self) -> Option<&str>;

    /// Reads at most `room` application bytes onto the end of `buffer`; how many (0 at the
    /// end of the stream). A short count means everything available was read when
    /// [`Transport::drained`] says so.
    fn receive(&mut self, buffer: &mut BytesMut, room: usize) -> io::Result<usize>;

    /// Whether the last [`Transport::receive`] that returned less than it was allowed to
    /// also left nothing to read.
    fn drained(&self) -> bool;

    /// Writes `bytes`; how many the transport took.
    fn send(&mut self, bytes: &[u8]) -> io::Result<usize>;

    /// Writes `slices` in order, as one write where the transport can; how many bytes it took.
    fn send_vectored(&mut self, slices: &[IoSlice<'_>]) -> io::Result<usize>;

    /// Whether bytes the transport took still wait for the socket (TLS records).
    fn has_pending(&self) -> bool;

    /// Writes what [`Transport::has_pending`] holds, as far as the socket takes it.
    fn flush_pending(&mut self) -> io::Result<()>;

    /// Ends this side's stream: for TLS its `close_notify` alert (RFC 8446 section 6.1),
    /// then the socket's write half.
    fn shutdown_write(&mut self) -> io::Result<()>;
}

/// The TCP socket with no layer: reads and writes are the worker's system calls.
pub(super) struct Plain(TcpStream);

impl Transport for Plain {
    type Setup = ();

    const PLAIN: bool = true;

    #[inline]
    fn new(stream: TcpStream, _: &()) -> Option<Self> {
        Some(Self(stream))
    }

    #[inline]
    fn socket(&mut self) -> &mut TcpStream {
        &mut self.0
    }

    fn server_name(&self) -> Option<&str> {
        None
    }

    #[inline]
    fn receive(&mut self, buffer: &mut BytesMut, room: usize) -> io::Result<usize> {
        read_into(&self.0, buffer, room)
    }

    #[inline]
    fn drained(&self) -> bool {
        true
    }

    #[inline]
    fn send(&mut self, bytes: &[u8]) -> io::Result<usize> {
        super::sys::send(&self.0, bytes)
    }

    #[inline]
    fn send_vectored(&mut self, slices: &[IoSlice<'_>]) -> io::Result<usize> {
        super::sys::writev(&self.0, slices)
    }

    #[inline]
    fn has_pending(&self) -> bool {
        false
    }

    #[inline]
    fn flush_pending(&mut self) -> io::Result<()> {
        Ok(())
    }

    fn shutdown_write(&mut self) -> io::Result<()> {
        self.0.shutdown(std::net::Shutdown::Write)
    }
}

/// Reads up to `room` bytes from `stream` onto the end of `buffer`.
#[inline]
fn read_into(stream: &TcpStream, buffer: &mut BytesMut, room: usize) -> io::Result<usize> {
    buffer.reserve(room);
    let spare = &mut buffer.spare_capacity_mut()[..room];
    let n = super::sys::recv(stream, spare)?;
    // SAFETY: `recv` initialised the first `n` bytes of the spare capacity, which start at
    // `buffer.len()`, and `n <= room <= spare capacity`.
    unsafe { buffer.set_len(buffer.len() + n) };
    Ok(n)
}
