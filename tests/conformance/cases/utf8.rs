//! UTF-8 in text messages (RFC 6455 sections 5.6 and 8.1, UTF-8 as RFC 3629 defines it):
//! valid text is echoed however it is fragmented, characters split across frames included;
//! invalid text fails the connection with 1007, and as soon as the first byte that cannot be
//! part of valid UTF-8 arrives, without waiting for the rest of the frame or message.

use sockway_tests::frame::{Event, Frame};

use super::{then_close, Case};
use crate::script::{closed, expect, fails_fast, send, send_all, Step};

const SECTION: &str = "utf8";

/// Valid sequences: each character length at the edges of its range, around the surrogates,
/// noncharacters (valid UTF-8), and mixed text.
const VALID: &[(&str, &[u8])] = &[
    ("ascii", b"Hello, world"),
    ("greek", "κόσμε".as_bytes()),
    ("two-byte-min", &[0xC2, 0x80]),
    ("two-byte-max", &[0xDF, 0xBF]),
    ("three-byte-min", &[0xE0, 0xA0, 0x80]),
    ("before-surrogates", &[0xED, 0x9F, 0xBF]),
    ("after-surrogates", &[0xEE, 0x80, 0x80]),
    ("three-byte-max", &[0xEF, 0xBF, 0xBF]),
    ("replacement-char", &[0xEF, 0xBF, 0xBD]),
    ("four-byte-min", &[0xF0, 0x90, 0x80, 0x80]),
    ("four-byte-max", &[0xF4, 0x8F, 0xBF, 0xBF]),
    ("mixed", "Hello-µ@ßöäüàá-UTF-8!! €𝄞".as_bytes()),
];

/// Invalid sequences. `detectable` is how many leading bytes of the sequence it takes to know
/// it is invalid (the fail-fast point); `None` when only the end of the message tells
/// (truncated characters).
struct Invalid {
    name: &'static str,
    bytes: &'static [u8],
    detectable: Option<usize>,
}

const INVALID: &[Invalid] = &[
    Invalid {
        name: "lone-continuation",
        bytes: &[0x80],
        detectable: Some(1),
    },
    Invalid {
        name: "lone-continuation-bf",
        bytes: &[0xBF],
        detectable: Some(1),
    },
    Invalid {
        name: "overlong-two-byte-nul",
        bytes: &[0xC0, 0x80],
        detectable: Some(1),
    },
    Invalid {
        name: "overlong-two-byte-c1",
        bytes: &[0xC1, 0xBF],
        detectable: Some(1),
    },
    Invalid {
        name: "overlong-three-byte",
        bytes: &[0xE0, 0x80, 0x80],
        detectable: Some(2),
    },
    Invalid {
        name: "overlong-three-byte-max",
        bytes: &[0xE0, 0x9F, 0xBF],
        detectable: Some(2),
    },
    Invalid {
        name: "overlong-four-byte",
        bytes: &[0xF0, 0x80, 0x80, 0x80],
        detectable: Some(2),
    },
    Invalid {
        name: "overlong-four-byte-max",
        bytes: &[0xF0, 0x8F, 0xBF, 0xBF],
        detectable: Some(2),
    },
    Invalid {
        name: "surrogate-high",
        bytes: &[0xED, 0xA0, 0x80],
        detectable: Some(2),
    },
    Invalid {
        name: "surrogate-low",
        bytes: &[0xED, 0xBF, 0xBF],
        detectable: Some(2),
    },
    Invalid {
        name: "surrogate-pair",
        bytes: &[0xED, 0xA0, 0x80, 0xED, 0xB0, 0x80],
        detectable: Some(2),
    },
    Invalid {
        name: "above-max",
        bytes: &[0xF4, 0x90, 0x80, 0x80],
        detectable: Some(2),
    },
    Invalid {
        name: "byte-f5",
        bytes: &[0xF5, 0x80, 0x80, 0x80],
        detectable: Some(1),
    },
    Invalid {
        name: "byte-fe",
        bytes: &[0xFE],
        detectable: Some(1),
    },
    Invalid {
        name: "byte-ff",
        bytes: &[0xFF],
        detectable: Some(1),
    },
    Invalid {
        name: "five-byte-form",
        bytes: &[0xF8, 0x88, 0x80, 0x80, 0x80],
        detectable: Some(1),
    },
    Invalid {
        name: "six-byte-form",
        bytes: &[0xFC, 0x84, 0x80, 0x80, 0x80, 0x80],
        detectable: Some(1),
    },
    Invalid {
        name: "missing-continuation",
        bytes: &[0xC2, 0x41],
        detectable: Some(2),
    },
    Invalid {
        name: "three-byte-cut-by-ascii",
        bytes: &[0xE2, 0x82, 0x41],
        detectable: Some(3),
    },
    Invalid {
        name: "truncated-two-byte",
        bytes: &[0xC2],
        detectable: None,
    },
    Invalid {
        name: "truncated-three-byte",
        bytes: &[0xE2, 0x82],
        detectable: None,
    },
    Invalid {
        name: "truncated-four-byte",
        bytes: &[0xF0, 0x9F, 0x98],
        detectable: None,
    },
];

