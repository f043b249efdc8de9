//! The MessagePack hub protocol (HubProtocol.md, "MessagePack (MsgPack) encoding"): each message
//! is a MessagePack array, framed by its length as a VarInt ("Binary encoding").
//!
//! Reading follows ASP.NET Core's `MessagePackHubProtocolWorker`: the elements are read in
//! order, older clients' shorter `Invocation` (no stream ids) and `Close` (no allow-reconnect)
//! arrays are accepted, elements past the ones a message defines are ignored, headers are
//! checked and dropped, and the errors say which element was wrong in the reference's words.
//! Writing produces the reference's arrays; payloads are serialized with `rmp_serde` with
//! structs as maps keyed by field name (what the JavaScript client and MessagePack-CSharp's
//! contractless resolver expect) and bytes as `bin`.

use bytes::{Buf, BytesMut};
use serde::Serialize;

use super::message::{
    message_type, Close, Completion, HubMessage, Incoming, Invocation, Outcome, Outgoing,
    StreamItem, Value,
};
use super::msgpack_reader::{ReadError, Reader};
use super::{EncodeError, ProtocolError};

/// The largest body a length prefix may announce: 2 GB - 1, the spec's "biggest supported
/// payload", which makes the prefix at most 5 bytes.
pub(super) const MAX_LENGTH: u32 = 0x7fff_ffff;

/// `ResultKind` of a `Completion`: an error.
const ERROR_RESULT: i128 = 1;
/// `ResultKind` of a `Completion`: no result.
const VOID_RESULT: i128 = 2;
/// `ResultKind` of a `Completion`: a result.
const NON_VOID_RESULT: i128 = 3;

/// Takes the first whole message off `buffer` (see [`super::Protocol::parse`]).
pub(super) fn parse(
    buffer: &mut BytesMut,
    max_message_size: usize,
) -> Result<Option<Incoming>, ProtocolError> {
    loop {
        let Some((length, prefix)) = read_length(buffer)? else {
            return Ok(None);
        };
        let size = prefix + length;
        if size > max_message_size {
            return Err(ProtocolError::TooLarge {
                size,
                limit: max_message_size,
            });
        }
        if buffer.len() < size {
            return Ok(None);
        }
        let message = read_message(&buffer[prefix..size]);
        buffer.advance(size);
        if let Some(message) = message.map_err(ProtocolError::Invalid)? {
            return Ok(Some(message));
        }
    }
}

/// The body length the VarInt at the front of `buffer` announces and the prefix's size, or
/// `None` while the prefix is incomplete (7 bits a byte, least significant first, at most 5
/// bytes, the 5th at most 7: `BinaryMessageParser`).
pub(super) fn read_length(buffer: &[u8]) -> Result<Option<(usize, usize)>, ProtocolError> {
    let mut length = 0u32;
    for (index, &byte) in buffer.iter().take(5).enumerate() {
        if index == 4 && byte > 7 {
            return Err(ProtocolError::Invalid(
                "Messages over 2GB in size are not supported.".into(),
            ));
        }
        length |= u32::from(byte & 0x7f) << (7 * index);
        if byte & 0x80 == 0 {
            return Ok(Some((length as usize, index + 1)));
        }
    }
    Ok(None)
}

/// Writes `length` as a VarInt into `prefix`, returning how many bytes it took.
pub(super) fn write_length(mut length: u32, prefix: &mut [u8; 5]) -> usize {
    let mut count = 0;
    loop {
        let low = (length & 0x7f) as u8;
        length >>= 7;
        if length == 0 {
            prefix[count] = low;
            return count + 1;
        }
        prefix[count] = low | 0x80;
        count += 1;
    }
}

/// The reference's error for an element that could not be read as `what`.
fn failed(field: &str, what: &str, error: ReadError) -> String {
    format!("Reading '{field}' as {what} failed: {}.", error.describe())
}

fn string(reader: &mut Reader<'_>, field: &str) -> Result<Option<String>, String> {
    reader
        .str_or_nil()
        .map(|text| text.map(str::to_owned))
        .map_err(|error| failed(field, "String", error))
}

