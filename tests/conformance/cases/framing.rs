//! Base framing (RFC 6455 section 5.2): payload lengths in the 7-bit, 16-bit and 64-bit forms,
//! frames arriving one byte at a time, several frames in one write, and the top bit of the
//! 64-bit length.

use sockway_tests::frame::{Event, Frame};
use sockway_tests::payload;

use super::{then_close, Case};
use crate::script::{closed, expect, fails_fast, send, send_all, send_bytewise, send_header, Step};

const SECTION: &str = "framing";

/// The sizes around each length form's edges: 7-bit up to 125, 16-bit from 126 to 65535,
/// 64-bit from 65536.
const SIZES: [usize; 7] = [0, 1, 125, 126, 127, 65535, 65536];

/// The cases of this section.
pub fn cases() -> Vec<Case> {
    let mut cases = Vec::new();
    for size in SIZES {
        let form = length_form(size);
        let text = payload::text(size);
        cases.push(Case::new(
            SECTION,
            &format!("text.{size}"),
            &format!("text message of {size} bytes ({form} length) is echoed"),
            then_close(vec![
                send(Frame::text(text.clone())),
                expect(Event::text(&text)),
            ]),
        ));
        let data = payload::bytes(size, size as u32);
        cases.push(Case::new(
            SECTION,
            &format!("binary.{size}"),
            &format!("binary message of {size} bytes ({form} length) is echoed"),
            then_close(vec![
                send(Frame::binary(data.clone())),
                expect(Event::binary(&data)),
            ]),
        ));
    }
    for size in [0, 125, 126, 127, 1000] {
        let data = payload::bytes(size, 7);
        cases.push(Case::new(
            SECTION,
            &format!("chopped.binary.{size}"),
            &format!("binary frame of {size} bytes sent one byte per write is echoed"),
            then_close(vec![
                send_bytewise(vec![Frame::binary(data.clone())]),
                expect(Event::binary(&data)),
            ]),
        ));
    }
    let data = payload::bytes(65536, 8);
    cases.push(Case::new(
        SECTION,
        "chopped.binary.65536",
        "binary frame of 65536 bytes (64-bit length) sent in 997-byte writes is echoed",
        then_close(vec![
            Step::SendChopped(vec![Frame::binary(data.clone())], 997),
            expect(Event::binary(&data)),
        ]),
    ));
    let text = payload::text(200);
    cases.push(Case::new(
        SECTION,
        "chopped.text.200",
        "multibyte text frame sent one byte per write is echoed",
        then_close(vec![
            send_bytewise(vec![Frame::text(text.clone())]),
            expect(Event::text(&text)),
        ]),
    ));
    cases.push(Case::new(
        SECTION,
        "two-messages-one-write",
        "a text and a binary message in one write are both echoed, in order",
        then_close(vec![
            send_all(vec![Frame::text("first"), Frame::binary(vec![2, 0, 2])]),
            expect(Event::text("first")),
            expect(Event::binary([2, 0, 2])),
        ]),
    ));
    let many: Vec<Frame> = (0..100)
        .map(|i| Frame::text(format!("message {i}")))
        .collect();
    let mut steps = vec![send_all(many)];
    steps.extend((0..100).map(|i| expect(Event::text(format!("message {i}")))));
    cases.push(Case::new(
        SECTION,
        "hundred-messages-one-write",
        "100 small messages in one write are echoed in order",
        then_close(steps),
    ));
    let big = payload::bytes(200_000, 3);
    cases.push(Case::new(
        SECTION,
        "binary.200000",
        "binary message of 200000 bytes (64-bit length) is echoed",
        then_close(vec![
            send(Frame::binary(big.clone())),
            expect(Event::binary(&big)),
        ]),
    ));
    cases.push(
        Case::new(
            SECTION,
            "with-handshake",
            "a frame sent in the same write as the handshake is not lost",
            then_close(vec![expect(Event::text("early"))]),
        )
        .with_handshake(vec![Frame::text("early")]),
    );
    cases.push(Case::new(
        SECTION,
        "length-top-bit",
        "a 64-bit length with its most significant bit set fails with 1002 at once",
        vec![
            send_header(Frame::binary(Vec::new()).declared_len(1 << 63)),
            fails_fast(1002),
        ],
    ));
    cases.push(Case::new(
        SECTION,
        "length-top-bit-after-message",
        "a message is echoed, then a 64-bit length with its top bit set fails with 1002",
        vec![
            send(Frame::text("fine")),
            expect(Event::text("fine")),
            send_header(Frame::text(Vec::new()).declared_len(u64::MAX)),
            closed(1002),
        ],
    ));
    cases
}

fn length_form(size: usize) -> &'static str {
    match size {
        0..=125 => "7-bit",
        126..=65535 => "16-bit",
        _ => "64-bit",
    }
}
