//! What hub servers publish to each other: a MessagePack-encoded [`Envelope`] (via
//! `rmp_serde`). A hub message travels already framed in every protocol the hub speaks, so a
//! receiving server writes the same bytes to all its connections without encoding again
//! (ASP.NET Core's `RedisProtocol` carries serialized messages the same way).

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;

use crate::lifetime::Target;
use crate::protocol::{Protocol, Value};
use crate::relay::{RelayedRequest, RelayedResponse};
use crate::serialized::SerializedMessage;

/// One backplane message.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Envelope {
    /// The id of the server that published it: a server ignores its own messages, which it
    /// delivered locally already.
    pub(crate) origin: String,
    pub(crate) body: Body,
}

/// What an envelope asks of the servers that receive it.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Body {
    /// Deliver a hub message to the local connections of `target`. For a target of several
    /// groups or users, published once per group or user channel, `index` says which one
    /// this copy came through: it goes to the connections that are in that one and in none
    /// before it, so a connection in two groups gets it once.
    Send {
        target: WireTarget,
        index: u32,
        frames: Frames,
    },
    /// Add (`add`) or remove a local connection to or from a group, then acknowledge `ack`
    /// on the origin's server channel.
    Group {
        connection: String,
        group: String,
        add: bool,
        ack: u64,
    },
    /// The answer to a [`Body::Group`]: `error` when it could not be done.
    GroupAck { ack: u64, error: Option<String> },
    /// Invoke a method on a local connection and send its `Completion` back (client results).
    Invoke {
        connection: String,
        invocation_id: String,
        frames: Frames,
    },
    /// The answer of a client to a [`Body::Invoke`].
    InvokeResult {
        invocation_id: String,
        result: Result<WireValue, String>,
    },
    /// Asks every server for its connections in a group or of a user; each answers `query`
    /// on the origin's server channel.
    PresenceQuery { query: u64, of: PresenceOf },
    /// One server's answer to a [`Body::PresenceQuery`].
    PresenceReply {
        query: u64,
        connections: Vec<String>,
    },
    /// An HTTP request of a connection the receiving server holds (Server-Sent Events and
    /// long polling without sticky sessions); answered with `id` on the origin's server
    /// channel.
    Relay { id: u64, request: RelayedRequest },
    /// The holding server's answer to a [`Body::Relay`].
    RelayAnswer { id: u64, response: RelayedResponse },
    /// Nothing to do: published on a connection's channel while a relayed request waits, to
    /// learn from the subscriber count whether its holder still hears it.
    RelayProbe,
}

/// Whose connections a presence query asks for.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) enum PresenceOf {
    /// The members of a group.
    Group(String),
    /// The connections of a user.
    User(String),
}

/// A hub message framed in each protocol it could be encoded in.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Frames {
    json: Option<ByteBuf>,
    message_pack: Option<ByteBuf>,
    trackable: bool,
}

impl Frames {
    /// Encodes `message` in both protocols (each once); an error when neither works.
    pub(crate) fn encode(message: &SerializedMessage) -> Result<Self, String> {
        let json = message.encoded(Protocol::Json);
        let message_pack = message.encoded(Protocol::MessagePack);
        if let (Err(error), Err(_)) = (&json, &message_pack) {
            return Err(error.0.clone());
        }
        Ok(Frames {
            json: json.ok().map(|frame| ByteBuf::from(frame.to_vec())),
            message_pack: message_pack.ok().map(|frame| ByteBuf::from(frame.to_vec())),
            trackable: message.is_trackable(),
        })
    }

    /// The message again, ready to write to local connections.
    pub(crate) fn into_message(self) -> SerializedMessage {
        let frames = [
            (Protocol::Json, self.json),
            (Protocol::MessagePack, self.message_pack),
        ]
        .into_iter()
        .filter_map(|(protocol, frame)| Some((protocol, Bytes::from(frame?.into_vec()))));
        SerializedMessage::from_frames(frames, self.trackable)
    }
}

/// [`Target`] on the wire.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) enum WireTarget {
    All,
    AllExcept(Vec<String>),
    Connection(String),
    Connections(Vec<String>),
    Group(String),
    Groups(Vec<String>),
    GroupExcept(String, Vec<String>),
    User(String),
    Users(Vec<String>),
}

