//! Front-end sockets: one accept loop per bound address (`bindAddress:port`; listeners that
//! share a port share it), TLS for `Https` ports with the certificate picked by SNI, the
//! framing guard, and hyper's automatic HTTP/1.1 / HTTP/2 server with upgrades and extended
//! CONNECT (RFC 8441) turned on. Every listener carries WebSockets; there is no switch, as
//! Azure Application Gateway has no user setting to turn WebSocket support on or off.
//!
//! A plain connection whose first bytes are not the HTTP/2 preface ([`crate::preface`]) is
//! served by hyper's HTTP/1 server directly, not through the automatic one: its IO type is
//! then one the WebSocket relay can take the socket back out of after an upgrade.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use crate::config::Protocol;
use crate::conn::ConnInfo;
use crate::error::GatewayError;
use crate::guard::{GuardState, HeadGuard};
use crate::preface::{self, Preface};
use crate::proxy;
use crate::proxy::front_socket::FrontSocket;
use crate::slots::Full;
use crate::slots::{ConnectionSlot, OpenConnections};
use crate::state::Shared;

/// A running accept loop.
#[derive(Debug)]
pub struct Front {
    /// The address actually bound.
    pub local_addr: SocketAddr,
    /// A duplicate of the listening socket, for handing it to a new process
    /// ([`crate::handover`]).
    /// Given up by [`Front::stop`], so that a stopped listener's port is closed.
    #[cfg(unix)]
    pub socket: std::sync::Mutex<Option<std::os::fd::OwnedFd>>,
    stop: watch::Sender<bool>,
}

impl Front {
    /// Stops accepting (open connections go on).
    pub fn stop(&self) {
        self.stop.send_replace(true);
        #[cfg(unix)]
        if let Ok(mut socket) = self.socket.lock() {
            socket.take();
        }
    }
}

/// Binds `address`.
pub async fn bind(address: SocketAddr) -> Result<TcpListener, GatewayError> {
    TcpListener::bind(address)
        .await
        .map_err(|source| GatewayError::Listen { address, source })
}

