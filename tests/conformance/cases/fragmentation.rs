//! Fragmentation (RFC 6455 section 5.4): a message may come in any number of frames, empty
//! ones included, with control frames between them; continuation frames need an open
//! message, data frames must not start inside one, and control frames are never fragmented.

use std::time::Duration;

use sockway_tests::frame::{Event, Frame};
use sockway_tests::payload;

use super::{then_close, Case};
use crate::script::{closed, expect, send, send_all, send_bytewise, Step};

const SECTION: &str = "fragmentation";

/// Splits `data` into frames of at most `size` bytes: the first with `first` as its type,
/// the rest continuations, FIN on the last.
fn fragments(first: fn(Vec<u8>) -> Frame, data: &[u8], size: usize) -> Vec<Frame> {
    let chunks: Vec<&[u8]> = data.chunks(size.max(1)).collect();
    let last = chunks.len().saturating_sub(1);
    chunks
        .iter()
        .enumerate()
        .map(|(i, chunk)| {
            let frame = if i == 0 {
                first(chunk.to_vec())
            } else {
                Frame::cont(chunk.to_vec())
            };
            frame.fin(i == last)
        })
        .collect()
}

fn text(data: Vec<u8>) -> Frame {
    Frame::text(data)
}

fn binary(data: Vec<u8>) -> Frame {
    Frame::binary(data)
}

