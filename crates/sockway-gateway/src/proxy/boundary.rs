//! Watching WebSocket frame boundaries in a relayed byte stream, without buffering or
//! unmasking payloads (RFC 6455 section 5.2).
//!
//! The relay copies bytes as they come; this tracker tells it whether the bytes written so
//! far end on a frame boundary, so that the gateway can put its own close frame (1001, on
//! idle timeout, drain or shutdown) into the stream without cutting a frame in two. Control
//! frames may sit between the fragments of a message (RFC 6455 section 5.4), so a boundary
//! is enough. It also picks up the status code of a close frame passing through, for the
//! access log.
//!
//! Headers are read with the core's lenient parser ([`RawFrameHeader`]): the gateway only
//! forwards frames, judging them is the endpoints' job. Close frames the gateway writes
//! itself come from [`close_frame`], built on the core's codec.

use sockway_proto::close::{CloseCode, CloseFrame};
use sockway_proto::frame::{encode_frame, header_len, RawFrameHeader, MAX_HEADER_LEN};
use sockway_proto::mask::apply_mask;
use sockway_proto::OpCode;

/// The close opcode's wire value (RFC 6455 section 5.2).
const CLOSE: u8 = 0x8;
/// The pong opcode's wire value.
const PONG: u8 = 0xA;

/// What a chunk made of whole frames does to a [`FrameTracker`] at a frame boundary, found
/// by [`whole_frames`] in one walk over the chunk's headers, to be applied once the chunk is
/// written ([`FrameTracker::apply`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WholeFrames {
    /// Frames in the chunk.
    frames: u64,
    /// The payload length of the last one.
    last_len: u64,
    /// A close frame is among them.
    saw_close: bool,
    /// The status code of the first of them that has one (RFC 6455 section 5.5.1).
    close_code: Option<u16>,
}

/// Walks `bytes`, which start at a frame boundary, over its frame headers once: `Some` when
/// the chunk is whole frames only, and, when `filtered` (a [`super::heartbeat::PongFilter`]
/// follows the stream), none of them a pong and none a header the filter's strict parse
/// refuses (a reserved opcode, a 64-bit length with its top bit set; RFC 6455 section 5.2).
/// Such a chunk passes the filter unchanged and leaves it at a boundary, so the relay walks
/// it once for both the filter and the tracker; anything else (a frame cut by the chunk's
/// end, a pong) takes the two walks.
pub fn whole_frames(mut bytes: &[u8], filtered: bool) -> Option<WholeFrames> {
    let mut whole = WholeFrames::default();
    while !bytes.is_empty() {
        let (header, len) = RawFrameHeader::parse(bytes)?;
        let refused = header.opcode == PONG
            || OpCode::from_bits(header.opcode).is_none()
            || header.payload_len >> 63 != 0;
        if filtered && refused {
            return None;
        }
        let payload = usize::try_from(header.payload_len).ok()?;
        let frame = bytes.get(len..)?.get(..payload)?;
        if header.opcode == CLOSE {
            whole.saw_close = true;
            if whole.close_code.is_none() {
                if let Some(&[a, b]) = frame.first_chunk::<2>() {
                    let mut code = [a, b];
                    if let Some(key) = header.mask {
                        apply_mask(&mut code, key, 0);
                    }
                    whole.close_code = Some(u16::from_be_bytes(code));
                }
            }
        }
        whole.frames += 1;
        whole.last_len = header.payload_len;
        bytes = &bytes[len + payload..];
    }
    Some(whole)
}

/// Incremental frame-boundary tracker for one direction.
#[derive(Debug, Clone, Default)]
pub struct FrameTracker {
    /// The header bytes of a frame whose header arrived in pieces.
    header: [u8; MAX_HEADER_LEN],
    /// How many of `header` are filled.
    have: usize,
    /// Payload bytes of the current frame still to come.
    remaining: u64,
    in_payload: bool,
    close: Option<CloseCapture>,
    close_code: Option<u16>,
    saw_close: bool,
    frames: u64,
    /// The payload length of the frame that started last (0 before the first).
    last_len: u64,
}

/// The first two payload bytes of a close frame (its status code, RFC 6455 section 5.5.1),
/// gathered as they pass.
#[derive(Debug, Clone, Copy)]
struct CloseCapture {
    mask: Option<[u8; 4]>,
    seen: usize,
    code: [u8; 2],
}