/// A string that must be present and not empty, as the reference's `ThrowIfNullOrEmpty`.
fn required(reader: &mut Reader<'_>, field: &str, what: &str) -> Result<String, String> {
    string(reader, field)?
        .filter(|text| !text.is_empty())
        .ok_or_else(|| format!("Null or empty {what}."))
}

fn value(reader: &mut Reader<'_>, field: &str) -> Result<Value, String> {
    reader
        .value()
        .map(Value::MessagePack)
        .map_err(|error| format!("Reading '{field}' failed: {}.", error.describe()))
}

/// Checks the headers map (string keys and values, none empty) and drops it: no header has a
/// meaning (HubProtocol.md, "Message Headers").
fn skip_headers(reader: &mut Reader<'_>) -> Result<(), String> {
    let count = reader.map_len().map_err(|error| {
        format!(
            "Reading map length for 'headers' failed: {}.",
            error.describe()
        )
    })?;
    for index in 0..count {
        for (part, what) in [("Key", "key in header"), ("Value", "value in header")] {
            let field = format!("headers[{index}].{part}");
            required(reader, &field, what)?;
        }
    }
    Ok(())
}

fn arguments(reader: &mut Reader<'_>) -> Result<Vec<Value>, String> {
    let count = reader.array_len().map_err(|error| {
        format!(
            "Reading array length for 'arguments' failed: {}.",
            error.describe()
        )
    })?;
    (0..count).map(|_| value(reader, "argument")).collect()
}

fn stream_ids(reader: &mut Reader<'_>) -> Result<Vec<String>, String> {
    let count = reader.array_len().map_err(|error| {
        format!(
            "Reading array length for 'streamIds' failed: {}.",
            error.describe()
        )
    })?;
    (0..count)
        .map(|_| required(reader, "streamIds", "value in streamIds received"))
        .collect()
}

fn int32(reader: &mut Reader<'_>, field: &str) -> Result<i128, String> {
    let value = reader
        .int()
        .map_err(|error| failed(field, "Int32", error))?;
    if i32::try_from(value).is_err() {
        return Err(format!("Reading '{field}' as Int32 failed: out of range."));
    }
    Ok(value)
}

fn sequence_id(reader: &mut Reader<'_>) -> Result<u64, String> {
    let value = reader
        .int()
        .map_err(|error| failed("sequenceId", "Int64", error))?;
    u64::try_from(value).map_err(|_| "Reading 'sequenceId' failed: it is negative.".into())
}

