//! Accepting WebSockets in a hyper, tower or axum server (ASP.NET Core's `UseWebSockets`,
//! `IsWebSocketRequest` and `AcceptWebSocketAsync`).
//!
//! Pick the level that fits:
//!
//! - **Any hyper route**: [`is_websocket_request`] tells whether a request asks for a
//!   WebSocket; [`accept`] checks the handshake against [`AcceptOptions`] and returns the
//!   response to send (101 for an HTTP/1.1 upgrade, 200 for an HTTP/2 extended CONNECT,
//!   RFC 8441) together with a [`PendingWebSocket`] that resolves to the
//!   [`ServerWebSocket`] once the response is out. Refusals come back as a [`Rejection`]
//!   that is a ready response with a body saying why. [`Handshake`] splits `accept` in two
//!   for code that wants to look at the request first.
//! - **Tower middleware**: [`WebSocketLayer`] accepts WebSocket requests with its options and
//!   runs a handler `Fn(ServerWebSocket, UpgradeInfo) -> Future` in a task; other requests
//!   fall through to the wrapped service.
//! - **axum** (feature `axum`): the `axum::WebSocketUpgrade` extractor (module `server::axum`).
//! - **The runner**: [`Server`] serves any of the above with server-wide limits
//!   ([`ServerOptions`]: handshake timeout, connection count, header size) and a graceful
//!   shutdown that closes every open WebSocket with 1001. It speaks HTTP/1.1 and HTTP/2
//!   (RFC 9113, with extended CONNECT, RFC 8441) on one port, optionally over TLS
//!   ([`Server::tls`], feature `tls`) where ALPN (RFC 7301) picks the version per connection.
//!   The same handler serves sockets of both versions; [`UpgradeInfo::http_version`] tells
//!   which one a socket arrived over. [`Server::serve_per_core`] runs it as one
//!   single-threaded runtime per thread on [`reuse_port_listeners`] instead, and
//!   [`Server::serve_threads`] as one per thread on one listener whose connections thread 0
//!   deals to the thread with the fewest.
//!
//! The accepted socket is `Send + 'static`: keep it in the handler, or hand it to a background
//! task (see the `broadcaster` example). Dropping an open socket closes it with 1001.

#[cfg(feature = "axum")]
pub mod axum;
mod info;
mod layer;
mod options;
mod rejection;
mod runner;
mod shutdown;
mod signals;
mod stream;
mod upgrade;

pub use info::{ConnectionInfo, TlsInfo, UpgradeInfo};
pub use layer::{service_fn, ServiceFn, WebSocketLayer, WebSocketService};
pub use options::AcceptOptions;
pub use rejection::Rejection;
pub use runner::{reuse_port_listeners, serve, HttpService, ResponseBody, Server, ServerOptions};
#[cfg(feature = "tls")]
pub use runner::{ServerTls, TlsConfigError};
pub use shutdown::ShutdownHandle;
pub use signals::StopSignals;
pub use sockway_proto::handshake::{InvalidOrigin, OriginPolicy};
pub use stream::ServerStream;
/// tower's `Layer` trait, re-exported so applications can apply [`WebSocketLayer`] without
/// another dependency.
pub use tower_layer::Layer;
/// tower's `Service` trait, re-exported so applications can write services for [`Server`]
/// without another dependency.
pub use tower_service::Service;
pub use upgrade::{
    accept, is_websocket_request, Body, Handshake, PendingWebSocket, ServerWebSocket,
};
