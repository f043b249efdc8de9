//! Cross-origin requests (the Fetch standard's CORS protocol) for the hub's HTTP endpoints,
//! as an ASP.NET Core application configures them for the JavaScript client served from
//! another origin: `WithOrigins(...)`, `AllowAnyHeader()`, `WithMethods("GET", "POST")` and
//! `AllowCredentials()` (the client sends cookies and `withCredentials` by default).
//!
//! With no allowed origin (the default) the hub adds no CORS header at all, so browsers keep
//! it same-origin. With some, a request whose `Origin` is on the list gets
//! `Access-Control-Allow-Origin: <that origin>` and `Access-Control-Allow-Credentials: true`,
//! and a preflight (`OPTIONS` with `Access-Control-Request-Method`) is answered 204 with the
//! methods and headers the SignalR clients use. A request from another origin is served
//! without CORS headers, as ASP.NET Core's CORS middleware does: the browser then withholds
//! the response from the page. Its preflight gets 403 with a reason.

use http::header::{
    ACCESS_CONTROL_ALLOW_CREDENTIALS, ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS,
    ACCESS_CONTROL_ALLOW_ORIGIN, ACCESS_CONTROL_REQUEST_METHOD, HOST, ORIGIN, VARY,
};
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode};

use crate::response::{self, HubBody};

/// The request headers a preflight allows: those the official clients send
/// (`X-Requested-With`, `X-SignalR-User-Agent`, `Authorization` for bearer tokens,
/// `Content-Type` for POST bodies).
pub(crate) const ALLOWED_HEADERS: &str =
    "x-requested-with, x-signalr-user-agent, authorization, content-type";

/// The origins allowed to call the hub from a browser page of another origin.
#[derive(Debug, Clone, Default)]
pub(crate) struct CorsPolicy {
    /// Normalised `scheme://host[:port]`, lower case, no trailing slash.
    origins: Vec<String>,
}

/// `Origin` values are compared on scheme, host and port, ignoring case (RFC 6454 section 5).
fn normalise(origin: &str) -> String {
    origin.trim().trim_end_matches('/').to_ascii_lowercase()
}

impl CorsPolicy {
    /// A policy allowing `origins` (none: CORS off).
    pub fn new<I, S>(origins: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        Self {
            origins: origins
                .into_iter()
                .map(|origin| normalise(origin.as_ref()))
                .filter(|origin| !origin.is_empty())
                .collect(),
        }
    }

    /// Whether any origin is allowed (CORS headers are sent at all).
    pub fn enabled(&self) -> bool {
        !self.origins.is_empty()
    }

    /// The allowed origins, normalised.
    pub fn origins(&self) -> &[String] {
        &self.origins
    }

    /// `origin`, if it is on the list.
    fn allowed(&self, origin: Option<&HeaderValue>) -> Option<HeaderValue> {
        let origin = origin?;
        let text = origin.to_str().ok()?;
        let normalised = normalise(text);
        self.origins.contains(&normalised).then(|| origin.clone())
    }

    /// The answer to a preflight on a route that takes `methods`, or `None` when `request`
    /// is no preflight (or CORS is off, so `OPTIONS` gets the route's usual 405).
    pub fn preflight<B>(&self, request: &Request<B>, methods: &str) -> Option<Response<HubBody>> {
        if !self.enabled()
            || request.method() != Method::OPTIONS
            || !request.headers().contains_key(ORIGIN)
            || !request
                .headers()
                .contains_key(ACCESS_CONTROL_REQUEST_METHOD)
        {
            return None;
        }
        let Some(origin) = self.allowed(request.headers().get(ORIGIN)) else {
            let mut response = response::text(
                StatusCode::FORBIDDEN,
                "the request's Origin is not among the hub's allowed origins",
            );
            response
                .headers_mut()
                .insert(VARY, HeaderValue::from_static("Origin"));
            return Some(response);
        };
        let mut response = response::text(StatusCode::NO_CONTENT, "");
        response.headers_mut().remove(http::header::CONTENT_TYPE);
        let headers = response.headers_mut();
        allow(headers, origin);
        if let Ok(methods) = HeaderValue::from_str(methods) {
            headers.insert(ACCESS_CONTROL_ALLOW_METHODS, methods);
        }
        headers.insert(
            ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static(ALLOWED_HEADERS),
        );
        Some(response)
    }

    /// Adds the CORS headers to `response` when the request's `origin` is allowed.
    pub fn decorate(&self, origin: Option<&HeaderValue>, response: &mut Response<HubBody>) {
        if !self.enabled() {
            return;
        }
        let headers = response.headers_mut();
        headers.append(VARY, HeaderValue::from_static("Origin"));
        if let Some(origin) = self.allowed(origin) {
            allow(headers, origin);
        }
    }

    /// The origins a WebSocket handshake may come from: the list, plus the request's own
    /// origin (a page the hub's server serves itself), whose scheme is unknown here so both
    /// `http` and `https` with the request's `Host` are allowed.
    pub fn websocket_origins<B>(&self, request: &Request<B>) -> Vec<String> {
        let mut origins = self.origins.clone();
        let host = request
            .headers()
            .get(HOST)
            .and_then(|host| host.to_str().ok())
            .or_else(|| {
                request
                    .uri()
                    .authority()
                    .map(|authority| authority.as_str())
            });
        if let Some(host) = host {
            origins.push(format!("http://{host}"));
            origins.push(format!("https://{host}"));
        }
        origins
    }
}

fn allow(headers: &mut HeaderMap, origin: HeaderValue) {
    headers.insert(ACCESS_CONTROL_ALLOW_ORIGIN, origin);
    headers.insert(
        ACCESS_CONTROL_ALLOW_CREDENTIALS,
        HeaderValue::from_static("true"),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn preflight(origin: &str) -> Request<()> {
        Request::builder()
            .method(Method::OPTIONS)
            .uri("/hub/negotiate")
            .header(ORIGIN, origin)
            .header(ACCESS_CONTROL_REQUEST_METHOD, "POST")
            .body(())
            .unwrap()
    }

    #[test]
    fn off_by_default() {
        let policy = CorsPolicy::default();
        assert!(policy
            .preflight(&preflight("https://a.example"), "POST")
            .is_none());
        let mut response = response::text(StatusCode::OK, "x");
        let origin = HeaderValue::from_static("https://a.example");
        policy.decorate(Some(&origin), &mut response);
        assert!(response
            .headers()
            .get(ACCESS_CONTROL_ALLOW_ORIGIN)
            .is_none());
        assert!(response.headers().get(VARY).is_none());
    }

    #[test]
    fn origins_match_ignoring_case_and_a_trailing_slash() {
        let policy = CorsPolicy::new(["https://App.example:8443/"]);
        let response = policy
            .preflight(&preflight("https://app.EXAMPLE:8443"), "POST")
            .unwrap();
        assert_eq!(response.status(), StatusCode::NO_CONTENT);
        let other = policy
            .preflight(&preflight("https://app.example"), "POST")
            .unwrap();
        assert_eq!(other.status(), StatusCode::FORBIDDEN);
    }

    #[test]
    fn websocket_origins_add_the_requests_own_host() {
        let policy = CorsPolicy::new(["https://a.example"]);
        let request = Request::builder()
            .uri("/hub")
            .header(HOST, "127.0.0.1:5000")
            .body(())
            .unwrap();
        assert_eq!(
            policy.websocket_origins(&request),
            [
                "https://a.example",
                "http://127.0.0.1:5000",
                "https://127.0.0.1:5000"
            ]
        );
    }
}
