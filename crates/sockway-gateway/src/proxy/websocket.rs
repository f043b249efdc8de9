//! Forwarding a WebSocket handshake and relaying the session (as Azure Application Gateway
//! does: the Upgrade handshake is forwarded; after 101 the gateway relays both directions).
//!
//! The client's handshake is checked first (RFC 6455 section 4.2.1, via
//! `sockway_proto::handshake::validate_request`), so a broken one is refused by the gateway
//! with the same statuses a sockway server uses. The backend gets an HTTP/1.1 `GET` with
//! `Upgrade: websocket`, `Connection: Upgrade` and the client's `Sec-WebSocket-Key`,
//! `-Version`, `-Protocol`, `-Extensions` and `Origin`, plus the forwarding headers. A 101
//! from the backend is checked as a client checks it (RFC 6455 section 4.1, via
//! `sockway_proto::handshake::validate_response`: `Upgrade: websocket`, `Connection: upgrade`,
//! `Sec-WebSocket-Accept` for the key sent, only offered subprotocols and extensions); a bad
//! one gets the client a 502 and the backend connection is closed. A good one gets the client
//! 101 with the backend's headers (its `Sec-WebSocket-Accept` answers the client's own key)
//! and the relay starts; any other answer is passed back as an ordinary response.
//!
//! A client on HTTP/2 (extended CONNECT, RFC 8441) has no key: the gateway makes one, checks
//! the backend's accept as above, answers `200` and relays the stream the same way, since
//! RFC 8441 section 5 keeps the frame format of RFC 6455.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytes::Bytes;
use http::header::{CONNECTION, SEC_WEBSOCKET_ACCEPT, SEC_WEBSOCKET_KEY, UPGRADE};
use http::{HeaderValue, Method, Request, Response, StatusCode, Version};
use http_body_util::Empty;
use hyper::body::Incoming;
use sockway_proto::handshake::{self, RequestKind};

use super::backend::SendError;
use super::body::{full, refusal, ProxyBody};
use super::http::{done, origin_form, relay_response};
use super::relay::{relay, Counters, RelayConfig, Totals};
use super::retry::{self, Retry};
use super::upgraded::Side;
use super::{backend, headers, Forward};
use crate::access_log::SessionRecord;
use crate::pool::Backend;

