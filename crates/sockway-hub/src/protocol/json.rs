//! The JSON hub protocol (HubProtocol.md, "JSON Encoding"): one JSON object per message, each
//! ended by the record separator `0x1E`; several records may share a frame and one record may
//! span frames.
//!
//! Reading follows ASP.NET Core's `JsonHubProtocol`: properties in any order, unknown ones and
//! `headers` ignored, the same checks and the same error texts. Writing puts the properties in
//! the order the reference writes them and serializes payloads with `serde_json` straight into
//! the output.

use std::io::Write;

use bytes::{Buf, BytesMut};
use serde::Serialize;

use super::json_fields::Fields;
use super::message::{
    message_type, Close, Completion, HubMessage, Incoming, Invocation, Outcome, Outgoing,
    StreamItem, Value,
};
use super::{EncodeError, ProtocolError, RECORD_SEPARATOR};

/// Takes the first whole record off `buffer` and reads it (see [`super::Protocol::parse`]).
pub(super) fn parse(
    buffer: &mut BytesMut,
    max_message_size: usize,
) -> Result<Option<Incoming>, ProtocolError> {
    loop {
        let Some(end) = find_record(buffer, max_message_size)? else {
            return Ok(None);
        };
        let message = read_record(&buffer[..end]);
        buffer.advance(end + 1);
        if let Some(message) = message.map_err(ProtocolError::Invalid)? {
            return Ok(Some(message));
        }
    }
}

/// Where the first record of `buffer` ends (the index of its separator), if it has arrived;
/// the separator must lie within the first `max_message_size` bytes.
pub(super) fn find_record(
    buffer: &[u8],
    max_message_size: usize,
) -> Result<Option<usize>, ProtocolError> {
    let window = &buffer[..buffer.len().min(max_message_size)];
    match memchr::memchr(RECORD_SEPARATOR, window) {
        Some(end) => Ok(Some(end)),
        None if buffer.len() > max_message_size => Err(ProtocolError::TooLarge {
            size: buffer.len(),
            limit: max_message_size,
        }),
        None => Ok(None),
    }
}

/// Reads one record (without its separator): `Ok(None)` for a message type this server does
/// not know, which the reference ignores.
fn read_record(record: &[u8]) -> Result<Option<Incoming>, String> {
    let fields: Fields =
        serde_json::from_slice(record).map_err(|error| format!("Error reading JSON: {error}."))?;
    if let Some(problem) = fields.problem {
        return Err(problem);
    }
    build(fields)
}

fn missing(name: &str) -> String {
    format!("Missing required property '{name}'.")
}

/// An invocation id that must be present and not empty (the reference's `IsNullOrEmpty`).
fn required_id(id: Option<String>) -> Result<String, String> {
    id.filter(|id| !id.is_empty())
        .ok_or_else(|| missing("invocationId"))
}

fn values(values: Vec<serde_json::Value>) -> Vec<Value> {
    values.into_iter().map(Value::Json).collect()
}

/// Checks the properties the message's type requires, in the reference's order.
fn build(fields: Fields) -> Result<Option<Incoming>, String> {
    let Some(kind) = fields.kind else {
        return Err(missing("type"));
    };
    let Ok(kind) = u8::try_from(kind) else {
        return Ok(None);
    };
    let message = match kind {
        message_type::INVOCATION => {
            let target = fields.target.filter(|target| !target.is_empty());
            let target = target.ok_or_else(|| missing("target"))?;
            let arguments = fields.arguments.ok_or_else(|| missing("arguments"))?;
            HubMessage::Invocation(Invocation {
                // An empty id is no id: the .NET dispatcher treats both as non-blocking.
                invocation_id: fields.invocation_id.filter(|id| !id.is_empty()),
                target,
                arguments: values(arguments),
                stream_ids: fields.stream_ids.unwrap_or_default(),
            })
        }
        message_type::STREAM_INVOCATION => {
            let Some(target) = fields.target else {
                return Err(missing("target"));
            };
            let invocation_id = required_id(fields.invocation_id)?;
            let arguments = fields.arguments.ok_or_else(|| missing("arguments"))?;
            if target.is_empty() {
                return Err(missing("target"));
            }
            HubMessage::StreamInvocation(Invocation {
                invocation_id: Some(invocation_id),
                target,
                arguments: values(arguments),
                stream_ids: fields.stream_ids.unwrap_or_default(),
            })
        }
        message_type::STREAM_ITEM => {
            let invocation_id = required_id(fields.invocation_id)?;
            let item = fields.item.ok_or_else(|| missing("item"))?;
            HubMessage::StreamItem(StreamItem {
                invocation_id,
                item: Value::Json(item),
            })
        }
        message_type::COMPLETION => {
            let invocation_id = required_id(fields.invocation_id)?;
            let outcome = match (fields.error, fields.result) {
                (Some(_), Some(_)) => {
                    return Err(
                        "The 'error' and 'result' properties are mutually exclusive.".into(),
                    )
                }
                (Some(error), None) => Outcome::Error(error),
                (None, Some(result)) => Outcome::Result(Value::Json(result)),
                (None, None) => Outcome::Void,
            };
            HubMessage::Completion(Completion {
                invocation_id,
                outcome,
            })
        }
        message_type::CANCEL_INVOCATION => HubMessage::CancelInvocation {
            invocation_id: required_id(fields.invocation_id)?,
        },
        message_type::PING => HubMessage::Ping,
        message_type::CLOSE => HubMessage::Close(Close {
            error: fields.error,
            allow_reconnect: fields.allow_reconnect,
        }),
        message_type::ACK => HubMessage::Ack {
            sequence_id: fields.sequence_id.ok_or_else(|| missing("sequenceId"))?,
        },
        message_type::SEQUENCE => HubMessage::Sequence {
            sequence_id: fields.sequence_id.ok_or_else(|| missing("sequenceId"))?,
        },
        _ => return Ok(None),
    };
    Ok(Some(message))
}

