//! Forwarding an ordinary request: hop-by-hop fields removed (RFC 9110 section 7.6.1),
//! forwarding headers set per `trustedProxies` ([`crate::forwarding`]), `Host` per the
//! backend settings, the body streamed with the size limit and the idle limit, the response head awaited for
//! at most `requestTimeout` (504 after that, 502 when the backend cannot be reached), and the response
//! streamed back with its own hop-by-hop fields removed. Backends are spoken to in HTTP/1.1
//! whatever the client used (RFC 9110 section 7.6: intermediaries may change versions).

use std::sync::atomic::Ordering;

use http::header::CONTENT_LENGTH;
use http::{Request, Response, StatusCode, Uri, Version};
use http_body_util::BodyExt;
use hyper::body::Incoming;

use super::backend::SendError;
use super::body::{refusal, OnEnd, ProxyBody, Watched};
use super::headers;
use super::retry::{self, Retry};
use super::{backend, Forward};

/// Forwards `request` to the picked backend and returns the response to send.
pub(crate) async fn forward(mut fwd: Forward, request: Request<Incoming>) -> Response<ProxyBody> {
    let runtime = fwd.runtime.clone();
    let limits = &runtime.limits;
    let declared = request
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > limits.max_request_body_bytes) {
        fwd.shared.metrics.refusal("body_too_large");
        let msg = format!(
            "the request body is larger than the gateway's limit of {} bytes",
            limits.max_request_body_bytes
        );
        return done(fwd, refusal(StatusCode::PAYLOAD_TOO_LARGE, &msg), 0);
    }
    let backend = fwd.active.backend().clone();
    let settings = &fwd.upstream.settings;
    let timeout = settings.request_timeout;
    let (parts, body) = request.into_parts();
    let forwarded = fwd.record.request_bytes.clone();
    let on_request_end: OnEnd = Box::new(move |bytes| forwarded.store(bytes, Ordering::Relaxed));
    let mut out = Request::new(Watched::new(
        body,
        timeout,
        limits.max_request_body_bytes,
        Some(on_request_end),
    ));
    *out.method_mut() = parts.method.clone();
    *out.uri_mut() = origin_form(&parts.uri);
    *out.version_mut() = Version::HTTP_11;
    let original_host = headers::original_host(&parts.uri, &parts.headers);
    let mut h = parts.headers;
    headers::remove_hop_by_hop(&mut h);
    headers::set_host(&mut h, &settings.host, &backend, original_host.as_ref());
    crate::forwarding::apply(
        &mut h,
        crate::forwarding::Hop {
            peer: fwd.conn.peer,
            scheme: fwd.scheme(),
            port: fwd.conn.local_port,
            host: original_host.as_ref(),
        },
        fwd.runtime.trusted_proxies.trusts(fwd.conn.peer.ip()),
    );
    super::rewrite::apply(&fwd.request_edits, &mut h);
    *out.headers_mut() = h;
    let mut backend = backend;
    let mut retry = Retry::new(&fwd);
    let sent = loop {
        let upstream = fwd.upstream.clone();
        let settings = &upstream.settings;
        backend.stats.requests.fetch_add(1, Ordering::Relaxed);
        let sni = retry::sni(settings, &backend);
        let send = backend::send(
            &backend,
            &fwd.shared.connections,
            settings.tls.as_ref(),
            &sni,
            out,
            limits.backend_keep_alive,
        );
        match tokio::time::timeout(timeout, send).await {
            Ok(Err(SendError::Connect { why, request })) => {
                let Some(next) = retry.next(&mut fwd, &why) else {
                    break Ok(Err((why, true)));
                };
                backend = next;
                out = *request;
                let policy = &fwd.upstream.settings.host;
                headers::set_host(out.headers_mut(), policy, &backend, original_host.as_ref());
            }
            Ok(Err(SendError::Exchange(why))) => break Ok(Err((why, false))),
            Ok(Ok(response)) => break Ok(Ok(response)),
            Err(elapsed) => break Err(elapsed),
        }
    };
    let authority = backend.authority();
    let response = match sent {
        Ok(Ok(response)) => response,
        Ok(Err((why, counted))) => {
            backend.stats.errors.fetch_add(1, Ordering::Relaxed);
            if !counted {
                retry::passive(&fwd, &backend, false);
            }
            tracing::warn!(backend = %authority, error = %why, "backend request failed");
            fwd.shared.metrics.refusal("backend_unreachable");
            let msg = format!("the gateway could not get an answer from backend {authority}");
            return done(fwd, refusal(StatusCode::BAD_GATEWAY, &msg), 0);
        }
        Err(_) => {
            backend.stats.errors.fetch_add(1, Ordering::Relaxed);
            retry::passive(&fwd, &backend, false);
            fwd.shared.metrics.refusal("backend_timeout");
            let msg = format!(
                "backend {authority} did not answer within the request timeout ({:?})",
                timeout
            );
            return done(fwd, refusal(StatusCode::GATEWAY_TIMEOUT, &msg), 0);
        }
    };
    retry::passive(&fwd, &backend, !response.status().is_server_error());
    relay_response(fwd, response)
}

/// A response from the backend, cleaned up and with its body watched.
pub(crate) fn relay_response(fwd: Forward, response: Response<Incoming>) -> Response<ProxyBody> {
    let (mut parts, body) = response.into_parts();
    headers::remove_hop_by_hop(&mut parts.headers);
    if let Some((name, value)) = &fwd.set_cookie {
        headers::set_affinity_cookie(&mut parts.headers, name, value, fwd.conn.secure);
    }
    super::rewrite::apply(&fwd.response_edits, &mut parts.headers);
    let Forward {
        shared,
        mut record,
        active,
        upstream,
        ..
    } = fwd;
    record.status = parts.status.as_u16();
    shared.metrics.response(&record.listener, record.status);
    let on_end: OnEnd = Box::new(move |bytes| {
        record.log(bytes);
        drop(active);
    });
    let idle = upstream.settings.request_timeout;
    let body = Watched::new(body, idle, u64::MAX, Some(on_end)).boxed_unsync();
    Response::from_parts(parts, body)
}

/// Logs and counts a response produced by the gateway for a picked backend.
pub(crate) fn done(fwd: Forward, response: Response<ProxyBody>, bytes: u64) -> Response<ProxyBody> {
    let Forward {
        shared,
        mut record,
        runtime,
        ..
    } = fwd;
    let response = runtime.error_pages.apply(&record.listener, response);
    record.status = response.status().as_u16();
    shared.metrics.response(&record.listener, record.status);
    record.log(bytes);
    response
}

/// `/path?query` of `uri` (HTTP/2 requests carry an absolute URI).
pub(crate) fn origin_form(uri: &Uri) -> Uri {
    uri.path_and_query()
        .and_then(|pq| pq.as_str().parse().ok())
        .unwrap_or_else(|| Uri::from_static("/"))
}
