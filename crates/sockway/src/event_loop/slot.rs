//! One connection of the event loop, from accept to close: the handshake read from its
//! input, then frames through the sans-I/O [`Connection`], the output written as far as the
//! socket takes it, backpressure, keep-alive, and the timeouts of each phase.
//!
//! Reads go into the worker's shared buffer unless the connection holds the start of a request
//! head or of a frame already; whatever is left of one after the events were handed out is
//! copied into the connection's own input. Output goes the other way: while a connection
//! handles an event, the worker lends it its cork buffer as the protocol's output buffer
//! (uWebSockets' per-loop cork buffer: one warm buffer per thread, one write per socket per
//! turn), and takes it back once everything is written; only output the socket did not take
//! stays with the connection. So an idle connection holds no buffer at all: its memory is
//! this struct and the [`Connection`] in it, behind one allocation.

use std::io::{self, Read};
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::{Buf, BytesMut};
use sockway_proto::connection::{Delivery, Timeout};
use sockway_proto::{CloseCode, Connection, ConnectionState, Event, Message, PreparedFrame};

use super::handler::{Conn, Handler, LentMessage, DETACH_BELOW};
use super::handshake;
use super::held::Held;
use super::options::EventLoopOptions;
use super::shared::{ConnId, Shared};
use super::topics::Topics;
use super::transport::Transport;

mod head;
mod output;

/// Most bytes one read asks for.
pub(super) const READ_SIZE: usize = 64 * 1024;
/// Most bytes a handshake read asks for at once.
const HEAD_READ: usize = 4096;
/// How many runs of output one vectored write takes.
const WRITE_SLICES: usize = 16;
/// The room a worker's cork buffer starts with: uWebSockets' cork buffer size, far more than
/// the output of one small message's echo or of a turn's replies to one socket.
const CORK_SIZE: usize = 16 * 1024;
/// A cork buffer that grew beyond this (a large message sent by copying) is freed when it
/// comes back, so a worker does not keep the largest output it ever wrote.
const CORK_KEEP: usize = 256 * 1024;

/// What the worker should do with a slot after it handled an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Next {
    /// Keep it registered.
    Keep,
    /// Close and remove it.
    Remove,
}

/// What a slot needs from its worker while it handles an event.
pub(super) struct Context<'a, H> {
    pub(super) handler: &'a mut H,
    pub(super) options: &'a EventLoopOptions,
    /// The worker's shared read buffer.
    pub(super) scratch: &'a mut BytesMut,
    /// The worker's cork buffer, lent to one connection at a time as its output buffer
    /// (empty whenever no connection has it).
    pub(super) cork: &'a mut BytesMut,
    /// The worker's topics, for the handler's subscriptions and publishes.
    pub(super) topics: &'a mut Topics,
    /// What the server's workers share, for the handler's [`super::Sender`]s.
    pub(super) shared: &'a Arc<Shared>,
    /// The worker's index, which every [`ConnId`] of its connections names.
    pub(super) worker: u16,
    /// The worker's clock, in milliseconds since it started (wrapping).
    pub(super) now: u32,
    /// The same clock without wrapping, as the core's keep-alive rule counts time.
    pub(super) clock: u64,
}

/// A WebSocket after its handshake.
struct Open<S> {
    protocol: Connection,
    /// `None` once [`Handler::close`] has had it.
    session: Option<S>,
    /// Input is left unread until the peer takes some output (backpressure).
    paused: bool,
}

impl<S> Open<S> {
    /// Lends `message` to the handler, with this connection (`id`) to answer on (and the
    /// worker's `shared` state and `topics` for its senders and subscriptions); dropped once
    /// the handler has had [`Handler::close`].
    #[inline]
    fn lend<H: Handler<Session = S>>(
        &mut self,
        handler: &mut H,
        shared: &Arc<Shared>,
        topics: &mut Topics,
        id: ConnId,
        message: LentMessage<'_>,
    ) {
        if let Some(session) = self.session.as_mut() {
            let mut conn = Conn {
                protocol: &mut self.protocol,
                id,
                shared,
                topics,
            };
            handler.lent_message(&mut conn, session, message);
        }
    }

