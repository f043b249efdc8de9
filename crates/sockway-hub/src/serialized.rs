//! A message to send, encoded at most once per protocol however many connections get it
//! (ASP.NET Core's `SerializedHubMessage`).

use std::sync::OnceLock;

use bytes::Bytes;

use crate::protocol::{EncodeError, HubMessage, Outgoing, Protocol};

/// An outgoing message and its encodings, each made the first time a connection speaking that
/// protocol needs it: a broadcast to a thousand JSON clients serializes once, and a protocol no
/// recipient speaks is never encoded.
#[derive(Debug)]
pub struct SerializedMessage {
    /// `None` for a message that arrived already encoded ([`SerializedMessage::from_frames`]).
    message: Option<Outgoing>,
    trackable: bool,
    json: OnceLock<Result<Bytes, String>>,
    message_pack: OnceLock<Result<Bytes, String>>,
}

impl SerializedMessage {
    /// Wraps `message`; nothing is encoded yet.
    pub fn new(message: Outgoing) -> Self {
        SerializedMessage {
            trackable: is_trackable(&message),
            message: Some(message),
            json: OnceLock::new(),
            message_pack: OnceLock::new(),
        }
    }

    /// A message that arrives already framed in some protocols (from another server, through
    /// a backplane, as ASP.NET Core's Redis backplane carries `SerializedMessage`s): a protocol
    /// missing from `frames` fails to encode with an error saying so.
    pub fn from_frames(
        frames: impl IntoIterator<Item = (Protocol, Bytes)>,
        trackable: bool,
    ) -> Self {
        let json = OnceLock::new();
        let message_pack = OnceLock::new();
        for (protocol, frame) in frames {
            let cell = match protocol {
                Protocol::Json => &json,
                Protocol::MessagePack => &message_pack,
            };
            let _ = cell.set(Ok(frame));
        }
        SerializedMessage {
            message: None,
            trackable,
            json,
            message_pack,
        }
    }

    /// The message, unless it arrived already encoded.
    pub fn message(&self) -> Option<&Outgoing> {
        self.message.as_ref()
    }

    /// Whether the message takes a sequence id with stateful reconnect: the spec's trackable
    /// messages (`HubProtocol.md`, "Stateful Reconnect"), the reference's
    /// `HubInvocationMessage`s.
    pub fn is_trackable(&self) -> bool {
        self.trackable
    }

    /// The framed bytes of the message in `protocol`, encoded on first use.
    pub fn encoded(&self, protocol: Protocol) -> Result<Bytes, EncodeError> {
        let cell = match protocol {
            Protocol::Json => &self.json,
            Protocol::MessagePack => &self.message_pack,
        };
        cell.get_or_init(|| match &self.message {
            Some(message) => encode(protocol, message).map_err(|error| error.0),
            None => Err(format!(
                "the message was not received in {}",
                protocol.name()
            )),
        })
        .clone()
        .map_err(EncodeError)
    }
}

/// Encodes one message, framed, in `protocol`.
pub(crate) fn encode(protocol: Protocol, message: &Outgoing) -> Result<Bytes, EncodeError> {
    let mut out = Vec::new();
    protocol.write(message, &mut out)?;
    Ok(Bytes::from(out))
}

/// Whether `message` is one of the trackable messages of stateful reconnect.
pub(crate) fn is_trackable<V>(message: &HubMessage<V>) -> bool {
    matches!(
        message,
        HubMessage::Invocation(_)
            | HubMessage::StreamInvocation(_)
            | HubMessage::StreamItem(_)
            | HubMessage::Completion(_)
            | HubMessage::CancelInvocation { .. }
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{Invocation, Payload};

    #[test]
    fn each_protocol_is_encoded_once_and_only_when_asked() {
        let message = SerializedMessage::new(HubMessage::Invocation(Invocation {
            invocation_id: None,
            target: "Send".into(),
            arguments: vec![Payload::new("hi")],
            stream_ids: Vec::new(),
        }));
        let first = message.encoded(Protocol::Json).unwrap();
        let second = message.encoded(Protocol::Json).unwrap();
        assert_eq!(first.as_ptr(), second.as_ptr());
        assert!(message.message_pack.get().is_none());
        let packed = message.encoded(Protocol::MessagePack).unwrap();
        assert_ne!(packed, first);
        assert!(message.is_trackable());
    }
}