/// The cases of this section.
pub fn cases() -> Vec<Case> {
    let mut cases = Vec::new();
    let hello = b"Hello, fragmented world!".to_vec();
    cases.push(Case::new(
        SECTION,
        "text.two",
        "text in two fragments arrives as one message",
        then_close(vec![
            send_all(fragments(text, &hello, 12)),
            expect(Event::text(&hello)),
        ]),
    ));
    cases.push(Case::new(
        SECTION,
        "binary.two",
        "binary in two fragments arrives as one message",
        then_close(vec![
            send_all(fragments(binary, &hello, 12)),
            expect(Event::binary(&hello)),
        ]),
    ));
    cases.push(Case::new(
        SECTION,
        "text.one-byte-fragments",
        "text in one-byte fragments arrives as one message",
        then_close(vec![
            send_all(fragments(text, &hello, 1)),
            expect(Event::text(&hello)),
        ]),
    ));
    let big = payload::bytes(100 * 1000, 5);
    cases.push(Case::new(
        SECTION,
        "binary.hundred-fragments",
        "binary in 100 fragments of 1000 bytes arrives as one message",
        then_close(vec![
            send_all(fragments(binary, &big, 1000)),
            expect(Event::binary(&big)),
        ]),
    ));
    let mut steps = Vec::new();
    for frame in fragments(text, &hello, 8) {
        steps.push(send(frame));
        steps.push(Step::Pause(Duration::from_millis(5)));
    }
    steps.push(expect(Event::text(&hello)));
    cases.push(Case::new(
        SECTION,
        "text.separate-writes",
        "fragments sent in separate writes, a little apart, arrive as one message",
        then_close(steps),
    ));
    cases.push(Case::new(
        SECTION,
        "empty-fragments",
        "three empty fragments make one empty text message",
        then_close(vec![
            send_all(vec![
                Frame::text(Vec::new()).fin(false),
                Frame::cont(Vec::new()).fin(false),
                Frame::cont(Vec::new()),
            ]),
            expect(Event::text("")),
        ]),
    ));
    cases.push(Case::new(
        SECTION,
        "empty-first-and-last",
        "empty first and last fragments around data make one binary message",
        then_close(vec![
            send_all(vec![
                Frame::binary(Vec::new()).fin(false),
                Frame::cont(vec![1, 2, 3]).fin(false),
                Frame::cont(Vec::new()),
            ]),
            expect(Event::binary([1, 2, 3])),
        ]),
    ));
    let with_ping = vec![
        Frame::text("frag1").fin(false),
        Frame::ping("inside"),
        Frame::cont("frag2"),
    ];
    cases.push(Case::new(
        SECTION,
        "ping-inside",
        "a ping between fragments is answered, and the message stays intact",
        then_close(vec![
            send_all(with_ping.clone()),
            expect(Event::pong("inside")),
            expect(Event::text("frag1frag2")),
        ]),
    ));
    cases.push(Case::new(
        SECTION,
        "ping-inside-chopped",
        "the same, sent one byte per write",
        then_close(vec![
            send_bytewise(with_ping),
            expect(Event::pong("inside")),
            expect(Event::text("frag1frag2")),
        ]),
    ));
    cases.push(Case::new(
        SECTION,
        "pings-inside-in-order",
        "several pings between fragments are answered in order before the message",
        then_close(vec![
            send_all(vec![
                Frame::binary(vec![1]).fin(false),
                Frame::ping("p1"),
                Frame::ping("p2"),
                Frame::cont(vec![2]).fin(false),
                Frame::ping("p3"),
                Frame::cont(vec![3]),
            ]),
            expect(Event::pong("p1")),
            expect(Event::pong("p2")),
            expect(Event::pong("p3")),
            expect(Event::binary([1, 2, 3])),
        ]),
    ));
    cases.push(Case::new(
        SECTION,
        "ping-answered-mid-message",
        "a ping inside a fragmented message is answered at once, before the message ends",
        then_close(vec![
            send(Frame::text("first ").fin(false)),
            send(Frame::ping("now")),
            expect(Event::pong("now")),
            send(Frame::cont("second ").fin(false)),
            send(Frame::ping("again")),
            expect(Event::pong("again")),
            send(Frame::cont("third")),
            expect(Event::text("first second third")),
        ]),
    ));
    cases.push(Case::new(
        SECTION,
        "pong-inside",
        "an unsolicited pong between fragments is ignored",
        then_close(vec![
            send_all(vec![
                Frame::text("a").fin(false),
                Frame::pong("ignored"),
                Frame::cont("b"),
            ]),
            expect(Event::text("ab")),
        ]),
    ));
    cases.push(Case::new(
        SECTION,
        "continuation-first",
        "a final continuation frame with no message to continue fails with 1002",
        vec![send(Frame::cont("orphan")), closed(1002)],
    ));
    cases.push(Case::new(
        SECTION,
        "continuation-first-unfinished",
        "a non-final continuation frame with no message to continue fails with 1002",
        vec![
            send_all(vec![Frame::cont("orphan").fin(false), Frame::cont("end")]),
            closed(1002),
        ],
    ));
    cases.push(Case::new(
        SECTION,
        "continuation-after-message",
        "a message is echoed, then a continuation after its final frame fails with 1002",
        vec![
            send_all(vec![Frame::text("done"), Frame::cont("more")]),
            expect(Event::text("done")),
            closed(1002),
        ],
    ));
    cases.push(Case::new(
        SECTION,
        "text-inside-text",
        "a new text frame inside a fragmented message fails with 1002",
        vec![
            send_all(vec![Frame::text("start").fin(false), Frame::text("new")]),
            closed(1002),
        ],
    ));
    cases.push(Case::new(
        SECTION,
        "binary-inside-text",
        "a new binary frame inside a fragmented text message fails with 1002",
        vec![
            send_all(vec![
                Frame::text("start").fin(false),
                Frame::binary(vec![1]).fin(false),
                Frame::cont("end"),
            ]),
            closed(1002),
        ],
    ));
    cases.push(Case::new(
        SECTION,
        "fragmented-pong",
        "a pong without FIN fails with 1002",
        vec![
            send_all(vec![Frame::pong("a").fin(false), Frame::cont("b")]),
            closed(1002),
        ],
    ));
    cases.push(Case::new(
        SECTION,
        "fragmented-close",
        "a close frame without FIN fails with 1002",
        vec![
            send_all(vec![Frame::close(1000).fin(false), Frame::cont(Vec::new())]),
            closed(1002),
        ],
    ));
    cases.push(Case::new(
        SECTION,
        "fragmented-ping-inside-message",
        "a ping without FIN inside a fragmented message fails with 1002",
        vec![
            send_all(vec![
                Frame::text("start").fin(false),
                Frame::ping("a").fin(false),
                Frame::cont("end"),
            ]),
            closed(1002),
        ],
    ));
    cases.push(Case::new(
        SECTION,
        "close-inside-message",
        "a close frame inside a fragmented message is answered; the message is abandoned",
        vec![
            send_all(vec![
                Frame::text("unfinished").fin(false),
                Frame::close(1000),
            ]),
            closed(1000),
        ],
    ));
    cases
}
