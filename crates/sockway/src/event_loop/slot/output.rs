//! Writing one connection's output: the refusal it holds, or its protocol's output in as few
//! system calls as the socket allows, and the worker's cork buffer lent to it meanwhile.
//!
//! uWebSockets writes everything a socket's events produced in one loop turn from one
//! per-loop cork buffer, and keeps bytes per socket only when the socket does not take them
//! all. Here the worker's cork buffer becomes the protocol's output buffer
//! ([`Connection::trade_output_buffer`]) while the connection handles an event, and comes
//! back once the output is written: connections allocate no output buffer of their own, and
//! an idle one holds none.
//!
//! [`Connection::trade_output_buffer`]: sockway_proto::Connection::trade_output_buffer

use std::io::{self, IoSlice};

use bytes::BytesMut;

use super::{Phase, Slot, CORK_KEEP, CORK_SIZE, WRITE_SLICES};
use crate::event_loop::transport::Transport;

/// Empties the cork buffer, and gives it room again when the last one stayed with a
/// connection whose output the socket did not take.
#[inline]
pub(super) fn warm_cork(cork: &mut BytesMut) {
    cork.clear();
    if cork.capacity() == 0 {
        *cork = BytesMut::with_capacity(CORK_SIZE);
    }
}

impl<S, T: Transport> Slot<S, T> {
    /// Lends the worker's cork buffer to an open connection with no output waiting; whether
    /// it was lent.
    #[inline]
    pub(super) fn lend_cork(&mut self, cork: &mut BytesMut) -> bool {
        let Phase::Open(open) = &mut self.phase else {
            return false;
        };
        warm_cork(cork);
        open.protocol.trade_output_buffer(cork)
    }

    /// Takes the cork buffer back if it was `lent` and all output went out; otherwise the
    /// connection keeps it with the bytes that wait, and the worker makes a new one when it
    /// next lends one.
    #[inline]
    pub(super) fn return_cork(&mut self, lent: bool, cork: &mut BytesMut) {
        if !lent {
            return;
        }
        if let Phase::Open(open) = &mut self.phase {
            open.protocol.trade_output_buffer(cork);
        }
        if cork.capacity() > CORK_KEEP {
            *cork = BytesMut::new();
        }
    }

    /// Whether a refusal, protocol output or the transport's own bytes (TLS records) wait to
    /// be written.
    #[inline]
    pub(super) fn has_output(&self) -> bool {
        if self.transport.has_pending() {
            return true;
        }
        match &self.phase {
            Phase::Open(open) => open.protocol.has_output(),
            Phase::Refusing { .. } => !self.held.is_empty(),
            Phase::Handshake { .. } => false,
        }
    }

    /// Writes the transport's own bytes, then the held refusal or the protocol's output,
    /// until the socket stops taking them.
    pub(super) fn flush(&mut self) -> io::Result<()> {
        self.transport.flush_pending()?;
        match &mut self.phase {
            Phase::Handshake { .. } => Ok(()),
            Phase::Refusing { .. } => {
                while !self.held.is_empty() {
                    match self.transport.send(&self.held) {
                        Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                        Ok(n) => self.held.advance(n),
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) => return Err(e),
                    }
                }
                self.held.clear();
                Ok(())
            }
            Phase::Open(open) => {
                let protocol = &mut open.protocol;
                while protocol.has_output() {
                    let run = protocol.output();
                    let written = if run.len() == protocol.output_len() {
                        self.transport.send(run)
                    } else {
                        let mut slices = [IoSlice::new(&[]); WRITE_SLICES];
                        let count = protocol.output_slices(&mut slices);
                        self.transport.send_vectored(&slices[..count])
                    };
                    match written {
                        Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                        Ok(n) => protocol.advance_output(n),
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                            // Large payloads may be slices of the worker's 64 KiB read buffer:
                            // what waits is copied out, so a peer that does not read pins no
                            // read buffers.
                            protocol.own_output();
                            return Ok(());
                        }
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) => return Err(e),
                    }
                }
                Ok(())
            }
        }
    }
}
