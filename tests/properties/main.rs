//! Property tests of the sans-I/O core (`sockway_proto::Connection`), in both roles:
//!
//! - **splitting**: a byte stream cut at arbitrary boundaries yields the same events as the
//!   whole stream (whole messages and frame by frame), and pieces that concatenate to the same
//!   messages;
//! - **round trip**: what one role's `send`/`send_fragment` writes, the other role's
//!   `read_event` reads back identically (messages, and fragments with their boundaries);
//! - **interleaving**: pings and pongs between the fragments of messages leave every message
//!   intact, are reported in order, and every ping is answered by a pong with the same payload,
//!   in order;
//! - **shared compressed frames**: a prepared frame sent, among a connection's own compressed
//!   messages, to deflating clients of every window, level and takeover mode reaches each
//!   intact (RFC 7692 sections 6 and 7.1.1).

use bytes::BytesMut;
use proptest::prelude::*;
use proptest::sample::Index;
use sockway_proto::connection::Delivery;
use sockway_proto::deflate::DeflateParams;
use sockway_proto::{Config, Connection, Event, Message, MessageKind, PreparedFrame, Role};

/// A control frame slipped between frames.
#[derive(Debug, Clone)]
enum Control {
    Ping(Vec<u8>),
    Pong(Vec<u8>),
}

/// A data message as it is sent: its fragments, and the control frames after each
/// non-final fragment.
#[derive(Debug, Clone)]
struct Sent {
    kind: MessageKind,
    fragments: Vec<Vec<u8>>,
    controls: Vec<Vec<Control>>,
    /// For a one-fragment message: send it with `send` rather than `send_fragment`.
    whole: bool,
}

impl Sent {
    fn payload(&self) -> Vec<u8> {
        self.fragments.concat()
    }

    fn message(&self) -> Message {
        let payload = self.payload();
        match self.kind {
            MessageKind::Text => {
                Message::text(String::from_utf8(payload).expect("generated as text"))
            }
            MessageKind::Binary => Message::binary(payload),
        }
    }
}

/// One thing on the wire: a message (with its interleaved controls) or a control frame.
#[derive(Debug, Clone)]
enum Item {
    Message(Sent),
    Control(Control),
}

fn control() -> impl Strategy<Value = Control> {
    let payload = prop::collection::vec(any::<u8>(), 0..=125);
    prop_oneof![
        payload.clone().prop_map(Control::Ping),
        payload.prop_map(Control::Pong),
    ]
}

/// Payload bytes: mostly small, sometimes past the 16-bit and 64-bit length thresholds.
fn binary_payload() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        6 => prop::collection::vec(any::<u8>(), 0..300),
        1 => (126usize..70_000, any::<u32>())
            .prop_map(|(len, seed)| sockway_tests::payload::bytes(len, seed)),
    ]
}

/// Payload bytes that deflate shrinks (a short random run repeated) or, sometimes, does not.
fn compressible_payload() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        3 => (prop::collection::vec(any::<u8>(), 1..24), 0usize..3_000)
            .prop_map(|(run, times)| run.repeat(times)),
        1 => binary_payload(),
    ]
}

/// Text: arbitrary characters (so fragment cuts fall inside multibyte ones), sometimes long.
fn text_payload() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        6 => prop::collection::vec(any::<char>(), 0..80)
            .prop_map(|chars| chars.into_iter().collect::<String>().into_bytes()),
        1 => (126usize..70_000).prop_map(|len| sockway_tests::payload::text(len).into_bytes()),
    ]
}

/// Cuts `data` at the given points (repeated points make empty fragments).
fn cut(data: &[u8], points: &[Index]) -> Vec<Vec<u8>> {
    let mut at: Vec<usize> = points.iter().map(|i| i.index(data.len() + 1)).collect();
    at.sort_unstable();
    let mut fragments = Vec::with_capacity(at.len() + 1);
    let mut start = 0;
    for end in at {
        fragments.push(data[start..end].to_vec());
        start = end;
    }
    fragments.push(data[start..].to_vec());
    fragments
}

fn sent(with_controls: bool) -> impl Strategy<Value = Sent> {
    let kind = prop_oneof![Just(MessageKind::Text), Just(MessageKind::Binary)];
    let max_controls = if with_controls { 3 } else { 0 };
    (
        kind,
        prop::collection::vec(any::<Index>(), 0..6),
        any::<bool>(),
    )
        .prop_flat_map(move |(kind, points, whole)| {
            let data = match kind {
                MessageKind::Text => text_payload().boxed(),
                MessageKind::Binary => binary_payload().boxed(),
            };
            let gaps = points.len();
            let controls =
                prop::collection::vec(prop::collection::vec(control(), 0..=max_controls), gaps);
            (data, controls).prop_map(move |(data, controls)| Sent {
                kind,
                fragments: cut(&data, &points),
                controls,
                whole,
            })
        })
}

