//! # sockway
//!
//! An async WebSocket toolkit on tokio, built on the sans-I/O core [`sockway_proto`].
//!
//! - [`WebSocket`]: an established connection over any `AsyncRead + AsyncWrite`, with whole
//!   message and partial (buffer) receives, partial sends, close handshake, split halves,
//!   `Stream` + `Sink`, cancel-safe receives and bounded write buffering.
//! - `server` (feature `server`): accept WebSockets on hyper, tower and axum routes.
//! - `client` (feature `client`): connect to `ws://` and `wss://` URLs.
//! - `event_loop` (feature `event-loop`): a callback-driven server without a task per
//!   connection, for very many mostly idle connections.
//! - [`topics`]: publish/subscribe fan-out for task-driven sockets, a message framed once
//!   for every subscriber.

#[cfg(feature = "client")]
pub mod client;
pub mod config;
#[cfg(feature = "tls")]
mod crypto;
pub mod error;
#[cfg(feature = "event-loop")]
pub mod event_loop;
#[cfg(any(feature = "server", feature = "event-loop"))]
pub mod limits;
#[cfg(any(feature = "server", feature = "event-loop"))]
mod listen;
#[cfg(feature = "server")]
pub mod server;
mod socket;
#[cfg(all(feature = "tls", any(feature = "server", feature = "event-loop")))]
mod tls;
pub mod topics;

pub use config::{KeepAlive, WebSocketConfig};
#[cfg(feature = "tls")]
pub use crypto::crypto_provider;
pub use error::{CloseInfo, Error};
#[cfg(any(feature = "server", feature = "event-loop"))]
pub use limits::ServerLimits;
pub use socket::{
    Fragment, ReceiveResult, ReceivedKind, Stats, WebSocket, WebSocketReader, WebSocketWriter,
};
pub use sockway_proto::connection::Compression;
pub use sockway_proto::deflate::{DeflateConfig, DeflateParams};
/// Text payloads that are known to be UTF-8.
pub use sockway_proto::message::TextBytes;
pub use sockway_proto::{
    self as proto, CloseCode, CloseFrame, Message, MessageKind, PreparedFrame, Role,
};
