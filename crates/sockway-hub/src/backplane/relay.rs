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

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;

use super::channels;
use super::envelope::Body;
use super::manager::{lock, ScaleOutLifetimeManager};
use super::relay_stats::RelayStats;
use super::Published;
use crate::relay::{Relay, RelayHandler, Relayed, RelayedRequest, RelayedResponse};

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
