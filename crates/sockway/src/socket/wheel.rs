//! The shared timer of a runtime's sockets ([`Wheel`]) and its coarse clock.
//!
//! A tokio `Sleep` per socket costs an idle connection about 170 bytes of heap and one timer
//! entry. Instead, every socket on a runtime registers in that runtime's [`Wheel`]: a slab of
//! (deadline, waker) pairs, 24 bytes each, and one driver task that sleeps until the earliest
//! deadline, wakes the sockets whose deadline passed, and sleeps again. A socket keeps its own
//! bookkeeping inline (`keep_alive::KeepAliveTimer`) and touches the shared wheel only when it
//! arms a new deadline: once per keep-alive interval while the peer is heard from, not per
//! message.
//!
//! The slab keeps its high-water mark (24 bytes per socket at the busiest moment); vacant
//! slots are reused.
//!
//! Deadlines are whole milliseconds since the wheel's start; the driver lets at least
//! [`MIN_SCAN_GAP_MS`] (more with many sockets) pass between two scans of the slab, so its
//! work stays small however the deadlines are spread.
//!
//! **The coarse clock.** A socket notes when its peer was last heard from each time it is
//! about to wait after bytes arrived, which is once per message on a busy connection. Reading
//! the clock there cost about 90 instructions per message. So while sockets are being heard
//! from, the driver also ticks every [`Wheel::tick_ms`] and publishes a *horizon*: a time no
//! earlier than the next tick (the tick's time plus two tick periods). A socket notes the
//! horizon it saw (one atomic load) instead of reading the clock, and tells the core only at
//! its deadline check, through [`Wheel::heard_by`]. The horizon never comes before the
//! moment the socket saw it: the driver checks, when it ticks, whether the horizon it replaces
//! has already passed (a tick delayed on a busy runtime), and keeps the time it really
//! replaced it for such a late one; so a keep-alive deadline counted from it never comes
//! early, and comes at most two ticks late. The driver stops ticking when no socket took the
//! horizon for a whole tick; the next socket to be heard from then reads the clock once and
//! starts it again.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::task::{Poll, Waker};
use std::time::Duration;

use tokio::runtime::{Handle, Id};
use tokio::time::{Instant, Sleep};

/// "No deadline" in a slot or a timer.
pub(crate) const NEVER: u64 = u64::MAX;

/// The least time between two scans of a wheel's slab, in milliseconds.
const MIN_SCAN_GAP_MS: u64 = 10;

/// The scan gap grows by a millisecond per this many registered sockets, so that a wheel with
/// a million sockets scans about once a second rather than a hundred times.
const SOCKETS_PER_GAP_MS: u64 = 1000;

/// The coarse clock ticks at least this often, in milliseconds, whatever the intervals.
const MAX_TICK_MS: u64 = 1000;

/// A keep-alive interval is divided into at least this many ticks of the coarse clock, so
/// that a ping is late by at most about 3 % of the interval.
const TICKS_PER_INTERVAL: u64 = 64;

/// How many late horizons (see [`WheelState::late`]) a wheel remembers.
const LATE_KEPT: usize = 32;

/// The wheels of the runtimes that have one, by runtime. Few entries: one per runtime that
/// ran a socket with keep-alive on.
static WHEELS: Mutex<Vec<(Id, Weak<Wheel>)>> = Mutex::new(Vec::new());

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Every keep-alive deadline of one runtime's sockets, the driver task that serves them, and
/// the coarse clock the driver keeps while sockets are heard from.
#[derive(Debug)]
pub(crate) struct Wheel {
    /// Deadlines are milliseconds since this instant.
    epoch: Instant,
    /// Whether a driver task is running for this wheel (changed only with `state` locked;
    /// read without the lock before every wait).
    pub(crate) driver_alive: AtomicBool,
    /// The time of the latest scan: every deadline at or before it has been woken. A socket
    /// compares its deadline with it instead of reading the clock.
    pub(crate) scanned: AtomicU64,
    /// The coarse clock's horizon (see the module's documentation): while the driver ticks, a
    /// time no earlier than its next tick; 0 while it does not. Changed only with `state`
    /// locked.
    horizon: AtomicU64,
    /// Whether a socket took the horizon since the driver's last tick.
    horizon_taken: AtomicBool,
    /// Whether the driver ticks, or was asked to.
    ticking: AtomicBool,
    /// Milliseconds between two ticks: the shortest any socket asked for.
    tick_ms: AtomicU64,
    state: Mutex<WheelState>,
}

