//! Properties over arbitrary input: no panic, progress on every message, allocation bounded by
//! the message size limit rather than by lengths a peer declares; and round trips of arbitrary
//! text.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use bytes::BytesMut;
use proptest::prelude::*;

use crate::protocol::{
    Close, Completion, HandshakeRequest, HubMessage, Invocation, Outcome, Outgoing, Payload,
    Protocol, ProtocolError, StreamItem,
};

/// Counts this thread's live heap bytes and their peak, so a test can see what one call
/// allocated while other tests run on other threads.
struct Counting;

thread_local! {
    static LIVE: Cell<i64> = const { Cell::new(0) };
    static PEAK: Cell<i64> = const { Cell::new(0) };
}

fn account(delta: i64) {
    let _ = LIVE.try_with(|live| {
        let now = live.get() + delta;
        live.set(now);
        let _ = PEAK.try_with(|peak| peak.set(peak.get().max(now)));
    });
}

// SAFETY: every call is forwarded unchanged to the system allocator; the counting touches only
// const-initialized thread-locals, which never allocate.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        account(layout.size() as i64);
        // SAFETY: the caller's contract is passed on.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        account(-(layout.size() as i64));
        // SAFETY: the caller's contract is passed on.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        account(new_size as i64 - layout.size() as i64);
        // SAFETY: the caller's contract is passed on.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// The most bytes `run` had allocated at once beyond what was live when it started.
fn peak_allocation(run: impl FnOnce()) -> i64 {
    let start = LIVE.with(Cell::get);
    PEAK.with(|peak| peak.set(start));
    run();
    PEAK.with(Cell::get) - start
}

/// What parsing a message of up to `limit` bytes may allocate: its values (a parsed value
/// takes a few dozen bytes per byte of input at worst) and a fixed overhead.
fn allowance(limit: usize) -> i64 {
    100 * limit as i64 + 64 * 1024
}

/// Parses everything in `bytes` until it is used up, incomplete or refused; each message taken
/// must consume bytes.
fn parse_until_stuck(protocol: Protocol, bytes: &[u8], limit: usize) {
    let mut buffer = BytesMut::from(bytes);
    loop {
        let before = buffer.len();
        match protocol.parse(&mut buffer, limit) {
            Ok(Some(_)) => assert!(buffer.len() < before, "a message took no bytes"),
            Ok(None) => break,
            Err(ProtocolError::TooLarge { size, limit: told }) => {
                assert_eq!(told, limit);
                assert!(size > limit);
                break;
            }
            // A length prefix over 2 GB leaves no record to skip: the stream ends there.
            Err(ProtocolError::Invalid(reason)) if buffer.len() == before => {
                assert_eq!(reason, "Messages over 2GB in size are not supported.");
                break;
            }
            Err(ProtocolError::Invalid(reason)) => assert!(!reason.is_empty()),
        }
    }
}

fn check_bounded(protocol: Protocol, bytes: &[u8], limit: usize) -> Result<(), TestCaseError> {
    let peak = peak_allocation(|| parse_until_stuck(protocol, bytes, limit));
    prop_assert!(
        peak <= allowance(limit),
        "{protocol:?} allocated {peak} bytes for {} input bytes under a limit of {limit}",
        bytes.len()
    );
    Ok(())
}

/// Fragments of JSON hub messages, so random records often get past the JSON syntax.
fn json_record() -> impl Strategy<Value = Vec<u8>> {
    let fragment = prop_oneof![
        Just("{".to_string()),
        Just("}".to_string()),
        Just("[".to_string()),
        Just("]".to_string()),
        Just(",".to_string()),
        Just(":".to_string()),
        (1..10i32).prop_map(|kind| format!("\"type\":{kind}")),
        prop::sample::select(vec![
            "\"invocationId\"",
            "\"target\"",
            "\"arguments\"",
            "\"streamIds\"",
            "\"item\"",
            "\"result\"",
            "\"error\"",
            "\"allowReconnect\"",
            "\"sequenceId\"",
            "\"headers\"",
            "null",
            "true",
            "1",
            "-1",
            "1e400",
            "\"x\"",
            "\"\\ud800\"",
            "{}",
            "[]",
        ])
        .prop_map(str::to_string),
        "[ -~]{0,8}",
    ];
    prop::collection::vec(fragment, 0..24).prop_map(|parts| {
        let mut record = parts.concat().into_bytes();
        record.push(0x1e);
        record
    })
}

/// A framed MessagePack array with a message type and random elements after it.
fn msgpack_message() -> impl Strategy<Value = Vec<u8>> {
    (0..16u8, 0..12u8, prop::collection::vec(any::<u8>(), 0..120)).prop_map(
        |(count, kind, rest)| {
            let mut body = vec![0x90 | count, kind];
            body.extend(rest);
            let mut bytes = vec![body.len() as u8];
            bytes.extend(body);
            bytes
        },
    )
}

