//! [`Server::serve_per_core`] and [`Server::serve_threads`]: one single-threaded runtime per
//! thread, so that no connection ever moves between threads.
//!
//! A multi-threaded tokio runtime shares its tasks among its workers: a socket woken on one
//! worker may be polled on another, and every wake-up goes through the scheduler's shared
//! queues. uWebSockets (one event loop per process or thread) and nginx (one per worker
//! process) instead keep each connection on one loop for its whole life. These are that
//! layout for [`Server`], with the same options, TLS, HTTP/2, limits and graceful shutdown,
//! and one connection count for all threads. The two differ in who picks a connection's
//! thread: with `serve_per_core` the kernel, spreading connections over listeners bound to
//! the same port with `SO_REUSEPORT` (Linux 3.9, `socket(7)`) by a hash of their addresses,
//! as uWebSockets' processes and nginx's workers do; with `serve_threads` thread 0, which
//! accepts on the one listener and deals each connection to the thread with the fewest, as
//! the event loop does, so that a few connections spread evenly too.

use std::io;

use tokio::net::TcpListener;

use super::deal::{Dealer, Source};
use super::{HttpService, ResponseBody, Server};

impl Server {
    /// Serves `service` on every listener in `listeners`, each on a thread of its own running
    /// a single-threaded tokio runtime (timers and I/O enabled), until shutdown, then drains;
    /// blocks the calling thread until every thread has finished. Make the listeners with
    /// [`reuse_port_listeners`](super::reuse_port_listeners) (one per core is the usual choice).
    ///
    /// Everything [`Server::serve`] does holds across the threads: the connection limit counts
    /// all of them, and a shutdown (Ctrl-C, SIGTERM or [`Server::shutdown_handle`]) stops
    /// every thread's accepting and closes every socket with 1001. Tasks the handlers spawn
    /// run on the thread of their connection. Errors: a runtime that cannot be built, or a
    /// listener tokio cannot take; a thread that panicked is reported as an error too.
    pub fn serve_per_core<S, B>(
        self,
        listeners: Vec<std::net::TcpListener>,
        service: S,
    ) -> io::Result<()>
    where
        S: HttpService<B>,
        B: ResponseBody,
    {
        let sources = listeners.into_iter().map(ThreadSource::Own).collect();
        self.serve_on_threads(sources, service)
    }

    /// Serves `service` on `listener` with `threads` threads (at least 1), each running a
    /// single-threaded tokio runtime (timers and I/O enabled), until shutdown, then drains;
    /// blocks the calling thread until every thread has finished. Thread 0 accepts every
    /// connection and deals it to the thread with the fewest open connections (the first of
    /// them on a tie), where it stays; so a few connections spread as evenly as many, which
    /// the kernel's hash over [`serve_per_core`](Self::serve_per_core)'s listeners does not do.
    ///
    /// Everything [`Server::serve_per_core`] says about limits, shutdown, spawned tasks and
    /// errors holds here too. Against [`Server::serve`] on a multi-threaded runtime, both
    /// per-thread layouts trade one cost for another: with many busy connections they avoid
    /// the runtime's shared queues and sockets moving between threads; with a few connections
    /// each thread's loop sleeps and wakes more often than the runtime's one shared poller
    /// (`docs/benchmarks/amd-host.md`, "The per-core layout on one listener", has the figures).
    pub fn serve_threads<S, B>(
        self,
        listener: std::net::TcpListener,
        threads: usize,
        service: S,
    ) -> io::Result<()>
    where
        S: HttpService<B>,
        B: ResponseBody,
    {
        let (dealer, inboxes) = Dealer::new(threads);
        let sources = std::iter::once(ThreadSource::Deals(listener, dealer))
            .chain(inboxes.into_iter().map(ThreadSource::Dealt))
            .collect();
        self.serve_on_threads(sources, service)
    }

    /// Runs one thread with a single-threaded runtime per source, each serving what its
    /// source yields; returns the first error once every thread has finished.
    fn serve_on_threads<S, B>(self, sources: Vec<ThreadSource>, service: S) -> io::Result<()>
    where
        S: HttpService<B>,
        B: ResponseBody,
    {
        let threads = sources
            .into_iter()
            .enumerate()
            .map(|(index, source)| {
                let (server, service) = (self.clone(), service.clone());
                std::thread::Builder::new()
                    .name(format!("sockway-server-{index}"))
                    .spawn(move || {
                        let handle = server.shutdown_handle();
                        let served = start_runtime().and_then(|runtime| {
                            runtime.block_on(async move {
                                server.serve_source(source.start()?, service).await;
                                Ok(())
                            })
                        });
                        // A thread that cannot serve stops the others, so that the server
                        // never runs on fewer threads than it was given.
                        if served.is_err() {
                            handle.shutdown();
                        }
                        served
                    })
            })
            .collect::<Vec<_>>();
        let mut outcome = Ok(());
        for thread in threads {
            let result = match thread {
                Ok(thread) => thread
                    .join()
                    .unwrap_or_else(|_| Err(io::Error::other("a server thread panicked"))),
                // The threads already started stop too, and are waited for below.
                Err(error) => {
                    self.handle.shutdown();
                    Err(error)
                }
            };
            if outcome.is_ok() {
                outcome = result;
            }
        }
        outcome
    }
}

/// Where the connections of one thread come from, before its runtime has started.
enum ThreadSource {
    /// A listener of its own ([`Server::serve_per_core`]).
    Own(std::net::TcpListener),
    /// The one listener, whose connections it deals ([`Server::serve_threads`]'s thread 0).
    Deals(std::net::TcpListener, Dealer),
    /// What thread 0 deals to it.
    Dealt(tokio::sync::mpsc::UnboundedReceiver<super::deal::Dealt>),
}

impl ThreadSource {
    /// The source on this thread's runtime (which a listener is registered with here).
    fn start(self) -> io::Result<Source> {
        let listener = |listener: std::net::TcpListener| {
            listener.set_nonblocking(true)?;
            TcpListener::from_std(listener)
        };
        Ok(match self {
            ThreadSource::Own(own) => Source::Listener {
                listener: listener(own)?,
                dealer: None,
            },
            ThreadSource::Deals(one, dealer) => Source::Listener {
                listener: listener(one)?,
                dealer: Some(dealer),
            },
            ThreadSource::Dealt(inbox) => Source::Dealt(inbox),
        })
    }
}

/// The single-threaded runtime of one server thread.
fn start_runtime() -> io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
}