#[derive(Debug)]
struct WheelState {
    slots: Vec<Slot>,
    /// Indices of vacant slots.
    vacant: Vec<u32>,
    /// When the driver scans the slab next (`NEVER`: nothing is armed).
    next_scan: u64,
    /// When the driver ticks next (`NEVER`: it does not tick).
    next_tick: u64,
    /// The driver's waker, to wake it when a deadline earlier than `next_scan` is armed or
    /// ticking starts.
    driver: Option<Waker>,
    /// Horizons that had already passed when the driver replaced them, with the time it did
    /// (rounded up), oldest first; at most [`LATE_KEPT`].
    late: VecDeque<(u64, u64)>,
    /// The latest horizon dropped from `late` (0: none): whether it or an earlier one was
    /// late is no longer known.
    late_forgotten: u64,
}

/// One socket's deadline and the waker to wake when it passes.
#[derive(Debug)]
struct Slot {
    deadline: u64,
    waker: Option<Waker>,
}

impl Wheel {
    /// The current runtime's wheel, made on first use; `None` outside a tokio runtime.
    pub(crate) fn for_current_runtime() -> Option<Arc<Wheel>> {
        let id = Handle::try_current().ok()?.id();
        let mut wheels = lock(&WHEELS);
        wheels.retain(|(_, wheel)| wheel.strong_count() > 0);
        if let Some(wheel) = wheels
            .iter()
            .find(|(owner, _)| *owner == id)
            .and_then(|(_, wheel)| wheel.upgrade())
        {
            return Some(wheel);
        }
        let wheel = Arc::new(Wheel {
            epoch: Instant::now(),
            driver_alive: AtomicBool::new(false),
            scanned: AtomicU64::new(0),
            horizon: AtomicU64::new(0),
            horizon_taken: AtomicBool::new(false),
            ticking: AtomicBool::new(false),
            tick_ms: AtomicU64::new(MAX_TICK_MS),
            state: Mutex::new(WheelState {
                slots: Vec::new(),
                vacant: Vec::new(),
                next_scan: NEVER,
                next_tick: NEVER,
                driver: None,
                late: VecDeque::new(),
                late_forgotten: 0,
            }),
        });
        wheels.push((id, Arc::downgrade(&wheel)));
        Some(wheel)
    }

    /// Milliseconds since the wheel's start (whole ones, rounded down).
    pub(crate) fn now(&self) -> u64 {
        let elapsed = self.epoch.elapsed();
        elapsed
            .as_secs()
            .saturating_mul(1000)
            .saturating_add(u64::from(elapsed.subsec_millis()))
    }

    /// Milliseconds since the wheel's start, rounded up: a time to tell the core the peer
    /// was heard at, so that a deadline counted from it never comes early.
    pub(crate) fn now_rounded_up(&self) -> u64 {
        let elapsed = self.epoch.elapsed();
        elapsed
            .as_secs()
            .saturating_mul(1000)
            .saturating_add(u64::from(elapsed.subsec_nanos().div_ceil(1_000_000)))
    }

    /// The instant of a deadline.
    fn instant(&self, deadline: u64) -> Instant {
        self.epoch + Duration::from_millis(deadline)
    }

    pub(crate) fn register(&self) -> u32 {
        let mut state = lock(&self.state);
        let vacant = Slot {
            deadline: NEVER,
            waker: None,
        };
        match state.vacant.pop() {
            Some(index) => {
                state.slots[index as usize] = vacant;
                index
            }
            None => {
                state.slots.push(vacant);
                u32::try_from(state.slots.len() - 1).unwrap_or(u32::MAX)
            }
        }
    }

    pub(crate) fn unregister(&self, index: u32) {
        let mut state = lock(&self.state);
        if let Some(slot) = state.slots.get_mut(index as usize) {
            slot.deadline = NEVER;
            let waker = slot.waker.take();
            state.vacant.push(index);
            drop(state);
            drop(waker);
        }
    }

    /// Has the driver wake `waker` once `deadline` has passed, starting a driver if none runs.
    pub(crate) fn arm(self: &Arc<Self>, index: u32, deadline: u64, waker: &Waker) {
        let mut state = lock(&self.state);
        let Some(slot) = state.slots.get_mut(index as usize) else {
            return;
        };
        slot.deadline = deadline;
        match &mut slot.waker {
            Some(current) => current.clone_from(waker),
            None => slot.waker = Some(waker.clone()),
        }
        if !self.driver_alive.load(Ordering::Acquire) {
            if let Ok(handle) = Handle::try_current() {
                // Made here, in the socket's task and before the driver counts as running: on
                // a runtime without timers this panics where every socket is used, as a
                // socket's own sleep would, not in a driver task started again and again.
                let sleep = Box::pin(tokio::time::sleep(Duration::ZERO));
                self.driver_alive.store(true, Ordering::Release);
                state.next_scan = 0;
                drop(state);
                handle.spawn(drive(Arc::downgrade(self), sleep));
            }
            return;
        }
        if deadline < state.next_scan {
            state.next_scan = deadline;
            if let Some(driver) = &state.driver {
                driver.wake_by_ref();
            }
        }
    }

