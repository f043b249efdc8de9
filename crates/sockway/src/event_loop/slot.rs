//! One connection of the event loop, from accept to close: the handshake read from its
//! input, then frames through the sans-I/O [`Connection`], the output written as far as the
//! socket takes it, backpressure, keep-alive, and the timeouts of each phase.
//!
//! Reads go into the worker's shared buffer unless the connection holds the start of a frame
//! already; whatever is left of a frame after the events were handed out is copied into the
//! connection's own input. So an idle connection holds no buffer at all: its memory is this
//! struct and the [`Connection`] in it, behind one allocation.

use std::io::{self, IoSlice, Read, Write};
use std::mem::MaybeUninit;
use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::sync::Arc;

use bytes::BytesMut;
use mio::net::TcpStream;
use sockway_proto::connection::{Delivery, Timeout};
use sockway_proto::{CloseCode, Connection, ConnectionState, Event, Message, PreparedFrame, Role};

use super::handler::{Conn, Handler, OpenRequest};
use super::handshake::{self, Outcome};
use super::held::Held;
use super::options::EventLoopOptions;
use super::shared::{ConnId, Shared};
use super::topics::Topics;

/// Most bytes one read asks for.
pub(super) const READ_SIZE: usize = 64 * 1024;
/// Most bytes a handshake read asks for at once.
const HEAD_READ: usize = 4096;
/// Messages read into the worker's shared buffer and smaller than this are copied out of
/// it (a few nanoseconds); larger ones are handed out in place, and one that the handler
/// keeps holds at most 64 KiB of shared buffer, 16 times its size or less.
const DETACH_BELOW: usize = 4096;
/// How many runs of output one vectored write takes.
const WRITE_SLICES: usize = 16;

/// A worker-clock time as [`Slot::closing_at`] keeps it: 0 counts as 1, so that "not closing"
/// needs no room of its own (a close timeout one millisecond longer, once in 49 days).
fn closing_time(now: u32) -> NonZeroU32 {
    NonZeroU32::new(now).unwrap_or(NonZeroU32::MIN)
}

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
    /// The worker's topics, for the handler's subscriptions and publishes.
    pub(super) topics: &'a mut Topics,
    /// What the server's workers share, for the handler's [`super::Sender`]s.
    pub(super) shared: &'a Arc<Shared>,
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

/// The phase a connection is in. The whole slot is boxed and nearly every slot is `Open`,
/// so boxing that variant as well would only add an allocation per connection.
#[allow(clippy::large_enum_variant)]
enum Phase<S> {
    /// Reading the request head into `input`, from the client at `peer_addr`, last heard
    /// from at `heard_at` (worker clock). Once open, the core keeps when the peer was heard
    /// from ([`Connection::heard`]).
    Handshake {
        peer_addr: SocketAddr,
        heard_at: u32,
    },
    /// Writing a refusal from `raw`; the connection closes once it is written.
    Refusing,
    /// Speaking WebSocket.
    Open(Open<S>),
}

/// One connection.
pub(super) struct Slot<S> {
    stream: TcpStream,
    id: ConnId,
    /// Received bytes that wait for more: part of a request head or of a frame.
    input: Held,
    /// Bytes to send before the protocol's output: the handshake response or a refusal.
    raw: Held,
    /// When a refusal was queued, if one was (worker clock; see [`closing_time`]): it has the
    /// close timeout to go out. An open connection's closing is timed by its core.
    closing_at: Option<NonZeroU32>,
    /// Everything is sent and this side's write half is shut: input is read and dropped
    /// until the peer closes too (or the close timeout), so that closing the socket with
    /// unread bytes does not reset the connection under the peer's last read.
    draining: bool,
    phase: Phase<S>,
}

impl<S> Slot<S> {
    /// A connection just accepted, waiting for its request head.
    pub(super) fn new(stream: TcpStream, peer_addr: SocketAddr, id: ConnId, now: u32) -> Self {
        Self {
            stream,
            id,
            input: Held::default(),
            raw: Held::default(),
            closing_at: None,
            draining: false,
            phase: Phase::Handshake {
                peer_addr,
                heard_at: now,
            },
        }
    }

    /// The connection's name across threads.
    pub(super) fn id(&self) -> ConnId {
        self.id
    }

