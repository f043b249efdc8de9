//! [`EventLoopServer`]: a WebSocket server for very many connections, with callbacks
//! instead of a task per connection (feature `event-loop`).
//!
//! The `async` server ([`crate::server`]) gives every connection a tokio task and an
//! `async fn` handler: the natural model for request/response work, but each idle connection
//! then carries a task, a reactor registration and its socket state (about 1.4 KiB in all,
//! of which about 1 KiB is tokio's own: see `docs/benchmarks.md`). This server is the other
//! model, that of uWebSockets: a few worker threads, each polling its own connections
//! (epoll through `mio`), each connection one allocation in a slab, a [`Handler`] called for
//! each open, message and close. An idle connection holds no buffer at all: about 0.26 KiB
//! each, measured with 5,000 connections (uWebSockets: 0.27 KiB). A handler that only reads
//! a message or sends it on can take it lent ([`Handler::lent_message`]), a view into the
//! worker's read buffer as uWebSockets gives its handlers, and every connection's output is
//! written from the worker's one cork buffer.
//!
//! A handler answers from its callbacks through [`Conn`]; to reach other connections (a
//! broadcast, a room, a push from another thread) it names them by [`ConnId`] and queues
//! through a [`Sender`] (from [`Conn::sender`] or [`RunningServer::sender`]), which wakes
//! their worker once per batch. For fan-out, [`Conn::subscribe`] puts a connection on a
//! topic and [`Conn::publish`] or [`Sender::publish`] sends a message, framed once, to every
//! subscriber (uWebSockets' `subscribe` and `publish`).
//!
//! Worker 0 accepts and deals each connection to the worker with the fewest, so they spread
//! evenly; a connection then stays on its worker (no work stealing). On a machine whose
//! cores are shared with other busy processes the `async` server can therefore be faster
//! with several threads (tokio lets idle workers sleep and keeps the work on fewer threads);
//! with one thread this one costs the least CPU per message. Figures in
//! `docs/benchmarks/rounds-1-6.md` ("Fifth round").
//!
//! The protocol is the same sans-I/O core ([`sockway_proto::Connection`]) the async socket
//! drives, so framing, masking, UTF-8 and close-code rules (RFC 6455) and permessage-deflate
//! (RFC 7692, off unless [`EventLoopOptions::compression`] is set) are identical. With
//! `EventLoopOptions::tls` (feature `tls`) it serves `wss://`: a rustls session sits between
//! each socket and its connection, on the same worker (uWebSockets' `SSLApp`); a plain
//! server's connections carry nothing for it. What it does not do (use [`crate::server`] for
//! these): HTTP/2, routing of other HTTP requests (anything that is not a WebSocket handshake
//! is answered 400, 405 or 426).
//!
//! ```no_run
//! use sockway::event_loop::{Conn, EventLoopOptions, EventLoopServer, Handler, OpenRequest};
//! use sockway::Message;
//!
//! #[derive(Clone)]
//! struct Echo;
//!
//! impl Handler for Echo {
//!     type Session = ();
//!     fn open(&mut self, _conn: &mut Conn<'_>, _request: &OpenRequest<'_>) {}
//!     fn message(&mut self, conn: &mut Conn<'_>, _session: &mut (), message: Message) {
//!         let _ = conn.send(&message);
//!     }
//! }
//!
//! let server = EventLoopServer::new(Echo, EventLoopOptions::default())
//!     .bind("127.0.0.1:9001".parse().unwrap())?;
//! server.join()?; // until server.stop_handle().stop() is called elsewhere
//! # Ok::<(), std::io::Error>(())
//! ```

mod handler;
mod handshake;
mod held;
mod options;
mod sender;
mod shared;
mod slot;
mod slots;
mod sys;
mod topics;
mod transport;
mod worker;

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::JoinHandle;

use mio::{Interest, Poll, Waker};

