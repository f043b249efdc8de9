//! Received values bind to Rust types: what the clients send, and everything our writer
//! writes reads back as the type it came from, in both protocols.

use std::collections::BTreeMap;

use bytes::BytesMut;
use rmpv::Value as Mp;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::protocol::{HubMessage, Payload, Protocol, StreamItem, Value};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum Kind {
    Plain,
    Sized(u32),
    Pair(i8, String),
    Named { x: f64, tags: Vec<String> },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Everything {
    flag: bool,
    small: u8,
    signed: i64,
    float: f32,
    text: String,
    letter: char,
    #[serde(with = "serde_bytes")]
    blob: Vec<u8>,
    raw: Vec<u8>,
    kinds: Vec<Kind>,
    maybe: Option<Box<Everything>>,
    table: BTreeMap<String, i32>,
    tuple: (u16, String),
    unit: (),
}

fn everything() -> Everything {
    Everything {
        flag: true,
        small: 255,
        signed: i64::MIN,
        float: 0.25,
        text: "ü\u{0}\"".into(),
        letter: '✓',
        blob: vec![0, 255],
        raw: vec![1, 2, 3],
        kinds: vec![
            Kind::Plain,
            Kind::Sized(7),
            Kind::Pair(-1, "p".into()),
            Kind::Named {
                x: 1.5,
                tags: vec!["t".into()],
            },
        ],
        maybe: Some(Box::new(Everything {
            flag: false,
            small: 0,
            signed: 1,
            float: -2.0,
            text: String::new(),
            letter: 'a',
            blob: vec![],
            raw: vec![],
            kinds: vec![],
            maybe: None,
            table: BTreeMap::new(),
            tuple: (0, String::new()),
            unit: (),
        })),
        table: BTreeMap::from([("a".into(), -1), ("b".into(), 2)]),
        tuple: (65535, "t".into()),
        unit: (),
    }
}

/// `value` written as a stream item by `protocol` and read back as `T`.
fn through<T: Serialize + DeserializeOwned + Send + Sync + 'static>(
    protocol: Protocol,
    value: T,
) -> T {
    let message = HubMessage::StreamItem(StreamItem {
        invocation_id: "i".into(),
        item: Payload::new(value),
    });
    let mut out = Vec::new();
    protocol.write(&message, &mut out).unwrap();
    let mut buffer = BytesMut::from(&out[..]);
    let Some(HubMessage::StreamItem(item)) = protocol.parse(&mut buffer, 1 << 20).unwrap() else {
        panic!("not a stream item")
    };
    item.item.bind().unwrap()
}

#[test]
fn what_we_write_binds_back_to_its_type_in_both_protocols() {
    for protocol in [Protocol::Json, Protocol::MessagePack] {
        assert_eq!(
            through(protocol, everything()),
            everything(),
            "{protocol:?}"
        );
        for kind in everything().kinds {
            assert_eq!(through(protocol, kind.clone()), kind, "{protocol:?}");
        }
        assert_eq!(through(protocol, u64::MAX), u64::MAX);
        assert_eq!(through(protocol, Some(3)), Some(3));
        assert_eq!(through(protocol, None::<String>), None);
    }
}

fn mp<T: DeserializeOwned>(value: Mp) -> Result<T, String> {
    Value::MessagePack(value).bind().map_err(|error| error.0)
}

#[derive(Debug, PartialEq, Deserialize)]
struct Message {
    user: String,
    count: i32,
    ratio: f64,
    data: Vec<u8>,
}

#[test]
fn binds_what_the_clients_send() {
    // The JavaScript client: an object as a map, integers in their smallest form even for a
    // float field, a Uint8Array as bin.
    let from_javascript = Mp::Map(vec![
        (Mp::from("user"), Mp::from("ann")),
        (Mp::from("count"), Mp::from(3)),
        (Mp::from("ratio"), Mp::from(1)),
        (Mp::from("data"), Mp::Binary(vec![9, 8])),
        (Mp::from("ignored"), Mp::from(true)),
    ]);
    let expected = Message {
        user: "ann".into(),
        count: 3,
        ratio: 1.0,
        data: vec![9, 8],
    };
    assert_eq!(mp::<Message>(from_javascript), Ok(expected));
    // MessagePack-CSharp with [Key(n)] attributes: an object as an array.
    let keyed = Mp::Array(vec![
        Mp::from("bob"),
        Mp::from(-2),
        Mp::F64(0.5),
        Mp::Binary(vec![]),
    ]);
    assert_eq!(
        mp::<Message>(keyed),
        Ok(Message {
            user: "bob".into(),
            count: -2,
            ratio: 0.5,
            data: vec![],
        })
    );
    assert_eq!(mp::<i32>(Mp::from(200)), Ok(200));
    assert_eq!(mp::<i64>(Mp::from(-5)), Ok(-5));
    assert_eq!(mp::<f64>(Mp::from(7)), Ok(7.0));
    assert_eq!(mp::<f64>(Mp::F32(1.5)), Ok(1.5));
    assert_eq!(mp::<String>(Mp::from("s")), Ok("s".into()));
    assert_eq!(mp::<Option<i32>>(Mp::Nil), Ok(None));
    assert_eq!(mp::<Kind>(Mp::from("Plain")), Ok(Kind::Plain));
    let bytes: serde_bytes::ByteBuf = mp(Mp::Binary(vec![1])).unwrap();
    assert_eq!(bytes.into_vec(), vec![1]);
    // Dynamic values take bin as an array of numbers and an extension as [type, data].
    assert_eq!(
        mp::<serde_json::Value>(Mp::Binary(vec![1, 2])),
        Ok(json!([1, 2]))
    );
    assert_eq!(
        mp::<serde_json::Value>(Mp::Ext(-1, vec![0, 0, 0, 1])),
        Ok(json!([-1, [0, 0, 0, 1]]))
    );
}