/// Starts accepting on `listener` for the listeners on `port`. `shutdown` asks every
/// connection of this loop to finish gracefully.
pub fn start(
    shared: Arc<Shared>,
    listener: TcpListener,
    port: u16,
    shutdown: watch::Receiver<bool>,
) -> Result<Front, GatewayError> {
    let local_addr = listener.local_addr().map_err(GatewayError::LocalAddress)?;
    #[cfg(unix)]
    let socket = {
        use std::os::fd::AsFd;
        std::sync::Mutex::new(listener.as_fd().try_clone_to_owned().ok())
    };
    let (stop, mut stop_rx) = watch::channel(false);
    let open = Arc::new(OpenConnections::default());
    tokio::spawn(async move {
        loop {
            let accepted = tokio::select! {
                a = listener.accept() => a,
                _ = stop_rx.wait_for(|s| *s) => break,
            };
            let (stream, peer) = match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!("accept on {local_addr}: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            };
            let _ = stream.set_nodelay(true);
            // Read at every accept, so that a reload changes the limits of a running listener.
            let runtime = shared.current();
            let limits = runtime.slot_limits(peer.ip());
            let permit = match ConnectionSlot::take(&open, &shared.clients, peer.ip(), limits) {
                Ok(permit) => permit,
                Err(full) => {
                    shared.metrics.refusal(full.reason());
                    tokio::spawn(too_many(stream, runtime.protocol(port), full));
                    continue;
                }
            };
            drop(runtime);
            let shared = shared.clone();
            let shutdown = shutdown.clone();
            tokio::spawn(connection(shared, stream, peer, port, shutdown, permit));
        }
    });
    Ok(Front {
        local_addr,
        #[cfg(unix)]
        socket,
        stop,
    })
}

/// Answers 503 on a plain connection beyond a limit (a TLS one is just closed).
async fn too_many(mut stream: TcpStream, protocol: Option<Protocol>, full: Full) {
    if protocol == Some(Protocol::Http) {
        let body = format!("{}\n", full.message());
        let response = format!(
            "HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain; charset=utf-8\r\n\
             content-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        );
        let _ = tokio::time::timeout(std::time::Duration::from_secs(1), async {
            let _ = stream.write_all(response.as_bytes()).await;
            let _ = stream.shutdown().await;
        })
        .await;
    }
}

async fn connection(
    shared: Arc<Shared>,
    stream: TcpStream,
    peer: SocketAddr,
    port: u16,
    mut shutdown: watch::Receiver<bool>,
    permit: ConnectionSlot,
) {
    let runtime = shared.current();
    let limits = runtime.limits.clone();
    match runtime.protocol(port) {
        None => {}
        Some(Protocol::Http) => {
            drop(runtime);
            // Bounded like the head that follows; a client that sends nothing in time is
            // left to the automatic server, as before.
            let sniff = tokio::time::timeout(limits.header_read_timeout, preface::sniff(&stream));
            let first = tokio::select! {
                first = sniff => first.unwrap_or(Preface::Unknown),
                _ = shutdown.wait_for(|s| *s) => return,
            };
            let how = Serve {
                secure: false,
                h2: false,
                http1_only: first == Preface::Http1,
                sni: None,
            };
            serve(shared, stream, peer, port, how, shutdown, permit).await;
        }
        Some(Protocol::Https) => {
            let Some(acceptor) = runtime.acceptors.get(&port).cloned() else {
                return;
            };
            drop(runtime);
            let front = FrontSocket::new(stream);
            let tls =
                tokio::time::timeout(limits.header_read_timeout, acceptor.accept(front)).await;
            let stream = match tls {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => {
                    tracing::debug!(client = %peer, "TLS handshake failed: {e}");
                    return;
                }
                Err(_) => return,
            };
            let mut stream = stream;
            let alpn = stream.get_ref().1.alpn_protocol().map(<[u8]>::to_vec);
            let h2 = alpn.as_deref() == Some(b"h2");
            // A client that chose HTTP/1.1 by ALPN speaks nothing else on this connection
            // (RFC 7301 section 3.2): hyper's HTTP/1 server directly, whose upgrades the
            // relay can take apart (see `upgraded.rs`). Without ALPN its first bytes tell, as
            // on plain TCP; the automatic server decides what they cannot.
            let http1_only = match alpn.as_deref() {
                Some(protocol) => protocol == b"http/1.1",
                None => {
                    let sniff = preface::sniff_tls(&mut stream);
                    let sniff = tokio::time::timeout(limits.header_read_timeout, sniff);
                    tokio::select! {
                        first = sniff => first.unwrap_or(Preface::Unknown) == Preface::Http1,
                        _ = shutdown.wait_for(|s| *s) => return,
                    }
                }
            };
            let sni = stream.get_ref().1.server_name().map(str::to_owned);
            let how = Serve {
                secure: true,
                h2,
                http1_only,
                sni,
            };
            serve(shared, stream, peer, port, how, shutdown, permit).await;
        }
    }
}

/// How to serve a connection.
#[derive(Debug, Clone)]
struct Serve {
    /// Over TLS.
    secure: bool,
    /// HTTP/2 negotiated by ALPN.
    h2: bool,
    /// Known to be HTTP/1: hyper's HTTP/1 server directly.
    http1_only: bool,
    /// The TLS server name the client sent.
    sni: Option<String>,
}

async fn serve<S>(
    shared: Arc<Shared>,
    stream: S,
    peer: SocketAddr,
    port: u16,
    Serve {
        secure,
        h2,
        http1_only,
        sni,
    }: Serve,
    shutdown: watch::Receiver<bool>,
    permit: ConnectionSlot,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let limits = shared.current().limits.clone();
    let guard = GuardState::new();
    let io = HeadGuard::new(stream, guard.clone(), limits.max_header_bytes, h2);
    let conn = Arc::new(ConnInfo {
        peer,
        local_port: port,
        secure,
        sni,
        guard,
        permit,
    });
    let service = service_fn(move |request| proxy::serve(shared.clone(), conn.clone(), request));
    let io = TokioIo::new(io);
    if http1_only {
        let mut builder = http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(limits.header_read_timeout);
        let connection = builder.serve_connection(io, service).with_upgrades();
        let graceful = |c: Pin<&mut _>| http1::UpgradeableConnection::graceful_shutdown(c);
        drive(
            connection,
            graceful,
            peer,
            shutdown,
            limits.shutdown_timeout,
        )
        .await;
        return;
    }
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(limits.http2_max_streams)
        .enable_connect_protocol();
    let connection = builder.serve_connection_with_upgrades(io, service);
    let graceful = |c: Pin<&mut _>| auto::UpgradeableConnection::graceful_shutdown(c);
    drive(
        connection,
        graceful,
        peer,
        shutdown,
        limits.shutdown_timeout,
    )
    .await;
}

/// Serves `connection` until it ends or `shutdown`; then `graceful` asks it to finish the
/// requests in progress, which get `shutdown_timeout` (`limits.shutdownTimeout`).
async fn drive<C, E>(
    connection: C,
    graceful: impl FnOnce(Pin<&mut C>),
    peer: SocketAddr,
    mut shutdown: watch::Receiver<bool>,
    shutdown_timeout: std::time::Duration,
) where
    C: Future<Output = Result<(), E>>,
    E: std::fmt::Display,
{
    tokio::pin!(connection);
    tokio::select! {
        result = connection.as_mut() => {
            if let Err(e) = result {
                tracing::debug!(client = %peer, "connection ended: {e}");
            }
            return;
        }
        _ = shutdown.wait_for(|s| *s) => {}
    }
    graceful(connection.as_mut());
    let _ = tokio::time::timeout(shutdown_timeout, connection).await;
}
