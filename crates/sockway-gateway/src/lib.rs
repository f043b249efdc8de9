//! # sockway-gateway
//!
//! A WebSocket-aware application gateway in the shape of Azure Application Gateway (the
//! seed 003): `httpListeners` (HTTP and HTTPS, multi-site by host name and SNI) route through
//! `requestRoutingRules` (`Basic` or `PathBasedRouting` with `urlPathMaps`) to
//! `backendAddressPools`, talking to backends with `backendHttpSettingsCollection` (port,
//! protocol, request timeout, cookie affinity, connection draining) and watching them with
//! `probes`. WebSockets need no switch: every listener forwards the upgrade handshake and
//! relays the session; the request timeout is the session's idle limit.
//!
//! - [`config`]: the model (JSON or TOML), defaults and validation with exact error paths.
//! - [`routing`], [`balance`]: pure routing and backend choice.
//! - [`probe`]: HTTP, HTTPS and WebSocket health probes.
//! - [`proxy`]: forwarding requests and WebSocket sessions.
//! - [`Gateway`]: running it, reloads ([`reload`]), draining ([`drain`]), shutdown.
//! - [`metrics`], [`access_log`]: observability.
//!
//! See `docs/gateway.md` for the configuration reference and behaviour.

#![warn(missing_docs)]

pub mod access_log;
mod admin;
pub mod balance;
pub mod config;
pub mod drain;
mod gateway;
pub mod guard;
pub mod listener;
pub mod metrics;
pub mod pool;
pub mod preface;
pub mod probe;
pub mod proxy;
pub mod reload;
pub mod routing;
pub mod state;
pub mod tls;

pub use gateway::{BackendHealth, Gateway};

/// Runs the gateway from `path` until Ctrl-C or SIGTERM, reloading on SIGHUP and when the
/// file changes, then shuts down cleanly.
pub async fn run(path: &std::path::Path) -> Result<(), String> {
    let gateway = Gateway::start_file(path).await?;
    let watcher = tokio::spawn(reload::watch(gateway.clone()));
    wait_for_stop().await;
    tracing::info!("stopping: closing listeners and draining sessions");
    watcher.abort();
    gateway.shutdown().await;
    Ok(())
}

async fn wait_for_stop() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = match signal(SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
                return;
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
