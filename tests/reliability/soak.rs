//! Soak: many connections to the [`sockway::server::Server`] runner echo sequence-numbered
//! messages for a bounded time. Each connection sends a deterministic stream (text and
//! binary, 1 B to 64 KiB, one in four fragmented with `send_fragment`, permessage-deflate on
//! every tenth connection) with a few messages in flight, and checks every echo against the
//! message it must be: nothing lost, duplicated or reordered. The server echoes frame by frame
//! (`recv_fragment` / `send_fragment`), so fragmentation and compression are exercised on both
//! sides.
//!
//! Warm-up: every connection's first two messages are the largest (64 KiB, whole and in four
//! fragments), so that every buffer on both ends has reached its largest size once every
//! connection has had them echoed. The process's RSS at the end must stay within 1.5 × + 16 MiB of its RSS then
//! (both ends run in this process).
//!
//! Defaults: 500 connections for 10 s; `SOCKWAY_SOAK_CONNECTIONS` and `SOCKWAY_SOAK_SECS` make
//! it bigger.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use sockway::client::{ClientBuilder, ClientStream};
use sockway::server::WebSocketLayer;
use sockway::server::{AcceptOptions, Layer, ServerOptions, ServerWebSocket, UpgradeInfo};
use sockway::{CloseCode, DeflateConfig, Message, MessageKind, WebSocket};
use sockway_tests::payload;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::support::{env_usize, exclusive, mib, not_found, rss_bytes, within, Rng, Runner, MIB};

/// The largest message.
const MAX_SIZE: usize = 64 * 1024;
/// Messages of the warm-up: the largest message whole, then in four fragments.
const WARM_UP: u64 = 2;
/// Messages a connection may have in flight (sent, echo not yet received).
const WINDOW: usize = 4;
/// Connections opened at once while setting up.
const CONNECT_CONCURRENCY: usize = 64;
/// Every `COMPRESSED_EVERY`-th connection offers permessage-deflate.
const COMPRESSED_EVERY: u64 = 10;

/// Counters of the server's echo handlers.
#[derive(Debug, Default)]
struct ServerTally {
    clean: AtomicUsize,
    failed: AtomicUsize,
}

/// The server side: every data frame back as it came, until the connection ends.
async fn echo(mut socket: ServerWebSocket, tally: Arc<ServerTally>) {
    loop {
        match socket.recv_fragment().await {
            Ok(Some(piece)) => {
                if let Err(e) = socket
                    .send_fragment(piece.kind, &piece.data, piece.end_of_message)
                    .await
                {
                    eprintln!("soak: server send failed: {e}");
                    tally.failed.fetch_add(1, Ordering::Relaxed);
                    return;
                }
            }
            Ok(None) => {
                tally.clean.fetch_add(1, Ordering::Relaxed);
                return;
            }
            Err(e) => {
                eprintln!("soak: server receive failed: {e}");
                tally.failed.fetch_add(1, Ordering::Relaxed);
                return;
            }
        }
    }
}

/// Filler computed once: multibyte-rich text of [`MAX_SIZE`] bytes, and twice that many
/// pseudo-random bytes (messages take a window at an offset of their own).
fn fillers() -> &'static (String, Vec<u8>) {
    static FILLERS: OnceLock<(String, Vec<u8>)> = OnceLock::new();
    FILLERS.get_or_init(|| {
        (
            payload::text(MAX_SIZE),
            payload::bytes(2 * MAX_SIZE, 0x50a4),
        )
    })
}

/// One planned message: its kind, bytes, and where it is split into fragments (empty: sent
/// whole).
struct Planned {
    kind: MessageKind,
    data: Vec<u8>,
    cuts: Vec<usize>,
}

