//! Server side of the opening handshake: validating the client's request (RFC 6455 section
//! 4.2.1, RFC 8441 section 5) and building the accepting response (RFC 6455 section 4.2.2).
//!
//! Status code decisions, for requests [`validate_request`] refuses:
//! - wrong method: `405 Method Not Allowed` with `Allow: GET` (HTTP/1.1) or `Allow: CONNECT`
//!   (HTTP/2 and HTTP/3). A POST to a WebSocket endpoint is not a WebSocket request at all, and
//!   405 says exactly that; RFC 9110 section 15.5.6 requires the `Allow` header.
//! - unsupported or missing `Sec-WebSocket-Version`: `426 Upgrade Required` with
//!   `Sec-WebSocket-Version: 13` (RFC 6455 section 4.2.2 item 4, /version/) and, as RFC 9110
//!   section 15.5.22 requires for 426, `Upgrade: websocket` plus `Connection: Upgrade`
//!   (section 7.8). Over extended CONNECT the `Upgrade` and `Connection` headers cannot be sent
//!   (RFC 9113 section 8.2.2), so a 426 would be malformed; the refusal is then
//!   `400 Bad Request` with `Sec-WebSocket-Version: 13`, the form RFC 6455 section 4.4 shows.
//! - anything else (missing `Host`, `Upgrade`, `Connection`, bad key, malformed lists,
//!   duplicated single-valued headers, bad `:protocol`): `400 Bad Request`, the status RFC 6455
//!   section 4.2.1 suggests.

use std::collections::HashSet;

use http::header::{
    HeaderMap, HeaderName, HeaderValue, ALLOW, CONNECTION, HOST, ORIGIN, SEC_WEBSOCKET_ACCEPT,
    SEC_WEBSOCKET_EXTENSIONS, SEC_WEBSOCKET_KEY, SEC_WEBSOCKET_PROTOCOL, SEC_WEBSOCKET_VERSION,
    UPGRADE,
};
use http::{Method, StatusCode, Version};

use super::headers::{
    extensions_to_header_value, header_has_token, parse_extension_list, parse_extensions,
    parse_token_list, ExtensionError, ExtensionOffer,
};
use super::{accept_key, is_valid_key, BuildError, RequestKind, WEBSOCKET_PROTOCOL};

/// What a valid client handshake asked for (RFC 6455 section 4.2.1, RFC 8441 section 5), as
/// returned by [`validate_request`]. The application decides from it whether to accept (origin
/// check, subprotocol and extension choice) and passes it to [`response_headers`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientOffer {
    /// How the handshake is carried; decides the response status and headers.
    pub kind: RequestKind,
    /// The `Sec-WebSocket-Key`, already checked to be 16 base64-encoded bytes (RFC 6455 section
    /// 4.2.1 item 5). `None` for extended CONNECT, which has no key (RFC 8441 section 5).
    pub key: Option<String>,
    /// The `Sec-WebSocket-Version`; always 13 once validated (RFC 6455 section 4.2.1 item 6).
    pub version: u8,
    /// The offered subprotocols in the client's order of preference (RFC 6455 section 4.2.1
    /// item 8); unique tokens, empty when the header is absent.
    pub subprotocols: Vec<String>,
    /// The offered extensions in order, duplicates kept (RFC 6455 section 4.2.1 item 9,
    /// RFC 7692 section 5).
    pub extensions: Vec<ExtensionOffer>,
    /// The `Origin` header, if any (RFC 6455 section 4.2.1 item 7, section 10.2): browsers always
    /// send it, and a server should check it to stop cross-site WebSocket hijacking.
    pub origin: Option<String>,
    /// The `Host` header (RFC 6455 section 4.2.1 item 2). Always present for an HTTP/1.1
    /// upgrade; usually `None` for extended CONNECT, whose authority travels in the
    /// `:authority` pseudo-header (RFC 8441 section 5), i.e. the request URI.
    pub host: Option<String>,
}

