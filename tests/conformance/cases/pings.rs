//! Pings and pongs (RFC 6455 sections 5.5.2 and 5.5.3): a ping is answered by a pong with the
//! same payload, in order; a pong nobody asked for is ignored; control frames carry at most
//! 125 bytes and are never fragmented.

use sockway_tests::frame::{Event, Frame};
use sockway_tests::payload;

use super::{then_close, Case};
use crate::script::{closed, expect, fails_fast, send, send_all, send_bytewise, send_header};

const SECTION: &str = "pings";

/// The cases of this section.
pub fn cases() -> Vec<Case> {
    let mut cases = Vec::new();
    let answered = |id: &str, description: &str, data: Vec<u8>| {
        Case::new(
            SECTION,
            id,
            description,
            then_close(vec![
                send(Frame::ping(data.clone())),
                expect(Event::Pong(data)),
            ]),
        )
    };
    cases.push(answered(
        "empty",
        "empty ping gets an empty pong",
        Vec::new(),
    ));
    cases.push(answered(
        "text-payload",
        "ping with a short text payload gets a pong with the same payload",
        b"Hello, world!".to_vec(),
    ));
    cases.push(answered(
        "binary-125",
        "ping with 125 bytes of binary payload (the maximum) gets the same pong",
        payload::bytes(125, 9),
    ));
    cases.push(Case::new(
        SECTION,
        "binary-125-chopped",
        "125-byte ping sent one byte per write gets the same pong",
        then_close(vec![
            send_bytewise(vec![Frame::ping(payload::bytes(125, 10))]),
            expect(Event::Pong(payload::bytes(125, 10))),
        ]),
    ));
    cases.push(Case::new(
        SECTION,
        "ping-126",
        "ping with 126 bytes of payload fails with 1002",
        vec![send(Frame::ping(vec![b'p'; 126])), closed(1002)],
    ));
    cases.push(Case::new(
        SECTION,
        "ping-126-header-only",
        "header of a 126-byte ping fails with 1002 before its payload",
        vec![
            send_header(Frame::ping(Vec::new()).declared_len(126)),
            fails_fast(1002),
        ],
    ));
    cases.push(Case::new(
        SECTION,
        "ping-64bit-length",
        "ping announcing 65536 bytes (64-bit length) fails with 1002 at once",
        vec![
            send_header(Frame::ping(Vec::new()).declared_len(65536)),
            fails_fast(1002),
        ],
    ));
    cases.push(Case::new(
        SECTION,
        "pong-126",
        "pong with 126 bytes of payload fails with 1002",
        vec![send(Frame::pong(vec![b'p'; 126])), closed(1002)],
    ));
    cases.push(Case::new(
        SECTION,
        "fragmented-ping",
        "ping without FIN, then a continuation, fails with 1002",
        vec![
            send_all(vec![Frame::ping("frag").fin(false), Frame::cont("mented")]),
            closed(1002),
        ],
    ));
    cases.push(Case::new(
        SECTION,
        "unsolicited-pong",
        "an unsolicited pong is ignored: the next message is echoed, nothing else",
        then_close(vec![
            send_all(vec![Frame::pong("unsolicited"), Frame::text("after")]),
            expect(Event::text("after")),
        ]),
    ));
    cases.push(Case::new(
        SECTION,
        "unsolicited-empty-pong",
        "an unsolicited empty pong is ignored",
        then_close(vec![
            send_all(vec![Frame::pong(Vec::new()), Frame::text("after")]),
            expect(Event::text("after")),
        ]),
    ));
    cases.push(Case::new(
        SECTION,
        "pong-wrong-payload",
        "a pong whose payload matches no ping is ignored",
        then_close(vec![
            send(Frame::ping("abc")),
            expect(Event::pong("abc")),
            send_all(vec![Frame::pong("xyz"), Frame::text("after")]),
            expect(Event::text("after")),
        ]),
    ));
    let pings: Vec<Frame> = (0..10).map(|i| Frame::ping(format!("ping-{i}"))).collect();
    let mut steps = vec![send_all(pings.clone())];
    steps.extend((0..10).map(|i| expect(Event::pong(format!("ping-{i}")))));
    cases.push(Case::new(
        SECTION,
        "ten-in-order",
        "10 pings in one write get 10 pongs, in order",
        then_close(steps.clone()),
    ));
    steps[0] = send_bytewise(pings);
    cases.push(Case::new(
        SECTION,
        "ten-chopped",
        "10 pings sent one byte per write get 10 pongs, in order",
        then_close(steps),
    ));
    cases.push(Case::new(
        SECTION,
        "between-messages",
        "a ping between two messages is answered between their echoes",
        then_close(vec![
            send_all(vec![
                Frame::text("one"),
                Frame::ping("between"),
                Frame::binary(vec![2]),
            ]),
            expect(Event::text("one")),
            expect(Event::pong("between")),
            expect(Event::binary([2])),
        ]),
    ));
    cases
}
