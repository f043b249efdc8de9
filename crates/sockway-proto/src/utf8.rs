//! UTF-8 validation of text messages (RFC 6455 sections 5.6 and 8.1).
//!
//! The payload of a text message must be valid UTF-8 (section 5.6), and an endpoint that
//! receives invalid UTF-8 must fail the connection (section 8.1). A text message can arrive
//! as many fragments, each of which can arrive in many reads, so a code point may be split
//! anywhere. [`Utf8Validator`] checks such a text piece by piece, without buffering it, and
//! fails *fast*: as soon as the bytes seen so far cannot be the start of any valid UTF-8
//! text, even when the offending byte is in a code point whose remaining bytes have not
//! arrived yet. The Autobahn test suite (cases 6.x) checks exactly this.
//!
//! The bulk of each piece is checked with `simdutf8`, which uses SIMD instructions; only the
//! at most three bytes of a code point split between two pieces are checked by hand, against
//! the table of well-formed byte sequences in the Unicode Standard (chapter 3, table 3-7).
//! [`validate`] checks a whole buffer at once, for close reasons (section 5.5.1) and texts that
//! arrive in a single read.

/// The text is not valid UTF-8: the bytes seen so far cannot be the start of any valid UTF-8
/// text, or the text ended in the middle of a code point.
///
/// RFC 6455 section 8.1 requires failing the connection with close code 1007 (section 7.4.1)
/// when this happens to a text message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("invalid UTF-8")]
pub struct InvalidUtf8;

/// Checks that a whole buffer is valid UTF-8 (RFC 6455 section 5.6) and returns it as a
/// `&str`.
///
/// For texts that are complete in one buffer, such as the reason in a close frame
/// (section 5.5.1) or a single-frame text message read in one go. It is faster than
/// [`Utf8Validator`] on such input because it needs no bookkeeping for split code points.
pub fn validate(bytes: &[u8]) -> Result<&str, InvalidUtf8> {
    simdutf8::basic::from_utf8(bytes).map_err(|_| InvalidUtf8)
}

/// Validates a text that arrives in arbitrary pieces (RFC 6455 sections 5.6 and 8.1), failing
/// at the first piece after which the text so far cannot be the start of valid UTF-8.
///
/// Feed the pieces in order with [`feed`](Self::feed), then call [`finish`](Self::finish) at
/// the end of the message (the frame with FIN set), which also fails if the text stops in the
/// middle of a code point. It never allocates: all it keeps between pieces is the at most
/// three bytes of a code point split across pieces.
///
/// Once a piece has been rejected, every later [`feed`](Self::feed) is rejected too (no
/// continuation can make the text valid again), until [`finish`](Self::finish) or
/// [`reset`](Self::reset).
#[derive(Debug, Default, Clone)]
pub struct Utf8Validator {
    /// The start of a code point whose remaining bytes have not arrived yet; only the first
    /// `pending_len` bytes are meaningful. Always a valid prefix of a code point.
    pending: [u8; 3],
    /// How many bytes of `pending` are in use, 0 to 3.
    pending_len: u8,
    /// Whether a piece has already been rejected.
    failed: bool,
}

impl Utf8Validator {
    /// A validator at the start of a text, with nothing pending.
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds the next piece of the text.
    ///
    /// Fails as soon as the text so far can no longer be the start of valid UTF-8, including
    /// when the invalid bytes are the beginning of a code point cut off at the end of `bytes`
    /// (for example a piece ending in `ED A0`, the start of a surrogate). An empty piece is
    /// fine anywhere.
    pub fn feed(&mut self, bytes: &[u8]) -> Result<(), InvalidUtf8> {
        if self.failed {
            return Err(InvalidUtf8);
        }
        let result = self.feed_inner(bytes);
        if result.is_err() {
            self.failed = true;
            self.pending_len = 0;
        }
        result
    }

    /// Ends the text: fails if a piece was rejected or the text stops in the middle of a code
    /// point. Either way, the validator is reset, ready for the next text message.
    pub fn finish(&mut self) -> Result<(), InvalidUtf8> {
        let complete = !self.failed && self.pending_len == 0;
        self.reset();
        if complete {
            Ok(())
        } else {
            Err(InvalidUtf8)
        }
    }