/// Why a client handshake was refused. Each variant names the broken rule; [`Self::status`] and
/// [`Self::response_headers`] give the HTTP response to send, and the `Display` text is a
/// suitable plain-text body (it never echoes header values back).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HandshakeError {
    /// The method is not `GET` (RFC 6455 section 4.2.1 item 1) or, for HTTP/2 and HTTP/3, not
    /// `CONNECT` (RFC 8441 section 4). Answered with 405 and `Allow`.
    #[error("method {method} cannot open a WebSocket; use {}", .kind.method())]
    MethodNotAllowed {
        /// The method the client used.
        method: Method,
        /// The handshake kind implied by the HTTP version, which decides the allowed method.
        kind: RequestKind,
    },
    /// HTTP/1.0 or older: the upgrade needs HTTP/1.1 (RFC 6455 section 4.2.1 item 1; RFC 9110
    /// section 7.8 makes servers ignore `Upgrade` in HTTP/1.0).
    #[error("a WebSocket handshake needs HTTP/1.1 or later")]
    HttpVersion(Version),
    /// No `Host` header in an HTTP/1.1 upgrade (RFC 6455 section 4.2.1 item 2).
    #[error("missing Host header")]
    MissingHost,
    /// A header that must appear once appears on several lines (RFC 6455 section 11.3.1,
    /// 11.3.5; RFC 9112 section 3.2 for `Host`). Picking one would let parties disagree.
    #[error("the {0} header must appear at most once")]
    DuplicateHeader(HeaderName),
    /// A header value is empty where a value is required, or not visible ASCII.
    #[error("the {0} header has an invalid value")]
    InvalidHeaderValue(HeaderName),
    /// No `websocket` token in `Upgrade` (RFC 6455 section 4.2.1 item 3).
    #[error("the Upgrade header must include \"websocket\"")]
    MissingUpgrade,
    /// No `upgrade` token in `Connection` (RFC 6455 section 4.2.1 item 4).
    #[error("the Connection header must include \"Upgrade\"")]
    MissingConnectionUpgrade,
    /// No `Sec-WebSocket-Key` in an HTTP/1.1 upgrade (RFC 6455 section 4.2.1 item 5).
    #[error("missing Sec-WebSocket-Key header")]
    MissingKey,
    /// `Sec-WebSocket-Key` is not the base64 encoding of 16 bytes (RFC 6455 section 4.2.1
    /// item 5).
    #[error("Sec-WebSocket-Key must be the base64 encoding of 16 bytes")]
    InvalidKey,
    /// `Sec-WebSocket-Version` is missing or not 13 (RFC 6455 section 4.2.1 item 6, section
    /// 4.2.2 item 4). Answered with 426 (HTTP/1.1) or 400 (extended CONNECT) and
    /// `Sec-WebSocket-Version: 13`, so the client can retry with a version we speak (section 4.4).
    #[error("unsupported WebSocket version; this server supports version 13")]
    UnsupportedVersion {
        /// The handshake kind, which decides between 426 and 400.
        kind: RequestKind,
    },
    /// An element of `Sec-WebSocket-Protocol` is not a token (RFC 6455 section 4.1 item 10).
    /// Holds the element, for logs only.
    #[error("Sec-WebSocket-Protocol must be a list of tokens")]
    InvalidSubprotocol(String),
    /// A subprotocol is offered twice; offers must be unique (RFC 6455 section 4.1 item 10).
    #[error("Sec-WebSocket-Protocol lists a subprotocol twice")]
    DuplicateSubprotocol(String),
    /// `Sec-WebSocket-Extensions` does not follow RFC 6455 section 9.1.
    #[error(transparent)]
    Extensions(#[from] ExtensionError),
    /// An extended CONNECT carries `Connection` or `Upgrade`, which RFC 8441 section 5 forbids
    /// (and RFC 9113 section 8.2.2 makes malformed).
    #[error("the {0} header is not allowed in an extended CONNECT request")]
    ConnectionSpecificHeader(HeaderName),
    /// A `CONNECT` without `:protocol` is a tunnel request, not a WebSocket one (RFC 8441
    /// section 4).
    #[error("a WebSocket CONNECT request needs the :protocol pseudo-header")]
    MissingProtocol,
    /// `:protocol` names something other than `websocket` (RFC 8441 section 5). Holds the value,
    /// for logs only.
    #[error("the :protocol pseudo-header must be \"websocket\"")]
    UnsupportedProtocol(String),
}