    /// Hands every event in `input` (the worker's shared read buffer when `None`) to the
    /// handler; marks backpressure. Messages from the worker's shared buffer (`shared`) are
    /// lent as such ([`LentMessage`]), so that one the handler keeps is copied out of it
    /// rather than keeping the whole buffer alive. (The connection's, not the slot's: it
    /// never touches the transport, so one copy serves plain and TLS workers alike.)
    fn handle_input<H: Handler<Session = S>>(
        &mut self,
        cx: &mut Context<'_, H>,
        input: Option<&mut BytesMut>,
        shared: bool,
        id: ConnId,
    ) {
        let input = match input {
            Some(input) => input,
            None => &mut *cx.scratch,
        };
        self.protocol.heard(cx.clock);
        if shared {
            // Small whole messages are lent where they lie, and the bytes they took are
            // dropped once for the whole batch (cleared when it was all of the input).
            let mut used = 0;
            while let Some(read) = Some(&mut input[used..])
                .filter(|rest| !rest.is_empty())
                .and_then(|rest| self.protocol.read_message_in_place(rest, DETACH_BELOW - 1))
            {
                let Ok((view, taken)) = read else {
                    input.clear();
                    return;
                };
                self.lend(
                    cx.handler,
                    cx.shared,
                    cx.topics,
                    id,
                    LentMessage::view(view),
                );
                used += taken;
            }
            if used == input.len() {
                input.clear();
            } else if used > 0 {
                input.advance(used);
            }
        }
        loop {
            match self.protocol.read_event(input, Delivery::Messages) {
                Ok(Some(Event::Message(message))) => {
                    self.lend(
                        cx.handler,
                        cx.shared,
                        cx.topics,
                        id,
                        LentMessage::new(message, shared),
                    );
                }
                Ok(Some(Event::Close(_))) | Ok(None) | Err(_) => break,
                Ok(Some(_)) => {}
            }
        }
        if self.protocol.output_len() > cx.options.websocket.write_buffer_limit {
            self.paused = true;
        }
    }
}

/// The phase a connection is in. The whole slot is boxed and nearly every slot is `Open`,
/// so boxing that variant as well would only add an allocation per connection.
#[allow(clippy::large_enum_variant)]
enum Phase<S> {
    /// Reading the request head, from the client at `peer_addr`, last heard from at
    /// `heard_at` (worker clock). Once open, the core keeps when the peer was heard from
    /// ([`Connection::heard`]).
    Handshake {
        peer_addr: SocketAddr,
        heard_at: u32,
    },
    /// Writing a refusal held in [`Slot::held`], queued at `since` (worker clock): it has
    /// the close timeout to go out, then the connection closes.
    Refusing { since: u32 },
    /// Speaking WebSocket.
    Open(Open<S>),
}

/// One connection, over transport `T`.
pub(super) struct Slot<S, T> {
    transport: T,
    /// The slot's key in its worker and its generation (see [`ConnId`]; the worker is the
    /// one serving it, so its index is not kept here).
    key: u32,
    generation: u32,
    /// Bytes held between events: received bytes that wait for more (part of a request
    /// head, or of a frame), or while refusing, the refusal not yet written. (The 101
    /// response goes out as the protocol's first output.)
    held: Held,
    /// Everything is sent and this side's write half is shut: input is read and dropped
    /// until the peer closes too (or the close timeout), so that closing the socket with
    /// unread bytes does not reset the connection under the peer's last read.
    draining: bool,
    phase: Phase<S>,
}

impl<S, T: Transport> Slot<S, T> {
    /// A connection just accepted, waiting for its request head.
    pub(super) fn new(transport: T, peer_addr: SocketAddr, id: ConnId, now: u32) -> Self {
        Self {
            transport,
            key: id.key,
            generation: id.generation,
            held: Held::default(),
            draining: false,
            phase: Phase::Handshake {
                peer_addr,
                heard_at: now,
            },
        }
    }

    /// The connection's name across threads, on worker `worker`.
    pub(super) fn id(&self, worker: u16) -> ConnId {
        ConnId {
            worker,
            key: self.key,
            generation: self.generation,
        }
    }

    /// Whether this is connection `id` (of this worker), not a later one in its slot.
    pub(super) fn is(&self, id: ConnId) -> bool {
        self.key == id.key && self.generation == id.generation
    }

