//! The MessagePack protocol: the spec's examples byte for byte, older clients' shorter arrays,
//! the reference's errors, the length prefix and the size limit.

use bytes::BytesMut;
use rmpv::Value as Mp;
use serde::{Deserialize, Serialize};

use super::{invalid, parse_all, parse_one};
use crate::protocol::msgpack::{read_length, write_length};
use crate::protocol::{
    Close, Completion, HubMessage, Invocation, Outcome, Outgoing, Payload, Protocol, ProtocolError,
    StreamItem, Value,
};

const MSGPACK: Protocol = Protocol::MessagePack;

/// `body` framed with its length (every fixture here is under 128 bytes).
fn framed(body: &[u8]) -> Vec<u8> {
    assert!(body.len() < 128);
    let mut bytes = vec![body.len() as u8];
    bytes.extend_from_slice(body);
    bytes
}

fn parse(body: &[u8]) -> HubMessage<Value> {
    parse_one(MSGPACK, &framed(body)).unwrap()
}

fn refused(body: &[u8]) -> String {
    invalid(MSGPACK, &framed(body))
}

fn written(message: &Outgoing) -> Vec<u8> {
    let mut out = Vec::new();
    MSGPACK.write(message, &mut out).unwrap();
    let (length, prefix) = read_length(&out).unwrap().unwrap();
    assert_eq!(prefix + length, out.len());
    out.split_off(prefix)
}

fn int(value: i64) -> Value {
    Value::MessagePack(Mp::from(value))
}

const XYZ: &[u8] = &[0xa3, b'x', b'y', b'z'];
const METHOD: &[u8] = &[0xa6, b'm', b'e', b't', b'h', b'o', b'd'];

fn invocation_body(kind: u8, id: &[u8]) -> Vec<u8> {
    [&[0x96, kind, 0x80][..], id, METHOD, &[0x91, 0x2a, 0x90]].concat()
}

fn invocation(id: Option<&str>) -> Invocation<Value> {
    Invocation {
        invocation_id: id.map(Into::into),
        target: "method".into(),
        arguments: vec![int(42)],
        stream_ids: vec![],
    }
}

#[test]
fn spec_invocation_examples() {
    assert_eq!(
        parse(&invocation_body(1, XYZ)),
        HubMessage::Invocation(invocation(Some("xyz")))
    );
    assert_eq!(
        parse(&invocation_body(1, &[0xc0])),
        HubMessage::Invocation(invocation(None))
    );
    assert_eq!(
        parse(&invocation_body(4, XYZ)),
        HubMessage::StreamInvocation(invocation(Some("xyz")))
    );
    let with_headers = [
        &[
            0x96, 0x01, 0x82, 0xa1, b'x', 0xa1, b'y', 0xa1, b'z', 0xa1, b'z',
        ][..],
        XYZ,
        METHOD,
        &[0x91, 0x2a, 0x90],
    ]
    .concat();
    assert_eq!(
        parse(&with_headers),
        HubMessage::Invocation(invocation(Some("xyz")))
    );
}

#[test]
fn spec_stream_item_completion_cancel_examples() {
    assert_eq!(
        parse(&[&[0x94, 0x02, 0x80][..], XYZ, &[0x2a]].concat()),
        HubMessage::StreamItem(StreamItem {
            invocation_id: "xyz".into(),
            item: int(42),
        })
    );
    let completion = |outcome| {
        HubMessage::Completion(Completion {
            invocation_id: "xyz".into(),
            outcome,
        })
    };
    let error = [&[0x95, 0x03, 0x80][..], XYZ, &[0x01, 0xa5], b"Error"].concat();
    assert_eq!(parse(&error), completion(Outcome::Error("Error".into())));
    let void = [&[0x94, 0x03, 0x80][..], XYZ, &[0x02]].concat();
    assert_eq!(parse(&void), completion(Outcome::Void));
    let result = [&[0x95, 0x03, 0x80][..], XYZ, &[0x03, 0x2a]].concat();
    assert_eq!(parse(&result), completion(Outcome::Result(int(42))));
    assert_eq!(
        parse(&[&[0x93, 0x05, 0x80][..], XYZ].concat()),
        HubMessage::CancelInvocation {
            invocation_id: "xyz".into()
        }
    );
}

