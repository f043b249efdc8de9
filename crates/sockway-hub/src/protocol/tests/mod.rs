//! Tests of the hub protocol codecs: fixtures from HubProtocol.md, round trips of every
//! message in both protocols, and properties over arbitrary bytes.

mod bind;
mod handshake;
mod json;
mod msgpack;
mod peers;
mod props;
mod roundtrip;

use bytes::BytesMut;

use super::{Incoming, Protocol, ProtocolError};

/// A limit no test record reaches.
const NO_LIMIT: usize = 1 << 20;

/// Every message in `bytes`, parsed one at a time; the buffer must end empty.
fn parse_all(protocol: Protocol, bytes: &[u8]) -> Result<Vec<Incoming>, ProtocolError> {
    let mut buffer = BytesMut::from(bytes);
    let mut messages = Vec::new();
    while let Some(message) = protocol.parse(&mut buffer, NO_LIMIT)? {
        messages.push(message);
    }
    assert!(buffer.is_empty(), "left over: {:?}", &buffer[..]);
    Ok(messages)
}

/// The one message in `bytes`.
fn parse_one(protocol: Protocol, bytes: &[u8]) -> Result<Incoming, ProtocolError> {
    let mut messages = parse_all(protocol, bytes)?;
    assert_eq!(messages.len(), 1, "{messages:?}");
    Ok(messages.remove(0))
}

/// The reason a record was refused.
fn invalid(protocol: Protocol, bytes: &[u8]) -> String {
    match parse_all(protocol, bytes) {
        Err(ProtocolError::Invalid(reason)) => reason,
        other => panic!("expected Invalid, got {other:?}"),
    }
}
