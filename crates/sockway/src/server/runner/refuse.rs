//! Refusals the runner writes itself, before hyper is involved (too many connections, a head
//! too large, a head too slow): a short HTTP/1.1 response with a plain-text body saying why,
//! then the connection is closed gently so the client gets to read it.

use std::time::Duration;

use http::StatusCode;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// How long writing a refusal may take.
const WRITE_TIMEOUT: Duration = Duration::from_secs(2);
/// How long, and how many bytes, to keep reading after a refusal. Closing a socket with unread
/// data makes the kernel send a reset, which can destroy the response before the client reads
/// it; reading for a moment first avoids that.
const LINGER_TIME: Duration = Duration::from_secs(1);
const LINGER_BYTES: usize = 64 * 1024;

/// A refusal to write: status, extra headers, and the explanation for the body.
#[derive(Debug, Clone)]
pub(super) struct Refusal {
    pub(super) status: StatusCode,
    pub(super) headers: Vec<(&'static str, String)>,
    pub(super) message: String,
}

impl Refusal {
    pub(super) fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            headers: Vec::new(),
            message: message.into(),
        }
    }

    pub(super) fn header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    /// The response bytes.
    fn encode(&self) -> Vec<u8> {
        let body = format!("{}\n", self.message);
        let mut head = format!(
            "HTTP/1.1 {} {}\r\ncontent-type: text/plain; charset=utf-8\r\n\
             content-length: {}\r\nconnection: close\r\n",
            self.status.as_u16(),
            self.status.canonical_reason().unwrap_or(""),
            body.len()
        );
        for (name, value) in &self.headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("\r\n");
        let mut bytes = head.into_bytes();
        bytes.extend_from_slice(body.as_bytes());
        bytes
    }

    /// Writes the refusal, shuts the write side, and reads briefly before closing.
    pub(super) async fn send<S: AsyncRead + AsyncWrite + Unpin>(&self, mut io: S) {
        let bytes = self.encode();
        let written = tokio::time::timeout(WRITE_TIMEOUT, async {
            io.write_all(&bytes).await?;
            io.shutdown().await
        })
        .await;
        if !matches!(written, Ok(Ok(()))) {
            return;
        }
        let _ = tokio::time::timeout(LINGER_TIME, async {
            let mut sink = [0u8; 4096];
            let mut total = 0;
            while total < LINGER_BYTES {
                match io.read(&mut sink).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => total += n,
                }
            }
        })
        .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_are_complete_responses_with_a_body() {
        let refusal =
            Refusal::new(StatusCode::SERVICE_UNAVAILABLE, "too busy").header("retry-after", "5");
        let text = String::from_utf8(refusal.encode()).unwrap();
        assert!(text.starts_with("HTTP/1.1 503 Service Unavailable\r\n"));
        assert!(text.contains("\r\nretry-after: 5\r\n"));
        assert!(text.contains("\r\ncontent-length: 9\r\n"));
        assert!(text.ends_with("\r\n\r\ntoo busy\n"));
    }
}
