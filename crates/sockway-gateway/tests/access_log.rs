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