fn items(with_controls: bool) -> impl Strategy<Value = Vec<Item>> {
    let item = if with_controls {
        prop_oneof![
            3 => sent(true).prop_map(Item::Message),
            1 => control().prop_map(Item::Control),
        ]
        .boxed()
    } else {
        sent(false).prop_map(Item::Message).boxed()
    };
    prop::collection::vec(item, 1..6)
}

fn send_control(conn: &mut Connection, control: &Control) {
    match control {
        Control::Ping(p) => conn.send_ping(p).expect("ping"),
        Control::Pong(p) => conn.send_pong(p).expect("pong"),
    }
}

/// Writes `items` as `role` would and returns the bytes.
fn encode(conn: &mut Connection, items: &[Item]) -> BytesMut {
    for item in items {
        match item {
            Item::Control(c) => send_control(conn, c),
            Item::Message(m) if m.whole && m.fragments.len() == 1 => {
                conn.send(&m.message()).expect("send")
            }
            Item::Message(m) => {
                let last = m.fragments.len() - 1;
                for (i, fragment) in m.fragments.iter().enumerate() {
                    conn.send_fragment(m.kind, fragment, i == last)
                        .expect("send_fragment");
                    for c in m.controls.get(i).into_iter().flatten() {
                        send_control(conn, c);
                    }
                }
            }
        }
    }
    conn.take_output()
}

/// The events a receiver must report with [`Delivery::Messages`].
fn expected_events(items: &[Item]) -> Vec<Event> {
    let control_event = |c: &Control| match c {
        Control::Ping(p) => Event::Ping(p.clone().into()),
        Control::Pong(p) => Event::Pong(p.clone().into()),
    };
    let mut events = Vec::new();
    for item in items {
        match item {
            Item::Control(c) => events.push(control_event(c)),
            Item::Message(m) => {
                events.extend(m.controls.iter().flatten().map(control_event));
                events.push(Event::Message(m.message()));
            }
        }
    }
    events
}

/// The pings in wire order.
fn pings(items: &[Item]) -> Vec<Vec<u8>> {
    let ping = |c: &Control| match c {
        Control::Ping(p) => Some(p.clone()),
        Control::Pong(_) => None,
    };
    items
        .iter()
        .flat_map(|item| match item {
            Item::Control(c) => ping(c).into_iter().collect::<Vec<_>>(),
            Item::Message(m) => m.controls.iter().flatten().filter_map(ping).collect(),
        })
        .collect()
}

/// Feeds `bytes` to `conn` in chunks cut at `cuts` and collects every event.
fn feed(conn: &mut Connection, bytes: &[u8], cuts: &[Index], delivery: Delivery) -> Vec<Event> {
    let mut at: Vec<usize> = cuts.iter().map(|i| i.index(bytes.len() + 1)).collect();
    at.push(bytes.len());
    at.sort_unstable();
    let mut input = BytesMut::new();
    let mut events = Vec::new();
    let mut start = 0;
    for end in at {
        input.extend_from_slice(&bytes[start..end]);
        start = end;
        while let Some(event) = conn.read_event(&mut input, delivery).expect("valid input") {
            events.push(event);
        }
    }
    assert!(input.is_empty(), "{} bytes left unread", input.len());
    events
}

fn peer_of(role: Role) -> Role {
    match role {
        Role::Client => Role::Server,
        Role::Server => Role::Client,
    }
}

/// Frame-delivery events, with the empty non-final fragments (which produce no event)
/// dropped from what was sent.
fn expected_fragments(items: &[Item]) -> Vec<(MessageKind, Vec<u8>, bool)> {
    let mut out = Vec::new();
    for item in items {
        if let Item::Message(m) = item {
            let last = m.fragments.len() - 1;
            for (i, f) in m.fragments.iter().enumerate() {
                if i == last || !f.is_empty() {
                    out.push((m.kind, f.clone(), i == last));
                }
            }
        }
    }
    out
}

fn fragments_of(events: Vec<Event>) -> Vec<(MessageKind, Vec<u8>, bool)> {
    events
        .into_iter()
        .filter_map(|e| match e {
            Event::Fragment {
                kind,
                data,
                end_of_message,
            } => Some((kind, data.to_vec(), end_of_message)),
            _ => None,
        })
        .collect()
}

/// Joins piece events into whole messages (kind and bytes).
fn join_pieces(events: Vec<Event>) -> Vec<(MessageKind, Vec<u8>)> {
    let mut messages = Vec::new();
    let mut current: Option<(MessageKind, Vec<u8>)> = None;
    for (kind, data, end) in fragments_of(events) {
        let entry = current.get_or_insert_with(|| (kind, Vec::new()));
        assert_eq!(entry.0, kind, "kind changed inside a message");
        entry.1.extend_from_slice(&data);
        if end {
            messages.extend(current.take());
        }
    }
    assert!(current.is_none(), "a message did not end");
    messages
}

