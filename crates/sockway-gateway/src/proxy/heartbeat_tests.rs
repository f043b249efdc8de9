use super::*;
use sockway_proto::frame::encode_frame;

/// Feeds `input` in chunks of `size` and joins what is relayed.
fn relayed(filter: &mut PongFilter, input: &[u8], size: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for chunk in input.chunks(size) {
        match filter.scan(chunk) {
            Scanned::Pass => out.extend_from_slice(chunk),
            Scanned::Edited(bytes) => out.extend_from_slice(&bytes),
        }
    }
    out
}

#[test]
fn pongs_answering_the_gateway_are_taken_out_whatever_the_split() {
    let ours = [7u8; PAYLOAD_LEN];
    for mask in [None, Some([1, 2, 3, 4])] {
        let big = vec![b'x'; 70_000];
        let parts = [
            encode_frame(OpCode::Text, b"hello", mask),
            encode_frame(OpCode::Pong, &ours, mask),
            encode_frame(OpCode::Pong, b"theirs", mask),
            encode_frame(OpCode::Binary, &big, mask),
            encode_frame(OpCode::Pong, &[], mask),
            encode_frame(OpCode::Pong, &ours, mask),
            encode_frame(OpCode::Ping, b"p", mask),
        ];
        let input: Vec<u8> = parts.concat();
        let expected: Vec<u8> = [
            &parts[0][..],
            &parts[2][..],
            &parts[3][..],
            &parts[4][..],
            &parts[6][..],
        ]
        .concat();
        for size in [1, 2, 3, 7, 16, 1000, input.len()] {
            let mut filter = PongFilter::new(ours);
            assert!(
                relayed(&mut filter, &input, size) == expected,
                "mask {mask:?}, chunks of {size}"
            );
        }
    }
}

#[test]
fn chunks_without_pongs_pass_untouched() {
    let mut filter = PongFilter::new([7; PAYLOAD_LEN]);
    let text = encode_frame(OpCode::Text, b"hello", None);
    assert_eq!(filter.scan(&text), Scanned::Pass);
    assert_eq!(filter.scan(&text[..3]), Scanned::Pass);
    assert_eq!(filter.scan(&text[3..]), Scanned::Pass);
}

#[test]
fn a_stream_that_is_not_frames_is_relayed_as_is() {
    let mut filter = PongFilter::new([7; PAYLOAD_LEN]);
    // Opcode 3 is reserved: the filter stops parsing and relays everything.
    let input = [0x83u8, 0x01, b'a', 0x8A, 0x00];
    assert_eq!(relayed(&mut filter, &input, 1), input);
}

#[test]
fn ping_frames_are_masked_towards_the_backend_only() {
    let beat = Heartbeat::new(Duration::from_secs(20));
    for side in [CLIENT, BACKEND] {
        let bytes = beat.ping_frame(side);
        let (h, n) = FrameHeader::parse(&bytes).unwrap().unwrap();
        assert_eq!(h.opcode, OpCode::Ping);
        assert_eq!(h.mask.is_some(), side == BACKEND);
        let mut payload = bytes[n..].to_vec();
        if let Some(key) = h.mask {
            apply_mask(&mut payload, key, 0);
        }
        assert_eq!(payload, beat.payload[side]);
        // The side's answer is what the filter takes out.
        let mut filter = PongFilter::new(beat.payload[side]);
        let answer = encode_frame(OpCode::Pong, &payload, (side == CLIENT).then_some([9; 4]));
        assert_eq!(filter.scan(&answer), Scanned::Edited(Vec::new()));
    }
}

#[test]
fn quiet_sides_are_pinged_and_closed_only_if_they_do_not_answer() {
    let s = Duration::from_secs;
    let beat = Heartbeat::new(s(20));
    assert_eq!(beat.next(s(0)), Beat::WaitUntil(10_000));
    assert_eq!(beat.next(s(10)), Beat::Ping(CLIENT));
    assert_eq!(beat.next(s(10)), Beat::Ping(BACKEND));
    assert!(beat.ping_wanted(CLIENT) && beat.ping_wanted(BACKEND));
    beat.ping_sent(CLIENT, s(10));
    beat.ping_sent(BACKEND, s(11));
    assert!(!beat.ping_wanted(CLIENT));
    assert_eq!(beat.next(s(12)), Beat::WaitUntil(20_000));
    // The client answers; the backend does not.
    beat.heard(CLIENT, s(13));
    assert_eq!(beat.next(s(20)), Beat::WaitUntil(21_000));
    assert_eq!(beat.next(s(21)), Beat::Unanswered(BACKEND));
}

#[test]
fn skipped_payload_keeps_the_filter_in_step() {
    let ours = [7u8; PAYLOAD_LEN];
    let mut filter = PongFilter::new(ours);
    assert!(filter.at_boundary());
    let big = encode_frame(OpCode::Binary, &vec![b'x'; 20_000], Some([1, 2, 3, 4]));
    // The header and a few payload bytes are scanned, the rest passes unscanned.
    assert_eq!(filter.scan(&big[..20]), Scanned::Pass);
    assert_eq!(filter.payload_left(), 20_000 - 12);
    assert!(!filter.at_boundary());
    filter.skip(20_000 - 12);
    assert!(filter.at_boundary());
    assert_eq!(filter.payload_left(), 0);
    // The pong after it is still taken out.
    let pong = encode_frame(OpCode::Pong, &ours, Some([5, 6, 7, 8]));
    assert_eq!(filter.scan(&pong[..3]), Scanned::Edited(Vec::new()));
    assert_eq!(filter.payload_left(), 0);
    assert!(!filter.at_boundary());
    assert_eq!(filter.scan(&pong[3..]), Scanned::Edited(Vec::new()));
    assert!(filter.at_boundary());
}
