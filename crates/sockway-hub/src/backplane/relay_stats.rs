//! The relay's state on one server: the handler that answers relayed requests, the requests
//! waiting for a holder's answer, the connections held here, and the counters
//! ([`RelayStats`]). Kept apart from the relay itself ([`super::relay`]), which acts through
//! the routing layer that holds this state.

use std::collections::HashSet;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::Semaphore;

use super::remote::Waiters;
use crate::relay::{RelayHandler, RelayedResponse};

/// The relay's share of a server's routing layer.
pub(super) struct RelayState {
    /// What answers requests relayed to this server (the hub service's handler).
    pub(super) handler: Mutex<Option<RelayHandler>>,
    /// Requests of this server waiting for the holder's answer, by id.
    pub(super) answers: Waiters<RelayedResponse>,
    /// Connections whose channel this server hears because their transport runs here.
    pub(super) held: Mutex<HashSet<String>>,
    /// Bounds the relayed requests this server serves at once.
    pub(super) slots: Arc<Semaphore>,
    pub(super) counters: RelayCounters,
}

impl std::fmt::Debug for RelayState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RelayState")
            .field("stats", &self.counters.snapshot())
            .finish_non_exhaustive()
    }
}

impl RelayState {
    pub(super) fn new(max_requests: usize) -> Self {
        RelayState {
            handler: Mutex::new(None),
            answers: Waiters::default(),
            held: Mutex::default(),
            slots: Arc::new(Semaphore::new(max_requests)),
            counters: RelayCounters::default(),
        }
    }
}

#[derive(Debug, Default)]
pub(super) struct RelayCounters {
    pub(super) forwarded: AtomicU64,
    pub(super) served: AtomicU64,
    pub(super) failed: AtomicU64,
    pub(super) round_trip_micros: AtomicU64,
    pub(super) answered: AtomicU64,
}

impl RelayCounters {
    pub(super) fn snapshot(&self) -> RelayStats {
        RelayStats {
            forwarded: self.forwarded.load(Ordering::Relaxed),
            answered: self.answered.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
            served: self.served.load(Ordering::Relaxed),
            round_trip_micros: self.round_trip_micros.load(Ordering::Relaxed),
        }
    }
}

/// Counters of the HTTP requests one server relayed, for metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RelayStats {
    /// Requests this server handed to the server holding their connection.
    pub forwarded: u64,
    /// Of those, the ones the holder answered.
    pub answered: u64,
    /// Of those, the ones that failed (503: backplane unreachable, no answer in time).
    pub failed: u64,
    /// Requests other servers relayed to this one.
    pub served: u64,
    /// The round trips of the answered ones, added up, in microseconds (long polls included,
    /// which wait for data on purpose).
    pub round_trip_micros: u64,
}

impl RelayStats {
    /// Renders the counters as Prometheus metrics named `sockway_hub_relay_*`, in the style
    /// of [`super::BackplaneStats::render_prometheus`].
    pub fn render_prometheus(&self) -> String {
        let families = [
            (
                "sockway_hub_relay_forwarded_total",
                "Requests handed to the server holding their connection.",
                self.forwarded,
            ),
            (
                "sockway_hub_relay_answered_total",
                "Handed requests the holding server answered.",
                self.answered,
            ),
            (
                "sockway_hub_relay_failed_total",
                "Handed requests that failed (backplane unreachable, no answer in time).",
                self.failed,
            ),
            (
                "sockway_hub_relay_served_total",
                "Requests other servers handed to this one.",
                self.served,
            ),
        ];
        let mut out = String::new();
        for (name, help, value) in families {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}"
            );
        }
        let name = "sockway_hub_relay_round_trip_seconds";
        let _ = writeln!(
            out,
            "# HELP {name} Round trips of the answered handed requests.\n\
             # TYPE {name} summary\n{name}_sum {:.6}\n{name}_count {}",
            self.round_trip_micros as f64 / 1e6,
            self.answered
        );
        out
    }
}