impl HandshakeError {
    /// The status code to refuse with: 405 for a wrong method, 426 for an unsupported version
    /// over HTTP/1.1, otherwise 400 (RFC 6455 section 4.2.1). See the [module docs](self).
    pub fn status(&self) -> StatusCode {
        match self {
            HandshakeError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            HandshakeError::UnsupportedVersion {
                kind: RequestKind::Upgrade,
            } => StatusCode::UPGRADE_REQUIRED,
            _ => StatusCode::BAD_REQUEST,
        }
    }

    /// Headers the refusal must carry: `Allow` for 405 (RFC 9110 section 15.5.6);
    /// `Sec-WebSocket-Version: 13` for a version mismatch (RFC 6455 section 4.2.2 item 4), plus
    /// `Upgrade: websocket` and `Connection: Upgrade` when that is a 426 (RFC 9110 sections
    /// 15.5.22 and 7.8). Empty otherwise.
    pub fn response_headers(&self) -> HeaderMap {
        let mut headers = HeaderMap::new();
        match self {
            HandshakeError::MethodNotAllowed { kind, .. } => {
                let allow = match kind {
                    RequestKind::Upgrade => "GET",
                    RequestKind::ExtendedConnect => "CONNECT",
                };
                headers.insert(ALLOW, HeaderValue::from_static(allow));
            }
            HandshakeError::UnsupportedVersion { kind } => {
                headers.insert(SEC_WEBSOCKET_VERSION, HeaderValue::from_static("13"));
                if *kind == RequestKind::Upgrade {
                    headers.insert(UPGRADE, HeaderValue::from_static("websocket"));
                    headers.insert(CONNECTION, HeaderValue::from_static("Upgrade"));
                }
            }
            _ => {}
        }
        headers
    }
}

