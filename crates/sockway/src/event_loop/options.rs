//! [`EventLoopOptions`]: every limit of the event-loop server, each with a default and a setter.

use std::time::Duration;

use crate::config::{KeepAlive, WebSocketConfig};

/// Settings for an [`super::EventLoopServer`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventLoopOptions {
    /// Worker threads, each with its own poller and connections (worker 0 also accepts);
    /// default: the number of CPUs; 1 to 65,535.
    pub threads: usize,
    /// Per-connection WebSocket limits: message and frame size (close 1009 beyond them), the
    /// backpressure bound ([`WebSocketConfig::write_buffer_limit`]: above it the connection's
    /// input is not read until the peer has taken the output), the close timeout and
    /// keep-alive (default: on, with [`KeepAlive::default`]).
    pub websocket: WebSocketConfig,
    /// Most connections open at once across all threads; beyond it a new connection is
    /// answered 503 and closed. Default 10,000.
    pub max_connections: usize,
    /// How long a connection has to send its whole request head; then 408. Default 10 s.
    pub handshake_timeout: Duration,
    /// Largest request head (request line and fields); beyond it 431. Default 32 KiB.
    pub max_header_bytes: usize,
    /// Most header fields in a request head; beyond it 431. Default 100.
    pub max_headers: usize,
    /// Subprotocols this server speaks, in order of preference (RFC 6455 section 4.2.2): the
    /// first one the client offered is chosen. Default: none.
    pub subprotocols: Vec<String>,
    /// When set, only requests whose `Origin` is in this list (or that carry none, as
    /// non-browser clients do) are accepted; others get 403 (RFC 6455 section 10.2).
    pub allowed_origins: Option<Vec<String>>,
    /// After shutdown, how long open connections get to finish their close handshake.
    /// Default 10 s.
    pub drain_timeout: Duration,
    /// How many times a worker polls without blocking after its last event before it sleeps
    /// in the poller; default 20 (some 10 µs). On a busy server the next event usually comes
    /// within that, and a thread that never went to sleep need not be woken: measured on two
    /// cores with 10 connections, 0 instead of 20 cost 25 % more CPU per message (context
    /// switches). An idle worker spins once after its last event, then sleeps. 0 turns it off.
    pub busy_polls: u32,
    /// Most topics one connection may subscribe to ([`super::Conn::subscribe`]); each costs
    /// an entry in its worker's topic registry. Default 1,024.
    pub max_subscriptions: usize,
}

impl Default for EventLoopOptions {
    fn default() -> Self {
        Self {
            threads: std::thread::available_parallelism().map_or(1, usize::from),
            websocket: WebSocketConfig::default().keep_alive(Some(KeepAlive::default())),
            max_connections: 10_000,
            handshake_timeout: Duration::from_secs(10),
            max_header_bytes: 32 * 1024,
            max_headers: 100,
            subprotocols: Vec::new(),
            allowed_origins: None,
            drain_timeout: Duration::from_secs(10),
            busy_polls: 20,
            max_subscriptions: 1024,
        }
    }
}

impl EventLoopOptions {
    /// Sets [`EventLoopOptions::threads`] (1 to 65,535).
    pub fn threads(mut self, threads: usize) -> Self {
        self.threads = threads.clamp(1, usize::from(u16::MAX));
        self
    }

    /// Sets [`EventLoopOptions::websocket`].
    pub fn websocket(mut self, config: WebSocketConfig) -> Self {
        self.websocket = config;
        self
    }

    /// Sets [`EventLoopOptions::max_connections`] (at least 1).
    pub fn max_connections(mut self, max: usize) -> Self {
        self.max_connections = max.max(1);
        self
    }

    /// Sets [`EventLoopOptions::handshake_timeout`] (at least 1 ms).
    pub fn handshake_timeout(mut self, timeout: Duration) -> Self {
        self.handshake_timeout = timeout.max(Duration::from_millis(1));
        self
    }

    /// Sets [`EventLoopOptions::max_header_bytes`] (at least 256).
    pub fn max_header_bytes(mut self, bytes: usize) -> Self {
        self.max_header_bytes = bytes.max(256);
        self
    }

    /// Sets [`EventLoopOptions::max_headers`] (at least 8).
    pub fn max_headers(mut self, count: usize) -> Self {
        self.max_headers = count.max(8);
        self
    }

    /// Sets [`EventLoopOptions::subprotocols`].
    pub fn subprotocols<I, S>(mut self, names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.subprotocols = names.into_iter().map(Into::into).collect();
        self
    }

    /// Sets [`EventLoopOptions::allowed_origins`].
    pub fn allowed_origins<I, S>(mut self, origins: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.allowed_origins = Some(origins.into_iter().map(Into::into).collect());
        self
    }

    /// Sets [`EventLoopOptions::busy_polls`].
    pub fn busy_polls(mut self, polls: u32) -> Self {
        self.busy_polls = polls;
        self
    }

    /// Sets [`EventLoopOptions::max_subscriptions`].
    pub fn max_subscriptions(mut self, max: usize) -> Self {
        self.max_subscriptions = max;
        self
    }

    /// Sets [`EventLoopOptions::drain_timeout`].
    pub fn drain_timeout(mut self, timeout: Duration) -> Self {
        self.drain_timeout = timeout;
        self
    }
}
