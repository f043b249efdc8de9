//! Forwarding headers and `trustedProxies`: a client's `X-Forwarded-For`, `X-Forwarded-Host`,
//! `X-Forwarded-Proto`, `Forwarded` and `X-Real-IP` are replaced unless the peer is trusted,
//! in which case the lists are extended; on ordinary requests and WebSocket handshakes alike.

mod support;

use serde_json::json;
use support::*;

const FORGED: &str = "X-Forwarded-For: 10.1.1.1\r\nX-Forwarded-Host: admin.internal\r\n\
    X-Forwarded-Proto: https\r\nForwarded: for=10.1.1.1;proto=https\r\nX-Real-IP: 10.9.9.9\r\n";

/// The forwarding headers the backend saw, one `name=value` per line, from its echo.
fn forwarding_lines(seen: &str) -> Vec<&str> {
    let mut lines: Vec<&str> = seen
        .lines()
        .filter(|l| {
            l.starts_with("x-forwarded-")
                || l.starts_with("forwarded=")
                || l.starts_with("x-real-ip=")
        })
        .collect();
    lines.sort();
    lines
}

async fn seen_by_backend(trusted: Option<&str>) -> (Vec<String>, Vec<String>, u16) {
    let backend = Backend::start("b1").await;
    let port = free_port();
    let mut doc = basic_config(port, &[&backend], json!({}), None);
    if let Some(range) = trusted {
        doc["trustedProxies"] = json!([range]);
    }
    let gateway = start_gateway(&doc).await;
    wait_healthy(&gateway, 1).await;
    let response = get(port, "/headers", FORGED).await;
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    let http: Vec<String> = forwarding_lines(&response)
        .into_iter()
        .map(str::to_owned)
        .collect();
    let (mut ws, _) = bounded("connect", ws_connect(port, "/ws", FORGED))
        .await
        .unwrap();
    let seen = ask(&mut ws, "headers").await;
    let websocket = forwarding_lines(&seen)
        .into_iter()
        .map(str::to_owned)
        .collect();
    drop(ws);
    gateway.shutdown().await;
    (http, websocket, port)
}

#[tokio::test]
async fn an_untrusted_client_cannot_forge_forwarding_headers() {
    let (http, websocket, port) = seen_by_backend(None).await;
    let expected = [
        format!("forwarded=for=127.0.0.1;proto=http;host=\"localhost:{port}\""),
        "x-forwarded-for=127.0.0.1".to_owned(),
        format!("x-forwarded-host=localhost:{port}"),
        format!("x-forwarded-port={port}"),
        "x-forwarded-proto=http".to_owned(),
        "x-real-ip=127.0.0.1".to_owned(),
    ];
    assert_eq!(http, expected);
    assert_eq!(websocket, expected);
}

#[tokio::test]
async fn a_trusted_proxy_s_lists_are_extended() {
    let (http, websocket, port) = seen_by_backend(Some("127.0.0.0/8")).await;
    let expected = [
        format!(
            "forwarded=for=10.1.1.1;proto=https, for=127.0.0.1;proto=http;host=\"localhost:{port}\""
        ),
        "x-forwarded-for=10.1.1.1, 127.0.0.1".to_owned(),
        "x-forwarded-host=admin.internal".to_owned(),
        format!("x-forwarded-port={port}"),
        "x-forwarded-proto=https".to_owned(),
        "x-real-ip=10.9.9.9".to_owned(),
    ];
    assert_eq!(http, expected);
    assert_eq!(websocket, expected);
}

#[tokio::test]
async fn a_peer_outside_the_trusted_ranges_is_not_believed() {
    let (http, _, _) = seen_by_backend(Some("10.0.0.0/8")).await;
    assert!(
        http.contains(&"x-forwarded-for=127.0.0.1".to_owned()),
        "{http:?}"
    );
    assert!(http.contains(&"x-real-ip=127.0.0.1".to_owned()), "{http:?}");
}
