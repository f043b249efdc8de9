//! [`ClientBuilder`]: the client's settings (the Windows Runtime `MessageWebSocket`'s `Control`),
//! set before connecting. Each connection takes a copy, so its settings are frozen once it is
//! established; only the message socket's default message type can change afterwards.

use sockway_proto::deflate::DeflateConfig;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
#[cfg(feature = "tls")]
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use http::header::{HeaderName, HeaderValue};
use sockway_proto::MessageKind;
use tokio_util::sync::CancellationToken;

use super::connector;
use super::error::ClientError;
use super::h2::pool::ConnectionPool;
use super::handshake::RESERVED_HEADERS;
use super::info::ConnectionInfo;
use super::message_socket::MessageWebSocket;
use super::resolve::{Resolve, SharedResolver};
use super::settings::{basic_from_userinfo, Settings};
use super::stream_socket::StreamWebSocket;
use super::transport::ClientStream;
use super::version::HttpVersion;
use crate::config::WebSocketConfig;
use crate::WebSocket;

/// Settings for connecting to a `ws://` or `wss://` URL, and the connect calls.
///
/// ```no_run
/// # async fn demo() -> Result<(), sockway::client::ClientError> {
/// use std::time::Duration;
/// let socket = sockway::client::ClientBuilder::new("wss://example.com/chat")
///     .subprotocol("chat")
///     .connect_timeout(Duration::from_secs(10))
///     .connect_message()
///     .await?;
/// # Ok(()) }
/// ```
///
/// Invalid values (a header that is not valid HTTP, a reserved header) are remembered and
/// reported by the connect call as [`ClientError::InvalidSetting`], so the setters chain.
#[derive(Debug, Clone)]
pub struct ClientBuilder {
    settings: Settings,
    error: Option<String>,
}

