//! What an accepted WebSocket's handler learns about the request that opened it.

use std::net::SocketAddr;

use http::{HeaderMap, Uri, Version};
use sockway_proto::deflate::DeflateParams;
use sockway_proto::handshake::RequestKind;

/// The addresses of the TCP connection a request arrived on. The [`super::Server`] runner puts
/// one into every request's extensions (`request.extensions().get::<ConnectionInfo>()`, or
/// axum's `Extension<ConnectionInfo>`), so handlers can log or rate-limit by peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionInfo {
    /// The client's address.
    pub peer_addr: SocketAddr,
    /// The local address the connection was accepted on.
    pub local_addr: SocketAddr,
}

/// The request behind an accepted WebSocket: given to [`super::WebSocketLayer`] handlers and
/// available from [`super::PendingWebSocket::info`], so an application can route on the path,
/// read cookies or an auth header, and log the peer, after the handshake is done.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct UpgradeInfo {
    /// The request target (path and query; for HTTP/2 also the `:authority`).
    pub uri: Uri,
    /// The request headers as the client sent them.
    pub headers: HeaderMap,
    /// The HTTP version: 1.1 for an upgrade, 2 for an extended CONNECT (RFC 8441).
    pub http_version: Version,
    /// Whether the socket arrived as an HTTP/1.1 upgrade or an extended CONNECT.
    pub kind: RequestKind,
    /// The client's `Origin`, if it sent one (RFC 6455 section 10.2).
    pub origin: Option<String>,
    /// The subprotocols the client offered, in its order of preference.
    pub offered_subprotocols: Vec<String>,
    /// The subprotocol chosen (RFC 6455 section 4.2.2 item 5.4), if any.
    pub subprotocol: Option<String>,
    /// The permessage-deflate parameters agreed (RFC 7692), if compression was negotiated.
    pub compression: Option<DeflateParams>,
    /// The client's address, when the server runner (or the application) recorded a
    /// [`ConnectionInfo`] in the request's extensions.
    pub peer_addr: Option<SocketAddr>,
}

/// What a TLS connection negotiated. The [`super::Server`] runner, when serving TLS
/// ([`super::Server::tls`]), puts one into every request's extensions next to the
/// [`ConnectionInfo`], so a handler can tell `https://`/`wss://` from plain requests and see
/// which protocol ALPN chose (RFC 7301).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TlsInfo {
    /// The application protocol agreed through ALPN (RFC 7301 section 3): `h2` for HTTP/2
    /// (RFC 9113 section 3.2), `http/1.1`, or `None` when the client offered none (it then
    /// speaks HTTP/1.1).
    pub alpn: Option<Vec<u8>>,
    /// The host name the client asked for with SNI (RFC 6066 section 3), if it sent one.
    pub server_name: Option<String>,
}