#[cfg(feature = "tls")]
pub use crate::tls::{ServerTls, TlsConfigError};
pub use handler::{Conn, Handler, LentMessage, OpenRequest};
pub use options::EventLoopOptions;
pub use sender::{SendRefused, Sender};
pub use shared::ConnId;
use shared::Shared;
pub use topics::SubscribeRefused;
use transport::{Plain, Transport};
use worker::{Worker, LISTENER, WAKER};

/// A callback-driven WebSocket server; see the module documentation.
#[derive(Debug, Clone)]
pub struct EventLoopServer<H> {
    handler: H,
    options: EventLoopOptions,
}

impl<H: Handler> EventLoopServer<H> {
    /// A server that calls `handler` (one clone per worker thread) with `options`.
    pub fn new(handler: H, options: EventLoopOptions) -> Self {
        Self { handler, options }
    }

    /// Binds `addr` and starts the worker threads.
    pub fn bind(self, addr: SocketAddr) -> io::Result<RunningServer> {
        self.start(std::net::TcpListener::bind(addr)?)
    }

    /// Starts the worker threads on a listener bound elsewhere. Worker 0 accepts and deals
    /// each connection to the worker with the fewest.
    pub fn start(self, listener: std::net::TcpListener) -> io::Result<RunningServer> {
        let threads = self.worker_count();
        let others = std::iter::repeat_with(|| None).take(threads - 1);
        let listeners = std::iter::once(Some(listener)).chain(others).collect();
        self.launch(listeners, true)
    }

    /// Binds [`EventLoopOptions::threads`] listeners to `addr` with `SO_REUSEPORT` (port 0:
    /// one free port for all) and starts [`start_per_worker`](Self::start_per_worker).
    pub fn bind_per_worker(self, addr: SocketAddr) -> io::Result<RunningServer> {
        let threads = self.worker_count();
        let listeners = crate::listen::reuse_port_listeners(addr, threads)?;
        self.start_per_worker(listeners)
    }

    /// Starts one worker per listener (at most 65,535), each accepting on its own and
    /// keeping what it accepts, with no connection dealt between threads: uWebSockets'
    /// layout, one loop per process on a port shared with `SO_REUSEPORT` (make the
    /// listeners with [`bind_per_worker`](Self::bind_per_worker) or
    /// `sockway::server::reuse_port_listeners`). The kernel spreads new connections by a
    /// hash of their addresses, so a few connections may land unevenly, where
    /// [`start`](Self::start) balances them. [`EventLoopOptions::threads`] is not read.
    pub fn start_per_worker(
        self,
        listeners: Vec<std::net::TcpListener>,
    ) -> io::Result<RunningServer> {
        if listeners.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "start_per_worker needs at least one listener",
            ));
        }
        let listeners = listeners
            .into_iter()
            .take(usize::from(u16::MAX))
            .map(Some)
            .collect();
        self.launch(listeners, false)
    }

    /// [`EventLoopOptions::threads`], at least 1 and at most 65,535: a `ConnId` names its
    /// worker in 16 bits.
    fn worker_count(&self) -> usize {
        self.options.threads.clamp(1, usize::from(u16::MAX))
    }

    /// Starts a worker per entry of `listeners`, each registering the listener it is given;
    /// `deals` as the workers' (see `Worker::deals`); over TLS when the options have it, with
    /// `http/1.1` as the only ALPN protocol (RFC 7301): the event loop speaks no HTTP/2.
    fn launch(
        self,
        listeners: Vec<Option<std::net::TcpListener>>,
        deals: bool,
    ) -> io::Result<RunningServer> {
        #[cfg(feature = "tls")]
        if let Some(tls) = &self.options.tls {
            let config = tls.config_with_alpn(&[crate::tls::ALPN_HTTP11]);
            return self.launch_over::<transport::tls::Tls>(listeners, deals, config);
        }
        self.launch_over::<Plain>(listeners, deals, ())
    }

    /// [`launch`](Self::launch) with every connection over transport `T`, made with `setup`.
    fn launch_over<T: Transport>(
        self,
        listeners: Vec<Option<std::net::TcpListener>>,
        deals: bool,
        setup: T::Setup,
    ) -> io::Result<RunningServer> {
        let mut local_addr = None;
        let mut workers = Vec::with_capacity(listeners.len());
        let mut wakers = Vec::with_capacity(listeners.len());
        for listener in listeners {
            let poll = Poll::new()?;
            wakers.push(Waker::new(poll.registry(), WAKER)?);
            let listener = match listener {
                Some(listener) => {
                    listener.set_nonblocking(true)?;
                    local_addr.get_or_insert(listener.local_addr()?);
                    let mut listener = mio::net::TcpListener::from_std(listener);
                    poll.registry()
                        .register(&mut listener, LISTENER, Interest::READABLE)?;
                    Some(listener)
                }
                None => None,
            };
            workers.push((poll, listener));
        }
        let Some(local_addr) = local_addr else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "an event loop needs a listener",
            ));
        };
        let options = Arc::new(self.options);
        let shared = Arc::new(Shared::new(wakers));
        let stop = StopHandle {
            shared: Arc::clone(&shared),
        };
        let mut threads = Vec::with_capacity(workers.len());
        for (index, (poll, listener)) in workers.into_iter().enumerate() {
            let (options, shared) = (Arc::clone(&options), Arc::clone(&shared));
            let (handler, setup) = (self.handler.clone(), setup.clone());
            // The worker is made on its thread: sessions never cross threads, so they need
            // not be `Send`.
            let spawned = std::thread::Builder::new()
                .name(format!("sockway-loop-{index}"))
                .spawn(move || {
                    Worker::<H, T>::new(
                        index, poll, listener, deals, handler, options, shared, setup,
                    )
                    .run()
                });
            match spawned {
                Ok(thread) => threads.push(thread),
                Err(error) => {
                    stop.stop();
                    for thread in threads {
                        let _ = thread.join();
                    }
                    return Err(error);
                }
            }
        }
        Ok(RunningServer {
            local_addr,
            stop,
            threads,
        })
    }
}