fn roles() -> impl Strategy<Value = Role> {
    prop_oneof![Just(Role::Client), Just(Role::Server)]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    /// Any split of the stream gives the same events as no split, in every delivery mode.
    #[test]
    fn splitting_the_stream_changes_nothing(
        sender in roles(),
        items in items(true),
        cuts in prop::collection::vec(any::<Index>(), 0..40),
    ) {
        let bytes = encode(&mut Connection::new(sender, Config::default()), &items);
        let receiver = peer_of(sender);
        let new = || Connection::new(receiver, Config::default());
        let whole = feed(&mut new(), &bytes, &[], Delivery::Messages);
        prop_assert_eq!(&whole, &expected_events(&items));
        prop_assert_eq!(&feed(&mut new(), &bytes, &cuts, Delivery::Messages), &whole);
        let frames = feed(&mut new(), &bytes, &[], Delivery::Frames);
        prop_assert_eq!(&feed(&mut new(), &bytes, &cuts, Delivery::Frames), &frames);
        let messages: Vec<(MessageKind, Vec<u8>)> = whole
            .iter()
            .filter_map(|e| match e {
                Event::Message(m) => Some((m.kind(), m.as_bytes().to_vec())),
                _ => None,
            })
            .collect();
        let pieces = feed(&mut new(), &bytes, &cuts, Delivery::Pieces);
        prop_assert_eq!(join_pieces(pieces), messages);
    }

    /// What one role sends, the other reads back identically: whole messages, and fragments
    /// with their boundaries and end-of-message flags.
    #[test]
    fn send_then_read_is_identity(sender in roles(), items in items(false)) {
        let bytes = encode(&mut Connection::new(sender, Config::default()), &items);
        let receiver = peer_of(sender);
        let messages = feed(&mut Connection::new(receiver, Config::default()), &bytes, &[], Delivery::Messages);
        prop_assert_eq!(messages, expected_events(&items));
        let frames = feed(&mut Connection::new(receiver, Config::default()), &bytes, &[], Delivery::Frames);
        prop_assert_eq!(fragments_of(frames), expected_fragments(&items));
    }

    /// Control frames between fragments: messages stay intact, controls are reported in order,
    /// and each ping gets a pong with its payload, in order.
    #[test]
    fn interleaved_pings_are_answered_in_order(
        sender in roles(),
        items in items(true),
        cuts in prop::collection::vec(any::<Index>(), 0..20),
    ) {
        let mut sending = Connection::new(sender, Config::default());
        let bytes = encode(&mut sending, &items);
        let mut receiving = Connection::new(peer_of(sender), Config::default());
        let events = feed(&mut receiving, &bytes, &cuts, Delivery::Messages);
        prop_assert_eq!(events, expected_events(&items));
        let answers = receiving.take_output();
        let pongs: Vec<Vec<u8>> = feed(&mut sending, &answers, &[], Delivery::Messages)
            .into_iter()
            .map(|e| match e {
                Event::Pong(p) => Ok(p.to_vec()),
                other => Err(format!("unexpected {other:?} in the answers")),
            })
            .collect::<Result<_, _>>()
            .map_err(TestCaseError::fail)?;
        prop_assert_eq!(pongs, pings(&items));
    }

    /// One prepared frame sent to servers of any agreed window, level and takeover mode,
    /// between each one's own compressed messages: every client reads every message intact,
    /// whichever server compressed the shared form first.
    #[test]
    fn a_prepared_frame_reaches_every_deflating_client_intact(
        shared in compressible_payload(),
        own in compressible_payload(),
        servers in prop::collection::vec((8u8..=15, 0u8..=9, any::<bool>()), 1..5),
    ) {
        let prepared = PreparedFrame::binary(&shared);
        for (window, level, reset) in servers {
            let server_params = DeflateParams {
                local_max_window_bits: window,
                local_no_context_takeover: reset,
                remote_no_context_takeover: false,
                local_compression_level: level,
            };
            let client_params = DeflateParams {
                local_max_window_bits: 15,
                local_no_context_takeover: false,
                remote_no_context_takeover: reset,
                local_compression_level: 1,
            };
            let mut server = Connection::with_deflate(Role::Server, Config::default(), server_params);
            let mut client = Connection::with_deflate(Role::Client, Config::default(), client_params);
            server.send(&Message::binary(own.clone())).unwrap();
            server.send_prepared(&prepared).unwrap();
            server.send(&Message::binary(own.clone())).unwrap();
            let bytes = server.take_output();
            let events = feed(&mut client, &bytes, &[], Delivery::Messages);
            let expected: Vec<Event> = [&own, &shared, &own]
                .into_iter()
                .map(|payload| Event::Message(Message::binary(payload.clone())))
                .collect();
            prop_assert_eq!(events, expected, "window {} level {} reset {}", window, level, reset);
        }
    }
}
