//! [`Relay`] over the backplane: the HTTP requests of Server-Sent Events and long polling that
//! reach a server which does not hold their connection travel to the one that does, as a
//! request/response pair of backplane messages.
//!
//! - The requester publishes [`Body::Relay`] on the connection's channel, which only the
//!   holding server hears ([`Relay::hold`] subscribes it when the transport starts there,
//!   before the client can send more). Redis answers a `PUBLISH` with the number of
//!   subscribers that got it: 0 means no server holds the connection
//!   ([`Relayed::NotHeld`]).
//! - The holder answers the request on its own transports and publishes
//!   [`Body::RelayAnswer`] on the requester's server channel.
//! - The requester waits `wait` (the time the holder may take on purpose: the poll timeout for
//!   a long poll) plus [`ScaleOutOptions::relay_timeout`]; past it, or while the backplane is
//!   unreachable, the client gets 503 with the reason; so it does as soon as a probe
//!   published on the connection's channel every [`ScaleOutOptions::relay_probe_interval`]
//!   meanwhile reaches nobody (the holder died). An answer over
//!   [`ScaleOutOptions::max_relayed_bytes`] is refused by the holder with 502, and a holder
//!   already serving [`ScaleOutOptions::max_relayed_requests`] answers 503.
//!
//! [`ScaleOutOptions::relay_timeout`]: super::ScaleOutOptions::relay_timeout
//! [`ScaleOutOptions::relay_probe_interval`]: super::ScaleOutOptions::relay_probe_interval
//! [`ScaleOutOptions::max_relayed_bytes`]: super::ScaleOutOptions::max_relayed_bytes
//! [`ScaleOutOptions::max_relayed_requests`]: super::ScaleOutOptions::max_relayed_requests

use std::collections::HashSet;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::future::BoxFuture;
use tokio::sync::Semaphore;

use super::channels;
use super::envelope::Body;
use super::manager::{lock, ScaleOutLifetimeManager};
use super::remote::Waiters;
use super::Published;
use crate::relay::{Relay, RelayHandler, Relayed, RelayedRequest, RelayedResponse};