/// Reads one message body: `Ok(None)` for a message type this server does not know.
fn read_message(body: &[u8]) -> Result<Option<Incoming>, String> {
    let mut reader = Reader::new(body);
    let count = reader
        .array_len()
        .map_err(|error| format!("Reading the message array failed: {}.", error.describe()))?;
    if count == 0 {
        return Err("The message array is empty; it must start with the message type.".into());
    }
    let kind = int32(&mut reader, "messageType")?;
    let needs = |least: usize, name: &str| {
        if count < least {
            Err(format!(
                "{name} message has {count} element(s); it needs at least {least}."
            ))
        } else {
            Ok(())
        }
    };
    let reader = &mut reader;
    let message = match u8::try_from(kind) {
        Ok(message_type::INVOCATION) => {
            needs(5, "Invocation")?;
            skip_headers(reader)?;
            // An empty id is no id: the reference normalizes it to a non-blocking invocation.
            let invocation_id = string(reader, "invocationId")?.filter(|id| !id.is_empty());
            let target = required(reader, "target", "target for Invocation message")?;
            let arguments = arguments(reader)?;
            // Clients before upload streaming send 5 elements.
            let stream_ids = if count > 5 {
                stream_ids(reader)?
            } else {
                Vec::new()
            };
            HubMessage::Invocation(Invocation {
                invocation_id,
                target,
                arguments,
                stream_ids,
            })
        }
        Ok(message_type::STREAM_INVOCATION) => {
            needs(5, "StreamInvocation")?;
            skip_headers(reader)?;
            let what = "invocation ID for StreamInvocation message";
            let invocation_id = required(reader, "invocationId", what)?;
            let target = required(reader, "target", "target for StreamInvocation message")?;
            let arguments = arguments(reader)?;
            let stream_ids = if count > 5 {
                stream_ids(reader)?
            } else {
                Vec::new()
            };
            HubMessage::StreamInvocation(Invocation {
                invocation_id: Some(invocation_id),
                target,
                arguments,
                stream_ids,
            })
        }
        Ok(message_type::STREAM_ITEM) => {
            needs(4, "StreamItem")?;
            skip_headers(reader)?;
            let what = "invocation ID for StreamItem message";
            let invocation_id = required(reader, "invocationId", what)?;
            let item = value(reader, "item")?;
            HubMessage::StreamItem(StreamItem {
                invocation_id,
                item,
            })
        }
        Ok(message_type::COMPLETION) => {
            needs(4, "Completion")?;
            skip_headers(reader)?;
            let what = "invocation ID for Completion message";
            let invocation_id = required(reader, "invocationId", what)?;
            let outcome = match int32(reader, "resultKind")? {
                ERROR_RESULT => {
                    needs(5, "Completion")?;
                    // A nil error is no error, as the reference reads it.
                    match string(reader, "error")? {
                        Some(error) => Outcome::Error(error),
                        None => Outcome::Void,
                    }
                }
                VOID_RESULT => Outcome::Void,
                NON_VOID_RESULT => {
                    needs(5, "Completion")?;
                    Outcome::Result(value(reader, "result")?)
                }
                _ => return Err("Invalid invocation result kind.".into()),
            };
            HubMessage::Completion(Completion {
                invocation_id,
                outcome,
            })
        }
        Ok(message_type::CANCEL_INVOCATION) => {
            needs(3, "CancelInvocation")?;
            skip_headers(reader)?;
            let what = "invocation ID for CancelInvocation message";
            HubMessage::CancelInvocation {
                invocation_id: required(reader, "invocationId", what)?,
            }
        }
        Ok(message_type::PING) => HubMessage::Ping,
        Ok(message_type::CLOSE) => {
            needs(2, "Close")?;
            let error = string(reader, "error")?;
            // Clients before automatic reconnect send 2 elements.
            let allow_reconnect = if count > 2 {
                reader
                    .bool()
                    .map_err(|error| failed("allowReconnect", "Boolean", error))?
            } else {
                false
            };
            HubMessage::Close(Close {
                error,
                allow_reconnect,
            })
        }
        Ok(message_type::ACK) => {
            needs(2, "Ack")?;
            HubMessage::Ack {
                sequence_id: sequence_id(reader)?,
            }
        }
        Ok(message_type::SEQUENCE) => {
            needs(2, "Sequence")?;
            HubMessage::Sequence {
                sequence_id: sequence_id(reader)?,
            }
        }
        _ => return Ok(None),
    };
    Ok(Some(message))
}

/// Appends `message` with its length prefix (see [`super::Protocol::write`]).
///
/// The body is written in place after a one-byte prefix, the size every message under 128
/// bytes needs; a longer body is moved up once to make room for a longer prefix.
pub(super) fn write(message: &Outgoing, out: &mut Vec<u8>) -> Result<(), EncodeError> {
    let start = out.len();
    out.push(0);
    let body = write_body(message, out).and_then(|()| {
        u32::try_from(out.len() - start - 1)
            .ok()
            .filter(|length| *length <= MAX_LENGTH)
            .ok_or_else(|| EncodeError("the message is over 2 GB, the protocol's most".into()))
    });
    let length = match body {
        Ok(length) => length,
        Err(error) => {
            out.truncate(start);
            return Err(error);
        }
    };
    let mut prefix = [0; 5];
    let size = write_length(length, &mut prefix);
    out[start] = prefix[0];
    if size > 1 {
        out.splice(start + 1..start + 1, prefix[1..size].iter().copied());
    }
    Ok(())
}

fn encode_error(error: impl std::fmt::Display) -> EncodeError {
    EncodeError(error.to_string())
}

fn array(out: &mut Vec<u8>, length: usize) -> Result<(), EncodeError> {
    let length = u32::try_from(length).map_err(encode_error)?;
    rmp::encode::write_array_len(out, length).map_err(encode_error)?;
    Ok(())
}

