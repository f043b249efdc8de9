//! The splice step over real loopback sockets: large payloads, masked and unmasked,
//! fragmented and mixed with small frames, arrive intact both ways and are spliced; a source
//! that ends mid-frame gets no close frame after its half frame; a destination that stops
//! reading holds the relay back instead of filling it.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::super::tests::{frame, pair, payload, stalled_destination, NoTotals};
use super::super::{relay, Counters, RelayConfig, RelayOutcome, Side};

const WAIT: Duration = Duration::from_secs(30);

/// A relay between two loopback pairs: (client, backend, the session's counters, the relay).
async fn session(
    keep_alive: bool,
) -> (
    TcpStream,
    TcpStream,
    Arc<Counters>,
    JoinHandle<RelayOutcome>,
) {
    let (client, client_end) = pair().await;
    let (backend_end, backend) = pair().await;
    let config = RelayConfig {
        idle: Duration::from_secs(60),
        buffer: 16384,
        close_grace: Duration::from_secs(1),
        keep_alive,
        io_uring: false,
    };
    let (orders, receiver) = watch::channel(None);
    let counters = Arc::new(Counters::default());
    let relay = tokio::spawn({
        let counters = counters.clone();
        async move {
            let _orders = orders;
            relay(
                Side::tcp(client_end, Bytes::new()),
                Side::tcp(backend_end, Bytes::new()),
                config,
                receiver,
                counters,
                Arc::new(NoTotals::default()),
            )
            .await
        }
    });
    (client, backend, counters, relay)
}

/// What a side sends: large frames of every size class (16 KiB to 1 MiB), small ones between
/// them, and a message in fragments with a ping among them.
fn stream(mask: Option<[u8; 4]>) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, len) in [
        16_384, 16_384, 20, 65_536, 1_048_576, 1_024, 16_384, 300_000,
    ]
    .into_iter()
    .enumerate()
    {
        out.extend(frame(0x82, &payload(len, i), mask));
    }
    out.extend(frame(0x02, &payload(40_000, 1), mask));
    out.extend(frame(0x89, b"ping", mask));
    out.extend(frame(0x00, &payload(20_000, 2), mask));
    out.extend(frame(0x80, &payload(70_000, 3), mask));
    out.extend(frame(0x81, b"done", mask));
    out
}

/// Writes `bytes` to `to` and reads as many from `from`, at once.
async fn through(to: &mut TcpStream, from: &mut TcpStream, bytes: &[u8]) -> Vec<u8> {
    let mut got = vec![0u8; bytes.len()];
    let (wrote, read) = tokio::join!(to.write_all(bytes), from.read_exact(&mut got));
    wrote.unwrap();
    read.unwrap();
    got
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_payloads_are_spliced_intact_both_ways() {
    for keep_alive in [true, false] {
        let (mut client, mut backend, counters, relay) = session(keep_alive).await;
        let up = stream(Some([0x37, 0xfa, 0x21, 0x3d]));
        let down = stream(None);
        let both = async {
            let (client_read, mut client_write) = client.split();
            let (backend_read, mut backend_write) = backend.split();
            let mut got_up = vec![0u8; up.len()];
            let mut got_down = vec![0u8; down.len()];
            let mut client_read = client_read;
            let mut backend_read = backend_read;
            let (a, b, c, d) = tokio::join!(
                client_write.write_all(&up),
                backend_write.write_all(&down),
                backend_read.read_exact(&mut got_up),
                client_read.read_exact(&mut got_down),
            );
            a.unwrap();
            b.unwrap();
            c.unwrap();
            d.unwrap();
            (got_up, got_down)
        };
        let (got_up, got_down) = tokio::time::timeout(WAIT, both)
            .await
            .expect("relayed in 30 s");
        assert!(
            got_up == up,
            "client → backend bytes changed (keep-alive {keep_alive})"
        );
        assert!(
            got_down == down,
            "backend → client bytes changed (keep-alive {keep_alive})"
        );
        let spliced = counters.spliced.load(Ordering::Relaxed);
        assert!(
            spliced > 1_000_000,
            "only {spliced} bytes went through a pipe (keep-alive {keep_alive})"
        );
        // The frame tracker kept step: a close passing through is seen and its code logged.
        let close = frame(0x88, &[0x03, 0xe8], Some([1, 2, 3, 4]));
        let got = tokio::time::timeout(WAIT, through(&mut client, &mut backend, &close))
            .await
            .expect("the close relayed in 30 s");
        assert_eq!(got, close);
        drop((client, backend));
        let outcome = tokio::time::timeout(WAIT, relay)
            .await
            .expect("ends")
            .unwrap();
        assert_eq!(outcome.client_close, Some(1000));
        assert_eq!(outcome.bytes_up, (up.len() + close.len()) as u64);
        assert_eq!(outcome.bytes_down, down.len() as u64);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_source_ending_mid_payload_gets_its_half_frame_and_no_close_frame() {
    let (mut client, mut backend, counters, relay) = session(true).await;
    // A large frame first, so that the next header is peeked and its payload spliced.
    let first = frame(0x82, &payload(16_384, 0), Some([9, 8, 7, 6]));
    let got = tokio::time::timeout(WAIT, through(&mut client, &mut backend, &first))
        .await
        .expect("relayed in 30 s");
    assert_eq!(got, first);
    let whole = frame(0x82, &payload(1_048_576, 1), Some([9, 8, 7, 6]));
    let half = &whole[..300_000];
    client.write_all(half).await.unwrap();
    drop(client);
    let mut rest = Vec::new();
    tokio::time::timeout(WAIT, backend.read_to_end(&mut rest))
        .await
        .expect("the backend's stream ends within 30 s")
        .unwrap();
    assert!(
        rest == half,
        "the backend got {} bytes, not the half frame",
        rest.len()
    );
    assert!(counters.spliced.load(Ordering::Relaxed) > 0);
    drop(backend);
    let outcome = tokio::time::timeout(WAIT, relay)
        .await
        .expect("ends")
        .unwrap();
    assert_eq!(outcome.client_close, None);
    assert_eq!(outcome.bytes_up, (first.len() + half.len()) as u64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_destination_that_stops_reading_holds_the_relay_back() {
    let (mut client, backend, counters, relay) = session(true).await;
    // 48 MiB in 1 MiB frames, made as they go: more than the loopback sockets' buffers on
    // the way can hold; the relay takes only what they and one pipe hold.
    let one = |i: usize| frame(0x82, &payload(1 << 20, i), None);
    let (total, backend) = stalled_destination(&mut client, backend, &counters, 48, one).await;
    assert!(counters.spliced.load(Ordering::Relaxed) > total / 2);
    drop((client, backend));
    let outcome = tokio::time::timeout(WAIT, relay)
        .await
        .expect("ends")
        .unwrap();
    assert_eq!(outcome.bytes_down, total);
}