    /// Sends `message` queued by a [`super::Sender`]: dropped unless the WebSocket is open
    /// and its unsent output within the write buffer limit.
    pub(super) fn deliver<H: Handler<Session = S>>(
        &mut self,
        cx: &mut Context<'_, H>,
        message: &Message,
    ) -> Next {
        if let Phase::Open(open) = &mut self.phase {
            let room = open.protocol.output_len() <= cx.options.websocket.write_buffer_limit;
            if room && !self.draining && open.protocol.state() == ConnectionState::Open {
                let _ = open.protocol.send(message);
            }
        }
        if self.draining {
            return Next::Keep;
        }
        self.after_io(cx.now)
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
    pub(super) fn write_queued<H: Handler<Session = S>>(
        &mut self,
        cx: &mut Context<'_, H>,
    ) -> Next {
        if self.draining {
            return Next::Keep;
        }
        self.after_io(cx.now)
    }

    /// The socket, for (de)registration.
    pub(super) fn stream(&mut self) -> &mut TcpStream {
        &mut self.stream
    }

    /// The socket became readable and/or writable.
    pub(super) fn on_ready<H: Handler<Session = S>>(
        &mut self,
        cx: &mut Context<'_, H>,
        readable: bool,
        writable: bool,
    ) -> Next {
        if self.draining {
            return self.discard_input();
        }
        if writable && self.flush().is_err() {
            return Next::Remove;
        }
        match self.phase {
            Phase::Handshake { peer_addr, .. } if readable => self.read_head(cx, peer_addr),
            // Reading also resumes input that backpressure held back, once the output drained.
            Phase::Open(ref open) if readable || open.paused => self.read_open(cx),
            _ => self.after_io(cx.now),
        }
    }

    /// Checks the phase's deadline: the handshake timeout, a refusal's close timeout, and
    /// for an open connection the core's timers (a keep-alive ping, a silent peer, a close
    /// handshake or teardown that ran out of time).
    pub(super) fn on_tick<H: Handler<Session = S>>(&mut self, cx: &mut Context<'_, H>) -> Next {
        let options = cx.options;
        if let (Phase::Refusing, Some(since)) = (&self.phase, self.closing_at) {
            let close_ms = millis(options.websocket.close_timeout);
            return if cx.now.wrapping_sub(since.get()) >= close_ms {
                Next::Remove
            } else {
                Next::Keep
            };
        }
        match &mut self.phase {
            Phase::Handshake { heard_at, .. } => {
                if cx.now.wrapping_sub(*heard_at) < millis(options.limits.handshake_timeout) {
                    return Next::Keep;
                }
                let response = handshake::refusal(
                    http::StatusCode::REQUEST_TIMEOUT,
                    &http::HeaderMap::new(),
                    "request head not received in time",
                );
                self.refuse(response, cx.now)
            }
            Phase::Refusing => Next::Keep,
            Phase::Open(open) => {
                // The core's rules: a ping after the interval, failure after the timeout, and
                // the close timeout once closing. The tick is this driver's sleep; a ping or
                // close frame goes out below.
                let timers = crate::socket::timers(&options.websocket);
                if let Some(Timeout::CloseTimedOut(_)) =
                    open.protocol.handle_timeout(cx.clock, &timers)
                {
                    return Next::Remove;
                }
                self.after_tick(cx)
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
            return self.read_open(cx);
        }
        self.after_io(cx.now)
    }

    /// Starts the close handshake with `code` (server shutdown: 1001), or ends a connection
    /// that is not open yet.
    pub(super) fn close<H: Handler<Session = S>>(
        &mut self,
        cx: &mut Context<'_, H>,
        code: CloseCode,
        reason: &str,
    ) -> Next {
        match &mut self.phase {
            Phase::Open(open) => {
                if open.protocol.state() == ConnectionState::Open {
                    let _ = open.protocol.close(code, reason);
                }
                self.after_io(cx.now)
            }
            Phase::Handshake { .. } | Phase::Refusing => Next::Remove,
        }
    }

    /// Called when the slot is removed: tells the handler how the connection ended, unless
    /// it was told already.
    pub(super) fn finish<H: Handler<Session = S>>(mut self, handler: &mut H) {
        self.end_session(handler);
        let _ = self.stream.shutdown(std::net::Shutdown::Write);
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

    /// Reads the request head; answers it once it is complete.
    fn read_head<H: Handler<Session = S>>(
        &mut self,
        cx: &mut Context<'_, H>,
        peer_addr: SocketAddr,
    ) -> Next {
        let limit = cx.options.limits.max_header_bytes + 1;
        loop {
            let room = limit.saturating_sub(self.input.len()).clamp(1, HEAD_READ);
            match read_into(&self.stream, self.input.buffer(), room) {
                Ok(0) => return Next::Remove,
                Ok(n) => {
                    if let Phase::Handshake { heard_at, .. } = &mut self.phase {
                        *heard_at = cx.now;
                    }
                    if n < room || self.input.len() >= limit {
                        break;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return Next::Remove,
            }
        }
        match handshake::examine(&self.input, cx.options) {
            Outcome::Incomplete => Next::Keep,
            Outcome::Refuse(response) => self.refuse(response, cx.now),
            Outcome::Accept(accepted) => {
                let rest = BytesMut::from(&self.input[accepted.head_len..]);
                self.input.put(rest);
                self.raw.put(accepted.response);
                let mut protocol =
                    Connection::new(Role::Server, cx.options.websocket.protocol.clone());
                // `flush` writes several runs at once, so large payloads (echoed or
                // published) are written from where they are instead of copied.
                protocol.set_vectored_output(true);
                let request = OpenRequest {
                    path: &accepted.path,
                    origin: accepted.origin.as_deref(),
                    subprotocol: accepted.subprotocol.as_deref(),
                    peer_addr,
                };
                let session = cx.handler.open(
                    &mut Conn {
                        protocol: &mut protocol,
                        id: self.id,
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
                let mut pending = self.input.take();
                self.handle_input(cx, &mut pending, false);
                self.input.put(pending);
                self.read_open(cx)
            }
        }
    }

    /// Queues `response` and closes once it is written.
    fn refuse(&mut self, response: BytesMut, now: u32) -> Next {
        self.raw.put(response);
        self.input.clear();
        self.phase = Phase::Refusing;
        self.closing_at = Some(closing_time(now));
        self.after_io(now)
    }

    /// Reads frames until the socket has nothing more (or backpressure stops it), handing
    /// each event to the handler, then writes what they produced.
    fn read_open<H: Handler<Session = S>>(&mut self, cx: &mut Context<'_, H>) -> Next {
        loop {
            let limit = cx.options.websocket.write_buffer_limit;
            let Phase::Open(open) = &mut self.phase else {
                return self.after_io(cx.now);
            };
            if open.protocol.state() == ConnectionState::Closed {
                return self.after_io(cx.now);
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
                        return self.after_io(cx.now);
                    }
                }
                let Phase::Open(open) = &mut self.phase else {
                    return Next::Remove;
                };
                open.paused = false;
            }
            let own = !self.input.is_empty();
            // A frame's start is held: read onto it, growing with it, never more than
            // READ_SIZE at once. Otherwise into the worker's buffer, into the room it has
            // left while that is within HEAD_READ of READ_SIZE: small messages move its
            // start back (in `reserve`) once every so many reads rather than on each, and a
            // large frame still finds nearly READ_SIZE of room.
            let (buffer, room) = if own {
                let room = self.input.len().clamp(HEAD_READ, READ_SIZE);
                (self.input.buffer(), room)
            } else {
                let spare = cx.scratch.capacity() - cx.scratch.len();
                let room = if spare >= READ_SIZE - HEAD_READ {
                    spare.min(READ_SIZE)
                } else {
                    READ_SIZE
                };
                (&mut *cx.scratch, room)
            };
            match read_into(&self.stream, buffer, room) {
                Ok(0) => {
                    if let Phase::Open(open) = &mut self.phase {
                        open.protocol.receive_eof();
                    }
                    let _ = self.flush();
                    return Next::Remove;
                }
                Ok(n) => {
                    if own {
                        let mut pending = self.input.take();
                        self.handle_input(cx, &mut pending, false);
                        self.input.put(pending);
                    } else {
                        let mut pending = std::mem::take(cx.scratch);
                        self.handle_input(cx, &mut pending, true);
                        if !pending.is_empty() {
                            self.input.put(BytesMut::from(&pending[..]));
                            pending.clear();
                        }
                        *cx.scratch = pending;
                    }
                    if n < room {
                        return self.after_io(cx.now);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return self.after_io(cx.now),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return Next::Remove,
            }
        }
    }

    /// Hands every event in `input` to the handler; marks backpressure. Messages from the
    /// worker's shared buffer (`shared`) under [`DETACH_BELOW`] bytes are copied out of it,
    /// so that a handler that keeps one does not keep the whole buffer alive.
    fn handle_input<H: Handler<Session = S>>(
        &mut self,
        cx: &mut Context<'_, H>,
        input: &mut BytesMut,
        shared: bool,
    ) {
        let Phase::Open(open) = &mut self.phase else {
            return;
        };
        open.protocol.heard(cx.clock);
        loop {
            match open.protocol.read_event(input, Delivery::Messages) {
                Ok(Some(Event::Message(mut message))) => {
                    if shared && message.len() < DETACH_BELOW {
                        message = detach(message);
                    }
                    if let Some(session) = open.session.as_mut() {
                        let mut conn = Conn {
                            protocol: &mut open.protocol,
                            id: self.id,
                            shared: cx.shared,
                            topics: cx.topics,
                        };
                        cx.handler.message(&mut conn, session, message);
                    }
                }
                Ok(Some(Event::Close(_))) | Ok(None) | Err(_) => break,
                Ok(Some(_)) => {}
            }
        }
        if open.protocol.output_len() > cx.options.websocket.write_buffer_limit {
            open.paused = true;
        }
    }

    /// Writes what can be written, then decides whether the connection goes on.
    fn after_io(&mut self, now: u32) -> Next {
        if self.flush().is_err() {
            return Next::Remove;
        }
        let output_empty = self.raw.is_empty() && !self.protocol_has_output();
        match &self.phase {
            Phase::Handshake { .. } => Next::Keep,
            Phase::Refusing if output_empty => self.drain(now),
            Phase::Refusing => Next::Keep,
            Phase::Open(open) => match open.protocol.state() {
                ConnectionState::Open => Next::Keep,
                // The core's close timeout bounds the rest (see `on_tick`).
                ConnectionState::CloseSent => Next::Keep,
                ConnectionState::Closed if output_empty => self.drain(now),
                ConnectionState::Closed => Next::Keep,
            },
        }
    }

    /// Everything is written: shut the write half (the server closes TCP first, RFC 6455
    /// section 7.1.1) and wait for the peer's end of stream.
    fn drain(&mut self, now: u32) -> Next {
        if !self.draining {
            self.draining = true;
            if matches!(self.phase, Phase::Refusing) {
                self.closing_at.get_or_insert(closing_time(now));
            }
            self.input.clear();
            if self.stream.shutdown(std::net::Shutdown::Write).is_err() {
                return Next::Remove;
            }
        }
        self.discard_input()
    }

    /// Reads and drops input until end of stream (then the slot goes) or nothing is left.
    fn discard_input(&mut self) -> Next {
        let mut sink = [0u8; 1024];
        loop {
            match (&self.stream).read(&mut sink) {
                Ok(0) => return Next::Remove,
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Next::Keep,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return Next::Remove,
            }
        }
    }

    fn protocol_has_output(&self) -> bool {
        matches!(&self.phase, Phase::Open(open) if open.protocol.has_output())
    }

    /// Writes the raw bytes, then the protocol's output, until the socket stops taking them.
    fn flush(&mut self) -> io::Result<()> {
        while !self.raw.is_empty() {
            match (&self.stream).write(&self.raw) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => self.raw.advance(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        self.raw.clear();
        let Phase::Open(open) = &mut self.phase else {
            return Ok(());
        };
        while open.protocol.has_output() {
            let run = open.protocol.output();
            let written = if run.len() == open.protocol.output_len() {
                (&self.stream).write(run)
            } else {
                let mut slices = [IoSlice::new(&[]); WRITE_SLICES];
                let count = open.protocol.output_slices(&mut slices);
                (&self.stream).write_vectored(&slices[..count])
            };
            match written {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => open.protocol.advance_output(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    // Large payloads may be slices of the worker's 64 KiB read buffer: what waits
                    // is copied out, so a peer that does not read pins no read buffers.
                    open.protocol.own_output();
                    return Ok(());
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

/// The message in an allocation of its own.
fn detach(message: Message) -> Message {
    match message {
        Message::Text(text) => Message::text(String::from(&*text)),
        Message::Binary(bytes) => Message::binary(bytes::Bytes::copy_from_slice(&bytes)),
    }
}

/// Reads up to `room` bytes onto the end of `buffer`.
fn read_into(stream: &TcpStream, buffer: &mut BytesMut, room: usize) -> io::Result<usize> {
    buffer.reserve(room);
    let spare: &mut [MaybeUninit<u8>] = &mut buffer.spare_capacity_mut()[..room];
    let n = socket2::SockRef::from(stream).recv(spare)?;
    // SAFETY: `recv` initialised the first `n` bytes of the spare capacity, which start at
    // `buffer.len()`, and `n <= room <= spare capacity`.
    unsafe { buffer.set_len(buffer.len() + n) };
    Ok(n)
}

/// A duration in whole milliseconds, saturating at the worker clock's range.
pub(super) fn millis(duration: std::time::Duration) -> u32 {
    u32::try_from(duration.as_millis())
        .unwrap_or(u32::MAX / 2)
        .min(u32::MAX / 2)
}
