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

use std::future::Future;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::Poll;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::task::AtomicWaker;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::boundary::{close_frame, FrameTracker};
use super::heartbeat::{Beat, Heartbeat, PongFilter, Scanned};
use super::upgraded::{ReadSide, Side, WriteSide};
use crate::drain::CloseOrder;

/// Relay settings.
#[derive(Debug, Clone, Copy)]
pub struct RelayConfig {
    /// Close after this long without traffic.
    pub idle: Duration,
    /// Buffer per direction.
    pub buffer: usize,
    /// Time to finish closing.
    pub close_grace: Duration,
    /// Ping quiet sides before the idle limit ([`super::heartbeat`]).
    pub keep_alive: bool,
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

    /// Notes traffic now, for the idle limit.
    fn touch(&self) {
        let now = u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.activity.store(now, Ordering::Relaxed);
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
    let mut tasks = Directions([
        tokio::spawn(up.run(client.prefix, client.read, backend.write)),
        tokio::spawn(down.run(backend.prefix, backend.read, client.write)),
    ]);
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

/// Why waiting on a read or write was cut short.
enum Interrupt {
    /// A close order was given.
    Stop(CloseOrder),
    /// A keep-alive ping is wanted towards the destination, which is at a frame boundary.
    Ping,
}

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
struct Pump<T> {
    /// [`UP`] or [`DOWN`].
    way: usize,
    shared: Arc<Shared>,
    counters: Arc<Counters>,
    totals: Arc<T>,
}

impl<T: Totals> Pump<T> {
    /// Relays `prefix`, then what `src` sends, to `dst`; then closes `dst`'s way. With
    /// keep-alive, the source's bytes go through its [`PongFilter`] and a ping wanted towards
    /// the destination is written at its next frame boundary.
    async fn run(self, prefix: Bytes, mut src: ReadSide, mut dst: WriteSide) {
        let config = self.shared.config;
        let mut tracker = FrameTracker::new();
        let mut filter =
            (self.shared.heartbeat.as_ref()).map(|h| PongFilter::new(h.payload[self.way]));
        let mut buf = vec![0u8; config.buffer];
        let order = 'copy: {
            if !prefix.is_empty() {
                self.shared.touch();
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
                // Never after a close frame went that way (RFC 6455 section 5.5.1).
                let ping_ok = tracker.at_boundary() && !tracker.close_seen();
                let read = match self.interruptible(src.read(&mut buf), ping_ok).await {
                    Ok(read) => read,
                    Err(Interrupt::Stop(order)) => break 'copy Some(order),
                    Err(Interrupt::Ping) => match self.ping(&mut dst).await {
                        Written::All => continue,
                        Written::Stopped(order) => break 'copy Some(order),
                        Written::Failed => return,
                    },
                };
                let n = match read {
                    Ok(0) | Err(_) => {
                        // The source ended. If it never said goodbye, say it for it.
                        let order = CloseOrder {
                            code: 1001,
                            reason: if self.way == UP {
                                "client went away"
                            } else {
                                "backend went away"
                            },
                        };
                        self.finish(&mut dst, &tracker, Some(order)).await;
                        return;
                    }
                    Ok(n) => n,
                };
                self.shared.touch();
                match self
                    .relay_chunk(&mut dst, &buf[..n], &mut tracker, &mut filter)
                    .await
                {
                    Written::All => {}
                    Written::Stopped(order) => break 'copy Some(order),
                    Written::Failed => return,
                }
            }
        };
        self.finish(&mut dst, &tracker, order).await;
        // Read and drop what the source still sends (its close reply) until it ends.
        let _ = tokio::time::timeout(config.close_grace, async {
            loop {
                match src.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                }
            }
        })
        .await;
    }

    /// Relays `bytes` the source sent: notes that the source was heard and takes out its
    /// pongs to the gateway's pings (with keep-alive), then writes the rest.
    async fn relay_chunk(
        &self,
        dst: &mut WriteSide,
        bytes: &[u8],
        tracker: &mut FrameTracker,
        filter: &mut Option<PongFilter>,
    ) -> Written {
        let (Some(heartbeat), Some(filter)) = (self.shared.heartbeat.as_ref(), filter.as_mut())
        else {
            return self.write_out(dst, bytes, tracker).await;
        };
        heartbeat.heard(self.way, self.shared.start.elapsed());
        match filter.scan(bytes) {
            Scanned::Pass => self.write_out(dst, bytes, tracker).await,
            Scanned::Edited(kept) => self.write_out(dst, &kept, tracker).await,
        }
    }