/// Declared lengths far beyond the message, where a value, the arguments or the stream ids
/// are read: huge strings, binaries, arrays and maps.
fn msgpack_liar() -> impl Strategy<Value = Vec<u8>> {
    let marker = prop::sample::select(vec![0xdb, 0xc6, 0xdd, 0xdf, 0xc9, 0xdc, 0xde, 0xc5, 0xda]);
    let head = prop::sample::select(vec![
        // A stream item's value.
        vec![0x94, 0x02, 0x80, 0xa1, b'i'],
        // An invocation's arguments.
        vec![0x95, 0x01, 0x80, 0xc0, 0xa1, b'm'],
        // An invocation's stream ids, after no arguments.
        vec![0x96, 0x01, 0x80, 0xc0, 0xa1, b'm', 0x90],
        // A completion's result.
        vec![0x95, 0x03, 0x80, 0xa1, b'i', 0x03],
        // The headers.
        vec![0x93, 0x05],
    ]);
    (head, marker, prop::collection::vec(0x80..=0xffu8, 4..8)).prop_map(|(head, marker, length)| {
        let mut body = head;
        body.push(marker);
        body.extend(length);
        let mut bytes = vec![body.len() as u8];
        bytes.extend(body);
        bytes
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_bytes_never_panic_and_stay_bounded(
        bytes in prop::collection::vec(any::<u8>(), 0..2048),
        limit in 0..1024usize,
    ) {
        check_bounded(Protocol::Json, &bytes, limit)?;
        check_bounded(Protocol::MessagePack, &bytes, limit)?;
        let mut buffer = BytesMut::from(&bytes[..]);
        let _ = HandshakeRequest::parse(&mut buffer, limit);
    }

    #[test]
    fn json_like_records_never_panic_and_stay_bounded(
        records in prop::collection::vec(json_record(), 1..4),
    ) {
        check_bounded(Protocol::Json, &records.concat(), 1024)?;
    }

    #[test]
    fn msgpack_like_messages_never_panic_and_stay_bounded(
        messages in prop::collection::vec(prop_oneof![msgpack_message(), msgpack_liar()], 1..4),
    ) {
        check_bounded(Protocol::MessagePack, &messages.concat(), 1024)?;
    }

    #[test]
    fn arbitrary_text_and_numbers_round_trip(
        id in "\\PC{1,12}",
        target in "\\PC{1,12}",
        error in any::<String>(),
        argument in any::<String>(),
        sequence_id in any::<u64>(),
        allow_reconnect in any::<bool>(),
    ) {
        let messages: Vec<Outgoing> = vec![
            HubMessage::Invocation(Invocation {
                invocation_id: Some(id.clone()),
                target: target.clone(),
                arguments: vec![Payload::new(argument.clone())],
                stream_ids: vec![id.clone()],
            }),
            HubMessage::StreamItem(StreamItem {
                invocation_id: id.clone(),
                item: Payload::new(argument.clone()),
            }),
            HubMessage::Completion(Completion {
                invocation_id: id.clone(),
                outcome: Outcome::Error(error.clone()),
            }),
            HubMessage::Close(Close { error: Some(error.clone()), allow_reconnect }),
            HubMessage::Ack { sequence_id },
        ];
        for protocol in [Protocol::Json, Protocol::MessagePack] {
            let mut out = Vec::new();
            for message in &messages {
                protocol.write(message, &mut out).unwrap();
            }
            let mut buffer = BytesMut::from(&out[..]);
            let Some(HubMessage::Invocation(invocation)) =
                protocol.parse(&mut buffer, usize::MAX).unwrap() else { panic!() };
            prop_assert_eq!(invocation.invocation_id.as_deref(), Some(id.as_str()));
            prop_assert_eq!(&invocation.target, &target);
            prop_assert_eq!(&invocation.stream_ids, &vec![id.clone()]);
            let bound: String = invocation.arguments[0].clone().bind().unwrap();
            prop_assert_eq!(&bound, &argument);
            let Some(HubMessage::StreamItem(item)) =
                protocol.parse(&mut buffer, usize::MAX).unwrap() else { panic!() };
            prop_assert_eq!(item.item.bind::<String>().unwrap(), argument.clone());
            let Some(HubMessage::Completion(completion)) =
                protocol.parse(&mut buffer, usize::MAX).unwrap() else { panic!() };
            prop_assert_eq!(completion.outcome, Outcome::Error(error.clone()));
            let Some(HubMessage::Close(close)) =
                protocol.parse(&mut buffer, usize::MAX).unwrap() else { panic!() };
            // MessagePack writes an empty error as nil, as the reference does.
            let expected = Some(error.clone()).filter(|error| {
                protocol == Protocol::Json || !error.is_empty()
            });
            prop_assert_eq!(close, Close { error: expected, allow_reconnect });
            prop_assert_eq!(
                protocol.parse(&mut buffer, usize::MAX).unwrap(),
                Some(HubMessage::Ack { sequence_id })
            );
            prop_assert!(buffer.is_empty());
        }
    }
}

#[test]
fn the_allocation_counter_sees_this_threads_allocations() {
    let peak = peak_allocation(|| {
        let block = std::hint::black_box(vec![0u8; 100_000]);
        drop(block);
    });
    assert!(peak >= 100_000, "{peak}");
}