/// The message number `seq` of connection `conn`: a pure function, so the reader can check
/// each echo without the writer telling it what was sent. The first two are the warm-up
/// ([`WARM_UP`]: 64 KiB of binary whole, then in four fragments); the sizes of the others are
/// spread log-uniformly over 1 B to 64 KiB. Messages long enough start with `c{conn}s{seq};`, shorter ones are letters
/// that depend on `seq`.
fn plan(conn: u64, seq: u64) -> Planned {
    let (text, bytes) = fillers();
    // Where this message's filler starts in the shared random bytes.
    let offset = ((conn * 7919 + seq * 104_729) % MAX_SIZE as u64) as usize;
    if seq < WARM_UP {
        let mut data = format!("c{conn}s{seq};").into_bytes();
        let rest = MAX_SIZE - data.len();
        data.extend_from_slice(&bytes[offset..offset + rest]);
        let quarter = MAX_SIZE / 4;
        let cuts = if seq == 0 {
            Vec::new()
        } else {
            vec![quarter, 2 * quarter, 3 * quarter]
        };
        return Planned {
            kind: MessageKind::Binary,
            data,
            cuts,
        };
    }
    let mut rng = Rng::new((conn << 32) ^ seq ^ 0x50a4_0000_0000_0000);
    let kind = if rng.below(2) == 0 {
        MessageKind::Text
    } else {
        MessageKind::Binary
    };
    let bits = rng.below(17);
    let size = 1 + rng.below(1 << bits) as usize;
    debug_assert!(size <= MAX_SIZE);
    let tag = format!("c{conn}s{seq};");
    let data = if size < tag.len() {
        (0..size as u64)
            .map(|i| b'a' + ((seq + i) % 26) as u8)
            .collect()
    } else {
        let mut data = tag.into_bytes();
        let rest = size - data.len();
        match kind {
            MessageKind::Text => {
                // The text filler cut at a character boundary, padded to the size.
                let mut end = rest;
                while !text.is_char_boundary(end) {
                    end -= 1;
                }
                data.extend_from_slice(&text.as_bytes()[..end]);
                data.resize(size, b'z');
            }
            MessageKind::Binary => data.extend_from_slice(&bytes[offset..offset + rest]),
        }
        data
    };
    let mut cuts = Vec::new();
    if size >= 2 && rng.below(4) == 0 {
        for _ in 0..1 + rng.below(3) {
            cuts.push(1 + rng.below(size as u64 - 1) as usize);
        }
        cuts.sort_unstable();
        cuts.dedup();
    }
    Planned { kind, data, cuts }
}

/// What one client connection did.
#[derive(Debug, Default)]
struct ClientReport {
    sent: u64,
    received: u64,
    bytes: u64,
}

/// When the soak stops, and how many connections have finished their warm-up message.
#[derive(Debug, Default)]
struct Progress {
    stop: AtomicBool,
    warmed_up: AtomicUsize,
}