#[test]
fn spec_ping_close_ack_sequence_examples() {
    assert_eq!(parse(&[0x91, 0x06]), HubMessage::Ping);
    assert_eq!(
        parse(&[&[0x92, 0x07][..], XYZ].concat()),
        HubMessage::Close(Close {
            error: Some("xyz".into()),
            allow_reconnect: false
        })
    );
    assert_eq!(
        parse(&[&[0x93, 0x07][..], XYZ, &[0xc3]].concat()),
        HubMessage::Close(Close {
            error: Some("xyz".into()),
            allow_reconnect: true
        })
    );
    assert_eq!(
        parse(&[0x92, 0x07, 0xc0]),
        HubMessage::Close(Close::default())
    );
    assert_eq!(
        parse(&[0x92, 0x08, 0xcc, 0x24]),
        HubMessage::Ack { sequence_id: 36 }
    );
    assert_eq!(
        parse(&[0x92, 0x09, 0xcc, 0x13]),
        HubMessage::Sequence { sequence_id: 19 }
    );
    assert_eq!(
        parse(&[0x92, 0x09, 0xcf, 0, 0, 0, 1, 0, 0, 0, 0]),
        HubMessage::Sequence {
            sequence_id: 1 << 32
        }
    );
}

#[test]
fn older_clients_shorter_arrays_and_extra_elements() {
    // Before upload streaming: 5 elements, no stream ids.
    let five = [&[0x95, 0x01, 0x80][..], XYZ, METHOD, &[0x91, 0x2a]].concat();
    assert_eq!(
        parse(&five),
        HubMessage::Invocation(invocation(Some("xyz")))
    );
    // Elements past the ones a message defines are ignored, as the reference ignores them.
    let seven = [
        &[0x97, 0x01, 0x80][..],
        XYZ,
        METHOD,
        &[0x91, 0x2a, 0x91, 0xa1, b's', 0x81, 0xa1, b'k', 0x01],
    ]
    .concat();
    let HubMessage::Invocation(parsed) = parse(&seven) else {
        panic!()
    };
    assert_eq!(parsed.stream_ids, vec!["s".to_string()]);
    assert_eq!(parse(&[0x93, 0x06, 0x01, 0x02]), HubMessage::Ping);
    // An empty invocation id is a non-blocking invocation.
    let empty_id = invocation_body(1, &[0xa0]);
    assert_eq!(parse(&empty_id), HubMessage::Invocation(invocation(None)));
}

#[test]
fn unknown_message_types_are_skipped() {
    let bytes = [framed(&[0x92, 0x63, 0x01]), framed(&[0x91, 0x06])].concat();
    assert_eq!(parse_all(MSGPACK, &bytes), Ok(vec![HubMessage::Ping]));
    let mut alone = BytesMut::from(&framed(&[0x91, 0xff])[..]);
    assert_eq!(MSGPACK.parse(&mut alone, 1024), Ok(None));
    assert!(alone.is_empty());
}

