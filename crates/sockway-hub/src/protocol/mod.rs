//! The SignalR hub protocols (dotnet/aspnetcore `src/SignalR/docs/specs/HubProtocol.md`):
//! the handshake, the hub messages, and their JSON and MessagePack encodings. Sans-I/O: bytes
//! in, messages out, and back.

mod handshake;
mod json;
mod json_fields;
mod message;
mod msgpack;
mod msgpack_bind;
mod msgpack_reader;
#[cfg(test)]
mod tests;

pub use handshake::{HandshakeRequest, HandshakeResponse};
pub use message::{
    message_type, BindError, Close, Completion, HubMessage, Incoming, Invocation, Outcome,
    Outgoing, Payload, StreamItem, Value,
};

use bytes::BytesMut;

/// The record separator that ends every JSON record and the handshake (`0x1E`).
pub const RECORD_SEPARATOR: u8 = 0x1e;

/// The usual limit on one received message, framing included: 32 KiB, ASP.NET Core's default
/// `MaximumReceiveMessageSize` (which also bounds the handshake request).
pub const DEFAULT_MAX_MESSAGE_SIZE: usize = 32 * 1024;

/// How a transport must carry a protocol's bytes (`TransferFormat` in the transport spec).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TransferFormat {
    /// UTF-8 text: WebSocket text frames, any transport.
    Text,
    /// Arbitrary bytes: WebSocket binary frames, long polling; not Server-Sent Events.
    Binary,
}

/// A hub protocol the server speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// `json`, version 1: text records ended by `0x1E`.
    Json,
    /// `messagepack`, version 1: binary records with a VarInt length prefix.
    MessagePack,
}

/// Why bytes from a peer could not be read as hub messages. The text is what the peer is told.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ProtocolError {
    /// A record is larger than the limit (`MaximumReceiveMessageSize`).
    #[error("message of {size} bytes is over the limit of {limit} bytes")]
    TooLarge {
        /// The record's size, or the bytes seen so far without its end.
        size: usize,
        /// The limit in force.
        limit: usize,
    },
    /// The record is not a valid message of the protocol; says what was wrong.
    #[error("{0}")]
    Invalid(String),
}

/// A message could not be encoded (a [`Payload`] whose `Serialize` failed).
#[derive(Debug, thiserror::Error)]
#[error("cannot encode the message: {0}")]
pub struct EncodeError(pub String);

impl Protocol {
    /// The name clients ask for in the handshake.
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Json => "json",
            Protocol::MessagePack => "messagepack",
        }
    }

    /// The protocol named `name` in a handshake request, if the server speaks it (names are
    /// case-sensitive, as ASP.NET Core's protocol resolver compares them).
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "json" => Some(Protocol::Json),
            "messagepack" => Some(Protocol::MessagePack),
            _ => None,
        }
    }

    /// The newest version of the protocol the server speaks: 2, which adds the `Ack` and
    /// `Sequence` messages of stateful reconnect (ASP.NET Core 8 and later; the JavaScript
    /// client asks for 2 when stateful reconnect is on and 1 otherwise).
    pub fn version(self) -> u32 {
        2
    }

    /// Whether a client asking for `version` in its handshake can be served: every version up
    /// to [`Protocol::version`], as ASP.NET Core's `IsVersionSupported` decides (`version <=
    /// Version`).
    pub fn is_version_supported(self, version: i64) -> bool {
        version <= i64::from(self.version())
    }

    /// How transports must carry this protocol.
    pub fn transfer_format(self) -> TransferFormat {
        match self {
            Protocol::Json => TransferFormat::Text,
            Protocol::MessagePack => TransferFormat::Binary,
        }
    }

    /// Appends `message`, framed (JSON: the record and `0x1E`; MessagePack: the VarInt length
    /// and the body), to `out`.
    ///
    /// On an error `out` is left as it was.
    pub fn write(self, message: &Outgoing, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        match self {
            Protocol::Json => json::write(message, out),
            Protocol::MessagePack => msgpack::write(message, out),
        }
    }

    /// Takes one message off the front of `buffer`: `Ok(None)` while the record is incomplete
    /// (and still within `max_message_size`), consuming its bytes when complete.
    ///
    /// `max_message_size` counts the framing too (the `0x1E`, the VarInt prefix), as ASP.NET
    /// Core's `MaximumReceiveMessageSize` does: it parses within a window of that many bytes.
    /// A record over it is refused as soon as that is known (JSON: more bytes than the limit
    /// without a separator; MessagePack: from the length prefix, before the body arrives), and
    /// is left in `buffer`. An invalid record is consumed before its error is returned.
    ///
    /// A record of a message type this server does not know is skipped and the next one is
    /// returned: the reference server ignores such records, so a later protocol version may
    /// add message types without breaking older peers.
    pub fn parse(
        self,
        buffer: &mut BytesMut,
        max_message_size: usize,
    ) -> Result<Option<Incoming>, ProtocolError> {
        match self {
            Protocol::Json => json::parse(buffer, max_message_size),
            Protocol::MessagePack => msgpack::parse(buffer, max_message_size),
        }
    }
}
