//! What an accepted WebSocket's handler learns about the request that opened it.

use std::net::SocketAddr;

use bytes::BytesMut;
use http::{uri, HeaderMap, HeaderValue, Uri, Version};
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
///
/// It is one pointer wide (the parts live in one box), so a handler that keeps it for the
/// socket's lifetime adds a few bytes to its task, not the size of every part; dropping it
/// early frees the copied request headers.
#[derive(Debug, Clone)]
pub struct UpgradeInfo {
    parts: Box<RequestParts>,
}

/// What [`UpgradeInfo`] holds.
#[derive(Debug, Clone)]
pub(crate) struct RequestParts {
    pub(crate) uri: Uri,
    pub(crate) headers: HeaderMap,
    pub(crate) http_version: Version,
    pub(crate) kind: RequestKind,
    pub(crate) origin: Option<String>,
    pub(crate) offered_subprotocols: Vec<String>,
    pub(crate) subprotocol: Option<String>,
    pub(crate) compression: Option<DeflateParams>,
    pub(crate) peer_addr: Option<SocketAddr>,
}

impl UpgradeInfo {
    pub(crate) fn new(parts: RequestParts) -> Self {
        Self {
            parts: Box::new(parts),
        }
    }

    pub(crate) fn parts_mut(&mut self) -> &mut RequestParts {
        &mut self.parts
    }

    /// The request target (path and query; for HTTP/2 also the `:authority`).
    pub fn uri(&self) -> &Uri {
        &self.parts.uri
    }

    /// The request headers as the client sent them.
    pub fn headers(&self) -> &HeaderMap {
        &self.parts.headers
    }

    /// The HTTP version: 1.1 for an upgrade, 2 for an extended CONNECT (RFC 8441).
    pub fn http_version(&self) -> Version {
        self.parts.http_version
    }

    /// Whether the socket arrived as an HTTP/1.1 upgrade or an extended CONNECT.
    pub fn kind(&self) -> RequestKind {
        self.parts.kind
    }

    /// The client's `Origin`, if it sent one (RFC 6455 section 10.2).
    pub fn origin(&self) -> Option<&str> {
        self.parts.origin.as_deref()
    }

    /// The subprotocols the client offered, in its order of preference.
    pub fn offered_subprotocols(&self) -> &[String] {
        &self.parts.offered_subprotocols
    }

    /// The subprotocol chosen (RFC 6455 section 4.2.2 item 5.4), if any.
    pub fn subprotocol(&self) -> Option<&str> {
        self.parts.subprotocol.as_deref()
    }

    /// The permessage-deflate parameters agreed (RFC 7692), if compression was negotiated.
    pub fn compression(&self) -> Option<DeflateParams> {
        self.parts.compression
    }

    /// The client's address, when the server runner (or the application) recorded a
    /// [`ConnectionInfo`] in the request's extensions.
    pub fn peer_addr(&self) -> Option<SocketAddr> {
        self.parts.peer_addr
    }
}

impl UpgradeInfo {
    /// Copies of `headers` and `uri` in storage of their own. hyper's values are slices of its
    /// HTTP/1 read buffer (16 KiB here), so keeping clones of them in an `UpgradeInfo`, which
    /// lives as long as the socket's handler, would keep that whole buffer alive. Public for
    /// anything else that keeps a request's headers as long as a connection (sockway-hub's
    /// `ConnectionInfo`).
    pub fn owned_request_parts(uri: &Uri, headers: &HeaderMap) -> (Uri, HeaderMap) {
        (owned_uri(uri), owned_headers(headers))
    }
}

/// `uri` rebuilt from copies of its parts; a clone if a part does not parse again.
fn owned_uri(uri: &Uri) -> Uri {
    let copied = (|| {
        let mut parts = uri::Parts::default();
        parts.scheme = uri.scheme_str().map(str::parse).transpose().ok()?;
        parts.authority = uri
            .authority()
            .map(|a| a.as_str().parse())
            .transpose()
            .ok()?;
        parts.path_and_query = uri
            .path_and_query()
            .map(|p| p.as_str().parse())
            .transpose()
            .ok()?;
        Uri::from_parts(parts).ok()
    })();
    copied.unwrap_or_else(|| uri.clone())
}

/// `headers` with every value copied, all into one buffer (one allocation, not one per value;
/// names hyper did not know are copied by hyper already).
fn owned_headers(headers: &HeaderMap) -> HeaderMap {
    let total: usize = headers.values().map(|value| value.len()).sum();
    let mut storage = BytesMut::with_capacity(total);
    for value in headers.values() {
        storage.extend_from_slice(value.as_bytes());
    }
    let mut storage = storage.freeze();
    let mut owned = HeaderMap::with_capacity(headers.len());
    for (name, value) in headers {
        let bytes = storage.split_to(value.len());
        let mut copy = HeaderValue::from_maybe_shared(bytes).unwrap_or_else(|_| value.clone());
        copy.set_sensitive(value.is_sensitive());
        owned.append(name.clone(), copy);
    }
    owned
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

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use http::header::{COOKIE, HOST};

    #[test]
    fn request_parts_are_copied_out_of_the_read_buffer() {
        let buffer = Bytes::from_static(b"chat.example session=abc");
        let mut headers = HeaderMap::new();
        headers.append(
            HOST,
            HeaderValue::from_maybe_shared(buffer.slice(..12)).unwrap(),
        );
        let mut cookie = HeaderValue::from_maybe_shared(buffer.slice(13..)).unwrap();
        cookie.set_sensitive(true);
        headers.append(COOKIE, cookie);
        headers.append("x-custom", HeaderValue::from_static("a"));
        headers.append("x-custom", HeaderValue::from_static("b"));
        for text in ["/ws?room=1", "https://chat.example:8443/ws", "*"] {
            let uri: Uri = text.parse().unwrap();
            let (owned_uri, owned) = UpgradeInfo::owned_request_parts(&uri, &headers);
            assert_eq!(owned_uri, uri);
            assert_eq!(owned, headers);
            assert!(owned[COOKIE].is_sensitive());
            let range = buffer.as_ptr_range();
            for value in owned.values() {
                assert!(!range.contains(&value.as_bytes().as_ptr()));
            }
        }
    }
}
