//! Properties of the relay's two stream followers over arbitrary streams and arbitrary
//! slicings: the frame tracker ([`super::boundary`]) and the pong filter
//! ([`super::heartbeat::PongFilter`]) reach the same state and relay the same bytes however
//! the kernel happens to cut the stream, and on a stream of frames the filter takes out
//! exactly the pongs that answer the gateway's pings.

use proptest::prelude::*;
use sockway_proto::frame::encode_frame;
use sockway_proto::OpCode;

use super::boundary::{whole_frames, FrameTracker};
use super::heartbeat::{PongFilter, Scanned, PAYLOAD_LEN};

/// The payload of the gateway's pings in these tests.
const OURS: [u8; PAYLOAD_LEN] = [0x5A; PAYLOAD_LEN];

/// One frame as the wire carries it, with whether it is a pong answering the gateway.
#[derive(Debug, Clone)]
struct Frame {
    bytes: Vec<u8>,
    answers_us: bool,
}

fn frame(opcode: OpCode, payload: Vec<u8>, mask: Option<[u8; 4]>) -> Frame {
    Frame {
        answers_us: opcode == OpCode::Pong && payload == OURS,
        bytes: encode_frame(opcode, &payload, mask),
    }
}

fn any_frame() -> impl Strategy<Value = Frame> {
    let opcode = prop_oneof![
        Just(OpCode::Text),
        Just(OpCode::Binary),
        Just(OpCode::Continuation),
        Just(OpCode::Ping),
        Just(OpCode::Pong),
        Just(OpCode::Close),
    ];
    let payload = prop_oneof![
        3 => Just(OURS.to_vec()),
        1 => Just(OURS[..PAYLOAD_LEN - 1].to_vec()),
        3 => prop::collection::vec(any::<u8>(), 0..40),
        1 => prop::collection::vec(any::<u8>(), 120..300),
        1 => prop::collection::vec(any::<u8>(), 65_530..65_600),
    ];
    (opcode, payload, prop::option::of(any::<[u8; 4]>()))
        .prop_map(|(opcode, payload, mask)| frame(opcode, payload, mask))
}

/// Cut points for a stream: chunk sizes, repeated until the stream is used up.
fn sizes() -> impl Strategy<Value = Vec<usize>> {
    prop::collection::vec(1usize..200, 1..8)
}

fn chunks<'a>(stream: &'a [u8], sizes: &[usize]) -> Vec<&'a [u8]> {
    let mut out = Vec::new();
    let mut rest = stream;
    for size in sizes.iter().cycle() {
        if rest.is_empty() {
            break;
        }
        let (chunk, tail) = rest.split_at((*size).min(rest.len()));
        out.push(chunk);
        rest = tail;
    }
    out
}

/// What the filter relays of `stream` delivered as `chunks`.
fn filtered(chunks: &[&[u8]]) -> Vec<u8> {
    let mut filter = PongFilter::new(OURS);
    let mut out = Vec::new();
    for chunk in chunks {
        match filter.scan(chunk) {
            Scanned::Pass => out.extend_from_slice(chunk),
            Scanned::Edited(bytes) => out.extend_from_slice(&bytes),
        }
    }
    out
}

/// Everything the tracker lets the relay see.
fn observed(tracker: &FrameTracker) -> (bool, Option<u16>, bool, u64, u64, u64) {
    (
        tracker.at_boundary(),
        tracker.close_code(),
        tracker.close_seen(),
        tracker.frames(),
        tracker.last_len(),
        tracker.payload_left(),
    )
}

fn tracked(chunks: &[&[u8]]) -> FrameTracker {
    let mut tracker = FrameTracker::new();
    for chunk in chunks {
        tracker.feed(chunk);
    }
    tracker
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn the_filter_takes_out_exactly_the_pongs_that_answer_the_gateway(
        frames in prop::collection::vec(any_frame(), 0..12),
        sizes in sizes(),
    ) {
        let stream: Vec<u8> = frames.iter().flat_map(|f| f.bytes.clone()).collect();
        let expected: Vec<u8> = frames
            .iter()
            .filter(|f| !f.answers_us)
            .flat_map(|f| f.bytes.clone())
            .collect();
        prop_assert_eq!(filtered(&chunks(&stream, &sizes)), expected);
    }

    #[test]
    fn arbitrary_bytes_are_filtered_the_same_however_they_are_cut(
        stream in prop::collection::vec(any::<u8>(), 0..600),
        sizes in sizes(),
    ) {
        prop_assert_eq!(filtered(&chunks(&stream, &sizes)), filtered(&[&stream]));
    }

    #[test]
    fn the_tracker_ends_in_the_same_state_however_the_stream_is_cut(
        frames in prop::collection::vec(any_frame(), 0..12),
        garbage in prop::collection::vec(any::<u8>(), 0..40),
        sizes in sizes(),
    ) {
        let mut stream: Vec<u8> = frames.iter().flat_map(|f| f.bytes.clone()).collect();
        let whole = tracked(&[&stream]);
        prop_assert!(whole.at_boundary());
        prop_assert_eq!(whole.frames(), frames.len() as u64);
        prop_assert_eq!(observed(&tracked(&chunks(&stream, &sizes))), observed(&whole));
        stream.extend_from_slice(&garbage);
        prop_assert_eq!(
            observed(&tracked(&chunks(&stream, &sizes))),
            observed(&tracked(&[&stream]))
        );
    }

    #[test]
    fn one_walk_over_whole_frames_does_what_feeding_them_does(
        before in prop::collection::vec(any_frame(), 0..4),
        frames in prop::collection::vec(any_frame(), 0..8),
        filtered_walk in any::<bool>(),
    ) {
        let start: Vec<u8> = before.iter().flat_map(|f| f.bytes.clone()).collect();
        let chunk: Vec<u8> = frames.iter().flat_map(|f| f.bytes.clone()).collect();
        let mut fed = tracked(&[&start]);
        let mut walked = fed.clone();
        fed.feed(&chunk);
        let walk = whole_frames(&chunk, filtered_walk);
        if !filtered_walk {
            prop_assert!(walk.is_some(), "whole frames are found whole");
        }
        if let Some(walk) = walk {
            walked.apply(walk);
            prop_assert_eq!(observed(&walked), observed(&fed));
        }
    }
}
