//! The opening handshake of one connection: the request head read, examined, and answered.
//!
//! A head nearly always arrives in one read, so it is read into the worker's shared buffer
//! and the connection allocates nothing for it; only a head that arrives in pieces is held
//! by the connection until the rest comes. The 101 response goes into the worker's cork
//! buffer, lent to the new connection as its protocol's output, so it is written together
//! with whatever the first frames produce.

use std::io;
use std::net::SocketAddr;

use bytes::{Buf, BytesMut};
use sockway_proto::{Connection, Role};

use super::output::warm_cork;
use super::{Context, Next, Open, Phase, Slot, HEAD_READ};
use crate::event_loop::handler::{Conn, Handler, OpenRequest};
use crate::event_loop::handshake::{self, Outcome};
use crate::event_loop::transport::Transport;

/// How far a read of the request head went.
enum Head {
    /// The slot is done (refused, closed, or waiting for more of the head).
    Done(Next),
    /// The WebSocket is open: go on reading frames.
    Opened,
}

impl<S, T: Transport> Slot<S, T> {
    /// Reads the request head; answers it once it is complete (`ended` as for
    /// [`Slot::on_ready`], for the frames that may follow it).
    pub(super) fn read_head<H: Handler<Session = S>>(
        &mut self,
        cx: &mut Context<'_, H>,
        peer_addr: SocketAddr,
        ended: bool,
    ) -> Next {
        let own = !self.held.is_empty();
        let mut input = if own {
            self.held.take()
        } else {
            std::mem::take(cx.scratch)
        };
        let head = self.take_head(cx, &mut input, own, peer_addr);
        // What is left (part of a head, or of a frame that came with it) waits with the
        // connection; the worker's buffer goes back, emptied.
        if own {
            if !input.is_empty() {
                self.held.put(input);
            }
        } else {
            if !input.is_empty() {
                self.held.put(BytesMut::from(&input[..]));
            }
            input.clear();
            *cx.scratch = input;
        }
        match head {
            Head::Done(next) => next,
            Head::Opened => self.read_open(cx, ended),
        }
    }

    /// Reads onto `input` (from the connection start) and acts on the head once complete.
    fn take_head<H: Handler<Session = S>>(
        &mut self,
        cx: &mut Context<'_, H>,
        input: &mut BytesMut,
        own: bool,
        peer_addr: SocketAddr,
    ) -> Head {
        let limit = cx.options.limits.max_header_bytes + 1;
        loop {
            let room = limit.saturating_sub(input.len()).clamp(1, HEAD_READ);
            match self.transport.receive(input, room) {
                Ok(0) => return Head::Done(Next::Remove),
                Ok(n) => {
                    if let Phase::Handshake { heard_at, .. } = &mut self.phase {
                        *heard_at = cx.now;
                    }
                    if (n < room && self.transport.drained()) || input.len() >= limit {
                        break;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return Head::Done(Next::Remove),
            }
        }
        match handshake::examine(input, cx.options) {
            Outcome::Incomplete => Head::Done(Next::Keep),
            Outcome::Refuse(response) => {
                input.clear();
                Head::Done(self.refuse(response, cx.now))
            }
            Outcome::Accept(accepted) => {
                input.advance(accepted.head_len);
                let config = cx.options.websocket.protocol.clone();
                let mut protocol = match accepted.compression {
                    Some(params) => Connection::with_deflate(Role::Server, config, params),
                    None => Connection::new(Role::Server, config),
                };
                // `flush` writes several runs at once, so large payloads (echoed or
                // published) are written from where they are instead of copied.
                protocol.set_vectored_output(true);
                // The 101 response is the protocol's first output, in the lent cork buffer.
                warm_cork(cx.cork);
                cx.cork.extend_from_slice(&accepted.response);
                protocol.trade_output_buffer(cx.cork);
                let request = OpenRequest {
                    path: &accepted.path,
                    origin: accepted.origin.as_deref(),
                    subprotocol: accepted.subprotocol.as_deref(),
                    peer_addr,
                    secure: !T::PLAIN,
                    server_name: self.transport.server_name(),
                };
                let session = cx.handler.open(
                    &mut Conn {
                        protocol: &mut protocol,
                        id: self.id(cx.worker),
                        shared: cx.shared,
                        topics: cx.topics,
                    },
                    &request,
                );
                self.phase = Phase::Open(Open {
                    protocol,
                    session: Some(session),
                    paused: false,
                });
                self.handle_input(cx, Some(input), !own);
                Head::Opened
            }
        }
    }

    /// Queues `response` and closes once it is written.
    pub(super) fn refuse(&mut self, response: BytesMut, now: u32) -> Next {
        self.held.put(response);
        self.phase = Phase::Refusing { since: now };
        self.after_io()
    }
}