    /// Sends `message` queued by a [`super::Sender`]: dropped unless the WebSocket is open
    /// and its unsent output within the write buffer limit.
    pub(super) fn deliver<H: Handler<Session = S>>(
        &mut self,
        cx: &mut Context<'_, H>,
        message: &Message,
    ) -> Next {
        let lent = self.lend_cork(cx.cork);
        if let Phase::Open(open) = &mut self.phase {
            let room = open.protocol.output_len() <= cx.options.websocket.write_buffer_limit;
            if room && !self.draining && open.protocol.state() == ConnectionState::Open {
                let _ = open.protocol.send(message);
            }
        }
        let next = if self.draining {
            Next::Keep
        } else {
            self.after_io()
        };
        self.return_cork(lent, cx.cork);
        next
    }

    /// Queues a published frame without writing it (the worker writes each subscriber once,
    /// with [`Slot::write_queued`]); `false` when it was dropped: the WebSocket is not open,
    /// or its unsent output is over `limit` (a slow subscriber misses messages rather than
    /// growing the server's memory).
    pub(super) fn queue_prepared(&mut self, frame: &PreparedFrame, limit: usize) -> bool {
        match &mut self.phase {
            Phase::Open(open) if !self.draining && open.protocol.output_len() <= limit => {
                open.protocol.send_prepared(frame).is_ok()
            }
            _ => false,
        }
    }

    /// Writes what [`Slot::queue_prepared`] queued.
    pub(super) fn write_queued(&mut self) -> Next {
        if self.draining {
            return Next::Keep;
        }
        self.after_io()
    }

    /// The socket, for (de)registration.
    pub(super) fn stream(&mut self) -> &mut mio::net::TcpStream {
        self.transport.socket()
    }

    /// The socket became readable and/or writable; `ended` when the event also says the
    /// peer's stream ended (or the socket failed), so reading must go on to the end of
    /// stream: no later event will say it again.
    pub(super) fn on_ready<H: Handler<Session = S>>(
        &mut self,
        cx: &mut Context<'_, H>,
        readable: bool,
        ended: bool,
        writable: bool,
    ) -> Next {
        if self.draining {
            if self.transport.flush_pending().is_err() {
                return Next::Remove;
            }
            return self.discard_input();
        }
        // Readiness is edge-triggered with both interests, so nearly every event says
        // writable: write first only when something waits.
        if writable && self.has_output() && self.flush().is_err() {
            return Next::Remove;
        }
        match self.phase {
            Phase::Open(ref open) => {
                // Reading also resumes input that backpressure held back, once the output
                // drained.
                let read = readable || open.paused;
                let lent = self.lend_cork(cx.cork);
                let next = if read {
                    self.read_open(cx, ended)
                } else {
                    self.after_io()
                };
                self.return_cork(lent, cx.cork);
                next
            }
            Phase::Handshake { peer_addr, .. } if readable => {
                // An accepted handshake lends itself the cork buffer, with the 101 response
                // in it.
                let next = self.read_head(cx, peer_addr, ended);
                let opened = matches!(self.phase, Phase::Open(_));
                self.return_cork(opened, cx.cork);
                next
            }
            Phase::Handshake { .. } | Phase::Refusing { .. } => self.after_io(),
        }
    }

    /// Checks the phase's deadline: the handshake timeout, a refusal's close timeout, and
    /// for an open connection the core's timers (a keep-alive ping, a silent peer, a close
    /// handshake or teardown that ran out of time).
    pub(super) fn on_tick<H: Handler<Session = S>>(&mut self, cx: &mut Context<'_, H>) -> Next {
        let options = cx.options;
        match &mut self.phase {
            Phase::Refusing { since } => {
                let close_ms = millis(options.websocket.close_timeout);
                if elapsed(cx.now, *since) >= close_ms {
                    Next::Remove
                } else {
                    Next::Keep
                }
            }
            Phase::Handshake { heard_at, .. } => {
                if elapsed(cx.now, *heard_at) < millis(options.limits.handshake_timeout) {
                    return Next::Keep;
                }
                let response = handshake::refusal(
                    http::StatusCode::REQUEST_TIMEOUT,
                    &http::HeaderMap::new(),
                    "request head not received in time",
                );
                self.refuse(response, cx.now)
            }
            Phase::Open(_) => {
                // The core's rules: a ping after the interval, failure after the timeout, and
                // the close timeout once closing. The tick is this driver's sleep; a ping or
                // close frame goes out below.
                let timers = crate::socket::timers(&options.websocket);
                let lent = self.lend_cork(cx.cork);
                let Phase::Open(open) = &mut self.phase else {
                    return Next::Remove;
                };
                if let Some(Timeout::CloseTimedOut(_)) =
                    open.protocol.handle_timeout(cx.clock, &timers)
                {
                    return Next::Remove;
                }
                let next = self.after_tick(cx);
                self.return_cork(lent, cx.cork);
                next
            }
        }
    }

