//! The hub messages of the SignalR hub protocol (dotnet/aspnetcore
//! `src/SignalR/docs/specs/HubProtocol.md`, "Message Types"), independent of their encoding.
//!
//! A message is generic over the type of the values it carries (arguments, stream items,
//! completion results): a received message holds [`Value`]s, parsed but not yet bound to Rust
//! types, because only the hub method that is invoked knows which types its arguments have; a
//! message to send holds [`Payload`]s, any `Serialize` value, which each protocol encodes in its
//! own way when the message is written (once per protocol, however many connections get it).

use std::fmt;
use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde::Serialize;

/// The numeric `type` of each message, as the spec numbers them.
pub mod message_type {
    /// `Invocation`: call a method, with or without an invocation id.
    pub const INVOCATION: u8 = 1;
    /// `StreamItem`: one item of a stream.
    pub const STREAM_ITEM: u8 = 2;
    /// `Completion`: an invocation or a stream ended, with a result or an error.
    pub const COMPLETION: u8 = 3;
    /// `StreamInvocation`: call a method whose results are streamed.
    pub const STREAM_INVOCATION: u8 = 4;
    /// `CancelInvocation`: stop a stream the sender asked for.
    pub const CANCEL_INVOCATION: u8 = 5;
    /// `Ping`: keep-alive, nothing to act on.
    pub const PING: u8 = 6;
    /// `Close`: the connection is ending, perhaps with an error.
    pub const CLOSE: u8 = 7;
    /// `Ack`: stateful reconnect, every message up to a sequence id arrived.
    pub const ACK: u8 = 8;
    /// `Sequence`: stateful reconnect, the sequence id of the next message sent.
    pub const SEQUENCE: u8 = 9;
}

/// One hub message; `V` is the type of the values it carries ([`Value`] when received,
/// [`Payload`] when sent).
#[derive(Debug, Clone, PartialEq)]
pub enum HubMessage<V> {
    /// `Invocation` (type 1).
    Invocation(Invocation<V>),
    /// `StreamItem` (type 2).
    StreamItem(StreamItem<V>),
    /// `Completion` (type 3).
    Completion(Completion<V>),
    /// `StreamInvocation` (type 4): an [`Invocation`] whose id is always present.
    StreamInvocation(Invocation<V>),
    /// `CancelInvocation` (type 5).
    CancelInvocation {
        /// The stream to stop.
        invocation_id: String,
    },
    /// `Ping` (type 6).
    Ping,
    /// `Close` (type 7).
    Close(Close),
    /// `Ack` (type 8).
    Ack {
        /// Every message up to and including this sequence id has arrived.
        sequence_id: u64,
    },
    /// `Sequence` (type 9).
    Sequence {
        /// The sequence id of the next message the sender sends.
        sequence_id: u64,
    },
}

impl<V> HubMessage<V> {
    /// The same message with each value it carries (arguments, stream item, completion
    /// result) turned by `convert`: for instance a received message made into one to send,
    /// `message.map_values(|value| Payload::new(value))`, to pass it on.
    pub fn map_values<W>(self, mut convert: impl FnMut(V) -> W) -> HubMessage<W> {
        let mut invocation = |call: Invocation<V>| Invocation {
            invocation_id: call.invocation_id,
            target: call.target,
            arguments: call.arguments.into_iter().map(&mut convert).collect(),
            stream_ids: call.stream_ids,
        };
        match self {
            HubMessage::Invocation(call) => HubMessage::Invocation(invocation(call)),
            HubMessage::StreamInvocation(call) => HubMessage::StreamInvocation(invocation(call)),
            HubMessage::StreamItem(item) => HubMessage::StreamItem(StreamItem {
                invocation_id: item.invocation_id,
                item: convert(item.item),
            }),
            HubMessage::Completion(completion) => HubMessage::Completion(Completion {
                invocation_id: completion.invocation_id,
                outcome: match completion.outcome {
                    Outcome::Void => Outcome::Void,
                    Outcome::Result(value) => Outcome::Result(convert(value)),
                    Outcome::Error(error) => Outcome::Error(error),
                },
            }),
            HubMessage::CancelInvocation { invocation_id } => {
                HubMessage::CancelInvocation { invocation_id }
            }
            HubMessage::Ping => HubMessage::Ping,
            HubMessage::Close(close) => HubMessage::Close(close),
            HubMessage::Ack { sequence_id } => HubMessage::Ack { sequence_id },
            HubMessage::Sequence { sequence_id } => HubMessage::Sequence { sequence_id },
        }
    }
}

