//! `fanout URL N PROTOCOL SECS`: N receivers in one group (`AddToGroup("bench")`) and one
//! sender outside it on the hub's `SendMessageToGroup` (every member gets `Send`). The sender
//! keeps up to [`WINDOW`] messages in flight, each carrying its send time; each receiver
//! records send-to-receipt latency. After a 1 s warm-up the window of SECS is measured:
//! deliveries per second counted at the N receivers, and the latency's median and 99th
//! percentile. The join notices the group gets while it fills are read and not counted.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::{stream, StreamExt as _, TryStreamExt as _};
use sockway_hub::protocol::{HubMessage, Payload, Protocol, Value};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::client::HubClient;
use crate::histogram::Histogram;
use crate::BoxError;

/// Messages the sender may have out whose deliveries have not all arrived.
const WINDOW: u64 = 16;

/// Connections opened at once while setting up.
const CONNECT_CONCURRENCY: usize = 64;

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
}

/// Runs one fan-out measurement and prints its line.
pub async fn run(
    url: &str,
    n: usize,
    protocol: Protocol,
    window: Duration,
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
    });
    let stop = CancellationToken::new();
    // Each receiver starts reading as soon as it has joined, so the join notices of those
    // after it never fill its queue on the server.
    let tasks: Vec<_> = stream::iter(0..n)
        .map(|_| async {
            let client = join(url, protocol).await?;
            Ok::<_, BoxError>(tokio::spawn(receive(client, shared.clone(), stop.clone())))
        })
        .buffer_unordered(CONNECT_CONCURRENCY)
        .try_collect()
        .await?;
    let sender = HubClient::connect(url, protocol).await?;
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

    let sending = tokio::spawn(send(outbound, protocol, shared.clone(), stop.clone()));
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
        "fanout clients={n} protocol={} deliveries_per_sec={:.0} p50_us={} p99_us={} deliveries={measured} window_s={elapsed:.2}",
        protocol.name(),
        measured as f64 / elapsed,
        latencies.quantile(0.50),
        latencies.quantile(0.99),
    );
    Ok(())
}

/// The group every receiver joins.
const GROUP: &str = "bench";

/// Connects and joins [`GROUP`], reading until the join's `Completion`.
async fn join(url: &str, protocol: Protocol) -> Result<HubClient, BoxError> {
    let mut client = HubClient::connect(url, protocol).await?;
    client
        .invoke(Some("join"), "AddToGroup", vec![Payload::new(GROUP)])
        .await?;
    loop {
        match client.next().await? {
            Some(HubMessage::Completion(completion)) => match completion.outcome {
                sockway_hub::protocol::Outcome::Error(error) => return Err(error.into()),
                _ => return Ok(client),
            },
            Some(_) => continue,
            None => return Err("closed before joining the group".into()),
        }
    }
}

/// Sends `SendMessageToGroup(GROUP, <micros since start>)` while fewer than [`WINDOW`] messages are
/// short of their N deliveries.
async fn send(
    outbound: sockway::client::MessageSender,
    protocol: Protocol,
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
        let message = HubMessage::Invocation(sockway_hub::protocol::Invocation {
            invocation_id: None,
            target: "SendMessageToGroup".to_owned(),
            arguments: vec![Payload::new(GROUP), Payload::new(stamp)],
            stream_ids: Vec::new(),
        });
        out.clear();
        protocol.write(&message, &mut out)?;
        match protocol {
            Protocol::Json => outbound.send_text(std::str::from_utf8(&out)?).await?,
            Protocol::MessagePack => outbound.send_binary(&out).await?,
        }
        sent += 1;
    }
    Ok(())
}

/// Reads the group's `Send` invocations and records their latency while measuring.
async fn receive(mut client: HubClient, shared: Arc<Shared>, stop: CancellationToken) {
    let mut latencies = Histogram::new();
    let mut counted = 0u64;
    loop {
        let message = tokio::select! {
            () = stop.cancelled() => break,
            message = client.next() => message,
        };
        let Ok(Some(HubMessage::Invocation(invocation))) = message else {
            if matches!(message, Ok(Some(_))) {
                continue;
            }
            break;
        };
        let Some(stamp) = invocation.arguments.first().and_then(micros) else {
            continue;
        };
        let previous = shared.delivered.fetch_add(1, Ordering::AcqRel);
        if (previous + 1) % shared.receivers == 0 {
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
