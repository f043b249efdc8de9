//! The server's answer to an opening handshake, sans-I/O, in the way python-websockets'
//! `ServerProtocol.accept` / `reject` work: request head bytes in, and out either an
//! [`Accepted`] handshake (status, headers, what was agreed) or a [`Refusal`] (status, the
//! headers that status requires, a plain-text body saying why). Drivers only move bytes.
//!
//! The order of checks, shared by every server: the head's limits (431), its syntax (400),
//! the WebSocket rules of [`validate_request`] (400, 405, 426), then the `Origin`
//! ([`OriginPolicy`], 403); then the subprotocol is chosen ([`select_subprotocol`]) and
//! permessage-deflate agreed or declined ([`agree`], which the async server calls too).

use std::fmt::Write as _;

use bytes::{BufMut as _, BytesMut};
use http::header::{HeaderMap, HeaderName, HeaderValue, CONNECTION, CONTENT_TYPE};
use http::StatusCode;

use super::head::{parse_request, HeadError};
use super::limits::HeadLimits;
use super::origin::OriginPolicy;
use super::response_status;
use super::server::{
    response_headers, select_subprotocol, validate_request, ClientOffer, HandshakeError,
};
use crate::deflate::{accept_offer, DeflateConfig, DeflateParams};

/// A refused handshake as the response that says why (RFC 6455 section 4.2.2 item 4: "an
/// appropriate HTTP error code"): a status, the headers that status requires (`Allow` with
/// 405, `Sec-WebSocket-Version` with 426) and a plain-text explanation. Boxed inside, so a
/// `Result<_, Refusal>` stays one pointer wide on the error side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal(Box<Parts>);

/// The parts of a [`Refusal`].
#[derive(Debug, Clone, PartialEq, Eq)]
struct Parts {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

impl Refusal {
    /// A refusal with this status and explanation and no extra headers.
    pub fn new(status: StatusCode, body: impl Into<String>) -> Self {
        Self::with_headers(status, HeaderMap::new(), body)
    }

    /// A refusal with this status, headers and explanation.
    pub fn with_headers(status: StatusCode, headers: HeaderMap, body: impl Into<String>) -> Self {
        Self(Box::new(Parts {
            status,
            headers,
            body: body.into(),
        }))
    }

    /// The status: 400, 403, 405, 408, 426, 431, or what the caller chose.
    pub fn status(&self) -> StatusCode {
        self.0.status
    }

    /// Headers the status requires (`Allow` with 405, `Sec-WebSocket-Version` with 426).
    pub fn headers(&self) -> &HeaderMap {
        &self.0.headers
    }

    /// The plain-text explanation; it quotes no header value other than the origin.
    pub fn body(&self) -> &str {
        &self.0.body
    }

    /// The status, headers and explanation, taken apart.
    pub fn into_parts(self) -> (StatusCode, HeaderMap, String) {
        let Parts {
            status,
            headers,
            body,
        } = *self.0;
        (status, headers, body)
    }

    /// The refusal of a request [`validate_request`] rejected: its status and headers
    /// ([`HandshakeError::status`], [`HandshakeError::response_headers`]) and its message.
    pub fn from_handshake(error: &HandshakeError) -> Self {
        Self::with_headers(error.status(), error.response_headers(), error.to_string())
    }

    /// The refusal of a head over the limits (431, RFC 6585 section 5) or malformed (400,
    /// RFC 9112 section 2.2).
    pub fn from_head(error: &HeadError) -> Self {
        match error {
            HeadError::TooLarge { limit } => Self::new(
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                format!("the request head is larger than this server's limit of {limit} bytes"),
            ),
            HeadError::TooManyFields { count, limit } => Self::new(
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                format!(
                    "the request has {count} header fields, more than this server's limit of \
                     {limit}"
                ),
            ),
            HeadError::Malformed(reason) => Self::new(
                StatusCode::BAD_REQUEST,
                format!("malformed request: {reason}"),
            ),
        }
    }