/// Checks a client's opening handshake and extracts what it offers.
///
/// `connect_protocol` is the `:protocol` pseudo-header of an HTTP/2 or HTTP/3 request (RFC 8441
/// section 4); pass `None` when the request has none. The HTTP version picks the rules
/// ([`RequestKind::for_version`]); `connect_protocol` is ignored for HTTP/1.x, which has no
/// pseudo-headers.
///
/// HTTP/1.1 upgrade (RFC 6455 section 4.2.1), checked in this order: method `GET` (else 405),
/// version HTTP/1.1, exactly one non-empty `Host`, `Upgrade` lists `websocket` and `Connection`
/// lists `upgrade` (both case-insensitive, across lines), `Sec-WebSocket-Version: 13` (else 426),
/// exactly one `Sec-WebSocket-Key` that base64-decodes to 16 bytes.
///
/// Extended CONNECT (RFC 8441 section 5): method `CONNECT` (else 405), `:protocol` equal to
/// `websocket` (ASCII case-insensitive, as RFC 9110 section 7.8 asks of upgrade tokens), no
/// `Connection`/`Upgrade` headers, `Sec-WebSocket-Version: 13` (else 400 with the version
/// header). A `Sec-WebSocket-Key` is ignored: the key exchange is superseded by `:protocol`.
/// `:scheme`, `:path` and `:authority` are the HTTP/2 layer's business.
///
/// Both: `Sec-WebSocket-Protocol` must be a list of unique tokens, `Sec-WebSocket-Extensions`
/// must follow RFC 6455 section 9.1, and `Origin` may appear at most once.
pub fn validate_request(
    method: &Method,
    version: Version,
    headers: &HeaderMap,
    connect_protocol: Option<&str>,
) -> Result<ClientOffer, HandshakeError> {
    let kind = RequestKind::for_version(version);
    if *method != kind.method() {
        return Err(HandshakeError::MethodNotAllowed {
            method: method.clone(),
            kind,
        });
    }
    let (key, host) = match kind {
        RequestKind::Upgrade => {
            if version != Version::HTTP_11 {
                return Err(HandshakeError::HttpVersion(version));
            }
            let host = single_value(headers, &HOST)?.ok_or(HandshakeError::MissingHost)?;
            if host.is_empty() {
                return Err(HandshakeError::InvalidHeaderValue(HOST));
            }
            if !header_has_token(headers, UPGRADE, WEBSOCKET_PROTOCOL) {
                return Err(HandshakeError::MissingUpgrade);
            }
            if !header_has_token(headers, CONNECTION, "upgrade") {
                return Err(HandshakeError::MissingConnectionUpgrade);
            }
            check_version(headers, kind)?;
            let key =
                single_value(headers, &SEC_WEBSOCKET_KEY)?.ok_or(HandshakeError::MissingKey)?;
            if !is_valid_key(key) {
                return Err(HandshakeError::InvalidKey);
            }
            (Some(key.to_owned()), Some(host.to_owned()))
        }
        RequestKind::ExtendedConnect => {
            match connect_protocol {
                None => return Err(HandshakeError::MissingProtocol),
                Some(p) if !p.eq_ignore_ascii_case(WEBSOCKET_PROTOCOL) => {
                    return Err(HandshakeError::UnsupportedProtocol(p.to_owned()))
                }
                Some(_) => {}
            }
            for name in [CONNECTION, UPGRADE] {
                if headers.contains_key(&name) {
                    return Err(HandshakeError::ConnectionSpecificHeader(name));
                }
            }
            check_version(headers, kind)?;
            let host = single_value(headers, &HOST)?.map(str::to_owned);
            (None, host)
        }
    };
    let subprotocols = parse_subprotocols(headers)?;
    let extensions = parse_extensions(headers)?;
    let origin = single_value(headers, &ORIGIN)?.map(str::to_owned);
    Ok(ClientOffer {
        kind,
        key,
        version: 13,
        subprotocols,
        extensions,
        origin,
        host,
    })
}

/// The value of a header that may appear at most once, trimmed of OWS: `Ok(None)` if absent,
/// an error if repeated or not visible ASCII.
fn single_value<'a>(
    headers: &'a HeaderMap,
    name: &HeaderName,
) -> Result<Option<&'a str>, HandshakeError> {
    let mut values = headers.get_all(name).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(HandshakeError::DuplicateHeader(name.clone()));
    }
    let value = value
        .to_str()
        .map_err(|_| HandshakeError::InvalidHeaderValue(name.clone()))?;
    Ok(Some(value.trim_matches([' ', '\t'])))
}

/// `Sec-WebSocket-Version` must be exactly `13` (RFC 6455 section 4.2.1 item 6); a missing or
/// different value is [`HandshakeError::UnsupportedVersion`], a repeated one a 400.
fn check_version(headers: &HeaderMap, kind: RequestKind) -> Result<(), HandshakeError> {
    match single_value(headers, &SEC_WEBSOCKET_VERSION)? {
        Some("13") => Ok(()),
        _ => Err(HandshakeError::UnsupportedVersion { kind }),
    }
}

/// The offered subprotocols: tokens, unique, in order (RFC 6455 section 4.1 item 10).
fn parse_subprotocols(headers: &HeaderMap) -> Result<Vec<String>, HandshakeError> {
    let offered = parse_token_list(headers, SEC_WEBSOCKET_PROTOCOL)
        .map_err(HandshakeError::InvalidSubprotocol)?;
    let mut seen = HashSet::with_capacity(offered.len());
    for name in &offered {
        if !seen.insert(name.as_str()) {
            return Err(HandshakeError::DuplicateSubprotocol(name.clone()));
        }
    }
    Ok(offered)
}

