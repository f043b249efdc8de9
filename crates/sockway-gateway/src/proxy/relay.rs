//! Relaying an upgraded WebSocket connection both ways with bounded buffers, counting bytes,
//! watching frame boundaries, and closing it properly when the gateway has to:
//!
//! - **Idle limit**: the backend settings' `requestTimeout` applies to WebSocket sessions
//!   (seed 003: "HTTP 설정의 요청 시간 제한 값은 WebSocket 세션에도 적용 됩니다"). sockway
//!   defines it as an idle limit: when no byte has moved either way for `requestTimeout`,
//!   the gateway sends each side a close frame 1001 (RFC 6455 section 7.4.1, "going away"),
//!   masked towards the backend (section 5.3), then closes TCP.
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

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::Poll;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::watch;

use super::frames::{close_frame, FrameTracker};
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

/// Byte counters of one session (the relay also adds to the `totals` it is given, such as
/// the backend's metrics, as bytes move).
#[derive(Debug, Default)]
pub struct Counters {
    /// Client → backend.
    pub up: AtomicU64,
    /// Backend → client.
    pub down: AtomicU64,
}

struct Direction {
    /// Frames written to the destination side.
    tracker: FrameTracker,
    /// Mask gateway close frames (towards the backend).
    mask: bool,
}

/// Relays until both sides are done; see the module documentation.
pub async fn relay(
    client: Side,
    backend: Side,
    config: RelayConfig,
    mut orders: watch::Receiver<Option<CloseOrder>>,
    counters: Arc<Counters>,
    totals: [&AtomicU64; 2],
) -> RelayOutcome {
    let start = Instant::now();
    // An order given before the relay started is honoured at once.
    let early = orders.borrow_and_update().clone();
    let activity = AtomicU64::new(0);
    // The order the pumps obey. They run in this task, next to the controller: when the
    // controller sets it, the loop below polls the pumps again and they see it, so no waker
    // is needed and each read and write only looks at it.
    let stop = OnceLock::<CloseOrder>::new();
    let Side {
        read: mut client_r,
        write: mut client_w,
        prefix: client_prefix,
    } = client;
    let Side {
        read: mut backend_r,
        write: mut backend_w,
        prefix: backend_prefix,
    } = backend;
    let mut up = Direction {
        tracker: FrameTracker::new(),
        mask: true,
    };
    let mut down = Direction {
        tracker: FrameTracker::new(),
        mask: false,
    };
    let up_fut = pump(
        client_prefix,
        &mut client_r,
        &mut backend_w,
        &mut up,
        &config,
        &stop,
        &activity,
        start,
        [&counters.up, totals[0]],
    );
    let down_fut = pump(
        backend_prefix,
        &mut backend_r,
        &mut client_w,
        &mut down,
        &config,
        &stop,
        &activity,
        start,
        [&counters.down, totals[1]],
    );
    let controller = async {
        let mut orders_open = true;
        loop {
            let last = Duration::from_millis(activity.load(Ordering::Relaxed));
            let due = last + config.idle;
            let now = start.elapsed();
            if now >= due {
                let _ = stop.set(CloseOrder {
                    code: 1001,
                    reason: "idle timeout",
                });
                return "idle timeout";
            }
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
                        let _ = stop.set(order);
                        return reason;
                    }
                }
            }
        }
    };
    let mut ended_by_gateway = None;
    {
        tokio::pin!(up_fut, down_fut, controller);
        if let Some(order) = early {
            ended_by_gateway = Some(order.reason);
            let _ = stop.set(order);
        }
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
                _ = &mut up_fut, if !up_done => up_done = true,
                _ = &mut down_fut, if !down_done => down_done = true,
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
    RelayOutcome {
        bytes_up: counters.up.load(Ordering::Relaxed),
        bytes_down: counters.down.load(Ordering::Relaxed),
        client_close: up.tracker.close_code(),
        backend_close: down.tracker.close_code(),
        ended_by_gateway,
        duration: start.elapsed(),
    }
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

/// What a pump shares with the rest of its relay.
struct Shared<'a> {
    stop: &'a OnceLock<CloseOrder>,
    activity: &'a AtomicU64,
    start: Instant,
    counters: [&'a AtomicU64; 2],
}

impl Shared<'_> {
    /// Notes traffic now, for the idle limit.
    fn touch(&self) {
        let now = u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.activity.store(now, Ordering::Relaxed);
    }
}