    /// Forgets any partial code point and any earlier failure, ready for a new text.
    pub fn reset(&mut self) {
        *self = Self::default();
    }

    /// [`feed`](Self::feed) without the failure bookkeeping.
    fn feed_inner(&mut self, bytes: &[u8]) -> Result<(), InvalidUtf8> {
        let rest = self.complete_pending(bytes)?;
        match simdutf8::compat::from_utf8(rest) {
            Ok(_) => Ok(()),
            // `error_len() == Some(_)`: an invalid sequence is complete inside `rest`.
            Err(error) if error.error_len().is_some() => Err(InvalidUtf8),
            // `error_len() == None`: `rest` ends with the start of a code point that may still
            // be completed. `simdutf8::compat` reports errors exactly like
            // `std::str::from_utf8` (it re-checks the failing block with it), which only says
            // `None` if the cut-off bytes are a valid prefix; the tests check this for every
            // one-, two- and three-byte input. The bytes are re-checked here anyway: that
            // costs at most three comparisons, and this state must never hold an invalid
            // prefix.
            Err(error) => {
                let tail = rest.get(error.valid_up_to()..).unwrap_or_default();
                self.store_pending(tail)
            }
        }
    }

    /// If a code point was left incomplete by the previous piece, completes it from the
    /// start of `bytes` and checks it, then returns the rest of `bytes`.
    fn complete_pending<'a>(&mut self, bytes: &'a [u8]) -> Result<&'a [u8], InvalidUtf8> {
        let have = usize::from(self.pending_len);
        if have == 0 {
            return Ok(bytes);
        }
        let mut sequence = [0u8; 4];
        let mut len = 0;
        for (slot, &byte) in sequence.iter_mut().zip(&self.pending[..have.min(3)]) {
            *slot = byte;
            len += 1;
        }
        let width = check_prefix(&sequence[..len])?;
        let taken = (width - len).min(bytes.len());
        for (slot, &byte) in sequence[len..].iter_mut().zip(&bytes[..taken]) {
            *slot = byte;
            len += 1;
        }
        let rest = &bytes[taken..];
        if len < width {
            // `bytes` ran out before the code point did: it is still pending.
            self.store_pending(&sequence[..len])?;
        } else {
            check_prefix(&sequence[..len])?;
            self.pending_len = 0;
        }
        Ok(rest)
    }

    /// Checks that `tail` is the start of a code point, one to three bytes long but not
    /// complete, and keeps it for the next piece.
    fn store_pending(&mut self, tail: &[u8]) -> Result<(), InvalidUtf8> {
        let width = check_prefix(tail)?;
        if tail.is_empty() || tail.len() >= width {
            // Not a cut-off code point; cannot happen with the callers above.
            return Err(InvalidUtf8);
        }
        let mut len = 0;
        for (slot, &byte) in self.pending.iter_mut().zip(tail) {
            *slot = byte;
            len += 1;
        }
        // `len` is at most 3, the length of `pending`.
        self.pending_len = len;
        Ok(())
    }
}

