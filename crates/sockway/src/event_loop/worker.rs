//! One worker thread: a poller (epoll on Linux, through `mio`), its clone of the listener,
//! its connections in a slab, and a coarse clock that runs the deadlines.
//!
//! The loop waits for readiness, accepts what the listener has, lets each ready connection
//! read and write as far as it can (edge-triggered: until the socket has nothing more), and
//! every tick walks all connections for their deadlines: handshake and close timeouts and
//! keep-alive pings. Nothing is allocated per message by the loop itself; per connection it
//! holds one boxed [`Slot`] and a slab entry.

use std::io::{self, Read, Write};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use mio::net::TcpListener;
use mio::{Events, Interest, Poll, Token};
use slab::Slab;
use sockway_proto::CloseCode;

use super::handler::Handler;
use super::options::EventLoopOptions;
use super::slot::{millis, Context, Next, Slot};

/// The listener's token.
pub(super) const LISTENER: Token = Token(usize::MAX - 1);
/// The token of the waker that tells a worker to stop.
pub(super) const WAKER: Token = Token(usize::MAX - 2);
/// The answer to a connection over [`EventLoopOptions::max_connections`].
const FULL: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain; \
    charset=utf-8\r\nconnection: close\r\nretry-after: 5\r\ncontent-length: 11\r\n\r\nserver full";

/// What every worker of one server shares.
#[derive(Debug, Default)]
pub(super) struct Shared {
    /// Connections open across all workers.
    pub(super) connections: AtomicUsize,
    /// Set once shutdown starts.
    pub(super) stopping: AtomicBool,
}

/// One worker's state.
pub(super) struct Worker<H: Handler> {
    pub(super) poll: Poll,
    pub(super) listener: Option<TcpListener>,
    pub(super) handler: H,
    pub(super) options: Arc<EventLoopOptions>,
    pub(super) shared: Arc<Shared>,
    slots: Slab<Box<Slot<H::Session>>>,
    scratch: BytesMut,
    started: Instant,
}

impl<H: Handler> Worker<H> {
    /// A worker over `poll`, which has the listener and the waker registered.
    pub(super) fn new(
        poll: Poll,
        listener: TcpListener,
        handler: H,
        options: Arc<EventLoopOptions>,
        shared: Arc<Shared>,
    ) -> Self {
        Self {
            poll,
            listener: Some(listener),
            handler,
            options,
            shared,
            slots: Slab::new(),
            scratch: BytesMut::new(),
            started: Instant::now(),
        }
    }

    /// Runs until shutdown has drained every connection (or the drain deadline passed).
    pub(super) fn run(mut self) -> io::Result<()> {
        let mut events = Events::with_capacity(1024);
        let tick = tick_interval(&self.options);
        let mut next_tick = self.now().wrapping_add(tick);
        let mut stopping_since: Option<u32> = None;
        loop {
            let wait = next_tick.saturating_sub(self.now()).min(tick);
            match self
                .poll
                .poll(&mut events, Some(Duration::from_millis(wait.into())))
            {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
            for event in events.iter() {
                match event.token() {
                    LISTENER => self.accept(),
                    WAKER => {}
                    Token(key) => {
                        let readable =
                            event.is_readable() || event.is_read_closed() || event.is_error();
                        self.ready(key, readable, event.is_writable());
                    }
                }
            }
            let now = self.now();
            if stopping_since.is_none() && self.shared.stopping.load(Ordering::Acquire) {
                stopping_since = Some(now);
                self.begin_stop();
            }
            if now.wrapping_sub(next_tick) < u32::MAX / 2 {
                self.tick();
                next_tick = self.now().wrapping_add(tick);
            }
            if let Some(since) = stopping_since {
                let drained = self.now().wrapping_sub(since) >= millis(self.options.drain_timeout);
                if self.slots.is_empty() || drained {
                    break;
                }
            }
        }
        let keys: Vec<usize> = self.slots.iter().map(|(key, _)| key).collect();
        for key in keys {
            self.remove(key);
        }
        Ok(())
    }

    /// The worker clock: milliseconds since it started, wrapping.
    fn now(&self) -> u32 {
        self.started.elapsed().as_millis() as u32
    }

    /// Accepts every waiting connection.
    fn accept(&mut self) {
        let Some(listener) = &self.listener else {
            return;
        };
        loop {
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
            if open >= self.options.max_connections {
                self.shared.connections.fetch_sub(1, Ordering::AcqRel);
                // Whatever of the request already arrived is read first: closing a socket
                // with unread input would reset the connection under the 503.
                let _ = stream.read(&mut [0u8; 4096]);
                let _ = stream.write(FULL);
                let _ = stream.shutdown(std::net::Shutdown::Write);
                continue;
            }
            let _ = stream.set_nodelay(true);
            let entry = self.slots.vacant_entry();
            let mut slot = Box::new(Slot::new(
                stream,
                peer_addr,
                self.started.elapsed().as_millis() as u32,
            ));
            let interest = Interest::READABLE | Interest::WRITABLE;
            if self
                .poll
                .registry()
                .register(slot.stream(), Token(entry.key()), interest)
                .is_err()
            {
                self.shared.connections.fetch_sub(1, Ordering::AcqRel);
                continue;
            }
            entry.insert(slot);
        }
    }

    /// Lets connection `key` handle readiness.
    fn ready(&mut self, key: usize, readable: bool, writable: bool) {
        let now = self.now();
        let Some(slot) = self.slots.get_mut(key) else {
            return;
        };
        let mut cx = Context {
            handler: &mut self.handler,
            options: &self.options,
            scratch: &mut self.scratch,
            now,
        };
        if slot.on_ready(&mut cx, readable, writable) == Next::Remove {
            self.remove(key);
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
        self.for_each_slot(|slot, cx| {
            slot.close(cx, CloseCode::GOING_AWAY, "server shutting down")
        });
    }

    /// Runs `step` on every connection, removing those it is done with.
    fn for_each_slot<F>(&mut self, mut step: F)
    where
        F: FnMut(&mut Slot<H::Session>, &mut Context<'_, H>) -> Next,
    {
        let now = self.now();
        let mut cx = Context {
            handler: &mut self.handler,
            options: &self.options,
            scratch: &mut self.scratch,
            now,
        };
        let mut done = Vec::new();
        for (key, slot) in self.slots.iter_mut() {
            if step(slot, &mut cx) == Next::Remove {
                done.push(key);
            }
        }
        for key in done {
            self.remove(key);
        }
    }

    /// Closes and forgets connection `key`.
    fn remove(&mut self, key: usize) {
        let Some(mut slot) = self.slots.try_remove(key) else {
            return;
        };
        let _ = self.poll.registry().deregister(slot.stream());
        slot.finish(&mut self.handler);
        self.shared.connections.fetch_sub(1, Ordering::AcqRel);
        if self.slots.is_empty() && self.slots.capacity() > 1024 {
            self.slots.shrink_to_fit();
        }
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
        .handshake_timeout
        .min(options.websocket.close_timeout);
    if let Some(keep_alive) = options.websocket.keep_alive {
        shortest = shortest.min(keep_alive.interval).min(keep_alive.timeout);
    }
    (millis(shortest) / 4).clamp(10, 1000)
}