#[test]
fn bad_messages_are_refused_with_the_reason() {
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (
            vec![],
            "Reading the message array failed: the message ends inside it.",
        ),
        (
            vec![0x81, 0x01, 0x01],
            "Reading the message array failed: it has another type.",
        ),
        (
            vec![0x90],
            "The message array is empty; it must start with the message type.",
        ),
        (
            vec![0x91, 0xa1, b'1'],
            "Reading 'messageType' as Int32 failed: it has another type.",
        ),
        (
            vec![0x91, 0xce, 0xff, 0xff, 0xff, 0xff],
            "Reading 'messageType' as Int32 failed: out of range.",
        ),
        (
            vec![0x94, 0x01, 0x80, 0xc0, 0xa1],
            "Invocation message has 4 element(s); it needs at least 5.",
        ),
        (
            [&[0x95, 0x01, 0x80, 0xc0, 0xa0][..], &[0x90]].concat(),
            "Null or empty target for Invocation message.",
        ),
        (
            [&[0x95, 0x01, 0x80, 0xc0][..], METHOD, &[0x80]].concat(),
            "Reading array length for 'arguments' failed: it has another type.",
        ),
        (
            [&[0x95, 0x01, 0x80, 0xc0][..], METHOD, &[0x91]].concat(),
            "Reading 'argument' failed: the message ends inside it.",
        ),
        (
            [&[0x95, 0x01, 0x80, 0x2a][..], METHOD, &[0x90]].concat(),
            "Reading 'invocationId' as String failed: it has another type.",
        ),
        (
            [&[0x95, 0x04, 0x80, 0xc0][..], METHOD, &[0x90]].concat(),
            "Null or empty invocation ID for StreamInvocation message.",
        ),
        (
            [&[0x96, 0x01, 0x80, 0xc0][..], METHOD, &[0x90, 0x91, 0xc0]].concat(),
            "Null or empty value in streamIds received.",
        ),
        (
            vec![0x94, 0x02, 0x80, 0xc0, 0x01],
            "Null or empty invocation ID for StreamItem message.",
        ),
        (
            vec![0x94, 0x02, 0x81, 0xa0, 0xa1, b'v', 0xa1, b'i', 0x01],
            "Null or empty key in header.",
        ),
        (
            vec![0x94, 0x02, 0x81, 0xa1, b'k', 0x01, 0xa1, b'i', 0x01],
            "Reading 'headers[0].Value' as String failed: it has another type.",
        ),
        (
            vec![0x94, 0x02, 0x90, 0xa1, b'i', 0x01],
            "Reading map length for 'headers' failed: it has another type.",
        ),
        (
            [&[0x94, 0x03, 0x80][..], XYZ, &[0x04]].concat(),
            "Invalid invocation result kind.",
        ),
        (
            [&[0x94, 0x03, 0x80][..], XYZ, &[0x03]].concat(),
            "Completion message has 4 element(s); it needs at least 5.",
        ),
        (
            vec![0x92, 0x05, 0x80],
            "CancelInvocation message has 2 element(s); it needs at least 3.",
        ),
        (
            vec![0x93, 0x07, 0xc0, 0x01],
            "Reading 'allowReconnect' as Boolean failed: it has another type.",
        ),
        (
            vec![0x91, 0x08],
            "Ack message has 1 element(s); it needs at least 2.",
        ),
        (
            vec![0x92, 0x09, 0xff],
            "Reading 'sequenceId' failed: it is negative.",
        ),
        (
            vec![0x92, 0x09, 0xc0],
            "Reading 'sequenceId' as Int64 failed: it has another type.",
        ),
        (
            vec![0x94, 0x02, 0x80, 0xa1, b'i', 0xc1],
            "Reading 'item' failed: it uses the reserved marker 0xC1.",
        ),
        (
            vec![0x94, 0x02, 0x80, 0xa1, b'i', 0xa1, 0xff],
            "Reading 'item' failed: a string in it is not UTF-8.",
        ),
        (
            vec![0x94, 0x02, 0x80, 0xa1, b'i', 0xc6, 0xff, 0xff, 0xff, 0xff],
            "Reading 'item' failed: the message ends inside it.",
        ),
    ];
    for (body, reason) in cases {
        assert_eq!(refused(&body), reason, "{body:02x?}");
    }
}

#[test]
fn deep_nesting_is_refused_not_overflowing_the_stack() {
    let mut body = vec![0x94, 0x02, 0x80, 0xa1, b'i'];
    body.extend(std::iter::repeat_n(0x91, 5000));
    body.push(0x01);
    let mut bytes = vec![];
    let mut prefix = [0; 5];
    let size = write_length(body.len() as u32, &mut prefix);
    bytes.extend_from_slice(&prefix[..size]);
    bytes.extend_from_slice(&body);
    assert_eq!(
        invalid(MSGPACK, &bytes),
        "Reading 'item' failed: it nests arrays and maps more than 128 deep."
    );
    // 128 levels are fine.
    let mut body = vec![0x94, 0x02, 0x80, 0xa1, b'i'];
    body.extend(std::iter::repeat_n(0x91, 128));
    body.push(0x01);
    let mut bytes = vec![body.len() as u8 | 0x80, (body.len() >> 7) as u8];
    bytes.extend_from_slice(&body);
    assert_eq!(parse_all(MSGPACK, &bytes).unwrap().len(), 1);
}

