//! The request path: refuse what the guard refused, find the listener and rule
//! ([`crate::routing`]), pick a backend ([`crate::pool::Upstream::pick`]), then forward an
//! ordinary request ([`http`]) or a WebSocket handshake and relay ([`websocket`]).
//! Every refusal is a status with a plain-text body: 400 for ambiguous framing, 404 when no
//! listener serves the host, 421 when the host's listener is not the one the TLS server name
//! picked, 413 for an oversized body, 502 when no backend is healthy or
//! reachable, 504 when the backend does not answer within `requestTimeout`.

pub mod backend;
pub mod body;
pub mod boundary;
mod clock;
pub mod error_pages;
pub mod front_socket;
pub mod headers;
pub mod heartbeat;
pub mod http;
pub mod keepalive;
#[cfg(target_os = "linux")]
mod record_scan;
mod redirect;
pub mod relay;
#[cfg(test)]
mod relay_props;
mod retry;
pub mod rewrite;
mod scratch;
#[cfg(target_os = "linux")]
mod splice;
#[cfg(target_os = "linux")]
mod tls13_keys;
#[cfg(target_os = "linux")]
mod tls13_records;
#[cfg(target_os = "linux")]
pub mod tls13_secrets;
#[cfg(target_os = "linux")]
pub mod tls13_stream;
#[cfg(all(test, target_os = "linux"))]
pub(crate) mod tls_test_support;
pub mod upgraded;
pub mod websocket;

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Instant;

use ::http::{Request, Response, StatusCode};
use hyper::body::Incoming;

use crate::access_log::{redact_target, version_name, RequestRecord};
use crate::conn::ConnInfo;
use crate::guard::REFUSAL_HEADER;
use crate::pool::{ActiveGuard, Upstream};
use crate::routing::ListenerRoute;
use crate::state::{Runtime, Shared};
use body::{refusal, refusal_and_close, ProxyBody};

/// Everything a forwarder needs for one request.
pub(crate) struct Forward {
    pub shared: Arc<Shared>,
    pub conn: Arc<ConnInfo>,
    pub runtime: Arc<Runtime>,
    pub listener: ListenerRoute,
    pub upstream: Arc<Upstream>,
    pub active: ActiveGuard,
    /// Affinity cookie to set on the response, if any.
    pub set_cookie: Option<(String, String)>,
    pub record: RequestRecord,
    /// The rule's header rewrites for the request sent to the backend.
    pub request_edits: Vec<rewrite::HeaderEdit>,
    /// The rule's header rewrites for the response sent to the client.
    pub response_edits: Vec<rewrite::HeaderEdit>,
}

impl Forward {
    /// The listener's scheme (`http`/`https`) for `X-Forwarded-Proto`.
    pub fn scheme(&self) -> &'static str {
        if self.conn.secure {
            "https"
        } else {
            "http"
        }
    }
}

