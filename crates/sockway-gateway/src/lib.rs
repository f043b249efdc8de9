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
//! - [`proxy`]: forwarding requests and WebSocket sessions; [`forwarding`]: the forwarding
//!   headers and `trustedProxies`.
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
pub mod forwarding;
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
    // Listening for the signals before the listeners open: one sent as soon as the gateway
    // announces itself is acted on instead of ending the process by its default action.
    let mut stop = sockway::server::StopSignals::install();
    let hangup = reload::Hangup::install();
    let gateway = Gateway::start_file(path).await?;
    let watcher = tokio::spawn(reload::watch(gateway.clone(), hangup));
    stop.recv().await;
    tracing::info!("stopping: closing listeners and draining sessions");
    watcher.abort();
    gateway.shutdown().await;
    Ok(())
}
