//! The access log's request line counts both bodies: the request body forwarded to the backend
//! (`request_bytes`) and the response body sent to the client (`bytes`).

mod support;

use std::io::Write;
use std::sync::{Arc, Mutex};

use serde_json::json;
use support::*;

/// Collects what the subscriber writes.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

// One thread (tokio's current-thread runtime), so the subscriber set for the test thread sees
// every task of the gateway.
#[tokio::test(flavor = "current_thread")]
async fn a_request_line_has_the_bytes_of_both_bodies() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter("sockway_gateway::access=info")
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let backend = Backend::start("b1").await;
    let port = free_port();
    let gateway = start_gateway(&basic_config(port, &[&backend], json!({}), None)).await;
    wait_healthy(&gateway, 1).await;
    let body = "0123456789abcdef";
    let request = format!(
        "POST /headers HTTP/1.1\r\nHost: localhost:{port}\r\nConnection: close\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let response = raw_exchange(port, request.as_bytes()).await;
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    let response_body = response.split("\r\n\r\n").nth(1).unwrap_or_default().len();
    let line = bounded("access line", async {
        loop {
            let text = captured.text();
            if let Some(line) = text.lines().find(|l| l.contains("method=POST")) {
                return line.to_owned();
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    })
    .await;
    assert!(line.contains("request_bytes=16"), "{line}");
    assert!(line.contains(&format!("bytes={response_body} ")), "{line}");
    gateway.shutdown().await;
}

#[tokio::test(flavor = "current_thread")]
async fn secret_query_parameters_are_redacted_in_request_and_session_lines() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter("sockway_gateway::access=info")
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let backend = Backend::start("b1").await;
    let port = free_port();
    let mut doc = basic_config(port, &[&backend], json!({}), None);
    doc["accessLog"] = json!({"redactQueryParameters": ["access_token", "sig"]});
    let gateway = start_gateway(&doc).await;
    wait_healthy(&gateway, 1).await;
    let response = get(port, "/headers?sig=hunter2&room=7", "").await;
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    let (mut ws, _) = bounded(
        "connect",
        ws_connect(port, "/ws?access_token=s3cret&room=8", ""),
    )
    .await
    .unwrap();
    assert_eq!(ask(&mut ws, "hi").await, "hi");
    bounded("close", ws.close(sockway::CloseCode::NORMAL, "bye"))
        .await
        .unwrap();
    let text = bounded("access lines", async {
        loop {
            let text = captured.text();
            if text.contains("websocket session") && text.contains("room=7") {
                return text;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    })
    .await;
    assert!(
        !text.contains("hunter2") && !text.contains("s3cret"),
        "{text}"
    );
    assert!(text.contains("/headers?sig=REDACTED&room=7"), "{text}");
    let session = text
        .lines()
        .find(|l| l.contains("websocket session"))
        .unwrap_or_default();
    assert!(
        session.contains("/ws?access_token=REDACTED&room=8"),
        "{session}"
    );
    gateway.shutdown().await;
}
