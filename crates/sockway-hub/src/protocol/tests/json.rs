//! The JSON protocol: the spec's examples byte for byte, the reference's leniencies and its
//! errors, the size limit.

use bytes::BytesMut;
use serde_json::json;

use super::{invalid, parse_all, parse_one};
use crate::protocol::{
    Close, Completion, HubMessage, Invocation, Outcome, Outgoing, Payload, Protocol, ProtocolError,
    StreamItem, Value,
};

const JSON: Protocol = Protocol::Json;

/// `text` as one record.
fn record(text: &str) -> Vec<u8> {
    let mut bytes = text.as_bytes().to_vec();
    bytes.push(0x1e);
    bytes
}

fn parse(text: &str) -> HubMessage<Value> {
    parse_one(JSON, &record(text)).unwrap()
}

fn refused(text: &str) -> String {
    invalid(JSON, &record(text))
}

fn args(values: &[serde_json::Value]) -> Vec<Value> {
    values.iter().cloned().map(Value::Json).collect()
}

fn written(message: &Outgoing) -> String {
    let mut out = Vec::new();
    JSON.write(message, &mut out).unwrap();
    assert_eq!(out.pop(), Some(0x1e));
    String::from_utf8(out).unwrap()
}

#[test]
fn spec_invocation_examples() {
    let with_id = r#"{"type": 1, "invocationId": "123", "target": "Send", "arguments": [42, "Test Message"]}"#;
    assert_eq!(
        parse(with_id),
        HubMessage::Invocation(Invocation {
            invocation_id: Some("123".into()),
            target: "Send".into(),
            arguments: args(&[json!(42), json!("Test Message")]),
            stream_ids: vec![],
        })
    );
    let non_blocking = r#"{"type": 1, "target": "Send", "arguments": [42, "Test Message"]}"#;
    let HubMessage::Invocation(invocation) = parse(non_blocking) else {
        panic!()
    };
    assert_eq!(invocation.invocation_id, None);
    let streams =
        r#"{"type":1,"invocationId":"123","target":"Send","arguments":[42],"streamIds":["1"]}"#;
    let HubMessage::Invocation(invocation) = parse(streams) else {
        panic!()
    };
    assert_eq!(invocation.stream_ids, vec!["1".to_string()]);
    assert_eq!(invocation.arguments, args(&[json!(42)]));
}