    /// 403 for an `Origin` the [`OriginPolicy`] does not allow (RFC 6455 section 4.2.2 item 4,
    /// section 10.2). The body names the origin, cut to 200 characters.
    pub fn origin_not_allowed(origin: &str) -> Self {
        let shown: String = origin.chars().take(200).collect();
        Self::new(
            StatusCode::FORBIDDEN,
            format!(
                "origin {shown} is not allowed to open a WebSocket here: it is not in this \
                 endpoint's list of allowed origins (RFC 6455 section 10.2)"
            ),
        )
    }

    /// The refusal as HTTP/1.1 response bytes: the status line, its headers,
    /// `content-type: text/plain; charset=utf-8`, `x-content-type-options: nosniff` (the body
    /// may quote the origin), `connection: close` and the body with a final newline.
    pub fn to_http1(&self) -> BytesMut {
        let mut headers = self.0.headers.clone();
        mark_plain_text(&mut headers);
        headers.insert(CONNECTION, HeaderValue::from_static("close"));
        let body = format!("{}\n", self.0.body);
        write_http1(self.0.status, &headers, Some(&body))
    }
}

/// What an accepted handshake agreed, and the response that says so.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    /// Bytes the request head took; what follows are the client's first frames.
    pub head_len: usize,
    /// The request target (path and query).
    pub target: String,
    /// What the client offered (origin, subprotocols, extensions, key).
    pub offer: ClientOffer,
    /// The subprotocol chosen, if any.
    pub subprotocol: Option<String>,
    /// The permessage-deflate terms, if the extension was accepted (RFC 7692 section 5).
    pub compression: Option<DeflateParams>,
    /// `101 Switching Protocols` (RFC 6455 section 4.2.2 item 5.1).
    pub status: StatusCode,
    /// `Upgrade`, `Connection`, `Sec-WebSocket-Accept`, the chosen subprotocol and extension.
    pub headers: HeaderMap,
}

impl Accepted {
    /// The response as HTTP/1.1 bytes, without a body or `Content-Length` (RFC 9110 section
    /// 15.2.2: a 101 has no content).
    pub fn to_http1(&self) -> BytesMut {
        write_http1(self.status, &self.headers, None)
    }
}

/// What a server accepts: the head limits, the origins, the subprotocols it speaks in order
/// of preference, and whether it takes permessage-deflate.
#[derive(Debug, Clone, Copy)]
pub struct ServerRules<'a, S> {
    /// Limits on the request head.
    pub limits: HeadLimits,
    /// Which origins may connect.
    pub origins: &'a OriginPolicy,
    /// Subprotocols spoken, in order of preference (RFC 6455 section 4.2.2 item 5.4).
    pub subprotocols: &'a [S],
    /// permessage-deflate (RFC 7692) on these terms when the client offers it; `None`
    /// answers every offer without the extension (section 5 lets a server decline).
    pub compression: Option<&'a DeflateConfig>,
}

/// Answers the HTTP/1.1 opening handshake at the start of `input` (the bytes received so far):
/// `Ok(None)` while the head is incomplete and within the limits, then the accepted handshake
/// or the refusal. The order of checks is the [module's](self).
pub fn accept<S: AsRef<str>>(
    input: &[u8],
    rules: &ServerRules<'_, S>,
) -> Result<Option<Accepted>, Refusal> {
    let Some(head) = parse_request(input, &rules.limits).map_err(|e| Refusal::from_head(&e))?
    else {
        return Ok(None);
    };
    let offer = validate_request(&head.method, head.version, &head.headers, None)
        .map_err(|e| Refusal::from_handshake(&e))?;
    let agreed = agree(&offer, rules.origins, rules.subprotocols, rules.compression)?;
    Ok(Some(Accepted {
        head_len: head.len,
        target: head.target,
        subprotocol: agreed.subprotocol,
        compression: agreed.compression,
        status: agreed.status,
        offer,
        headers: agreed.headers,
    }))
}