    /// The coarse clock, for a socket whose peer was just heard from: the current horizon
    /// (to be passed to [`Wheel::heard_by`] later), or 0 when the driver does not tick (then
    /// the socket reads the clock and calls [`Wheel::start_ticking`]). One atomic load on a
    /// busy wheel.
    #[inline]
    pub(crate) fn horizon(&self) -> u64 {
        let horizon = self.horizon.load(Ordering::Acquire);
        if horizon != 0 && !self.horizon_taken.load(Ordering::Relaxed) {
            self.horizon_taken.store(true, Ordering::Relaxed);
        }
        horizon
    }

    /// Asks the driver to keep the coarse clock, ticking at least once per
    /// [`TICKS_PER_INTERVAL`]th of `interval` (the keep-alive interval of the asking socket).
    #[cold]
    pub(crate) fn start_ticking(&self, interval: Duration) {
        let tick =
            (interval.as_millis() as u64 / TICKS_PER_INTERVAL).clamp(MIN_SCAN_GAP_MS, MAX_TICK_MS);
        self.tick_ms.fetch_min(tick, Ordering::Relaxed);
        if self.ticking.swap(true, Ordering::AcqRel) {
            return;
        }
        let mut state = lock(&self.state);
        state.next_tick = 0;
        if let Some(driver) = &state.driver {
            driver.wake_by_ref();
        }
    }

    /// A time, in the wheel's milliseconds, no earlier than the moment a socket took
    /// `horizon` from [`Wheel::horizon`]: the horizon itself, unless the driver replaced it
    /// late (then when it did), or it is still current or too old to know (then now).
    pub(crate) fn heard_by(&self, horizon: u64) -> u64 {
        let state = lock(&self.state);
        if self.horizon.load(Ordering::Acquire) == horizon || horizon <= state.late_forgotten {
            drop(state);
            return self.now_rounded_up();
        }
        state
            .late
            .iter()
            .find(|(late, _)| *late == horizon)
            .map_or(horizon, |&(_, replaced)| replaced)
    }

    /// One tick of the coarse clock at `now`: a new horizon if a socket took the last one (or
    /// ticking just started), else none and ticking stops.
    fn tick(&self, state: &mut WheelState, now: u64) {
        let tick = self.tick_ms.load(Ordering::Relaxed);
        let taken = self.horizon_taken.swap(false, Ordering::AcqRel);
        let current = self.horizon.load(Ordering::Relaxed);
        let next = if taken || current == 0 {
            state.next_tick = now.saturating_add(tick);
            // Strictly later than the one it replaces: a socket's horizon names one tick.
            now.saturating_add(2 * tick).max(current + 1)
        } else {
            state.next_tick = NEVER;
            // Before the horizon goes: a socket that finds none then starts ticking again.
            self.ticking.store(false, Ordering::Release);
            0
        };
        self.replace_horizon(state, next);
    }

    /// Publishes `next` as the horizon, remembering when the one it replaces was replaced if
    /// that was already past it.
    fn replace_horizon(&self, state: &mut WheelState, next: u64) {
        let replaced = self.horizon.swap(next, Ordering::SeqCst);
        if replaced == 0 {
            return;
        }
        // Read after the swap: every socket that took `replaced` did so before this.
        let at = self.now_rounded_up();
        if at > replaced {
            if state.late.len() == LATE_KEPT {
                if let Some((forgotten, _)) = state.late.pop_front() {
                    state.late_forgotten = forgotten;
                }
            }
            state.late.push_back((replaced, at));
        }
    }

    /// The driver's turn at `now`: ticks the coarse clock if due, and takes the wakers of
    /// every slot whose deadline is `now` or earlier if a scan is due. Says when to wake
    /// next (`NEVER` if nothing is armed and the clock does not tick).
    fn serve(&self, now: u64, driver: &Waker) -> (Vec<Waker>, u64) {
        let mut state = lock(&self.state);
        if state.next_tick <= now {
            self.tick(&mut state, now);
        }
        let mut due = Vec::new();
        if state.next_scan <= now {
            self.scanned.fetch_max(now, Ordering::AcqRel);
            let mut next = NEVER;
            for slot in &mut state.slots {
                if slot.deadline <= now {
                    slot.deadline = NEVER;
                    due.extend(slot.waker.take());
                } else {
                    next = next.min(slot.deadline);
                }
            }
            if next != NEVER {
                let occupied = (state.slots.len() - state.vacant.len()) as u64;
                next = next.max(now + MIN_SCAN_GAP_MS + occupied / SOCKETS_PER_GAP_MS);
            }
            state.next_scan = next;
        }
        match &mut state.driver {
            Some(current) => current.clone_from(driver),
            None => state.driver = Some(driver.clone()),
        }
        (due, state.next_scan.min(state.next_tick))
    }
}

