//! Memory under hostile peers, on the [`sockway::server::Server`] runner:
//!
//! - a peer that never reads: a handler sending 1000 × 64 KiB blocks once the write buffer
//!   and the kernel's socket buffers are full (backpressure), the process's memory grows by
//!   at most the write buffer limit plus a margin, a send timeout lets the handler give up and
//!   close within twice the close timeout, and every send that completed reaches the peer;
//! - a compression bomb: one small permessage-deflate frame that inflates to 64 MiB against a
//!   1 MiB message limit fails the connection with 1009 and the process's peak memory grows by
//!   at most the limit plus a margin;
//! - a ping flood from a peer that never reads: the handler keeps receiving, pongs are
//!   coalesced while the output is backed up (the last ping still gets its pong), and memory
//!   stays flat.

use std::io::Write as _;
use std::time::{Duration, Instant};

use flate2::write::DeflateEncoder;
use sockway::server::WebSocketLayer;
use sockway::server::{AcceptOptions, Layer, ServerOptions, ServerWebSocket, UpgradeInfo};
use sockway::{CloseCode, DeflateConfig, Error, WebSocketConfig};
use sockway_tests::frame::{Event, Frame, Sender, RSV1};
use sockway_tests::http1;
use sockway_tests::peer::{PeerError, RawPeer};
use tokio::sync::mpsc;
use tokio::time::Instant as TokioInstant;

use crate::support::{
    exclusive, mib, not_found, peak_rss_bytes, reset_peak_rss, rss_bytes, tcp_buffer_max, within,
    Runner, MIB,
};

/// Size of each message the flooding handler sends.
const CHUNK: usize = 64 * 1024;
/// How many it tries to send.
const CHUNKS: usize = 1000;
/// How long one send may wait before the handler gives up.
const SEND_TIMEOUT: Duration = Duration::from_millis(500);
/// The close timeout of the flooding handler's socket.
const CLOSE_TIMEOUT: Duration = Duration::from_millis(500);
/// Allowance for allocator slack, runtime tasks and test bookkeeping.
const MARGIN: usize = 16 * MIB;

/// What the flooding handler saw.
#[derive(Debug)]
struct Flood {
    /// Sends that completed.
    sent: usize,
    /// Whether a send timed out (rather than all completing, or one failing).
    timed_out: bool,
    /// A send error, if one failed.
    error: Option<String>,
    /// RSS while the send was blocked.
    rss_blocked: usize,
    /// What `close` returned and how long it took.
    close: Result<(), String>,
    close_took: Duration,
}