/// What a server agreed to for a valid request ([`agree`]).
#[derive(Debug, Clone)]
pub struct Agreement {
    /// The subprotocol chosen, if any.
    pub subprotocol: Option<String>,
    /// The permessage-deflate terms, if the extension was accepted.
    pub compression: Option<DeflateParams>,
    /// `101 Switching Protocols`, or `200 OK` for an HTTP/2 extended CONNECT (RFC 8441
    /// section 5).
    pub status: StatusCode,
    /// `Upgrade`, `Connection`, `Sec-WebSocket-Accept`, the chosen subprotocol and extension.
    pub headers: HeaderMap,
}

/// The answer to a request that [`validate_request`] passed, the one rule of every server
/// whatever parsed the request (this crate's head parser, or hyper): the `Origin` against
/// `origins` (403), then the first of `subprotocols` the client offered, then
/// permessage-deflate on the terms of `compression` (RFC 7692 section 5: the first offer that
/// can be honoured, or none), and the response headers that say so.
pub fn agree<S: AsRef<str>>(
    offer: &ClientOffer,
    origins: &OriginPolicy,
    subprotocols: &[S],
    compression: Option<&DeflateConfig>,
) -> Result<Agreement, Refusal> {
    check_origin(offer, origins)?;
    let subprotocol = select_subprotocol(&offer.subprotocols, subprotocols);
    let deflate = compression.and_then(|config| accept_offer(&offer.extensions, config));
    let extension = deflate
        .as_ref()
        .map(|(_, response)| response.to_header_value());
    let headers = response_headers(offer, subprotocol, extension.as_deref())
        .map_err(|e| Refusal::new(StatusCode::BAD_REQUEST, e.to_string()))?;
    Ok(Agreement {
        subprotocol: subprotocol.map(str::to_owned),
        compression: deflate.map(|(params, _)| params),
        status: response_status(offer.kind),
        headers,
    })
}

/// The origin check alone, for servers that validated the request through another HTTP stack
/// (hyper): `Err` with a 403 when `policy` does not allow the offer's `Origin`.
pub fn check_origin(offer: &ClientOffer, policy: &OriginPolicy) -> Result<(), Refusal> {
    if policy.allows(offer.origin.as_deref()) {
        Ok(())
    } else {
        Err(Refusal::origin_not_allowed(
            offer.origin.as_deref().unwrap_or_default(),
        ))
    }
}

/// An HTTP/1.1 response head with `headers` and, when `body` is given, its `content-length`
/// and the body.
fn write_http1(status: StatusCode, headers: &HeaderMap, body: Option<&str>) -> BytesMut {
    let body_len = body.map_or(0, str::len);
    let mut head = String::with_capacity(160 + body_len);
    let _ = write!(
        head,
        "HTTP/1.1 {} {}\r\n",
        status.as_u16(),
        status.canonical_reason().unwrap_or("")
    );
    for (name, value) in headers {
        head.push_str(name.as_str());
        head.push_str(": ");
        head.push_str(value.to_str().unwrap_or(""));
        head.push_str("\r\n");
    }
    if body.is_some() {
        let _ = write!(head, "content-length: {body_len}\r\n");
    }
    head.push_str("\r\n");
    let mut bytes = BytesMut::with_capacity(head.len() + body_len);
    bytes.put_slice(head.as_bytes());
    bytes.put_slice(body.unwrap_or_default().as_bytes());
    bytes
}

/// Marks a refusal's body as what it is: `content-type: text/plain; charset=utf-8`, and
/// `x-content-type-options: nosniff`, since the explanation may quote request values (an
/// origin) that a browser must not sniff as markup. Every server's refusal carries both.
pub fn mark_plain_text(headers: &mut HeaderMap) {
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    headers.insert(
        HeaderName::from_static("x-content-type-options"),
        HeaderValue::from_static("nosniff"),
    );
}

#[cfg(test)]
#[path = "answer_tests.rs"]
mod tests;
