//! permessage-deflate through the state machine (RFC 7692 sections 6 and 7).

use bytes::BytesMut;

use super::*;
use crate::deflate::{Compressor, DeflateParams};
use crate::frame::FrameHeader;

fn params(window: u8, no_context_takeover: bool) -> DeflateParams {
    DeflateParams {
        local_max_window_bits: window,
        local_no_context_takeover: no_context_takeover,
        remote_no_context_takeover: no_context_takeover,
        local_compression_level: 1,
    }
}

fn pair(window: u8, no_context_takeover: bool) -> (Connection, Connection) {
    let p = params(window, no_context_takeover);
    (
        Connection::with_deflate(Role::Client, Config::default(), p),
        Connection::with_deflate(Role::Server, Config::default(), p),
    )
}

fn deliver(from: &mut Connection, to: &mut Connection, delivery: Delivery) -> Vec<Event> {
    let mut input = BytesMut::from(&from.take_output()[..]);
    let mut events = Vec::new();
    while let Some(event) = to.read_event(&mut input, delivery).unwrap() {
        events.push(event);
    }
    events
}

#[test]
fn compressed_and_uncompressed_messages_mix_without_the_windows_drifting() {
    for (window, no_context_takeover) in [(15, false), (9, false), (8, false), (15, true)] {
        let (mut client, mut server) = pair(window, no_context_takeover);
        for i in 0..3000u32 {
            let text = format!(
                "message {i}: {}",
                "the same words again and again ".repeat((i % 7) as usize)
            );
            let compression = if i % 3 == 0 {
                Compression::Disabled
            } else {
                Compression::Allowed
            };
            client
                .send_with(&Message::text(text.clone()), compression)
                .unwrap();
            let output = client.output().to_vec();
            let (header, _) = FrameHeader::parse(&output).unwrap().unwrap();
            assert_eq!(
                header.rsv == crate::frame::RSV1,
                compression == Compression::Allowed
            );
            let events = deliver(&mut client, &mut server, Delivery::Messages);
            assert_eq!(
                events,
                vec![Event::Message(Message::text(text.clone()))],
                "window {window} message {i}"
            );
            server
                .send_with(&Message::binary(text.into_bytes()), compression)
                .unwrap();
            assert_eq!(
                deliver(&mut server, &mut client, Delivery::Messages).len(),
                1
            );
        }
    }
}

#[test]
fn repeated_messages_shrink_with_context_takeover() {
    let (mut client, _) = pair(15, false);
    let text = "a message that repeats itself, a message that repeats itself";
    client.send_text(text).unwrap();
    let first = client.take_output().len();
    client.send_text(text).unwrap();
    let second = client.take_output().len();
    assert!(second < first / 2, "second {second} vs first {first}");
}

#[test]
fn fragmented_compressed_messages_set_rsv1_only_on_the_first_frame() {
    for delivery in [Delivery::Messages, Delivery::Frames, Delivery::Pieces] {
        let (mut client, mut server) = pair(15, false);
        client
            .send_fragment(MessageKind::Text, "héllo, ".as_bytes(), false)
            .unwrap();
        let first = client.output().to_vec();
        client
            .send_fragment(MessageKind::Text, "wörld".as_bytes(), true)
            .unwrap();
        let all = client.output().to_vec();
        let (h1, n1) = FrameHeader::parse(&first).unwrap().unwrap();
        let (h2, _) = FrameHeader::parse(&all[n1 + h1.payload_len as usize..])
            .unwrap()
            .unwrap();
        assert_eq!((h1.rsv, h2.rsv), (crate::frame::RSV1, 0));
        let events = deliver(&mut client, &mut server, delivery);
        let text: Vec<u8> = events
            .iter()
            .flat_map(|e| match e {
                Event::Message(m) => m.as_bytes().to_vec(),
                Event::Fragment { data, .. } => data.to_vec(),
                _ => Vec::new(),
            })
            .collect();
        assert_eq!(
            String::from_utf8(text).unwrap(),
            "héllo, wörld",
            "{delivery:?}"
        );
    }
}

/// A masked frame from a client with chosen header bits.
fn client_frame(first_byte: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![first_byte, 0x80 | payload.len() as u8, 0, 0, 0, 0];
    out.extend_from_slice(payload);
    out
}

fn fail(server: &mut Connection, bytes: &[u8]) -> ProtocolError {
    let mut input = BytesMut::from(bytes);
    loop {
        match server.read_event(&mut input, Delivery::Messages) {
            Ok(Some(_)) => continue,
            Ok(None) => panic!("no error"),
            Err(error) => return error,
        }
    }
}

