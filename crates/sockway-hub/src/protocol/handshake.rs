//! The handshake (HubProtocol.md, "Overview"): the client's first message names the protocol
//! and its version, the server answers `{}` or `{"error":"..."}`; both are JSON objects ended
//! by `0x1E`, whatever protocol follows.
//!
//! Both sides are here: the server reads requests and writes responses, a client (our tests)
//! writes requests and reads responses. A reader takes only the handshake off the buffer: the
//! JavaScript client may send its first messages in the same frame as the request, and the
//! server its first messages with the response.

use bytes::{Buf, BytesMut};
use serde_json::{Map, Value};

use super::json::find_record;
use super::{Protocol, ProtocolError, TransferFormat, RECORD_SEPARATOR};

/// A client's handshake request: `{"protocol":"json","version":1}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandshakeRequest {
    /// The protocol's name (`json`, `messagepack`).
    pub protocol: String,
    /// The protocol version the client speaks (1, or 2 with stateful reconnect).
    pub version: i64,
}

/// The server's handshake response: `{}` when it accepts, `{"error":"..."}` when it does not.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HandshakeResponse {
    /// Why the handshake failed; `None` when it succeeded.
    pub error: Option<String>,
}

impl HandshakeRequest {
    /// A request for `protocol` at its newest version.
    pub fn new(protocol: Protocol) -> Self {
        HandshakeRequest {
            protocol: protocol.name().to_owned(),
            version: i64::from(protocol.version()),
        }
    }

    /// Takes the handshake request off the front of `buffer`, leaving whatever follows it:
    /// `Ok(None)` while it is incomplete and within `max_size` bytes (its `0x1E` included, as
    /// ASP.NET Core bounds the handshake by `MaximumReceiveMessageSize`).
    ///
    /// Errors name what was wrong, in the reference's words (`HandshakeProtocol`):
    /// "Missing required property 'protocol'." and the like.
    pub fn parse(buffer: &mut BytesMut, max_size: usize) -> Result<Option<Self>, ProtocolError> {
        let Some(end) = find_record(buffer, max_size)? else {
            return Ok(None);
        };
        let request = read_request(&buffer[..end]);
        buffer.advance(end + 1);
        request.map(Some).map_err(ProtocolError::Invalid)
    }

    /// Appends the request and its `0x1E` to `out` (the client side).
    pub fn write(&self, out: &mut Vec<u8>) {
        let request = serde_json::json!({ "protocol": self.protocol, "version": self.version });
        push_record(&request, out);
    }

    /// The protocol the server speaks for this request over a transport that carries
    /// `transport_formats`, or the error to answer with, in ASP.NET Core's words
    /// (`HubConnectionContext.HandshakeAsync`).
    pub fn select(&self, transport_formats: &[TransferFormat]) -> Result<Protocol, String> {
        let Some(protocol) = Protocol::from_name(&self.protocol) else {
            return Err(format!(
                "The protocol '{}' is not supported.",
                self.protocol
            ));
        };
        if !protocol.is_version_supported(self.version) {
            return Err(format!(
                "The server does not support version {} of the '{}' protocol.",
                self.version, self.protocol
            ));
        }
        let format = protocol.transfer_format();
        if !transport_formats.contains(&format) {
            return Err(format!(
                "Cannot use the '{}' protocol on the current transport. The transport does not \
                 support '{format:?}' transfer format.",
                protocol.name()
            ));
        }
        Ok(protocol)
    }
}

impl HandshakeResponse {
    /// The response that accepts the handshake.
    pub fn success() -> Self {
        HandshakeResponse { error: None }
    }

    /// A response that refuses the handshake with `error`.
    pub fn failure(error: impl Into<String>) -> Self {
        HandshakeResponse {
            error: Some(error.into()),
        }
    }

    /// Appends the response and its `0x1E` to `out`: `{}` or `{"error":"..."}` (an empty
    /// error is left out, as the reference does).
    pub fn write(&self, out: &mut Vec<u8>) {
        match self.error.as_deref().filter(|error| !error.is_empty()) {
            None => {
                out.extend_from_slice(b"{}");
                out.push(RECORD_SEPARATOR);
            }
            Some(error) => push_record(&serde_json::json!({ "error": error }), out),
        }
    }

    /// Takes the handshake response off the front of `buffer`, leaving the messages that may
    /// follow it (the client side); `Ok(None)` while it is incomplete.
    ///
    /// A record with a `type` is a hub message, not a response: "Expected a handshake response
    /// from the server.", as the reference clients say.
    pub fn parse(buffer: &mut BytesMut, max_size: usize) -> Result<Option<Self>, ProtocolError> {
        let Some(end) = find_record(buffer, max_size)? else {
            return Ok(None);
        };
        let response = read_response(&buffer[..end]);
        buffer.advance(end + 1);
        response.map(Some).map_err(ProtocolError::Invalid)
    }
}

fn push_record(value: &Value, out: &mut Vec<u8>) {
    // Serializing a `Value` into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, value);
    out.push(RECORD_SEPARATOR);
}

fn read_object(record: &[u8], what: &str) -> Result<Map<String, Value>, String> {
    match serde_json::from_slice(record) {
        Ok(Value::Object(object)) => Ok(object),
        Ok(_) => Err(format!("The {what} is not a JSON object.")),
        Err(error) => Err(format!("Error reading the {what} JSON: {error}.")),
    }
}

fn read_request(record: &[u8]) -> Result<HandshakeRequest, String> {
    let object = read_object(record, "handshake request")?;
    let protocol = match object.get("protocol") {
        Some(Value::String(protocol)) => protocol.clone(),
        None | Some(Value::Null) => return Err("Missing required property 'protocol'.".into()),
        Some(_) => return Err("Expected 'protocol' to be of type String.".into()),
    };
    let version = match object.get("version") {
        Some(Value::Number(version)) => version
            .as_i64()
            .and_then(|version| i32::try_from(version).ok())
            .ok_or("Expected 'version' to be a 32-bit integer.")?,
        None | Some(Value::Null) => return Err("Missing required property 'version'.".into()),
        Some(_) => return Err("Expected 'version' to be of type Number.".into()),
    };
    Ok(HandshakeRequest {
        protocol,
        version: i64::from(version),
    })
}

fn read_response(record: &[u8]) -> Result<HandshakeResponse, String> {
    let object = read_object(record, "handshake response")?;
    if object.contains_key("type") {
        return Err("Expected a handshake response from the server.".into());
    }
    let error = match object.get("error") {
        None | Some(Value::Null) => None,
        Some(Value::String(error)) => Some(error.clone()),
        Some(_) => return Err("Expected 'error' to be of type String.".into()),
    };
    Ok(HandshakeResponse { error })
}