/// The hyper service: answers one request.
pub async fn serve(
    shared: Arc<Shared>,
    conn: Arc<ConnInfo>,
    request: Request<Incoming>,
) -> Result<Response<ProxyBody>, Infallible> {
    let start = Instant::now();
    let runtime = shared.current();
    let target = request.uri().path_and_query().map_or_else(
        || "/".to_owned(),
        |p| {
            let names = &runtime.config.access_log.redact_query_parameters;
            redact_target(p.as_str(), names).chars().take(512).collect()
        },
    );
    let mut record = RequestRecord {
        start,
        client: conn.peer,
        http: version_name(request.version()),
        method: request.method().to_string(),
        target,
        listener: "-".into(),
        backend: "-".into(),
        status: 0,
        request_bytes: Arc::default(),
    };
    if let Some(r) = conn
        .guard
        .refusal_for(request.headers().get(REFUSAL_HEADER).map(|v| v.as_bytes()))
    {
        shared.metrics.refusal(match r.status {
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE => "header_too_large",
            _ => "ambiguous_framing",
        });
        return Ok(finish(
            &shared,
            record,
            refusal_and_close(r.status, &r.message),
        ));
    }
    let host = headers::request_host(request.uri(), request.headers());
    let Some(listener) = runtime.routes.listener(conn.local_port, host.as_deref()) else {
        shared.metrics.refusal("no_listener");
        let msg = format!(
            "no listener on port {} serves host {:?}",
            conn.local_port,
            host.unwrap_or_default()
        );
        return Ok(finish(
            &shared,
            record,
            refusal(StatusCode::NOT_FOUND, &msg),
        ));
    };
    record.listener = listener.name.clone();
    if let Some(msg) = misdirected(&runtime, &conn, &listener.name) {
        shared.metrics.refusal("misdirected");
        return Ok(finish(
            &shared,
            record,
            refusal(StatusCode::MISDIRECTED_REQUEST, &msg),
        ));
    }
    if let Some(name) = &listener.redirect {
        let response = redirect::respond(&runtime.config, name, host.as_deref(), request.uri());
        return Ok(finish(&shared, record, response));
    }
    let route = listener.route(request.uri().path());
    let Some(upstream) = runtime.upstreams.get(route.upstream).cloned() else {
        shared.metrics.refusal("no_upstream");
        let msg = format!("rule {:?} has no usable backend pool", route.rule);
        return Ok(finish(
            &shared,
            record,
            refusal(StatusCode::BAD_GATEWAY, &msg),
        ));
    };
    let affinity = upstream
        .settings
        .affinity_cookie
        .as_deref()
        .and_then(|name| headers::cookie(request.headers(), name));
    let Some((backend, by_cookie)) = upstream.pick(affinity.as_deref()) else {
        shared.metrics.refusal("no_healthy_backend");
        let msg = format!(
            "no healthy backend in pool {:?} (settings {:?}): every server fails its health probe",
            upstream.key.pool, upstream.key.settings
        );
        return Ok(finish(
            &shared,
            record,
            refusal(StatusCode::BAD_GATEWAY, &msg),
        ));
    };
    record.backend = backend.authority();
    let set_cookie = match (&upstream.settings.affinity_cookie, by_cookie) {
        (Some(name), false) => Some((name.clone(), backend.id.clone())),
        _ => None,
    };
    let listener = listener.clone();
    let vars = rewrite::Vars {
        client: conn.peer,
        server_port: conn.local_port,
        secure: conn.secure,
        method: request.method(),
        uri: request.uri(),
        host: host.as_deref(),
        headers: request.headers(),
    };
    let (request_edits, response_edits) =
        rewrite::edits(&runtime.config, listener.rewrite.as_deref(), &vars);
    let forward = Forward {
        request_edits,
        response_edits,
        shared: shared.clone(),
        conn,
        runtime: runtime.clone(),
        listener,
        upstream,
        active: backend.begin(),
        set_cookie,
        record,
    };
    let response = if sockway::server::is_websocket_request(&request) {
        websocket::forward(forward, request).await
    } else {
        http::forward(forward, request).await
    };
    Ok(response)
}

/// Why a request on a TLS connection may not be served by `listener` (the one its host
/// picked), if it may not: the connection's certificate was chosen by SNI for another
/// listener (or for none). RFC 9110 section 15.5.20 has such requests answered 421
/// (Misdirected Request), which tells a client that reused a connection for another host
/// (HTTP/2 connection coalescing, RFC 9113 section 9.1.1) to retry on a new one; serving it
/// would route by a name the client never proved it meant for this certificate.
fn misdirected(runtime: &Runtime, conn: &ConnInfo, listener: &str) -> Option<String> {
    if !conn.secure {
        return None;
    }
    let by_sni = runtime
        .routes
        .listener(conn.local_port, conn.sni.as_deref());
    if by_sni.is_some_and(|l| l.name == listener) {
        return None;
    }
    Some(format!(
        "this connection was opened for {}, which listener {listener:?} does not serve; \
         open a new connection for this host",
        conn.sni
            .as_deref()
            .map_or_else(|| "no server name".to_owned(), |s| format!("{s:?}"))
    ))
}

/// Counts and logs a response the gateway produced itself.
fn finish(
    shared: &Shared,
    mut record: RequestRecord,
    response: Response<ProxyBody>,
) -> Response<ProxyBody> {
    let response = shared
        .current()
        .error_pages
        .apply(&record.listener, response);
    record.status = response.status().as_u16();
    shared.metrics.response(&record.listener, record.status);
    record.log(0);
    response
}