    /// The rest of a tick for an open connection: release idle output room, resume reading
    /// held back by backpressure, write what is queued.
    fn after_tick<H: Handler<Session = S>>(&mut self, cx: &mut Context<'_, H>) -> Next {
        let Phase::Open(open) = &mut self.phase else {
            return Next::Keep;
        };
        let quiet = cx.clock.saturating_sub(open.protocol.last_heard());
        if open.protocol.output_len() == 0 && quiet >= 1000 {
            open.protocol.release_idle_output(0);
        }
        if open.paused {
            return self.read_open(cx, false);
        }
        self.after_io()
    }

    /// Starts the close handshake with `code` (server shutdown: 1001), or ends a connection
    /// that is not open yet.
    pub(super) fn close(&mut self, code: CloseCode, reason: &str) -> Next {
        match &mut self.phase {
            Phase::Open(open) => {
                if open.protocol.state() == ConnectionState::Open {
                    let _ = open.protocol.close(code, reason);
                }
                self.after_io()
            }
            Phase::Handshake { .. } | Phase::Refusing { .. } => Next::Remove,
        }
    }

    /// Called when the slot is removed: tells the handler how the connection ended, unless
    /// it was told already.
    pub(super) fn finish<H: Handler<Session = S>>(mut self, handler: &mut H) {
        self.end_session(handler);
        let _ = self.transport.shutdown_write();
    }

    /// Tells the handler, once, how the connection ended: when the slot goes, or as soon as
    /// the close handshake is over and only the peer's end of stream is awaited.
    pub(super) fn end_session<H: Handler<Session = S>>(&mut self, handler: &mut H) {
        if let Phase::Open(open) = &mut self.phase {
            if let Some(session) = open.session.take() {
                let code = open.protocol.close_status().unwrap_or(CloseCode::ABNORMAL);
                handler.close(session, code);
            }
        }
    }

    /// Whether the WebSocket is over and the slot only waits for the peer's end of stream.
    pub(super) fn is_draining(&self) -> bool {
        self.draining
    }