impl Drop for Wheel {
    fn drop(&mut self) {
        // Lets a driver waiting without a deadline see that the wheel is gone and end.
        let driver = lock(&self.state).driver.take();
        if let Some(driver) = driver {
            driver.wake();
        }
    }
}

/// Marks the wheel driverless when the driver task ends (or its runtime drops it), stops the
/// coarse clock, and wakes every registered socket so that each arms again and starts a new
/// driver where it runs.
struct DriverGuard(Weak<Wheel>);

impl Drop for DriverGuard {
    fn drop(&mut self) {
        let Some(wheel) = self.0.upgrade() else {
            return;
        };
        let wakers: Vec<Waker> = {
            let mut state = lock(&wheel.state);
            wheel.driver_alive.store(false, Ordering::Release);
            state.driver = None;
            state.next_tick = NEVER;
            wheel.ticking.store(false, Ordering::Release);
            wheel.replace_horizon(&mut state, 0);
            state
                .slots
                .iter_mut()
                .filter_map(|slot| slot.waker.take())
                .collect()
        };
        for waker in wakers {
            waker.wake();
        }
    }
}

/// The driver task of a wheel: wakes the sockets whose deadline passed and ticks the coarse
/// clock, then sleeps until the next of either. Ends when the wheel is gone.
async fn drive(wheel: Weak<Wheel>, mut sleep: Pin<Box<Sleep>>) {
    let _guard = DriverGuard(wheel.clone());
    std::future::poll_fn(|cx| loop {
        let Some(strong) = wheel.upgrade() else {
            return Poll::Ready(());
        };
        let (due, next) = strong.serve(strong.now(), cx.waker());
        let next = (next != NEVER).then(|| strong.instant(next));
        drop(strong);
        for waker in due {
            waker.wake();
        }
        let Some(next) = next else {
            return Poll::Pending;
        };
        sleep.as_mut().reset(next);
        if sleep.as_mut().poll(cx).is_pending() {
            return Poll::Pending;
        }
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wheel() -> Arc<Wheel> {
        Wheel::for_current_runtime().unwrap()
    }

    #[tokio::test(start_paused = true)]
    async fn a_horizon_is_never_before_it_was_taken() {
        let wheel = wheel();
        assert_eq!(wheel.horizon(), 0, "no tick before a socket asks");
        wheel.start_ticking(Duration::from_millis(640));
        let driver = Waker::noop();
        wheel.serve(wheel.now(), driver);
        let first = wheel.horizon();
        let taken_at = wheel.now();
        assert!(first >= taken_at + 10, "{first} {taken_at}");
        // Current: now, which is no earlier than when it was taken.
        tokio::time::advance(Duration::from_millis(3)).await;
        assert_eq!(wheel.heard_by(first), wheel.now_rounded_up());
        // Replaced in time: the horizon itself.
        tokio::time::advance(Duration::from_millis(7)).await;
        wheel.serve(wheel.now(), driver);
        let second = wheel.horizon();
        assert!(second > first);
        assert_eq!(wheel.heard_by(first), first);
        // Replaced late (a tick delayed past the horizon): when it was replaced.
        tokio::time::advance(Duration::from_millis(50)).await;
        wheel.serve(wheel.now(), driver);
        let replaced = wheel.now_rounded_up();
        assert!(replaced > second);
        assert_eq!(wheel.heard_by(second), replaced);
    }

    #[tokio::test(start_paused = true)]
    async fn ticking_stops_when_no_socket_takes_the_horizon_and_starts_again() {
        let wheel = wheel();
        let driver = Waker::noop();
        wheel.start_ticking(Duration::from_secs(1));
        wheel.serve(wheel.now(), driver);
        assert_ne!(wheel.horizon.load(Ordering::Relaxed), 0);
        // Nobody took it for a whole tick: the clock stops.
        tokio::time::advance(Duration::from_millis(15)).await;
        let (_, next) = wheel.serve(wheel.now(), driver);
        assert_eq!(next, NEVER);
        assert_eq!(wheel.horizon(), 0);
        wheel.start_ticking(Duration::from_secs(1));
        wheel.serve(wheel.now(), driver);
        assert_ne!(wheel.horizon(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn forgotten_late_horizons_resolve_to_now() {
        let wheel = wheel();
        let driver = Waker::noop();
        wheel.start_ticking(Duration::from_millis(640));
        wheel.serve(wheel.now(), driver);
        let oldest = wheel.horizon();
        for _ in 0..=LATE_KEPT {
            tokio::time::advance(Duration::from_millis(100)).await;
            wheel.horizon();
            wheel.serve(wheel.now(), driver);
        }
        assert_eq!(wheel.heard_by(oldest), wheel.now_rounded_up());
    }
}
