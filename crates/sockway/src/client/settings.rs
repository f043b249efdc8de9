//! [`Settings`]: everything a client connection is made from, as plain data with its
//! defaults. A leaf: the builder fills it in, the connect sequence and the sockets read it.

use std::net::IpAddr;
use std::time::Duration;

use base64::Engine as _;
use http::header::{HeaderMap, HeaderValue, AUTHORIZATION};
use sockway_proto::deflate::DeflateConfig;
use sockway_proto::MessageKind;
use tokio_util::sync::CancellationToken;

use super::h2::pool::ConnectionPool;
use super::resolve::SharedResolver;
#[cfg(feature = "tls")]
use super::tls::TlsSettings;
use super::version::HttpVersion;
use crate::config::WebSocketConfig;

/// Default connect timeout, covering resolve, TCP, TLS and the handshake: 60 s, so that a
/// dead network fails a connect instead of hanging it.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(60);
/// Default number of a host's addresses tried: 5, so that a name with many addresses
/// cannot make one connect open sockets without bound.
pub const DEFAULT_MAX_ADDRESSES: usize = 5;
/// Default delay before racing the next address (RFC 8305 section 5: 250 ms recommended).
pub const DEFAULT_ATTEMPT_DELAY: Duration = Duration::from_millis(250);
/// Default send timeout: 30 s, so that a peer that stops reading fails a send instead of
/// hanging it.
pub const DEFAULT_SEND_TIMEOUT: Duration = Duration::from_secs(30);
/// Default limit on the handshake response head.
pub const DEFAULT_MAX_RESPONSE_HEAD: usize = 16 * 1024;
/// Default limit on the number of response header lines.
pub const DEFAULT_MAX_RESPONSE_HEADERS: usize = 64;
/// Default largest binary message a [`super::StreamWebSocket`] write sends.
pub const DEFAULT_STREAM_CHUNK: usize = 64 * 1024;

/// Everything a connection is made from.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub url: String,
    pub subprotocols: Vec<String>,
    pub origin: Option<String>,
    pub headers: HeaderMap,
    pub authorization: Option<HeaderValue>,
    pub connect_timeout: Duration,
    pub max_addresses: usize,
    pub attempt_delay: Duration,
    pub send_timeout: Option<Duration>,
    pub receive_timeout: Option<Duration>,
    pub nodelay: bool,
    pub send_buffer: Option<u32>,
    pub recv_buffer: Option<u32>,
    pub local_address: Option<IpAddr>,
    pub max_response_head: usize,
    pub max_response_headers: usize,
    pub websocket: WebSocketConfig,
    pub compression: Option<DeflateConfig>,
    pub message_type: MessageKind,
    pub stream_chunk: usize,
    pub resolver: SharedResolver,
    pub cancel: Option<CancellationToken>,
    pub http_version: HttpVersion,
    pub pool: ConnectionPool,
    #[cfg(feature = "tls")]
    pub tls: TlsSettings,
}

impl Settings {
    /// Settings for `url` with every default (see [`super::ClientBuilder::new`]).
    pub(crate) fn new(url: String) -> Self {
        Self {
            url,
            subprotocols: Vec::new(),
            origin: None,
            headers: HeaderMap::new(),
            authorization: None,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            max_addresses: DEFAULT_MAX_ADDRESSES,
            attempt_delay: DEFAULT_ATTEMPT_DELAY,
            send_timeout: Some(DEFAULT_SEND_TIMEOUT),
            receive_timeout: None,
            nodelay: true,
            send_buffer: None,
            recv_buffer: None,
            local_address: None,
            max_response_head: DEFAULT_MAX_RESPONSE_HEAD,
            max_response_headers: DEFAULT_MAX_RESPONSE_HEADERS,
            websocket: WebSocketConfig::default(),
            compression: None,
            message_type: MessageKind::Binary,
            stream_chunk: DEFAULT_STREAM_CHUNK,
            resolver: SharedResolver::default(),
            cancel: None,
            http_version: HttpVersion::Auto,
            pool: ConnectionPool::new(),
            #[cfg(feature = "tls")]
            tls: TlsSettings::default(),
        }
    }

    /// A digest of the TLS settings (trust, client certificate, verification switch), so that
    /// HTTP/2 connections are shared only between identical TLS settings.
    pub(crate) fn tls_digest(&self) -> u64 {
        #[allow(unused_mut)]
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        #[cfg(feature = "tls")]
        self.tls.identity(&mut hasher);
        std::hash::Hasher::finish(&hasher)
    }
}

/// Credentials from a URL's userinfo, as a Basic `Authorization` value.
pub(crate) fn basic_from_userinfo(user: &str, password: &str) -> Option<HeaderValue> {
    let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    let mut value = HeaderValue::from_str(&format!("Basic {token}")).ok()?;
    value.set_sensitive(true);
    Some(value)
}

/// The headers to send: the extra headers plus `Authorization`.
pub(crate) fn request_headers(
    settings: &Settings,
    userinfo: Option<&(String, String)>,
) -> HeaderMap {
    let mut headers = settings.headers.clone();
    let authorization = settings
        .authorization
        .clone()
        .or_else(|| userinfo.and_then(|(u, p)| basic_from_userinfo(u, p)));
    if let Some(value) = authorization {
        headers.insert(AUTHORIZATION, value);
    }
    headers
}
