//! [`Server`]: a ready-made accept loop on hyper for any tower service (a
//! [`super::WebSocketLayer`] stack, an axum `Router`), with the limits a public endpoint needs
//! and a graceful shutdown that closes every open WebSocket with 1001.
//!
//! Per connection: TLS first when configured ([`Server::tls`]); then the HTTP version is chosen
//! (ALPN over TLS, the HTTP/2 preface over plain TCP; see [`ServerOptions::http2`]). An
//! HTTP/1.1 connection's first request head is read with a bounded buffer within the handshake
//! timeout (431 when too large, 408 when too slow, 503 when the server is full), then hyper
//! serves it with upgrades; an HTTP/2 one is served with extended CONNECT (RFC 8441), each
//! WebSocket on a stream of its own. On shutdown (Ctrl-C, SIGTERM, or [`ShutdownHandle::shutdown`]) the
//! listener is closed, idle HTTP connections are closed, every WebSocket accepted through
//! [`super::accept`] on this server sends close 1001 ("going away", RFC 6455 section 7.4.1) the
//! next time it is polled (at once if its task is waiting to receive), and the runner waits
//! for the connections to finish, up to the drain deadline.
//!
//! [`Server::serve`] runs on the caller's runtime; [`Server::serve_per_core`] instead runs one
//! single-threaded runtime per thread, each accepting on a listener of its own on the same
//! port (`SO_REUSEPORT`, [`reuse_port_listeners`]), so that no connection moves between
//! threads, as in uWebSockets' and nginx's one loop per worker; [`Server::serve_threads`]
//! runs the same on one listener, thread 0 dealing the connections.

mod connection;
mod deal;
mod head;
mod options;
mod per_core;
mod refuse;
#[cfg(feature = "tls")]
mod tls;

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use http::{Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper::server::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tower_service::Service;

use super::info::ConnectionInfo;
use super::shutdown::{ConnectionCounter, ConnectionPermit, ShutdownHandle, Signal};
use super::signals::StopSignals;
pub use crate::listen::reuse_port_listeners;
use connection::{serve_connection, Shared};
use deal::{Dealer, Dealing, Next, Source};
pub(crate) use head::Rewind;
pub use options::ServerOptions;
use refuse::Refusal;
#[cfg(feature = "tls")]
pub use tls::{ServerTls, TlsConfigError};

/// The error type services may fail with.
type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A tower service [`Server`] can run: it answers hyper's requests with [`ResponseBody`]
/// responses, and is cloned for each connection and moved between threads. Every such
/// service has it (an axum `Router`, a [`super::WebSocketLayer`] stack, a `service_fn`).
pub trait HttpService<B>:
    Service<
        Request<Incoming>,
        Response = Response<B>,
        Error: Into<BoxError>,
        Future: Send + 'static,
    > + Clone
    + Send
    + 'static
{
}

impl<S, B> HttpService<B> for S
where
    S: Service<Request<Incoming>, Response = Response<B>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
{
}

/// A response body [`Server`] can send: hyper's body trait, with chunks and errors that can
/// cross threads. Every such body has it (`Full`, axum's `Body`, [`super::Body`]).
pub trait ResponseBody:
    hyper::body::Body<Data: Send, Error: Into<BoxError>> + Send + 'static
{
}

impl<B> ResponseBody for B
where
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
}

/// Hyper's smallest allowed HTTP/1 buffer; its read buffer is clamped to at least this.
const HYPER_MIN_BUF: usize = 8192;

/// An HTTP server for WebSocket applications: accept loop, limits, graceful shutdown.
///
/// ```no_run
/// # async fn run(app: sockway::server::ServiceFn<fn(http::Request<hyper::body::Incoming>) -> std::future::Ready<http::Response<sockway::server::Body>>>) -> std::io::Result<()> {
/// use sockway::server::{Server, ServerOptions};
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:5000").await?;
/// let server = Server::new(ServerOptions::default());
/// let stop = server.shutdown_handle(); // call stop.shutdown() to end it from code
/// server.serve(listener, app).await; // returns after Ctrl-C/SIGTERM and the drain
/// # drop(stop); Ok(()) }
/// ```
#[derive(Debug, Clone, Default)]
pub struct Server {
    options: ServerOptions,
    handle: ShutdownHandle,
    /// The live connections of this server and its clones, which the connection limit counts
    /// and the drain waits for (one count for every thread of [`Server::serve_per_core`]).
    counter: ConnectionCounter,
    /// Listeners installed before `serve` (see [`Server::signals`]), taken by the first serve.
    signals: Arc<Mutex<Option<StopSignals>>>,
    #[cfg(feature = "tls")]
    tls: Option<ServerTls>,
}