    /// Reads frames until the socket has nothing more (or backpressure stops it), handing
    /// each event to the handler, then writes what they produced. A read that returns less
    /// than it asked for means nothing more for now, unless the peer's stream `ended`: then
    /// only the end of stream (or `WouldBlock`) stops the reading.
    fn read_open<H: Handler<Session = S>>(&mut self, cx: &mut Context<'_, H>, ended: bool) -> Next {
        loop {
            let limit = cx.options.websocket.write_buffer_limit;
            let Phase::Open(open) = &mut self.phase else {
                return self.after_io();
            };
            if open.protocol.state() == ConnectionState::Closed {
                return self.after_io();
            }
            if open.paused {
                // Readiness is edge-triggered: input held back while the output was over
                // the limit has no event of its own once the output drains, so whoever
                // drains it (a write here, or on a writable event) goes on reading here.
                if open.protocol.output_len() > limit {
                    if self.flush().is_err() {
                        return Next::Remove;
                    }
                    let Phase::Open(open) = &mut self.phase else {
                        return Next::Remove;
                    };
                    if open.protocol.output_len() > limit {
                        return self.after_io();
                    }
                }
                let Phase::Open(open) = &mut self.phase else {
                    return Next::Remove;
                };
                open.paused = false;
            }
            let own = !self.held.is_empty();
            // A frame's start is held: read onto it, growing with it, never more than
            // READ_SIZE at once. Otherwise into the worker's buffer, into the room it has
            // left while that is within HEAD_READ of READ_SIZE: small messages move its
            // start back (in `reserve`) once every so many reads rather than on each, and a
            // large frame still finds nearly READ_SIZE of room.
            let (buffer, room) = if own {
                let room = self.held.len().clamp(HEAD_READ, READ_SIZE);
                (self.held.buffer(), room)
            } else {
                let spare = cx.scratch.capacity() - cx.scratch.len();
                let room = if spare >= READ_SIZE - HEAD_READ {
                    spare.min(READ_SIZE)
                } else {
                    READ_SIZE
                };
                (&mut *cx.scratch, room)
            };
            match self.transport.receive(buffer, room) {
                Ok(0) => {
                    if let Phase::Open(open) = &mut self.phase {
                        open.protocol.receive_eof();
                    }
                    let _ = self.flush();
                    return Next::Remove;
                }
                Ok(n) => {
                    if own {
                        let mut pending = self.held.take();
                        self.handle_input(cx, Some(&mut pending), false);
                        self.held.put(pending);
                    } else {
                        self.handle_input(cx, None, true);
                        if !cx.scratch.is_empty() {
                            self.held.put(BytesMut::from(&cx.scratch[..]));
                            cx.scratch.clear();
                        }
                    }
                    if n < room && !ended && self.transport.drained() {
                        return self.after_io();
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return self.after_io(),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return Next::Remove,
            }
        }
    }

    /// Hands every event in `input` (the worker's shared read buffer when `None`) to the
    /// handler ([`Open::handle_input`]).
    #[inline]
    pub(super) fn handle_input<H: Handler<Session = S>>(
        &mut self,
        cx: &mut Context<'_, H>,
        input: Option<&mut BytesMut>,
        shared: bool,
    ) {
        let id = self.id(cx.worker);
        if let Phase::Open(open) = &mut self.phase {
            open.handle_input(cx, input, shared, id);
        }
    }

    /// Writes what can be written, then decides whether the connection goes on.
    fn after_io(&mut self) -> Next {
        if self.flush().is_err() {
            return Next::Remove;
        }
        match &self.phase {
            Phase::Handshake { .. } => Next::Keep,
            Phase::Refusing { .. } if self.held.is_empty() && !self.transport.has_pending() => {
                self.drain()
            }
            Phase::Refusing { .. } => Next::Keep,
            Phase::Open(open) => match open.protocol.state() {
                ConnectionState::Open => Next::Keep,
                // The core's close timeout bounds the rest (see `on_tick`).
                ConnectionState::CloseSent => Next::Keep,
                ConnectionState::Closed
                    if !open.protocol.has_output() && !self.transport.has_pending() =>
                {
                    self.drain()
                }
                ConnectionState::Closed => Next::Keep,
            },
        }
    }

    /// Everything is written: shut the write half (the server closes TCP first, RFC 6455
    /// section 7.1.1) and wait for the peer's end of stream.
    fn drain(&mut self) -> Next {
        if !self.draining {
            self.draining = true;
            self.held.clear();
            if self.transport.shutdown_write().is_err() {
                return Next::Remove;
            }
        }
        self.discard_input()
    }

    /// Reads and drops input until end of stream (then the slot goes) or nothing is left.
    fn discard_input(&mut self) -> Next {
        let mut sink = [0u8; 1024];
        loop {
            match self.transport.socket().read(&mut sink) {
                Ok(0) => return Next::Remove,
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Next::Keep,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return Next::Remove,
            }
        }
    }
}

/// Milliseconds from `since` to `now` on the wrapping worker clock; 0 when `since` is the
/// later one (a time stamp taken after the reading it is compared with), which would
/// otherwise read as a deadline passed long ago.
fn elapsed(now: u32, since: u32) -> u32 {
    let passed = now.wrapping_sub(since);
    if passed > u32::MAX / 2 {
        0
    } else {
        passed
    }
}

/// A duration in whole milliseconds, saturating at the worker clock's range.
pub(super) fn millis(duration: std::time::Duration) -> u32 {
    u32::try_from(duration.as_millis())
        .unwrap_or(u32::MAX / 2)
        .min(u32::MAX / 2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_time_stamp_later_than_the_clock_reading_is_no_time_passed() {
        assert_eq!(elapsed(1_000, 400), 600);
        assert_eq!(elapsed(400, 401), 0);
        assert_eq!(elapsed(5, u32::MAX - 4), 10);
    }

    /// An idle connection's memory is this box and one pointer in the worker's slots: at
    /// most 216 bytes keeps it in a 224-byte glibc chunk (the size plus an 8-byte header,
    /// rounded up to 16).
    #[test]
    fn a_slot_fits_a_224_byte_chunk() {
        let size = std::mem::size_of::<Slot<(), super::super::transport::Plain>>();
        println!(
            "Slot<(), Plain>: {size} bytes, Connection: {} bytes",
            std::mem::size_of::<Connection>()
        );
        assert!(size <= 216, "Slot<(), Plain> is {size} bytes");
    }
}