/// Checks that `bytes` (at most four, at least one) are the start of a well-formed UTF-8
/// sequence, possibly complete, and returns how long the whole sequence is.
///
/// Follows the Unicode Standard's table of well-formed byte sequences: the first byte gives
/// the length, the second byte's range depends on the first (which rules out overlong forms,
/// surrogates and code points above U+10FFFF), and later bytes are continuation bytes.
fn check_prefix(bytes: &[u8]) -> Result<usize, InvalidUtf8> {
    let (&lead, continuation) = bytes.split_first().ok_or(InvalidUtf8)?;
    let (width, second) = match lead {
        0x00..=0x7f => (1, 0x80..=0xbf),
        0xc2..=0xdf => (2, 0x80..=0xbf),
        0xe0 => (3, 0xa0..=0xbf),
        0xe1..=0xec | 0xee..=0xef => (3, 0x80..=0xbf),
        0xed => (3, 0x80..=0x9f),
        0xf0 => (4, 0x90..=0xbf),
        0xf1..=0xf3 => (4, 0x80..=0xbf),
        0xf4 => (4, 0x80..=0x8f),
        // 80..BF: continuation without a lead; C0, C1: overlong two-byte forms;
        // F5..F7: above U+10FFFF; F8..FF: the obsolete five- and six-byte forms and bytes
        // that never occur in UTF-8.
        _ => return Err(InvalidUtf8),
    };
    if bytes.len() > width {
        return Err(InvalidUtf8);
    }
    let mut continuation = continuation.iter();
    if let Some(byte) = continuation.next() {
        if !second.contains(byte) {
            return Err(InvalidUtf8);
        }
    }
    if continuation.all(|&byte| (0x80..=0xbf).contains(&byte)) {
        Ok(width)
    } else {
        Err(InvalidUtf8)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Whether `bytes` can be the start of a valid UTF-8 text, by the standard library's
    /// definition: valid, or only cut off in the middle of a code point.
    fn is_valid_prefix(bytes: &[u8]) -> bool {
        match std::str::from_utf8(bytes) {
            Ok(_) => true,
            Err(error) => error.error_len().is_none(),
        }
    }

    fn hex(text: &str) -> Vec<u8> {
        let digits: Vec<u8> = text.bytes().filter(u8::is_ascii_hexdigit).collect();
        digits
            .chunks(2)
            .map(|pair| u8::from_str_radix(std::str::from_utf8(pair).unwrap(), 16).unwrap())
            .collect()
    }

    /// Feeds `bytes` one byte at a time and returns the index of the byte whose `feed`
    /// failed, or `None` if every feed succeeded, along with the `finish` result.
    fn first_failing_byte(bytes: &[u8]) -> (Option<usize>, Result<(), InvalidUtf8>) {
        let mut validator = Utf8Validator::new();
        let failed_at = bytes
            .iter()
            .position(|&byte| validator.feed(&[byte]).is_err());
        (failed_at, validator.finish())
    }

    /// The index of the first byte after which the text is no longer a valid prefix.
    fn expected_failing_byte(bytes: &[u8]) -> Option<usize> {
        (1..=bytes.len())
            .find(|&end| !is_valid_prefix(&bytes[..end]))
            .map(|end| end - 1)
    }

    #[test]
    fn valid_boundary_code_points() {
        for text in [
            "",
            "\u{0}",
            "\u{7f}",
            "\u{80}",
            "\u{7ff}",
            "\u{800}",
            "\u{d7ff}",
            "\u{e000}",
            "\u{fffd}",
            "\u{fffe}",
            "\u{ffff}",
            "\u{10000}",
            "\u{10ffff}",
            "Hello-µ@ßöäüàá-UTF-8!!",
            "κόσμε 日本語 🎉 hello ",
        ] {
            let bytes = text.as_bytes();
            assert_eq!(validate(bytes), Ok(text));
            let mut validator = Utf8Validator::new();
            assert_eq!(validator.feed(bytes), Ok(()), "{text:?}");
            assert_eq!(validator.finish(), Ok(()), "{text:?}");
            assert_eq!(first_failing_byte(bytes), (None, Ok(())), "{text:?}");
        }
    }

    #[test]
    fn autobahn_6_x_vectors_fail_at_the_right_byte() {
        // (hex bytes, index of the first byte that makes the text invalid)
        let cases = [
            // 6.3.1: "κόσμε" followed by the surrogate U+D800 and "edited".
            ("cebae1bdb9cf83cebcceb5eda080656469746564", 12),
            // Lone continuation bytes and bytes that never occur.
            ("80", 0),
            ("bf", 0),
            ("41 80", 1),
            ("fe", 0),
            ("ff", 0),
            ("fefeffff", 0),
            // Overlong forms.
            ("c0 80", 0),
            ("c1 bf", 0),
            ("c0 af", 0),
            ("e0 80 af", 1),
            ("e0 9f bf", 1),
            ("f0 80 80 af", 1),
            ("f0 8f bf bf", 1),
            // Surrogates, single and paired.
            ("ed a0 80", 1),
            ("ed ad bf", 1),
            ("ed bf bf", 1),
            ("ed a0 80 ed b0 80", 1),
            ("ed af bf ed bf bf", 1),
            // Above U+10FFFF.
            ("f4 90 80 80", 1),
            ("f5 80 80 80", 0),
            ("f7 bf bf bf", 0),
            // Five- and six-byte forms.
            ("f8 88 80 80 80", 0),
            ("fb bf bf bf bf", 0),
            ("fc 84 80 80 80 80", 0),
            ("fd bf bf bf bf bf", 0),
            // Truncated sequences followed by something else.
            ("c2 41", 1),
            ("e1 80 41", 2),
            ("f1 80 80 41", 3),
            ("ce ba e1 bd", usize::MAX), // cut off: only `finish` fails
        ];
        for (text, at) in cases {
            let bytes = hex(text);
            let expected = (at != usize::MAX).then_some(at);
            assert_eq!(expected_failing_byte(&bytes), expected, "oracle, {text}");
            let (failed_at, finished) = first_failing_byte(&bytes);
            assert_eq!(failed_at, expected, "{text}");
            assert_eq!(finished, Err(InvalidUtf8), "{text}");
            assert_eq!(validate(&bytes), Err(InvalidUtf8), "{text}");
            // As a single piece, and split in two everywhere.
            for split in 0..=bytes.len() {
                let mut validator = Utf8Validator::new();
                let first = validator.feed(&bytes[..split]);
                let second = validator.feed(&bytes[split..]);
                match expected {
                    Some(at) if at < split => assert!(first.is_err(), "{text} at {split}"),
                    Some(_) => assert!(first.is_ok() && second.is_err(), "{text} at {split}"),
                    None => assert!(first.is_ok() && second.is_ok(), "{text} at {split}"),
                }
                assert_eq!(validator.finish(), Err(InvalidUtf8));
            }
        }
    }

    #[test]
    fn fails_fast_on_invalid_partial_code_point_at_end_of_piece() {
        for tail in [
            "f5", "c0", "c1", "e0 80", "e0 9f", "ed a0", "ed bf", "f4 90", "f0 80", "f0 8f",
        ] {
            let mut piece = b"valid so far ".to_vec();
            piece.extend(hex(tail));
            let mut validator = Utf8Validator::new();
            assert_eq!(validator.feed(&piece), Err(InvalidUtf8), "{tail}");
        }
    }

    #[test]
    fn accepts_valid_partial_code_point_at_end_of_piece() {
        for tail in [
            "c2", "df", "e0 a0", "ed 9f", "ee", "f0 90", "f0 90 80", "f4 8f bf", "f3",
        ] {
            let bytes = hex(tail);
            let mut validator = Utf8Validator::new();
            assert_eq!(validator.feed(&bytes), Ok(()), "{tail}");
            assert_eq!(validator.finish(), Err(InvalidUtf8), "{tail}");
        }
    }

    #[test]
    fn code_point_split_over_many_pieces() {
        let text = "a🎉b日c";
        let bytes = text.as_bytes();
        let mut validator = Utf8Validator::new();
        for byte in bytes {
            assert_eq!(validator.feed(&[]), Ok(()));
            assert_eq!(validator.feed(std::slice::from_ref(byte)), Ok(()));
        }
        assert_eq!(validator.finish(), Ok(()));
    }

    #[test]
    fn failure_is_sticky_until_finish_or_reset() {
        let mut validator = Utf8Validator::new();
        assert_eq!(validator.feed(b"\xff"), Err(InvalidUtf8));
        assert_eq!(validator.feed(b"fine"), Err(InvalidUtf8));
        assert_eq!(validator.finish(), Err(InvalidUtf8));
        // `finish` reset it.
        assert_eq!(validator.feed(b"fine"), Ok(()));
        assert_eq!(validator.finish(), Ok(()));

        assert_eq!(validator.feed(b"\xe2\x82"), Ok(()));
        validator.reset();
        assert_eq!(validator.feed(b"fine"), Ok(()));
        assert_eq!(validator.finish(), Ok(()));
    }

    #[test]
    fn clone_keeps_the_pending_code_point() {
        let mut validator = Utf8Validator::default();
        assert_eq!(validator.feed(&[0xe2, 0x82]), Ok(()));
        let mut copy = validator.clone();
        assert_eq!(copy.feed(&[0xac]), Ok(())); // U+20AC
        assert_eq!(copy.finish(), Ok(()));
        assert_eq!(validator.feed(&[0x41]), Err(InvalidUtf8));
    }

    /// Checks, for every input of one or two bytes and for three-byte inputs with a
    /// representative third byte, that the hand-written table, `simdutf8::compat` and the
    /// validator all agree with `std` about whether the input is a valid prefix. This is
    /// what justifies trusting `error_len() == None` from `simdutf8::compat`.
    #[test]
    fn exhaustive_short_inputs_agree_with_std() {
        let thirds = [
            0x00, 0x41, 0x7f, 0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf, 0xc0, 0xc2, 0xe0, 0xf0, 0xff,
        ];
        let mut inputs: Vec<Vec<u8>> = Vec::new();
        for a in 0..=255u8 {
            inputs.push(vec![a]);
            for b in 0..=255u8 {
                inputs.push(vec![a, b]);
                for c in thirds {
                    inputs.push(vec![a, b, c]);
                }
            }
        }
        for bytes in inputs {
            let expected = is_valid_prefix(&bytes);
            let simd = match simdutf8::compat::from_utf8(&bytes) {
                Ok(_) => true,
                Err(error) => error.error_len().is_none(),
            };
            assert_eq!(simd, expected, "simdutf8 {bytes:02x?}");
            let mut validator = Utf8Validator::new();
            assert_eq!(
                validator.feed(&bytes).is_ok(),
                expected,
                "whole {bytes:02x?}"
            );
            let (failed_at, _) = first_failing_byte(&bytes);
            assert_eq!(
                failed_at,
                expected_failing_byte(&bytes),
                "bytewise {bytes:02x?}"
            );
            // The hand-written table accepts exactly the starts of a single code point.
            let one_code_point = match std::str::from_utf8(&bytes) {
                Ok(text) => text.chars().count() == 1,
                Err(error) => error.valid_up_to() == 0 && error.error_len().is_none(),
            };
            assert_eq!(
                check_prefix(&bytes).is_ok(),
                one_code_point,
                "table {bytes:02x?}"
            );
        }
    }

    /// Random bytes, mostly valid UTF-8 with a few corruptions.
    fn text_bytes() -> impl Strategy<Value = Vec<u8>> {
        let edit = (0u8..3, any::<prop::sample::Index>(), any::<u8>());
        prop_oneof![
            3 => (any::<String>(), proptest::collection::vec(edit, 0..4)).prop_map(
                |(text, edits)| {
                    let mut bytes = text.into_bytes();
                    for (kind, index, byte) in edits {
                        let at = index.index(bytes.len() + 1);
                        match kind {
                            0 if at < bytes.len() => bytes[at] ^= byte | 1,
                            1 => bytes.insert(at, byte),
                            _ if at < bytes.len() => {
                                bytes.remove(at);
                            }
                            _ => {}
                        }
                    }
                    bytes
                }
            ),
            1 => proptest::collection::vec(any::<u8>(), 0..40),
        ]
    }

    /// Splits `bytes` into up to six pieces at the given cut points.
    fn split(bytes: &[u8], cuts: &[prop::sample::Index]) -> Vec<Vec<u8>> {
        let mut points: Vec<usize> = cuts.iter().map(|c| c.index(bytes.len() + 1)).collect();
        points.push(0);
        points.push(bytes.len());
        points.sort_unstable();
        points
            .windows(2)
            .map(|w| bytes[w[0]..w[1]].to_vec())
            .collect()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2048))]

        #[test]
        fn pieces_fail_exactly_where_the_prefix_stops_being_valid(
            bytes in text_bytes(),
            cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..6),
        ) {
            let pieces = split(&bytes, &cuts);
            let mut validator = Utf8Validator::new();
            let mut fed = 0;
            let mut expected_failure = None;
            let mut actual_failure = None;
            for (n, piece) in pieces.iter().enumerate() {
                fed += piece.len();
                if expected_failure.is_none() && !is_valid_prefix(&bytes[..fed]) {
                    expected_failure = Some(n);
                }
                if validator.feed(piece).is_err() && actual_failure.is_none() {
                    actual_failure = Some(n);
                }
            }
            prop_assert_eq!(actual_failure, expected_failure);
            let whole_ok = std::str::from_utf8(&bytes).is_ok();
            prop_assert_eq!(validator.finish().is_ok(), whole_ok);
            prop_assert_eq!(validate(&bytes).is_ok(), whole_ok);
            // `finish` reset it: the same validator works again from scratch.
            prop_assert_eq!(validator.feed(&bytes).is_ok(), is_valid_prefix(&bytes));
            prop_assert_eq!(validator.finish().is_ok(), whole_ok);
        }
    }
}
