//! Opening handshake rules (RFC 6455 section 4), independent of the HTTP version.
//!
//! A WebSocket connection starts either as an HTTP/1.1 `GET` with `Upgrade: websocket`
//! (RFC 6455 section 4) or as an HTTP/2 (or HTTP/3) extended CONNECT stream whose `:protocol`
//! pseudo-header is `websocket` (RFC 8441 section 4 and 5, RFC 9220). Both carry the same
//! WebSocket header fields (`Sec-WebSocket-Version`, `-Protocol`, `-Extensions`, `Origin`); only
//! the HTTP/1.1 form has the `Sec-WebSocket-Key`/`-Accept` exchange and the `Upgrade`/`Connection`
//! headers. This module holds those rules as plain functions over [`http::Method`],
//! [`http::Version`], [`http::HeaderMap`] and [`http::StatusCode`], so the HTTP/1.1 server, the
//! HTTP/2 server, the client and the gateway all share one implementation and no I/O happens
//! here.
//!
//! - [`server`]: [`validate_request`] turns a request into a [`ClientOffer`] or a
//!   [`HandshakeError`] (which knows its status code and headers); [`select_subprotocol`] and
//!   [`response_headers`] build the answer.
//! - [`client`]: [`generate_key`], the [`RequestHeaders`] builder and [`validate_response`].
//! - [`head`]: HTTP/1.1 heads, sans-I/O: [`find_head_end`], [`check_head`] against
//!   [`HeadLimits`], [`parse_request`], [`parse_response`], the HTTP/2 [`H2_PREFACE`].
//! - [`answer`]: the whole server side in one call, as python-websockets'
//!   `ServerProtocol.accept` / `reject`: [`accept`] takes request head bytes and gives an
//!   [`Accepted`] handshake or a [`Refusal`]; [`check_origin`] applies the one [`OriginPolicy`].
//! - [`headers`]: the shared header grammar: token lists ([`header_has_token`]) and the
//!   `Sec-WebSocket-Extensions` grammar ([`parse_extensions`], [`ExtensionOffer`]).

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use http::{Method, StatusCode, Version};
use sha1::{Digest, Sha1};

pub mod answer;
pub mod client;
pub mod head;
pub mod headers;
pub mod limits;
pub mod origin;
pub mod server;

pub use answer::{
    accept, agree, check_origin, mark_plain_text, Accepted, Agreement, Refusal, ServerRules,
};
pub use head::{
    check_head, find_head_end, parse_request, parse_response, HeadError, RequestHead, ResponseHead,
    H2_PREFACE,
};
pub use limits::HeadLimits;
pub use origin::{InvalidOrigin, OriginPolicy};

pub use client::{
    generate_key, host_header_value, validate_response, Negotiated, RequestHeaders, ResponseError,
};
pub use headers::{
    extensions_to_header_value, header_has_token, is_token, parse_extension_list, parse_extensions,
    ExtensionError, ExtensionErrorReason, ExtensionOffer,
};
pub use server::{
    response_headers, select_subprotocol, validate_request, ClientOffer, HandshakeError,
};

/// The GUID appended to `Sec-WebSocket-Key` before hashing (RFC 6455 section 1.3 and 4.2.2
/// item 5.4); fixed by the protocol so that only a WebSocket-aware server can compute the answer.
pub const WEBSOCKET_GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// The only protocol version this crate speaks, as it appears in `Sec-WebSocket-Version`
/// (RFC 6455 section 4.1 item 9 and section 11.6).
pub const WEBSOCKET_VERSION: &str = "13";

/// The upgrade token naming the protocol, used in `Upgrade` (RFC 6455 section 4.1 item 5) and
/// as the `:protocol` pseudo-header of an extended CONNECT (RFC 8441 section 5).
pub const WEBSOCKET_PROTOCOL: &str = "websocket";

/// How the opening handshake is carried. The WebSocket header rules are shared; what differs is
/// the method, the upgrade headers, the key/accept exchange and the success status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RequestKind {
    /// HTTP/1.1 `GET` with `Upgrade: websocket` and `Connection: Upgrade`, answered by
    /// `101 Switching Protocols` carrying `Sec-WebSocket-Accept` (RFC 6455 section 4.1, 4.2).
    Upgrade,
    /// HTTP/2 (RFC 8441 section 4 and 5) or HTTP/3 (RFC 9220) `CONNECT` with
    /// `:protocol = websocket`, answered by `200 OK`; no key, no accept, no upgrade headers.
    ExtendedConnect,
}

impl RequestKind {
    /// The kind a request of this HTTP version must use: HTTP/2 and HTTP/3 have no `Upgrade`
    /// mechanism (RFC 9113 section 8.6) and bootstrap WebSockets with extended CONNECT
    /// (RFC 8441 section 4, RFC 9220 section 3); every earlier version uses the HTTP/1.1 upgrade
    /// (HTTP/1.0 and 0.9 are then refused by [`validate_request`], RFC 6455 section 4.1 item 2).
    pub fn for_version(version: Version) -> RequestKind {
        if version == Version::HTTP_2 || version == Version::HTTP_3 {
            RequestKind::ExtendedConnect
        } else {
            RequestKind::Upgrade
        }
    }

    /// The request method this kind requires: `GET` (RFC 6455 section 4.1 item 2) or `CONNECT`
    /// (RFC 8441 section 4). Also the value of the `Allow` header when another method is refused.
    pub fn method(self) -> Method {
        match self {
            RequestKind::Upgrade => Method::GET,
            RequestKind::ExtendedConnect => Method::CONNECT,
        }
    }
}

