//! Reserved bits (RFC 6455 section 5.2): with no extension negotiated, a frame with RSV1,
//! RSV2 or RSV3 set fails the connection (1002), whatever its opcode, and a message echoed
//! before it must still arrive first.

use sockway_tests::frame::{Event, Frame, RSV1, RSV2, RSV3};

use super::Case;
use crate::script::{closed, expect, send, send_all};

const SECTION: &str = "reserved";

fn bit_name(rsv: u8) -> &'static str {
    match rsv {
        RSV1 => "rsv1",
        RSV2 => "rsv2",
        RSV3 => "rsv3",
        _ => "rsv123",
    }
}

/// The cases of this section.
pub fn cases() -> Vec<Case> {
    let mut cases = Vec::new();
    for rsv in [RSV1, RSV2, RSV3, RSV1 | RSV2 | RSV3] {
        let name = bit_name(rsv);
        cases.push(Case::new(
            SECTION,
            &format!("{name}.text"),
            &format!("text frame with {name} set fails with 1002, unechoed"),
            vec![send(Frame::text("reserved").rsv(rsv)), closed(1002)],
        ));
        cases.push(Case::new(
            SECTION,
            &format!("{name}.ping"),
            &format!("ping with {name} set fails with 1002, unanswered"),
            vec![send(Frame::ping("reserved").rsv(rsv)), closed(1002)],
        ));
        cases.push(Case::new(
            SECTION,
            &format!("{name}.after-message"),
            &format!("a message is echoed, then a frame with {name} set fails with 1002"),
            vec![
                send_all(vec![
                    Frame::text("valid"),
                    Frame::binary(vec![1, 2, 3]).rsv(rsv),
                ]),
                expect(Event::text("valid")),
                closed(1002),
            ],
        ));
    }
    cases.push(Case::new(
        SECTION,
        "rsv2.binary",
        "binary frame with RSV2 set fails with 1002",
        vec![send(Frame::binary(vec![0xFF; 10]).rsv(RSV2)), closed(1002)],
    ));
    cases.push(Case::new(
        SECTION,
        "rsv1.pong",
        "pong with RSV1 set fails with 1002",
        vec![send(Frame::pong("reserved").rsv(RSV1)), closed(1002)],
    ));
    cases.push(Case::new(
        SECTION,
        "rsv3.close",
        "close frame with RSV3 set fails with 1002 (not echoed as 1000)",
        vec![send(Frame::close(1000).rsv(RSV3)), closed(1002)],
    ));
    cases.push(Case::new(
        SECTION,
        "rsv1.continuation",
        "continuation frame with RSV1 set fails with 1002",
        vec![
            send_all(vec![
                Frame::text("start").fin(false),
                Frame::cont("end").rsv(RSV1),
            ]),
            closed(1002),
        ],
    ));
    cases.push(Case::new(
        SECTION,
        "rsv1.empty-text",
        "empty text frame with RSV1 set fails with 1002",
        vec![send(Frame::text(Vec::new()).rsv(RSV1)), closed(1002)],
    ));
    cases.push(Case::new(
        SECTION,
        "rsv2.after-ping",
        "a ping is answered, then a text frame with RSV2 set fails with 1002",
        vec![
            send_all(vec![Frame::ping("p"), Frame::text("x").rsv(RSV2)]),
            expect(Event::pong("p")),
            closed(1002),
        ],
    ));
    cases
}