#[test]
fn the_spec_varint_examples() {
    let mut prefix = [0; 5];
    assert_eq!(write_length(0x35, &mut prefix), 1);
    assert_eq!(prefix[0], 0x35);
    assert_eq!(write_length(5248, &mut prefix), 2);
    assert_eq!(prefix[..2], [0x80, 0x29]);
    assert_eq!(write_length(0x7fff_ffff, &mut prefix), 5);
    assert_eq!(prefix, [0xff, 0xff, 0xff, 0xff, 0x07]);
    assert_eq!(read_length(&[0x0b, b'H']), Ok(Some((11, 1))));
    assert_eq!(read_length(&[0x80, 0x29]), Ok(Some((5248, 2))));
    assert_eq!(
        read_length(&[0xff, 0xff, 0xff, 0xff, 0x07]),
        Ok(Some((0x7fff_ffff, 5)))
    );
    assert_eq!(read_length(&[0xff, 0xff, 0xff, 0xff]), Ok(None));
    assert_eq!(read_length(&[]), Ok(None));
    for fifth in [0x08, 0x80, 0xff] {
        assert_eq!(
            read_length(&[0xff, 0xff, 0xff, 0xff, fifth]),
            Err(ProtocolError::Invalid(
                "Messages over 2GB in size are not supported.".into()
            ))
        );
    }
}

#[test]
fn the_limit_is_checked_from_the_prefix_before_the_body_arrives() {
    // A prefix announcing 1000 bytes, and nothing else yet.
    let mut buffer = BytesMut::from(&[0xe8, 0x07][..]);
    assert_eq!(
        MSGPACK.parse(&mut buffer, 1001),
        Err(ProtocolError::TooLarge {
            size: 1002,
            limit: 1001
        })
    );
    assert_eq!(buffer.len(), 2, "a refused message stays in the buffer");
    assert_eq!(MSGPACK.parse(&mut buffer, 1002), Ok(None));
    // The limit counts the prefix.
    let ping = framed(&[0x91, 0x06]);
    let mut buffer = BytesMut::from(&ping[..]);
    assert_eq!(MSGPACK.parse(&mut buffer, 3), Ok(Some(HubMessage::Ping)));
    let mut buffer = BytesMut::from(&ping[..]);
    assert!(matches!(
        MSGPACK.parse(&mut buffer, 2),
        Err(ProtocolError::TooLarge { size: 3, limit: 2 })
    ));
}