impl ClientBuilder {
    /// Settings for `url` with every default: no subprotocol, 60 s connect timeout, 5
    /// addresses raced 250 ms apart, 30 s send timeout, no receive timeout, `TCP_NODELAY` on,
    /// 16 KiB response head, the socket defaults of [`WebSocketConfig`] (16 MiB messages), and
    /// Mozilla's root CAs for `wss://`.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            settings: Settings::new(url.into()),
            error: None,
        }
    }

    fn fail(mut self, message: String) -> Self {
        self.error.get_or_insert(message);
        self
    }

    /// Offers a subprotocol, after those already offered; the order is the preference
    /// (RFC 6455 section 4.1 item 10). The server's choice is in [`ConnectionInfo::subprotocol`].
    pub fn subprotocol(mut self, name: impl Into<String>) -> Self {
        self.settings.subprotocols.push(name.into());
        self
    }

    /// Adds a request header (cookies, API keys...). The handshake's own headers (`Host`,
    /// `Upgrade`, `Connection`, `Sec-WebSocket-*`) are refused: use the dedicated settings.
    pub fn header(self, name: impl AsRef<str>, value: impl AsRef<str>) -> Self {
        let (name, value) = (name.as_ref(), value.as_ref());
        let parsed = (
            HeaderName::from_bytes(name.trim().as_bytes()),
            HeaderValue::from_str(value.trim()),
        );
        match parsed {
            (Ok(name), _) if RESERVED_HEADERS.contains(&name.as_str()) => {
                self.fail(format!("header {name} is set by the handshake itself"))
            }
            (Ok(name), Ok(value)) => {
                let mut this = self;
                this.settings.headers.append(name, value);
                this
            }
            _ => self.fail(format!("invalid header {name:?}: {value:?}")),
        }
    }

    /// Sets `Origin` (RFC 6455 section 4.1 item 8), which servers may check (ASP.NET Core's
    /// `AllowedOrigins`, for one).
    pub fn origin(mut self, origin: impl Into<String>) -> Self {
        self.settings.origin = Some(origin.into());
        self
    }

    /// HTTP Basic credentials (`Authorization: Basic ...`, RFC 7617). Credentials in the URL
    /// (`ws://user:pass@host/`) are used the same way when none are set here. Send them only
    /// over `wss://`: Basic is plain text.
    pub fn basic_auth(mut self, user: &str, password: &str) -> Self {
        match basic_from_userinfo(user, password) {
            Some(value) => {
                self.settings.authorization = Some(value);
                self
            }
            None => self.fail("invalid basic credentials".into()),
        }
    }

    /// A bearer token (`Authorization: Bearer ...`, RFC 6750).
    pub fn bearer_auth(mut self, token: &str) -> Self {
        match HeaderValue::from_str(&format!("Bearer {token}")) {
            Ok(mut value) => {
                value.set_sensitive(true);
                self.settings.authorization = Some(value);
                self
            }
            Err(_) => self.fail("the bearer token is not a valid header value".into()),
        }
    }

    /// The time allowed for the whole connect: resolve, TCP, TLS and the handshake; default
    /// 60 s. The error says which phase ran out ([`ClientError::Timeout`]).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.settings.connect_timeout = timeout;
        self
    }

    /// How many of a host's addresses are tried (at least 1); default 5.
    pub fn max_addresses(mut self, count: usize) -> Self {
        self.settings.max_addresses = count.max(1);
        self
    }

    /// How long an address attempt runs before the next one starts alongside it (RFC 8305
    /// section 5, "Connection Attempt Delay"); default 250 ms, clamped to 10 ms ..= 2 s as the
    /// RFC advises.
    pub fn attempt_delay(mut self, delay: Duration) -> Self {
        self.settings.attempt_delay =
            delay.clamp(Duration::from_millis(10), Duration::from_secs(2));
        self
    }

    /// How long a send may wait for the peer to take the data; `None` waits forever; default
    /// 30 s. Applies to the message and stream sockets.
    pub fn send_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.settings.send_timeout = timeout;
        self
    }

    /// How long a receive may wait for a message; `None` (the default) waits forever, since
    /// servers may legitimately stay quiet (use keep-alive to detect dead peers instead).
    pub fn receive_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.settings.receive_timeout = timeout;
        self
    }

    /// `TCP_NODELAY` (default on): frames go out at once instead of waiting to coalesce.
    pub fn nodelay(mut self, on: bool) -> Self {
        self.settings.nodelay = on;
        self
    }

    /// Binds outgoing TCP connections to the source address `ip`, the port chosen by the OS
    /// (default: the OS picks the address too). Useful to leave through a given interface, or
    /// to open more connections to one server than one source address has ephemeral ports
    /// (spread them over several builders with different addresses). On Linux the port is
    /// picked when connecting (`IP_BIND_ADDRESS_NO_PORT`), so connections to other servers
    /// and sockets in TIME_WAIT do not use up the address's ports. An address of the other
    /// family than the server's fails that attempt ([`ClientError::Unreachable`]).
    pub fn local_address(mut self, ip: IpAddr) -> Self {
        self.settings.local_address = Some(ip);
        self
    }

    /// The kernel's socket buffer sizes (`SO_SNDBUF`, `SO_RCVBUF`); `None` keeps the system's.
    pub fn socket_buffers(mut self, send: Option<u32>, receive: Option<u32>) -> Self {
        self.settings.send_buffer = send;
        self.settings.recv_buffer = receive;
        self
    }

    /// The largest handshake response head accepted, in bytes; default 16 KiB.
    pub fn max_response_head_size(mut self, bytes: usize) -> Self {
        self.settings.max_response_head = bytes;
        self
    }

    /// The most handshake response header lines accepted; default 64.
    pub fn max_response_headers(mut self, count: usize) -> Self {
        self.settings.max_response_headers = count;
        self
    }

    /// Socket settings: message and frame limits, buffer sizes, close timeout, keep-alive.
    pub fn websocket_config(mut self, config: WebSocketConfig) -> Self {
        self.settings.websocket = config;
        self
    }

    /// Offers permessage-deflate (RFC 7692) with `config`, or nothing with `None` (the
    /// default). If the server declines, the socket opens uncompressed; a response that breaks
    /// the extension's rules fails the handshake. Send secrets with
    /// [`crate::Compression::Disabled`] (CRIME/BREACH, see `docs/security.md`).
    pub fn compression(mut self, config: Option<DeflateConfig>) -> Self {
        self.settings.compression = config;
        self
    }

    /// The largest message (and frame) accepted; default 16 MiB.
    pub fn max_message_size(mut self, bytes: usize) -> Self {
        self.settings.websocket = self.settings.websocket.max_message_size(bytes);
        self
    }

    /// How many bytes a read asks for at first (ASP.NET Core's `ReceiveBufferSize`); default
    /// 4 KiB. See [`WebSocketConfig::read_buffer_size`](crate::WebSocketConfig::read_buffer_size).
    pub fn read_buffer_size(mut self, bytes: usize) -> Self {
        self.settings.websocket = self.settings.websocket.read_buffer_size(bytes);
        self
    }

    /// How many unsent bytes may queue before a send waits (the Windows Runtime's
    /// `OutboundBufferSizeInBytes`); default 128 KiB.
    pub fn write_buffer_limit(mut self, bytes: usize) -> Self {
        self.settings.websocket = self.settings.websocket.write_buffer_limit(bytes);
        self
    }

    /// The message type [`MessageWebSocket::send_bytes`] uses; default binary. It can be
    /// changed after connecting with [`MessageWebSocket::set_message_type`].
    pub fn message_type(mut self, kind: MessageKind) -> Self {
        self.settings.message_type = kind;
        self
    }

    /// The largest binary message one [`StreamWebSocket`] write sends (at least 1 byte, at
    /// most half of [`Self::write_buffer_limit`]); default 64 KiB. Keep it under the server's
    /// message limit.
    pub fn stream_chunk_size(mut self, bytes: usize) -> Self {
        self.settings.stream_chunk = bytes.max(1);
        self
    }

    /// Replaces name resolution, e.g. to map a name to chosen addresses in tests.
    pub fn resolver(mut self, resolver: impl Resolve) -> Self {
        self.settings.resolver = SharedResolver(Arc::new(resolver));
        self
    }

    /// Resolves every name to `addrs` (with the URL's port), skipping DNS.
    pub fn resolve_to(self, addrs: Vec<SocketAddr>) -> Self {
        self.resolver(move |_: &str, port: u16| {
            Ok(addrs
                .iter()
                .map(|a| SocketAddr::new(a.ip(), if a.port() == 0 { port } else { a.port() }))
                .collect())
        })
    }

    /// A token ([`super::CancelToken`]) whose `cancel()` aborts a pending connect with
    /// [`ClientError::Cancelled`].
    pub fn cancel_token(mut self, token: CancellationToken) -> Self {
        self.settings.cancel = Some(token);
        self
    }

    /// Whether to trust Mozilla's root CAs (webpki-roots); default on.
    #[cfg(feature = "tls")]
    pub fn webpki_roots(mut self, on: bool) -> Self {
        self.settings.tls.webpki_roots = on;
        self
    }

    /// Whether to trust the operating system's root CAs too; default off.
    #[cfg(feature = "tls")]
    pub fn native_roots(mut self, on: bool) -> Self {
        self.settings.tls.native_roots = on;
        self
    }

    /// Trusts the CA certificates in a PEM file (a private CA, a test CA).
    #[cfg(feature = "tls")]
    pub fn ca_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.settings.tls.ca_files.push(path.into());
        self
    }

    /// Trusts the CA certificates in PEM text.
    #[cfg(feature = "tls")]
    pub fn ca_pem(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.settings.tls.ca_pems.push(pem.into());
        self
    }

    /// Presents a client certificate (chain and private key, PEM files) for mutual TLS.
    #[cfg(feature = "tls")]
    pub fn client_certificate(
        mut self,
        chain: impl Into<PathBuf>,
        key: impl Into<PathBuf>,
    ) -> Self {
        self.settings.tls.client_identity = Some((chain.into(), key.into()));
        self
    }

    /// **Dangerous**: accepts any server certificate, expired, self-signed or for another name (the
    /// Windows Runtime's `IgnorableServerCertificateErrors`). Anyone on the path can then read and
    /// change the traffic. For testing against servers with throwaway certificates only; a warning
    /// is logged on every connect.
    #[cfg(feature = "tls")]
    pub fn danger_accept_invalid_certificates(mut self) -> Self {
        self.settings.tls.accept_invalid_certificates = true;
        self
    }

    /// Uses a complete rustls configuration instead of the TLS settings above.
    #[cfg(feature = "tls")]
    pub fn tls_config(mut self, config: Arc<rustls::ClientConfig>) -> Self {
        self.settings.tls.custom = Some(config);
        self
    }

    /// Which HTTP version carries the handshake (default [`HttpVersion::Auto`]: HTTP/2 for
    /// `wss://` when the server offers WebSockets over it, RFC 8441, else HTTP/1.1). Over
    /// HTTP/2, every socket this builder and its clones open to one origin shares one
    /// connection (see [`ConnectionPool`]); [`ConnectionInfo::http_version`] tells which
    /// version a socket got.
    pub fn http_version(mut self, version: HttpVersion) -> Self {
        self.settings.http_version = version;
        self
    }

    /// Shares `pool`'s HTTP/2 connections with this builder (by default each
    /// [`ClientBuilder::new`] has a pool of its own, shared by its clones).
    pub fn connection_pool(mut self, pool: ConnectionPool) -> Self {
        self.settings.pool = pool;
        self
    }

    /// The pool this builder's HTTP/2 connections live in.
    pub fn pool(&self) -> &ConnectionPool {
        &self.settings.pool
    }

    /// The URL this builder connects to.
    pub fn url(&self) -> &str {
        &self.settings.url
    }

    /// The settings, checked.
    pub(crate) fn settings(&self) -> Result<&Settings, ClientError> {
        match &self.error {
            Some(message) => Err(ClientError::InvalidSetting(message.clone())),
            None => Ok(&self.settings),
        }
    }

    /// Connects and returns the bare [`WebSocket`] with the connection's facts. The future
    /// owns a copy of the settings (it is `'static` and can be spawned); dropping it aborts
    /// every attempt in flight.
    pub fn connect(
        &self,
    ) -> impl Future<Output = Result<(WebSocket<ClientStream>, ConnectionInfo), ClientError>>
           + Send
           + 'static {
        let settings = self.settings().cloned();
        async move { connector::connect(&settings?).await }
    }

    /// Connects and returns a [`MessageWebSocket`] (whole messages, callbacks, timeouts).
    pub fn connect_message(
        &self,
    ) -> impl Future<Output = Result<MessageWebSocket, ClientError>> + Send + 'static {
        let settings = self.settings().cloned();
        async move {
            let settings = settings?;
            let (socket, info) = connector::connect(&settings).await?;
            Ok(MessageWebSocket::new(socket, info, &settings))
        }
    }

    /// Connects and returns a [`StreamWebSocket`] (`AsyncRead + AsyncWrite` over binary
    /// messages).
    pub fn connect_stream(
        &self,
    ) -> impl Future<Output = Result<StreamWebSocket, ClientError>> + Send + 'static {
        let settings = self.settings().cloned();
        async move {
            let settings = settings?;
            let (socket, info) = connector::connect(&settings).await?;
            Ok(StreamWebSocket::new(socket, info, &settings))
        }
    }
}