/// Sends planned messages until told to stop, keeping at most [`WINDOW`] in flight, and
/// checks every echo; then closes with 1000 and waits for the close handshake.
async fn drive(
    conn: u64,
    socket: WebSocket<ClientStream>,
    progress: Arc<Progress>,
) -> Result<ClientReport, String> {
    let (mut reader, mut writer) = socket.split();
    let window = Arc::new(Semaphore::new(WINDOW));
    let writer_window = window.clone();
    let writer_progress = progress.clone();
    let write = async move {
        let mut seq = 0u64;
        while seq < WARM_UP || !writer_progress.stop.load(Ordering::Relaxed) {
            match writer_window.acquire().await {
                Ok(permit) => permit.forget(),
                Err(_) => break, // the reader gave up
            }
            let planned = plan(conn, seq);
            let result = if planned.cuts.is_empty() {
                match planned.kind {
                    MessageKind::Text => {
                        let text = String::from_utf8(planned.data).expect("planned text");
                        writer.send(Message::text(text)).await
                    }
                    MessageKind::Binary => writer.send(Message::binary(planned.data)).await,
                }
            } else {
                send_in_pieces(&mut writer, &planned).await
            };
            result.map_err(|e| format!("connection {conn}: send #{seq}: {e}"))?;
            seq += 1;
        }
        writer
            .close(CloseCode::NORMAL, "soak done")
            .await
            .map_err(|e| format!("connection {conn}: close: {e}"))?;
        Ok::<u64, String>(seq)
    };
    let read = async move {
        let mut report = ClientReport::default();
        let outcome = loop {
            match reader.recv().await {
                Ok(Some(message)) => {
                    let seq = report.received;
                    let expected = plan(conn, seq);
                    if message.kind() != expected.kind || message.as_bytes() != expected.data {
                        break Err(format!(
                            "connection {conn}: echo #{seq} is not message #{seq} ({:?}, {} B): \
                             got {:?} {}",
                            expected.kind,
                            expected.data.len(),
                            message.kind(),
                            sockway_tests::frame::brief(message.as_bytes())
                        ));
                    }
                    report.received += 1;
                    report.bytes += message.len() as u64;
                    if report.received == WARM_UP {
                        progress.warmed_up.fetch_add(1, Ordering::Relaxed);
                    }
                    window.add_permits(1);
                }
                Ok(None) => match reader.close_info() {
                    Some(info) if info.code == CloseCode::NORMAL => break Ok(()),
                    other => break Err(format!("connection {conn}: closed with {other:?}")),
                },
                Err(e) => break Err(format!("connection {conn}: receive: {e}")),
            }
        };
        window.close();
        outcome.map(|()| report)
    };
    let (sent, report) = tokio::join!(write, read);
    let mut report = report?;
    report.sent = sent?;
    if report.sent != report.received {
        return Err(format!(
            "connection {conn}: sent {} messages, {} came back",
            report.sent, report.received
        ));
    }
    Ok(report)
}

