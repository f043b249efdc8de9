//! Handing a session back from an io_uring loop to its directions' tasks: what is in
//! flight is cancelled, then each direction's state and unwritten bytes go to its task
//! (see `relay_uring.rs`).

use io_uring::opcode;

use super::super::super::{Carry, Heard};
use super::super::{into_runtime, tls, Front, Handed};
use super::{tag, Out, Ring, Session, CANCEL, RECV, SEND};

impl Ring {
    /// Starts handing a session back: what it has in flight is cancelled.
    pub(super) fn hand_back(&mut self, s: &mut Session) {
        if s.handing {
            return;
        }
        s.handing = true;
        for w in 0..2 {
            s.ways[w].starved = false;
            for (busy, kind) in [(s.ways[w].recv, RECV), (s.ways[w].send, SEND)] {
                if busy {
                    let cancel = opcode::AsyncCancel::new(tag(s.slot, kind + w as u64));
                    self.push(cancel.build().user_data(CANCEL));
                }
            }
        }
    }

    /// Puts a session back in its slot, or, once handing back with nothing in flight, gives
    /// its directions to their tasks and frees the slot.
    pub(super) fn settle(&mut self, s: Box<Session>) {
        let slot = s.slot;
        if !(s.handing && s.idle()) {
            self.sessions[slot] = Some(s);
            return;
        }
        self.free.push(slot);
        self.files
            .leave(&self.uring, [s.ways[0].src, s.ways[0].dst]);
        let Session {
            ways,
            mut client,
            backend,
            back,
            runtime,
            broken,
            ..
        } = *s;
        let mut carries = Vec::with_capacity(2);
        let mut cut = false;
        for mut way in ways {
            let mut pending = Vec::new();
            if way.sealed {
                // Records the client has part of: the rest goes before anything else.
                let mut rest = Vec::new();
                self.drain(std::mem::take(&mut way.out), &mut rest);
                match &mut client {
                    Front::Tls(tls) => tls.get_mut().0.leave_unsent(&rest),
                    Front::Records(front) => front.0.leave_unsent(&rest),
                    Front::Tcp(_) => {}
                }
                way.pinging = false;
            }
            if way.pinging {
                match std::mem::take(&mut way.out) {
                    // Not written at all: the task writes the ping instead.
                    Out::Own { at: 0, .. } => {
                        if let Some(h) = way.pump.shared.heartbeat.as_ref() {
                            h.ping_lost(1 - way.pump.way);
                        }
                    }
                    // Cut in the middle: the destination's stream cannot go on.
                    Out::Own { .. } => cut = true,
                    _ => {}
                }
            }
            self.drain(std::mem::take(&mut way.out), &mut pending);
            // Bytes held unheard are heard now (their pongs to the gateway taken out).
            let mut held = Vec::new();
            self.drain(std::mem::take(&mut way.next), &mut held);
            if !held.is_empty() {
                match way.pump.heard(&held, &way.tracker, &mut way.filter) {
                    Heard::Edited(kept) => pending.extend_from_slice(&kept),
                    Heard::Whole(_) | Heard::Pass => pending.extend_from_slice(&held),
                }
            }
            carries.push(Carry {
                tracker: way.tracker,
                filter: way.filter,
                pending,
            });
        }
        if cut {
            // Every buffer is back in the pool; the sockets close as they are dropped.
            return tracing::debug!("a ping was cut; session dropped");
        }
        if broken {
            return end_broken(client);
        }
        let Some(parts) = into_runtime(&runtime, client, backend) else {
            return;
        };
        for ((carry, (src, dst)), tx) in carries.into_iter().zip(parts).zip(back) {
            let _ = tx.send(Handed { src, dst, carry });
        }
    }

    /// Appends what `out` has left to write to `into`, giving its buffer back.
    pub(super) fn drain(&mut self, out: Out, into: &mut Vec<u8>) {
        match out {
            Out::Empty => {}
            Out::Pool { bid, at, end } => {
                into.extend_from_slice(&self.pool.bytes(bid, end)[at..]);
                self.give(bid);
            }
            Out::Own { bytes, at } => {
                into.extend_from_slice(&bytes[at..]);
                self.recycle(bytes);
            }
        }
    }
}

/// Ends a session whose client broke its TLS session: the alert its connection or records
/// layer has for it is sent as far as the socket takes it at once, and both sockets close
/// as they are dropped (the tasks' receivers with them, which ends the relay).
fn end_broken(client: Front) {
    let mut alert = Vec::new();
    match client {
        Front::Tls(mut tls) => {
            let (socket, conn) = tls.get_mut();
            let _ = tls::queued(conn, &mut alert);
            socket.send_last(&alert);
        }
        Front::Records(mut front) => {
            let (socket, records) = &mut *front;
            records.final_alert(&mut alert);
            socket.send_last(&alert);
        }
        Front::Tcp(_) => {}
    }
    tracing::debug!("a client's TLS session failed; session ended");
}
