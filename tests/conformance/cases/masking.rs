//! Masking (RFC 6455 section 5.1 and 5.3): a client masks every frame and a server none; a
//! server that receives an unmasked frame, or a client that receives a masked one, fails the
//! connection (1002). The frames the implementation itself sends are checked for the right
//! masking in every case (the raw peer refuses anything else).

use sockway_tests::frame::{Event, Frame};

use super::{then_close, Case};
use crate::script::{closed, expect, send, send_all, Step};

const SECTION: &str = "masking";

/// The cases of this section.
pub fn cases() -> Vec<Case> {
    vec![
        Case::new(
            SECTION,
            "wrong.text",
            "a text frame masked the wrong way for its direction fails with 1002",
            vec![send(Frame::text("hello").wrong_masking()), closed(1002)],
        ),
        Case::new(
            SECTION,
            "wrong.empty-binary",
            "an empty binary frame masked the wrong way fails with 1002",
            vec![
                send(Frame::binary(Vec::new()).wrong_masking()),
                closed(1002),
            ],
        ),
        Case::new(
            SECTION,
            "wrong.ping",
            "a ping masked the wrong way fails with 1002, unanswered",
            vec![send(Frame::ping("hello").wrong_masking()), closed(1002)],
        ),
        Case::new(
            SECTION,
            "wrong.close",
            "a close frame masked the wrong way fails with 1002 (not echoed as 1000)",
            vec![send(Frame::close(1000).wrong_masking()), closed(1002)],
        ),
        Case::new(
            SECTION,
            "wrong.after-message",
            "a message is echoed, then a frame masked the wrong way fails with 1002",
            vec![
                send_all(vec![
                    Frame::text("fine"),
                    Frame::text("bad").wrong_masking(),
                ]),
                expect(Event::text("fine")),
                closed(1002),
            ],
        ),
        Case::new(
            SECTION,
            "wrong.continuation",
            "a continuation masked the wrong way fails with 1002",
            vec![
                send_all(vec![
                    Frame::text("a").fin(false),
                    Frame::cont("b").wrong_masking(),
                ]),
                closed(1002),
            ],
        ),
        Case::new(
            SECTION,
            "right.varying-keys",
            "masked frames with a different key each are all unmasked correctly",
            then_close(vec![
                send_all(vec![
                    Frame::text("one"),
                    Frame::text("two"),
                    Frame::text("three"),
                ]),
                expect(Event::text("one")),
                expect(Event::text("two")),
                expect(Event::text("three")),
            ]),
        )
        .server_only(),
        Case::new(
            SECTION,
            "client-keys-fresh",
            "the client masks each of its frames with a different key",
            then_close(vec![
                send_all((0..8).map(|i| Frame::binary(vec![i; 4])).collect()),
                expect(Event::binary([0; 4])),
                expect(Event::binary([1; 4])),
                expect(Event::binary([2; 4])),
                expect(Event::binary([3; 4])),
                expect(Event::binary([4; 4])),
                expect(Event::binary([5; 4])),
                expect(Event::binary([6; 4])),
                expect(Event::binary([7; 4])),
                Step::DistinctMaskKeys,
            ]),
        )
        .client_only(),
    ]
}
