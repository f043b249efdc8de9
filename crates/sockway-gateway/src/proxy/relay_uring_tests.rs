//! The relay on io_uring over real loopback sockets: payloads of every size arrive intact
//! both ways (masked up, unmasked down, fragmented, with pings between fragments, after a
//! prefix), a close passes and is logged, a destination that stops reading holds the ring
//! back, keep-alive pings go out and their pongs are kept, and close orders and the idle
//! limit close the session with 1001. Where the kernel refuses io_uring the relay runs on
//! epoll and the tests say so instead of checking the ring. The tests marked so run the
//! epoll path's copy loop with the same streams (its one walk over whole frames for the
//! frame tracker and the pong filter, its sends and receives without a waker first).

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use sockway_proto::frame::{encode_frame, RawFrameHeader};
use sockway_proto::OpCode;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::super::tests::{frame, pair, payload, stalled_destination, NoTotals};
use super::super::{relay, Counters, RelayConfig, RelayOutcome, Side};
use super::{rings, TAKEN};
use crate::drain::CloseOrder;

const WAIT: Duration = Duration::from_secs(30);

/// A session on the ring (if the kernel allows one).
struct Session {
    client: TcpStream,
    backend: TcpStream,
    counters: Arc<Counters>,
    orders: watch::Sender<Option<CloseOrder>>,
    relay: JoinHandle<RelayOutcome>,
}

/// A relay with io_uring on between two loopback pairs; `prefix` as the client's bytes read
/// before the relay started.
async fn session(idle: Duration, keep_alive: bool, prefix: &[u8]) -> Session {
    session_on(true, idle, keep_alive, prefix).await
}

/// A relay between two loopback pairs, on io_uring (if the kernel allows it) or on epoll.
async fn session_on(io_uring: bool, idle: Duration, keep_alive: bool, prefix: &[u8]) -> Session {
    let (client, client_end) = pair().await;
    let (backend_end, backend) = pair().await;
    let config = RelayConfig {
        idle,
        buffer: 16384,
        close_grace: Duration::from_secs(1),
        keep_alive,
        io_uring,
    };
    let (orders, receiver) = watch::channel(None);
    let counters = Arc::new(Counters::default());
    let taken = TAKEN.load(Ordering::Relaxed);
    let relay = tokio::spawn(relay(
        Side::tcp(client_end, Bytes::copy_from_slice(prefix)),
        Side::tcp(backend_end, Bytes::new()),
        config,
        receiver,
        counters.clone(),
        Arc::new(NoTotals::default()),
    ));
    let on_ring = async {
        while TAKEN.load(Ordering::Relaxed) == taken {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    };
    if io_uring && rings(16384).is_some() {
        tokio::time::timeout(WAIT, on_ring)
            .await
            .expect("a ring takes the session within 30 s");
    } else if io_uring {
        eprintln!("io_uring unavailable here: the relay ran on epoll");
    }
    Session {
        client,
        backend,
        counters,
        orders,
        relay,
    }
}

/// Small frames of every header size, a message in fragments with a ping between them.
fn small(mask: Option<[u8; 4]>) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, len) in [20, 0, 125, 126, 1_000, 4_096, 4_000, 8_000]
        .into_iter()
        .enumerate()
    {
        out.extend(frame(0x82, &payload(len, i), mask));
    }
    out.extend(frame(0x01, &payload(3_000, 1), mask));
    out.extend(frame(0x89, b"ping", mask));
    out.extend(frame(0x00, &payload(20, 2), mask));
    out.extend(frame(0x80, &payload(7_000, 3), mask));
    out
}

/// Large frames after small ones: the ring hands a plain session to the splice path (and
/// keeps a TLS client's, `relay_uring_tls_tests.rs`).
pub(super) fn large(mask: Option<[u8; 4]>) -> Vec<u8> {
    let mut out = small(mask);
    for (i, len) in [16_384, 20, 1_048_576, 100_000].into_iter().enumerate() {
        out.extend(frame(0x82, &payload(len, i), mask));
    }
    out
}

/// Sends `up` from the client and `down` from the backend at once, and reads both.
async fn both_ways(s: &mut Session, up: &[u8], down: &[u8]) {
    exchange(&mut s.client, &mut s.backend, up, down).await;
}

