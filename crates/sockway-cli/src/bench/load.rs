//! The load of one connection: send a message, wait for its echo, record the round trip, and
//! again, keeping `in_flight` messages outstanding. One task per connection, one preallocated
//! payload shared by all, and nothing allocated per message by the loop itself.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;
use std::time::Instant;

use sockway::client::ClientStream;
use sockway::WebSocket;
use sockway::{Message, MessageKind};
use tokio::sync::Notify;

use super::histogram::Histogram;

/// Messages complete without being counted (warm-up).
pub const WARMUP: u8 = 0;
/// Messages that complete are counted and their round trips recorded.
pub const MEASURE: u8 = 1;
/// Connections stop once their outstanding messages are back.
pub const STOP: u8 = 2;

/// What every connection sends.
#[derive(Debug)]
pub struct Plan {
    /// The payload, the same bytes for every message: ASCII, so valid as text too.
    pub payload: String,
    /// Text or binary messages.
    pub kind: MessageKind,
    /// Messages kept outstanding per connection.
    pub in_flight: usize,
}

impl Plan {
    /// A plan with `size` bytes of printable ASCII.
    pub fn new(size: usize, kind: MessageKind, in_flight: usize) -> Self {
        let payload = (0..size)
            .map(|i| char::from(b'a' + (i % 26) as u8))
            .collect();
        Self {
            payload,
            kind,
            in_flight: in_flight.max(1),
        }
    }
}

/// State shared by the controller and every connection.
#[derive(Debug, Default)]
pub struct Shared {
    /// [`WARMUP`], [`MEASURE`] or [`STOP`].
    pub phase: AtomicU8,
    /// Echoes received in any phase (the progress line and the totals).
    pub completed: AtomicU64,
    /// Echoes received while measuring, kept only when `count_limit` is set.
    pub measured: AtomicU64,
    /// Stop after this many measured echoes (0: run for the duration).
    pub count_limit: u64,
    /// Woken when `count_limit` is reached.
    pub limit_reached: Notify,
    /// Connections that failed after connecting.
    pub failed: AtomicU64,
}

/// What one connection measured.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Round trips of the echoes received while measuring.
    pub latency: Histogram,
    /// Payload bytes echoed while measuring.
    pub bytes: u64,
    /// Echoes whose kind or length differed from what was sent.
    pub mismatches: u64,
    /// Why the connection ended early, if it did.
    pub error: Option<String>,
}

/// Runs the load on `socket` until the phase turns to [`STOP`] (or the connection fails), then
/// closes it.
pub async fn drive(
    mut socket: WebSocket<ClientStream>,
    plan: Arc<Plan>,
    shared: Arc<Shared>,
) -> Outcome {
    let mut outcome = Outcome::default();
    let mut sent_at: VecDeque<Instant> = VecDeque::with_capacity(plan.in_flight);
    let result = run(&mut socket, &plan, &shared, &mut sent_at, &mut outcome).await;
    match result {
        Ok(()) => {
            // Finish politely; a server that does not answer the close in time is its problem.
            let close = socket.close(sockway::proto::CloseCode::NORMAL, "");
            let _ = tokio::time::timeout(std::time::Duration::from_secs(2), close).await;
        }
        Err(error) => {
            shared.failed.fetch_add(1, Ordering::Relaxed);
            outcome.error = Some(error);
        }
    }
    outcome
}

async fn run(
    socket: &mut WebSocket<ClientStream>,
    plan: &Plan,
    shared: &Shared,
    sent_at: &mut VecDeque<Instant>,
    outcome: &mut Outcome,
) -> Result<(), String> {
    for _ in 0..plan.in_flight {
        sent_at.push_back(Instant::now());
        send(socket, plan).await?;
    }
    loop {
        let message = match socket.recv().await {
            Ok(Some(message)) => message,
            Ok(None) => return Err(closed_by_server(socket)),
            Err(error) => return Err(format!("receive failed: {error}")),
        };
        let now = Instant::now();
        let started = sent_at.pop_front().unwrap_or(now);
        shared.completed.fetch_add(1, Ordering::Relaxed);
        match shared.phase.load(Ordering::Relaxed) {
            MEASURE => {
                record(outcome, &message, plan, now.duration_since(started));
                if shared.count_limit > 0 {
                    let measured = shared.measured.fetch_add(1, Ordering::Relaxed) + 1;
                    if measured == shared.count_limit {
                        shared.phase.store(STOP, Ordering::Relaxed);
                        shared.limit_reached.notify_one();
                    }
                }
            }
            STOP => {
                if sent_at.is_empty() {
                    return Ok(());
                }
                continue;
            }
            _ => {}
        }
        sent_at.push_back(now);
        send(socket, plan).await?;
    }
}

fn record(outcome: &mut Outcome, message: &Message, plan: &Plan, rtt: std::time::Duration) {
    outcome
        .latency
        .record(u64::try_from(rtt.as_nanos()).unwrap_or(u64::MAX));
    outcome.bytes += message.len() as u64;
    if message.kind() != plan.kind || message.len() != plan.payload.len() {
        outcome.mismatches += 1;
    }
}

async fn send(socket: &mut WebSocket<ClientStream>, plan: &Plan) -> Result<(), String> {
    let sent = match plan.kind {
        MessageKind::Binary => socket.send_binary(plan.payload.as_bytes()).await,
        MessageKind::Text => socket.send_text(&plan.payload).await,
    };
    sent.map_err(|error| format!("send failed: {error}"))
}

fn closed_by_server(socket: &WebSocket<ClientStream>) -> String {
    match socket.close_info() {
        Some(info) => format!(
            "server closed the connection ({} {})",
            info.code, info.reason
        ),
        None => "server closed the connection".into(),
    }
}
