//! What the generator sends: every message of a run has the same length, and its bytes are
//! printable ASCII (valid as text too). Two styles:
//!
//! - `alphabet`: `abc…z` repeated, one payload for every message. Cheapest to produce and
//!   check; right for uncompressed runs, where the bytes do not matter.
//! - `json`: a rotation of distinct JSON-like event records (numbers, ids, words), as chat or
//!   game traffic looks. Right for permessage-deflate runs: it compresses about as well as
//!   real traffic does, and because consecutive messages differ and the rotation is longer than
//!   the 32 KiB LZ77 window (RFC 7692 section 7.1.2), context takeover cannot turn a message
//!   into a single back-reference to the previous identical one.
//!
//! All payloads are built before the run, so nothing is allocated per message.

/// How the generator's payload bytes look.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum PayloadStyle {
    /// `abc…z` repeated; one payload for every message.
    #[default]
    Alphabet,
    /// Distinct JSON-like event records, rotated; compresses like real traffic.
    Json,
}

/// How many distinct `json` payloads a connection cycles through: at least 32 KiB of distinct
/// bytes for payloads of 1 KiB and more, so a deflate window never holds the same message.
const JSON_ROTATION: usize = 64;

/// The payloads of a run, each exactly `size` bytes.
pub fn build(style: PayloadStyle, size: usize) -> Vec<String> {
    match style {
        PayloadStyle::Alphabet => vec![alphabet(size)],
        PayloadStyle::Json => {
            let mut random = XorShift(0x9E37_79B9_7F4A_7C15);
            (0..JSON_ROTATION)
                .map(|index| json_records(size, index, &mut random))
                .collect()
        }
    }
}

fn alphabet(size: usize) -> String {
    (0..size)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect()
}

const USERS: [&str; 8] = [
    "amber", "basil", "cedar", "delta", "ember", "fjord", "gale", "heron",
];
const EVENTS: [&str; 5] = ["move", "chat", "join", "typing", "ack"];
const WORDS: [&str; 12] = [
    "hello", "world", "ready", "north", "gate", "stream", "quick", "blue", "route", "echo", "ping",
    "socket",
];

/// Event records appended until `size` bytes, then cut to exactly `size`.
fn json_records(size: usize, index: usize, random: &mut XorShift) -> String {
    let mut out = String::with_capacity(size + 160);
    out.push('[');
    let mut sequence = index * 1_000;
    while out.len() < size {
        let word = |random: &mut XorShift| WORDS[random.below(WORDS.len())];
        let record = format!(
            "{{\"seq\":{sequence},\"user\":\"{}-{}\",\"event\":\"{}\",\"x\":{}.{:03},\
             \"y\":{}.{:03},\"text\":\"{} {} {}\",\"ts\":{}}},",
            USERS[random.below(USERS.len())],
            random.below(1000),
            EVENTS[random.below(EVENTS.len())],
            random.below(2000),
            random.below(1000),
            random.below(2000),
            random.below(1000),
            word(random),
            word(random),
            word(random),
            1_763_700_000_000u64 + random.next_u64() % 100_000_000,
        );
        out.push_str(&record);
        sequence += 1;
    }
    out.truncate(size);
    out
}

/// A small deterministic generator, so that every run sends the same bytes.
struct XorShift(u64);

impl XorShift {
    fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    fn below(&mut self, bound: usize) -> usize {
        (self.next_u64() % bound as u64) as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_payload_has_the_asked_size_and_is_ascii() {
        for style in [PayloadStyle::Alphabet, PayloadStyle::Json] {
            for size in [0, 1, 20, 1024, 16 * 1024] {
                let payloads = build(style, size);
                assert!(!payloads.is_empty());
                for payload in &payloads {
                    assert_eq!(payload.len(), size);
                    assert!(payload.bytes().all(|b| b.is_ascii_graphic() || b == b' '));
                }
            }
        }
    }

    #[test]
    fn json_payloads_differ_and_span_more_than_a_deflate_window() {
        let payloads = build(PayloadStyle::Json, 1024);
        let distinct: std::collections::HashSet<_> = payloads.iter().collect();
        assert_eq!(distinct.len(), payloads.len());
        assert!(payloads.len() * 1024 >= 32 * 1024);
    }
}