/// The relay's share of a server's routing layer.
pub(super) struct RelayState {
    /// What answers requests relayed to this server (the hub service's handler).
    handler: Mutex<Option<RelayHandler>>,
    /// Requests of this server waiting for the holder's answer, by id.
    pub(super) answers: Waiters<RelayedResponse>,
    /// Connections whose channel this server hears because their transport runs here.
    pub(super) held: Mutex<HashSet<String>>,
    /// Bounds the relayed requests this server serves at once.
    slots: Arc<Semaphore>,
    counters: RelayCounters,
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
struct RelayCounters {
    forwarded: AtomicU64,
    served: AtomicU64,
    failed: AtomicU64,
    round_trip_micros: AtomicU64,
    answered: AtomicU64,
}

impl RelayCounters {
    fn snapshot(&self) -> RelayStats {
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

/// A response made here for a relayed request that the holder could not answer.
fn refused(status: u16, reason: &str) -> RelayedResponse {
    RelayedResponse {
        status,
        content_type: Some("text/plain".into()),
        body: reason.as_bytes().to_vec(),
    }
}

impl ScaleOutLifetimeManager {
    /// The counters of relayed requests.
    pub fn relay_stats(&self) -> RelayStats {
        self.relay.counters.snapshot()
    }

    /// Every counter of this server (backplane and relay) in the Prometheus text format.
    pub fn render_prometheus(&self) -> String {
        let mut out = self.stats().render_prometheus();
        out.push_str(&self.relay_stats().render_prometheus());
        out
    }

    /// Serves a request another server relayed here, then answers on its server channel.
    pub(super) fn serve_relayed(
        self: &Arc<Self>,
        origin: String,
        id: u64,
        request: RelayedRequest,
    ) {
        let manager = self.clone();
        let handler = lock(&self.relay.handler).clone();
        let slot = self.relay.slots.clone().try_acquire_owned();
        tokio::spawn(async move {
            let response = match (handler, slot) {
                (None, _) => refused(503, "this server does not serve relayed requests"),
                (_, Err(_)) => refused(
                    503,
                    "the server holding this connection is serving too many relayed requests",
                ),
                (Some(handler), Ok(_slot)) => {
                    manager
                        .relay
                        .counters
                        .served
                        .fetch_add(1, Ordering::Relaxed);
                    let response = handler(request).await;
                    let limit = manager.options.max_relayed_bytes;
                    if response.body.len() > limit {
                        tracing::warn!(
                            bytes = response.body.len(),
                            limit,
                            "backplane: a relayed answer is over the limit"
                        );
                        refused(
                            502,
                            &format!("the answer is over the relay limit of {limit} bytes"),
                        )
                    } else {
                        response
                    }
                }
            };
            let channel = channels::server(manager.prefix(), &origin);
            drop(manager.publish(channel, Body::RelayAnswer { id, response }));
        });
    }

    async fn forward_request(
        &self,
        connection_id: String,
        request: RelayedRequest,
        wait: Duration,
    ) -> Relayed {
        let counters = &self.relay.counters;
        let unreachable = || {
            counters.forwarded.fetch_add(1, Ordering::Relaxed);
            counters.failed.fetch_add(1, Ordering::Relaxed);
            Relayed::Failed("the backplane is unreachable".into())
        };
        if self.relay_holds(&connection_id) {
            // Its channel is this server's own: a publish there would not come back.
            return Relayed::Ended;
        }
        if !self.backplane.stats().connected {
            return unreachable();
        }
        let id = self.next_id();
        let mut wait_for = self.relay.answers.register(id.to_string());
        let started = std::time::Instant::now();
        let channel = channels::connection(self.prefix(), &connection_id);
        match self
            .publish(channel.clone(), Body::Relay { id, request })
            .await
        {
            Published::Delivered(0) => return Relayed::NotHeld,
            Published::Delivered(_) => {
                counters.forwarded.fetch_add(1, Ordering::Relaxed);
            }
            Published::Buffered | Published::Dropped => {
                return unreachable();
            }
        }
        let limit = wait.saturating_add(self.options.relay_timeout);
        let answer = self
            .await_answer(&channel, &mut wait_for.answer, limit)
            .await;
        let answer = answer.map_err(|reason| {
            counters.failed.fetch_add(1, Ordering::Relaxed);
            format!("{reason} (connection '{connection_id}')")
        });
        match answer {
            Ok(response) => {
                counters.answered.fetch_add(1, Ordering::Relaxed);
                let micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
                counters
                    .round_trip_micros
                    .fetch_add(micros, Ordering::Relaxed);
                Relayed::Answered(response)
            }
            Err(reason) => Relayed::Failed(reason),
        }
    }

    /// Waits at most `limit` for the holder's answer; every `relay_probe_interval` meanwhile
    /// it publishes a [`Body::RelayProbe`] on the connection's `channel`, and gives up at once
    /// when nobody hears it any more (the holder died), instead of at the end of a long poll.
    async fn await_answer(
        &self,
        channel: &str,
        answer: &mut tokio::sync::oneshot::Receiver<RelayedResponse>,
        limit: Duration,
    ) -> Result<RelayedResponse, String> {
        let deadline = tokio::time::Instant::now() + limit;
        let interval = self.options.relay_probe_interval;
        loop {
            tokio::select! {
                response = &mut *answer => {
                    return response.map_err(|_| "the relay stopped".to_owned());
                }
                () = tokio::time::sleep_until(deadline) => {
                    return Err(format!(
                        "no answer from the server holding it within {} ms",
                        limit.as_millis()
                    ));
                }
                () = tokio::time::sleep(interval) => {
                    let probe = self.publish(channel.to_owned(), Body::RelayProbe).await;
                    if probe == Published::Delivered(0) {
                        return Err("the server holding it is gone".to_owned());
                    }
                }
            }
        }
    }

    async fn hold_connection(&self, connection_id: String) {
        let _membership = self.membership.lock().await;
        let first = lock(&self.relay.held).insert(connection_id.clone());
        if first && !lock(&self.held).connections.contains_key(&connection_id) {
            let channel = channels::connection(self.prefix(), &connection_id);
            self.backplane.subscribe(channel).await;
        }
    }

    async fn release_connection(&self, connection_id: String) {
        tokio::time::sleep(self.options.relay_linger).await;
        let _membership = self.membership.lock().await;
        let was_held = lock(&self.relay.held).remove(&connection_id);
        if was_held && !lock(&self.held).connections.contains_key(&connection_id) {
            let channel = channels::connection(self.prefix(), &connection_id);
            self.backplane.unsubscribe(channel).await;
        }
    }

    /// Whether the relay still needs the connection's channel after the hub let go of it.
    pub(super) fn relay_holds(&self, connection_id: &str) -> bool {
        lock(&self.relay.held).contains(connection_id)
    }
}

impl Relay for ScaleOutLifetimeManager {
    fn forward(
        &self,
        connection_id: String,
        request: RelayedRequest,
        wait: Duration,
    ) -> BoxFuture<'_, Relayed> {
        Box::pin(self.forward_request(connection_id, request, wait))
    }

    fn hold(&self, connection_id: String) -> BoxFuture<'_, ()> {
        Box::pin(self.hold_connection(connection_id))
    }

    fn release(&self, connection_id: String) -> BoxFuture<'_, ()> {
        Box::pin(self.release_connection(connection_id))
    }

    fn serve(&self, handler: RelayHandler) {
        *lock(&self.relay.handler) = Some(handler);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relay_counters_are_rendered_with_their_types() {
        let stats = RelayStats {
            forwarded: 4,
            answered: 3,
            failed: 1,
            served: 2,
            round_trip_micros: 2_500,
        };
        let text = stats.render_prometheus();
        assert!(text.contains("# TYPE sockway_hub_relay_forwarded_total counter\n"));
        assert!(text.contains("\nsockway_hub_relay_forwarded_total 4\n"));
        assert!(text.contains("\nsockway_hub_relay_failed_total 1\n"));
        assert!(text.contains("\nsockway_hub_relay_served_total 2\n"));
        assert!(text.contains("\nsockway_hub_relay_round_trip_seconds_sum 0.002500\n"));
        assert!(text.contains("\nsockway_hub_relay_round_trip_seconds_count 3\n"));
    }
}
