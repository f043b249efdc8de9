//! One worker thread: a poller (epoll on Linux, through `mio`), its connections in a slab,
//! and a coarse clock that runs the deadlines.
//!
//! Worker 0 also owns the listener and deals each accepted connection to the worker with the
//! fewest open (through that worker's inbox and waker), so connections spread evenly over
//! the threads however they arrive: with a listener every worker accepts from, the first one
//! woken takes a whole burst. Started with [`super::EventLoopServer::start_per_worker`],
//! each worker instead accepts on a listener of its own on the shared port and keeps what
//! it accepts: the kernel spreads the connections, as over uWebSockets' processes.
//!
//! The loop waits for readiness, accepts what the listener has, adopts what its inbox holds, lets each ready connection
//! read and write as far as it can (edge-triggered: until the socket has nothing more), and
//! every tick walks all connections for their deadlines: handshake and close timeouts and
//! keep-alive pings. Nothing is allocated per message by the loop itself; per connection it
//! holds one boxed [`Slot`] and one pointer in [`Slots`]. A worker keeps two buffers for all
//! its connections: the shared read buffer and the cork buffer their output is written from.

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};
use sockway_proto::CloseCode;

use super::handler::Handler;
use super::options::EventLoopOptions;
use super::shared::{lock, Command, ConnId, Shared};
use super::slot::{millis, Context, Next, Slot};
use super::slots::Slots;
use super::topics::Topics;
use super::transport::Transport;

/// The listener's token.
pub(super) const LISTENER: Token = Token(usize::MAX - 1);
/// The token of the waker that tells a worker to stop or to look at its inbox.
pub(super) const WAKER: Token = Token(usize::MAX - 2);
/// The answer to a connection over [`EventLoopOptions::max_connections`].
const FULL: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain; \
    charset=utf-8\r\nconnection: close\r\nretry-after: 5\r\ncontent-length: 11\r\n\r\nserver full";

/// One worker's state, serving its connections over transport `T`.
pub(super) struct Worker<H: Handler, T: Transport> {
    /// This worker's index in [`Shared::workers`].
    index: usize,
    pub(super) poll: Poll,
    pub(super) listener: Option<TcpListener>,
    /// Whether the connections `listener` accepts are dealt to the least-loaded worker (one
    /// listener for all workers) or kept by this one (a listener per worker).
    deals: bool,
    pub(super) handler: H,
    pub(super) options: Arc<EventLoopOptions>,
    pub(super) shared: Arc<Shared>,
    /// What each connection's transport is made with.
    setup: T::Setup,
    /// Connections by the key of their token.
    slots: Slots<Slot<H::Session, T>>,
    /// The generation the next adopted connection gets (see [`ConnId`]).
    next_generation: u32,
    scratch: BytesMut,
    /// The output buffer lent to the connection being served (see `slot::output`).
    cork: BytesMut,
    /// The topics this worker's connections subscribed to, and this turn's publishes.
    topics: Topics,
    /// Slots a publish queued output for this turn (kept for its room).
    touched: Vec<usize>,
    /// The worker clock as read once in this loop turn (see [`Worker::parts`]): reading
    /// it costs a `clock_gettime` and a conversion, per event otherwise.
    turn_clock: Option<u64>,
    started: Instant,
}