impl From<Target> for WireTarget {
    fn from(target: Target) -> Self {
        match target {
            Target::All => WireTarget::All,
            Target::AllExcept(ids) => WireTarget::AllExcept(ids),
            Target::Connection(id) => WireTarget::Connection(id),
            Target::Connections(ids) => WireTarget::Connections(ids),
            Target::Group(group) => WireTarget::Group(group),
            Target::Groups(groups) => WireTarget::Groups(groups),
            Target::GroupExcept(group, ids) => WireTarget::GroupExcept(group, ids),
            Target::User(user) => WireTarget::User(user),
            Target::Users(users) => WireTarget::Users(users),
        }
    }
}

impl From<WireTarget> for Target {
    fn from(target: WireTarget) -> Self {
        match target {
            WireTarget::All => Target::All,
            WireTarget::AllExcept(ids) => Target::AllExcept(ids),
            WireTarget::Connection(id) => Target::Connection(id),
            WireTarget::Connections(ids) => Target::Connections(ids),
            WireTarget::Group(group) => Target::Group(group),
            WireTarget::Groups(groups) => Target::Groups(groups),
            WireTarget::GroupExcept(group, ids) => Target::GroupExcept(group, ids),
            WireTarget::User(user) => Target::User(user),
            WireTarget::Users(users) => Target::Users(users),
        }
    }
}

/// A client's result on the wire, in the protocol the client spoke.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum WireValue {
    /// JSON text.
    Json(String),
    /// A MessagePack value.
    MessagePack(ByteBuf),
}

impl WireValue {
    pub(crate) fn from_value(value: &Value) -> Result<Self, String> {
        match value {
            Value::Json(value) => Ok(WireValue::Json(value.to_string())),
            Value::MessagePack(value) => {
                let mut out = Vec::new();
                rmpv::encode::write_value(&mut out, value).map_err(|error| error.to_string())?;
                Ok(WireValue::MessagePack(ByteBuf::from(out)))
            }
        }
    }

    pub(crate) fn into_value(self) -> Result<Value, String> {
        match self {
            WireValue::Json(text) => serde_json::from_str(&text)
                .map(Value::Json)
                .map_err(|error| error.to_string()),
            WireValue::MessagePack(bytes) => rmpv::decode::read_value(&mut &bytes[..])
                .map(Value::MessagePack)
                .map_err(|error| error.to_string()),
        }
    }
}

impl Envelope {
    /// The envelope's bytes.
    pub(crate) fn encode(&self) -> Result<Bytes, String> {
        rmp_serde::to_vec(self)
            .map(Bytes::from)
            .map_err(|error| error.to_string())
    }

    /// Reads an envelope; anything else (another application's message on the channel, a
    /// newer format) is an error the caller logs and skips.
    pub(crate) fn decode(bytes: &[u8]) -> Result<Self, String> {
        rmp_serde::from_slice(bytes).map_err(|error| error.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{HubMessage, Invocation, Payload};

    #[test]
    fn a_send_round_trips_with_both_frames() {
        let message = SerializedMessage::new(HubMessage::Invocation(Invocation {
            invocation_id: None,
            target: "Send".into(),
            arguments: vec![Payload::new("hi")],
            stream_ids: Vec::new(),
        }));
        let envelope = Envelope {
            origin: "a".into(),
            body: Body::Send {
                target: Target::Groups(vec!["g".into()]).into(),
                index: 0,
                frames: Frames::encode(&message).unwrap(),
            },
        };
        let decoded = Envelope::decode(&envelope.encode().unwrap()).unwrap();
        let Body::Send { frames, target, .. } = decoded.body else {
            panic!("not a send");
        };
        assert_eq!(Target::from(target), Target::Groups(vec!["g".into()]));
        let received = frames.into_message();
        assert!(received.is_trackable());
        for protocol in [Protocol::Json, Protocol::MessagePack] {
            assert_eq!(
                received.encoded(protocol).unwrap(),
                message.encoded(protocol).unwrap()
            );
        }
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(Envelope::decode(b"").is_err());
        assert!(Envelope::decode(b"\xdd\xff\xff\xff\xff").is_err());
        assert!(Envelope::decode(b"hello").is_err());
    }

    #[test]
    fn client_values_round_trip() {
        let json = Value::Json(serde_json::json!({"a": [1, 2]}));
        let packed = Value::MessagePack(rmpv::Value::from("x"));
        for value in [json, packed] {
            let wire = WireValue::from_value(&value).unwrap();
            assert_eq!(wire.into_value().unwrap(), value);
        }
    }
}
