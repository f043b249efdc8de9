//! Reuse of backend connections for ordinary requests (RFC 9112 section 9.3): consecutive
//! requests share one backend connection, reuse can be turned off, and a connection the
//! backend closes (`Connection: close`, or its own idle timeout) is never reused.

mod support;

use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;

use sockway_gateway::Gateway;
use support::{bounded, free_port, get, start_gateway, wait_healthy};

/// A backend whose every answer is the number of the TCP connection it came on; `/close`
/// answers with `Connection: close`. With `idle_close`, it drops connections that send no
/// request for that long, as servers with a keep-alive timeout do.
async fn numbering_backend(idle_close: Option<Duration>) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let connections = Arc::new(AtomicUsize::new(0));
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let number = connections.fetch_add(1, Ordering::Relaxed);
            tokio::spawn(async move {
                let service = service_fn(move |request: Request<Incoming>| async move {
                    let mut response = Response::new(Full::new(Bytes::from(format!("{number}"))));
                    if request.uri().path() == "/close" {
                        response
                            .headers_mut()
                            .insert("connection", "close".parse().unwrap());
                    }
                    Ok::<_, Infallible>(response)
                });
                let mut builder = hyper::server::conn::http1::Builder::new();
                if let Some(idle) = idle_close {
                    builder.timer(TokioTimer::new()).header_read_timeout(idle);
                }
                let _ = builder
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    port
}

fn config(gateway_port: u16, backend_port: u16, keep_alive: f64) -> serde_json::Value {
    serde_json::json!({
        "httpListeners": [{"name": "web", "port": gateway_port, "bindAddress": "127.0.0.1"}],
        "backendAddressPools": [{"name": "pool",
            "backendAddresses": [{"ipAddress": "127.0.0.1", "port": backend_port}]}],
        "backendHttpSettingsCollection": [{"name": "settings", "port": 1, "requestTimeout": 5,
            "probe": "fast"}],
        "probes": [{"name": "fast", "path": "/", "interval": 0.1, "timeout": 1,
            "unhealthyThreshold": 2}],
        "requestRoutingRules": [{"name": "rule", "ruleType": "Basic", "httpListener": "web",
            "backendAddressPool": "pool", "backendHttpSettings": "settings"}],
        "limits": {"closeGrace": 0.5, "shutdownTimeout": 0.3, "backendKeepAlive": keep_alive}
    })
}

/// The backend connection number that answered `GET path` through the gateway.
async fn connection_of(port: u16, path: &str) -> usize {
    let response = get(port, path, "").await;
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    let body = response.split("\r\n\r\n").nth(1).unwrap_or_default();
    body.trim()
        .parse()
        .unwrap_or_else(|_| panic!("no number in {response:?}"))
}

/// A gateway on a free port in front of a [`numbering_backend`], once the backend is healthy.
async fn gateway_with(keep_alive: f64, idle_close: Option<Duration>) -> (Gateway, u16) {
    let backend = numbering_backend(idle_close).await;
    let port = free_port();
    let gateway = start_gateway(&config(port, backend, keep_alive)).await;
    wait_healthy(&gateway, 1).await;
    (gateway, port)
}

async fn connections_of(port: u16, paths: &[&str]) -> Vec<usize> {
    let mut numbers = Vec::new();
    for path in paths {
        numbers.push(connection_of(port, path).await);
        // Let the connection go back to the idle list (it does once the body is read).
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    numbers
}

#[tokio::test]
async fn consecutive_requests_share_one_backend_connection() {
    let (gateway, port) = gateway_with(4.0, None).await;
    let numbers = bounded("requests", connections_of(port, &["/a"; 5])).await;
    assert!(
        numbers.iter().all(|&n| n == numbers[0]),
        "one connection for all: {numbers:?}"
    );
    gateway.shutdown().await;
}

#[tokio::test]
async fn zero_keep_alive_opens_a_connection_per_request() {
    let (gateway, port) = gateway_with(0.0, None).await;
    let mut numbers = bounded("requests", connections_of(port, &["/a"; 4])).await;
    numbers.dedup();
    assert_eq!(numbers.len(), 4, "a new connection each time: {numbers:?}");
    gateway.shutdown().await;
}

#[tokio::test]
async fn a_connection_the_backend_closes_is_not_reused() {
    let (gateway, port) = gateway_with(4.0, None).await;
    let numbers = bounded("requests", connections_of(port, &["/close", "/a", "/a"])).await;
    assert_ne!(numbers[0], numbers[1], "{numbers:?}");
    assert_eq!(numbers[1], numbers[2], "{numbers:?}");
    gateway.shutdown().await;
}

#[tokio::test]
async fn a_connection_the_backend_dropped_while_idle_costs_no_request() {
    let (gateway, port) = gateway_with(4.0, Some(Duration::from_millis(100))).await;
    for _ in 0..3 {
        bounded("request", connection_of(port, "/a")).await;
        // Longer than the backend keeps an idle connection.
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    gateway.shutdown().await;
}
