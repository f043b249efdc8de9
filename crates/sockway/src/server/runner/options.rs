//! [`ServerOptions`]: the server-wide limits of the [`super::Server`] runner.

use std::time::Duration;

use crate::limits::ServerLimits;

/// Server-wide settings: what every connection is held to before any route sees it, and how
/// shutdown goes. Per-route WebSocket settings are in [`crate::server::AcceptOptions`].
///
/// | setting | default | why |
/// |---|---|---|
/// | [`limits`](Self::limits) | see [`ServerLimits`] | handshake timeout 10 s (also how long an idle keep-alive HTTP connection is kept), 10 000 connections (more get 503 with `Retry-After`), 32 KiB and 100 fields per request head (431 beyond), 10 s drain |
/// | [`retry_after`](Self::retry_after) | 5 s | the `Retry-After` sent with 503 |
/// | [`http2`](Self::http2) | on | HTTP/2 with extended CONNECT (RFC 8441) next to HTTP/1.1: by ALPN over TLS, by prior knowledge (h2c) over plain TCP |
/// | [`http2_max_streams`](Self::http2_max_streams) | 200 | WebSockets and requests open at once on one HTTP/2 connection (`SETTINGS_MAX_CONCURRENT_STREAMS`); clients open another connection beyond it |
/// | [`handle_signals`](Self::handle_signals) | on | Ctrl-C / SIGTERM start the graceful shutdown |
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerOptions {
    /// The limits shared with the event-loop server: handshake timeout (here also how long an
    /// idle keep-alive HTTP/1.1 connection is kept between requests), connection count,
    /// request head size and field count, drain deadline. Connections beyond
    /// `max_connections` are still accepted, answered 503 with `Retry-After` and a body, and
    /// closed. Refusals take a moment each (write, then a short linger so the client can read
    /// the answer), so they are bounded too: while `max(max_connections, 64)` are in
    /// progress, further connections are closed at once without an answer, which keeps a
    /// connection flood from costing more than twice the limit in sockets.
    pub limits: ServerLimits,
    /// The `Retry-After` of a 503 refusal (whole seconds, at least 1).
    pub retry_after: Duration,
    /// Whether HTTP/2 (RFC 9113) is served next to HTTP/1.1, with
    /// `SETTINGS_ENABLE_CONNECT_PROTOCOL` so that WebSockets can arrive as extended CONNECT
    /// (RFC 8441) and share one connection. Over TLS it is offered through ALPN (`h2`,
    /// RFC 7301) and used when the client picks it, as browsers do; over plain TCP a client
    /// that opens with the HTTP/2 preface (prior knowledge, "h2c", RFC 9113 section 3.3) gets
    /// HTTP/2. The preface is recognised in the first request head the server reads anyway,
    /// so HTTP/1.1 connections pay nothing for it. Off: HTTP/1.1 only (ALPN offers
    /// `http/1.1` alone).
    pub http2: bool,
    /// Most streams (WebSockets and ordinary requests) a client may have open at once on one
    /// HTTP/2 connection, advertised as `SETTINGS_MAX_CONCURRENT_STREAMS` (RFC 9113 section
    /// 6.5.2). Bounds the memory one connection can claim; a client that needs more sockets
    /// opens another connection (which [`ServerOptions::max_connections`] counts).
    pub http2_max_streams: u32,
    /// Whether Ctrl-C (SIGINT) and SIGTERM start the graceful shutdown; a second signal during
    /// the drain stops waiting.
    pub handle_signals: bool,
}

impl Default for ServerOptions {
    fn default() -> Self {
        Self {
            limits: ServerLimits::default(),
            retry_after: Duration::from_secs(5),
            http2: true,
            http2_max_streams: 200,
            handle_signals: true,
        }
    }
}

impl ServerOptions {
    /// Sets the handshake timeout ([`ServerLimits::handshake_timeout`], at least 1 ms).
    pub fn handshake_timeout(mut self, timeout: Duration) -> Self {
        self.limits = self.limits.handshake_timeout(timeout);
        self
    }

    /// Sets the connection limit ([`ServerLimits::max_connections`], at least 1).
    pub fn max_connections(mut self, max: usize) -> Self {
        self.limits = self.limits.max_connections(max);
        self
    }

    /// Sets the request head size limit ([`ServerLimits::max_header_bytes`], at least 1 KiB).
    pub fn max_header_bytes(mut self, bytes: usize) -> Self {
        self.limits = self.limits.max_header_bytes(bytes);
        self
    }

    /// Sets the header field limit ([`ServerLimits::max_headers`], at least 8).
    pub fn max_headers(mut self, max: usize) -> Self {
        self.limits = self.limits.max_headers(max);
        self
    }

    /// Sets the drain deadline ([`ServerLimits::drain_timeout`]).
    pub fn drain_timeout(mut self, timeout: Duration) -> Self {
        self.limits = self.limits.drain_timeout(timeout);
        self
    }

    /// Sets [`ServerOptions::retry_after`].
    pub fn retry_after(mut self, after: Duration) -> Self {
        self.retry_after = after;
        self
    }

    /// Sets [`ServerOptions::http2`].
    pub fn http2(mut self, enabled: bool) -> Self {
        self.http2 = enabled;
        self
    }

    /// Sets [`ServerOptions::http2_max_streams`] (at least 1).
    pub fn http2_max_streams(mut self, max: u32) -> Self {
        self.http2_max_streams = max.max(1);
        self
    }

    /// Sets [`ServerOptions::handle_signals`]; tests and embedders with their own signal
    /// handling turn it off and use a [`crate::server::ShutdownHandle`].
    pub fn handle_signals(mut self, enabled: bool) -> Self {
        self.handle_signals = enabled;
        self
    }
}