/// Relays `prefix`, then what `src` sends, to `dst`; then closes `dst`'s way.
#[allow(clippy::too_many_arguments)]
async fn pump(
    prefix: Bytes,
    src: &mut ReadSide,
    dst: &mut WriteSide,
    dir: &mut Direction,
    config: &RelayConfig,
    stop: &OnceLock<CloseOrder>,
    activity: &AtomicU64,
    start: Instant,
    counters: [&AtomicU64; 2],
) {
    let shared = Shared {
        stop,
        activity,
        start,
        counters,
    };
    let mut buf = vec![0u8; config.buffer];
    let order = 'copy: {
        if !prefix.is_empty() {
            shared.touch();
            match write_out(dst, &prefix, dir, &shared).await {
                Written::All => {}
                Written::Stopped(order) => break 'copy Some(order),
                Written::Failed => return,
            }
        }
        loop {
            let read = match unless_stopped(src.read(&mut buf), stop).await {
                Ok(read) => read,
                Err(order) => break 'copy Some(order),
            };
            let n = match read {
                Ok(0) | Err(_) => {
                    // The source ended. If it never said goodbye, say it for it.
                    let order = CloseOrder {
                        code: 1001,
                        reason: if dir.mask {
                            "client went away"
                        } else {
                            "backend went away"
                        },
                    };
                    finish(dst, dir, config, Some(order)).await;
                    return;
                }
                Ok(n) => n,
            };
            shared.touch();
            match write_out(dst, &buf[..n], dir, &shared).await {
                Written::All => {}
                Written::Stopped(order) => break 'copy Some(order),
                Written::Failed => return,
            }
        }
    };
    finish(dst, dir, config, order).await;
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

/// Writes all of `bytes` to `dst`, tracking frames and counting bytes as they go.
async fn write_out(
    dst: &mut WriteSide,
    bytes: &[u8],
    dir: &mut Direction,
    shared: &Shared<'_>,
) -> Written {
    let mut pos = 0;
    while pos < bytes.len() {
        let written = match unless_stopped(dst.write(&bytes[pos..]), shared.stop).await {
            Ok(written) => written,
            Err(order) => return Written::Stopped(order),
        };
        match written {
            Ok(0) | Err(_) => return Written::Failed,
            Ok(w) => {
                dir.tracker.feed(&bytes[pos..pos + w]);
                for counter in shared.counters {
                    counter.fetch_add(w as u64, Ordering::Relaxed);
                }
                pos += w;
                if pos < bytes.len() {
                    // A partial write: the destination is slow, but bytes still move.
                    shared.touch();
                }
            }
        }
    }
    Written::All
}

/// Runs `io` unless a close order is (or gets) set: then `Err` with it. Checked at every
/// poll; see `relay` for why that is enough.
async fn unless_stopped<T>(
    io: impl Future<Output = T>,
    stop: &OnceLock<CloseOrder>,
) -> Result<T, CloseOrder> {
    let mut io = std::pin::pin!(io);
    std::future::poll_fn(|cx| match stop.get() {
        Some(order) => Poll::Ready(Err(order.clone())),
        None => io.as_mut().poll(cx).map(Ok),
    })
    .await
}

/// Writes a close frame for `order` (if at a frame boundary and no close went this way yet)
/// and shuts the destination's write side.
async fn finish(
    dst: &mut WriteSide,
    dir: &Direction,
    config: &RelayConfig,
    order: Option<CloseOrder>,
) {
    let _ = tokio::time::timeout(config.close_grace, async {
        if let Some(order) = order {
            if dir.tracker.at_boundary() && !dir.tracker.close_seen() {
                let frame = close_frame(order.code, order.reason, dir.mask);
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