/// Forwards a WebSocket handshake; on success spawns the relay.
pub(crate) async fn forward(
    mut fwd: Forward,
    mut request: Request<Incoming>,
) -> Response<ProxyBody> {
    let protocol = request
        .extensions()
        .get::<hyper::ext::Protocol>()
        .map(|p| p.as_str().to_owned());
    let offer = match handshake::validate_request(
        request.method(),
        request.version(),
        request.headers(),
        protocol.as_deref(),
    ) {
        Ok(offer) => offer,
        Err(e) => {
            fwd.shared.metrics.refusal("bad_websocket_handshake");
            let mut response = refusal(e.status(), &format!("WebSocket handshake refused: {e}"));
            response.headers_mut().extend(e.response_headers());
            return done(fwd, response, 0);
        }
    };
    let extended = offer.kind == RequestKind::ExtendedConnect;
    // On HTTP/2 many sessions share the connection's slot: each takes one of its own.
    let session_slot = if extended {
        let limits = fwd.runtime.slot_limits(fwd.conn.peer.ip());
        match fwd.conn.permit.another(limits) {
            Ok(slot) => Some(slot),
            Err(full) => {
                fwd.shared.metrics.refusal(full.reason());
                let response = refusal(StatusCode::SERVICE_UNAVAILABLE, full.message());
                return done(fwd, response, 0);
            }
        }
    } else {
        None
    };
    let client_upgrade = hyper::upgrade::on(&mut request);
    let backend = fwd.active.backend().clone();
    let settings = &fwd.upstream.settings;
    let timeout = settings.request_timeout;

    let (parts, _body) = request.into_parts();
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
    h.insert(UPGRADE, HeaderValue::from_static("websocket"));
    h.insert(CONNECTION, HeaderValue::from_static("Upgrade"));
    let key = match (&offer.key, extended) {
        (Some(key), false) => key.clone(),
        _ => {
            let key = handshake::generate_key();
            if let Ok(v) = HeaderValue::from_str(&key) {
                h.insert(SEC_WEBSOCKET_KEY, v);
            }
            key
        }
    };
    let mut out = Request::new(Empty::<Bytes>::new());
    *out.method_mut() = Method::GET;
    *out.uri_mut() = origin_form(&parts.uri);
    *out.version_mut() = Version::HTTP_11;
    *out.headers_mut() = h;

    let upstream = fwd.upstream.clone();
    let settings = &upstream.settings;
    let mut backend = backend;
    let mut retry = Retry::new(&fwd);
    let sent = loop {
        let sni = retry::sni(settings, &backend);
        let authority = backend.authority();
        let send = backend::send_on_new_connection(&authority, settings.tls.as_ref(), &sni, out);
        match tokio::time::timeout(timeout, send).await {
            Ok(Err(SendError::Connect { why, request })) => {
                backend
                    .stats
                    .handshakes_failed
                    .fetch_add(1, Ordering::Relaxed);
                let Some(next) = retry.next(&mut fwd, &why) else {
                    break Ok(Err((why, true)));
                };
                backend = next;
                out = *request;
                headers::set_host(
                    out.headers_mut(),
                    &settings.host,
                    &backend,
                    original_host.as_ref(),
                );
            }
            Ok(Err(SendError::Exchange(why))) => break Ok(Err((why, false))),
            Ok(Ok(response)) => break Ok(Ok(response)),
            Err(elapsed) => break Err(elapsed),
        }
    };
    let authority = backend.authority();
    let mut response = match sent {
        Ok(Ok(r)) => r,
        Ok(Err((why, counted))) => {
            backend
                .stats
                .handshakes_failed
                .fetch_add(1, Ordering::Relaxed);
            backend.stats.errors.fetch_add(1, Ordering::Relaxed);
            if !counted {
                retry::passive(&fwd, &backend, false);
            }
            tracing::warn!(backend = %authority, error = %why, "WebSocket handshake with backend failed");
            fwd.shared.metrics.refusal("backend_unreachable");
            let msg = format!("the gateway could not open a WebSocket to backend {authority}");
            return done(fwd, refusal(StatusCode::BAD_GATEWAY, &msg), 0);
        }
        Err(_) => {
            backend
                .stats
                .handshakes_failed
                .fetch_add(1, Ordering::Relaxed);
            backend.stats.errors.fetch_add(1, Ordering::Relaxed);
            retry::passive(&fwd, &backend, false);
            fwd.shared.metrics.refusal("backend_timeout");
            let msg = format!(
                "backend {authority} did not answer the WebSocket handshake within {timeout:?}"
            );
            return done(fwd, refusal(StatusCode::GATEWAY_TIMEOUT, &msg), 0);
        }
    };
    retry::passive(&fwd, &backend, !response.status().is_server_error());
    if response.status() != StatusCode::SWITCHING_PROTOCOLS {
        // The backend refused (403 for an origin, 400, ...): its answer goes back as is.
        backend
            .stats
            .handshakes_failed
            .fetch_add(1, Ordering::Relaxed);
        return relay_response(fwd, response);
    }
    // Checked on every path, not only for HTTP/2 clients: a backend that answers 101 to
    // anything (a plain HTTP server behind a misconfigured rule, or one that lies) would
    // otherwise turn the client's connection into a raw tunnel past the framing guard and
    // path routing (WebSocket smuggling). The key is the one the gateway sent: the client's
    // own on HTTP/1.1, the gateway's on HTTP/2.
    if let Err(e) = handshake::validate_response(
        RequestKind::Upgrade,
        response.status(),
        response.headers(),
        &key,
        &offer.subprotocols,
        &offer
            .extensions
            .iter()
            .map(|x| x.name.as_str())
            .collect::<Vec<_>>(),
    ) {
        backend
            .stats
            .handshakes_failed
            .fetch_add(1, Ordering::Relaxed);
        backend.stats.errors.fetch_add(1, Ordering::Relaxed);
        fwd.shared.metrics.refusal("backend_bad_handshake");
        tracing::warn!(backend = %authority, error = %e, "backend answered 101 with an invalid WebSocket handshake");
        // Dropping the response drops its pending upgrade: hyper then drops the backend's
        // connection instead of handing it over, so it is closed and never reused.
        drop(response);
        let msg = format!("backend {authority} sent an invalid WebSocket handshake: {e}");
        return done(fwd, refusal(StatusCode::BAD_GATEWAY, &msg), 0);
    }
    backend.stats.handshakes_ok.fetch_add(1, Ordering::Relaxed);
    let backend_upgrade = hyper::upgrade::on(&mut response);
    let mut answer = Response::new(full(Bytes::new()));
    let mut h = response.headers().clone();
    headers::remove_hop_by_hop(&mut h);
    if extended {
        *answer.status_mut() = StatusCode::OK;
        h.remove(SEC_WEBSOCKET_ACCEPT);
    } else {
        *answer.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
        h.insert(UPGRADE, HeaderValue::from_static("websocket"));
        h.insert(CONNECTION, HeaderValue::from_static("Upgrade"));
        fwd.conn.guard.set_upgraded();
    }
    if let Some((name, value)) = &fwd.set_cookie {
        headers::set_affinity_cookie(&mut h, name, value, fwd.conn.secure);
    }
    super::rewrite::apply(&fwd.response_edits, &mut h);
    *answer.headers_mut() = h;

    let Forward {
        shared,
        conn,
        runtime,
        listener,
        active,
        mut record,
        upstream,
        ..
    } = fwd;
    record.status = answer.status().as_u16();
    shared.metrics.response(&record.listener, record.status);
    let ticket = shared.sessions.register(&backend.id);
    let config = RelayConfig {
        idle: upstream.settings.request_timeout,
        buffer: runtime.limits.relay_buffer_bytes,
        close_grace: runtime.limits.close_grace,
        keep_alive: upstream.settings.websocket_keep_alive,
        io_uring: runtime.limits.relay_io_uring,
    };
    let grace = runtime.limits.close_grace;
    drop(runtime);
    let target = record.target.clone();
    let http = record.http;
    tokio::spawn(async move {
        let upgrades = async { (client_upgrade.await, backend_upgrade.await) };
        let (client, backend_io) = match tokio::time::timeout(grace * 2, upgrades).await {
            Ok((Ok(c), Ok(b))) => (c, b),
            Ok((c, b)) => {
                tracing::debug!(
                    client_ok = c.is_ok(),
                    backend_ok = b.is_ok(),
                    "upgrade did not complete"
                );
                return;
            }
            Err(_) => {
                tracing::debug!("upgrade did not complete in time");
                return;
            }
        };
        backend.stats.sessions.fetch_add(1, Ordering::Relaxed);
        let counters = Arc::new(Counters::default());
        let outcome = relay(
            Side::client(client),
            Side::backend(backend_io),
            config,
            ticket.orders.clone(),
            counters,
            backend.clone(),
        )
        .await;
        backend.stats.sessions.fetch_sub(1, Ordering::Relaxed);
        if matches!(
            outcome.ended_by_gateway,
            Some("idle timeout" | "ping unanswered")
        ) {
            shared.metrics.idle_closes.fetch_add(1, Ordering::Relaxed);
        }
        SessionRecord {
            client: conn.peer,
            http,
            target,
            listener: listener.name.clone(),
            backend: backend.authority(),
            duration: outcome.duration,
            bytes_up: outcome.bytes_up,
            bytes_down: outcome.bytes_down,
            client_close: outcome.client_close,
            backend_close: outcome.backend_close,
            ended_by_gateway: outcome.ended_by_gateway,
        }
        .log();
        drop(ticket);
        drop(active);
        drop(session_slot);
    });
    record.log(0);
    answer
}

/// A session's bytes also count in its backend's statistics.
impl Totals for Backend {
    fn totals(&self) -> [&std::sync::atomic::AtomicU64; 2] {
        [&self.stats.bytes_to_backend, &self.stats.bytes_from_backend]
    }
}
