//! # sockway-gateway
//!
//! A WebSocket-aware application gateway in the shape of Azure Application Gateway:
//! `httpListeners` (HTTP and HTTPS, multi-site by host name and SNI) route through
//! `requestRoutingRules` (`Basic` or `PathBasedRouting` with `urlPathMaps`) to
//! `backendAddressPools`, talking to backends with `backendHttpSettingsCollection` (port,
//! protocol, request timeout, cookie affinity, connection draining) and watching them with
//! `probes`. WebSockets need no switch: every listener forwards the upgrade handshake and
//! relays the session; the request timeout is the session's idle limit.
//!
//! The public surface is [`config`] (the model, parsed once with every error and its path),
//! [`Gateway`] and [`run`] (running it, reloads through [`reload`], the zero-downtime
//! upgrade through [`handover`]) and [`tls`] (certificate loading). Inside, modules depend
//! one way, each only on those before it:
//!
//! 1. `config`: the typed model; a leaf.
//! 2. `routing`, `balance`: pure routing and backend choice.
//! 3. `pool` (live backends, health, counters), with `outlier` (passive health), `drain`
//!    (the session registry) and `metrics`.
//! 4. `probe` (health probes) and `proxy` (forwarding requests, relaying WebSocket
//!    sessions, the backend connection cache), over `state` (the live configuration
//!    generation), `conn` (what is known about a client connection), `forwarding`,
//!    `access_log`, `guard` and `slots`.
//! 5. `listener`: accepting connections, TLS, the HTTP/1.1 and HTTP/2 servers.
//! 6. `gateway`, `admin`, `reload`, `handover`: the running gateway.
//!
//! See `docs/gateway.md` for the configuration reference and behaviour.

#![warn(missing_docs)]

mod access_log;
mod admin;
mod balance;
pub mod config;
mod conn;
mod drain;
mod error;
mod forwarding;
mod gateway;
mod guard;
pub mod handover;
mod health_view;
mod listener;
mod metrics;
mod outlier;
mod pool;
mod preface;
mod probe;
mod proxy;
pub mod reload;
mod routing;
mod slots;
mod state;
pub mod tls;

pub use error::GatewayError;
pub use gateway::Gateway;
pub use health_view::BackendHealth;

/// Runs the gateway from `path` until Ctrl-C or SIGTERM, reloading on SIGHUP and when the
/// file changes, then shuts down cleanly. If a gateway already runs with the same file, this
/// one takes over its listening sockets and the old one drains and exits ([`handover`]).
pub async fn run(path: &std::path::Path) -> Result<(), GatewayError> {
    // Listening for the signals before the listeners open: one sent as soon as the gateway
    // announces itself is acted on instead of ending the process by its default action.
    let mut stop = sockway::server::StopSignals::install();
    let hangup = reload::Hangup::install();
    run_until(path, hangup, async move { stop.recv().await }).await
}

/// After a hand-over, how long the old process keeps its connections before it asks idle
/// ones to close: enough for a client that connected just before to send its request.
const HANDOVER_LINGER: std::time::Duration = std::time::Duration::from_secs(1);

/// [`run`], stopping when `stop` completes instead of on a signal, or when a newer gateway
/// started with the same file has taken the sockets over; either way it then shuts down as
/// [`Gateway::shutdown`] does (sessions get `shutdownTimeout`, then close 1001).
pub async fn run_until(
    path: &std::path::Path,
    hangup: reload::Hangup,
    stop: impl std::future::Future<Output = ()>,
) -> Result<(), GatewayError> {
    let config = config::load(path)?;
    let socket_path = handover::socket_path(path);
    let mut inherited = handover::Inherited::default();
    #[cfg(unix)]
    let taken = match handover::take_over(&socket_path).await {
        Some((sockets, taken)) => {
            tracing::info!(
                sockets = sockets.len(),
                "taking over from the running gateway"
            );
            inherited = sockets;
            Some(taken)
        }
        None => None,
    };
    let gateway = Gateway::start_inherited(config, Some(path.to_owned()), &mut inherited).await?;
    #[cfg(unix)]
    if let Some(taken) = taken {
        if taken.ready().await {
            tracing::info!("the previous gateway stopped accepting; it drains its sessions");
        } else {
            tracing::warn!("the previous gateway did not confirm the hand-over");
        }
    }
    let watcher = tokio::spawn(reload::watch(gateway.clone(), hangup));
    #[cfg(unix)]
    let listener = handover::listen(&socket_path);
    #[cfg(unix)]
    let owns_socket = listener.is_ok();
    #[cfg(not(unix))]
    let owns_socket = false;
    #[cfg(unix)]
    let handed_over = {
        let serving = gateway.clone();
        let socket_path = socket_path.clone();
        async move {
            match listener {
                Ok(l) => handover::serve(l, socket_path, move || serving.handover_sockets()).await,
                Err(e) => {
                    tracing::warn!("no zero-downtime upgrade for this process: {e}");
                    std::future::pending().await
                }
            }
        }
    };
    #[cfg(not(unix))]
    let handed_over = std::future::pending::<()>();
    tokio::select! {
        () = stop => {
            tracing::info!("stopping: closing listeners and draining sessions");
            // Not handed over, so the hand-over socket is still this process's own.
            if owns_socket {
                let _ = std::fs::remove_file(&socket_path);
            }
        }
        () = handed_over => {
            tracing::info!("a new gateway took over: draining sessions");
            // Connections accepted just before the new process took over get time to send
            // their request, which is then served, before idle ones are closed.
            gateway.stop_accepting();
            tokio::time::sleep(HANDOVER_LINGER).await;
        }
    }
    watcher.abort();
    gateway.shutdown().await;
    Ok(())
}

/// For the fuzz targets only (the routing module is private): builds the route table of a
/// configuration that loaded without issues and looks up a few hosts and paths in it, which
/// must not panic whatever the configuration holds.
#[doc(hidden)]
pub fn fuzz_route_lookups(config: &config::GatewayConfig) {
    let table = routing::RouteTable::build(config);
    for listener in &config.http_listeners {
        let hosts = listener.host_names.iter().map(String::as_str).map(Some);
        for host in hosts.chain([None, Some("unknown.invalid"), Some("")]) {
            if let Some(route) = table.listener(listener.port, host) {
                for path in ["/", "/a/b", "/A/%2e%2e/", ""] {
                    let _ = route.route(path);
                }
            }
        }
    }
    let _ = table.upstreams();
}