    /// Writes the keep-alive ping towards the destination (called at a frame boundary).
    async fn ping(&self, dst: &mut WriteSide) -> Written {
        let Some(heartbeat) = self.shared.heartbeat.as_ref() else {
            return Written::All;
        };
        let side = 1 - self.way;
        let frame = heartbeat.ping_frame(side);
        // Noted before writing: an answer may come back before the write returns.
        heartbeat.ping_sent(side, self.shared.start.elapsed());
        match self.unless_stopped(dst.write_all(&frame)).await {
            Ok(Ok(())) => Written::All,
            Ok(Err(_)) => Written::Failed,
            Err(order) => Written::Stopped(order),
        }
    }

    /// Writes all of `bytes` to `dst`, tracking frames and counting bytes as they go.
    async fn write_out(
        &self,
        dst: &mut WriteSide,
        bytes: &[u8],
        tracker: &mut FrameTracker,
    ) -> Written {
        let mut pos = 0;
        while pos < bytes.len() {
            let written = match self.unless_stopped(dst.write(&bytes[pos..])).await {
                Ok(written) => written,
                Err(order) => return Written::Stopped(order),
            };
            match written {
                Ok(0) | Err(_) => return Written::Failed,
                Ok(w) => {
                    tracker.feed(&bytes[pos..pos + w]);
                    if let Some(code) = tracker.close_code() {
                        self.shared.close_codes[self.way]
                            .store(u32::from(code) + 1, Ordering::Relaxed);
                    }
                    let total = self.totals.totals()[self.way];
                    let own = if self.way == UP {
                        &self.counters.up
                    } else {
                        &self.counters.down
                    };
                    for counter in [own, total] {
                        counter.fetch_add(w as u64, Ordering::Relaxed);
                    }
                    pos += w;
                    if pos < bytes.len() {
                        // A partial write: the destination is slow, but bytes still move.
                        self.shared.touch();
                    }
                }
            }
        }
        Written::All
    }

    /// Runs `io` unless a close order is (or gets) given: then `Err` with it. The order is
    /// checked at every poll; while `io` is pending this direction's waker is left with the
    /// relay, which wakes it when it gives the order.
    async fn unless_stopped<O>(&self, io: impl Future<Output = O>) -> Result<O, CloseOrder> {
        let mut io = std::pin::pin!(io);
        let shared = &*self.shared;
        std::future::poll_fn(|cx| {
            if let Some(order) = shared.stop.get() {
                return Poll::Ready(Err(order.clone()));
            }
            match io.as_mut().poll(cx) {
                Poll::Ready(out) => Poll::Ready(Ok(out)),
                Poll::Pending => {
                    shared.wakers[self.way].register(cx.waker());
                    // The order may have been given before the waker was left.
                    match shared.stop.get() {
                        Some(order) => Poll::Ready(Err(order.clone())),
                        None => Poll::Pending,
                    }
                }
            }
        })
        .await
    }

    /// Like [`Self::unless_stopped`], and also cut short when `ping_ok` (the destination is
    /// at a frame boundary) and a keep-alive ping is wanted towards the destination; the
    /// relay wakes this direction when it wants one.
    async fn interruptible<O>(
        &self,
        io: impl Future<Output = O>,
        ping_ok: bool,
    ) -> Result<O, Interrupt> {
        let mut io = std::pin::pin!(io);
        let shared = &*self.shared;
        let due = || {
            if let Some(order) = shared.stop.get() {
                return Some(Interrupt::Stop(order.clone()));
            }
            let side = 1 - self.way;
            let ping = ping_ok
                && shared
                    .heartbeat
                    .as_ref()
                    .is_some_and(|h| h.ping_wanted(side));
            ping.then_some(Interrupt::Ping)
        };
        std::future::poll_fn(|cx| {
            if let Some(interrupt) = due() {
                return Poll::Ready(Err(interrupt));
            }
            match io.as_mut().poll(cx) {
                Poll::Ready(out) => Poll::Ready(Ok(out)),
                Poll::Pending => {
                    shared.wakers[self.way].register(cx.waker());
                    match due() {
                        Some(interrupt) => Poll::Ready(Err(interrupt)),
                        None => Poll::Pending,
                    }
                }
            }
        })
        .await
    }

    /// Writes a close frame for `order` (if at a frame boundary and no close went this way
    /// yet) and shuts the destination's write side.
    async fn finish(&self, dst: &mut WriteSide, tracker: &FrameTracker, order: Option<CloseOrder>) {
        let mask = self.way == UP;
        let _ = tokio::time::timeout(self.shared.config.close_grace, async {
            if let Some(order) = order {
                if tracker.at_boundary() && !tracker.close_seen() {
                    let frame = close_frame(order.code, order.reason, mask);
                    if dst.write_all(&frame).await.is_err() {
                        return;
                    }
                }
            }
            let _ = dst.flush().await;
            let _ = dst.shutdown().await;
        })
        .await;
    }
}