impl Server {
    /// A server with these options.
    pub fn new(options: ServerOptions) -> Self {
        Self {
            options,
            handle: ShutdownHandle::default(),
            counter: ConnectionCounter::default(),
            signals: Arc::default(),
            #[cfg(feature = "tls")]
            tls: None,
        }
    }

    /// Shuts down on `signals`, installed earlier, instead of on listeners installed when
    /// [`Server::serve`] starts. Install them before announcing the server (logging its
    /// address, notifying a supervisor): a Ctrl-C or SIGTERM sent in between is then acted
    /// on, not left to its default action, which ends the process without closing any
    /// WebSocket. Only with [`ServerOptions::handle_signals`] on (the default); the first
    /// `serve` of this server or its clones uses them, later ones install their own.
    pub fn signals(self, signals: StopSignals) -> Self {
        *self.signals.lock().unwrap_or_else(PoisonError::into_inner) = Some(signals);
        self
    }

    /// Serves every connection over TLS with `tls` (`https://` and `wss://`). ALPN
    /// (RFC 7301) then picks the HTTP version per connection: `h2` (offered when
    /// [`ServerOptions::http2`] is on) is HTTP/2 with extended CONNECT (RFC 8441), `http/1.1`
    /// or no ALPN is HTTP/1.1. The TLS handshake counts against the handshake timeout.
    #[cfg(feature = "tls")]
    pub fn tls(mut self, tls: ServerTls) -> Self {
        self.tls = Some(tls);
        self
    }

    /// A handle that starts this server's graceful shutdown from code.
    pub fn shutdown_handle(&self) -> ShutdownHandle {
        self.handle.clone()
    }

    /// The options in force.
    pub fn options(&self) -> &ServerOptions {
        &self.options
    }

    /// Serves `service` on every connection `listener` accepts until shutdown, then drains:
    /// returns once every connection has closed or the drain deadline has passed.
    pub async fn serve<S, B>(self, listener: TcpListener, service: S)
    where
        S: HttpService<B>,
        B: ResponseBody,
    {
        let source = Source::Listener {
            listener,
            dealer: None,
        };
        self.serve_source(source, service).await;
    }

    /// The accept loop of [`Server::serve`] and of each thread of the per-core layouts:
    /// serves the connections `source` yields until shutdown, then drains.
    async fn serve_source<S, B>(self, mut source: Source, service: S)
    where
        S: HttpService<B>,
        B: ResponseBody,
    {
        let Self {
            options,
            handle,
            counter,
            signals,
            #[cfg(feature = "tls")]
            tls,
        } = self;
        let force = Signal::default();
        // Installed before the first accept, so a signal can never find the default action.
        let signals = options.handle_signals.then(|| {
            let given = signals
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take();
            let stop = given.unwrap_or_else(StopSignals::install);
            tokio::spawn(watch_signals(stop, handle.clone(), force.clone()))
        });
        let local_addr = source
            .local_addr()
            .unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0)));
        let shared = Arc::new(Shared {
            http1: http1_builder(&options),
            http2: http2_builder(&options),
            #[cfg(feature = "tls")]
            tls: tls.map(|tls| tls.acceptor(options.http2)),
            shutdown: handle.signal().clone(),
            options,
        });
        let refusing = Arc::new(AtomicUsize::new(0));
        let mut tasks = JoinSet::new();
        let mut stop = handle.wait();
        loop {
            tokio::select! {
                biased;
                () = &mut stop => break,
                next = source.next() => {
                    let served_here = match next {
                        Next::Accepted(stream, peer_addr) => {
                            let info = ConnectionInfo { peer_addr, local_addr };
                            admit(&shared, &counter, source.dealer(), &refusing, stream, info)
                        }
                        Next::Dealt(stream, info, permit) => Some((stream, info, permit)),
                        Next::Failed(error) => {
                            on_accept_error(error).await;
                            None
                        }
                    };
                    if let Some((stream, info, permit)) = served_here {
                        let connection = serve_connection(shared.clone(), service.clone(), stream, info, permit);
                        tasks.spawn(connection);
                    }
                }
                Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
            }
        }
        drop(source);
        drain(&shared.options, &counter, &force).await;
        tasks.shutdown().await;
        if let Some(signals) = signals {
            signals.abort();
        }
    }
}

/// Serves `service` on `listener` with `options` until Ctrl-C/SIGTERM (see [`Server`]).
pub async fn serve<S, B>(listener: TcpListener, service: S, options: ServerOptions)
where
    S: HttpService<B>,
    B: ResponseBody,
{
    Server::new(options).serve(listener, service).await;
}

/// Hyper's HTTP/1.1 connection builder with the options applied.
fn http1_builder(options: &ServerOptions) -> http1::Builder {
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(options.limits.handshake_timeout)
        .max_headers(options.limits.max_headers)
        .max_buf_size(options.limits.max_header_bytes.max(HYPER_MIN_BUF));
    builder
}