#[test]
fn rsv1_where_it_does_not_belong_is_a_protocol_error() {
    let compressed_start = client_frame(0x41, &[0xf2, 0x48]);
    let cases = [
        (
            "on a continuation",
            [compressed_start.clone(), client_frame(0xC0, &[0x00])].concat(),
        ),
        ("on a ping", client_frame(0xC9, b"")),
        ("rsv2", client_frame(0xA1, b"")),
    ];
    for (name, bytes) in cases {
        let (_, mut server) = pair(15, false);
        assert_eq!(
            fail(&mut server, &bytes),
            ProtocolError::ReservedBits,
            "{name}"
        );
    }
    let mut plain = Connection::new(Role::Server, Config::default());
    assert_eq!(
        fail(&mut plain, &client_frame(0xC1, &[0x00])),
        ProtocolError::ReservedBits,
        "not negotiated"
    );
}

#[test]
fn a_small_frame_inflating_beyond_the_limit_fails_with_1009() {
    let mut compressor = Compressor::new(15, false);
    let mut bomb = Vec::new();
    compressor.compress(&vec![b'a'; 4 << 20], true, &mut bomb);
    assert!(bomb.len() < 64 * 1024);
    let config = Config::default().max_message_size(1 << 20);
    let mut server = Connection::with_deflate(Role::Server, config, params(15, false));
    let mut client = Connection::new(Role::Client, Config::default());
    client
        .writer
        .write_frame(crate::frame::OpCode::Text, &bomb, true, crate::frame::RSV1);
    let error = fail(&mut server, &client.take_output());
    assert_eq!(error, ProtocolError::MessageTooBig { limit: 1 << 20 });
    assert_eq!(error.close_code(), CloseCode::MESSAGE_TOO_BIG);
}

#[test]
fn invalid_utf8_inside_compressed_text_fails_with_1007() {
    let mut compressor = Compressor::new(15, false);
    let mut payload = Vec::new();
    compressor.compress(&[b'o', b'k', 0xFF], true, &mut payload);
    let (_, mut server) = pair(15, false);
    let mut client = Connection::new(Role::Client, Config::default());
    client.writer.write_frame(
        crate::frame::OpCode::Text,
        &payload,
        true,
        crate::frame::RSV1,
    );
    assert_eq!(
        fail(&mut server, &client.take_output()),
        ProtocolError::InvalidUtf8
    );
}

#[test]
fn corrupt_compressed_data_fails_the_connection() {
    let (_, mut server) = pair(15, false);
    let error = fail(&mut server, &client_frame(0xC2, &[0xFF, 0xFF, 0xFF, 0xFF]));
    assert!(matches!(error, ProtocolError::Extension(_)), "{error}");
}

#[test]
fn the_inflated_size_limit_counts_each_compressed_message_afresh() {
    let limit = 1000;
    for delivery in [Delivery::Messages, Delivery::Frames, Delivery::Pieces] {
        let p = params(15, false);
        let mut client = Connection::with_deflate(Role::Client, Config::default(), p);
        let config = Config::default().max_message_size(limit);
        let mut server = Connection::with_deflate(Role::Server, config, p);
        for round in 0..3u8 {
            client
                .send_fragment(MessageKind::Binary, &[round; 400], false)
                .unwrap();
            client
                .send_fragment(MessageKind::Binary, &[round; 400], true)
                .unwrap();
            let received: Vec<u8> = deliver(&mut client, &mut server, delivery)
                .into_iter()
                .flat_map(|event| match event {
                    Event::Message(Message::Binary(data)) | Event::Fragment { data, .. } => data,
                    other => panic!("unexpected {other:?}"),
                })
                .collect();
            assert_eq!(received, vec![round; 800], "{delivery:?}");
        }
        client
            .send_fragment(MessageKind::Binary, &[9; 600], false)
            .unwrap();
        client
            .send_fragment(MessageKind::Binary, &[9; 600], true)
            .unwrap();
        let mut input = BytesMut::from(&client.take_output()[..]);
        let error = loop {
            match server.read_event(&mut input, delivery) {
                Ok(Some(_)) => {}
                Ok(None) => panic!("{delivery:?}: the limit was not enforced"),
                Err(error) => break error,
            }
        };
        assert_eq!(
            error,
            ProtocolError::MessageTooBig { limit },
            "{delivery:?}"
        );
    }
}