impl FrameTracker {
    /// A tracker at the start of a stream (a frame boundary).
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether the bytes fed so far end exactly at a frame boundary.
    pub fn at_boundary(&self) -> bool {
        !self.in_payload && self.have == 0
    }

    /// The status code of the first close frame seen (`None` if none, or if it had no code).
    pub fn close_code(&self) -> Option<u16> {
        self.close_code
    }

    /// Whether a close frame has passed (with or without a code).
    pub fn close_seen(&self) -> bool {
        self.close_code.is_some() || self.saw_close
    }

    /// Payload bytes of the current frame still to come that can pass without being looked
    /// at: all of them mid-payload, except in a close frame, whose code is read as it passes;
    /// 0 at a boundary or inside a header.
    pub fn payload_left(&self) -> u64 {
        if self.in_payload && self.close.is_none() {
            self.remaining
        } else {
            0
        }
    }

    /// Notes that `n` payload bytes went through unseen (spliced, never in user space); `n`
    /// is at most [`payload_left`](Self::payload_left), more is cut to it.
    pub fn skip(&mut self, n: u64) {
        let n = n.min(self.payload_left());
        if n == 0 {
            return;
        }
        self.remaining -= n;
        if self.remaining == 0 {
            self.end_frame();
        }
    }

    /// The payload length of the frame that started last: a large one says the next is
    /// likely large too (the relay's cue to look at the next header before reading it).
    pub fn last_len(&self) -> u64 {
        self.last_len
    }

    /// Frames that started so far.
    #[cfg(test)]
    pub fn frames(&self) -> u64 {
        self.frames
    }

    /// Notes that a chunk of whole frames went through, as found by [`whole_frames`] when
    /// this tracker was at a frame boundary (as [`feed`](Self::feed) with the chunk would).
    pub fn apply(&mut self, whole: WholeFrames) {
        debug_assert!(self.at_boundary());
        if whole.frames == 0 {
            return;
        }
        self.frames += whole.frames;
        self.last_len = whole.last_len;
        self.saw_close |= whole.saw_close;
        self.close_code = self.close_code.or(whole.close_code);
    }

    /// Feeds bytes that went through, in order.
    pub fn feed(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            if self.in_payload {
                let take = (self.remaining.min(bytes.len() as u64)) as usize;
                self.capture_close(&bytes[..take]);
                self.remaining -= take as u64;
                bytes = &bytes[take..];
                if self.remaining == 0 {
                    self.end_frame();
                }
                continue;
            }
            if self.have == 0 {
                // A whole header at hand (the usual case): take it at once.
                if let Some((header, len)) = RawFrameHeader::parse(bytes) {
                    bytes = &bytes[len..];
                    self.start_payload(header);
                    continue;
                }
            }
            // A header in pieces: gather at most what it needs, then parse it.
            let needed = if self.have >= 2 {
                header_len(self.header[1])
            } else {
                2
            };
            let take = (needed - self.have).min(bytes.len());
            self.header[self.have..self.have + take].copy_from_slice(&bytes[..take]);
            self.have += take;
            bytes = &bytes[take..];
            if let Some((header, _)) = RawFrameHeader::parse(&self.header[..self.have]) {
                self.have = 0;
                self.start_payload(header);
            }
        }
    }

    fn start_payload(&mut self, header: RawFrameHeader) {
        self.frames += 1;
        self.last_len = header.payload_len;
        if header.opcode == CLOSE {
            self.saw_close = true;
            if header.payload_len >= 2 {
                self.close = Some(CloseCapture {
                    mask: header.mask,
                    seen: 0,
                    code: [0; 2],
                });
            }
        }
        if header.payload_len == 0 {
            self.end_frame();
        } else {
            self.remaining = header.payload_len;
            self.in_payload = true;
        }
    }

    fn capture_close(&mut self, bytes: &[u8]) {
        let Some(capture) = &mut self.close else {
            return;
        };
        let take = (2 - capture.seen).min(bytes.len());
        if take == 0 {
            return;
        }
        let piece = &mut capture.code[capture.seen..capture.seen + take];
        piece.copy_from_slice(&bytes[..take]);
        if let Some(key) = capture.mask {
            apply_mask(piece, key, capture.seen);
        }
        capture.seen += take;
        if capture.seen == 2 && self.close_code.is_none() {
            self.close_code = Some(u16::from_be_bytes(capture.code));
        }
    }

    fn end_frame(&mut self) {
        self.in_payload = false;
        self.remaining = 0;
        self.close = None;
    }
}

