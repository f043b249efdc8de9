//! The MessagePack hub protocol (HubProtocol.md, "MessagePack (MsgPack) encoding").

use bytes::BytesMut;

use super::message::{Incoming, Outgoing};
use super::{EncodeError, ProtocolError};

/// Takes the first whole message off `buffer` (see [`super::Protocol::parse`]).
pub(super) fn parse(
    buffer: &mut BytesMut,
    max_message_size: usize,
) -> Result<Option<Incoming>, ProtocolError> {
    let _ = (buffer, max_message_size);
    Err(ProtocolError::Invalid(
        "MessagePack is not implemented yet".into(),
    ))
}

/// Appends `message` with its length prefix (see [`super::Protocol::write`]).
pub(super) fn write(message: &Outgoing, out: &mut Vec<u8>) -> Result<(), EncodeError> {
    let _ = (message, out);
    Err(EncodeError("MessagePack is not implemented yet".into()))
}
