//! Connecting to `ws://` and `wss://` servers: clients in the shape of the Windows Runtime's
//! `MessageWebSocket` and `StreamWebSocket`, on RFC 6455.
//!
//! [`ClientBuilder`] holds the settings (the Windows Runtime's `Control`: subprotocols, headers,
//! credentials, timeouts, buffer sizes, TLS); its connect calls resolve the host, race its
//! addresses (RFC 8305 Happy Eyeballs, with a 250 ms attempt delay), run TLS for
//! `wss://` (rustls), and perform the HTTP/1.1 upgrade (RFC 6455 section 4.1) or, when the
//! server offers it, open the socket as a stream of a shared HTTP/2 connection (RFC 8441;
//! see [`HttpVersion`] and [`ConnectionPool`]), all under one connect timeout (60 s by
//! default). They return:
//!
//! - [`MessageWebSocket`]: whole text and binary messages, callbacks ([`MessageWebSocket::run`]),
//!   a default message type that can change after connecting;
//! - [`StreamWebSocket`]: `AsyncRead + AsyncWrite` over binary messages, for large transfers;
//! - or the bare [`crate::WebSocket`] with [`ConnectionInfo`] ([`ClientBuilder::connect`]).
//!
//! Failures are [`ClientError`]s, an enumeration to branch on (the Windows Runtime's
//! `WebErrorStatus`). Dropping a connect future aborts every connection attempt it started.

mod builder;
mod connector;
mod dial;
mod error;
mod h1;
mod h2;
mod handshake;
mod happy_eyeballs;
mod info;
mod message_socket;
mod resolve;
mod settings;
mod stream_socket;
#[cfg(feature = "tls")]
mod tls;
mod transport;
mod url;
mod version;

pub use builder::ClientBuilder;
pub use error::{ClientError, ErrorStatus, Phase};
pub use h2::pool::ConnectionPool;
pub use h2::stream::Http2Stream;
pub use info::ConnectionInfo;
pub use message_socket::{Closed, ClosedBy, MessageReceiver, MessageSender, MessageWebSocket};
pub use resolve::{Resolve, ResolveFuture, SystemResolver};
pub use settings::{
    DEFAULT_ATTEMPT_DELAY, DEFAULT_CONNECT_TIMEOUT, DEFAULT_MAX_ADDRESSES,
    DEFAULT_MAX_RESPONSE_HEAD, DEFAULT_MAX_RESPONSE_HEADERS, DEFAULT_SEND_TIMEOUT,
    DEFAULT_STREAM_CHUNK,
};
pub use stream_socket::{StreamReader, StreamWebSocket, StreamWriter};
pub use transport::ClientStream;
pub use url::Target;
pub use version::HttpVersion;

/// Cancels a connect in progress from elsewhere: give a clone to
/// [`ClientBuilder::cancel_token`] and call `cancel()`, and the pending connect fails with
/// [`ClientError::Cancelled`], dropping all of its attempts. Dropping the connect future
/// cancels too; the token is for when someone else owns that future, so that an application
/// can offer "cancel" next to its connect timeout. It is tokio-util's `CancellationToken`.
pub type CancelToken = tokio_util::sync::CancellationToken;

/// Connects to `url` with the default settings and returns a [`MessageWebSocket`]; the
/// shortcut for `ClientBuilder::new(url).connect_message()`.
pub async fn connect(url: &str) -> Result<MessageWebSocket, ClientError> {
    ClientBuilder::new(url).connect_message().await
}
