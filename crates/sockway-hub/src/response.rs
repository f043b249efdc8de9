//! The responses of the hub service: the body type, fixed and plain-text responses (as the
//! reference server sends its refusals) and the no-cache headers of long polling. A leaf:
//! the service, the negotiate endpoint, the transports and the CORS policy all build their
//! answers with it.

use bytes::Bytes;
use http::header::{CACHE_CONTROL, CONTENT_TYPE, EXPIRES, PRAGMA};
use http::{HeaderMap, HeaderValue, Response, StatusCode};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt as _, Full};

/// The error type of response bodies that the hub service passes through.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The body of every response of the hub service: fixed bytes, an event stream, or the body
/// of the service it falls back to.
pub type HubBody = UnsyncBoxBody<Bytes, BoxError>;

/// A response with a fixed body.
pub(crate) fn full(
    status: StatusCode,
    content_type: &'static str,
    body: impl Into<Bytes>,
) -> Response<HubBody> {
    let body = Full::new(body.into())
        .map_err(|never| match never {})
        .boxed_unsync();
    let mut response = Response::new(body);
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

/// A plain-text response, as the reference server sends its refusals.
pub(crate) fn text(status: StatusCode, message: impl Into<Bytes>) -> Response<HubBody> {
    full(status, "text/plain", message)
}

/// The headers ASP.NET Core puts on long-polling responses so that no cache keeps a poll.
pub(crate) fn no_cache(headers: &mut HeaderMap) {
    headers.insert(
        CACHE_CONTROL,
        HeaderValue::from_static("no-cache, no-store"),
    );
    headers.insert(PRAGMA, HeaderValue::from_static("no-cache"));
    headers.insert(
        EXPIRES,
        HeaderValue::from_static("Thu, 01 Jan 1970 00:00:00 GMT"),
    );
}
