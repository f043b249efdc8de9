//! [`Connection::read_message_in_place`]: small whole messages lent where they lie, and
//! everything else left to [`Connection::read_event`].

use bytes::BytesMut;

use super::tests::{queued_close_code, raw, server};
use super::*;
use crate::message::MessageView;

#[test]
fn whole_small_messages_are_read_in_place_one_after_another() {
    let mut conn = server();
    let mut input = raw(true, 0, 0x1, "héllo".as_bytes());
    input.extend_from_slice(&raw(true, 0, 0x2, &[7u8; 300]));
    let first_len = raw(true, 0, 0x1, "héllo".as_bytes()).len();
    let total = input.len();

    let (view, used) = conn
        .read_message_in_place(&mut input, 4095)
        .unwrap()
        .unwrap();
    assert_eq!(view, MessageView::Text("héllo"));
    assert_eq!(used, first_len);
    let (view, rest) = conn
        .read_message_in_place(&mut input[used..], 4095)
        .unwrap()
        .unwrap();
    assert_eq!(view, MessageView::Binary(&[7u8; 300][..]));
    assert_eq!(used + rest, total);
    assert_eq!(view.to_message(), Message::binary(vec![7u8; 300]));
}

#[test]
fn anything_else_is_left_to_the_general_path() {
    let whole = raw(true, 0, 0x2, b"abc");
    let cases: [(&str, Vec<u8>, usize); 6] = [
        ("cut short", whole[..whole.len() - 1].to_vec(), 4095),
        ("over max_len", whole.clone(), 2),
        ("not final", raw(false, 0, 0x2, b"abc"), 4095),
        ("a ping", raw(true, 0, 0x9, b"abc"), 4095),
        ("a reserved bit", raw(true, 4, 0x2, b"abc"), 4095),
        (
            "a 64-bit length",
            raw(true, 0, 0x2, &[1u8; 70_000]),
            usize::MAX,
        ),
    ];
    for (name, mut input, max_len) in cases {
        let mut conn = server();
        let before = input.clone();
        assert!(
            conn.read_message_in_place(&mut input, max_len).is_none(),
            "{name}"
        );
        assert_eq!(input, before, "{name}: input untouched");
        // The general path still reads it as it always did.
        let _ = conn.read_event(&mut BytesMut::from(&input[..]), Delivery::Messages);
    }
    // A client reads nothing in place, nor does a server in the middle of a message.
    let mut client = Connection::new(Role::Client, Config::default());
    assert!(client
        .read_message_in_place(&mut whole.clone(), 4095)
        .is_none());
    let mut conn = server();
    let first = raw(false, 0, 0x2, b"ab");
    assert_eq!(
        conn.read_event(&mut BytesMut::from(&first[..]), Delivery::Messages),
        Ok(None)
    );
    let mut next = raw(true, 0, 0x2, b"cd");
    assert!(conn.read_message_in_place(&mut next, 4095).is_none());
}

#[test]
fn invalid_text_fails_the_connection_with_1007() {
    let mut conn = server();
    let mut input = raw(true, 0, 0x1, &[0x61, 0xff, 0x62]);
    let read = conn.read_message_in_place(&mut input, 4095);
    assert_eq!(read, Some(Err(ProtocolError::InvalidUtf8)));
    assert!(conn.is_closed());
    assert_eq!(
        queued_close_code(&mut conn),
        Some(CloseCode::INVALID_PAYLOAD)
    );
    assert!(conn
        .read_message_in_place(&mut raw(true, 0, 0x2, b"x"), 4095)
        .is_none());
}

#[test]
fn the_size_limits_hold_in_place_too() {
    let config = Config {
        max_message_size: 10,
        ..Config::default()
    };
    let mut conn = Connection::new(Role::Server, config);
    let mut input = raw(true, 0, 0x2, &[1u8; 11]);
    assert!(conn.read_message_in_place(&mut input, 4095).is_none());
    let error = conn
        .read_event(&mut BytesMut::from(&input[..]), Delivery::Messages)
        .unwrap_err();
    assert!(
        matches!(error, ProtocolError::MessageTooBig { .. }),
        "{error:?}"
    );
}
