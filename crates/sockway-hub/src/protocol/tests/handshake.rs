//! The handshake, both sides.

use bytes::BytesMut;

use crate::protocol::{
    HandshakeRequest, HandshakeResponse, HubMessage, Protocol, ProtocolError, TransferFormat,
};

const BOTH_FORMATS: [TransferFormat; 2] = [TransferFormat::Text, TransferFormat::Binary];

fn request(bytes: &[u8]) -> Result<Option<HandshakeRequest>, ProtocolError> {
    HandshakeRequest::parse(&mut BytesMut::from(bytes), 1024)
}

fn refused(bytes: &[u8]) -> String {
    match request(bytes) {
        Err(ProtocolError::Invalid(reason)) => reason,
        other => panic!("expected Invalid, got {other:?}"),
    }
}

#[test]
fn reads_the_javascript_clients_request_and_leaves_what_follows() {
    let mut buffer =
        BytesMut::from(&b"{\"protocol\":\"json\",\"version\":1}\x1e{\"type\":6}\x1e"[..]);
    let parsed = HandshakeRequest::parse(&mut buffer, 1024).unwrap().unwrap();
    assert_eq!(
        parsed,
        HandshakeRequest {
            protocol: "json".into(),
            version: 1
        }
    );
    assert_eq!(parsed.select(&BOTH_FORMATS), Ok(Protocol::Json));
    assert_eq!(
        Protocol::Json.parse(&mut buffer, 1024),
        Ok(Some(HubMessage::Ping))
    );
}

#[test]
fn reads_the_spec_example_and_msgpack_binary_after_it() {
    let mut buffer = BytesMut::from(
        &b"{\n    \"protocol\": \"messagepack\",\n    \"version\": 1\n}\x1e\x02\x91\x06"[..],
    );
    let parsed = HandshakeRequest::parse(&mut buffer, 1024).unwrap().unwrap();
    assert_eq!(parsed.select(&BOTH_FORMATS), Ok(Protocol::MessagePack));
    assert_eq!(&buffer[..], b"\x02\x91\x06");
}

#[test]
fn waits_for_the_whole_request_within_the_limit() {
    let bytes = b"{\"protocol\":\"json\",\"version\":1}\x1e";
    for end in 0..bytes.len() {
        assert_eq!(request(&bytes[..end]), Ok(None));
    }
    let mut buffer = BytesMut::from(&bytes[..]);
    assert_eq!(
        HandshakeRequest::parse(&mut buffer, bytes.len() - 1),
        Err(ProtocolError::TooLarge {
            size: bytes.len(),
            limit: bytes.len() - 1
        })
    );
    let mut endless = BytesMut::from(&[b' '; 40][..]);
    assert!(matches!(
        HandshakeRequest::parse(&mut endless, 32),
        Err(ProtocolError::TooLarge {
            size: 40,
            limit: 32
        })
    ));
}

#[test]
fn refuses_bad_requests_with_the_reason() {
    assert_eq!(
        refused(b"{\"version\":1}\x1e"),
        "Missing required property 'protocol'."
    );
    assert_eq!(
        refused(b"{\"protocol\":\"json\"}\x1e"),
        "Missing required property 'version'."
    );
    assert_eq!(
        refused(b"{\"protocol\":1,\"version\":1}\x1e"),
        "Expected 'protocol' to be of type String."
    );
    assert_eq!(
        refused(b"{\"protocol\":\"json\",\"version\":\"1\"}\x1e"),
        "Expected 'version' to be of type Number."
    );
    assert_eq!(
        refused(b"[]\x1e"),
        "The handshake request is not a JSON object."
    );
    assert!(refused(b"{\x1e").starts_with("Error reading the handshake request JSON"));
}

#[test]
fn selects_the_protocol_or_says_why_not() {
    let ask = |protocol: &str, version| HandshakeRequest {
        protocol: protocol.into(),
        version,
    };
    assert_eq!(ask("json", 2).select(&BOTH_FORMATS), Ok(Protocol::Json));
    assert_eq!(
        ask("foo", 1).select(&BOTH_FORMATS),
        Err("The protocol 'foo' is not supported.".into())
    );
    assert_eq!(
        ask("json", 3).select(&BOTH_FORMATS),
        Err("The server does not support version 3 of the 'json' protocol.".into())
    );
    assert_eq!(
        ask("messagepack", 1).select(&[TransferFormat::Text]),
        Err(
            "Cannot use the 'messagepack' protocol on the current transport. The transport \
             does not support 'Binary' transfer format."
                .into()
        )
    );
}

#[test]
fn writes_responses_as_the_reference_does() {
    let mut out = Vec::new();
    HandshakeResponse::success().write(&mut out);
    assert_eq!(out, b"{}\x1e");
    out.clear();
    HandshakeResponse::failure("The protocol 'x\"y' is not supported.").write(&mut out);
    assert_eq!(
        out,
        b"{\"error\":\"The protocol 'x\\\"y' is not supported.\"}\x1e"
    );
}

#[test]
fn client_side_round_trip() {
    let mut out = Vec::new();
    HandshakeRequest::new(Protocol::MessagePack).write(&mut out);
    assert_eq!(out, b"{\"protocol\":\"messagepack\",\"version\":2}\x1e");
    let mut buffer = BytesMut::from(&out[..]);
    assert_eq!(
        HandshakeRequest::parse(&mut buffer, 1024),
        Ok(Some(HandshakeRequest::new(Protocol::MessagePack)))
    );

    let mut buffer = BytesMut::new();
    HandshakeResponse::failure("no").write(&mut out);
    buffer.extend_from_slice(b"{\"error\":\"no\",\"minorVersion\":1}\x1e{\"type\":6}\x1e");
    assert_eq!(
        HandshakeResponse::parse(&mut buffer, 1024),
        Ok(Some(HandshakeResponse::failure("no")))
    );
    assert_eq!(&buffer[..], b"{\"type\":6}\x1e");
    assert_eq!(
        HandshakeResponse::parse(&mut buffer, 1024),
        Err(ProtocolError::Invalid(
            "Expected a handshake response from the server.".into()
        ))
    );
    let mut buffer = BytesMut::from(&b"{}\x1e"[..]);
    assert_eq!(
        HandshakeResponse::parse(&mut buffer, 1024),
        Ok(Some(HandshakeResponse::success()))
    );
}