/// Sends `up` from `client` and `down` from `backend` at once, and reads both (also for a
/// TLS client, `relay_uring_tls_tests.rs`).
pub(super) async fn exchange(
    client: &mut (impl AsyncRead + AsyncWrite + Unpin),
    backend: &mut TcpStream,
    up: &[u8],
    down: &[u8],
) {
    let (mut client_read, mut client_write) = tokio::io::split(client);
    let (mut backend_read, mut backend_write) = backend.split();
    let mut got_up = vec![0u8; up.len()];
    let mut got_down = vec![0u8; down.len()];
    let all = async {
        tokio::try_join!(
            async {
                client_write.write_all(up).await?;
                client_write.flush().await
            },
            backend_write.write_all(down),
            backend_read.read_exact(&mut got_up),
            client_read.read_exact(&mut got_down),
        )
    };
    tokio::time::timeout(WAIT, all)
        .await
        .expect("relayed within 30 s")
        .unwrap();
    assert!(got_up == up, "client → backend bytes changed");
    assert!(got_down == down, "backend → client bytes changed");
}

/// Reads one frame's header and payload (unmasked as sent: the test's frames are small).
pub(super) async fn read_frame(from: &mut (impl AsyncRead + Unpin)) -> (u8, Vec<u8>) {
    let mut head = Vec::new();
    loop {
        let mut byte = [0u8];
        from.read_exact(&mut byte).await.unwrap();
        head.push(byte[0]);
        if let Some((h, _)) = RawFrameHeader::parse(&head) {
            let mut payload = vec![0u8; h.payload_len as usize];
            from.read_exact(&mut payload).await.unwrap();
            return (h.opcode, payload);
        }
    }
}

pub(super) async fn ends(relay: JoinHandle<RelayOutcome>) -> RelayOutcome {
    tokio::time::timeout(WAIT, relay)
        .await
        .expect("the relay ends within 30 s")
        .unwrap()
}

/// The sizes of the close frames [`closed_both_ways`] sends up and down.
pub(super) const CLOSES: [usize; 2] = [8, 4];

