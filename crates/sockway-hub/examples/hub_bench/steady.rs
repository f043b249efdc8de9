//! `steady URLS N PROTOCOL RATE SECS`: N receivers in group "steady", spread round-robin over
//! the comma-separated URLS, and one sender on the first URL calling `SendMessageToGroup`
//! RATE times a second for SECS, each message carrying its number and send time. For what a
//! backplane outage costs (`benches/hub_fleet_fanout.sh` kills Redis meanwhile): after the
//! last send it waits until every delivery has arrived or nothing arrived for
//! [`QUIET`], then counts the deliveries that arrived, were lost (never arrived), arrived
//! twice or out of order, and arrived later than [`LATE`] after their send.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sockway_hub::protocol::{Payload, Protocol, Value};
use tokio_util::sync::CancellationToken;

use crate::client::{connect_spread, HubClient};
use crate::BoxError;

/// A delivery later than this after its send counts as late.
const LATE: Duration = Duration::from_secs(1);

/// With deliveries missing, how long the receivers wait after the last one arrived.
const QUIET: Duration = Duration::from_secs(20);

/// The group every receiver joins.
const GROUP: &str = "steady";

/// What the receivers count together.
#[derive(Default)]
struct Counts {
    delivered: AtomicU64,
    duplicates: AtomicU64,
    reordered: AtomicU64,
    late: AtomicU64,
    max_latency_us: AtomicU64,
    /// Microseconds after start of the last delivery anywhere.
    last_arrival_us: AtomicU64,
}

/// Runs one steady-rate measurement and prints its line.
pub async fn run(
    urls: &[String],
    n: usize,
    protocol: Protocol,
    rate: u64,
    secs: Duration,
) -> Result<(), BoxError> {
    let n = n.max(1);
    let rate = rate.clamp(1, 10_000);
    let start = Instant::now();
    let counts = Arc::new(Counts::default());
    let clients = connect_spread(urls, n, protocol, Some(GROUP)).await?;
    let stop = CancellationToken::new();
    let tasks: Vec<_> = clients
        .into_iter()
        .map(|client| tokio::spawn(receive(client, start, counts.clone(), stop.clone())))
        .collect();
    let mut sender = HubClient::connect(&urls[0], protocol).await?;
    let mut tick = tokio::time::interval(Duration::from_micros(1_000_000 / rate));
    let total = rate * secs.as_secs();
    println!("sending");
    for seq in 0..total {
        tick.tick().await;
        let text = format!("{seq} {}", start.elapsed().as_micros());
        let arguments = vec![Payload::new(GROUP), Payload::new(text)];
        sender.invoke(None, "SendMessageToGroup", arguments).await?;
    }
    let expected = total * n as u64;
    loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let now = start.elapsed().as_micros() as u64;
        let quiet = now.saturating_sub(counts.last_arrival_us.load(Ordering::Relaxed));
        if counts.delivered.load(Ordering::Relaxed) >= expected || quiet > QUIET.as_micros() as u64
        {
            break;
        }
    }
    stop.cancel();
    for task in tasks {
        let _ = task.await;
    }
    let delivered = counts.delivered.load(Ordering::Relaxed);
    println!(
        "steady clients={n} servers={} protocol={} rate={rate} sent={total} expected={expected} delivered={delivered} lost={} duplicates={} reordered={} late_over_1s={} max_latency_ms={}",
        urls.len(),
        protocol.name(),
        expected.saturating_sub(delivered),
        counts.duplicates.load(Ordering::Relaxed),
        counts.reordered.load(Ordering::Relaxed),
        counts.late.load(Ordering::Relaxed),
        counts.max_latency_us.load(Ordering::Relaxed) / 1000,
    );
    Ok(())
}

/// Counts one receiver's deliveries of the group's numbered messages.
async fn receive(
    mut client: HubClient,
    start: Instant,
    counts: Arc<Counts>,
    stop: CancellationToken,
) {
    let mut seen = std::collections::HashSet::new();
    let mut highest: Option<u64> = None;
    while let Some(value) = client.next_stamp(&stop).await {
        let Some((seq, sent_us)) = numbered(&value) else {
            continue;
        };
        let now = start.elapsed().as_micros() as u64;
        counts.last_arrival_us.fetch_max(now, Ordering::Relaxed);
        if !seen.insert(seq) {
            counts.duplicates.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        counts.delivered.fetch_add(1, Ordering::Relaxed);
        if highest.is_some_and(|highest| seq < highest) {
            counts.reordered.fetch_add(1, Ordering::Relaxed);
        }
        highest = highest.max(Some(seq));
        let latency = now.saturating_sub(sent_us);
        counts.max_latency_us.fetch_max(latency, Ordering::Relaxed);
        if latency > LATE.as_micros() as u64 {
            counts.late.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// The number and send time a message's text carries (`"<seq> <micros>"`).
fn numbered(value: &Value) -> Option<(u64, u64)> {
    let text = match value {
        Value::Json(serde_json::Value::String(text)) => text.as_str(),
        Value::MessagePack(rmpv::Value::String(text)) => text.as_str()?,
        _ => return None,
    };
    let (seq, sent) = text.split_once(' ')?;
    Some((seq.parse().ok()?, sent.parse().ok()?))
}
