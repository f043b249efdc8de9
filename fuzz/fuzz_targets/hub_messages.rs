#![no_main]
//! Arbitrary bytes read as SignalR hub messages (JSON and MessagePack hub protocols) and as a
//! hub handshake request, the way a connection reads them: the same results whether the bytes
//! arrive at once or in pieces; every message taken consumes bytes; a refusal is one of the
//! protocol's errors. Every message read is written again by the same protocol and read back
//! unchanged, and its values are bound to a few Rust types (which may fail, never panic).
//! The same bytes as text are checked as a connection token (never valid: no key signed
//! them) and as the query of a request carrying an `access_token`.
use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use sockway_hub::protocol::{
    Completion, HandshakeRequest, HubMessage, Incoming, Outcome, Payload, Protocol, ProtocolError,
    Value,
};

/// The key connection tokens are checked with; no input can have been signed by it.
static TOKEN_KEY: std::sync::LazyLock<sockway_hub::token::TokenKey> =
    std::sync::LazyLock::new(sockway_hub::token::TokenKey::random);

/// What one read of the buffer came to. Two readings are compared by their `Debug` text,
/// which is where the refusal's error is read.
#[derive(Debug)]
enum Step {
    Message(Incoming),
    Refused(#[allow(dead_code)] ProtocolError),
}

/// Reads everything `pieces` deliver, appending each piece to one buffer and taking every
/// whole message before the next piece arrives, until the first refusal: a connection ends
/// there (the hub closes it with the error).
fn read_all(protocol: Protocol, pieces: &[&[u8]], limit: usize) -> Vec<Step> {
    let mut buffer = BytesMut::new();
    let mut steps = Vec::new();
    for piece in pieces {
        buffer.extend_from_slice(piece);
        loop {
            let before = buffer.len();
            match protocol.parse(&mut buffer, limit) {
                Ok(Some(message)) => {
                    assert!(buffer.len() < before, "a message took no bytes");
                    steps.push(Step::Message(message));
                }
                Ok(None) => break,
                // How much of an unterminated record was seen when it was refused depends on
                // how the bytes arrived; that it was refused does not.
                Err(ProtocolError::TooLarge { limit, .. }) => {
                    steps.push(Step::Refused(ProtocolError::TooLarge { size: 0, limit }));
                    return steps;
                }
                Err(error) => {
                    steps.push(Step::Refused(error));
                    return steps;
                }
            }
        }
    }
    steps
}

/// A value read, as one to send again.
fn payload(value: Value) -> Payload {
    match value {
        Value::Json(value) => Payload::new(value),
        Value::MessagePack(value) => Payload::new(value),
    }
}

/// The values a message carries.
fn values(message: &Incoming) -> Vec<Value> {
    match message {
        HubMessage::Invocation(call) | HubMessage::StreamInvocation(call) => call.arguments.clone(),
        HubMessage::StreamItem(item) => vec![item.item.clone()],
        HubMessage::Completion(Completion {
            outcome: Outcome::Result(value),
            ..
        }) => {
            vec![value.clone()]
        }
        _ => Vec::new(),
    }
}

/// A hub method's argument of the usual shapes: a struct with optional, nested and enum
/// fields (serde's derive, as applications write them).
#[derive(Debug, serde::Deserialize)]
#[allow(dead_code)]
struct Note {
    user: String,
    text: Option<String>,
    tags: Vec<String>,
    at: u64,
    score: f32,
    kind: Kind,
    extra: std::collections::BTreeMap<String, Option<Vec<u8>>>,
}

/// An enum of every variant shape.
#[derive(Debug, serde::Deserialize)]
#[allow(dead_code)]
enum Kind {
    Plain,
    Count(i32),
    Pair(u8, bool),
    Place { x: i16, y: i16 },
}

fn bind_each(value: Value) {
    let _ = value.clone().bind::<String>();
    let _ = value.clone().bind::<i64>();
    let _ = value.clone().bind::<u8>();
    let _ = value.clone().bind::<f64>();
    let _ = value.clone().bind::<bool>();
    let _ = value.clone().bind::<char>();
    let _ = value.clone().bind::<Vec<u8>>();
    let _ = value.clone().bind::<Vec<String>>();
    let _ = value.clone().bind::<Option<i32>>();
    let _ = value
        .clone()
        .bind::<std::collections::HashMap<String, i64>>();
    let _ = value.clone().bind::<(String, Vec<f32>)>();
    let _ = value.clone().bind::<Kind>();
    let _ = value.clone().bind::<Vec<Note>>();
    let _ = value.bind::<Note>();
}

/// Whether a value reads back equal to itself: not so for NaN (unequal to itself) nor for
/// MessagePack text that is not UTF-8 (rmpv writes it as binary).
fn comparable(value: &Value) -> bool {
    fn msgpack(value: &rmpv::Value) -> bool {
        match value {
            rmpv::Value::F32(f) => !f.is_nan(),
            rmpv::Value::F64(f) => !f.is_nan(),
            rmpv::Value::String(s) => s.is_str(),
            rmpv::Value::Array(items) => items.iter().all(msgpack),
            rmpv::Value::Map(entries) => entries.iter().all(|(k, v)| msgpack(k) && msgpack(v)),
            _ => true,
        }
    }
    match value {
        Value::Json(_) => true,
        Value::MessagePack(value) => msgpack(value),
    }
}

/// Writes `message` with `protocol` and reads it back: the same message, values included.
fn round_trip(protocol: Protocol, message: &Incoming, limit: usize) {
    if !values(message).iter().all(comparable) {
        return;
    }
    let mut wire = Vec::new();
    // A value the protocol cannot encode is refused by the writer; nothing to check then.
    if protocol
        .write(&message.clone().map_values(payload), &mut wire)
        .is_err()
    {
        return;
    }
    let mut buffer = BytesMut::from(&wire[..]);
    match protocol.parse(&mut buffer, limit.max(wire.len())) {
        Ok(Some(again)) => {
            assert_eq!(&again, message, "{protocol:?} wrote {wire:?}");
            assert!(buffer.is_empty(), "one message, one record");
        }
        other => panic!("{protocol:?} cannot read what it wrote ({wire:?}): {other:?}"),
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&control, input)) = data.split_first() else {
        return;
    };
    let protocol = if control & 1 == 0 {
        Protocol::Json
    } else {
        Protocol::MessagePack
    };
    let limit = [32 * 1024, 64, 1 << 20][usize::from(control >> 1) % 3];
    // Pieces of 1 to 16 bytes, the size taken from the control byte's high bits.
    let step = usize::from(control >> 4) + 1;
    let pieces: Vec<&[u8]> = input.chunks(step).collect();

    let whole = read_all(protocol, &[input], limit);
    let sliced = read_all(protocol, &pieces, limit);
    // Compared as text: a NaN read from MessagePack is unequal to itself.
    assert_eq!(
        format!("{whole:?}"),
        format!("{sliced:?}"),
        "the slicing changed what was read"
    );

    for step in &whole {
        if let Step::Message(message) = step {
            round_trip(protocol, message, limit);
            for value in values(message) {
                bind_each(value);
            }
        }
    }

    let mut buffer = BytesMut::from(input);
    if let Ok(Some(request)) = HandshakeRequest::parse(&mut buffer, limit) {
        let _ = request.select(&[sockway_hub::protocol::TransferFormat::Text]);
    }

    // The connection token and the bearer token a client presents.
    if let Ok(text) = std::str::from_utf8(input) {
        assert!(
            sockway_hub::token::verify(&TOKEN_KEY, text).is_none(),
            "forged: {text:?}"
        );
        if let Ok(uri) = http::Uri::try_from(format!("/hub?{text}")) {
            let _ = sockway_hub::auth::bearer_token(&http::HeaderMap::new(), &uri);
        }
    }
});