#[cfg(test)]
mod tests {
    use http::header::AUTHORIZATION;

    use super::super::settings::request_headers;
    use super::*;

    #[test]
    fn reserved_and_invalid_headers_are_reported() {
        let b = ClientBuilder::new("ws://h/").header("Sec-WebSocket-Key", "x");
        assert!(matches!(b.settings(), Err(ClientError::InvalidSetting(_))));
        let b = ClientBuilder::new("ws://h/").header("bad name", "x");
        assert!(b.settings().is_err());
        let b = ClientBuilder::new("ws://h/").header("X-Ok", "yes");
        assert_eq!(b.settings().unwrap().headers["x-ok"], "yes");
    }

    #[test]
    fn credentials_become_authorization() {
        let b = ClientBuilder::new("ws://h/").basic_auth("Aladdin", "open sesame");
        let headers = request_headers(b.settings().unwrap(), None);
        assert_eq!(headers[AUTHORIZATION], "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==");
        let b = ClientBuilder::new("ws://h/").bearer_auth("t0k");
        assert_eq!(
            request_headers(b.settings().unwrap(), None)[AUTHORIZATION],
            "Bearer t0k"
        );
        let b = ClientBuilder::new("ws://h/");
        let userinfo = ("a".to_owned(), "b".to_owned());
        let headers = request_headers(b.settings().unwrap(), Some(&userinfo));
        assert_eq!(headers[AUTHORIZATION], "Basic YTpi");
    }
}