/// Per-stream receive window of HTTP/2 connections (RFC 9113 section 6.9.2): how much one
/// WebSocket's peer may send before the application reads it.
const H2_STREAM_WINDOW: u32 = 1024 * 1024;
/// Connection receive window: a multiple of the stream window, so that a few sockets whose
/// handlers stop reading cannot stall every other socket on the connection (RFC 9113 section
/// 5.2.1; each stalled stream holds at most its stream window of it).
const H2_CONNECTION_WINDOW: u32 = 16 * H2_STREAM_WINDOW;

/// Hyper's HTTP/2 connection builder: extended CONNECT on (`SETTINGS_ENABLE_CONNECT_PROTOCOL`
/// = 1, RFC 8441 section 3), header list bounded like an HTTP/1.1 head, fixed windows.
fn http2_builder(options: &ServerOptions) -> http2::Builder<TokioExecutor> {
    let mut builder = http2::Builder::new(TokioExecutor::new());
    builder
        .timer(TokioTimer::new())
        .enable_connect_protocol()
        .initial_stream_window_size(H2_STREAM_WINDOW)
        .initial_connection_window_size(H2_CONNECTION_WINDOW)
        .max_concurrent_streams(options.http2_max_streams)
        .max_header_list_size(u32::try_from(options.limits.max_header_bytes).unwrap_or(u32::MAX));
    builder
}

/// A connection this thread serves (counted), from a new one its listener accepted: `None`
/// when it was dealt to another thread, or refused with 503 because the server is full.
fn admit(
    shared: &Shared,
    counter: &ConnectionCounter,
    dealer: Option<&Dealer>,
    refusing: &Arc<AtomicUsize>,
    stream: TcpStream,
    info: ConnectionInfo,
) -> Option<(TcpStream, ConnectionInfo, Arc<ConnectionPermit>)> {
    let _ = stream.set_nodelay(true);
    let options = &shared.options;
    if counter.live() < options.limits.max_connections {
        let Some(dealer) = dealer else {
            return Some((stream, info, counter.acquire()));
        };
        return match dealer.deal(counter, stream, info) {
            Dealing::Kept(stream, permit) => Some((stream, info, permit)),
            Dealing::Passed => None,
        };
    }
    // Refusals are short-lived tasks; bound them too, and beyond that just close.
    let limit = options.limits.max_connections.max(64);
    if refusing.fetch_add(1, Ordering::Relaxed) >= limit {
        refusing.fetch_sub(1, Ordering::Relaxed);
        tracing::debug!(peer = %info.peer_addr, "server full; connection closed");
        return None;
    }
    tracing::debug!(peer = %info.peer_addr, "server full; answering 503");
    let retry_after = options.retry_after.as_secs().max(1);
    let refusal = Refusal::new(
        StatusCode::SERVICE_UNAVAILABLE,
        format!(
            "the server is at its limit of {} open connections; try again in {retry_after} s",
            options.limits.max_connections
        ),
    )
    .header("retry-after", retry_after.to_string());
    let refusing = refusing.clone();
    tokio::spawn(async move {
        refusal.send(stream).await;
        refusing.fetch_sub(1, Ordering::Relaxed);
    });
    None
}

/// Accept errors are not fatal: a connection reset before accept is skipped, and running out
/// of file descriptors pauses accepting briefly instead of spinning.
async fn on_accept_error(error: io::Error) {
    match error.kind() {
        io::ErrorKind::ConnectionAborted
        | io::ErrorKind::ConnectionReset
        | io::ErrorKind::Interrupted => {}
        _ => {
            tracing::warn!(%error, "accept failed; pausing briefly");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Waits for every connection to close, up to the drain deadline (or a second signal).
async fn drain(options: &ServerOptions, counter: &ConnectionCounter, force: &Signal) {
    let open = counter.live();
    if open == 0 {
        return;
    }
    tracing::info!(
        open,
        deadline = ?options.limits.drain_timeout,
        "shutting down: closing open connections (WebSockets get 1001)"
    );
    let drained = tokio::select! {
        done = tokio::time::timeout(options.limits.drain_timeout, counter.all_closed()) => done.is_ok(),
        () = force.waiter() => false,
    };
    if !drained {
        tracing::warn!(
            still_open = counter.live(),
            "drain ended before every connection closed; dropping the rest"
        );
    }
}

/// Ctrl-C or SIGTERM start the shutdown; a second one ends the drain at once.
async fn watch_signals(mut stop: StopSignals, handle: ShutdownHandle, force: Signal) {
    stop.recv().await;
    tracing::info!("shutdown requested; send the signal again to stop at once");
    handle.shutdown();
    stop.recv().await;
    force.fire();
}