/// Appends `message` as one record and its separator (see [`super::Protocol::write`]).
pub(super) fn write(message: &Outgoing, out: &mut Vec<u8>) -> Result<(), EncodeError> {
    let start = out.len();
    match write_object(message, out) {
        Ok(()) => {
            out.push(RECORD_SEPARATOR);
            Ok(())
        }
        Err(error) => {
            out.truncate(start);
            Err(EncodeError(error.to_string()))
        }
    }
}

/// Writes the object, properties in the reference's order: `type`, `invocationId`, then the
/// message's own.
fn write_object(message: &Outgoing, out: &mut Vec<u8>) -> Result<(), serde_json::Error> {
    match message {
        HubMessage::Invocation(invocation) => {
            write_invocation(message_type::INVOCATION, invocation, out)?
        }
        HubMessage::StreamInvocation(invocation) => {
            write_invocation(message_type::STREAM_INVOCATION, invocation, out)?
        }
        HubMessage::StreamItem(item) => {
            start(message_type::STREAM_ITEM, out);
            property_string("invocationId", &item.invocation_id, out)?;
            out.extend_from_slice(b",\"item\":");
            serde_json::to_writer(&mut *out, &item.item)?;
        }
        HubMessage::Completion(completion) => {
            start(message_type::COMPLETION, out);
            property_string("invocationId", &completion.invocation_id, out)?;
            match &completion.outcome {
                Outcome::Void => {}
                Outcome::Result(result) => {
                    out.extend_from_slice(b",\"result\":");
                    serde_json::to_writer(&mut *out, result)?;
                }
                Outcome::Error(error) => property_string("error", error, out)?,
            }
        }
        HubMessage::CancelInvocation { invocation_id } => {
            start(message_type::CANCEL_INVOCATION, out);
            property_string("invocationId", invocation_id, out)?;
        }
        HubMessage::Ping => start(message_type::PING, out),
        HubMessage::Close(close) => {
            start(message_type::CLOSE, out);
            if let Some(error) = &close.error {
                property_string("error", error, out)?;
            }
            if close.allow_reconnect {
                out.extend_from_slice(b",\"allowReconnect\":true");
            }
        }
        HubMessage::Ack { sequence_id } => {
            start(message_type::ACK, out);
            property_number("sequenceId", *sequence_id, out);
        }
        HubMessage::Sequence { sequence_id } => {
            start(message_type::SEQUENCE, out);
            property_number("sequenceId", *sequence_id, out);
        }
    }
    out.push(b'}');
    Ok(())
}

fn write_invocation<V: Serialize>(
    kind: u8,
    invocation: &Invocation<V>,
    out: &mut Vec<u8>,
) -> Result<(), serde_json::Error> {
    start(kind, out);
    if let Some(id) = invocation
        .invocation_id
        .as_deref()
        .filter(|id| !id.is_empty())
    {
        property_string("invocationId", id, out)?;
    }
    property_string("target", &invocation.target, out)?;
    out.extend_from_slice(b",\"arguments\":");
    serde_json::to_writer(&mut *out, &invocation.arguments)?;
    if !invocation.stream_ids.is_empty() {
        out.extend_from_slice(b",\"streamIds\":");
        serde_json::to_writer(&mut *out, &invocation.stream_ids)?;
    }
    Ok(())
}

/// Opens the object with its `type`.
fn start(kind: u8, out: &mut Vec<u8>) {
    out.extend_from_slice(b"{\"type\":");
    push_number(u64::from(kind), out);
}

/// Appends `,"name":"value"` with the value escaped as JSON requires.
fn property_string(name: &str, value: &str, out: &mut Vec<u8>) -> Result<(), serde_json::Error> {
    out.extend_from_slice(b",\"");
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b"\":");
    serde_json::to_writer(&mut *out, value)
}

fn property_number(name: &str, value: u64, out: &mut Vec<u8>) {
    out.extend_from_slice(b",\"");
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b"\":");
    push_number(value, out);
}

fn push_number(value: u64, out: &mut Vec<u8>) {
    // Writing into a Vec cannot fail.
    let _ = write!(out, "{value}");
}