/// A close frame from the gateway: `code` and `reason` (cut to fit a control frame, RFC 6455
/// section 5.5), masked with a fresh key when it goes to a backend (a client's frames must be
/// masked, section 5.3), unmasked when it goes to a client.
pub fn close_frame(code: u16, reason: &str, masked: bool) -> Vec<u8> {
    let payload = CloseFrame::new(CloseCode(code), reason).encode();
    encode_frame(OpCode::Close, &payload, masked.then(rand::random))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tracks_boundaries_byte_by_byte_and_in_chunks() {
        // Unmasked text "hello", then masked binary of 300 bytes, then a masked close 1000.
        let mut stream = vec![0x81, 5];
        stream.extend_from_slice(b"hello");
        stream.extend_from_slice(&[0x82, 0x80 | 126, 0x01, 0x2c, 1, 2, 3, 4]);
        stream.extend(std::iter::repeat_n(0u8, 300));
        let close = close_frame(1000, "bye", true);
        stream.extend_from_slice(&close);
        let boundaries = [7usize, 7 + 8 + 300, stream.len()];

        let mut t = FrameTracker::new();
        for (i, b) in stream.iter().enumerate() {
            t.feed(std::slice::from_ref(b));
            assert_eq!(
                t.at_boundary(),
                boundaries.contains(&(i + 1)),
                "after byte {i}"
            );
        }
        assert_eq!(t.close_code(), Some(1000));
        assert_eq!(t.frames(), 3);

        let mut t = FrameTracker::new();
        for chunk in stream.chunks(13) {
            t.feed(chunk);
        }
        assert!(t.at_boundary());
        assert_eq!(t.close_code(), Some(1000));
    }

    #[test]
    fn whole_headers_and_split_headers_agree() {
        // Frames of every header size: 2, 2+4, 4, 4+4, 10, 10+4 bytes, then a close 1001.
        let mut stream = vec![0x81, 3, b'a', b'b', b'c'];
        stream.extend_from_slice(&[0x81, 0x83, 9, 9, 9, 9, 1, 2, 3]);
        stream.extend_from_slice(&[0x82, 126, 0, 130]);
        stream.extend(std::iter::repeat_n(7u8, 130));
        stream.extend_from_slice(&[0x82, 0x80 | 126, 0, 126, 1, 2, 3, 4]);
        stream.extend(std::iter::repeat_n(7u8, 126));
        stream.extend_from_slice(&[0x82, 127, 0, 0, 0, 0, 0, 0, 0, 2, 5, 6]);
        stream.extend_from_slice(&[0x89, 0x80 | 127, 0, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4]);
        stream.extend_from_slice(&close_frame(1001, "away", true));
        let mut reference = FrameTracker::new();
        let mut boundaries = Vec::new();
        for b in &stream {
            reference.feed(std::slice::from_ref(b));
            boundaries.push(reference.at_boundary());
        }
        for size in 1..=stream.len() {
            let mut t = FrameTracker::new();
            let mut at = 0;
            for chunk in stream.chunks(size) {
                t.feed(chunk);
                at += chunk.len();
                assert_eq!(t.at_boundary(), boundaries[at - 1], "chunks of {size}");
            }
            assert_eq!(t.frames(), reference.frames(), "chunks of {size}");
            assert_eq!(t.close_code(), Some(1001), "chunks of {size}");
        }
        assert_eq!(reference.frames(), 7);
    }

    #[test]
    fn sixty_four_bit_lengths_and_empty_close() {
        let mut t = FrameTracker::new();
        t.feed(&[0x82, 127, 0, 0, 0, 0, 0, 1, 0, 0]);
        assert!(!t.at_boundary());
        t.feed(&vec![0u8; 65_536]);
        assert!(t.at_boundary());
        t.feed(&[0x88, 0]);
        assert!(t.at_boundary());
        assert!(t.close_seen());
        assert_eq!(t.close_code(), None);
    }

    #[test]
    fn reserved_opcodes_and_forbidden_lengths_pass_through() {
        // The endpoints judge frames; the tracker only follows them.
        let mut t = FrameTracker::new();
        t.feed(&[0x83, 1, 0]);
        assert!(t.at_boundary());
        t.feed(&[0x82, 127, 0x80, 0, 0, 0, 0, 0, 0, 0, 1]);
        assert!(!t.at_boundary());
        assert_eq!(t.frames(), 2);
    }

    #[test]
    fn skipped_payload_ends_the_frame_like_fed_payload() {
        let mut t = FrameTracker::new();
        t.feed(&[0x82, 126, 0x40, 0x00]);
        assert_eq!(t.payload_left(), 16_384);
        assert_eq!(t.last_len(), 16_384);
        t.skip(16_000);
        assert_eq!(t.payload_left(), 384);
        t.skip(1_000);
        assert!(t.at_boundary());
        assert_eq!(t.payload_left(), 0);
        // A close frame's payload is never skipped: its code is read as it passes.
        t.feed(&[0x88, 2]);
        assert_eq!(t.payload_left(), 0);
        t.skip(2);
        assert!(!t.at_boundary());
        t.feed(&[0x03, 0xe8]);
        assert_eq!(t.close_code(), Some(1000));
        assert_eq!(t.last_len(), 2);
    }

    #[test]
    fn one_walk_over_whole_frames_agrees_with_feeding_them() {
        // Every header size, masked and not, close frames with and without a code.
        let mut frames = vec![
            vec![0x81, 3, b'a', b'b', b'c'],
            vec![0x82, 0x83, 9, 9, 9, 9, 1, 2, 3],
            vec![0x88, 0],
            close_frame(1001, "away", true),
            close_frame(4000, "", false),
        ];
        let mut long = vec![0x82, 126, 0, 200];
        long.extend(std::iter::repeat_n(7u8, 200));
        frames.push(long);
        let mut longest = vec![0x02, 127, 0, 0, 0, 0, 0, 1, 0, 0];
        longest.extend(std::iter::repeat_n(1u8, 65_536));
        frames.push(longest);
        for start in 0..frames.len() {
            for end in start + 1..=frames.len() {
                let chunk = frames[start..end].concat();
                let mut fed = FrameTracker::new();
                fed.feed(&chunk);
                let mut walked = FrameTracker::new();
                walked.apply(whole_frames(&chunk, true).expect("whole frames"));
                assert!(walked.at_boundary());
                assert_eq!(walked.frames(), fed.frames(), "frames {start}..{end}");
                assert_eq!(walked.last_len(), fed.last_len(), "frames {start}..{end}");
                assert_eq!(
                    walked.close_code(),
                    fed.close_code(),
                    "frames {start}..{end}"
                );
                assert_eq!(
                    walked.close_seen(),
                    fed.close_seen(),
                    "frames {start}..{end}"
                );
            }
        }
    }

    #[test]
    fn a_cut_frame_a_pong_or_a_refused_header_takes_the_two_walks() {
        let text = [0x81, 2, b'h', b'i'];
        // A frame cut by the chunk's end, in its header or its payload.
        assert_eq!(whole_frames(&text[..1], false), None);
        assert_eq!(whole_frames(&text[..3], false), None);
        // A pong, a reserved opcode, a length with its top bit set: the filter must see
        // them, unless no filter follows the stream.
        let pong = [0x8a, 1, 0];
        let reserved = [0x83, 0];
        let top = [0x82, 127, 0x80, 0, 0, 0, 0, 0, 0, 0];
        for refused in [&pong[..], &reserved[..]] {
            let chunk = [&text[..], refused].concat();
            assert_eq!(whole_frames(&chunk, true), None);
            assert!(whole_frames(&chunk, false).is_some());
        }
        assert_eq!(whole_frames(&top, true), None);
        // A close code already logged stays the first one.
        let mut t = FrameTracker::new();
        t.apply(whole_frames(&close_frame(1000, "", false), false).expect("whole"));
        t.apply(whole_frames(&close_frame(1001, "", true), false).expect("whole"));
        assert_eq!(t.close_code(), Some(1000));
    }

    #[test]
    fn close_frames_are_well_formed() {
        let f = close_frame(1001, "idle", false);
        assert_eq!(f, [0x88, 6, 0x03, 0xe9, b'i', b'd', b'l', b'e']);
        let m = close_frame(1001, &"é".repeat(100), true);
        assert_eq!(m[1] & 0x80, 0x80);
        assert!(usize::from(m[1] & 0x7f) <= 125);
        let mut t = FrameTracker::new();
        t.feed(&m);
        assert!(t.at_boundary());
        assert_eq!(t.close_code(), Some(1001));
    }
}