/// Valid text before the invalid bytes.
const PREFIX: &[u8] = "κόσμε ".as_bytes();

/// Bytes that would follow the invalid ones; never sent in the fail-fast cases.
const TAIL_LEN: usize = 64;

fn text_fragments(data: &[u8], split_at: &[usize]) -> Vec<Frame> {
    let mut cuts = vec![0];
    cuts.extend(
        split_at
            .iter()
            .copied()
            .filter(|&c| c > 0 && c < data.len()),
    );
    cuts.push(data.len());
    let last = cuts.len() - 2;
    cuts.windows(2)
        .enumerate()
        .map(|(i, w)| {
            let chunk = data[w[0]..w[1]].to_vec();
            let frame = if i == 0 {
                Frame::text(chunk)
            } else {
                Frame::cont(chunk)
            };
            frame.fin(i == last)
        })
        .collect()
}

/// The cases of this section.
pub fn cases() -> Vec<Case> {
    let mut cases = Vec::new();
    for (name, bytes) in VALID {
        let every_byte: Vec<usize> = (1..bytes.len()).collect();
        let mid = [bytes.len() / 2];
        let forms: [(&str, &str, Vec<Frame>); 3] = [
            ("whole", "in one frame", vec![Frame::text(bytes.to_vec())]),
            (
                "per-byte",
                "one byte per fragment",
                text_fragments(bytes, &every_byte),
            ),
            (
                "split-mid",
                "split in the middle",
                text_fragments(bytes, &mid),
            ),
        ];
        for (form, how, frames) in forms {
            if form == "split-mid" && bytes.len() < 2 {
                continue;
            }
            cases.push(Case::new(
                SECTION,
                &format!("valid.{name}.{form}"),
                &format!("valid text ({name}) {how} is echoed"),
                then_close(vec![send_all(frames), expect(Event::text(bytes))]),
            ));
        }
    }
    for invalid in INVALID {
        let mut data = PREFIX.to_vec();
        data.extend_from_slice(invalid.bytes);
        data.extend_from_slice(b"end");
        let name = invalid.name;
        cases.push(Case::new(
            SECTION,
            &format!("invalid.{name}.whole"),
            &format!("text with an invalid sequence ({name}) fails with 1007, unechoed"),
            vec![send(Frame::text(data.clone())), closed(1007)],
        ));
        let every_byte: Vec<usize> = (1..data.len()).collect();
        cases.push(Case::new(
            SECTION,
            &format!("invalid.{name}.per-byte"),
            "the same sent one byte per fragment fails with 1007",
            vec![send_all(text_fragments(&data, &every_byte)), closed(1007)],
        ));
        let Some(detectable) = invalid.detectable else {
            continue;
        };
        let sent = PREFIX.len() + detectable;
        let mut whole = data[..sent].to_vec();
        whole.resize(sent + TAIL_LEN, b'x');
        cases.push(Case::new(
            SECTION,
            &format!("fail-fast.{name}.frame"),
            &format!(
                "1007 comes once the invalid bytes ({name}) arrive, before the rest of the frame"
            ),
            vec![
                Step::SendPartialPayload(Frame::text(whole.clone()), sent),
                fails_fast(1007),
            ],
        ));
        cases.push(Case::new(
            SECTION,
            &format!("fail-fast.{name}.fragments"),
            &format!(
                "after a valid first fragment, 1007 comes once the invalid bytes ({name}) of \
                 the second arrive, before the rest"
            ),
            vec![
                send(Frame::text(PREFIX.to_vec()).fin(false)),
                Step::SendPartialPayload(Frame::cont(whole[PREFIX.len()..].to_vec()), detectable),
                fails_fast(1007),
            ],
        ));
    }
    cases.push(Case::new(
        SECTION,
        "fail-fast.split-character",
        "a character split across fragments whose second part is invalid fails with 1007 \
         before the rest",
        vec![
            send(Frame::text(vec![b'a', 0xED]).fin(false)),
            Step::SendPartialPayload(Frame::cont(vec![0xA0, 0x80, b'b', b'c', b'd']), 1),
            fails_fast(1007),
        ],
    ));
    cases.push(Case::new(
        SECTION,
        "invalid.after-valid-message",
        "a valid text message is echoed, then an invalid one fails with 1007",
        vec![
            send_all(vec![Frame::text("valid"), Frame::text(vec![0xC0, 0x80])]),
            expect(Event::text("valid")),
            closed(1007),
        ],
    ));
    cases.push(Case::new(
        SECTION,
        "binary-is-not-checked",
        "a binary message with bytes that are not UTF-8 is echoed",
        then_close(vec![
            send(Frame::binary(vec![0xC0, 0x80, 0xFF, 0xED, 0xA0, 0x80])),
            expect(Event::binary([0xC0, 0x80, 0xFF, 0xED, 0xA0, 0x80])),
        ]),
    ));
    cases
}
