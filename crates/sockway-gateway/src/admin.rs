//! The admin listener: `GET /metrics` ([`crate::metrics`], Prometheus text format 0.0.4) and
//! `GET /healthz` (200 while the gateway runs). It is a separate socket so that metrics are
//! never exposed on the public listeners; bind it to a private address.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use http::header::CONTENT_TYPE;
use http::{HeaderValue, Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::proxy::body::{full, refusal, ProxyBody};
use crate::state::Shared;

/// Serves the admin endpoints on `listener` until `shutdown` turns true.
pub fn start(
    shared: Arc<Shared>,
    listener: TcpListener,
    mut shutdown: watch::Receiver<bool>,
) -> SocketAddr {
    let addr = listener
        .local_addr()
        .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 0)));
    tokio::spawn(async move {
        loop {
            let (stream, _) = tokio::select! {
                a = listener.accept() => match a { Ok(a) => a, Err(_) => continue },
                _ = shutdown.wait_for(|s| *s) => break,
            };
            let shared = shared.clone();
            tokio::spawn(async move {
                let service = service_fn(move |request| answer(shared.clone(), request));
                let _ = tokio::time::timeout(
                    std::time::Duration::from_secs(30),
                    hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service),
                )
                .await;
            });
        }
    });
    addr
}

async fn answer(
    shared: Arc<Shared>,
    request: Request<Incoming>,
) -> Result<Response<ProxyBody>, Infallible> {
    if request.method() != Method::GET {
        return Ok(refusal(
            StatusCode::METHOD_NOT_ALLOWED,
            "the admin listener only answers GET",
        ));
    }
    Ok(match request.uri().path() {
        "/metrics" => {
            let runtime = shared.current();
            let text = shared
                .metrics
                .render(runtime.upstreams.values(), shared.sessions.count());
            let mut response = Response::new(full(text));
            response.headers_mut().insert(
                CONTENT_TYPE,
                HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
            );
            response
        }
        "/healthz" => Response::new(full("ok\n")),
        _ => refusal(
            StatusCode::NOT_FOUND,
            "the admin listener serves /metrics and /healthz",
        ),
    })
}