#[test]
fn spec_stream_invocation_and_item_examples() {
    let text = r#"{"type": 4, "invocationId": "123", "target": "Send", "arguments": [42, "Test Message"]}"#;
    assert_eq!(
        parse(text),
        HubMessage::StreamInvocation(Invocation {
            invocation_id: Some("123".into()),
            target: "Send".into(),
            arguments: args(&[json!(42), json!("Test Message")]),
            stream_ids: vec![],
        })
    );
    assert_eq!(
        parse(r#"{"type": 2, "invocationId": "123", "item": 42}"#),
        HubMessage::StreamItem(StreamItem {
            invocation_id: "123".into(),
            item: Value::Json(json!(42)),
        })
    );
}

#[test]
fn spec_completion_examples() {
    let completion = |outcome| {
        HubMessage::Completion(Completion {
            invocation_id: "123".into(),
            outcome,
        })
    };
    assert_eq!(
        parse(r#"{"type": 3, "invocationId": "123"}"#),
        completion(Outcome::Void)
    );
    assert_eq!(
        parse(r#"{"type": 3, "invocationId": "123", "result": 42}"#),
        completion(Outcome::Result(Value::Json(json!(42))))
    );
    assert_eq!(
        parse(r#"{"type": 3, "invocationId": "123", "error": "It didn't work!"}"#),
        completion(Outcome::Error("It didn't work!".into()))
    );
    assert_eq!(
        parse(r#"{"type": 3, "invocationId": "123", "result": null}"#),
        completion(Outcome::Result(Value::Json(json!(null))))
    );
    assert_eq!(
        refused(r#"{"type": 3, "invocationId": "123", "result": 42, "error": "It didn't work!"}"#),
        "The 'error' and 'result' properties are mutually exclusive."
    );
}

#[test]
fn spec_cancel_ping_close_ack_sequence_examples() {
    assert_eq!(
        parse(r#"{"type": 5, "invocationId": "123"}"#),
        HubMessage::CancelInvocation {
            invocation_id: "123".into()
        }
    );
    assert_eq!(parse(r#"{"type": 6}"#), HubMessage::Ping);
    assert_eq!(parse(r#"{"type": 7}"#), HubMessage::Close(Close::default()));
    let error = "Connection closed because of an error!";
    assert_eq!(
        parse(&format!(r#"{{"type": 7, "error": "{error}"}}"#)),
        HubMessage::Close(Close {
            error: Some(error.into()),
            allow_reconnect: false
        })
    );
    assert_eq!(
        parse(&format!(
            r#"{{"type": 7, "error": "{error}", "allowReconnect": true}}"#
        )),
        HubMessage::Close(Close {
            error: Some(error.into()),
            allow_reconnect: true
        })
    );
    assert_eq!(
        parse(r#"{"type": 8, "sequenceId": 1394}"#),
        HubMessage::Ack { sequence_id: 1394 }
    );
    assert_eq!(
        parse(r#"{"type": 9, "sequenceId": 1234}"#),
        HubMessage::Sequence { sequence_id: 1234 }
    );
}

#[test]
fn headers_are_accepted_and_ignored() {
    let text = r#"{"type": 1, "headers": {"Foo": "Bar"}, "invocationId": "123", "target": "Send", "arguments": [42, "Test Message"]}"#;
    let HubMessage::Invocation(invocation) = parse(text) else {
        panic!()
    };
    assert_eq!(invocation.target, "Send");
    assert_eq!(
        refused(r#"{"type":6,"headers":{"a":1}}"#),
        "Expected header 'a' to be of type String."
    );
    assert_eq!(
        refused(r#"{"type":6,"headers":[]}"#),
        "Expected 'headers' to be of type Object."
    );
}

#[test]
fn properties_in_any_order_and_unknown_ones_ignored() {
    let text = r#"{"arguments":[{"a":[1,2]}],"extra":{"deep":[1,{"x":null}]},"target":"Go","invocationId":"7","type":1}"#;
    assert_eq!(
        parse(text),
        HubMessage::Invocation(Invocation {
            invocation_id: Some("7".into()),
            target: "Go".into(),
            arguments: args(&[json!({"a": [1, 2]})]),
            stream_ids: vec![],
        })
    );
    assert_eq!(
        parse(r#"{"item":[1],"invocationId":"s","type":2}"#),
        HubMessage::StreamItem(StreamItem {
            invocation_id: "s".into(),
            item: Value::Json(json!([1])),
        })
    );
    assert_eq!(
        parse(r#"{"result":"r","invocationId":"i","type":3}"#),
        HubMessage::Completion(Completion {
            invocation_id: "i".into(),
            outcome: Outcome::Result(Value::Json(json!("r"))),
        })
    );
    // Escaped property names are the same names.
    assert_eq!(parse(r#"{"typ\u0065": 6}"#), HubMessage::Ping);
}

#[test]
fn empty_or_null_invocation_id_is_a_non_blocking_invocation() {
    for id in [r#""""#, "null"] {
        let text = format!(r#"{{"type":1,"invocationId":{id},"target":"T","arguments":[]}}"#);
        let HubMessage::Invocation(invocation) = parse(&text) else {
            panic!()
        };
        assert_eq!(invocation.invocation_id, None);
    }
}

#[test]
fn missing_properties_are_named() {
    let cases = [
        (r#"{}"#, "Missing required property 'type'."),
        (
            r#"{"type":1,"arguments":[]}"#,
            "Missing required property 'target'.",
        ),
        (
            r#"{"type":1,"target":"","arguments":[]}"#,
            "Missing required property 'target'.",
        ),
        (
            r#"{"type":1,"target":"T"}"#,
            "Missing required property 'arguments'.",
        ),
        (
            r#"{"type":4,"target":"T","arguments":[]}"#,
            "Missing required property 'invocationId'.",
        ),
        (
            r#"{"type":4,"invocationId":"1","target":"T"}"#,
            "Missing required property 'arguments'.",
        ),
        (
            r#"{"type":4,"invocationId":"1","arguments":[]}"#,
            "Missing required property 'target'.",
        ),
        (
            r#"{"type":2,"item":1}"#,
            "Missing required property 'invocationId'.",
        ),
        (
            r#"{"type":2,"invocationId":"1"}"#,
            "Missing required property 'item'.",
        ),
        (
            r#"{"type":3,"invocationId":""}"#,
            "Missing required property 'invocationId'.",
        ),
        (r#"{"type":5}"#, "Missing required property 'invocationId'."),
        (r#"{"type":8}"#, "Missing required property 'sequenceId'."),
        (
            r#"{"type":9,"sequenceId":null}"#,
            "Missing required property 'sequenceId'.",
        ),
    ];
    for (text, reason) in cases {
        assert_eq!(refused(text), reason, "{text}");
    }
}

#[test]
fn wrong_types_are_named() {
    let cases = [
        (r#"{"type":"1"}"#, "Expected 'type' to be of type Number."),
        (r#"{"type":null}"#, "Expected 'type' to be of type Number."),
        (r#"{"type":1.5}"#, "Expected 'type' to be an integer."),
        (
            r#"{"type":1,"target":5,"arguments":[]}"#,
            "Expected 'target' to be of type String.",
        ),
        (
            r#"{"type":1,"target":"T","arguments":{}}"#,
            "Expected 'arguments' to be of type Array.",
        ),
        (
            r#"{"type":1,"target":"T","arguments":[],"streamIds":"1"}"#,
            "Expected 'streamIds' to be of type Array.",
        ),
        (
            r#"{"type":1,"target":"T","arguments":[],"streamIds":[null]}"#,
            "Null value for 'streamIds' is not valid.",
        ),
        (
            r#"{"type":1,"target":"T","arguments":[],"streamIds":[1]}"#,
            "Expected each of 'streamIds' to be a String.",
        ),
        (
            r#"{"type":5,"invocationId":1}"#,
            "Expected 'invocationId' to be of type String.",
        ),
        (
            r#"{"type":3,"invocationId":"1","error":false}"#,
            "Expected 'error' to be of type String.",
        ),
        (
            r#"{"type":7,"allowReconnect":"yes"}"#,
            "Expected 'allowReconnect' to be true or false.",
        ),
        (
            r#"{"type":8,"sequenceId":-1}"#,
            "Expected 'sequenceId' to be a non-negative integer.",
        ),
        (
            r#"{"type":8,"sequenceId":"1"}"#,
            "Expected 'sequenceId' to be of type Number.",
        ),
    ];
    for (text, reason) in cases {
        assert_eq!(refused(text), reason, "{text}");
    }
}

#[test]
fn malformed_records_are_refused_with_the_json_error() {
    for text in [
        "",
        "{",
        "[1]",
        "42",
        "{\"type\":6} x",
        "{\"type\":6,}",
        "\u{0}",
    ] {
        let reason = refused(text);
        assert!(
            reason.starts_with("Error reading JSON: "),
            "{text:?}: {reason}"
        );
    }
    let mut bytes = br#"{"type":1,"target":"T","arguments":[""#.to_vec();
    bytes.extend_from_slice(&[0xff, b'"', b']', b'}', 0x1e]);
    assert!(invalid(JSON, &bytes).starts_with("Error reading JSON: "));
}

#[test]
fn an_invalid_record_is_consumed_and_the_next_one_still_reads() {
    let mut buffer = BytesMut::from(&b"{\x1e{\"type\":6}\x1e"[..]);
    assert!(matches!(
        JSON.parse(&mut buffer, 1024),
        Err(ProtocolError::Invalid(_))
    ));
    assert_eq!(JSON.parse(&mut buffer, 1024), Ok(Some(HubMessage::Ping)));
}

#[test]
fn unknown_message_types_are_skipped() {
    let bytes = [record(r#"{"type":99,"x":1}"#), record(r#"{"type":6}"#)].concat();
    assert_eq!(parse_all(JSON, &bytes), Ok(vec![HubMessage::Ping]));
    let mut alone = BytesMut::from(&record(r#"{"type":-3}"#)[..]);
    assert_eq!(JSON.parse(&mut alone, 1024), Ok(None));
    assert!(alone.is_empty());
}

#[test]
fn whitespace_around_the_object_is_allowed() {
    assert_eq!(parse(" \r\n\t{ \"type\" : 6 }\n"), HubMessage::Ping);
}

#[test]
fn records_wait_for_their_separator() {
    let mut buffer = BytesMut::from(&br#"{"type":6}"#[..]);
    assert_eq!(JSON.parse(&mut buffer, 1024), Ok(None));
    assert_eq!(buffer.len(), 10);
    buffer.extend_from_slice(b"\x1e{\"ty");
    assert_eq!(JSON.parse(&mut buffer, 1024), Ok(Some(HubMessage::Ping)));
    assert_eq!(&buffer[..], b"{\"ty");
}

#[test]
fn the_limit_counts_the_separator() {
    let ping = record(r#"{"type":6}"#);
    let exact = ping.len();
    let mut buffer = BytesMut::from(&ping[..]);
    assert_eq!(JSON.parse(&mut buffer, exact), Ok(Some(HubMessage::Ping)));
    let mut buffer = BytesMut::from(&ping[..]);
    assert_eq!(
        JSON.parse(&mut buffer, exact - 1),
        Err(ProtocolError::TooLarge {
            size: exact,
            limit: exact - 1
        })
    );
    assert_eq!(buffer.len(), exact, "a refused record stays in the buffer");
}

#[test]
fn an_unterminated_record_is_refused_once_past_the_limit() {
    let mut buffer = BytesMut::from(&[b' '; 100][..]);
    assert_eq!(JSON.parse(&mut buffer, 100), Ok(None));
    buffer.extend_from_slice(b" ");
    assert_eq!(
        JSON.parse(&mut buffer, 100),
        Err(ProtocolError::TooLarge {
            size: 101,
            limit: 100
        })
    );
    // A small record ahead of a large one is still read.
    let mut buffer = BytesMut::from(&record(r#"{"type":6}"#)[..]);
    buffer.extend_from_slice(&[b' '; 200]);
    assert_eq!(JSON.parse(&mut buffer, 100), Ok(Some(HubMessage::Ping)));
    assert!(matches!(
        JSON.parse(&mut buffer, 100),
        Err(ProtocolError::TooLarge { size: 200, .. })
    ));
}

#[test]
fn writes_every_message_as_the_reference_does() {
    let invocation = |id: Option<&str>, stream_ids: Vec<String>| Invocation {
        invocation_id: id.map(Into::into),
        target: "Send".into(),
        arguments: vec![Payload::new(42), Payload::new("Test \"Message\"")],
        stream_ids,
    };
    let cases: Vec<(Outgoing, &str)> = vec![
        (
            HubMessage::Invocation(invocation(Some("123"), vec![])),
            r#"{"type":1,"invocationId":"123","target":"Send","arguments":[42,"Test \"Message\""]}"#,
        ),
        (
            HubMessage::Invocation(invocation(None, vec!["1".into()])),
            r#"{"type":1,"target":"Send","arguments":[42,"Test \"Message\""],"streamIds":["1"]}"#,
        ),
        (
            HubMessage::StreamInvocation(invocation(Some("9"), vec![])),
            r#"{"type":4,"invocationId":"9","target":"Send","arguments":[42,"Test \"Message\""]}"#,
        ),
        (
            HubMessage::StreamItem(StreamItem {
                invocation_id: "123".into(),
                item: Payload::new(json!({"a": [1, null]})),
            }),
            r#"{"type":2,"invocationId":"123","item":{"a":[1,null]}}"#,
        ),
        (
            HubMessage::Completion(Completion {
                invocation_id: "123".into(),
                outcome: Outcome::Void,
            }),
            r#"{"type":3,"invocationId":"123"}"#,
        ),
        (
            HubMessage::Completion(Completion {
                invocation_id: "123".into(),
                outcome: Outcome::Result(Payload::new(())),
            }),
            r#"{"type":3,"invocationId":"123","result":null}"#,
        ),
        (
            HubMessage::Completion(Completion {
                invocation_id: "123".into(),
                outcome: Outcome::Error("It didn't work!".into()),
            }),
            r#"{"type":3,"invocationId":"123","error":"It didn't work!"}"#,
        ),
        (
            HubMessage::CancelInvocation {
                invocation_id: "123".into(),
            },
            r#"{"type":5,"invocationId":"123"}"#,
        ),
        (HubMessage::Ping, r#"{"type":6}"#),
        (HubMessage::Close(Close::default()), r#"{"type":7}"#),
        (
            HubMessage::Close(Close {
                error: Some("bye\n".into()),
                allow_reconnect: true,
            }),
            r#"{"type":7,"error":"bye\n","allowReconnect":true}"#,
        ),
        (
            HubMessage::Ack { sequence_id: 1394 },
            r#"{"type":8,"sequenceId":1394}"#,
        ),
        (
            HubMessage::Sequence {
                sequence_id: u64::MAX,
            },
            r#"{"type":9,"sequenceId":18446744073709551615}"#,
        ),
    ];
    for (message, expected) in cases {
        assert_eq!(written(&message), expected);
    }
}

#[test]
fn a_payload_that_fails_to_serialize_leaves_the_output_as_it_was() {
    struct Fails;
    impl serde::Serialize for Fails {
        fn serialize<S: serde::Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
            Err(serde::ser::Error::custom("no"))
        }
    }
    let mut out = b"before".to_vec();
    let message = HubMessage::StreamItem(StreamItem {
        invocation_id: "1".into(),
        item: Payload::new(Fails),
    });
    assert!(JSON.write(&message, &mut out).is_err());
    assert_eq!(out, b"before");
}

/// Numbers arrive as the exact doubles they name, as System.Text.Json reads them: a number
/// another client sent is passed on unchanged, and what the hub writes reads back the same.
/// (serde_json's default reading may be one unit in the last place off; found by the
/// `hub_messages` fuzz target.)
#[test]
fn numbers_are_read_exactly_and_survive_a_round_trip() {
    let texts = [
        "6.6666666666666667e+43",
        "2.6666666666666665e26",
        "2.2250738585072011e-308",
        "0.1",
        "1.7976931348623157e308",
        "5e-324",
        "9007199254740993",
        "123456789012345678901234567890",
    ];
    for text in texts {
        let message = parse(&format!(
            r#"{{"type":1,"target":"T","arguments":[{text}]}}"#
        ));
        let HubMessage::Invocation(call) = &message else {
            panic!("{message:?}");
        };
        let exact: f64 = text.parse().unwrap();
        let read: f64 = call.arguments[0].clone().bind().unwrap();
        assert_eq!(read.to_bits(), exact.to_bits(), "{text}");

        let again = parse(&written(&HubMessage::Invocation(Invocation {
            invocation_id: None,
            target: "T".into(),
            arguments: vec![Payload::new(read)],
            stream_ids: Vec::new(),
        })));
        assert_eq!(
            again,
            parse(&format!(
                r#"{{"type":1,"target":"T","arguments":[{read:?}]}}"#
            ))
        );
    }
}
