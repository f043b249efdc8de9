//! [`HttpVersion`]: which HTTP version carries the client's opening handshake.

/// Which HTTP version the client opens WebSockets over, set with
/// [`super::ClientBuilder::http_version`].
///
/// Over HTTP/2 a WebSocket is a stream opened by an extended CONNECT (RFC 8441), so many
/// sockets to one origin share one TCP (and TLS) connection; over HTTP/1.1 each socket takes
/// a connection of its own (RFC 6455 section 4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum HttpVersion {
    /// The default. `wss://`: offer `h2` and `http/1.1` through ALPN (RFC 7301); use HTTP/2
    /// when the server picks `h2` and advertises `SETTINGS_ENABLE_CONNECT_PROTOCOL`
    /// (RFC 8441 section 3), else HTTP/1.1 (after an origin turned out not to support
    /// WebSockets over HTTP/2, its next sockets go straight to HTTP/1.1 for a while).
    /// `ws://`: HTTP/1.1, since nothing tells a client that a plain-text server speaks HTTP/2.
    #[default]
    Auto,
    /// Always the HTTP/1.1 upgrade; ALPN offers only `http/1.1`.
    Http1Only,
    /// Always HTTP/2; fail with [`super::ClientError::Http2Unavailable`] when the server does
    /// not offer it. `wss://` offers only `h2` through ALPN; `ws://` uses HTTP/2 with prior
    /// knowledge ("h2c", RFC 9113 section 3.3).
    Http2Only,
}
