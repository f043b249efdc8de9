//! Every message written by one protocol reads back the same, whole, several to a buffer, and
//! split at every byte.

use bytes::BytesMut;
use serde::Serialize;
use serde_json::json;

use super::NO_LIMIT;
use crate::protocol::{
    Close, Completion, HubMessage, Incoming, Invocation, Outcome, Outgoing, Payload, Protocol,
    StreamItem,
};

const BOTH: [Protocol; 2] = [Protocol::Json, Protocol::MessagePack];

#[derive(Serialize)]
struct Point {
    x: i32,
    label: String,
    tags: Vec<String>,
    inner: Option<Box<Point>>,
}

fn point() -> Payload {
    Payload::new(Point {
        x: -7,
        label: "é ✓ \"quoted\"".into(),
        tags: vec!["a".into(), String::new()],
        inner: Some(Box::new(Point {
            x: i32::MAX,
            label: "inner".into(),
            tags: vec![],
            inner: None,
        })),
    })
}

/// One of every message, with ids, arguments and errors of several shapes.
pub(super) fn samples() -> Vec<Outgoing> {
    let invocation = |id: Option<&str>, stream_ids: Vec<String>| Invocation {
        invocation_id: id.map(Into::into),
        target: "Method".into(),
        arguments: vec![
            Payload::new(42),
            Payload::new("text"),
            point(),
            Payload::new(()),
            Payload::new(true),
            Payload::new(1.5),
            Payload::new(u64::MAX),
            Payload::new(i64::MIN),
            Payload::new(vec![1, 2, 3]),
        ],
        stream_ids,
    };
    let completion = |outcome| {
        HubMessage::Completion(Completion {
            invocation_id: "c1".into(),
            outcome,
        })
    };
    vec![
        HubMessage::Invocation(invocation(Some("1"), vec![])),
        HubMessage::Invocation(invocation(None, vec!["s1".into(), "s2".into()])),
        HubMessage::Invocation(Invocation {
            invocation_id: None,
            target: "NoArguments".into(),
            arguments: vec![],
            stream_ids: vec![],
        }),
        HubMessage::StreamInvocation(invocation(Some("2"), vec!["s3".into()])),
        HubMessage::StreamItem(StreamItem {
            invocation_id: "2".into(),
            item: point(),
        }),
        HubMessage::StreamItem(StreamItem {
            invocation_id: "2".into(),
            item: Payload::new(()),
        }),
        completion(Outcome::Void),
        completion(Outcome::Result(Payload::new(
            json!({"sum": 6, "list": [1, "x"]}),
        ))),
        completion(Outcome::Result(Payload::new(()))),
        completion(Outcome::Error("It didn't work!".into())),
        HubMessage::CancelInvocation {
            invocation_id: "2".into(),
        },
        HubMessage::Ping,
        HubMessage::Close(Close::default()),
        HubMessage::Close(Close {
            error: Some("Server is shutting down.".into()),
            allow_reconnect: true,
        }),
        HubMessage::Close(Close {
            error: None,
            allow_reconnect: true,
        }),
        HubMessage::Ack { sequence_id: 0 },
        HubMessage::Ack {
            sequence_id: 1 << 40,
        },
        HubMessage::Sequence { sequence_id: 1 },
    ]
}

/// A message with its values as JSON values, so written and read messages compare.
type Plain = HubMessage<serde_json::Value>;

fn plain_out(message: &Outgoing) -> Plain {
    message
        .clone()
        .map_values(|payload| serde_json::to_value(payload).unwrap())
}

fn plain_in(message: Incoming) -> Plain {
    message.map_values(|value| value.bind::<serde_json::Value>().unwrap())
}

fn written(protocol: Protocol, messages: &[Outgoing]) -> Vec<u8> {
    let mut out = Vec::new();
    for message in messages {
        protocol.write(message, &mut out).unwrap();
    }
    out
}

/// Reads every whole message in `buffer`.
fn drain(protocol: Protocol, buffer: &mut BytesMut, into: &mut Vec<Plain>) {
    while let Some(message) = protocol.parse(buffer, NO_LIMIT).unwrap() {
        into.push(plain_in(message));
    }
}

#[test]
fn every_message_reads_back_alone() {
    for protocol in BOTH {
        for message in samples() {
            let bytes = written(protocol, std::slice::from_ref(&message));
            let mut buffer = BytesMut::from(&bytes[..]);
            let read = protocol.parse(&mut buffer, NO_LIMIT).unwrap().unwrap();
            assert!(buffer.is_empty(), "{protocol:?} {message:?}");
            assert_eq!(plain_in(read), plain_out(&message), "{protocol:?}");
        }
    }
}

#[test]
fn several_messages_in_one_buffer_read_back_in_order() {
    for protocol in BOTH {
        let messages = samples();
        let mut buffer = BytesMut::from(&written(protocol, &messages)[..]);
        let mut read = Vec::new();
        drain(protocol, &mut buffer, &mut read);
        assert!(buffer.is_empty());
        let expected: Vec<Plain> = messages.iter().map(plain_out).collect();
        assert_eq!(read, expected, "{protocol:?}");
    }
}

#[test]
fn messages_split_at_every_byte_read_back_the_same() {
    for protocol in BOTH {
        let messages = samples();
        let bytes = written(protocol, &messages);
        let expected: Vec<Plain> = messages.iter().map(plain_out).collect();
        for split in 0..=bytes.len() {
            let mut buffer = BytesMut::from(&bytes[..split]);
            let mut read = Vec::new();
            drain(protocol, &mut buffer, &mut read);
            buffer.extend_from_slice(&bytes[split..]);
            drain(protocol, &mut buffer, &mut read);
            assert!(buffer.is_empty(), "{protocol:?} split at {split}");
            assert_eq!(read, expected, "{protocol:?} split at {split}");
        }
    }
}

#[test]
fn messages_fed_one_byte_at_a_time_read_back_the_same() {
    for protocol in BOTH {
        let messages = samples();
        let bytes = written(protocol, &messages);
        let mut buffer = BytesMut::new();
        let mut read = Vec::new();
        for byte in bytes {
            buffer.extend_from_slice(&[byte]);
            drain(protocol, &mut buffer, &mut read);
        }
        let expected: Vec<Plain> = messages.iter().map(plain_out).collect();
        assert_eq!(read, expected, "{protocol:?}");
    }
}

#[test]
fn write_appends_after_what_the_output_holds() {
    for protocol in BOTH {
        let mut out = b"kept".to_vec();
        protocol.write(&HubMessage::Ping, &mut out).unwrap();
        assert_eq!(&out[..4], b"kept");
        let mut buffer = BytesMut::from(&out[4..]);
        assert_eq!(
            protocol.parse(&mut buffer, NO_LIMIT),
            Ok(Some(HubMessage::Ping))
        );
    }
}
