//! # sockway-proto
//!
//! The sans-I/O core of sockway: everything RFC 6455 says about bytes on the wire, and nothing
//! about sockets or runtimes. Bytes go in ([`Connection::read_event`]), events come out, and the
//! bytes to send accumulate in an output buffer the caller drains ([`Connection::output`]).
//! One implementation therefore serves the server and client roles, HTTP/1.1 upgrades and
//! HTTP/2 extended CONNECT streams (RFC 8441), and the gateway.
//!
//! Modules, each with one job:
//! - [`frame`]: the frame header (RFC 6455 section 5.2), parsing and minimal-length encoding;
//! - [`mask`]: client-to-server masking (section 5.3), a machine word at a time;
//! - [`utf8`]: incremental, fail-fast UTF-8 validation (sections 5.6 and 8.1);
//! - [`close`]: close codes and close frame payloads (sections 5.5.1 and 7.4);
//! - [`handshake`]: the opening handshake rules (section 4), independent of the HTTP version;
//! - [`connection`]: the per-role state machine tying it together (sections 5 to 7).

pub mod close;
pub mod config;
pub mod connection;
pub mod deflate;
pub mod error;
pub mod frame;
pub mod handshake;
pub mod mask;
pub mod message;
pub mod utf8;

pub use close::{CloseCode, CloseFrame};
pub use config::Config;
pub use connection::{Connection, ConnectionState, Event, PreparedFrame};
pub use error::{ProtocolError, SendError};
pub use frame::{FrameHeader, OpCode};
pub use message::{Message, MessageKind, MessageView};

/// Which end of the connection this is: it decides masking (RFC 6455 section 5.1) and who
/// closes the TCP connection first (section 7.1.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// The end that sent the opening handshake; masks every frame it sends.
    Client,
    /// The end that accepted the opening handshake; rejects unmasked frames.
    Server,
}