/// A close goes each way (the frame tracker kept step: each is seen and its code logged),
/// then both ends go: the relay's outcome, with both codes checked.
pub(super) async fn closed_both_ways(
    mut client: impl AsyncRead + AsyncWrite + Unpin,
    mut backend: TcpStream,
    relay: JoinHandle<RelayOutcome>,
) -> RelayOutcome {
    let close = frame(0x88, &[0x03, 0xe8], Some([1, 2, 3, 4]));
    exchange(&mut client, &mut backend, &close, b"").await;
    let close_back = frame(0x88, &[0x03, 0xe8], None);
    exchange(&mut client, &mut backend, b"", &close_back).await;
    assert_eq!([close.len(), close_back.len()], CLOSES);
    drop((client, backend));
    let outcome = ends(relay).await;
    assert_eq!(outcome.client_close, Some(1000));
    assert_eq!(outcome.backend_close, Some(1000));
    outcome
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn payloads_of_every_size_relay_intact_both_ways() {
    let streams = [(true, small as fn(_) -> _), (false, small), (true, large)];
    for ((keep_alive, stream), io_uring) in
        streams.into_iter().flat_map(|s| [(s, true), (s, false)])
    {
        let mut s = session_on(io_uring, Duration::from_secs(60), keep_alive, b"").await;
        let up = stream(Some([0x37, 0xfa, 0x21, 0x3d]));
        let down = stream(None);
        both_ways(&mut s, &up, &down).await;
        let outcome = closed_both_ways(s.client, s.backend, s.relay).await;
        assert_eq!(outcome.bytes_up, (up.len() + CLOSES[0]) as u64);
        assert_eq!(outcome.bytes_down, (down.len() + CLOSES[1]) as u64);
        assert_eq!(outcome.ended_by_gateway, None);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prefix_goes_first() {
    let first = frame(0x81, b"early", Some([5, 6, 7, 8]));
    let mut s = session(Duration::from_secs(60), true, &first).await;
    let then = frame(0x81, b"then", Some([5, 6, 7, 8]));
    let mut want = first.clone();
    want.extend_from_slice(&then);
    s.client.write_all(&then).await.unwrap();
    let mut got = vec![0u8; want.len()];
    tokio::time::timeout(WAIT, s.backend.read_exact(&mut got))
        .await
        .expect("within 30 s")
        .unwrap();
    assert_eq!(got, want);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_destination_that_stops_reading_holds_the_ring_back() {
    let mut s = session(Duration::from_secs(60), true, b"").await;
    // 24 MiB in 4 KiB frames (below the splice size, so they stay on the ring): more than
    // the loopback sockets' buffers on the way hold.
    let one = |i: usize| frame(0x82, &payload(4096, i), None);
    let (total, backend) =
        stalled_destination(&mut s.client, s.backend, &s.counters, 6 * 1024, one).await;
    drop((s.client, backend));
    assert_eq!(ends(s.relay).await.bytes_down, total);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quiet_side_is_pinged_and_its_pong_kept() {
    for io_uring in [true, false] {
        quiet_side_pinged(io_uring).await;
    }
}

/// Keep-alive pings a side quiet for half the idle limit (1 s here); its pong to the
/// gateway's ping does not reach the other side.
async fn quiet_side_pinged(io_uring: bool) {
    let mut s = session_on(io_uring, Duration::from_secs(2), true, b"").await;
    both_ways(&mut s, &frame(0x82, b"hi", Some([1, 1, 1, 1])), b"").await;
    pinged_and_pong_kept(&mut s.client, &mut s.backend).await;
}

/// The client, quiet since its last message, gets the gateway's ping and answers it; the
/// backend sees only what the client sends after the pong (and pings of its own, being
/// quiet too, which it answers).
pub(super) async fn pinged_and_pong_kept(
    client: &mut (impl AsyncRead + AsyncWrite + Unpin),
    backend: &mut TcpStream,
) {
    let (opcode, payload) = tokio::time::timeout(WAIT, read_frame(client))
        .await
        .expect("a ping within 30 s");
    assert_eq!(opcode, 0x9);
    let pong = encode_frame(OpCode::Pong, &payload, Some([4, 3, 2, 1]));
    let after = frame(0x81, b"after", Some([0; 4]));
    client.write_all(&[pong, after].concat()).await.unwrap();
    client.flush().await.unwrap();
    let seen = async {
        loop {
            match read_frame(backend).await {
                (0x9, payload) => {
                    let pong = frame(0x8a, &payload, None);
                    backend.write_all(&pong).await.unwrap();
                }
                other => return other,
            }
        }
    };
    let seen = tokio::time::timeout(WAIT, seen).await.expect("within 30 s");
    assert_eq!(seen, (0x1, b"after".to_vec()));
}

/// Reads a close frame from `side` (masked when it goes to the backend): its code.
pub(super) async fn close_code(side: &mut (impl AsyncRead + Unpin), masked: bool) -> u16 {
    let mut head = [0u8; 2];
    tokio::time::timeout(WAIT, side.read_exact(&mut head))
        .await
        .expect("a close frame within 30 s")
        .unwrap();
    assert_eq!(head[0], 0x88);
    assert_eq!(head[1] & 0x80 != 0, masked);
    let mut rest = vec![0u8; usize::from(head[1] & 0x7f) + if masked { 4 } else { 0 }];
    side.read_exact(&mut rest).await.unwrap();
    match masked {
        true => u16::from_be_bytes([rest[4] ^ rest[0], rest[5] ^ rest[1]]),
        false => u16::from_be_bytes([rest[0], rest[1]]),
    }
}

/// Orders the relay closed, as a gateway shutting down does.
pub(super) fn shut_down(orders: &watch::Sender<Option<CloseOrder>>) {
    let order = CloseOrder {
        code: 1001,
        reason: "shutdown",
    };
    orders.send_replace(Some(order));
}

/// Both sides get a close frame with 1001, going away (RFC 6455 section 7.4.1).
pub(super) async fn both_hear_1001(client: &mut (impl AsyncRead + Unpin), backend: &mut TcpStream) {
    assert_eq!(close_code(client, false).await, 1001);
    assert_eq!(close_code(backend, true).await, 1001);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_orders_and_the_idle_limit_close_with_1001() {
    for idle in [false, true] {
        let limit = Duration::from_secs(if idle { 1 } else { 60 });
        let mut s = session(limit, false, b"").await;
        both_ways(
            &mut s,
            &frame(0x82, b"hi", Some([1, 1, 1, 1])),
            &frame(0x82, b"yo", None),
        )
        .await;
        if !idle {
            shut_down(&s.orders);
        }
        both_hear_1001(&mut s.client, &mut s.backend).await;
        drop((s.client, s.backend));
        let outcome = ends(s.relay).await;
        let want = if idle { "idle timeout" } else { "shutdown" };
        assert_eq!(outcome.ended_by_gateway, Some(want));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_sessions_at_once_share_the_buffer_pool_without_stalling() {
    // 100 sessions × 2 directions reading 16 KiB at a time want more buffers than a ring's
    // pool has (64): receives that find it empty wait for buffers to come back.
    let mut sessions = Vec::new();
    for _ in 0..100 {
        sessions.push(session(Duration::from_secs(60), false, b"").await);
    }
    let up: Vec<u8> = (0..64)
        .flat_map(|i| frame(0x82, &payload(4000, i), Some([7; 4])))
        .collect();
    let down: Vec<u8> = (0..64)
        .flat_map(|i| frame(0x82, &payload(4000, i), None))
        .collect();
    let all = sessions.iter_mut().map(|s| both_ways(s, &up, &down));
    futures_util::future::join_all(all).await;
    for s in sessions {
        drop((s.client, s.backend));
        let outcome = ends(s.relay).await;
        assert_eq!(outcome.bytes_up, up.len() as u64);
        assert_eq!(outcome.bytes_down, down.len() as u64);
    }
}

/// 20-byte frames, many to a write (so that reads find several whole frames at once), a
/// pong that answers no ping of the gateway's, and frames of 1 KiB to 1 MiB between them.
fn many_small(mask: Option<[u8; 4]>) -> Vec<u8> {
    let mut out = Vec::new();
    for i in 0..500 {
        out.extend(frame(0x82, &payload(20, i), mask));
        if i % 100 == 7 {
            out.extend(frame(0x8a, b"a stranger's pong", mask));
            out.extend(frame(0x82, &payload(1024 << (i / 100 * 5 / 2), i), mask));
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whole_frames_many_to_a_read_and_a_close_among_them_both_paths() {
    for (io_uring, keep_alive) in [(false, true), (false, false), (true, true)] {
        let mut s = session_on(io_uring, Duration::from_secs(60), keep_alive, b"").await;
        // A close in the same write as the frames before it: the one walk over a chunk of
        // whole frames sees it and its code.
        let mut up = many_small(Some([9, 8, 7, 6]));
        up.extend(frame(
            0x88,
            &[0x03, 0xe9, b'b', b'y', b'e'],
            Some([5, 5, 5, 5]),
        ));
        let mut down = many_small(None);
        down.extend(frame(0x88, &[0x0f, 0xa0], None));
        both_ways(&mut s, &up, &down).await;
        drop((s.client, s.backend));
        let outcome = ends(s.relay).await;
        assert_eq!(outcome.client_close, Some(1001), "io_uring: {io_uring}");
        assert_eq!(outcome.backend_close, Some(4000), "io_uring: {io_uring}");
        assert_eq!(outcome.bytes_up, up.len() as u64);
        assert_eq!(outcome.bytes_down, down.len() as u64);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_close_order_mid_frame_shuts_that_way_without_a_close_frame_on_epoll() {
    let mut s = session_on(false, Duration::from_secs(60), true, b"").await;
    // Whole frames, then the first 1,000 bytes of a 4,000-byte frame's payload.
    let mut up = frame(0x82, &payload(20, 1), Some([1, 2, 3, 4]));
    let cut = frame(0x82, &payload(4_000, 2), Some([1, 2, 3, 4]));
    up.extend_from_slice(&cut[..8 + 1_000]);
    both_ways(&mut s, &up, &frame(0x82, b"ok", None)).await;
    let order = CloseOrder {
        code: 1001,
        reason: "shutdown",
    };
    s.orders.send_replace(Some(order));
    // The backend's stream is mid-frame: it ends without a close frame after the half.
    let mut rest = Vec::new();
    tokio::time::timeout(WAIT, s.backend.read_to_end(&mut rest))
        .await
        .expect("the backend's side shut within 30 s")
        .unwrap();
    assert!(rest.is_empty(), "{} bytes after the half frame", rest.len());
    // The client's stream is at a boundary: it gets close 1001.
    let (opcode, payload) = tokio::time::timeout(WAIT, read_frame(&mut s.client))
        .await
        .expect("a close frame within 30 s");
    assert_eq!((opcode, &payload[..2]), (0x8, &1001u16.to_be_bytes()[..]));
    drop((s.client, s.backend));
    assert_eq!(ends(s.relay).await.ended_by_gateway, Some("shutdown"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_destination_that_stops_reading_holds_small_frames_back_on_epoll() {
    let mut s = session_on(false, Duration::from_secs(60), true, b"").await;
    // 24 MiB in 1 KiB frames: partial sends, backlogs, and the wait for writability.
    let one = |i: usize| frame(0x82, &payload(1024, i), None);
    let (total, backend) =
        stalled_destination(&mut s.client, s.backend, &s.counters, 24 * 1024, one).await;
    drop((s.client, backend));
    assert_eq!(ends(s.relay).await.bytes_down, total);
}
