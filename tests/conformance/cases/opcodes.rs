//! Reserved opcodes (RFC 6455 section 5.2): 0x3-0x7 (data) and 0xB-0xF (control) are
//! reserved; receiving one fails the connection with 1002. Whatever preceded it is handled
//! first: a message sent before is echoed before the close.

use sockway_tests::frame::{Event, Frame};

use super::Case;
use crate::script::{closed, expect, send, send_all};

const SECTION: &str = "opcodes";

/// The cases of this section.
pub fn cases() -> Vec<Case> {
    let mut cases = Vec::new();
    for op in (0x3..=0x7).chain(0xB..=0xF) {
        let class = if op < 0x8 { "data" } else { "control" };
        cases.push(Case::new(
            SECTION,
            &format!("{op:#x}"),
            &format!("reserved {class} opcode {op:#x} fails with 1002"),
            vec![send(Frame::raw(op, Vec::new())), closed(1002)],
        ));
        cases.push(Case::new(
            SECTION,
            &format!("{op:#x}.after-message"),
            &format!("a message is echoed before reserved opcode {op:#x} fails with 1002"),
            vec![
                send_all(vec![Frame::text("valid"), Frame::raw(op, "payload")]),
                expect(Event::text("valid")),
                closed(1002),
            ],
        ));
    }
    for op in [0x3, 0xB] {
        cases.push(Case::new(
            SECTION,
            &format!("{op:#x}.after-ping"),
            &format!("a ping is answered before reserved opcode {op:#x} fails with 1002"),
            vec![
                send_all(vec![Frame::ping("first"), Frame::raw(op, "x")]),
                expect(Event::pong("first")),
                closed(1002),
            ],
        ));
    }
    cases.push(Case::new(
        SECTION,
        "0x4.inside-fragmented",
        "reserved opcode 0x4 inside a fragmented message fails with 1002",
        vec![
            send_all(vec![
                Frame::text("start").fin(false),
                Frame::raw(0x4, "x").fin(false),
                Frame::cont("end"),
            ]),
            closed(1002),
        ],
    ));
    cases
}
