//! Relaying an upgraded WebSocket connection both ways with bounded buffers, counting bytes,
//! watching frame boundaries, and closing it properly when the gateway has to:
//!
//! - **Idle limit**: the backend settings' `requestTimeout` applies to WebSocket sessions
//!   (Azure Application Gateway's documentation says the request timeout of the HTTP
//!   settings applies to WebSocket sessions too). sockway
//!   defines it as an idle limit: when no byte has moved either way for `requestTimeout`,
//!   the gateway sends each side a close frame 1001 (RFC 6455 section 7.4.1, "going away"),
//!   masked towards the backend (section 5.3), then closes TCP.
//! - **Keep-alive** (`webSocketKeepAlive`, on by default): a side quiet for half the idle
//!   limit gets a ping, and is closed with 1001 only if it does not answer within the other
//!   half; the pongs to these pings are not relayed ([`super::heartbeat`]). The idle limit
//!   then stands at one and a half `requestTimeout`, for sessions whose pings could not be
//!   written (a frame stalled half-way).
//! - **Close orders** from [`crate::drain`] (drain timeout, shutdown) do the same.
//! - **One side ends** (EOF or error) without having sent a close frame: the other side gets
//!   close 1001, then its write side is shut; it has `closeGrace` to finish.
//!
//! A close frame is only written at a frame boundary ([`FrameTracker`]); mid-frame the
//! gateway just shuts the stream. After writing its close frames the relay reads and drops
//! what the peers still send (their close replies) until they end or `closeGrace` passes,
//! so that closing does not turn into a TCP reset.
//!
//! Each end comes as a [`Side`]: on plain TCP the socket's own halves, read and written
//! directly (see [`super::upgraded`]). Bytes read from a side before the relay started (its
//! `prefix`) are relayed first, counted and framed like any others.
//!
//! Each direction runs in a task of its own, so that a socket becoming ready wakes only the
//! direction that uses it; the relay's own task keeps the idle limit and the close orders
//! and wakes the directions when it gives one.
//!
//! A direction's copy loop is written by hand ([`Pump::poll_copy`]): it reads into its
//! thread's buffer and writes what it read in the same poll, so that an idle session holds
//! no relay buffer; only bytes the destination does not take at once get one of their own.
//! Between two plain TCP sockets on Linux, large payloads skip that buffer: they are spliced
//! socket → pipe → socket (`relay_splice.rs`).

use std::pin::Pin;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::task::AtomicWaker;
use tokio::io::{AsyncReadExt, AsyncWrite};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::boundary::{close_frame, whole_frames, FrameTracker, WholeFrames};
use super::heartbeat::{Beat, Heartbeat, PongFilter, Scanned};
use super::upgraded::{ReadSide, Side, WriteSide};
use super::{clock, scratch};
use crate::drain::CloseOrder;
use notes::Heard;
#[cfg(target_os = "linux")]
use splice_step::Spliced;
use splice_step::{splicer_for, Splicer};

#[path = "relay_notes.rs"]
mod notes;
#[path = "relay_splice.rs"]
mod splice_step;
#[cfg(target_os = "linux")]
#[path = "relay_uring.rs"]
mod uring;
#[path = "relay_write.rs"]
mod write;

/// Relay settings.
#[derive(Debug, Clone, Copy)]
pub struct RelayConfig {
    /// Close after this long without traffic.
    pub idle: Duration,
    /// Bytes read at a time, and at most held per direction while the destination is
    /// slow (the read buffer itself is one per worker thread, see [`super::scratch`]).
    pub buffer: usize,
    /// Time to finish closing.
    pub close_grace: Duration,
    /// Ping quiet sides before the idle limit ([`super::heartbeat`]).
    pub keep_alive: bool,
    /// Relay sessions with a plain TCP backend (and a plain TCP or the listener's TLS client)
    /// on the worker threads' io_uring loops (Linux; `relay_uring.rs`) instead of tokio's
    /// epoll-driven sockets.
    pub io_uring: bool,
}

/// How a relay went.
#[derive(Debug, Clone, Default)]
pub struct RelayOutcome {
    /// Bytes client → backend.
    pub bytes_up: u64,
    /// Bytes backend → client.
    pub bytes_down: u64,
    /// Close code sent by the client.
    pub client_close: Option<u16>,
    /// Close code sent by the backend.
    pub backend_close: Option<u16>,
    /// Why the gateway closed it, if it did.
    pub ended_by_gateway: Option<&'static str>,
    /// How long it ran.
    pub duration: Duration,
}

