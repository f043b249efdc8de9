//! Scale-out: several hub servers share their clients through a publish/subscribe engine (a
//! backplane), as ASP.NET Core SignalR does with its Redis backplane
//! (`Microsoft.AspNetCore.SignalR.StackExchangeRedis`).
//!
//! [`Backplane`] is all the hub needs from the engine: ordered publishing to named channels,
//! subscriptions that survive reconnects, and the messages of subscribed channels. Redis is
//! the engine provided ([`RedisBackplane`]); another one implements the same trait and the hub
//! does not change. [`ScaleOutLifetimeManager`] is the routing layer on top: it delivers to
//! the connections of its own server directly and publishes once per message for the others.

mod channels;
mod claims;
mod envelope;
mod inbox;
mod manager;
mod metrics;
mod presence;
mod queue;
mod redis;
mod relay;
mod relay_stats;
mod remote;

use bytes::Bytes;
use futures_util::future::BoxFuture;
use tokio::sync::mpsc;

pub use claims::RedisClaims;
pub use manager::{ScaleOutLifetimeManager, ScaleOutOptions};
pub use presence::Presence;
pub use redis::{RedisBackplane, RedisOptions};
pub use relay_stats::RelayStats;

/// How the engine took a published message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Published {
    /// The engine accepted it and this many subscribers were sent it.
    Delivered(u64),
    /// The engine is unreachable: the message waits in the outage buffer and is published,
    /// in order, once the engine is back. How many receive it is not known.
    Buffered,
    /// The outage buffer was full (its count or byte bound): the message is dropped, counted
    /// and logged.
    Dropped,
}

/// A message that arrived on a subscribed channel.
#[derive(Debug, Clone)]
pub struct Received {
    /// The channel it was published to.
    pub channel: String,
    /// Its bytes, as published.
    pub payload: Bytes,
}

/// Counters of one server's backplane, for metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BackplaneStats {
    /// Whether the engine is reachable now (both publishing and subscribing).
    pub connected: bool,
    /// Messages the engine accepted from this server.
    pub published: u64,
    /// Messages this server received on its subscriptions.
    pub received: u64,
    /// Messages waiting to be published now.
    pub buffered: u64,
    /// Messages dropped because the outage buffer was full.
    pub dropped: u64,
    /// Times the engine was reached again after it was lost.
    pub reconnects: u64,
    /// Servers that heard the fleet channel at the last check (every second while connected).
    pub servers: u64,
    /// The round trips of every publish the engine accepted, added up, in microseconds (with
    /// `published`, the mean backplane round trip).
    pub publish_micros: u64,
}

/// A publish/subscribe engine that hub servers share.
///
/// Implementations publish in the order `publish` is called, never make a caller wait for an
/// unreachable engine (they buffer, bounded, and drop past the bound with a count and a log
/// line), and keep their subscriptions across reconnects.
pub trait Backplane: Send + Sync + 'static {
    /// The prefix of every channel name, so several hubs can share one engine.
    fn channel_prefix(&self) -> &str;

    /// Queues `payload` for `channel` now, after every earlier publish of this server; the
    /// returned future says how the engine took it and may be dropped.
    fn publish(&self, channel: String, payload: Bytes) -> BoxFuture<'static, Published>;

    /// Subscribes to `channel`; resolves once the engine confirmed it, or at once while the
    /// engine is unreachable (the subscription is made when it is back).
    fn subscribe(&self, channel: String) -> BoxFuture<'_, ()>;

    /// Ends the subscription to `channel`.
    fn unsubscribe(&self, channel: String) -> BoxFuture<'_, ()>;

    /// The messages of subscribed channels; there is one receiver, and this hands it out the
    /// first time only.
    fn take_incoming(&self) -> Option<mpsc::Receiver<Received>>;

    /// The counters of this server.
    fn stats(&self) -> BackplaneStats;
}
