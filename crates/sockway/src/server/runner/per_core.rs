//! [`Server::serve_per_core`]: one single-threaded runtime per thread, each with a listener of
//! its own on one port, so that no connection ever moves between threads.
//!
//! A multi-threaded tokio runtime shares its tasks among its workers: a socket woken on one
//! worker may be polled on another, and every wake-up goes through the scheduler's shared
//! queues. uWebSockets (one event loop per process or thread) and nginx (one per worker
//! process) instead let the kernel spread connections over several listeners bound to the
//! same port with `SO_REUSEPORT` (Linux 3.9, `socket(7)`), and each loop keeps its
//! connections for their whole life. This is that layout for [`Server`]: the same options,
//! TLS, HTTP/2, limits and graceful shutdown, with one connection count for all threads.

use std::io;

use http::{Request, Response};
use hyper::body::Incoming;
use tokio::net::TcpListener;
use tower_service::Service;

use super::{BoxError, Server};

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
        S: Service<Request<Incoming>, Response = Response<B>> + Clone + Send + 'static,
        S::Future: Send + 'static,
        S::Error: Into<BoxError>,
        B: hyper::body::Body + Send + 'static,
        B::Data: Send,
        B::Error: Into<BoxError>,
    {
        let threads = listeners
            .into_iter()
            .enumerate()
            .map(|(index, listener)| {
                let (server, service) = (self.clone(), service.clone());
                std::thread::Builder::new()
                    .name(format!("sockway-server-{index}"))
                    .spawn(move || {
                        let handle = server.shutdown_handle();
                        let served = start_runtime(&listener).and_then(|runtime| {
                            runtime.block_on(async move {
                                let listener = TcpListener::from_std(listener)?;
                                server.serve(listener, service).await;
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

/// The single-threaded runtime of one thread of [`Server::serve_per_core`], with its
/// listener made non-blocking as tokio needs it.
fn start_runtime(listener: &std::net::TcpListener) -> io::Result<tokio::runtime::Runtime> {
    listener.set_nonblocking(true)?;
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
}
