//! Access log: one `tracing` event per request and per WebSocket session, on target
//! `sockway_gateway::access` (filter it with `RUST_LOG=sockway_gateway::access=info`).
//! A request line is written when its response body ends (or is dropped), so it carries
//! the bytes sent; a session line when the relay ends, with its duration, the bytes each way
//! and the close codes seen from each side. Both carry `http`, the HTTP version the client
//! spoke to the gateway (`HTTP/2` for a WebSocket opened with extended CONNECT, RFC 8441);
//! backends are always spoken to in HTTP/1.1.
//!
//! Targets are logged with the values of secret query parameters replaced by `REDACTED`
//! ([`redact_target`], names from `accessLog.redactQueryParameters`): browsers cannot set
//! headers on a WebSocket, so tokens often ride in the URL (RFC 6750 section 2.3), and an
//! access log is read by more people than the secrets are meant for.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What is known about one request.
#[derive(Debug, Clone)]
pub struct RequestRecord {
    /// When it arrived.
    pub start: Instant,
    /// The client's address.
    pub client: SocketAddr,
    /// The HTTP version the client used ([`version_name`]).
    pub http: &'static str,
    /// Method.
    pub method: String,
    /// Path and query.
    pub target: String,
    /// Listener name (`-` if none matched).
    pub listener: String,
    /// Backend `host:port` (`-` if none).
    pub backend: String,
    /// Response status.
    pub status: u16,
    /// Request body bytes forwarded to the backend, set when the request body ends (or is
    /// dropped); shared with the body's watcher.
    pub request_bytes: Arc<AtomicU64>,
}

impl RequestRecord {
    /// Writes the line, with `bytes` of response body sent and the request body bytes
    /// forwarded (`request_bytes`).
    pub fn log(&self, bytes: u64) {
        tracing::info!(
            target: "sockway_gateway::access",
            client = %self.client,
            http = %self.http,
            method = %self.method,
            target_uri = %self.target,
            listener = %self.listener,
            backend = %self.backend,
            status = self.status,
            bytes,
            request_bytes = self.request_bytes.load(Ordering::Relaxed),
            duration_ms = millis(self.start.elapsed()),
            "request"
        );
    }
}

/// What is known about one WebSocket session when it ends.
#[derive(Debug, Clone)]
pub struct SessionRecord {
    /// The client's address.
    pub client: SocketAddr,
    /// The HTTP version the client opened the session over ([`version_name`]).
    pub http: &'static str,
    /// Path and query of the handshake.
    pub target: String,
    /// Listener name.
    pub listener: String,
    /// Backend `host:port`.
    pub backend: String,
    /// How long the relay ran.
    pub duration: Duration,
    /// Bytes from client to backend.
    pub bytes_up: u64,
    /// Bytes from backend to client.
    pub bytes_down: u64,
    /// Close code the client sent, if any.
    pub client_close: Option<u16>,
    /// Close code the backend sent, if any.
    pub backend_close: Option<u16>,
    /// Why the gateway ended it, if it did (idle, drain, shutdown).
    pub ended_by_gateway: Option<&'static str>,
}

impl SessionRecord {
    /// Writes the line.
    pub fn log(&self) {
        tracing::info!(
            target: "sockway_gateway::access",
            client = %self.client,
            http = %self.http,
            target_uri = %self.target,
            listener = %self.listener,
            backend = %self.backend,
            duration_ms = millis(self.duration),
            bytes_up = self.bytes_up,
            bytes_down = self.bytes_down,
            client_close = self.client_close.map(i64::from).unwrap_or(-1),
            backend_close = self.backend_close.map(i64::from).unwrap_or(-1),
            ended_by_gateway = self.ended_by_gateway.unwrap_or("-"),
            "websocket session"
        );
    }
}

/// What replaces a redacted query parameter's value.
pub const REDACTED: &str = "REDACTED";

/// `target` (path and query) with the value of every query parameter named in `names`
/// replaced by [`REDACTED`]. Names compare ignoring ASCII case, after percent-decoding
/// (`%61ccess_token` is `access_token`), so a spelling the backend would accept does not slip
/// through.
pub fn redact_target(target: &str, names: &[String]) -> String {
    let Some((path, query)) = target.split_once('?') else {
        return target.to_owned();
    };
    let mut out = String::with_capacity(target.len());
    out.push_str(path);
    out.push('?');
    for (i, pair) in query.split('&').enumerate() {
        if i > 0 {
            out.push('&');
        }
        match pair.split_once('=') {
            Some((name, _)) if is_secret(name, names) => {
                out.push_str(name);
                out.push('=');
                out.push_str(REDACTED);
            }
            _ => out.push_str(pair),
        }
    }
    out
}

fn is_secret(name: &str, names: &[String]) -> bool {
    let decoded = percent_decode(name);
    names.iter().any(|n| n.eq_ignore_ascii_case(&decoded))
}

/// Percent-decodes (RFC 3986 section 2.1) and turns `+` into a space, as form decoding
/// does; invalid escapes stay as they are.
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push((h * 16 + l) as u8);
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            b'+' => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// How a version is logged: `HTTP/1.0`, `HTTP/1.1`, `HTTP/2`, `HTTP/3`.
pub fn version_name(version: http::Version) -> &'static str {
    match version {
        http::Version::HTTP_09 => "HTTP/0.9",
        http::Version::HTTP_10 => "HTTP/1.0",
        http::Version::HTTP_2 => "HTTP/2",
        http::Version::HTTP_3 => "HTTP/3",
        _ => "HTTP/1.1",
    }
}

fn millis(d: Duration) -> u64 {
    d.as_millis().try_into().unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names() -> Vec<String> {
        crate::config::defaults::redact_query_parameters()
    }

    #[test]
    fn secret_query_values_are_redacted() {
        assert_eq!(
            redact_target("/ws?access_token=abc&room=1&Code=xyz&token", &names()),
            "/ws?access_token=REDACTED&room=1&Code=REDACTED&token"
        );
        assert_eq!(
            redact_target("/cb?%61ccess_token=abc&x=%ZZ&tok%65n=t", &names()),
            "/cb?%61ccess_token=REDACTED&x=%ZZ&tok%65n=REDACTED"
        );
        assert_eq!(redact_target("/plain", &names()), "/plain");
        assert_eq!(redact_target("/a?b=c%", &names()), "/a?b=c%");
        assert_eq!(
            redact_target("/a?sig=1&token=2", &["SIG".to_owned()]),
            "/a?sig=REDACTED&token=2"
        );
    }
}
