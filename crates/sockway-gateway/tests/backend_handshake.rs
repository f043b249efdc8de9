//! A backend's 101 is checked on every path (RFC 6455 section 4.1, the client's checks): a
//! backend that answers 101 to anything, or with the wrong `Sec-WebSocket-Accept`, gets the
//! client a 502 and its connection closed, never a raw tunnel (WebSocket smuggling).

mod support;

use std::net::SocketAddr;

use serde_json::json;
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

/// What the lying backend sends to an upgrade request on each path.
fn lie_for(path: &str) -> &'static str {
    match path {
        // Answers 101 to anything: no Upgrade, no Connection, no accept.
        "/bare" => "HTTP/1.1 101 Switching Protocols\r\n\r\n",
        // Looks right but does not answer the key that was sent.
        "/wrong-accept" => {
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Accept: AAAAAAAAAAAAAAAAAAAAAAAAAAA=\r\n\r\n"
        }
        // The right accept for the test client's key, but a protocol other than websocket.
        _ => {
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n"
        }
    }
}

/// A backend that answers probes with 200 and every upgrade with the lie its path names, then
/// reports on `closed` whether the gateway closed that connection (EOF within the limit).
async fn lying_backend() -> (SocketAddr, mpsc::Receiver<bool>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (closed, rx) = mpsc::channel(16);
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(answer(stream, closed.clone()));
        }
    });
    (addr, rx)
}

async fn answer(mut stream: TcpStream, closed: mpsc::Sender<bool>) {
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
        if head.len() > 64 * 1024 {
            return;
        }
    }
    let text = String::from_utf8_lossy(&head).to_ascii_lowercase();
    if !text.contains("upgrade: websocket") {
        let _ = stream
            .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\nok\n")
            .await;
        return;
    }
    let path = text.split_whitespace().nth(1).unwrap_or("/").to_owned();
    if stream.write_all(lie_for(&path).as_bytes()).await.is_err() {
        return;
    }
    // Bytes a smuggled request would ride on; the gateway must not pass them to the client.
    let _ = stream.write_all(b"SMUGGLED").await;
    let eof = tokio::time::timeout(LIMIT, async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await
    .is_ok();
    let _ = closed.send(eof).await;
}

#[tokio::test]
async fn a_backend_that_lies_in_its_101_gets_the_client_a_502_and_is_closed() {
    let (addr, mut closed) = lying_backend().await;
    let port = free_port();
    let mut doc = basic_config(port, &[], json!({}), None);
    doc["backendAddressPools"][0]["backendAddresses"] =
        json!([{"ipAddress": "127.0.0.1", "port": addr.port()}]);
    let gateway = start_gateway(&doc).await;
    wait_healthy(&gateway, 1).await;

    for path in ["/bare", "/wrong-accept", "/not-websocket"] {
        let answer = bounded("handshake through the gateway", ws_connect(port, path, "")).await;
        let Err(response) = answer else {
            panic!("{path}: the client got a WebSocket from a lying backend");
        };
        assert!(response.starts_with("HTTP/1.1 502"), "{path}: {response}");
        assert!(
            response.contains("invalid WebSocket handshake"),
            "{path}: {response}"
        );
        assert!(!response.contains("SMUGGLED"), "{path}: {response}");
        let eof = bounded("backend connection report", closed.recv()).await;
        assert_eq!(eof, Some(true), "{path}: the backend connection was closed");
    }
    let metrics = gateway.metrics_text();
    assert!(metrics.contains("backend_bad_handshake"), "{metrics}");
    gateway.shutdown().await;
}

#[tokio::test]
async fn an_honest_backend_still_relays() {
    let backend = Backend::start("b1").await;
    let port = free_port();
    let gateway = start_gateway(&basic_config(port, &[&backend], json!({}), None)).await;
    wait_healthy(&gateway, 1).await;
    let (mut ws, head) = bounded("connect", ws_connect(port, "/chat", ""))
        .await
        .unwrap();
    assert!(
        head.to_ascii_lowercase()
            .contains("sec-websocket-protocol: chat"),
        "{head}"
    );
    assert_eq!(ask(&mut ws, "whoami").await, "b1");
    drop(ws);
    gateway.shutdown().await;
}
