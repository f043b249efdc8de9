//! Client side of the opening handshake: building the request (RFC 6455 section 4.1, RFC 8441
//! section 5) and checking the server's response (RFC 6455 section 4.1, "the client MUST
//! validate the server's response").

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use http::header::{
    HeaderMap, HeaderName, HeaderValue, CONNECTION, HOST, ORIGIN, SEC_WEBSOCKET_ACCEPT,
    SEC_WEBSOCKET_EXTENSIONS, SEC_WEBSOCKET_KEY, SEC_WEBSOCKET_PROTOCOL, SEC_WEBSOCKET_VERSION,
    UPGRADE,
};
use http::StatusCode;

use super::headers::{
    extensions_to_header_value, header_has_token, is_token, list_elements, parse_extension_list,
    parse_extensions, parse_token_list, trim_ows, ExtensionError, ExtensionOffer,
};
use super::{accept_key, is_valid_key, BuildError, RequestKind, WEBSOCKET_PROTOCOL};

/// A fresh `Sec-WebSocket-Key`: 16 random bytes, base64-encoded (RFC 6455 section 4.1 item 7).
/// The nonce must be new for every connection so that caches and non-WebSocket servers cannot
/// replay an old accept (section 10.3); it needs no cryptographic secrecy, but `rand`'s thread
/// RNG is a CSPRNG anyway.
pub fn generate_key() -> String {
    let nonce: [u8; 16] = rand::random();
    STANDARD.encode(nonce)
}

/// The `Host` value for a `ws`/`wss` URI (RFC 6455 section 4.1 item 4, RFC 9110 section 7.2):
/// the host, in brackets if it is an IPv6 literal, followed by `:port` only when the port is
/// given and differs from the scheme's default (80 for `ws`, 443 for `wss`, section 3).
pub fn host_header_value(host: &str, port: Option<u16>, secure: bool) -> String {
    let default_port = if secure { 443 } else { 80 };
    let mut out = String::with_capacity(host.len() + 8);
    if host.contains(':') && !host.starts_with('[') {
        out.push('[');
        out.push_str(host);
        out.push(']');
    } else {
        out.push_str(host);
    }
    if let Some(port) = port.filter(|&p| p != default_port) {
        out.push(':');
        out.push_str(&port.to_string());
    }
    out
}

/// Builder for the WebSocket header fields of a client's opening request.
///
/// For an HTTP/1.1 upgrade ([`Self::upgrade`]) it produces `Host`, `Upgrade: websocket`,
/// `Connection: Upgrade`, `Sec-WebSocket-Key` and `Sec-WebSocket-Version: 13` (RFC 6455 section
/// 4.1 items 4 to 9); the request itself is a `GET` on HTTP/1.1. For extended CONNECT
/// ([`Self::extended_connect`]) it produces only `Sec-WebSocket-Version: 13`, since the method
/// `CONNECT`, `:protocol = websocket` and `:authority` replace the rest (RFC 8441 section 5).
/// Both may add `Sec-WebSocket-Protocol`, `Sec-WebSocket-Extensions` and `Origin` (items 8, 10,
/// 11). [`Self::build`] validates every caller-supplied value, so no malformed request is sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestHeaders {
    kind: RequestKind,
    host: Option<String>,
    key: Option<String>,
    subprotocols: Vec<String>,
    extensions: Option<String>,
    origin: Option<String>,
}

impl RequestHeaders {
    /// An HTTP/1.1 upgrade request to `host` (a DNS name or IP literal, without brackets or
    /// port), with `port` omitted from `Host` when it is the default for `secure`
    /// ([`host_header_value`]), and `key` from [`generate_key`].
    #[must_use]
    pub fn upgrade(host: &str, port: Option<u16>, secure: bool, key: impl Into<String>) -> Self {
        RequestHeaders {
            kind: RequestKind::Upgrade,
            host: Some(host_header_value(host, port, secure)),
            key: Some(key.into()),
            subprotocols: Vec::new(),
            extensions: None,
            origin: None,
        }
    }

