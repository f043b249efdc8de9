//! [`Rejection`]: a refused handshake, as the HTTP response that says why.

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue, ALLOW, CONTENT_TYPE};
use http::{HeaderMap, Response, StatusCode};
use sockway_proto::handshake::HandshakeError;

use super::upgrade::Body;

/// Why a WebSocket request was refused, as the HTTP response that says so: a status, the
/// headers that status requires, and a plain-text body explaining the refusal. Boxed inside,
/// so a `Result<_, Rejection>` stays one pointer wide on the error side.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {}", .0.status, .0.message)]
pub struct Rejection(Box<Inner>);

#[derive(Debug, Clone, PartialEq, Eq)]
struct Inner {
    status: StatusCode,
    headers: HeaderMap,
    message: String,
}

impl Rejection {
    /// A refusal with this status and explanation and no extra headers.
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self(Box::new(Inner {
            status,
            headers: HeaderMap::new(),
            message: message.into(),
        }))
    }

    pub(crate) fn from_handshake(error: &HandshakeError) -> Self {
        let mut headers = error.response_headers();
        if error.status() == StatusCode::METHOD_NOT_ALLOWED && !headers.contains_key(ALLOW) {
            headers.insert(ALLOW, HeaderValue::from_static("GET"));
        }
        Self(Box::new(Inner {
            status: error.status(),
            headers,
            message: error.to_string(),
        }))
    }

    /// The status: 400 (malformed handshake), 403 (origin not allowed), 405 (wrong method),
    /// 426 (wrong version, or a connection that cannot be upgraded).
    pub fn status(&self) -> StatusCode {
        self.0.status
    }

    /// Headers the response must carry (`Sec-WebSocket-Version` with 426, `Allow` with 405).
    pub fn headers(&self) -> &HeaderMap {
        &self.0.headers
    }

    /// The plain-text explanation that becomes the body.
    pub fn message(&self) -> &str {
        &self.0.message
    }

    /// The refusal as a response with a plain-text body (and `nosniff`, since the body may
    /// quote request values).
    pub fn into_response(self) -> Response<Body> {
        let Inner {
            status,
            headers,
            message,
        } = *self.0;
        let mut response = Response::new(Body::new(Bytes::from(format!("{message}\n"))));
        *response.status_mut() = status;
        *response.headers_mut() = headers;
        let headers = response.headers_mut();
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        headers.insert(
            HeaderName::from_static("x-content-type-options"),
            HeaderValue::from_static("nosniff"),
        );
        response
    }
}