impl<H: Handler, T: Transport> Worker<H, T> {
    /// Worker `index` over `poll`, which has its waker (and the listener, if given)
    /// registered; `deals` as [`Worker::deals`]; its connections' transports made with
    /// `setup`.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn new(
        index: usize,
        poll: Poll,
        listener: Option<TcpListener>,
        deals: bool,
        handler: H,
        options: Arc<EventLoopOptions>,
        shared: Arc<Shared>,
        setup: T::Setup,
    ) -> Self {
        let max_subscriptions = options.max_subscriptions;
        Self {
            index,
            poll,
            listener,
            deals,
            handler,
            options,
            shared,
            setup,
            slots: Slots::default(),
            next_generation: 0,
            scratch: BytesMut::new(),
            cork: BytesMut::new(),
            topics: Topics::new(max_subscriptions),
            touched: Vec::new(),
            turn_clock: None,
            started: Instant::now(),
        }
    }

    /// Runs until shutdown has drained every connection (or the drain deadline passed).
    pub(super) fn run(mut self) -> io::Result<()> {
        let mut events = Events::with_capacity(1024);
        let tick = tick_interval(&self.options);
        // The clock as of the last loop turn (read once per turn, see `turn_clock`).
        let mut now = self.now();
        let mut next_tick = now.wrapping_add(tick);
        let mut stopping_since: Option<u32> = None;
        // Polls without blocking since the last event (see `EventLoopOptions::busy_polls`).
        let mut spins = 0u32;
        loop {
            let wait = if spins < self.options.busy_polls {
                spins += 1;
                Duration::ZERO
            } else {
                Duration::from_millis(next_tick.saturating_sub(now).min(tick).into())
            };
            let polled = self.poll.poll(&mut events, Some(wait));
            self.turn_clock = None;
            if !events.is_empty() {
                spins = 0;
            }
            match polled {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
            for event in events.iter() {
                match event.token() {
                    LISTENER => self.accept(),
                    WAKER => {
                        self.adopt_dealt();
                        self.run_commands();
                    }
                    Token(key) => {
                        // `|`, not `||`: flag tests without branches.
                        let ended = event.is_read_closed() | event.is_error();
                        let readable = event.is_readable() | ended;
                        self.ready(key, readable, ended, event.is_writable());
                    }
                }
            }
            while self.topics.has_pending() {
                self.deliver_published();
            }
            now = self
                .turn_clock
                .map_or_else(|| self.now(), |clock| clock as u32);
            if stopping_since.is_none() && self.shared.stopping.load(Ordering::Acquire) {
                stopping_since = Some(now);
                self.begin_stop();
            }
            if now.wrapping_sub(next_tick) < u32::MAX / 2 {
                self.tick();
                now = self.now();
                next_tick = now.wrapping_add(tick);
            }
            if let Some(since) = stopping_since {
                let drained =
                    self.now().wrapping_sub(since) >= millis(self.options.limits.drain_timeout);
                if self.slots.is_empty() || drained {
                    break;
                }
            }
        }
        self.adopt_dealt();
        for key in self.slots.keys() {
            self.remove(key);
        }
        Ok(())
    }

    /// The worker clock: milliseconds since it started, wrapping.
    fn now(&self) -> u32 {
        self.clock() as u32
    }

    /// The worker clock without wrapping, for the core's keep-alive rule: milliseconds since
    /// the worker started.
    fn clock(&self) -> u64 {
        // Seconds and the millisecond part apart: `as_millis` would divide a `u128`.
        let elapsed = self.started.elapsed();
        elapsed
            .as_secs()
            .saturating_mul(1000)
            .saturating_add(u64::from(elapsed.subsec_millis()))
    }

    /// Accepts every waiting connection.
    fn accept(&mut self) {
        loop {
            let Some(listener) = &self.listener else {
                return;
            };
            let (mut stream, peer_addr) = match listener.accept() {
                Ok(accepted) => accepted,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if is_per_connection(&e) => continue,
                Err(e) => {
                    // Out of descriptors or memory: the rest waits in the backlog until the
                    // next connection (or a close) makes the listener ready again.
                    tracing::warn!(error = %e, "event loop: accept failed");
                    return;
                }
            };
            let open = self.shared.connections.fetch_add(1, Ordering::AcqRel);
            if open >= self.options.limits.max_connections {
                self.shared.connections.fetch_sub(1, Ordering::AcqRel);
                // Whatever of the request already arrived is read first: closing a socket
                // with unread input would reset the connection under the 503. A TLS client
                // would read the plain 503 as a broken handshake: it is only closed.
                let _ = stream.read(&mut [0u8; 4096]);
                if T::PLAIN {
                    let _ = stream.write(FULL);
                }
                let _ = stream.shutdown(std::net::Shutdown::Write);
                continue;
            }
            let target = if self.deals {
                self.shared.least_loaded()
            } else {
                self.index
            };
            let link = &self.shared.workers[target];
            link.open.fetch_add(1, Ordering::AcqRel);
            if target == self.index {
                self.adopt(stream, peer_addr);
            } else {
                lock(&link.inbox).push((stream, peer_addr));
                let _ = link.waker.wake();
            }
        }
    }

    /// Adopts the connections other workers dealt to this one.
    fn adopt_dealt(&mut self) {
        let dealt = std::mem::take(&mut *lock(&self.shared.workers[self.index].inbox));
        for (stream, peer_addr) in dealt {
            self.adopt(stream, peer_addr);
        }
    }

    /// Registers a connection dealt to this worker (and counted) and starts its handshake.
    fn adopt(&mut self, stream: TcpStream, peer_addr: SocketAddr) {
        if self.shared.stopping.load(Ordering::Acquire) {
            // Dealt just before shutdown: closed unanswered, like a connection in the
            // listener's backlog.
            self.uncount();
            return;
        }
        let _ = stream.set_nodelay(true);
        // The turn's clock, which the deadlines are checked against at the end of this turn:
        // a fresh reading could be later than it and read as a deadline long past.
        let now = self.turn_clock() as u32;
        let Some(key) = self.slots.next_key() else {
            self.uncount();
            return;
        };
        let Some(mut transport) = T::new(stream, &self.setup) else {
            self.uncount();
            return;
        };
        let registered = self.poll.registry().register(
            transport.socket(),
            Token(key as usize),
            Interest::READABLE | Interest::WRITABLE,
        );
        if registered.is_err() {
            self.uncount();
            return;
        }
        let id = ConnId {
            worker: self.index as u16,
            key,
            generation: self.next_generation,
        };
        self.next_generation = self.next_generation.wrapping_add(1);
        self.slots
            .insert(Box::new(Slot::new(transport, peer_addr, id, now)));
    }

    /// Carries out what [`super::Sender`]s queued for this worker's connections.
    fn run_commands(&mut self) {
        let commands = std::mem::take(&mut *lock(&self.shared.workers[self.index].commands));
        for command in commands {
            let id = match &command {
                Command::Publish(topic, frame) => {
                    self.topics.queue(topic, frame.clone());
                    continue;
                }
                Command::Send(id, _)
                | Command::Close(id, _, _)
                | Command::Subscribe(id, _)
                | Command::Unsubscribe(id, _) => *id,
            };
            let key = id.key as usize;
            let (slots, mut cx) = self.parts();
            let Some(slot) = slots.get_mut(key).filter(|slot| slot.is(id)) else {
                continue;
            };
            let next = match command {
                Command::Send(_, message) => slot.deliver(&mut cx, &message),
                Command::Close(_, code, reason) => slot.close(code, &reason),
                Command::Subscribe(_, topic) => {
                    if let Err(refused) = self.topics.subscribe(id, &topic) {
                        tracing::debug!(%refused, "event loop: subscription dropped");
                    }
                    continue;
                }
                Command::Unsubscribe(_, topic) => {
                    self.topics.unsubscribe(id, &topic);
                    continue;
                }
                Command::Publish(..) => continue,
            };
            self.settle(key, next);
        }
    }

    /// Delivers this turn's publishes: each frame queued into every subscriber's output,
    /// then each subscriber written once (uWebSockets' corking: one system call per socket
    /// per turn, however many messages it got).
    fn deliver_published(&mut self) {
        let pending = self.topics.take_pending();
        let limit = self.options.websocket.write_buffer_limit;
        let mut touched = std::mem::take(&mut self.touched);
        for (topic, frame) in &pending {
            for id in self.topics.subscribers(topic) {
                let key = id.key as usize;
                let slot = self.slots.get_mut(key).filter(|slot| slot.is(*id));
                if slot.is_some_and(|slot| slot.queue_prepared(frame, limit)) {
                    touched.push(key);
                }
            }
        }
        self.topics.restore_pending(pending);
        touched.sort_unstable();
        touched.dedup();
        for &key in &touched {
            if let Some(slot) = self.slots.get_mut(key) {
                let next = slot.write_queued();
                self.settle(key, next);
            }
        }
        touched.clear();
        self.touched = touched;
    }

    /// Removes connection `key` if it is done; tells the handler when it is draining.
    fn settle(&mut self, key: usize, next: Next) {
        match next {
            Next::Remove => self.remove(key),
            Next::Keep => {
                if let Some(slot) = self.slots.get_mut(key).filter(|slot| slot.is_draining()) {
                    slot.end_session(&mut self.handler);
                }
            }
        }
    }

    /// The worker clock as of this loop turn, read on first use in the turn.
    fn turn_clock(&mut self) -> u64 {
        if let Some(clock) = self.turn_clock {
            return clock;
        }
        let clock = self.clock();
        self.turn_clock = Some(clock);
        clock
    }

    /// One connection of this worker is gone.
    fn uncount(&self) {
        self.shared.connections.fetch_sub(1, Ordering::AcqRel);
        self.shared.workers[self.index]
            .open
            .fetch_sub(1, Ordering::AcqRel);
    }

    /// The connections, and what a connection needs from the worker while it works (the
    /// clock read at most once per loop turn).
    fn parts(&mut self) -> (&mut Slots<Slot<H::Session, T>>, Context<'_, H>) {
        let clock = self.turn_clock();
        let cx = Context {
            handler: &mut self.handler,
            options: &self.options,
            scratch: &mut self.scratch,
            cork: &mut self.cork,
            topics: &mut self.topics,
            shared: &self.shared,
            worker: self.index as u16,
            now: clock as u32,
            clock,
        };
        (&mut self.slots, cx)
    }

    /// Lets connection `key` handle readiness (`ended`: the peer's end of stream or an error
    /// came with it).
    fn ready(&mut self, key: usize, readable: bool, ended: bool, writable: bool) {
        let (slots, mut cx) = self.parts();
        let Some(slot) = slots.get_mut(key) else {
            return;
        };
        // `settle`, without looking the slot up again.
        match slot.on_ready(&mut cx, readable, ended, writable) {
            Next::Keep if slot.is_draining() => slot.end_session(cx.handler),
            Next::Keep => {}
            Next::Remove => self.remove(key),
        }
    }

    /// Runs every connection's deadlines.
    fn tick(&mut self) {
        self.for_each_slot(|slot, cx| slot.on_tick(cx));
    }

    /// Shutdown: stop accepting, and start the close handshake with 1001 ("going away",
    /// RFC 6455 section 7.4.1) on every connection.
    fn begin_stop(&mut self) {
        if let Some(mut listener) = self.listener.take() {
            let _ = self.poll.registry().deregister(&mut listener);
        }
        self.for_each_slot(|slot, _| slot.close(CloseCode::GOING_AWAY, "server shutting down"));
    }

    /// Runs `step` on every connection, removing those it is done with.
    fn for_each_slot<F>(&mut self, mut step: F)
    where
        F: FnMut(&mut Slot<H::Session, T>, &mut Context<'_, H>) -> Next,
    {
        let (slots, mut cx) = self.parts();
        let mut done = Vec::new();
        for (key, slot) in slots.iter_mut() {
            match step(slot, &mut cx) {
                Next::Remove => done.push(key),
                Next::Keep if slot.is_draining() => slot.end_session(cx.handler),
                Next::Keep => {}
            }
        }
        for key in done {
            self.remove(key);
        }
    }

    /// Closes and forgets connection `key`.
    fn remove(&mut self, key: usize) {
        let Some(mut slot) = self.slots.remove(key) else {
            return;
        };
        let _ = self.poll.registry().deregister(slot.stream());
        self.topics.remove_conn(slot.id(self.index as u16));
        slot.finish(&mut self.handler);
        self.uncount();
    }
}

/// Accept errors that concern one connection only (it went away before it was accepted).
fn is_per_connection(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::Interrupted
    )
}

/// How often deadlines are checked: a quarter of the shortest one, between 10 ms and 1 s.
fn tick_interval(options: &EventLoopOptions) -> u32 {
    let mut shortest = options
        .limits
        .handshake_timeout
        .min(options.websocket.close_timeout);
    if let Some(keep_alive) = options.websocket.keep_alive {
        shortest = shortest.min(keep_alive.interval).min(keep_alive.timeout);
    }
    (millis(shortest) / 4).clamp(10, 1000)
}