    /// An extended CONNECT request (RFC 8441 section 5); the caller sets `:method = CONNECT`,
    /// `:protocol = websocket`, `:scheme`, `:path` and `:authority` on the HTTP/2 request.
    #[must_use]
    pub fn extended_connect() -> Self {
        RequestHeaders {
            kind: RequestKind::ExtendedConnect,
            host: None,
            key: None,
            subprotocols: Vec::new(),
            extensions: None,
            origin: None,
        }
    }

    /// Adds one subprotocol to offer, after those already added: the order is the client's
    /// preference (RFC 6455 section 4.1 item 10).
    #[must_use]
    pub fn subprotocol(mut self, name: impl Into<String>) -> Self {
        self.subprotocols.push(name.into());
        self
    }

    /// Adds several subprotocols to offer, in order (RFC 6455 section 4.1 item 10).
    #[must_use]
    pub fn subprotocols<I, S>(mut self, names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.subprotocols.extend(names.into_iter().map(Into::into));
        self
    }

    /// Sets the `Sec-WebSocket-Extensions` offer, e.g. from
    /// [`ExtensionOffer::to_header_value`] (RFC 6455 section 4.1 item 11, RFC 7692 section 5).
    #[must_use]
    pub fn extensions(mut self, offer: impl Into<String>) -> Self {
        self.extensions = Some(offer.into());
        self
    }

    /// Sets `Origin` (RFC 6455 section 4.1 item 8, RFC 6454), which browsers always send and
    /// servers use to refuse cross-origin pages (section 10.2).
    #[must_use]
    pub fn origin(mut self, origin: impl Into<String>) -> Self {
        self.origin = Some(origin.into());
        self
    }

    /// How this request is carried.
    pub fn kind(&self) -> RequestKind {
        self.kind
    }

    /// The `Sec-WebSocket-Key` to pass to [`validate_response`]; `None` for extended CONNECT.
    pub fn key(&self) -> Option<&str> {
        self.key.as_deref()
    }

    /// The subprotocols offered so far, to pass to [`validate_response`].
    pub fn offered_subprotocols(&self) -> &[String] {
        &self.subprotocols
    }

    /// Builds the header map, refusing values the server would have to reject: a key that is not
    /// 16 base64-encoded bytes (RFC 6455 section 4.1 item 7), an empty or non-ASCII host (item
    /// 4), subprotocols that are not unique tokens (item 10), an extension offer that breaks the
    /// section 9.1 grammar (item 11; re-serialized in normalized form), an invalid `Origin`.
    pub fn build(&self) -> Result<HeaderMap, BuildError> {
        let mut headers = HeaderMap::new();
        if self.kind == RequestKind::Upgrade {
            let host = self.host.as_deref().unwrap_or_default();
            let host_ok = !host.is_empty() && host.bytes().all(|b| b.is_ascii_graphic());
            let host = HeaderValue::from_str(host)
                .ok()
                .filter(|_| host_ok)
                .ok_or(BuildError::InvalidHost)?;
            let key = self.key.as_deref().ok_or(BuildError::MissingKey)?;
            if !is_valid_key(key) {
                return Err(BuildError::InvalidKey);
            }
            let key = HeaderValue::from_str(key).map_err(|_| BuildError::InvalidKey)?;
            headers.insert(HOST, host);
            headers.insert(UPGRADE, HeaderValue::from_static("websocket"));
            headers.insert(CONNECTION, HeaderValue::from_static("Upgrade"));
            headers.insert(SEC_WEBSOCKET_KEY, key);
        }
        headers.insert(SEC_WEBSOCKET_VERSION, HeaderValue::from_static("13"));
        if !self.subprotocols.is_empty() {
            for (i, name) in self.subprotocols.iter().enumerate() {
                if !is_token(name) {
                    return Err(BuildError::InvalidSubprotocol(name.clone()));
                }
                if self.subprotocols.get(..i).is_some_and(|s| s.contains(name)) {
                    return Err(BuildError::DuplicateSubprotocol(name.clone()));
                }
            }
            let value = HeaderValue::from_str(&self.subprotocols.join(", "))
                .map_err(|_| BuildError::InvalidSubprotocol(self.subprotocols.join(", ")))?;
            headers.insert(SEC_WEBSOCKET_PROTOCOL, value);
        }
        if let Some(extensions) = &self.extensions {
            let offers = parse_extension_list(extensions)?;
            if !offers.is_empty() {
                // Parsed elements consist of ASCII tokens, so this always succeeds.
                if let Ok(value) = HeaderValue::from_str(&extensions_to_header_value(&offers)) {
                    headers.insert(SEC_WEBSOCKET_EXTENSIONS, value);
                }
            }
        }
        if let Some(origin) = &self.origin {
            let value = HeaderValue::from_str(origin)
                .ok()
                .filter(|_| !origin.trim().is_empty())
                .ok_or(BuildError::InvalidOrigin)?;
            headers.insert(ORIGIN, value);
        }
        Ok(headers)
    }
}