/// Sends a planned message as fragments cut at its `cuts`.
async fn send_in_pieces(
    writer: &mut sockway::WebSocketWriter<ClientStream>,
    planned: &Planned,
) -> Result<(), sockway::Error> {
    let mut start = 0;
    for end in planned.cuts.iter().copied().chain([planned.data.len()]) {
        let last = end == planned.data.len();
        writer
            .send_fragment(planned.kind, &planned.data[start..end], last)
            .await?;
        start = end;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn soak_echoes_every_message_in_order_with_bounded_memory() {
    let _alone = exclusive().await;
    let connections = env_usize("SOCKWAY_SOAK_CONNECTIONS", 500);
    let soak = Duration::from_secs(env_usize("SOCKWAY_SOAK_SECS", 10) as u64);

    let tally = Arc::new(ServerTally::default());
    let handler_tally = tally.clone();
    let app = WebSocketLayer::new(move |socket: ServerWebSocket, _info: UpgradeInfo| {
        echo(socket, handler_tally.clone())
    })
    .path("/soak")
    .options(AcceptOptions::default().compression(Some(DeflateConfig::default())))
    .layer(not_found());
    let server = Runner::start(ServerOptions::default(), None, app).await;
    let url = server.url("/soak");

    // Open every connection first, a bounded number at a time.
    let rss_start = rss_bytes();
    let setup_started = Instant::now();
    let gate = Arc::new(Semaphore::new(CONNECT_CONCURRENCY));
    let mut opening = JoinSet::new();
    for conn in 0..connections as u64 {
        let gate = gate.clone();
        let compression = (conn % COMPRESSED_EVERY == 0).then(DeflateConfig::default);
        let builder = ClientBuilder::new(url.as_str())
            .compression(compression)
            .connect_timeout(Duration::from_secs(20));
        opening.spawn(async move {
            let _permit = gate.acquire_owned().await.expect("gate");
            let (socket, _info) = builder
                .connect()
                .await
                .map_err(|e| format!("connection {conn}: connect: {e}"))?;
            let compressed = socket.compression().is_some();
            if compressed != (conn % COMPRESSED_EVERY == 0) {
                return Err(format!(
                    "connection {conn}: compression negotiated = {compressed}"
                ));
            }
            Ok::<_, String>((conn, socket))
        });
    }
    let mut sockets = Vec::with_capacity(connections);
    while let Some(joined) = within(
        "opening connections",
        Duration::from_secs(60),
        opening.join_next(),
    )
    .await
    {
        sockets.push(joined.expect("connect task").expect("connect"));
    }
    let setup = setup_started.elapsed();
    let rss_idle = rss_bytes();

    // Traffic: the warm-up, then the soak, with RSS sampled between them and at the end.
    let started = Instant::now();
    let progress = Arc::new(Progress::default());
    let mut running = JoinSet::new();
    for (conn, socket) in sockets {
        running.spawn(drive(conn, socket, progress.clone()));
    }
    within(
        "every connection's warm-up message",
        Duration::from_secs(120),
        async {
            while progress.warmed_up.load(Ordering::Relaxed) < connections {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        },
    )
    .await;
    let warm_up = started.elapsed();
    let rss_warm = rss_bytes();
    // RSS every second (or so) during the soak, to tell a plateau from steady growth.
    let soak_started = Instant::now();
    let mut series = Vec::new();
    while soak_started.elapsed() < soak && series.len() < 100_000 {
        let left = soak.saturating_sub(soak_started.elapsed());
        tokio::time::sleep(left.min(soak / 10).max(Duration::from_millis(10))).await;
        series.push(rss_bytes() / MIB);
    }
    let rss_end = rss_bytes();
    progress.stop.store(true, Ordering::Relaxed);
    let mut failures = Vec::new();
    let (mut sent, mut received, mut bytes) = (0u64, 0u64, 0u64);
    while let Some(joined) = within(
        "connections finishing after the soak",
        Duration::from_secs(60),
        running.join_next(),
    )
    .await
    {
        match joined.expect("connection task") {
            Ok(report) => {
                sent += report.sent;
                bytes += report.bytes;
                received += report.received;
            }
            Err(e) => failures.push(e),
        }
    }
    let elapsed = started.elapsed();
    // The server's handlers end once the close handshakes are done.
    within("server handlers ending", Duration::from_secs(20), async {
        while tally.clean.load(Ordering::Relaxed) + tally.failed.load(Ordering::Relaxed)
            < connections
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;

    eprintln!(
        "soak: {connections} connections (1 in {COMPRESSED_EVERY} compressed), set up in \
         {setup:.1?}; {sent} messages ({}) echoed in {elapsed:.1?}; RSS {} before connecting, \
         {} with the connections open, {} after the warm-up ({warm_up:.1?}), {} after {soak:?} \
         more; \
         server handlers: {} clean, {} failed; RSS (MiB) during the soak: {series:?}",
        mib(bytes as usize),
        mib(rss_start),
        mib(rss_idle),
        mib(rss_warm),
        mib(rss_end),
        tally.clean.load(Ordering::Relaxed),
        tally.failed.load(Ordering::Relaxed),
    );
    assert!(
        failures.is_empty(),
        "{} of {connections} connections failed; first ones: {:#?}",
        failures.len(),
        &failures[..failures.len().min(5)]
    );
    assert_eq!(received, sent, "every message sent came back");
    assert!(
        sent >= connections as u64,
        "every connection sent something"
    );
    assert_eq!(tally.failed.load(Ordering::Relaxed), 0);
    assert_eq!(tally.clean.load(Ordering::Relaxed), connections);
    let limit = rss_warm + rss_warm / 2 + 16 * MIB;
    assert!(
        rss_end <= limit,
        "RSS grew from {} after warm-up to {} at the end (limit {})",
        mib(rss_warm),
        mib(rss_end),
        mib(limit)
    );
    assert!(server.is_running());
}