/// The status a server sends to accept the handshake: `101 Switching Protocols` for an HTTP/1.1
/// upgrade (RFC 6455 section 4.2.2 item 5.1), `200 OK` for extended CONNECT (RFC 8441 section 5).
pub fn response_status(kind: RequestKind) -> StatusCode {
    match kind {
        RequestKind::Upgrade => StatusCode::SWITCHING_PROTOCOLS,
        RequestKind::ExtendedConnect => StatusCode::OK,
    }
}

/// Computes `Sec-WebSocket-Accept` for a `Sec-WebSocket-Key`: the base64 encoding of the SHA-1
/// of the key (as sent, not decoded) followed by [`WEBSOCKET_GUID`] (RFC 6455 section 4.2.2 item
/// 5.4). It proves the server read the request as a WebSocket handshake; it is no security
/// measure. Pass the trimmed header value's bytes.
pub fn accept_key(key: &[u8]) -> String {
    let mut sha1 = Sha1::new();
    sha1.update(key);
    sha1.update(WEBSOCKET_GUID.as_bytes());
    STANDARD.encode(sha1.finalize())
}

/// Whether `key` is a valid `Sec-WebSocket-Key`: the base64 encoding (standard alphabet,
/// canonical padding) of exactly 16 bytes (RFC 6455 section 4.1 item 7, section 4.2.1 item 5).
/// The length is checked before decoding so that an oversized value costs nothing.
pub(crate) fn is_valid_key(key: &str) -> bool {
    // 16 bytes encode to 22 significant characters plus "==".
    key.len() == 24
        && STANDARD
            .decode(key.as_bytes())
            .is_ok_and(|bytes| bytes.len() == 16)
}

/// Why request or response headers could not be built from caller-supplied values: the builders
/// ([`RequestHeaders::build`], [`response_headers`]) refuse to emit a handshake the peer would
/// have to reject, instead of panicking or sending it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BuildError {
    /// An HTTP/1.1 upgrade needs a `Sec-WebSocket-Key` (RFC 6455 section 4.1 item 7) and its
    /// response the matching `Sec-WebSocket-Accept` (section 4.2.2 item 5.4).
    #[error("an HTTP/1.1 WebSocket handshake needs a Sec-WebSocket-Key")]
    MissingKey,
    /// The key is not the base64 encoding of 16 bytes (RFC 6455 section 4.1 item 7).
    #[error("Sec-WebSocket-Key must be the base64 encoding of 16 bytes")]
    InvalidKey,
    /// The host is empty or not a valid header value (RFC 6455 section 4.1 item 4).
    #[error("invalid host for the Host header")]
    InvalidHost,
    /// The origin is not a valid header value (RFC 6455 section 4.1 item 8, RFC 6454).
    #[error("invalid Origin header value")]
    InvalidOrigin,
    /// A subprotocol name is not a token (RFC 6455 section 4.1 item 10).
    #[error("subprotocol {0:?} is not a token")]
    InvalidSubprotocol(String),
    /// A subprotocol is listed twice; offers must be unique (RFC 6455 section 4.1 item 10).
    #[error("subprotocol {0:?} is offered twice")]
    DuplicateSubprotocol(String),
    /// The server picked a subprotocol the client did not offer (RFC 6455 section 4.2.2 item 4,
    /// /subprotocol/).
    #[error("subprotocol {0:?} was not offered by the client")]
    UnofferedSubprotocol(String),
    /// The server accepted an extension the client did not offer (RFC 6455 section 9.1).
    #[error("extension {0:?} was not offered by the client")]
    UnofferedExtension(String),
    /// The `Sec-WebSocket-Extensions` string does not follow RFC 6455 section 9.1.
    #[error(transparent)]
    Extensions(#[from] ExtensionError),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_key_matches_rfc_6455_section_1_3() {
        assert_eq!(
            accept_key(b"dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }

    #[test]
    fn key_validity() {
        assert!(is_valid_key("dGhlIHNhbXBsZSBub25jZQ=="));
        // 15 and 17 bytes.
        assert!(!is_valid_key(&STANDARD.encode([0u8; 15])));
        assert!(!is_valid_key(&STANDARD.encode([0u8; 17])));
        // Right length, wrong alphabet or padding.
        assert!(!is_valid_key("dGhlIHNhbXBsZSBub25jZQ=!"));
        assert!(!is_valid_key("dGhlIHNhbXBsZSBub25jZQ-_"));
        assert!(!is_valid_key("dGhlIHNhbXBsZSBub25jZQ"));
        // Non-canonical trailing bits.
        assert!(!is_valid_key("dGhlIHNhbXBsZSBub25jZR=="));
        assert!(!is_valid_key(""));
        assert!(!is_valid_key("ÿÿÿÿÿÿÿÿÿÿÿÿ"));
    }

    #[test]
    fn kind_for_version_and_status() {
        assert_eq!(
            RequestKind::for_version(Version::HTTP_11),
            RequestKind::Upgrade
        );
        assert_eq!(
            RequestKind::for_version(Version::HTTP_10),
            RequestKind::Upgrade
        );
        assert_eq!(
            RequestKind::for_version(Version::HTTP_2),
            RequestKind::ExtendedConnect
        );
        assert_eq!(
            RequestKind::for_version(Version::HTTP_3),
            RequestKind::ExtendedConnect
        );
        assert_eq!(RequestKind::Upgrade.method(), Method::GET);
        assert_eq!(RequestKind::ExtendedConnect.method(), Method::CONNECT);
        assert_eq!(
            response_status(RequestKind::Upgrade),
            StatusCode::SWITCHING_PROTOCOLS
        );
        assert_eq!(
            response_status(RequestKind::ExtendedConnect),
            StatusCode::OK
        );
    }
}
