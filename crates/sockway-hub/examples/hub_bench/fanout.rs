//! `fanout URLS N PROTOCOL SECS [GROUP]`: N receivers spread round-robin over the
//! comma-separated URLS (one server, or several servers of a fleet) and one sender on the first
//! URL. Without GROUP the sender calls the hub's `SendMessage` (every client gets
//! `ReceiveMessage`); with GROUP the receivers join it and the sender calls
//! `SendMessageToGroup` (its members get `Send`). The sender keeps up to [`WINDOW`] messages in flight,
//! each carrying its send time; each receiver records send-to-receipt latency. After a 1 s
//! warm-up the window of SECS is measured: deliveries per second counted at the N receivers,
//! and the latency's median and 99th percentile. The sender's own copies are drained and not
//! counted (the server writes N + 1 per message). The line ends with how many messages the
//! sender sent in all (warm-up included), to divide the backplane's counters by.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sockway_hub::protocol::{HubMessage, Payload, Protocol, Value};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::client::{connect_spread, HubClient};
use crate::histogram::Histogram;
use crate::BoxError;

/// Messages the sender may have out whose deliveries have not all arrived.
const WINDOW: u64 = 16;

/// What the receivers share.
struct Shared {
    start: Instant,
    delivered: AtomicU64,
    /// Set while the measured window is open.
    measuring: AtomicBool,
    measured: AtomicU64,
    progress: Notify,
    receivers: u64,
    latencies: Mutex<Histogram>,
    /// Messages sent in all.
    sent: AtomicU64,
}

/// Runs one fan-out measurement and prints its line.
pub async fn run(
    urls: &[String],
    n: usize,
    protocol: Protocol,
    window: Duration,
    group: Option<&str>,
) -> Result<(), BoxError> {
    let n = n.max(1);
    let shared = Arc::new(Shared {
        start: Instant::now(),
        delivered: AtomicU64::new(0),
        measuring: AtomicBool::new(false),
        measured: AtomicU64::new(0),
        progress: Notify::new(),
        receivers: n as u64,
        latencies: Mutex::new(Histogram::new()),
        sent: AtomicU64::new(0),
    });
    let clients = connect_spread(urls, n, protocol, group).await?;
    let stop = CancellationToken::new();
    let mut tasks = Vec::with_capacity(n);
    for client in clients {
        tasks.push(tokio::spawn(receive(client, shared.clone(), stop.clone())));
    }
    let sender = HubClient::connect(&urls[0], protocol).await?;
    let (outbound, mut drained) = sender.socket.split();
    let drain_stop = stop.clone();
    tokio::spawn(async move {
        loop {
            tokio::select! {
                () = drain_stop.cancelled() => return,
                received = drained.recv() => if !matches!(received, Ok(Some(_))) { return },
            }
        }
    });

    let target = group.map(str::to_owned);
    let sending = tokio::spawn(send(
        outbound,
        protocol,
        target,
        shared.clone(),
        stop.clone(),
    ));
    tokio::time::sleep(Duration::from_secs(1)).await;
    shared.measuring.store(true, Ordering::Relaxed);
    let opened = Instant::now();
    tokio::time::sleep(window).await;
    shared.measuring.store(false, Ordering::Relaxed);
    let elapsed = opened.elapsed().as_secs_f64();
    stop.cancel();
    let _ = sending.await;
    for task in tasks {
        let _ = task.await;
    }
    let measured = shared.measured.load(Ordering::Relaxed);
    let latencies = shared
        .latencies
        .lock()
        .map_err(|_| "a receiver panicked")?
        .clone();
    println!(
        "fanout clients={n} servers={} protocol={} target={} deliveries_per_sec={:.0} p50_us={} p99_us={} deliveries={measured} window_s={elapsed:.2} sent={}",
        urls.len(),
        protocol.name(),
        group.unwrap_or("all"),
        measured as f64 / elapsed,
        latencies.quantile(0.50),
        latencies.quantile(0.99),
        shared.sent.load(Ordering::Relaxed),
    );
    Ok(())
}

/// Sends `SendMessage("b", <micros since start>)` (or `SendMessageToGroup(group, <micros>)`)
/// while fewer than [`WINDOW`] messages are short of their N deliveries.
async fn send(
    outbound: sockway::client::MessageSender,
    protocol: Protocol,
    group: Option<String>,
    shared: Arc<Shared>,
    stop: CancellationToken,
) -> Result<(), BoxError> {
    let mut sent: u64 = 0;
    let mut out = Vec::new();
    while !stop.is_cancelled() {
        let complete = shared.delivered.load(Ordering::Acquire) / shared.receivers;
        if sent >= complete + WINDOW {
            tokio::select! {
                () = shared.progress.notified() => {}
                () = tokio::time::sleep(Duration::from_millis(50)) => {}
                () = stop.cancelled() => break,
            }
            continue;
        }
        let stamp = shared.start.elapsed().as_micros().to_string();
        let (target, first) = match &group {
            Some(group) => ("SendMessageToGroup", group.clone()),
            None => ("SendMessage", "b".to_owned()),
        };
        let message = HubMessage::Invocation(sockway_hub::protocol::Invocation {
            invocation_id: None,
            target: target.to_owned(),
            arguments: vec![Payload::new(first), Payload::new(stamp)],
            stream_ids: Vec::new(),
        });
        out.clear();
        protocol.write(&message, &mut out)?;
        match protocol {
            Protocol::Json => outbound.send_text(std::str::from_utf8(&out)?).await?,
            Protocol::MessagePack => outbound.send_binary(&out).await?,
        }
        sent += 1;
        shared.sent.store(sent, Ordering::Relaxed);
    }
    Ok(())
}

/// Reads `ReceiveMessage` (or `Send`) invocations and records their latency while measuring;
/// the send time is the last argument of either.
async fn receive(mut client: HubClient, shared: Arc<Shared>, stop: CancellationToken) {
    let mut latencies = Histogram::new();
    let mut counted = 0u64;
    while let Some(value) = client.next_stamp(&stop).await {
        let Some(stamp) = micros(&value) else {
            continue;
        };
        let previous = shared.delivered.fetch_add(1, Ordering::AcqRel);
        if (previous + 1).is_multiple_of(shared.receivers) {
            shared.progress.notify_one();
        }
        if shared.measuring.load(Ordering::Relaxed) {
            let now = shared.start.elapsed().as_micros() as u64;
            latencies.record(now.saturating_sub(stamp));
            counted += 1;
        }
    }
    shared.measured.fetch_add(counted, Ordering::Relaxed);
    if let Ok(mut all) = shared.latencies.lock() {
        all.merge(&latencies);
    }
}

/// The send time a message's second argument carries.
fn micros(value: &Value) -> Option<u64> {
    match value {
        Value::Json(serde_json::Value::String(text)) => text.parse().ok(),
        Value::MessagePack(rmpv::Value::String(text)) => text.as_str()?.parse().ok(),
        _ => None,
    }
}