/// Byte counters of one session (the relay also adds to the [`Totals`] it is given, such as
/// the backend's metrics, as bytes move).
#[derive(Debug, Default)]
pub struct Counters {
    /// Client → backend.
    pub up: AtomicU64,
    /// Backend → client.
    pub down: AtomicU64,
    /// Of those, the bytes spliced (Linux, plain TCP both sides): they never entered user
    /// space.
    pub spliced: AtomicU64,
}

/// Longer-lived byte counters a relay adds to as bytes move (the backend's statistics).
pub trait Totals: Send + Sync + 'static {
    /// The counters for client → backend and backend → client bytes.
    fn totals(&self) -> [&AtomicU64; 2];
}

/// What the relay's task and its two directions share.
struct Shared {
    config: RelayConfig,
    start: Instant,
    /// [`clock::now_ms`] at `start`: the copy loops note activity with that clock.
    start_ms: u64,
    /// Milliseconds since `start` at the last traffic, for the idle limit.
    activity: AtomicU64,
    /// The close order the directions obey, once given.
    stop: OnceLock<CloseOrder>,
    /// The directions' tasks, to wake when the order is given.
    wakers: [AtomicWaker; 2],
    /// The close code seen in each direction, plus one (0: none yet).
    close_codes: [AtomicU32; 2],
    /// Keep-alive pings, when on.
    heartbeat: Option<Heartbeat>,
}

impl Shared {
    /// Gives the close order (the first one stands) and wakes both directions.
    fn order(&self, order: CloseOrder) {
        let _ = self.stop.set(order);
        for waker in &self.wakers {
            waker.wake();
        }
    }

    /// Notes traffic at `now` (since `start`), for the idle limit.
    fn touch(&self, now: Duration) {
        let ms = now.as_secs().saturating_mul(1000) + u64::from(now.subsec_millis());
        self.activity.store(ms, Ordering::Relaxed);
    }

    /// The activity clock ([`clock::now_ms`]) since `start`: at most one timer tick behind
    /// `start.elapsed()`.
    fn since_start(&self) -> Duration {
        self.since(clock::now_ms())
    }

    /// A reading of the activity clock (`now_ms`) as time since `start`.
    fn since(&self, now_ms: u64) -> Duration {
        Duration::from_millis(now_ms.saturating_sub(self.start_ms))
    }

    fn close_code(&self, way: usize) -> Option<u16> {
        u16::try_from(
            self.close_codes[way]
                .load(Ordering::Relaxed)
                .checked_sub(1)?,
        )
        .ok()
    }
}

/// Client → backend (index into [`Shared`]'s arrays).
const UP: usize = 0;
/// Backend → client.
const DOWN: usize = 1;

/// Aborts the directions' tasks if the relay ends (or is dropped) before they do.
struct Directions([JoinHandle<()>; 2]);

impl Drop for Directions {
    fn drop(&mut self) {
        for task in &self.0 {
            task.abort();
        }
    }
}

