//! [`Rejection`]: a refused handshake, as the HTTP response that says why.

use bytes::Bytes;
use http::{HeaderMap, Response, StatusCode};
use http_body_util::Full;
use sockway_proto::handshake::{mark_plain_text, HandshakeError, Refusal};

/// Why a WebSocket request was refused, as the HTTP response that says so: a status, the
/// headers that status requires, and a plain-text body explaining the refusal. A thin wrapper
/// around the core's [`Refusal`], which every server builds its refusals from; boxed inside,
/// so a `Result<_, Rejection>` stays one pointer wide on the error side.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {}", .0.status(), .0.body())]
pub struct Rejection(Refusal);

impl From<Refusal> for Rejection {
    fn from(refusal: Refusal) -> Self {
        Self(refusal)
    }
}

impl Rejection {
    /// A refusal with this status and explanation and no extra headers.
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self(Refusal::new(status, message))
    }

    pub(crate) fn from_handshake(error: &HandshakeError) -> Self {
        Self(Refusal::from_handshake(error))
    }

    /// The status: 400 (malformed handshake), 403 (origin not allowed), 405 (wrong method),
    /// 426 (wrong version, or a connection that cannot be upgraded).
    pub fn status(&self) -> StatusCode {
        self.0.status()
    }

    /// Headers the response must carry (`Sec-WebSocket-Version` with 426, `Allow` with 405).
    pub fn headers(&self) -> &HeaderMap {
        self.0.headers()
    }

    /// The plain-text explanation that becomes the body.
    pub fn message(&self) -> &str {
        self.0.body()
    }

    /// The refusal as a response with a plain-text body (and `nosniff`, since the body may
    /// quote request values). `Full<Bytes>` is the server's [`Body`](super::Body).
    pub fn into_response(self) -> Response<Full<Bytes>> {
        let (status, headers, message) = self.0.into_parts();
        let mut response = Response::new(Full::new(Bytes::from(format!("{message}\n"))));
        *response.status_mut() = status;
        *response.headers_mut() = headers;
        mark_plain_text(response.headers_mut());
        response
    }
}