#[test]
fn writes_every_message_as_the_reference_does() {
    let invocation = |id: Option<&str>| Invocation {
        invocation_id: id.map(Into::into),
        target: "method".into(),
        arguments: vec![Payload::new(42)],
        stream_ids: vec![],
    };
    let completion = |outcome| {
        HubMessage::Completion(Completion {
            invocation_id: "xyz".into(),
            outcome,
        })
    };
    let cases: Vec<(Outgoing, Vec<u8>)> = vec![
        (
            HubMessage::Invocation(invocation(Some("xyz"))),
            invocation_body(1, XYZ),
        ),
        (
            HubMessage::Invocation(invocation(None)),
            invocation_body(1, &[0xc0]),
        ),
        (
            HubMessage::StreamInvocation(invocation(Some("xyz"))),
            invocation_body(4, XYZ),
        ),
        (
            HubMessage::StreamItem(StreamItem {
                invocation_id: "xyz".into(),
                item: Payload::new(42),
            }),
            [&[0x94, 0x02, 0x80][..], XYZ, &[0x2a]].concat(),
        ),
        (
            completion(Outcome::Error("Error".into())),
            [&[0x95, 0x03, 0x80][..], XYZ, &[0x01, 0xa5], b"Error"].concat(),
        ),
        (
            completion(Outcome::Void),
            [&[0x94, 0x03, 0x80][..], XYZ, &[0x02]].concat(),
        ),
        (
            completion(Outcome::Result(Payload::new(42))),
            [&[0x95, 0x03, 0x80][..], XYZ, &[0x03, 0x2a]].concat(),
        ),
        (
            HubMessage::CancelInvocation {
                invocation_id: "xyz".into(),
            },
            [&[0x93, 0x05, 0x80][..], XYZ].concat(),
        ),
        (HubMessage::Ping, vec![0x91, 0x06]),
        (
            HubMessage::Close(Close {
                error: Some("xyz".into()),
                allow_reconnect: true,
            }),
            [&[0x93, 0x07][..], XYZ, &[0xc3]].concat(),
        ),
        (
            HubMessage::Close(Close::default()),
            vec![0x93, 0x07, 0xc0, 0xc2],
        ),
        (HubMessage::Ack { sequence_id: 36 }, vec![0x92, 0x08, 0x24]),
        (
            HubMessage::Sequence { sequence_id: 300 },
            vec![0x92, 0x09, 0xcd, 0x01, 0x2c],
        ),
    ];
    for (message, expected) in cases {
        assert_eq!(written(&message), expected, "{message:?}");
    }
}

#[derive(Debug, Serialize, Deserialize, PartialEq)]
struct Shape {
    name: String,
    count: i32,
    ratio: f64,
    #[serde(with = "serde_bytes")]
    data: Vec<u8>,
    nested: Option<Box<Shape>>,
}

fn shape() -> Shape {
    Shape {
        name: "outer".into(),
        count: -3,
        ratio: 2.0,
        data: vec![0, 1, 255],
        nested: Some(Box::new(Shape {
            name: "inner".into(),
            count: 7,
            ratio: 0.5,
            data: vec![],
            nested: None,
        })),
    }
}

#[test]
fn payloads_are_written_with_structs_as_maps_and_bytes_as_bin() {
    let message = HubMessage::StreamItem(StreamItem {
        invocation_id: "i".into(),
        item: Payload::new(shape()),
    });
    let body = written(&message);
    let value = rmpv::decode::read_value(&mut &body[..]).unwrap();
    let item = &value.as_array().unwrap()[3];
    let map = item.as_map().expect("a struct is written as a map");
    let get = |key: &str| {
        map.iter()
            .find(|(k, _)| k.as_str() == Some(key))
            .map(|(_, v)| v.clone())
            .unwrap()
    };
    assert_eq!(get("name"), Mp::from("outer"));
    assert_eq!(get("data"), Mp::Binary(vec![0, 1, 255]));
    assert!(get("nested").is_map());
    let mut buffer = BytesMut::from(
        &{
            let mut out = Vec::new();
            MSGPACK.write(&message, &mut out).unwrap();
            out
        }[..],
    );
    let HubMessage::StreamItem(read) = MSGPACK.parse(&mut buffer, 1024).unwrap().unwrap() else {
        panic!()
    };
    assert_eq!(read.item.bind::<Shape>().unwrap(), shape());
}

#[test]
fn long_messages_get_a_longer_prefix() {
    for size in [126, 127, 128, 200, 16_383, 16_384, 70_000] {
        let message = HubMessage::StreamItem(StreamItem {
            invocation_id: "i".into(),
            item: Payload::new("x".repeat(size)),
        });
        let mut out = b"kept".to_vec();
        MSGPACK.write(&message, &mut out).unwrap();
        assert_eq!(&out[..4], b"kept");
        let (length, prefix) = read_length(&out[4..]).unwrap().unwrap();
        assert_eq!(4 + prefix + length, out.len(), "{size}");
        let mut buffer = BytesMut::from(&out[4..]);
        let HubMessage::StreamItem(read) = MSGPACK.parse(&mut buffer, 1 << 20).unwrap().unwrap()
        else {
            panic!()
        };
        assert_eq!(read.item.bind::<String>().unwrap().len(), size);
    }
}
