//! What [`super::accept`] checks and how the accepted socket is configured.

use std::time::Duration;

use sockway_proto::deflate::DeflateConfig;
use sockway_proto::handshake::OriginPolicy;

use crate::config::{KeepAlive, WebSocketConfig};

/// Per-route acceptance settings, with ASP.NET Core's `WebSocketOptions` defaults.
///
/// | setting | default | why |
/// |---|---|---|
/// | [`keep_alive_interval`](Self::keep_alive_interval) | 2 min | ASP.NET Core's `KeepAliveInterval` default: often enough that proxies keep an idle connection open |
/// | [`keep_alive_timeout`](Self::keep_alive_timeout) | 30 s | as ASP.NET Core's `KeepAliveTimeout` (a pong must follow a ping): a peer that vanished is noticed within interval + timeout (2.5 min) |
/// | [`receive_buffer_size`](Self::receive_buffer_size) | 4 KiB | ASP.NET Core's `ReceiveBufferSize` default |
/// | [`allowed_origins`](Self::allowed_origins) | any | as ASP.NET Core's `AllowedOrigins`: empty means all; others get 403 |
/// | [`subprotocols`](Self::subprotocols) | none | RFC 6455 section 4.2.2: the server chooses, or answers without one |
/// | [`max_message_size`](Self::max_message_size) | 16 MiB | bounds memory per socket; larger messages close with 1009 |
/// | [`compression`](Self::compression) | off | RFC 7692; ASP.NET Core's `DangerousEnableCompression`: see `docs/security.md` |
///
/// Server-wide limits (handshake timeout, connection count, header size, drain deadline) live
/// in [`super::ServerOptions`].
#[derive(Debug, Clone)]
pub struct AcceptOptions {
    /// Settings of the accepted socket. Defaults: 4 KiB receive buffer (`ReceiveBufferSize`),
    /// 16 MiB max message, keep-alive ping every 2 minutes (`KeepAliveInterval`) and give up
    /// 30 s after an unanswered ping (`KeepAliveTimeout`).
    pub socket: WebSocketConfig,
    /// Which `Origin` values may connect (`AllowedOrigins`); default any.
    pub origins: OriginPolicy,
    /// Subprotocols this route speaks, in order of preference (RFC 6455 section 4.2.2 item 5.4):
    /// the first one the client also offered is chosen. Empty: none is chosen.
    pub subprotocols: Vec<String>,
    /// permessage-deflate (RFC 7692), off by default: `Some` accepts a client's offer with
    /// these limits (ASP.NET Core's `DangerousEnableCompression`, with `ServerMaxWindowBits` and
    /// `DisableServerContextTakeover`). If the client offers nothing acceptable the socket
    /// opens uncompressed. Compression over TLS can leak secrets through message sizes
    /// (CRIME/BREACH): send those with [`crate::Compression::Disabled`].
    pub compression: Option<DeflateConfig>,
}

impl Default for AcceptOptions {
    fn default() -> Self {
        Self {
            socket: WebSocketConfig::for_server(),
            origins: OriginPolicy::Any,
            subprotocols: Vec::new(),
            compression: None,
        }
    }
}

impl AcceptOptions {
    /// Turns permessage-deflate on with `config` (or off with `None`); see
    /// [`AcceptOptions::compression`].
    pub fn compression(mut self, config: Option<DeflateConfig>) -> Self {
        self.compression = config;
        self
    }

    /// Sets how long a socket may be quiet before the server pings it (`KeepAliveInterval`);
    /// `None` or zero turns keep-alive off (then a vanished peer is never noticed).
    pub fn keep_alive_interval(mut self, interval: Option<Duration>) -> Self {
        let interval = interval.filter(|i| !i.is_zero());
        self.socket.keep_alive = interval.map(|interval| KeepAlive {
            interval,
            timeout: self
                .socket
                .keep_alive
                .map_or(KeepAlive::default().timeout, |k| k.timeout),
        });
        self
    }

    /// Sets how long after a keep-alive ping the server waits for anything from the peer (the
    /// pong, or any other frame) before it gives up on it (`KeepAliveTimeout`): the handler's
    /// receive then fails with [`crate::Error::KeepAliveTimeout`]. No effect while keep-alive
    /// is off, so set the interval first when turning it on.
    pub fn keep_alive_timeout(mut self, timeout: Duration) -> Self {
        if let Some(keep_alive) = &mut self.socket.keep_alive {
            keep_alive.timeout = timeout;
        }
        self
    }

    /// Sets how many bytes a read from the connection asks for at first (`ReceiveBufferSize`,
    /// at least 256). Reads grow up to 64 KiB while a big message streams in, and an idle
    /// socket holds no receive buffer (see [`crate::WebSocketConfig::read_buffer_size`]).
    pub fn receive_buffer_size(mut self, bytes: usize) -> Self {
        self.socket = self.socket.read_buffer_size(bytes);
        self
    }

    /// Sets the largest message (and frame) accepted; a bigger one fails the connection with
    /// close 1009 ("message too big", RFC 6455 section 7.4.1).
    pub fn max_message_size(mut self, bytes: usize) -> Self {
        self.socket = self.socket.max_message_size(bytes);
        self
    }

    /// Allows only these origins (`AllowedOrigins`), matched on scheme, host and port,
    /// ignoring case; an empty list allows any. A browser request from another origin gets
    /// 403 with a body saying why. Requests without `Origin` (non-browser clients) pass: the
    /// check stops cross-site pages, it is no authentication.
    pub fn allowed_origins<I, S>(mut self, origins: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let origins: Vec<S> = origins.into_iter().collect();
        for origin in origins.iter().map(AsRef::as_ref) {
            if !OriginPolicy::is_origin(origin) {
                tracing::warn!(
                    origin,
                    "ignoring an allowed origin that is not scheme://host[:port]"
                );
            }
        }
        self.origins = OriginPolicy::list(origins);
        self
    }

    /// Sets the subprotocols this route speaks, in order of preference (RFC 6455 section
    /// 4.2.2 item 5.4): the first one the client also offered is chosen and echoed in
    /// `Sec-WebSocket-Protocol`. If none matches, the socket opens without one.
    pub fn subprotocols<I, S>(mut self, names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.subprotocols = names.into_iter().map(Into::into).collect();
        self
    }

    /// Replaces all socket settings at once (write buffer limit, close timeout, frame size).
    pub fn socket_config(mut self, config: WebSocketConfig) -> Self {
        self.socket = config;
        self
    }
}