/// A call of `target` with `arguments` (`Invocation` and `StreamInvocation`).
#[derive(Debug, Clone, PartialEq)]
pub struct Invocation<V> {
    /// Present when the caller wants a `Completion` (always for a stream invocation).
    pub invocation_id: Option<String>,
    /// The method's name.
    pub target: String,
    /// The arguments, in order; stream arguments are not among them.
    pub arguments: Vec<V>,
    /// The ids of the client-to-server streams this invocation takes, in order.
    pub stream_ids: Vec<String>,
}

/// One item of the stream `invocation_id`.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamItem<V> {
    /// The invocation (server-to-client stream) or stream id (client-to-server stream).
    pub invocation_id: String,
    /// The item.
    pub item: V,
}

/// The end of an invocation or a stream.
#[derive(Debug, Clone, PartialEq)]
pub struct Completion<V> {
    /// The invocation or stream that ended.
    pub invocation_id: String,
    /// How it ended.
    pub outcome: Outcome<V>,
}

/// How an invocation ended: the spec's three `Completion` shapes.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome<V> {
    /// Neither `result` nor `error`: a method without a result, or the end of a stream.
    Void,
    /// `result`: the method's return value (may be null).
    Result(V),
    /// `error`: why the invocation failed.
    Error(String),
}

/// A `Close` message: the sender is ending the connection.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Close {
    /// Why, when the connection ends because of an error.
    pub error: Option<String>,
    /// Whether a client may reconnect (the JavaScript client's automatic reconnect honours it).
    pub allow_reconnect: bool,
}

/// A value received from a peer, parsed by its protocol and bound to a Rust type later.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// From the JSON protocol.
    Json(serde_json::Value),
    /// From the MessagePack protocol.
    MessagePack(rmpv::Value),
}

/// A value that could not be bound to the type a hub method asked for.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BindError(pub String);

impl Value {
    /// Binds the value to `T` (as `serde` deserializes it from the value's protocol; a
    /// MessagePack value also binds `bin` to `Vec<u8>` and enums as `rmp_serde` writes them).
    pub fn bind<T: DeserializeOwned>(self) -> Result<T, BindError> {
        match self {
            Value::Json(value) => {
                serde_json::from_value(value).map_err(|error| BindError(error.to_string()))
            }
            Value::MessagePack(value) => {
                super::msgpack_bind::bind(value).map_err(|error| BindError(error.to_string()))
            }
        }
    }

    /// Whether the value is null (JSON `null`, MessagePack `nil`).
    pub fn is_null(&self) -> bool {
        match self {
            Value::Json(value) => value.is_null(),
            Value::MessagePack(value) => value.is_nil(),
        }
    }
}

/// A value to send: anything `Serialize`, shared so one message can go to many connections
/// and be encoded once per protocol.
#[derive(Clone)]
pub struct Payload(Arc<dyn erased_serde::Serialize + Send + Sync>);

impl Payload {
    /// Wraps `value`.
    pub fn new<T: Serialize + Send + Sync + 'static>(value: T) -> Self {
        Payload(Arc::new(value))
    }

    /// The value, for a protocol's serializer.
    pub fn as_serialize(&self) -> &(dyn erased_serde::Serialize + Send + Sync) {
        &*self.0
    }
}

impl Serialize for Payload {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        erased_serde::serialize(&*self.0, serializer)
    }
}

impl fmt::Debug for Payload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match serde_json::to_string(self) {
            Ok(json) => write!(f, "Payload({json})"),
            Err(_) => f.write_str("Payload(..)"),
        }
    }
}

impl PartialEq for Payload {
    /// Equal when both serialize to the same JSON (for tests).
    fn eq(&self, other: &Self) -> bool {
        serde_json::to_value(self).ok() == serde_json::to_value(other).ok()
    }
}

/// A message received from a peer.
pub type Incoming = HubMessage<Value>;
/// A message to send.
pub type Outgoing = HubMessage<Payload>;
