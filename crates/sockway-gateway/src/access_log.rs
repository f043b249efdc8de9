//! Access log: one `tracing` event per request and per WebSocket session, on target
//! `sockway_gateway::access` (filter it with `RUST_LOG=sockway_gateway::access=info`).
//! A request line is written when its response body ends (or is dropped), so it carries
//! the bytes sent; a session line when the relay ends, with its duration, the bytes each way
//! and the close codes seen from each side. Both carry `http`, the HTTP version the client
//! spoke to the gateway (`HTTP/2` for a WebSocket opened with extended CONNECT, RFC 8441);
//! backends are always spoken to in HTTP/1.1.

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