/// What the server agreed to, from a valid response ([`validate_response`]).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Negotiated {
    /// The subprotocol the server selected, one of those offered; `None` if it chose none
    /// (RFC 6455 section 4.1, response check 6).
    pub subprotocol: Option<String>,
    /// The extensions the server accepted with its parameters, in the order it listed them,
    /// which is the order they apply (RFC 6455 section 9.1); each is one the client offered.
    pub extensions: Vec<ExtensionOffer>,
}

/// Why a client must fail the connection after the server's response (RFC 6455 section 4.1,
/// "the client MUST _Fail the WebSocket Connection_").
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResponseError {
    /// The server answered with a status other than 101 (HTTP/1.1) or 2xx (extended CONNECT):
    /// the handshake was refused, redirected or needs authentication (RFC 6455 section 4.1,
    /// response check 1; RFC 8441 section 5).
    #[error("handshake rejected with status {status}")]
    Rejected {
        /// The status the server sent.
        status: StatusCode,
    },
    /// `Upgrade` is missing or not exactly `websocket` (RFC 6455 section 4.1, check 2).
    #[error("the response's Upgrade header is not \"websocket\"")]
    UpgradeNotWebSocket,
    /// `Connection` does not list `upgrade` (RFC 6455 section 4.1, check 3).
    #[error("the response's Connection header does not include \"Upgrade\"")]
    MissingConnectionUpgrade,
    /// No `Sec-WebSocket-Accept` in a 101 response (RFC 6455 section 4.1, check 4).
    #[error("the response has no Sec-WebSocket-Accept header")]
    MissingAccept,
    /// `Sec-WebSocket-Accept` is not the value computed from our key (RFC 6455 section 4.1,
    /// check 4): the server did not understand the request as a WebSocket handshake.
    #[error("Sec-WebSocket-Accept does not match the key sent")]
    AcceptMismatch,
    /// A header that must appear once appears several times (RFC 6455 section 11.3.3).
    #[error("the response repeats the {0} header")]
    DuplicateHeader(HeaderName),
    /// `Sec-WebSocket-Protocol` is empty or not a token (RFC 6455 section 4.2.2 item 5.5).
    #[error("the response's Sec-WebSocket-Protocol is not a token")]
    InvalidSubprotocol,
    /// The server selected more than one subprotocol, on one line or several (RFC 6455 section
    /// 4.2.2 item 4 allows a single value; section 11.3.4 one header).
    #[error("the server selected more than one subprotocol")]
    MultipleSubprotocols,
    /// The server selected a subprotocol the client did not offer (RFC 6455 section 4.1,
    /// check 6).
    #[error("the server selected subprotocol {0:?}, which was not offered")]
    UnofferedSubprotocol(String),
    /// The server accepted an extension the client did not offer (RFC 6455 section 4.1,
    /// check 5).
    #[error("the server accepted extension {0:?}, which was not offered")]
    UnofferedExtension(String),
    /// `Sec-WebSocket-Extensions` does not follow RFC 6455 section 9.1 (check 5).
    #[error(transparent)]
    Extensions(#[from] ExtensionError),
}

/// Checks the server's response to a client handshake (RFC 6455 section 4.1, the checks after
/// "the client MUST validate the server's response as follows"; RFC 8441 section 5).
///
/// For [`RequestKind::Upgrade`]: the status must be 101 (else [`ResponseError::Rejected`], so the
/// caller can report it), `Upgrade` must be `websocket` and `Connection` must list `upgrade`
/// (ASCII case-insensitive), and there must be exactly one `Sec-WebSocket-Accept` equal to
/// [`accept_key`]`(key)`. For [`RequestKind::ExtendedConnect`] any 2xx status accepts (RFC 9110
/// section 9.3.6; RFC 8441 section 5 has servers send 200) and `key` is ignored.
///
/// For both: `Sec-WebSocket-Protocol`, if present, must be one token on one line that is in
/// `offered_subprotocols` (exact match, see [`select_subprotocol`](super::select_subprotocol));
/// `Sec-WebSocket-Extensions` must parse ([`parse_extensions`]) and name only extensions in
/// `offered_extensions` (exact match, as the names are registered tokens, RFC 6455 section 11.4).
/// Extension parameters are left to the extension's own negotiation (e.g. RFC 7692 section 5).
pub fn validate_response(
    kind: RequestKind,
    status: StatusCode,
    headers: &HeaderMap,
    key: &str,
    offered_subprotocols: &[String],
    offered_extensions: &[&str],
) -> Result<Negotiated, ResponseError> {
    match kind {
        RequestKind::Upgrade => {
            if status != StatusCode::SWITCHING_PROTOCOLS {
                return Err(ResponseError::Rejected { status });
            }
            let mut upgrade = list_elements(headers, UPGRADE);
            match (upgrade.next(), upgrade.next()) {
                (Some(p), None) if p.eq_ignore_ascii_case(WEBSOCKET_PROTOCOL.as_bytes()) => {}
                _ => return Err(ResponseError::UpgradeNotWebSocket),
            }
            if !header_has_token(headers, CONNECTION, "upgrade") {
                return Err(ResponseError::MissingConnectionUpgrade);
            }
            let mut accepts = headers.get_all(SEC_WEBSOCKET_ACCEPT).iter();
            let accept = accepts.next().ok_or(ResponseError::MissingAccept)?;
            if accepts.next().is_some() {
                return Err(ResponseError::DuplicateHeader(SEC_WEBSOCKET_ACCEPT));
            }
            if trim_ows(accept.as_bytes()) != accept_key(key.as_bytes()).as_bytes() {
                return Err(ResponseError::AcceptMismatch);
            }
        }
        RequestKind::ExtendedConnect => {
            if !status.is_success() {
                return Err(ResponseError::Rejected { status });
            }
        }
    }
    let subprotocol = selected_subprotocol(headers, offered_subprotocols)?;
    let extensions = parse_extensions(headers)?;
    if let Some(unoffered) = extensions
        .iter()
        .find(|e| !offered_extensions.contains(&e.name.as_str()))
    {
        return Err(ResponseError::UnofferedExtension(unoffered.name.clone()));
    }
    Ok(Negotiated {
        subprotocol,
        extensions,
    })
}

/// The subprotocol named by the response, checked against the offer (RFC 6455 section 4.1,
/// check 6).
fn selected_subprotocol(
    headers: &HeaderMap,
    offered: &[String],
) -> Result<Option<String>, ResponseError> {
    let lines = headers.get_all(SEC_WEBSOCKET_PROTOCOL).iter().count();
    if lines == 0 {
        return Ok(None);
    }
    if lines > 1 {
        return Err(ResponseError::MultipleSubprotocols);
    }
    let mut names = parse_token_list(headers, SEC_WEBSOCKET_PROTOCOL)
        .map_err(|_| ResponseError::InvalidSubprotocol)?;
    let name = match (names.pop(), names.is_empty()) {
        (Some(name), true) => name,
        (Some(_), false) => return Err(ResponseError::MultipleSubprotocols),
        (None, _) => return Err(ResponseError::InvalidSubprotocol),
    };
    if !offered.contains(&name) {
        return Err(ResponseError::UnofferedSubprotocol(name));
    }
    Ok(Some(name))
}

#[cfg(test)]
#[path = "client_tests.rs"]
mod tests;
