//! One housekeeping tick shared by a runtime's hub connections.
//!
//! Each connection checks its timers (keep-alive `Ping`, client timeout, the handshake's
//! deadline) once per tick, about once a second as the reference's heartbeat does
//! (`HubOptions::tick`). A tokio `interval` per connection costs every idle connection its
//! boxed `Sleep` (112 bytes of heap) and a timer entry; instead, the connections of one
//! runtime that tick at the same period wait on one [`Ticker`], whose single task wakes them
//! all at each tick (docs/benchmarks/hub.md, "Idle memory", change 13). A connection's wait is a
//! `Notified` inside its own future: no heap at all.

use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

use tokio::runtime::{Handle, Id};
use tokio::sync::futures::Notified;
use tokio::sync::Notify;

/// The tickers in use, by runtime and period: few entries (one per runtime and period that
/// has connections).
static TICKERS: Mutex<Vec<(Id, Duration, Weak<Ticker>)>> = Mutex::new(Vec::new());

/// A tick every period, for every connection that waits on it.
#[derive(Debug)]
pub(crate) struct Ticker {
    notify: Notify,
}

impl Ticker {
    /// The current runtime's ticker for `period`, started on first use; it stops once no
    /// connection holds it. `None` outside a tokio runtime.
    pub(crate) fn for_current_runtime(period: Duration) -> Option<Arc<Ticker>> {
        let runtime = Handle::try_current().ok()?;
        let id = runtime.id();
        let mut tickers = TICKERS.lock().unwrap_or_else(PoisonError::into_inner);
        tickers.retain(|(_, _, ticker)| ticker.strong_count() > 0);
        let found = tickers
            .iter()
            .filter(|(owner, every, _)| *owner == id && *every == period)
            .find_map(|(_, _, ticker)| ticker.upgrade());
        if let Some(ticker) = found {
            return Some(ticker);
        }
        let ticker = Arc::new(Ticker {
            notify: Notify::new(),
        });
        tickers.push((id, period, Arc::downgrade(&ticker)));
        runtime.spawn(drive(Arc::downgrade(&ticker), period));
        Some(ticker)
    }

    /// Resolves at the next tick. Made before the connection checks anything else, it is
    /// woken by any tick from its creation on, so a tick is never missed while it waits.
    pub(crate) fn tick(&self) -> Notified<'_> {
        self.notify.notified()
    }
}

/// Wakes every waiting connection each `period` until the ticker is dropped. A late tick
/// (a busy runtime) is followed by the next one a full period later, never by a burst.
async fn drive(ticker: Weak<Ticker>, period: Duration) {
    let start = tokio::time::Instant::now() + period;
    let mut interval = tokio::time::interval_at(start, period);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        let Some(ticker) = ticker.upgrade() else {
            return;
        };
        ticker.notify.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WAIT: Duration = Duration::from_secs(20);

    #[tokio::test]
    async fn connections_of_one_period_share_a_ticker_that_ticks() {
        let period = Duration::from_millis(10);
        let first = Ticker::for_current_runtime(period).unwrap();
        let second = Ticker::for_current_runtime(period).unwrap();
        assert!(Arc::ptr_eq(&first, &second));
        let other = Ticker::for_current_runtime(Duration::from_millis(11)).unwrap();
        assert!(!Arc::ptr_eq(&first, &other));
        tokio::time::timeout(WAIT, first.tick()).await.unwrap();
        tokio::time::timeout(WAIT, second.tick()).await.unwrap();
    }

    #[test]
    fn outside_a_runtime_there_is_none() {
        assert!(Ticker::for_current_runtime(Duration::from_secs(1)).is_none());
    }
}
