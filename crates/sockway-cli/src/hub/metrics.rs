//! `sockway hub --metrics-listen ADDR`: a listener of its own serving `GET /metrics` (the
//! server's backplane and relay counters in the Prometheus text format 0.0.4, see
//! [`ScaleOutLifetimeManager::render_prometheus`]) and `GET /healthz` (200 while the server
//! runs), in the style of the gateway's admin listener: a separate socket, so metrics are
//! never exposed on the hub's public address, answering loopback peers only (403 for others).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::CONTENT_TYPE;
use http::{HeaderValue, Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use sockway::server::Body;
use sockway_hub::backplane::ScaleOutLifetimeManager;
use tokio::net::TcpListener;

use super::{refuse_unless_get, text};

/// How long one metrics connection may stay open: a scrape takes milliseconds, and a peer
/// that holds the socket longer is cut off.
const CONNECTION_LIMIT: Duration = Duration::from_secs(30);

/// The first pause after an accept error (out of file descriptors, say); it doubles up to
/// [`MAX_ACCEPT_PAUSE`], as the gateway's admin listener does.
const FIRST_ACCEPT_PAUSE: Duration = Duration::from_millis(10);

/// The longest pause after consecutive accept errors.
const MAX_ACCEPT_PAUSE: Duration = Duration::from_secs(1);

/// The content type of the Prometheus text exposition format.
const PROMETHEUS: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Serves the metrics endpoints on `listener` for as long as the task runs.
pub async fn serve(listener: TcpListener, manager: Arc<ScaleOutLifetimeManager>) {
    let mut pause = FIRST_ACCEPT_PAUSE;
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => {
                pause = FIRST_ACCEPT_PAUSE;
                accepted
            }
            Err(error) => {
                tracing::warn!(%error, ?pause, "metrics listener: accept failed");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(MAX_ACCEPT_PAUSE);
                continue;
            }
        };
        let manager = manager.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request| {
                std::future::ready(Ok::<_, Infallible>(answer(&manager, peer, &request)))
            });
            let connection = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service);
            let _ = tokio::time::timeout(CONNECTION_LIMIT, connection).await;
        });
    }
}

/// The answer to one request from `peer`.
fn answer(
    manager: &ScaleOutLifetimeManager,
    peer: SocketAddr,
    request: &Request<Incoming>,
) -> Response<Body> {
    if !peer.ip().to_canonical().is_loopback() {
        return text(
            StatusCode::FORBIDDEN,
            "the metrics listener answers loopback clients only\n",
        );
    }
    if let Some(refusal) = refuse_unless_get(request.method()) {
        return refusal;
    }
    match request.uri().path() {
        "/metrics" => {
            let mut response = Response::new(Body::new(Bytes::from(manager.render_prometheus())));
            response
                .headers_mut()
                .insert(CONTENT_TYPE, HeaderValue::from_static(PROMETHEUS));
            response
        }
        "/healthz" => text(StatusCode::OK, "ok\n"),
        _ => text(
            StatusCode::NOT_FOUND,
            "not found: the metrics are at /metrics, the health check at /healthz\n",
        ),
    }
}
