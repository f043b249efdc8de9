//! The closing handshake (RFC 6455 sections 5.5.1, 7.1 and 7.4): a valid close frame is
//! answered with the same status code, then the server closes TCP first; codes that may not
//! be sent, a one-byte payload or an oversized one fail with 1002, a reason that is not UTF-8
//! with 1007; nothing is processed after a close frame.

use sockway_tests::frame::{Event, Frame};
use sockway_tests::payload;

use super::Case;
use crate::script::{closed, expect, send, send_all, send_bytewise, Step};

const SECTION: &str = "close";

/// Codes an endpoint may send (section 7.4.1, the IANA registry of section 11.7 for
/// 1012-1014, and the 3000-4999 ranges of section 7.4.2): echoed.
const VALID: [u16; 16] = [
    1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 3999, 4000, 4999,
];

/// Codes that must not appear in a close frame: unassigned, reserved (1004), local-only
/// (1005, 1006, 1015), or outside the defined ranges.
const INVALID: [u16; 12] = [
    0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535,
];

/// The cases of this section.
pub fn cases() -> Vec<Case> {
    let mut cases = Vec::new();
    for code in VALID {
        cases.push(Case::new(
            SECTION,
            &format!("code.{code}"),
            &format!("close with code {code} is answered with {code}, then TCP closes"),
            vec![send(Frame::close(code)), closed(code)],
        ));
    }
    for code in INVALID {
        cases.push(Case::new(
            SECTION,
            &format!("invalid-code.{code}"),
            &format!("close with code {code}, which may not be sent, fails with 1002"),
            vec![send(Frame::close(code)), closed(1002)],
        ));
    }
    cases.push(Case::new(
        SECTION,
        "empty",
        "an empty close frame is answered with an empty one (no status to echo)",
        vec![
            send(Frame::close_empty()),
            Step::Closed {
                code: None,
                within: None,
            },
        ],
    ));
    cases.push(Case::new(
        SECTION,
        "one-byte",
        "a close payload of one byte fails with 1002",
        vec![send(Frame::raw(0x8, vec![0x03])), closed(1002)],
    ));
    cases.push(Case::new(
        SECTION,
        "reason",
        "close 1000 with a short reason is answered with 1000",
        vec![send(Frame::close_with(1000, b"bye")), closed(1000)],
    ));
    cases.push(Case::new(
        SECTION,
        "reason-123",
        "close with a 123-byte reason (a full 125-byte payload) is answered with 1000",
        vec![send(Frame::close_with(1000, &[b'r'; 123])), closed(1000)],
    ));
    cases.push(Case::new(
        SECTION,
        "reason-123-multibyte",
        "close with a 123-byte multibyte UTF-8 reason is answered with 1000",
        vec![
            send(Frame::close_with(1000, payload::text(123).as_bytes())),
            closed(1000),
        ],
    ));
    cases.push(Case::new(
        SECTION,
        "reason-124",
        "close with a 124-byte reason (126-byte control frame) fails with 1002",
        vec![send(Frame::close_with(1000, &[b'r'; 124])), closed(1002)],
    ));
    cases.push(Case::new(
        SECTION,
        "reason-invalid-utf8",
        "close with a reason that is not UTF-8 (a surrogate) fails with 1007",
        vec![
            send(Frame::close_with(
                1000,
                &[0xCE, 0xBA, 0xE1, 0xBD, 0xB9, 0xED, 0xA0, 0x80, b'x'],
            )),
            closed(1007),
        ],
    ));
    cases.push(Case::new(
        SECTION,
        "reason-truncated-utf8",
        "close with a reason ending inside a character fails with 1007",
        vec![
            send(Frame::close_with(1000, &[b'a', 0xE2, 0x82])),
            closed(1007),
        ],
    ));
    cases.push(Case::new(
        SECTION,
        "then-text",
        "a text message after the close frame is ignored (no echo)",
        vec![
            send_all(vec![Frame::close(1000), Frame::text("ignored")]),
            closed(1000),
        ],
    ));
    cases.push(Case::new(
        SECTION,
        "then-ping",
        "a ping after the close frame is ignored (no pong)",
        vec![
            send_all(vec![Frame::close(1000), Frame::ping("ignored")]),
            closed(1000),
        ],
    ));
    cases.push(Case::new(
        SECTION,
        "then-invalid",
        "invalid frames after the close frame are ignored (no 1002)",
        vec![
            send_all(vec![Frame::close(1000), Frame::raw(0x5, "junk").rsv(0b111)]),
            closed(1000),
        ],
    ));
    cases.push(Case::new(
        SECTION,
        "after-message",
        "a message and a close frame in one write: the echo comes first, then the close",
        vec![
            send_all(vec![Frame::text("last words"), Frame::close(1000)]),
            expect(Event::text("last words")),
            closed(1000),
        ],
    ));
    cases.push(Case::new(
        SECTION,
        "chopped",
        "a close frame with a reason sent one byte per write is answered with 1000",
        vec![
            send_bytewise(vec![Frame::close_with(1000, b"slowly")]),
            closed(1000),
        ],
    ));
    cases.push(Case::new(
        SECTION,
        "tcp-closed-without-close-frame",
        "when TCP is closed without a close frame, the peer closes too and sends nothing",
        vec![
            send(Frame::text("then gone")),
            expect(Event::text("then gone")),
            Step::Hangup,
        ],
    ));
    cases.push(
        Case::new(
            SECTION,
            "server-never-closes-tcp",
            "the client answers the close and, when the server never closes TCP, closes it \
             after its close timeout",
            vec![send(Frame::close(1000)), Step::ClosedServerStalls(1000)],
        )
        .client_only(),
    );
    cases.push(
        Case::new(
            SECTION,
            "server-never-closes-tcp-after-failure",
            "the client fails the connection (1002) and, when the server never closes TCP, \
             closes it after its close timeout",
            vec![send(Frame::raw(0x3, "x")), Step::ClosedServerStalls(1002)],
        )
        .client_only(),
    );
    let big = payload::bytes(super::LIMIT, 21);
    cases.push(Case::new(
        SECTION,
        "after-large-message",
        "a message of the size limit and a close in one write: the whole echo, then the close",
        vec![
            send_all(vec![Frame::binary(big.clone()), Frame::close(1000)]),
            expect(Event::binary(&big)),
            closed(1000),
        ],
    ));
    cases.push(Case::new(
        SECTION,
        "after-ping",
        "a ping is answered, then a close is answered",
        vec![
            send_all(vec![Frame::ping("before"), Frame::close(3000)]),
            expect(Event::pong("before")),
            closed(3000),
        ],
    ));
    cases
}