fn text(out: &mut Vec<u8>, text: &str) -> Result<(), EncodeError> {
    rmp::encode::write_str(out, text).map_err(encode_error)
}

fn uint(out: &mut Vec<u8>, value: u64) -> Result<(), EncodeError> {
    rmp::encode::write_uint(out, value).map_err(encode_error)?;
    Ok(())
}

/// An empty headers map: this server sends no headers.
fn no_headers(out: &mut Vec<u8>) {
    out.push(0x80);
}

fn nil(out: &mut Vec<u8>) {
    out.push(0xc0);
}

fn payload<V: Serialize>(out: &mut Vec<u8>, value: &V) -> Result<(), EncodeError> {
    let mut serializer = rmp_serde::Serializer::new(&mut *out).with_struct_map();
    value.serialize(&mut serializer).map_err(encode_error)
}

/// Writes the message's array, as the reference's `WriteMessageCore` does.
fn write_body(message: &Outgoing, out: &mut Vec<u8>) -> Result<(), EncodeError> {
    match message {
        HubMessage::Invocation(invocation) => {
            write_invocation(message_type::INVOCATION, invocation, out)
        }
        HubMessage::StreamInvocation(invocation) => {
            write_invocation(message_type::STREAM_INVOCATION, invocation, out)
        }
        HubMessage::StreamItem(item) => {
            array(out, 4)?;
            uint(out, u64::from(message_type::STREAM_ITEM))?;
            no_headers(out);
            text(out, &item.invocation_id)?;
            payload(out, &item.item)
        }
        HubMessage::Completion(completion) => {
            let kind = match completion.outcome {
                Outcome::Error(_) => ERROR_RESULT,
                Outcome::Void => VOID_RESULT,
                Outcome::Result(_) => NON_VOID_RESULT,
            };
            array(out, if kind == VOID_RESULT { 4 } else { 5 })?;
            uint(out, u64::from(message_type::COMPLETION))?;
            no_headers(out);
            text(out, &completion.invocation_id)?;
            uint(out, kind as u64)?;
            match &completion.outcome {
                Outcome::Error(error) => text(out, error),
                Outcome::Void => Ok(()),
                Outcome::Result(result) => payload(out, result),
            }
        }
        HubMessage::CancelInvocation { invocation_id } => {
            array(out, 3)?;
            uint(out, u64::from(message_type::CANCEL_INVOCATION))?;
            no_headers(out);
            text(out, invocation_id)
        }
        HubMessage::Ping => {
            array(out, 1)?;
            uint(out, u64::from(message_type::PING))
        }
        HubMessage::Close(close) => {
            array(out, 3)?;
            uint(out, u64::from(message_type::CLOSE))?;
            match close.error.as_deref().filter(|error| !error.is_empty()) {
                Some(error) => text(out, error)?,
                None => nil(out),
            }
            rmp::encode::write_bool(out, close.allow_reconnect).map_err(encode_error)
        }
        HubMessage::Ack { sequence_id } => {
            array(out, 2)?;
            uint(out, u64::from(message_type::ACK))?;
            uint(out, *sequence_id)
        }
        HubMessage::Sequence { sequence_id } => {
            array(out, 2)?;
            uint(out, u64::from(message_type::SEQUENCE))?;
            uint(out, *sequence_id)
        }
    }
}

fn write_invocation<V: Serialize>(
    kind: u8,
    invocation: &Invocation<V>,
    out: &mut Vec<u8>,
) -> Result<(), EncodeError> {
    array(out, 6)?;
    uint(out, u64::from(kind))?;
    no_headers(out);
    match invocation
        .invocation_id
        .as_deref()
        .filter(|id| !id.is_empty())
    {
        Some(id) => text(out, id)?,
        None => nil(out),
    }
    text(out, &invocation.target)?;
    array(out, invocation.arguments.len())?;
    for argument in &invocation.arguments {
        payload(out, argument)?;
    }
    array(out, invocation.stream_ids.len())?;
    for id in &invocation.stream_ids {
        text(out, id)?;
    }
    Ok(())
}
