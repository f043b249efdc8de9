//! Issue 19 item 6: WebSocket sessions multiplexed on one HTTP/2 connection each count
//! against `limits.maxConnections`, and `limits.maxConnectionsPerClient` caps one address.

mod support;

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http_body_util::Empty;
use hyper::client::conn::http2::SendRequest;
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::json;
use sockway::{Message, Role, WebSocket, WebSocketConfig};
use sockway_gateway::config::{self, Format};
use support::*;
use tokio::net::TcpStream;

type H2Socket = WebSocket<TokioIo<hyper::upgrade::Upgraded>>;

async fn h2_connect(port: u16) -> SendRequest<Empty<Bytes>> {
    let tcp = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let (mut sender, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tcp))
            .await
            .unwrap();
    tokio::spawn(conn);
    // An ordinary request lets the server's SETTINGS (ENABLE_CONNECT_PROTOCOL) arrive.
    let plain = http::Request::builder()
        .uri(format!("http://localhost:{port}/"))
        .version(http::Version::HTTP_2)
        .body(Empty::new())
        .unwrap();
    let response = bounded("h2 GET", sender.send_request(plain)).await.unwrap();
    assert_eq!(response.status(), 200);
    sender
}

/// Opens a WebSocket with extended CONNECT (RFC 8441); `Err(status)` if refused.
async fn h2_websocket(sender: &mut SendRequest<Empty<Bytes>>, port: u16) -> Result<H2Socket, u16> {
    let mut connect = http::Request::builder()
        .method(http::Method::CONNECT)
        .uri(format!("http://localhost:{port}/ws"))
        .version(http::Version::HTTP_2)
        .header("sec-websocket-version", "13")
        .body(Empty::new())
        .unwrap();
    connect
        .extensions_mut()
        .insert(hyper::ext::Protocol::from_static("websocket"));
    let mut response = bounded("extended CONNECT", sender.send_request(connect))
        .await
        .unwrap();
    if response.status() != 200 {
        return Err(response.status().as_u16());
    }
    let upgraded = bounded("stream", hyper::upgrade::on(&mut response))
        .await
        .unwrap();
    Ok(WebSocket::from_raw(
        TokioIo::new(upgraded),
        Role::Client,
        WebSocketConfig::default(),
        BytesMut::new(),
    ))
}

async fn echo(ws: &mut H2Socket, text: &str) {
    bounded("echo over h2", async {
        ws.send_text(text).await.unwrap();
        match ws.recv().await.unwrap() {
            Some(Message::Text(t)) => assert_eq!(t.as_str(), text),
            other => panic!("{other:?}"),
        }
    })
    .await;
}

#[tokio::test]
async fn http2_websocket_sessions_each_count_against_max_connections() {
    let backend = Backend::start("b").await;
    let port = free_port();
    let mut doc = basic_config(port, &[&backend], json!({}), None);
    doc["limits"]["maxConnections"] = json!(2);
    let gateway = start_gateway(&doc).await;
    wait_healthy(&gateway, 1).await;

    // The HTTP/2 connection holds one slot, its first session the second.
    let mut sender = h2_connect(port).await;
    let mut first = h2_websocket(&mut sender, port)
        .await
        .expect("first session");
    echo(&mut first, "one").await;
    assert_eq!(
        h2_websocket(&mut sender, port).await.err(),
        Some(503),
        "a second session on the same connection is over maxConnections"
    );
    let r = get(port, "/", "").await;
    assert!(r.starts_with("HTTP/1.1 503"), "{r}");
    assert!(gateway
        .metrics_text()
        .contains("sockway_gateway_refusals_total{reason=\"too_many_connections\"} 2"));
    echo(&mut first, "still open").await;

    // When the session ends its slot is free for the next one.
    drop(first);
    bounded("slot given back", async {
        loop {
            if let Ok(mut ws) = h2_websocket(&mut sender, port).await {
                echo(&mut ws, "two").await;
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    gateway.shutdown().await;
}

#[tokio::test]
async fn connections_from_one_address_are_limited_unless_it_is_a_trusted_proxy() {
    let backend = Backend::start("b").await;
    let port = free_port();
    let mut doc = basic_config(port, &[&backend], json!({}), None);
    doc["limits"]["maxConnectionsPerClient"] = json!(2);
    let gateway = start_gateway(&doc).await;
    wait_healthy(&gateway, 1).await;

    let (mut ws, _) = ws_connect(port, "/", "").await.unwrap();
    assert_eq!(ask(&mut ws, "hi").await, "hi");
    let idle = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let r = get(port, "/", "").await;
    assert!(
        r.starts_with("HTTP/1.1 503") && r.contains("maxConnectionsPerClient"),
        "{r}"
    );
    assert!(gateway
        .metrics_text()
        .contains("sockway_gateway_refusals_total{reason=\"too_many_client_connections\"} 1"));

    // A trusted proxy carries many clients: it is not limited per address.
    doc["trustedProxies"] = json!(["127.0.0.1"]);
    let config = config::from_str(&doc.to_string(), Format::Json).unwrap();
    gateway.apply(config).await.unwrap();
    let r = get(port, "/", "").await;
    assert!(r.starts_with("HTTP/1.1 200"), "{r}");
    assert_eq!(ask(&mut ws, "still open").await, "still open");
    drop(idle);
    gateway.shutdown().await;
}
