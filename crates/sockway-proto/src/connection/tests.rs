//! State machine behaviour, table-driven where the RFC gives a table.

use bytes::{Bytes, BytesMut};

use super::*;
use crate::error::SendError;
use crate::frame::{FrameHeader, OpCode, MAX_HEADER_LEN};
use crate::mask::apply_mask;

/// A raw frame as a client would send it (masked), with any header bits the test wants.
pub(super) fn raw(fin: bool, rsv: u8, opcode_bits: u8, payload: &[u8]) -> Vec<u8> {
    let key = [0x37, 0xfa, 0x21, 0x3d];
    let mut out = vec![(u8::from(fin) << 7) | (rsv << 4) | opcode_bits];
    let len = payload.len();
    if len < 126 {
        out.push(0x80 | len as u8);
    } else if len <= 0xFFFF {
        out.push(0x80 | 126);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(0x80 | 127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
    out.extend_from_slice(&key);
    let mut body = payload.to_vec();
    apply_mask(&mut body, key, 0);
    out.extend_from_slice(&body);
    out
}

pub(super) fn server() -> Connection {
    Connection::new(Role::Server, Config::default())
}

/// Feeds `bytes` and collects events until more input is needed or an error occurs.
fn feed(
    conn: &mut Connection,
    bytes: &[u8],
    delivery: Delivery,
) -> (Vec<Event>, Option<ProtocolError>) {
    let mut input = BytesMut::from(bytes);
    let mut events = Vec::new();
    loop {
        match conn.read_event(&mut input, delivery) {
            Ok(Some(event)) => events.push(event),
            Ok(None) => return (events, None),
            Err(error) => return (events, Some(error)),
        }
    }
}

/// The close code of the close frame a server queued, read back through a client.
pub(super) fn queued_close_code(conn: &mut Connection) -> Option<CloseCode> {
    let out = conn.take_output();
    let mut client = Connection::new(Role::Client, Config::default());
    let (events, _) = feed(&mut client, &out, Delivery::Messages);
    events.into_iter().find_map(|e| match e {
        Event::Close(frame) => Some(frame.map_or(CloseCode::NO_STATUS, |f| f.code)),
        _ => None,
    })
}

#[test]
fn violations_fail_with_their_close_codes() {
    let long = [0u8; 126];
    let cases: Vec<(&str, Vec<u8>, CloseCode)> = vec![
        (
            "rsv1 without extension",
            raw(true, 0b100, 1, b"x"),
            CloseCode::PROTOCOL_ERROR,
        ),
        ("rsv2", raw(true, 0b010, 2, b""), CloseCode::PROTOCOL_ERROR),
        ("rsv3", raw(true, 0b001, 9, b""), CloseCode::PROTOCOL_ERROR),
        (
            "reserved data opcode",
            raw(true, 0, 3, b""),
            CloseCode::PROTOCOL_ERROR,
        ),
        (
            "reserved control opcode",
            raw(true, 0, 0xB, b""),
            CloseCode::PROTOCOL_ERROR,
        ),
        (
            "control frame over 125",
            raw(true, 0, 9, &long),
            CloseCode::PROTOCOL_ERROR,
        ),
        (
            "fragmented ping",
            raw(false, 0, 9, b""),
            CloseCode::PROTOCOL_ERROR,
        ),
        (
            "continuation without start",
            raw(true, 0, 0, b"x"),
            CloseCode::PROTOCOL_ERROR,
        ),
        (
            "new text inside fragmented",
            [raw(false, 0, 1, b"a"), raw(true, 0, 1, b"b")].concat(),
            CloseCode::PROTOCOL_ERROR,
        ),
        (
            "one-byte close",
            raw(true, 0, 8, &[3]),
            CloseCode::PROTOCOL_ERROR,
        ),
        (
            "close code 1005",
            raw(true, 0, 8, &[0x03, 0xED]),
            CloseCode::PROTOCOL_ERROR,
        ),
        (
            "close code 999",
            raw(true, 0, 8, &[0x03, 0xE7]),
            CloseCode::PROTOCOL_ERROR,
        ),
        (
            "close code 5000",
            raw(true, 0, 8, &[0x13, 0x88]),
            CloseCode::PROTOCOL_ERROR,
        ),
        (
            "close reason not utf-8",
            raw(true, 0, 8, &[0x03, 0xE8, 0xC0]),
            CloseCode::INVALID_PAYLOAD,
        ),
        (
            "text not utf-8",
            raw(true, 0, 1, &[0xCE, 0xBA, 0xFF]),
            CloseCode::INVALID_PAYLOAD,
        ),
        (
            "text ends mid-character",
            raw(true, 0, 1, &[0xCE]),
            CloseCode::INVALID_PAYLOAD,
        ),
        (
            "64-bit length top bit",
            vec![0x82, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 0],
            CloseCode::PROTOCOL_ERROR,
        ),
    ];
    for (name, bytes, code) in cases {
        let mut conn = server();
        let (_, error) = feed(&mut conn, &bytes, Delivery::Messages);
        let error = error.unwrap_or_else(|| panic!("{name}: no error"));
        assert_eq!(error.close_code(), code, "{name}: {error}");
        assert!(conn.is_closed(), "{name}");
        assert_eq!(queued_close_code(&mut conn), Some(code), "{name}");
    }
}

#[test]
fn unmasked_frames_fail_a_server_and_masked_frames_fail_a_client() {
    let mut conn = server();
    let (_, error) = feed(&mut conn, &[0x81, 0x01, b'a'], Delivery::Messages);
    assert_eq!(error, Some(ProtocolError::UnmaskedFrame));
    let mut client = Connection::new(Role::Client, Config::default());
    let (_, error) = feed(&mut client, &raw(true, 0, 1, b"a"), Delivery::Messages);
    assert_eq!(error, Some(ProtocolError::MaskedFrame));
}

#[test]
fn limits_fail_with_1009_as_soon_as_the_header_arrives() {
    let config = Config::default().max_frame_size(100).max_message_size(150);
    let mut conn = Connection::new(Role::Server, config.clone());
    let frame = raw(true, 0, 2, &[0; 101]);
    let (_, error) = feed(&mut conn, &frame[..8], Delivery::Messages);
    assert_eq!(
        error,
        Some(ProtocolError::FrameTooBig {
            size: 101,
            limit: 100
        })
    );
    let mut conn = Connection::new(Role::Server, config);
    let bytes = [raw(false, 0, 2, &[0; 100]), raw(true, 0, 0, &[0; 51])].concat();
    let (_, error) = feed(&mut conn, &bytes, Delivery::Messages);
    assert_eq!(error, Some(ProtocolError::MessageTooBig { limit: 150 }));
    assert_eq!(
        queued_close_code(&mut conn),
        Some(CloseCode::MESSAGE_TOO_BIG)
    );
}

#[test]
fn invalid_utf8_fails_fast_before_the_frame_completes() {
    let mut conn = server();
    let mut text = "κόσμε".as_bytes().to_vec();
    text.extend_from_slice(&[0xED, 0xA0, 0x80]);
    text.extend_from_slice(&[b'a'; 50]);
    let frame = raw(true, 0, 1, &text);
    let header_len = 6;
    let cut = header_len + "κόσμε".len() + 2;
    let (events, error) = feed(&mut conn, &frame[..cut], Delivery::Messages);
    assert!(events.is_empty());
    assert_eq!(error, Some(ProtocolError::InvalidUtf8));
}

#[test]
fn invalid_utf8_fails_fast_across_fragments() {
    let mut conn = server();
    let bytes = [
        raw(false, 0, 1, "κό".as_bytes()),
        raw(false, 0, 0, &[0xF4, 0x90]),
    ]
    .concat();
    let (_, error) = feed(&mut conn, &bytes, Delivery::Messages);
    assert_eq!(error, Some(ProtocolError::InvalidUtf8));
}

#[test]
fn fragments_with_interleaved_control_frames_assemble_into_one_message() {
    let mut conn = server();
    let bytes = [
        raw(false, 0, 1, "Hel".as_bytes()),
        raw(true, 0, 9, b"p1"),
        raw(false, 0, 0, b""),
        raw(true, 0, 10, b"unsolicited"),
        raw(true, 0, 0, "lo, wörld".as_bytes()),
    ]
    .concat();
    let (events, error) = feed(&mut conn, &bytes, Delivery::Messages);
    assert_eq!(error, None);
    assert_eq!(
        events,
        vec![
            Event::Ping("p1".into()),
            Event::Pong("unsolicited".into()),
            Event::Message(Message::text("Hello, wörld")),
        ]
    );
    let mut client = Connection::new(Role::Client, Config::default());
    let (events, _) = feed(&mut client, &conn.take_output(), Delivery::Messages);
    assert_eq!(
        events,
        vec![Event::Pong("p1".into())],
        "every ping is answered with its payload"
    );
}

#[test]
fn a_stream_split_at_every_byte_yields_the_same_events() {
    let bytes = [
        raw(true, 0, 2, &[7; 300]),
        raw(false, 0, 1, "ab".as_bytes()),
        raw(true, 0, 9, b""),
        raw(true, 0, 0, "çd".as_bytes()),
        raw(true, 0, 1, &[b'z'; 70_000]),
        raw(true, 0, 8, &[0x03, 0xE8, b'o', b'k']),
    ]
    .concat();
    let (whole, error) = feed(&mut server(), &bytes, Delivery::Messages);
    assert_eq!(error, None);
    assert_eq!(whole.len(), 5);
    for chunk in [1, 2, 3, 5, 7, 13, 64, 1000] {
        let mut conn = server();
        let mut input = BytesMut::new();
        let mut events = Vec::new();
        for piece in bytes.chunks(chunk) {
            input.extend_from_slice(piece);
            while let Some(event) = conn.read_event(&mut input, Delivery::Messages).unwrap() {
                events.push(event);
            }
        }
        assert_eq!(events, whole, "chunk {chunk}");
    }
}

#[test]
fn fragment_delivery_hands_out_partial_frames_and_marks_the_end() {
    let mut conn = server();
    let frame = raw(true, 0, 2, &[9; 1000]);
    let mut input = BytesMut::from(&frame[..500]);
    let first = conn.read_event(&mut input, Delivery::Pieces).unwrap();
    let Some(Event::Fragment {
        data,
        end_of_message: false,
        kind: MessageKind::Binary,
    }) = first
    else {
        panic!("{first:?}")
    };
    assert_eq!(data.len(), 500 - 8);
    assert!(
        data.iter().all(|&b| b == 9),
        "partial payloads are unmasked with the right offset"
    );
    input.extend_from_slice(&frame[500..]);
    let rest = conn.read_event(&mut input, Delivery::Pieces).unwrap();
    let Some(Event::Fragment {
        data,
        end_of_message: true,
        ..
    }) = rest
    else {
        panic!("{rest:?}")
    };
    assert_eq!(data.len(), 1000 - 492);
    assert!(data.iter().all(|&b| b == 9));
}

#[test]
fn frame_delivery_waits_for_whole_frames() {
    let mut conn = server();
    let bytes = [raw(false, 0, 2, &[1; 300]), raw(true, 0, 0, &[2; 10])].concat();
    let mut input = BytesMut::from(&bytes[..200]);
    assert_eq!(conn.read_event(&mut input, Delivery::Frames).unwrap(), None);
    input.extend_from_slice(&bytes[200..]);
    let first = conn.read_event(&mut input, Delivery::Frames).unwrap();
    assert_eq!(
        first,
        Some(Event::Fragment {
            kind: MessageKind::Binary,
            data: vec![1; 300].into(),
            end_of_message: false
        })
    );
    let second = conn.read_event(&mut input, Delivery::Frames).unwrap();
    assert_eq!(
        second,
        Some(Event::Fragment {
            kind: MessageKind::Binary,
            data: vec![2; 10].into(),
            end_of_message: true
        })
    );
}

#[test]
fn close_from_the_peer_is_answered_with_the_same_code_and_later_data_ignored() {
    let mut conn = server();
    let bytes = [
        raw(true, 0, 8, &[0x0B, 0xB8, b'x']),
        raw(true, 0, 1, b"late"),
        vec![0xFF, 0xFF],
    ]
    .concat();
    let (events, error) = feed(&mut conn, &bytes, Delivery::Messages);
    assert_eq!(error, None);
    assert_eq!(
        events,
        vec![Event::Close(Some(CloseFrame::new(CloseCode(3000), "x")))]
    );
    assert!(conn.is_closed());
    assert_eq!(conn.close_status(), Some(CloseCode(3000)));
    assert_eq!(queued_close_code(&mut conn), Some(CloseCode(3000)));
    assert_eq!(conn.send_text("no"), Err(SendError::Closed));
}

#[test]
fn an_empty_close_is_answered_with_an_empty_close_and_reports_1005() {
    let mut conn = server();
    let (events, _) = feed(&mut conn, &raw(true, 0, 8, b""), Delivery::Messages);
    assert_eq!(events, vec![Event::Close(None)]);
    assert_eq!(conn.close_status(), Some(CloseCode::NO_STATUS));
    assert_eq!(conn.output(), &[0x88, 0x00]);
}

#[test]
fn local_close_waits_for_the_reply_and_still_receives_data() {
    let mut conn = server();
    conn.close(CloseCode::GOING_AWAY, "bye").unwrap();
    assert_eq!(conn.state(), ConnectionState::CloseSent);
    assert_eq!(conn.send_binary(b"x"), Err(SendError::Closed));
    assert_eq!(conn.close(CloseCode::NORMAL, ""), Err(SendError::Closed));
    let before = conn.output().len();
    let bytes = [
        raw(true, 0, 1, b"still"),
        raw(true, 0, 9, b""),
        raw(true, 0, 8, &[0x03, 0xE9]),
    ]
    .concat();
    let (events, _) = feed(&mut conn, &bytes, Delivery::Messages);
    assert_eq!(events[0], Event::Message(Message::text("still")));
    assert_eq!(
        conn.output().len(),
        before,
        "no pong and no second close after sending close"
    );
    assert!(conn.is_closed());
    assert_eq!(conn.close_status(), Some(CloseCode::GOING_AWAY));
}

#[test]
fn client_and_server_exchange_messages_and_fragments() {
    let mut client = Connection::new(Role::Client, Config::default());
    let mut server = server();
    client.send_text("hi").unwrap();
    client
        .send_fragment(MessageKind::Text, &[0xC3], false)
        .unwrap();
    client.send_ping(b"p").unwrap();
    client
        .send_fragment(MessageKind::Text, &[0xA9], true)
        .unwrap();
    client.send_binary(&[1, 2, 3]).unwrap();
    let (events, error) = feed(&mut server, &client.take_output(), Delivery::Messages);
    assert_eq!(error, None);
    assert_eq!(
        events,
        vec![
            Event::Message(Message::text("hi")),
            Event::Ping("p".into()),
            Event::Message(Message::text("é")),
            Event::Message(Message::binary(vec![1, 2, 3])),
        ]
    );
}

#[test]
fn sending_refuses_what_the_protocol_forbids() {
    let mut conn = server();
    assert_eq!(
        conn.send_ping(&[0; 126]),
        Err(SendError::ControlPayloadTooLong)
    );
    assert_eq!(
        conn.close(CloseCode::ABNORMAL, ""),
        Err(SendError::InvalidCloseCode(1006))
    );
    conn.send_fragment(MessageKind::Binary, b"a", false)
        .unwrap();
    assert_eq!(conn.send_text("x"), Err(SendError::MessageInProgress));
    assert_eq!(
        conn.send_fragment(MessageKind::Text, b"x", true),
        Err(SendError::MessageInProgress)
    );
    assert_eq!(
        conn.send_fragment(MessageKind::Text, &[0xFF], true),
        Err(SendError::MessageInProgress)
    );
    conn.send_fragment(MessageKind::Binary, b"b", true).unwrap();
    assert_eq!(
        conn.send_fragment(MessageKind::Text, &[0xFF], true),
        Err(SendError::InvalidUtf8)
    );
}

#[test]
fn server_frames_are_unmasked_and_client_frames_masked() {
    let mut server = server();
    server.send_binary(b"abc").unwrap();
    assert_eq!(server.output(), &[0x82, 0x03, b'a', b'b', b'c']);
    let mut client = Connection::new(Role::Client, Config::default());
    client.send_binary(b"abc").unwrap();
    let (header, len) = FrameHeader::parse(client.output()).unwrap().unwrap();
    assert_eq!(len, 6);
    assert!(header.mask.is_some());
    let _ = MAX_HEADER_LEN;
    let _ = OpCode::Text;
}

#[test]
fn eof_before_the_close_handshake_is_abnormal() {
    let mut conn = server();
    assert!(!conn.receive_eof());
    assert_eq!(conn.close_status(), Some(CloseCode::ABNORMAL));
}

#[test]
fn pings_against_a_backed_up_output_are_coalesced_into_one_pong() {
    let mut conn = server();
    conn.send_binary(&vec![0u8; 100 * 1024]).unwrap();
    let backlog = conn.output().len();
    let pings: Vec<u8> = (0..1000u32)
        .flat_map(|i| raw(true, 0, 9, &i.to_be_bytes()))
        .collect();
    let (events, error) = feed(&mut conn, &pings, Delivery::Messages);
    assert_eq!((events.len(), error), (1000, None));
    assert_eq!(
        conn.output().len(),
        backlog,
        "nothing queued while backed up"
    );
    conn.advance_output(backlog);
    let mut client = Connection::new(Role::Client, Config::default());
    let (events, _) = feed(&mut client, &conn.take_output(), Delivery::Messages);
    assert_eq!(
        events,
        vec![Event::Pong(999u32.to_be_bytes().to_vec().into())],
        "only the latest ping is answered"
    );
}

#[test]
fn large_server_payloads_are_queued_without_copying_and_leave_in_order() {
    let payload = Bytes::from(vec![7u8; 10_000]);
    let queue_all = |conn: &mut Connection| {
        conn.send_text("a").unwrap();
        conn.send(&Message::binary(payload.clone())).unwrap();
        conn.send_ping(b"p").unwrap();
    };
    let mut copying = server();
    queue_all(&mut copying);
    let expected = copying.take_output();
    let mut sharing = server();
    sharing.set_vectored_output(true);
    queue_all(&mut sharing);

    // Three runs: the text frame and the binary frame's header, the payload itself, the ping.
    {
        let mut slices = [std::io::IoSlice::new(&[]); 8];
        let runs = sharing.output_slices(&mut slices);
        assert_eq!(runs, 3);
        assert_eq!(slices[1].as_ptr(), payload.as_ptr());
        let joined: Vec<u8> = slices[..runs].iter().flat_map(|s| s.to_vec()).collect();
        assert_eq!(joined, expected[..]);
    }
    assert_eq!(sharing.output_len(), expected.len());

    // Drained run by run in uneven steps, then across runs in one step.
    let mut drained = Vec::new();
    while sharing.has_output() {
        let step = sharing.output().len().min(3000);
        drained.extend_from_slice(&sharing.output()[..step]);
        sharing.advance_output(step);
    }
    assert_eq!(drained, expected[..]);
    queue_all(&mut sharing);
    sharing.advance_output(expected.len() - 5);
    // The payload's last two bytes, then the ping frame's run.
    assert_eq!(sharing.output_len(), 5);
    assert_eq!(
        sharing.output(),
        &expected[expected.len() - 5..expected.len() - 3]
    );
    sharing.advance_output(5);
    assert!(!sharing.has_output());

    // `take_output` joins the runs; a client masks its frames, so it always copies.
    queue_all(&mut sharing);
    assert_eq!(sharing.take_output(), expected);
    let mut client = Connection::new(Role::Client, Config::default());
    client.set_vectored_output(true);
    client.send(&Message::binary(payload.clone())).unwrap();
    let mut slices = [std::io::IoSlice::new(&[]); 8];
    assert_eq!(client.output_slices(&mut slices), 1);
}

#[test]
fn idle_output_room_is_released_once_all_is_sent() {
    let mut conn = server();
    conn.send(&Message::Binary(Bytes::from(vec![7u8; 2048])))
        .unwrap();
    conn.release_idle_output(256);
    assert!(
        conn.writer.held().0 >= 2048,
        "unsent output is never released"
    );
    let n = conn.output_len();
    conn.advance_output(n);
    conn.release_idle_output(256);
    assert_eq!(conn.writer.held(), (0, 0));
    conn.send(&Message::Binary(Bytes::from_static(b"again")))
        .unwrap();
    assert_eq!(
        conn.output_len(),
        7,
        "sending after a release works as before"
    );
}

#[test]
fn switching_from_messages_to_frames_hands_out_what_was_held_first() {
    let mut conn = server();
    let mut input = BytesMut::new();
    input.extend_from_slice(&raw(false, 0, 0x2, b"ab"));
    input.extend_from_slice(&raw(false, 0, 0x0, b"cd"));
    assert_eq!(conn.read_event(&mut input, Delivery::Messages), Ok(None));
    assert!(!conn.message_handed_out());
    input.extend_from_slice(&raw(true, 0, 0x0, b"ef"));
    let fragment = |data: &'static [u8], end_of_message| Event::Fragment {
        kind: MessageKind::Binary,
        data: Bytes::from_static(data),
        end_of_message,
    };
    assert_eq!(
        conn.read_event(&mut input, Delivery::Frames),
        Ok(Some(fragment(b"abcd", false)))
    );
    assert!(conn.message_handed_out());
    assert_eq!(
        conn.read_event(&mut input, Delivery::Frames),
        Ok(Some(fragment(b"ef", true)))
    );
    assert!(!conn.message_handed_out());
}

#[test]
fn a_piece_handed_out_mid_message_is_remembered_until_the_message_ends() {
    let mut conn = server();
    let mut input = BytesMut::new();
    input.extend_from_slice(&raw(false, 0, 0x1, b"ab"));
    let first = conn.read_event(&mut input, Delivery::Pieces).unwrap();
    assert!(matches!(first, Some(Event::Fragment { .. })));
    assert!(conn.message_handed_out());
    input.extend_from_slice(&raw(true, 0, 0x0, b"c"));
    let last = conn.read_event(&mut input, Delivery::Pieces).unwrap();
    assert!(matches!(
        last,
        Some(Event::Fragment {
            end_of_message: true,
            ..
        })
    ));
    assert!(!conn.message_handed_out());
}

#[test]
fn an_output_buffer_is_traded_only_while_no_output_waits() {
    let mut conn = server();
    let mut lent = BytesMut::with_capacity(4096);
    lent.extend_from_slice(b"HTTP/1.1 101 ...\r\n\r\n");
    assert!(conn.trade_output_buffer(&mut lent));
    assert_eq!(lent.capacity(), 0, "the connection's own buffer came back");
    conn.send_binary(b"hi").unwrap();
    assert_eq!(conn.output(), b"HTTP/1.1 101 ...\r\n\r\n\x82\x02hi");
    let mut other = BytesMut::new();
    assert!(!conn.trade_output_buffer(&mut other), "output waits");
    let n = conn.output_len();
    conn.advance_output(n);
    assert!(conn.trade_output_buffer(&mut lent));
    assert!(lent.is_empty() && lent.capacity() >= 4000);
    assert_eq!(conn.output_len(), 0);
}

#[test]
fn pieces_of_a_masked_frame_unmask_at_every_split() {
    let payload: Vec<u8> = (0..=255u8).cycle().take(1000).collect();
    let bytes = raw(true, 0, 0x2, &payload);
    for step in [1, 2, 3, 5, 7, 64, 333] {
        let mut conn = server();
        let mut input = BytesMut::new();
        let mut got = Vec::new();
        for chunk in bytes.chunks(step) {
            input.extend_from_slice(chunk);
            while let Some(event) = conn.read_event(&mut input, Delivery::Pieces).unwrap() {
                let Event::Fragment { data, .. } = event else {
                    panic!("unexpected {event:?}");
                };
                got.extend_from_slice(&data);
            }
        }
        assert_eq!(got, payload, "split every {step} bytes");
    }
}