#[test]
fn mismatches_are_refused_with_serdes_words() {
    assert_eq!(
        mp::<u8>(Mp::from(300)),
        Err("invalid value: integer `300`, expected u8".into())
    );
    assert_eq!(
        mp::<i32>(Mp::from("x")),
        Err("invalid type: string \"x\", expected i32".into())
    );
    assert!(mp::<Message>(Mp::Map(vec![]))
        .unwrap_err()
        .contains("missing field"));
    assert!(mp::<Kind>(Mp::from(1))
        .unwrap_err()
        .starts_with("invalid type: integer `1`"));
    assert!(mp::<Kind>(Mp::from("Nope"))
        .unwrap_err()
        .starts_with("unknown variant `Nope`"));
    assert!(mp::<(i32, i32)>(Mp::Array(vec![Mp::from(1)]))
        .unwrap_err()
        .contains("invalid length 1"));
    assert_eq!(
        mp::<(i32,)>(Mp::Array(vec![Mp::from(1), Mp::from(2)])),
        Err("1 array elements left over".into())
    );
}

/// A float either protocol writes as itself: finite (JSON has no NaN or infinities).
fn finite32() -> impl proptest::strategy::Strategy<Value = f32> {
    use proptest::prelude::*;
    prop_oneof![
        any::<f32>().prop_filter("finite", |f| f.is_finite()),
        Just(f32::MIN_POSITIVE),
        Just(f32::MAX),
        Just(-0.0),
    ]
}

fn any_kind() -> impl proptest::strategy::Strategy<Value = Kind> {
    use proptest::prelude::*;
    prop_oneof![
        Just(Kind::Plain),
        any::<u32>().prop_map(Kind::Sized),
        (any::<i8>(), any::<String>()).prop_map(|(a, b)| Kind::Pair(a, b)),
        (
            any::<f64>().prop_filter("finite", |f| f.is_finite()),
            proptest::collection::vec(any::<String>(), 0..3)
        )
            .prop_map(|(x, tags)| Kind::Named { x, tags }),
    ]
}

fn any_everything() -> impl proptest::strategy::Strategy<Value = Everything> {
    use proptest::collection::{btree_map, vec};
    use proptest::prelude::*;
    let leaf = (
        (any::<bool>(), any::<u8>(), any::<i64>(), finite32()),
        (any::<String>(), any::<char>()),
        (vec(any::<u8>(), 0..40), vec(any::<u8>(), 0..40)),
        vec(any_kind(), 0..4),
        btree_map(any::<String>(), any::<i32>(), 0..4),
        (any::<u16>(), any::<String>()),
    )
        .prop_map(
            |((flag, small, signed, float), (text, letter), (blob, raw), kinds, table, tuple)| {
                Everything {
                    flag,
                    small,
                    signed,
                    float,
                    text,
                    letter,
                    blob,
                    raw,
                    kinds,
                    maybe: None,
                    table,
                    tuple,
                    unit: (),
                }
            },
        )
        .boxed();
    (leaf.clone(), proptest::option::of(leaf)).prop_map(|(mut outer, inner)| {
        outer.maybe = inner.map(Box::new);
        outer
    })
}

proptest::proptest! {
    /// Whatever value of these shapes the hub writes, in either protocol, binds back to the
    /// very same value (floats to the bit, through JSON's decimal text too).
    #[test]
    fn arbitrary_values_bind_back_in_both_protocols(value in any_everything()) {
        for protocol in [Protocol::Json, Protocol::MessagePack] {
            let back = through(protocol, value.clone());
            proptest::prop_assert_eq!(back.float.to_bits(), value.float.to_bits(), "{:?}", protocol);
            proptest::prop_assert_eq!(&back, &value, "{:?}", protocol);
        }
    }
}
