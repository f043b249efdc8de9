//! Size limits (RFC 6455 sections 7.4.1 and 10.4): a message larger than the endpoint
//! accepts fails the connection with 1009, decided from the frame header alone, before any of
//! the payload is awaited; a message at the limit passes. Every implementation under test is
//! configured with [`LIMIT`].

use sockway_tests::frame::{Event, Frame};
use sockway_tests::payload;

use super::{then_close, Case, LIMIT};
use crate::script::{closed, expect, fails_fast, send, send_header};

const SECTION: &str = "limits";

/// The cases of this section.
pub fn cases() -> Vec<Case> {
    let mut cases = Vec::new();
    let at_limit = payload::bytes(LIMIT, 11);
    cases.push(Case::new(
        SECTION,
        "binary.at-limit",
        &format!("a binary message of exactly the limit ({LIMIT} bytes) is echoed"),
        then_close(vec![
            send(Frame::binary(at_limit.clone())),
            expect(Event::binary(&at_limit)),
        ]),
    ));
    let half = LIMIT / 2;
    cases.push(Case::new(
        SECTION,
        "fragmented.at-limit",
        "a message of exactly the limit in two fragments is echoed",
        then_close(vec![
            send(Frame::binary(at_limit[..half].to_vec()).fin(false)),
            send(Frame::cont(at_limit[half..].to_vec())),
            expect(Event::binary(&at_limit)),
        ]),
    ));
    cases.push(Case::new(
        SECTION,
        "binary.over-limit.header-only",
        "the header of a binary frame one byte over the limit fails with 1009 at once",
        vec![
            send_header(Frame::binary(Vec::new()).declared_len(LIMIT as u64 + 1)),
            fails_fast(1009),
        ],
    ));
    cases.push(Case::new(
        SECTION,
        "text.over-limit.header-only",
        "the header of a text frame one byte over the limit fails with 1009 at once",
        vec![
            send_header(Frame::text(Vec::new()).declared_len(LIMIT as u64 + 1)),
            fails_fast(1009),
        ],
    ));
    cases.push(Case::new(
        SECTION,
        "binary.huge.header-only",
        "the header of a 1 TiB frame fails with 1009 at once",
        vec![
            send_header(Frame::binary(Vec::new()).declared_len(1 << 40)),
            fails_fast(1009),
        ],
    ));
    cases.push(Case::new(
        SECTION,
        "binary.over-limit.full",
        "a whole binary frame one byte over the limit fails with 1009, unechoed",
        vec![
            send(Frame::binary(payload::bytes(LIMIT + 1, 12))),
            closed(1009),
        ],
    ));
    cases.push(Case::new(
        SECTION,
        "fragmented.over-limit.header-only",
        "a fragment that takes the message over the limit fails with 1009 from its header",
        vec![
            send(Frame::binary(vec![7; LIMIT - 100]).fin(false)),
            send_header(Frame::cont(Vec::new()).declared_len(101)),
            fails_fast(1009),
        ],
    ));
    cases.push(Case::new(
        SECTION,
        "fragmented.many-small-over-limit",
        "many small fragments adding up to more than the limit fail with 1009",
        vec![
            send(Frame::text(vec![b'a'; LIMIT / 4]).fin(false)),
            send(Frame::cont(vec![b'b'; LIMIT / 4]).fin(false)),
            send(Frame::cont(vec![b'c'; LIMIT / 4]).fin(false)),
            send(Frame::cont(vec![b'd'; LIMIT / 4]).fin(false)),
            send_header(Frame::cont(Vec::new()).declared_len(1)),
            fails_fast(1009),
        ],
    ));
    cases
}