/// A started [`EventLoopServer`]. Dropping it leaves the server running; call
/// [`RunningServer::stop`] and [`RunningServer::join`] to end it.
#[derive(Debug)]
pub struct RunningServer {
    local_addr: SocketAddr,
    stop: StopHandle,
    threads: Vec<JoinHandle<io::Result<()>>>,
}

impl RunningServer {
    /// The address the server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// A sender that queues messages for this server's connections from any thread.
    pub fn sender(&self) -> Sender {
        Sender {
            shared: Arc::clone(&self.stop.shared),
        }
    }

    /// A handle that can stop the server from any thread.
    pub fn stop_handle(&self) -> StopHandle {
        self.stop.clone()
    }

    /// Starts the graceful shutdown (see [`StopHandle::stop`]).
    pub fn stop(&self) {
        self.stop.stop();
    }

    /// Connections open right now, handshakes included.
    pub fn connections(&self) -> usize {
        self.stop.shared.connections.load(Ordering::Acquire)
    }

    /// Waits for every worker to end: after shutdown has drained the connections, or when a
    /// worker's poller fails (that error is returned).
    pub fn join(self) -> io::Result<()> {
        let mut result = Ok(());
        for thread in self.threads {
            let outcome = thread
                .join()
                .unwrap_or_else(|_| Err(io::Error::other("event-loop worker panicked")));
            if let (Ok(()), Err(error)) = (&result, outcome) {
                result = Err(error);
            }
        }
        result
    }
}

/// Stops an [`EventLoopServer`] from any thread.
#[derive(Debug, Clone)]
pub struct StopHandle {
    shared: Arc<Shared>,
}

impl StopHandle {
    /// Stops accepting and sends every open connection a close frame with 1001 ("going
    /// away", RFC 6455 section 7.4.1); the workers end once every connection has closed, or
    /// after [`EventLoopOptions::drain_timeout`].
    pub fn stop(&self) {
        self.shared.stopping.store(true, Ordering::Release);
        for worker in &self.shared.workers {
            let _ = worker.waker.wake();
        }
    }
}
