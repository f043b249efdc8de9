//! The load of one connection: send a message, wait for its echo, record the round trip, and
//! again, keeping `in_flight` messages outstanding. One task per connection, payloads built
//! before the run and shared by all, and nothing allocated per message by the loop itself.
//!
//! With a pace (`--rate`), each connection also waits for its next send time, so the whole
//! run offers a fixed load: servers can then be compared by the CPU they spend on the same
//! work, rather than at saturation, where each one's share of a shared machine differs.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sockway::client::ClientStream;
use sockway::WebSocket;
use sockway::{Message, MessageKind};
use tokio::sync::Notify;

use super::histogram::Histogram;
use super::payload::{self, PayloadStyle};

/// Messages complete without being counted (warm-up).
pub const WARMUP: u8 = 0;
/// Messages that complete are counted and their round trips recorded.
pub const MEASURE: u8 = 1;
/// Connections stop once their outstanding messages are back.
pub const STOP: u8 = 2;

/// What every connection sends.
#[derive(Debug)]
pub struct Plan {
    /// The payloads, all of the same length, sent in turn: ASCII, so valid as text too.
    pub payloads: Vec<String>,
    /// Text or binary messages.
    pub kind: MessageKind,
    /// Messages kept outstanding per connection.
    pub in_flight: usize,
    /// The time between two sends of one connection, when the load is paced (`--rate`).
    pub pace: Option<Duration>,
}

impl Plan {
    /// A plan with payloads of `size` bytes in `style`.
    pub fn new(size: usize, style: PayloadStyle, kind: MessageKind, in_flight: usize) -> Self {
        Self {
            payloads: payload::build(style, size),
            kind,
            in_flight: in_flight.max(1),
            pace: None,
        }
    }

    /// Paces the load at `rate` messages per second over `connections` connections: each
    /// connection sends every `connections / rate` seconds.
    pub fn paced(mut self, rate: f64, connections: usize) -> Self {
        let interval = connections.max(1) as f64 / rate;
        self.pace = Duration::try_from_secs_f64(interval).ok();
        self
    }

    /// The length of every payload.
    pub fn size(&self) -> usize {
        self.payloads.first().map_or(0, String::len)
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
/// closes it. A paced connection starts `offset` into its first interval, so that the
/// connections' sends spread over it instead of coming all at once.
pub async fn drive(
    mut socket: WebSocket<ClientStream>,
    plan: Arc<Plan>,
    shared: Arc<Shared>,
    offset: f64,
) -> Outcome {
    let mut outcome = Outcome::default();
    let mut sent_at: VecDeque<Instant> = VecDeque::with_capacity(plan.in_flight);
    let mut sender = Sender {
        plan: &plan,
        next: 0,
        due: plan
            .pace
            .map(|pace| Instant::now() + pace.mul_f64(offset.clamp(0.0, 1.0))),
    };
    let result = run(
        &mut socket,
        &mut sender,
        &shared,
        &mut sent_at,
        &mut outcome,
    )
    .await;
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
    sender: &mut Sender<'_>,
    shared: &Shared,
    sent_at: &mut VecDeque<Instant>,
    outcome: &mut Outcome,
) -> Result<(), String> {
    for _ in 0..sender.plan.in_flight {
        sender.wait_turn().await;
        sent_at.push_back(Instant::now());
        sender.send(socket).await?;
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
                record(outcome, &message, sender.plan, now.duration_since(started));
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
        sender.wait_turn().await;
        sent_at.push_back(Instant::now());
        sender.send(socket).await?;
    }
}

fn record(outcome: &mut Outcome, message: &Message, plan: &Plan, rtt: std::time::Duration) {
    outcome
        .latency
        .record(u64::try_from(rtt.as_nanos()).unwrap_or(u64::MAX));
    outcome.bytes += message.len() as u64;
    if message.kind() != plan.kind || message.len() != plan.size() {
        outcome.mismatches += 1;
    }
}

/// How far behind its schedule a paced connection may fall before it starts a new one.
const MAX_LAG: Duration = Duration::from_millis(100);

/// Sends a connection's messages, taking the plan's payloads in turn.
struct Sender<'a> {
    plan: &'a Plan,
    next: usize,
    /// When the next send is due, if the load is paced.
    due: Option<Instant>,
}

impl Sender<'_> {
    /// Waits until the next send is due (paced load only). Sends keep to the schedule even
    /// when the timer wakes late (tokio's resolution is a millisecond, often longer than the
    /// pace), so the offered rate is the one asked for; a connection that fell more than
    /// [`MAX_LAG`] behind (slow echoes) starts a new schedule instead of sending a burst.
    async fn wait_turn(&mut self) {
        let (Some(due), Some(pace)) = (self.due, self.plan.pace) else {
            return;
        };
        let now = Instant::now();
        if due > now {
            tokio::time::sleep_until(due.into()).await;
        }
        let next = due + pace;
        self.due = Some(if next + MAX_LAG < now {
            now + pace
        } else {
            next
        });
    }

    async fn send(&mut self, socket: &mut WebSocket<ClientStream>) -> Result<(), String> {
        let payload = &self.plan.payloads[self.next];
        self.next = (self.next + 1) % self.plan.payloads.len();
        let sent = match self.plan.kind {
            MessageKind::Binary => socket.send_binary(payload.as_bytes()).await,
            MessageKind::Text => socket.send_text(payload).await,
        };
        sent.map_err(|error| format!("send failed: {error}"))
    }
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