/// Picks the subprotocol to speak: the first entry of `supported` (the server's preference
/// order) that the client offered, or `None` when there is no common one, in which case the
/// response carries no `Sec-WebSocket-Protocol` (RFC 6455 section 4.2.2 item 4, /subprotocol/).
///
/// Names are compared exactly, case included: subprotocol names are matched case-sensitively
/// (RFC 7936 section 2, clarifying RFC 6455 section 11.5), and the client checks the echoed name
/// against what it sent (RFC 6455 section 4.1, response check 6), so a case-insensitive match
/// could echo a spelling the client must reject.
pub fn select_subprotocol<'a, S: AsRef<str>>(
    offered: &[String],
    supported: &'a [S],
) -> Option<&'a str> {
    supported
        .iter()
        .map(AsRef::as_ref)
        .find(|name| offered.iter().any(|o| o == name))
}

/// The headers of the accepting response (RFC 6455 section 4.2.2 item 5; RFC 8441 section 5);
/// send them with [`response_status`](super::response_status).
///
/// For an HTTP/1.1 upgrade: `Upgrade: websocket`, `Connection: Upgrade` and
/// `Sec-WebSocket-Accept` computed from the offer's key. For extended CONNECT none of these
/// (RFC 8441 section 5). For both, `Sec-WebSocket-Protocol` when `subprotocol` is given and
/// `Sec-WebSocket-Extensions` when `extensions` holds at least one element.
///
/// Refuses ([`BuildError`]) what the client would have to reject: a subprotocol it did not offer
/// (response check 6 of RFC 6455 section 4.1), an extension string that is malformed or names an
/// extension it did not offer (check 5), or an upgrade offer without a valid key. The extension
/// string is re-serialized in normalized form.
pub fn response_headers(
    offer: &ClientOffer,
    subprotocol: Option<&str>,
    extensions: Option<&str>,
) -> Result<HeaderMap, BuildError> {
    let mut headers = HeaderMap::new();
    if offer.kind == RequestKind::Upgrade {
        let key = offer.key.as_deref().ok_or(BuildError::MissingKey)?;
        if !is_valid_key(key) {
            return Err(BuildError::InvalidKey);
        }
        let accept = HeaderValue::from_str(&accept_key(key.as_bytes()))
            .map_err(|_| BuildError::InvalidKey)?;
        headers.insert(UPGRADE, HeaderValue::from_static("websocket"));
        headers.insert(CONNECTION, HeaderValue::from_static("Upgrade"));
        headers.insert(SEC_WEBSOCKET_ACCEPT, accept);
    }
    if let Some(name) = subprotocol {
        if !offer.subprotocols.iter().any(|o| o == name) {
            return Err(BuildError::UnofferedSubprotocol(name.to_owned()));
        }
        let value = HeaderValue::from_str(name)
            .map_err(|_| BuildError::InvalidSubprotocol(name.to_owned()))?;
        headers.insert(SEC_WEBSOCKET_PROTOCOL, value);
    }
    if let Some(extensions) = extensions {
        let accepted = parse_extension_list(extensions)?;
        if let Some(unoffered) = accepted
            .iter()
            .find(|a| !offer.extensions.iter().any(|o| o.name == a.name))
        {
            return Err(BuildError::UnofferedExtension(unoffered.name.clone()));
        }
        if !accepted.is_empty() {
            // Parsed elements are ASCII tokens, so the normalized value is a valid header value.
            if let Ok(value) = HeaderValue::from_str(&extensions_to_header_value(&accepted)) {
                headers.insert(SEC_WEBSOCKET_EXTENSIONS, value);
            }
        }
    }
    Ok(headers)
}

#[cfg(test)]
#[path = "server_tests.rs"]
mod tests;