/// Sends up to [`CHUNKS`] messages of [`CHUNK`] bytes, each within [`SEND_TIMEOUT`]; on a
/// timeout closes with 1008 and reports.
async fn flood(mut socket: ServerWebSocket, report: mpsc::Sender<Flood>) {
    let chunk = vec![0x5a; CHUNK];
    let (mut sent, mut timed_out, mut error) = (0, false, None);
    for _ in 0..CHUNKS {
        match tokio::time::timeout(SEND_TIMEOUT, socket.send_binary(&chunk)).await {
            Ok(Ok(())) => sent += 1,
            Ok(Err(e)) => {
                error = Some(e.to_string());
                break;
            }
            Err(_) => {
                timed_out = true;
                break;
            }
        }
    }
    let rss_blocked = rss_bytes();
    let started = Instant::now();
    let close = socket
        .close(CloseCode::POLICY_VIOLATION, "send timed out")
        .await
        .map(drop)
        .map_err(|e| e.to_string());
    let close_took = started.elapsed();
    drop(socket);
    let _ = report
        .send(Flood {
            sent,
            timed_out,
            error,
            rss_blocked,
            close,
            close_took,
        })
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_that_never_reads_blocks_the_sender_and_memory_stays_bounded() {
    let _alone = exclusive().await;
    let (tx, mut reports) = mpsc::channel(1);
    let socket_config = WebSocketConfig::default().close_timeout(CLOSE_TIMEOUT);
    let write_buffer_limit = socket_config.write_buffer_limit;
    let app = WebSocketLayer::new(move |socket: ServerWebSocket, _info: UpgradeInfo| {
        flood(socket, tx.clone())
    })
    .path("/flood")
    .options(AcceptOptions::default().socket_config(socket_config))
    .layer(not_found());
    let server = Runner::start(ServerOptions::default(), None, app).await;
    let rss_before = rss_bytes();

    // The peer completes the handshake and then reads nothing.
    let (stream, leftover) = within(
        "handshake",
        Duration::from_secs(5),
        http1::connect(server.addr, "/flood", &[]),
    )
    .await
    .expect("handshake");
    let flood = within(
        "the handler's verdict",
        Duration::from_secs(20),
        reports.recv(),
    )
    .await
    .expect("a report");
    let (wmem, rmem) = tcp_buffer_max();
    let sent_bytes = flood.sent * CHUNK;
    let in_flight_bound = write_buffer_limit + wmem + rmem + 2 * CHUNK;
    let growth = flood.rss_blocked.saturating_sub(rss_before);
    eprintln!(
        "never-reading peer: {} of {CHUNKS} sends completed ({}) before one blocked for \
         {SEND_TIMEOUT:?}; bound write buffer {} + socket buffers {} + {}; RSS {} before, {} \
         while blocked (+{}); close took {:?}: {:?}",
        flood.sent,
        mib(sent_bytes),
        mib(write_buffer_limit),
        mib(wmem),
        mib(rmem),
        mib(rss_before),
        mib(flood.rss_blocked),
        mib(growth),
        flood.close_took,
        flood.close,
    );
    assert!(flood.error.is_none(), "{flood:?}");
    assert!(flood.timed_out, "the send must block: {flood:?}");
    assert!(flood.sent < CHUNKS);
    assert!(
        sent_bytes <= in_flight_bound,
        "{} accepted while the peer reads nothing (bound {})",
        mib(sent_bytes),
        mib(in_flight_bound)
    );
    assert!(
        growth <= write_buffer_limit + CHUNK + MARGIN,
        "RSS grew by {} while the peer read nothing",
        mib(growth)
    );
    assert!(
        flood.close_took <= 2 * CLOSE_TIMEOUT + Duration::from_millis(500),
        "close must give up within twice the close timeout: {flood:?}"
    );

    // Now the peer reads: every send that completed arrives, then the connection ends.
    let mut peer = RawPeer::new(stream, Sender::Client, leftover);
    let deadline = TokioInstant::now() + Duration::from_secs(20);
    let mut received = 0;
    loop {
        match peer.next_event(deadline).await {
            Ok(Event::Binary(data)) => {
                assert_eq!(data.len(), CHUNK);
                received += 1;
            }
            Ok(Event::Close(..)) => {}
            Ok(Event::Eof) | Err(PeerError::Io(_)) => break,
            // The send that timed out may have written part of its frame.
            Err(PeerError::Protocol(e)) if e.contains("stream ended inside a frame") => break,
            other => panic!("unexpected {other:?} after {received} messages"),
        }
    }
    assert!(
        received >= flood.sent,
        "{} sends completed but only {received} messages arrived",
        flood.sent
    );
    assert!(server.is_running());
}

/// A permessage-deflate payload (RFC 7692 section 7.2.1: raw DEFLATE, the trailing
/// `00 00 ff ff` removed) that inflates to `mib` MiB of zeros: one sync-flushed MiB repeated.
fn deflate_bomb(mib_out: usize) -> Vec<u8> {
    let mut encoder = DeflateEncoder::new(Vec::new(), flate2::Compression::best());
    encoder.write_all(&vec![0u8; MIB]).expect("compress");
    encoder.flush().expect("sync flush");
    let block = encoder.get_ref().clone();
    assert!(
        block.ends_with(&[0, 0, 0xff, 0xff]),
        "a sync flush ends the block"
    );
    let mut payload = block.repeat(mib_out);
    payload.truncate(payload.len() - 4);
    payload
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_compression_bomb_closes_with_1009_and_memory_stays_bounded() {
    let _alone = exclusive().await;
    const LIMIT: usize = MIB;
    let (tx, mut results) = mpsc::channel(1);
    let app = WebSocketLayer::new(move |mut socket: ServerWebSocket, _info: UpgradeInfo| {
        let tx = tx.clone();
        async move {
            let result = socket.recv().await.map(|m| m.map(|m| m.len()));
            let _ = tx.send(result).await;
        }
    })
    .path("/bomb")
    .options(
        AcceptOptions::default()
            .compression(Some(DeflateConfig::default()))
            .max_message_size(LIMIT),
    )
    .layer(not_found());
    let server = Runner::start(ServerOptions::default(), None, app).await;
    let bomb = deflate_bomb(64);

    let mut stream = server.connect().await;
    let key = http1::new_key();
    let request = http1::request(
        &server.addr.to_string(),
        "/bomb",
        &key,
        &["Sec-WebSocket-Extensions: permessage-deflate"],
    );
    tokio::io::AsyncWriteExt::write_all(&mut stream, request.as_bytes())
        .await
        .expect("send handshake");
    let (head, leftover) = http1::read_head(&mut stream, Duration::from_secs(5))
        .await
        .expect("response");
    http1::check_upgrade_response(&head, &key).expect("101");
    assert!(
        head.has_token("Sec-WebSocket-Extensions", "permessage-deflate"),
        "compression accepted: {head:?}"
    );
    let mut peer = RawPeer::new(stream, Sender::Client, leftover);

    let tracked = reset_peak_rss();
    let before = if tracked {
        peak_rss_bytes()
    } else {
        rss_bytes()
    };
    peer.send(&[Frame::binary(bomb.clone()).rsv(RSV1)])
        .await
        .expect("send the bomb");
    let event = peer
        .next_event(TokioInstant::now() + Duration::from_secs(10))
        .await
        .expect("the server's answer");
    assert!(matches!(event, Event::Close(Some(1009), _)), "{event}");
    // Answer the close and close TCP as a client should; the server then ends at once (it
    // waits at most its close timeout for the client's FIN otherwise).
    peer.send(&[Frame::close(1009)]).await.expect("close reply");
    peer.shutdown_write().await.expect("FIN");
    let result = within("handler result", Duration::from_secs(3), results.recv())
        .await
        .expect("a result");
    match &result {
        Err(Error::Protocol(e)) => assert_eq!(e.close_code(), CloseCode::MESSAGE_TOO_BIG),
        other => panic!("the handler must learn why: {other:?}"),
    }
    let after = if tracked {
        peak_rss_bytes()
    } else {
        rss_bytes()
    };
    let growth = after.saturating_sub(before);
    eprintln!(
        "compression bomb: {} B frame inflating to 64 MiB, limit {}: close 1009; {} RSS {} \
         before, {} after (+{})",
        bomb.len(),
        mib(LIMIT),
        if tracked { "peak" } else { "current" },
        mib(before),
        mib(after),
        mib(growth)
    );
    assert!(
        growth <= LIMIT + MARGIN,
        "memory grew by {} for a {} limit",
        mib(growth),
        mib(LIMIT)
    );
    // The connection then ends.
    let end = peer
        .next_event(TokioInstant::now() + Duration::from_secs(3))
        .await;
    assert!(
        matches!(end, Ok(Event::Eof) | Err(PeerError::Io(_))),
        "{end:?}"
    );
    assert!(server.is_running());
}

/// Pings the flooding client sends, in batches of [`PING_BATCH`].
const PINGS: usize = 100_000;
const PING_BATCH: usize = 1000;

/// A ping payload of 125 bytes carrying its number.
fn ping_payload(seq: usize) -> Vec<u8> {
    let mut payload = (seq as u64).to_be_bytes().to_vec();
    payload.resize(125, b'.');
    payload
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ping_flood_from_a_peer_that_never_reads_neither_stalls_nor_grows_the_server() {
    let _alone = exclusive().await;
    let (tx, mut reports) = mpsc::channel(1);
    let app = WebSocketLayer::new(move |mut socket: ServerWebSocket, _info: UpgradeInfo| {
        let tx = tx.clone();
        async move {
            while let Ok(Some(message)) = socket.recv().await {
                let _ = tx.send((message, rss_bytes())).await;
            }
        }
    })
    .path("/pings")
    .options(AcceptOptions::default())
    .layer(not_found());
    let server = Runner::start(ServerOptions::default(), None, app).await;
    let (stream, leftover) = within(
        "handshake",
        Duration::from_secs(5),
        http1::connect(server.addr, "/pings", &[]),
    )
    .await
    .expect("handshake");
    let mut peer = RawPeer::new(stream, Sender::Client, leftover);
    let rss_before = rss_bytes();

    // 100 000 pings (12.7 MB) and never a read: the pongs cannot all be written.
    within("sending the pings", Duration::from_secs(30), async {
        for batch in 0..PINGS / PING_BATCH {
            let frames: Vec<Frame> = (0..PING_BATCH)
                .map(|i| Frame::ping(ping_payload(batch * PING_BATCH + i)))
                .collect();
            peer.send(&frames).await.expect("send pings");
        }
        peer.send(&[Frame::text("done")]).await.expect("send text");
    })
    .await;
    // The handler still receives: the pongs did not stop it.
    let (message, rss_handler) = within(
        "the text after the pings",
        Duration::from_secs(10),
        reports.recv(),
    )
    .await
    .expect("a report");
    assert_eq!(message, sockway::Message::text("done"));
    let growth = rss_handler.saturating_sub(rss_before);

    // Now read: pongs were coalesced, and the last one answers the last ping.
    let last = ping_payload(PINGS - 1);
    let deadline = TokioInstant::now() + Duration::from_secs(20);
    let mut pongs = 0;
    loop {
        match peer.next_event(deadline).await.expect("pongs") {
            Event::Pong(payload) => {
                pongs += 1;
                if payload == last {
                    break;
                }
            }
            other => panic!("unexpected {other} after {pongs} pongs"),
        }
    }
    eprintln!(
        "ping flood: {PINGS} pings from a peer that did not read; the handler kept receiving; \
         {pongs} pongs sent (coalesced), the last one for the last ping; RSS {} before, {} \
         after (+{})",
        mib(rss_before),
        mib(rss_handler),
        mib(growth)
    );
    assert!(
        pongs < PINGS,
        "pongs were coalesced while the output was backed up"
    );
    assert!(growth <= MARGIN, "RSS grew by {}", mib(growth));
    assert!(server.is_running());
}