/// Relays until both sides are done; see the module documentation.
pub async fn relay<T: Totals>(
    client: Side,
    backend: Side,
    config: RelayConfig,
    mut orders: watch::Receiver<Option<CloseOrder>>,
    counters: Arc<Counters>,
    totals: Arc<T>,
) -> RelayOutcome {
    let start = Instant::now();
    let shared = Arc::new(Shared {
        config,
        start,
        start_ms: clock::now_ms(),
        activity: AtomicU64::new(0),
        stop: OnceLock::new(),
        wakers: [AtomicWaker::new(), AtomicWaker::new()],
        close_codes: [AtomicU32::new(0), AtomicU32::new(0)],
        heartbeat: config.keep_alive.then(|| Heartbeat::new(config.idle)),
    });
    // An order given before the relay started is honoured at once.
    let mut ended_by_gateway = None;
    if let Some(order) = orders.borrow_and_update().clone() {
        ended_by_gateway = Some(order.reason);
        shared.order(order);
    }
    let up = Pump {
        way: UP,
        shared: shared.clone(),
        counters: counters.clone(),
        totals: totals.clone(),
    };
    let down = Pump {
        way: DOWN,
        shared: shared.clone(),
        counters: counters.clone(),
        totals,
    };
    let mut tasks = Directions(spawn_directions(client, backend, up, down));
    let controller = async {
        let mut orders_open = true;
        loop {
            let last = Duration::from_millis(shared.activity.load(Ordering::Relaxed));
            // With keep-alive, a pinged side gets its full time to answer before the idle
            // limit, which then only ends sessions whose pings could not be written.
            let limit = match shared.heartbeat {
                Some(ref h) => config.idle + h.interval,
                None => config.idle,
            };
            let mut due = last + limit;
            let now = start.elapsed();
            if now >= due {
                shared.order(CloseOrder {
                    code: 1001,
                    reason: "idle timeout",
                });
                return "idle timeout";
            }
            match shared.heartbeat.as_ref().map(|h| h.next(now)) {
                None => {}
                Some(Beat::WaitUntil(ms)) => due = due.min(Duration::from_millis(ms)),
                // The direction writing to that side sends it at its next frame boundary.
                Some(Beat::Ping(side)) => {
                    shared.wakers[1 - side].wake();
                    continue;
                }
                Some(Beat::Unanswered(_)) => {
                    shared.order(CloseOrder {
                        code: 1001,
                        reason: "ping unanswered",
                    });
                    return "ping unanswered";
                }
            }
            let due = due.max(now);
            tokio::select! {
                _ = tokio::time::sleep(due - now) => {}
                changed = orders.changed(), if orders_open => {
                    if changed.is_err() {
                        // Nobody can order a close any more; the idle limit still applies.
                        orders_open = false;
                        continue;
                    }
                    if let Some(order) = orders.borrow_and_update().clone() {
                        let reason = order.reason;
                        shared.order(order);
                        return reason;
                    }
                }
            }
        }
    };
    {
        tokio::pin!(controller);
        let [up_task, down_task] = &mut tasks.0;
        let mut up_done = false;
        let mut down_done = false;
        let mut grace_deadline: Option<tokio::time::Instant> = None;
        while !(up_done && down_done) {
            let grace = async {
                match grace_deadline {
                    Some(d) => tokio::time::sleep_until(d).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = &mut *up_task, if !up_done => up_done = true,
                _ = &mut *down_task, if !down_done => down_done = true,
                reason = &mut controller, if ended_by_gateway.is_none() => {
                    ended_by_gateway = Some(reason);
                    continue;
                }
                _ = grace => break,
            }
            if grace_deadline.is_none() {
                // One side is done: the other gets the grace period to finish.
                grace_deadline = Some(tokio::time::Instant::now() + config.close_grace * 2);
            }
        }
    }
    // A direction still running after the grace period is stopped here.
    drop(tasks);
    RelayOutcome {
        bytes_up: counters.up.load(Ordering::Relaxed),
        bytes_down: counters.down.load(Ordering::Relaxed),
        client_close: shared.close_code(UP),
        backend_close: shared.close_code(DOWN),
        ended_by_gateway,
        duration: start.elapsed(),
    }
}

/// Starts the two directions' tasks: on an io_uring loop when the setting asks for it and
/// the loop can take both ends (Linux; plain TCP, or the listener's TLS from the client;
/// each task then waits until the loop hands its direction back, see `relay_uring.rs`),
/// else on tokio's sockets.
fn spawn_directions<T: Totals>(
    client: Side,
    backend: Side,
    up: Pump<T>,
    down: Pump<T>,
) -> [JoinHandle<()>; 2] {
    #[cfg(target_os = "linux")]
    let (client, backend) = match up.shared.config.io_uring {
        false => (client, backend),
        true => match uring::offer(client, backend, [up.erased(), down.erased()]) {
            Ok([up_back, down_back]) => {
                return [
                    tokio::spawn(up.resume(up_back)),
                    tokio::spawn(down.resume(down_back)),
                ]
            }
            Err(sides) => *sides,
        },
    };
    [
        tokio::spawn(up.run(client.prefix, None, client.read, backend.write)),
        tokio::spawn(down.run(backend.prefix, None, backend.read, client.write)),
    ]
}

/// Where a direction stands when a task takes it over from an io_uring loop: its frame
/// tracker and pong filter, and bytes read (heard and filtered) that the destination has
/// not taken yet.
struct Carry {
    tracker: FrameTracker,
    filter: Option<PongFilter>,
    pending: Vec<u8>,
}

/// Why waiting on a read or write was cut short.
enum Interrupt {
    /// A close order was given.
    Stop(CloseOrder),
    /// A keep-alive ping is wanted towards the destination, which is at a frame boundary.
    Ping,
}

/// What one poll of a direction's copy loop came to ([`Pump::poll_copy`]).
enum Step {
    /// The source ended (EOF or a read error).
    Ended,
    /// The destination failed or ended.
    Failed,
    /// Bytes read that the destination did not take at once (or that the pong filter
    /// edited), to be written before reading on.
    Backlog(Vec<u8>),
    /// A close order, or a keep-alive ping wanted at this frame boundary.
    Interrupted(Interrupt),
}

/// Bytes per read while a closing direction drops what its source still sends.
const DRAIN_BUFFER: usize = 4096;

/// How writing a chunk to the destination ended.
enum Written {
    /// All of it went.
    All,
    /// A close order came first.
    Stopped(CloseOrder),
    /// The destination failed or ended.
    Failed,
}

/// One direction of a relay.
struct Pump<T: ?Sized> {
    /// [`UP`] or [`DOWN`].
    way: usize,
    shared: Arc<Shared>,
    counters: Arc<Counters>,
    totals: Arc<T>,
}

impl<T: Totals> Pump<T> {
    /// The same direction, with its totals behind a trait object (for an io_uring loop).
    #[cfg(target_os = "linux")]
    fn erased(&self) -> Pump<dyn Totals> {
        Pump {
            way: self.way,
            shared: self.shared.clone(),
            counters: self.counters.clone(),
            totals: self.totals.clone(),
        }
    }
}

impl<T: Totals + ?Sized> Pump<T> {
    /// Relays what `carry` holds (from an io_uring loop), then `prefix`, then what `src`
    /// sends, to `dst`; then closes `dst`'s way. With keep-alive, the source's bytes go
    /// through its [`PongFilter`] and a ping wanted towards the destination is written at
    /// its next frame boundary.
    async fn run(self, prefix: Bytes, carry: Option<Carry>, mut src: ReadSide, mut dst: WriteSide) {
        let config = self.shared.config;
        let Carry {
            mut tracker,
            mut filter,
            pending,
        } = carry.unwrap_or_else(|| Carry {
            tracker: FrameTracker::new(),
            filter: (self.shared.heartbeat.as_ref()).map(|h| PongFilter::new(h.payload[self.way])),
            pending: Vec::new(),
        });
        let mut splicer = splicer_for(&src, &dst);
        let order = 'copy: {
            if !pending.is_empty() {
                match self.write_out(&mut dst, &pending, &mut tracker).await {
                    Written::All => {}
                    Written::Stopped(order) => break 'copy Some(order),
                    Written::Failed => return,
                }
            }
            if !prefix.is_empty() {
                match self
                    .relay_chunk(&mut dst, &prefix, &mut tracker, &mut filter)
                    .await
                {
                    Written::All => {}
                    Written::Stopped(order) => break 'copy Some(order),
                    Written::Failed => return,
                }
            }
            loop {
                let step = std::future::poll_fn(|cx| {
                    let io = (&mut src, &mut dst);
                    self.poll_copy(cx, io, &mut tracker, &mut filter, &mut splicer)
                })
                .await;
                let backlog = match step {
                    Step::Backlog(bytes) => bytes,
                    Step::Interrupted(Interrupt::Stop(order)) => break 'copy Some(order),
                    Step::Interrupted(Interrupt::Ping) => match self.ping(&mut dst).await {
                        Written::All => continue,
                        Written::Stopped(order) => break 'copy Some(order),
                        Written::Failed => return,
                    },
                    Step::Failed => return,
                    Step::Ended => {
                        // The source ended. If it never said goodbye, say it for it.
                        let order = CloseOrder {
                            code: 1001,
                            reason: if self.way == UP {
                                "client went away"
                            } else {
                                "backend went away"
                            },
                        };
                        let clean = splicer.as_ref().is_none_or(|s| s.held() == 0);
                        self.finish(&mut dst, &tracker, clean, Some(order)).await;
                        return;
                    }
                };
                match self.write_out(&mut dst, &backlog, &mut tracker).await {
                    Written::All => {}
                    Written::Stopped(order) => break 'copy Some(order),
                    Written::Failed => return,
                }
            }
        };
        // Bytes still in a pipe are the rest of a frame: no close frame after them.
        let clean = splicer.as_ref().is_none_or(|s| s.held() == 0);
        drop(splicer);
        self.finish(&mut dst, &tracker, clean, order).await;
        // Read and drop what the source still sends (its close reply) until it ends.
        let mut sink = vec![0u8; DRAIN_BUFFER];
        let _ = tokio::time::timeout(config.close_grace, async {
            loop {
                match src.read(&mut sink).await {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                }
            }
        })
        .await;
    }

    /// The copy loop, by hand: reads the source into this thread's [`scratch`] buffer and
    /// writes what it read to the destination in the same poll, again and again, until the
    /// source has nothing more (`Pending`, this direction's waker left with the relay for
    /// close orders and pings), or something needs the slower path: bytes the destination
    /// did not take at once (or that the pong filter edited) are returned as a backlog of
    /// their own; a close order or wanted ping, the end of the source or a failed
    /// destination end the loop.
    fn poll_copy(
        &self,
        cx: &mut Context<'_>,
        (src, dst): (&mut ReadSide, &mut WriteSide),
        tracker: &mut FrameTracker,
        filter: &mut Option<PongFilter>,
        splicer: &mut Option<Splicer>,
    ) -> Poll<Step> {
        let shared = &*self.shared;
        // Whether the last read drained the source: the next one starts with the wait.
        let mut drained = false;
        scratch::with(shared.config.buffer, |buf| loop {
            // Never after a close frame went that way (RFC 6455 section 5.5.1), nor while a
            // pipe holds the rest of a frame.
            let clean = splicer.as_ref().is_none_or(|s| s.held() == 0);
            let ping_ok = clean && tracker.at_boundary() && !tracker.close_seen();
            if let Some(interrupt) = self.due(ping_ok) {
                return Poll::Ready(Step::Interrupted(interrupt));
            }
            // Only while a pipe holds bytes or frames are large: a stream of small messages
            // pays two comparisons here.
            #[cfg(target_os = "linux")]
            if let Some(sp) = splicer
                .as_mut()
                .filter(|sp| sp.held() > 0 || tracker.last_len() >= splice_step::SPLICE_MIN)
            {
                match self.poll_splice(cx, sp, src, dst, tracker, filter) {
                    Spliced::Moved => continue,
                    Spliced::Not => {}
                    Spliced::Done(poll) => return poll,
                }
            }
            let n = match src.poll_read_now(cx, buf, drained) {
                Poll::Pending => {
                    if let Some(sp) = splicer.as_mut() {
                        sp.release();
                    }
                    return self.wait(cx, ping_ok);
                }
                Poll::Ready(Err(_) | Ok(0)) => return Poll::Ready(Step::Ended),
                Poll::Ready(Ok(n)) => n,
            };
            drained = n < buf.len();
            let (bytes, mut whole) = match self.heard(&buf[..n], tracker, filter) {
                Heard::Whole(whole) => (&buf[..n], Some(whole)),
                Heard::Pass => (&buf[..n], None),
                Heard::Edited(kept) => return Poll::Ready(Step::Backlog(kept)),
            };
            let mut pos = 0;
            while pos < bytes.len() {
                let written = match dst.try_write_now(&bytes[pos..]) {
                    Some(written) => Poll::Ready(written),
                    None => Pin::new(&mut *dst).poll_write(cx, &bytes[pos..]),
                };
                match written {
                    Poll::Ready(Ok(0)) | Poll::Ready(Err(_)) => return Poll::Ready(Step::Failed),
                    Poll::Ready(Ok(w)) => {
                        self.wrote_chunk(tracker, whole.take(), &bytes[pos..pos + w], n);
                        pos += w;
                    }
                    Poll::Pending => return Poll::Ready(Step::Backlog(bytes[pos..].to_vec())),
                }
            }
        })
    }

    /// Leaves this direction's waker with the relay (for close orders and pings) once its
    /// I/O is pending, and answers `Pending` unless an order or (when `ping_ok`) a ping came
    /// before the waker was left.
    fn wait(&self, cx: &mut Context<'_>, ping_ok: bool) -> Poll<Step> {
        self.shared.wakers[self.way].register(cx.waker());
        match self.due(ping_ok) {
            Some(interrupt) => Poll::Ready(Step::Interrupted(interrupt)),
            None => Poll::Pending,
        }
    }

    /// What should cut the copy loop short now: a close order, or (when `ping_ok`: the
    /// destination is at a frame boundary) a keep-alive ping wanted towards the destination;
    /// the relay wakes this direction when it gives either.
    fn due(&self, ping_ok: bool) -> Option<Interrupt> {
        let shared = &*self.shared;
        if let Some(order) = shared.stop.get() {
            return Some(Interrupt::Stop(order.clone()));
        }
        let ping = ping_ok
            && shared
                .heartbeat
                .as_ref()
                .is_some_and(|h| h.ping_wanted(1 - self.way));
        ping.then_some(Interrupt::Ping)
    }
}

#[cfg(test)]
#[path = "relay_tests.rs"]
mod tests;
