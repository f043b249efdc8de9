//! The three transports of `TransportProtocols.md` and what they share: looking up the
//! connection a request names, the refusals with the reference server's status codes and
//! texts, and the response body type.

pub(crate) mod long_polling;
pub(crate) mod post;
pub(crate) mod sse;
pub(crate) mod websocket;

use std::sync::Arc;

use http::{Response, StatusCode};

use crate::connections::{Connection, TransportRefusal};
use crate::link::{ConnectionInfo, RequestHead, TransportKind};
use crate::query::query_param;
use crate::service::HubShared;
use crate::token;

pub(crate) use crate::response::{full, no_cache, text};
pub use crate::response::{BoxError, HubBody};

/// The `id` of a request, if present and not empty.
pub(crate) fn request_token(uri: &http::Uri) -> Option<String> {
    query_param(uri.query(), "id").filter(|id| !id.is_empty())
}

/// Why a request names no connection this server holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Unknown {
    /// No `id` in the query: 400 "Connection ID required".
    NoId,
    /// An `id` this server does not hold, or one it did not sign: 404.
    NotHeld,
}

impl Unknown {
    /// The reference server's answer.
    pub(crate) fn response(self) -> Response<HubBody> {
        match self {
            Unknown::NoId => text(StatusCode::BAD_REQUEST, "Connection ID required"),
            Unknown::NotHeld => text(StatusCode::NOT_FOUND, "No Connection with that ID"),
        }
    }
}

/// The connection a request names by `?id=`. A token that does not carry this server's
/// signature is refused before any lookup, the same way as an unknown one.
pub(crate) fn lookup(shared: &HubShared, uri: &http::Uri) -> Result<Arc<Connection>, Unknown> {
    let id = request_token(uri).ok_or(Unknown::NoId)?;
    token::verify(&shared.options.token_key, &id)
        .and_then(|_| shared.store.get(&id))
        .ok_or(Unknown::NotHeld)
}

/// The response for a request that cannot attach to its connection.
pub(crate) fn refusal(refusal: TransportRefusal) -> Response<HubBody> {
    match refusal {
        TransportRefusal::Gone => text(StatusCode::NOT_FOUND, "No Connection with that ID"),
        TransportRefusal::AlreadyActive => text(
            StatusCode::CONFLICT,
            "another request of this transport is already active on the connection",
        ),
        TransportRefusal::CannotChange => text(
            StatusCode::BAD_REQUEST,
            "Cannot change transports mid-connection",
        ),
    }
}

/// The name of a transport in `availableTransports`, and the transfer formats it carries
/// (Server-Sent Events carry text only).
pub fn transport_entry(kind: TransportKind) -> (&'static str, &'static [&'static str]) {
    match kind {
        TransportKind::WebSockets => ("WebSockets", &["Text", "Binary"]),
        TransportKind::ServerSentEvents => ("ServerSentEvents", &["Text"]),
        TransportKind::LongPolling => ("LongPolling", &["Text", "Binary"]),
    }
}

/// The 404 for a transport this endpoint does not offer (ASP.NET Core's wording).
pub(crate) fn not_offered(kind: TransportKind) -> Response<HubBody> {
    let (name, _) = transport_entry(kind);
    text(
        StatusCode::NOT_FOUND,
        format!("{name} transport not supported by this end point type"),
    )
}

/// What the hub is told about a connection whose transport this request starts.
pub(crate) fn connection_info<B>(
    connection: &Connection,
    kind: TransportKind,
    user: Option<String>,
    request: &http::Request<B>,
) -> ConnectionInfo {
    // Copies: hyper's header values and URI are slices of its read buffer, which clones
    // would keep alive (8 KiB or more) for as long as the connection lasts.
    let head = RequestHead::new(request.uri(), request.headers(), &HANDSHAKE_HEADERS);
    ConnectionInfo {
        connection_id: connection.id.clone(),
        user,
        transport: kind,
        stateful_reconnect: connection.stateful,
        request: head,
        peer_addr: request
            .extensions()
            .get::<sockway::server::ConnectionInfo>()
            .map(|info| info.peer_addr),
    }
}

/// The WebSocket handshake's own headers (RFC 6455 section 4.1, and RFC 7692's extension
/// offer), left out of [`ConnectionInfo::request`]: they say nothing to the hub once the
/// socket is open, and each kept costs a connection memory for as long as it lasts
/// (docs/benchmarks/hub.md, "Idle memory").
static HANDSHAKE_HEADERS: [http::HeaderName; 5] = [
    http::header::CONNECTION,
    http::header::UPGRADE,
    http::header::SEC_WEBSOCKET_KEY,
    http::header::SEC_WEBSOCKET_VERSION,
    http::header::SEC_WEBSOCKET_EXTENSIONS,
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_handshake_headers_are_not_kept() {
        let request = http::Request::builder()
            .uri("/hub?id=abc")
            .header("host", "example.test")
            .header("connection", "Upgrade")
            .header("upgrade", "websocket")
            .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
            .header("sec-websocket-version", "13")
            .header("sec-websocket-extensions", "permessage-deflate")
            .header("cookie", "session=1")
            .body(())
            .unwrap();
        let head = RequestHead::new(request.uri(), request.headers(), &HANDSHAKE_HEADERS);
        let names: Vec<&str> = head.headers().iter().map(|(name, _)| name).collect();
        assert_eq!(names, ["host", "cookie"]);
        assert_eq!(head.query(), Some("id=abc"));
    }
}
