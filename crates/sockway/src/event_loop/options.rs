//! [`EventLoopOptions`]: every limit of the event-loop server, each with a default and a setter.

use std::time::Duration;

use sockway_proto::deflate::DeflateConfig;
use sockway_proto::handshake::OriginPolicy;

use crate::config::WebSocketConfig;
use crate::limits::ServerLimits;

/// Settings for an [`super::EventLoopServer`].
#[derive(Debug, Clone)]
pub struct EventLoopOptions {
    /// Worker threads, each with its own poller and connections (worker 0 also accepts);
    /// default: the number of CPUs; 1 to 65,535.
    pub threads: usize,
    /// Per-connection WebSocket limits: message and frame size (close 1009 beyond them), the
    /// backpressure bound ([`WebSocketConfig::write_buffer_limit`]: above it the connection's
    /// input is not read until the peer has taken the output), the close timeout and
    /// keep-alive (default: [`WebSocketConfig::for_server`], as the server runner's routes).
    pub websocket: WebSocketConfig,
    /// The limits shared with the server runner ([`ServerLimits`], same defaults): most
    /// connections open at once across all threads (beyond it a new connection is answered
    /// 503 and closed), how long a connection has to send its whole request head (then 408),
    /// the largest request head and most header fields (431 beyond), and how long open
    /// connections get to finish their close handshake after shutdown.
    pub limits: ServerLimits,
    /// Subprotocols this server speaks, in order of preference (RFC 6455 section 4.2.2): the
    /// first one the client offered is chosen. Default: none.
    pub subprotocols: Vec<String>,
    /// Which origins may connect, by the same rule as the async server's
    /// `AcceptOptions::origins` (ports normalised, an empty list allows all, requests without
    /// `Origin` pass); others get 403 (RFC 6455 section 10.2). Default: any.
    pub origins: OriginPolicy,
    /// How many times a worker polls without blocking after its last event before it sleeps
    /// in the poller (some 0.5 µs each). Default 0: a worker sleeps in the poller as soon as
    /// it has nothing to do, as uWebSockets does. Measured on two quiet cores under
    /// uWebSockets' `load_test` with 2 worker threads, 20 polls cost 17-20 % more CPU per
    /// message and 6-10 % less throughput (100 × 20 B, 10 × 1 KiB), the spinning worker taking
    /// the CPU the clients need; with 1 thread it made no difference. A server on cores of its
    /// own may gain from a few: a thread that never went to sleep need not be woken.
    pub busy_polls: u32,
    /// permessage-deflate (RFC 7692) on these terms when a client offers it; `None` (the
    /// default, as uWebSockets' `DISABLED`) answers every offer without the extension.
    /// Off by default for the reasons of the async server's `AcceptOptions::compression`:
    /// over TLS, compressed sizes can leak secrets (CRIME/BREACH), and each compressing
    /// connection keeps zlib's state between messages (about 300 KiB with a 15-bit window
    /// unless `server_no_context_takeover` is set), against the 0.26 KiB of an idle one.
    /// Compression and inflation are the core's ([`sockway_proto::Connection::with_deflate`]),
    /// as on the async server; messages lent in place ([`super::Handler::lent_message`])
    /// are those that came uncompressed. A publish is compressed once for every subscriber
    /// whose compressor resets per message (`server_no_context_takeover`) and goes out
    /// uncompressed to the others (RFC 7692 section 6 allows it), as
    /// [`sockway_proto::PreparedFrame`] says.
    pub compression: Option<DeflateConfig>,
    /// Most topics one connection may subscribe to ([`super::Conn::subscribe`]); each costs
    /// an entry in its worker's topic registry. Default 1,024.
    pub max_subscriptions: usize,
    /// Serve `wss://` with this identity (feature `tls`): every connection does its TLS
    /// handshake (rustls, TLS 1.2 and 1.3, ALPN `http/1.1` only) on its worker before its
    /// request head, within [`ServerLimits::handshake_timeout`]. Default `None`: plain
    /// `ws://`. A connection over the connection limit is closed without the 503 a plain one
    /// gets, which a TLS client could not read. Each TLS connection keeps rustls' session
    /// (some KiB) besides the plain connection's state.
    #[cfg(feature = "tls")]
    pub tls: Option<crate::tls::ServerTls>,
}

impl Default for EventLoopOptions {
    fn default() -> Self {
        Self {
            threads: std::thread::available_parallelism().map_or(1, usize::from),
            websocket: WebSocketConfig::for_server(),
            limits: ServerLimits::default(),
            subprotocols: Vec::new(),
            origins: OriginPolicy::Any,
            busy_polls: 0,
            compression: None,
            max_subscriptions: 1024,
            #[cfg(feature = "tls")]
            tls: None,
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

    /// Sets the connection limit ([`ServerLimits::max_connections`], at least 1).
    pub fn max_connections(mut self, max: usize) -> Self {
        self.limits = self.limits.max_connections(max);
        self
    }

    /// Sets the handshake timeout ([`ServerLimits::handshake_timeout`], at least 1 ms).
    pub fn handshake_timeout(mut self, timeout: Duration) -> Self {
        self.limits = self.limits.handshake_timeout(timeout);
        self
    }

    /// Sets the request head size limit ([`ServerLimits::max_header_bytes`], at least 1 KiB
    /// as for the server runner).
    pub fn max_header_bytes(mut self, bytes: usize) -> Self {
        self.limits = self.limits.max_header_bytes(bytes);
        self
    }

    /// Sets the header field limit ([`ServerLimits::max_headers`], at least 8).
    pub fn max_headers(mut self, count: usize) -> Self {
        self.limits = self.limits.max_headers(count);
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

    /// Sets [`EventLoopOptions::origins`] to these origins (`scheme://host[:port]`, matched on
    /// scheme, host and port ignoring case; an empty list allows any), as
    /// [`OriginPolicy::list`].
    pub fn allowed_origins<I, S>(mut self, origins: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        self.origins = OriginPolicy::list(origins);
        self
    }

    /// Sets [`EventLoopOptions::busy_polls`].
    pub fn busy_polls(mut self, polls: u32) -> Self {
        self.busy_polls = polls;
        self
    }

    /// Sets [`EventLoopOptions::compression`].
    pub fn compression(mut self, config: Option<DeflateConfig>) -> Self {
        self.compression = config;
        self
    }

    /// Sets [`EventLoopOptions::max_subscriptions`].
    pub fn max_subscriptions(mut self, max: usize) -> Self {
        self.max_subscriptions = max;
        self
    }

    /// Sets the drain deadline ([`ServerLimits::drain_timeout`]).
    pub fn drain_timeout(mut self, timeout: Duration) -> Self {
        self.limits = self.limits.drain_timeout(timeout);
        self
    }

    /// Sets [`EventLoopOptions::tls`].
    #[cfg(feature = "tls")]
    pub fn tls(mut self, tls: crate::tls::ServerTls) -> Self {
        self.tls = Some(tls);
        self
    }
}
