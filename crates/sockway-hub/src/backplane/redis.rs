//! The Redis backplane: Redis publish/subscribe (`PUBLISH`, `SUBSCRIBE`), as ASP.NET Core's
//! `RedisHubLifetimeManager` uses it.
//!
//! Built on the `redis` crate (redis-rs, the most used Redis client for Rust) rather than
//! `fred`, because what matters here is that this module, not the client library, owns the
//! reconnect: `fred` reconnects and resubscribes by itself, out of sight, while a backplane
//! must know the moment Redis is lost (to buffer sends, bounded, instead of losing them), the
//! moment it is back (to restore exactly the channels this server still needs, which it
//! records itself, and only then publish what was buffered) and must say so in its log. With
//! redis-rs two plain connections do that: one publishing connection (a multiplexed
//! connection, one `PUBLISH` at a time so order is kept) and one subscribing connection (a
//! `PubSub` split into its sink, for `SUBSCRIBE`/`UNSUBSCRIBE`, and its message stream), each
//! in a task that reconnects with exponential backoff.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures_util::future::BoxFuture;
use futures_util::StreamExt;
use redis::aio::MultiplexedConnection;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::{CancellationToken, DropGuard};

use super::queue::{Item, Queue};
use super::{channels, Backplane, BackplaneStats, Published, Received};

/// Settings of the Redis backplane; every bound has a default.
#[derive(Debug, Clone)]
pub struct RedisOptions {
    /// The Redis server, as a `redis://host:port/` URL.
    pub url: String,
    /// The prefix of every channel name (ASP.NET Core's `ChannelPrefix`), so several hubs or
    /// applications can share one Redis: `sockway-hub` by default.
    pub channel_prefix: String,
    /// How many messages may wait to be published, during an outage or not: 10,000 by
    /// default. Past it new messages are dropped, counted and logged.
    pub max_buffered_messages: usize,
    /// How many bytes (channel names and payloads) may wait to be published: 16 MiB by
    /// default.
    pub max_buffered_bytes: usize,
    /// The first pause between attempts to reach Redis again (100 ms); it doubles up to
    /// `reconnect_max`.
    pub reconnect_min: Duration,
    /// The longest pause between attempts to reach Redis (2 s).
    pub reconnect_max: Duration,
    /// How long one connection attempt may take (5 s).
    pub connect_timeout: Duration,
    /// How long Redis may take to answer one command before the connection counts as lost
    /// (5 s).
    pub response_timeout: Duration,
    /// After an outage, how long buffered messages are held back while the other servers
    /// subscribe again (as many as heard the fleet channel at the last check before, made
    /// every second), so they do not miss them: 10 s. Past it they are published anyway.
    pub resume_wait: Duration,
    /// How many received messages may wait for the hub before the subscribing connection
    /// stops reading (1,024).
    pub incoming_capacity: usize,
}

impl RedisOptions {
    /// The defaults, for the Redis server at `url`.
    pub fn new(url: impl Into<String>) -> Self {
        RedisOptions {
            url: url.into(),
            channel_prefix: "sockway-hub".into(),
            max_buffered_messages: 10_000,
            max_buffered_bytes: 16 * 1024 * 1024,
            reconnect_min: Duration::from_millis(100),
            reconnect_max: Duration::from_secs(2),
            connect_timeout: Duration::from_secs(5),
            response_timeout: Duration::from_secs(5),
            resume_wait: Duration::from_secs(10),
            incoming_capacity: 1024,
        }
    }
}

/// How often the publisher asks Redis how many servers hear the fleet channel.
const FLEET_POLL: Duration = Duration::from_secs(1);

enum Command {
    Subscribe(String, oneshot::Sender<()>),
    Unsubscribe(String, oneshot::Sender<()>),
}

impl Command {
    fn ack(self) {
        let (Command::Subscribe(_, ack) | Command::Unsubscribe(_, ack)) = self;
        let _ = ack.send(());
    }
}

struct Shared {
    options: RedisOptions,
    client: redis::Client,
    fleet_channel: String,
    queue: Queue,
    /// The channels this server needs, restored after every reconnect.
    desired: Mutex<BTreeSet<String>>,
    publisher_up: AtomicBool,
    subscriber_up: AtomicBool,
    published: AtomicU64,
    received: AtomicU64,
    reconnects: AtomicU64,
    servers: AtomicU64,
    publish_micros: AtomicU64,
    stop: CancellationToken,
}

/// A [`Backplane`] on one Redis server. Dropping it stops its connections.
pub struct RedisBackplane {
    shared: Arc<Shared>,
    commands: mpsc::Sender<Command>,
    incoming: Mutex<Option<mpsc::Receiver<Received>>>,
    _stop: DropGuard,
}

impl std::fmt::Debug for RedisBackplane {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisBackplane")
            .field("url", &self.shared.options.url)
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl RedisBackplane {
    /// Starts connecting to Redis in the background (in the current tokio runtime) and returns
    /// at once: while Redis is unreachable the backplane keeps retrying, logs each attempt,
    /// and buffers what is published. Fails only on a URL that is not a Redis URL.
    pub fn start(options: RedisOptions) -> Result<Self, redis::RedisError> {
        let client = redis::Client::open(options.url.as_str())?;
        let stop = CancellationToken::new();
        let shared = Arc::new(Shared {
            fleet_channel: channels::fleet(&options.channel_prefix),
            queue: Queue::new(options.max_buffered_messages, options.max_buffered_bytes),
            client,
            options,
            desired: Mutex::new(BTreeSet::new()),
            publisher_up: AtomicBool::new(false),
            subscriber_up: AtomicBool::new(false),
            published: AtomicU64::new(0),
            received: AtomicU64::new(0),
            reconnects: AtomicU64::new(0),
            servers: AtomicU64::new(0),
            publish_micros: AtomicU64::new(0),
            stop: stop.clone(),
        });
        let (commands, command_rx) = mpsc::channel(256);
        let (incoming_tx, incoming) = mpsc::channel(shared.options.incoming_capacity.max(1));
        tokio::spawn(publish_loop(shared.clone()));
        tokio::spawn(subscribe_loop(shared.clone(), command_rx, incoming_tx));
        Ok(RedisBackplane {
            shared,
            commands,
            incoming: Mutex::new(Some(incoming)),
            _stop: stop.drop_guard(),
        })
    }

    fn desired(&self) -> std::sync::MutexGuard<'_, BTreeSet<String>> {
        self.shared
            .desired
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    async fn command(&self, make: impl FnOnce(oneshot::Sender<()>) -> Command) {
        let (ack, done) = oneshot::channel();
        if self.commands.send(make(ack)).await.is_ok() {
            let _ = done.await;
        }
    }
}

impl Backplane for RedisBackplane {
    fn channel_prefix(&self) -> &str {
        &self.shared.options.channel_prefix
    }

    fn publish(&self, channel: String, payload: Bytes) -> BoxFuture<'static, Published> {
        let (reply, answer) = oneshot::channel();
        let item = Item {
            channel,
            payload,
            reply: Some(reply),
        };
        if let Err(dropped) = self.shared.queue.push(item) {
            if dropped == 1 || dropped % 1000 == 0 {
                tracing::warn!(
                    dropped,
                    limit_messages = self.shared.options.max_buffered_messages,
                    limit_bytes = self.shared.options.max_buffered_bytes,
                    "backplane: the publish buffer is full; message dropped"
                );
            }
        }
        Box::pin(async move { answer.await.unwrap_or(Published::Buffered) })
    }

    fn subscribe(&self, channel: String) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            self.desired().insert(channel.clone());
            self.command(|ack| Command::Subscribe(channel, ack)).await;
        })
    }

    fn unsubscribe(&self, channel: String) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            self.desired().remove(&channel);
            self.command(|ack| Command::Unsubscribe(channel, ack)).await;
        })
    }

    fn take_incoming(&self) -> Option<mpsc::Receiver<Received>> {
        self.incoming
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take()
    }

    fn stats(&self) -> BackplaneStats {
        let shared = &self.shared;
        let (buffered, dropped) = shared.queue.counts();
        BackplaneStats {
            connected: shared.publisher_up.load(Ordering::Relaxed)
                && shared.subscriber_up.load(Ordering::Relaxed),
            published: shared.published.load(Ordering::Relaxed),
            received: shared.received.load(Ordering::Relaxed),
            buffered,
            dropped,
            reconnects: shared.reconnects.load(Ordering::Relaxed),
            servers: shared.servers.load(Ordering::Relaxed),
            publish_micros: shared.publish_micros.load(Ordering::Relaxed),
        }
    }
}

/// The next pause of an exponential backoff.
fn backoff(delay: Duration, options: &RedisOptions) -> Duration {
    (delay * 2).min(options.reconnect_max)
}

async fn connect_publisher(shared: &Shared) -> Option<MultiplexedConnection> {
    let config = redis::AsyncConnectionConfig::new()
        .set_connection_timeout(Some(shared.options.connect_timeout))
        .set_response_timeout(Some(shared.options.response_timeout));
    let mut delay = shared.options.reconnect_min;
    let mut attempt = 0u64;
    loop {
        let connecting = shared
            .client
            .get_multiplexed_async_connection_with_config(&config);
        let result = tokio::select! {
            () = shared.stop.cancelled() => return None,
            result = connecting => result,
        };
        match result {
            Ok(connection) => return Some(connection),
            Err(error) => {
                attempt += 1;
                tracing::warn!(
                    url = %shared.options.url, attempt, retry_in = ?delay, %error,
                    "backplane: cannot reach Redis to publish; retrying"
                );
            }
        }
        tokio::select! {
            () = shared.stop.cancelled() => return None,
            () = tokio::time::sleep(delay) => {}
        }
        delay = backoff(delay, &shared.options);
    }
}

/// Publishes the queue in order, for as long as the backplane lives.
async fn publish_loop(shared: Arc<Shared>) {
    let mut fleet = 0u64;
    let mut lost = false;
    loop {
        let Some(mut connection) = connect_publisher(&shared).await else {
            return;
        };
        shared.publisher_up.store(true, Ordering::Relaxed);
        shared.queue.set_online(true);
        if lost {
            shared.reconnects.fetch_add(1, Ordering::Relaxed);
            let (buffered, _) = shared.queue.counts();
            tracing::info!(
                url = %shared.options.url, buffered,
                "backplane: Redis is reachable again; publishing what was buffered"
            );
            if !shared.queue.is_empty() {
                wait_for_fleet(&shared, &mut connection, fleet).await;
            }
        }
        let error = match drain(&shared, &mut connection, &mut fleet).await {
            Some(error) => error,
            None => return,
        };
        lost = true;
        shared.publisher_up.store(false, Ordering::Relaxed);
        shared.queue.set_online(false);
        tracing::warn!(
            url = %shared.options.url, %error,
            "backplane: lost Redis; buffering cross-server messages until it is back"
        );
    }
}

/// Publishes until the connection fails (its error) or the backplane stops (`None`); asks
/// Redis how many servers hear the fleet channel every [`FLEET_POLL`], busy or idle.
async fn drain(
    shared: &Shared,
    connection: &mut MultiplexedConnection,
    fleet: &mut u64,
) -> Option<redis::RedisError> {
    let mut next_poll = tokio::time::Instant::now();
    loop {
        if tokio::time::Instant::now() >= next_poll {
            match fleet_size(shared, connection).await {
                Ok(size) => {
                    *fleet = size;
                    shared.servers.store(size, Ordering::Relaxed);
                }
                Err(error) => return Some(error),
            }
            next_poll = tokio::time::Instant::now() + FLEET_POLL;
        }
        let Some(mut item) = shared.queue.pop() else {
            tokio::select! {
                () = shared.stop.cancelled() => return None,
                () = shared.queue.ready.notified() => {}
                () = tokio::time::sleep_until(next_poll) => {}
            }
            continue;
        };
        let started = std::time::Instant::now();
        let result = redis::cmd("PUBLISH")
            .arg(&item.channel)
            .arg(&item.payload[..])
            .query_async::<u64>(connection)
            .await;
        match result {
            Ok(receivers) => {
                shared.published.fetch_add(1, Ordering::Relaxed);
                let micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
                shared.publish_micros.fetch_add(micros, Ordering::Relaxed);
                item.answer(Published::Delivered(receivers));
            }
            Err(error) => {
                shared.queue.unpop(item);
                return Some(error);
            }
        }
    }
}

/// How many servers hear the fleet channel now (`PUBSUB NUMSUB`).
async fn fleet_size(
    shared: &Shared,
    connection: &mut MultiplexedConnection,
) -> redis::RedisResult<u64> {
    let (_, count): (String, u64) = redis::cmd("PUBSUB")
        .arg("NUMSUB")
        .arg(&shared.fleet_channel)
        .query_async(connection)
        .await?;
    Ok(count)
}

/// Holds buffered messages back until as many servers as before the outage hear the fleet
/// channel again (they resubscribe all their channels in one command, the fleet channel last),
/// or `resume_wait` has passed.
async fn wait_for_fleet(shared: &Shared, connection: &mut MultiplexedConnection, fleet: u64) {
    let deadline = tokio::time::Instant::now() + shared.options.resume_wait;
    loop {
        match fleet_size(shared, connection).await {
            Ok(size) if size >= fleet => return,
            Ok(size) if tokio::time::Instant::now() >= deadline => {
                tracing::warn!(
                    servers = size,
                    before = fleet,
                    "backplane: not every server is back after the outage; publishing anyway"
                );
                return;
            }
            Ok(_) => {}
            Err(_) => return,
        }
        tokio::select! {
            () = shared.stop.cancelled() => return,
            () = tokio::time::sleep(Duration::from_millis(50)) => {}
        }
    }
}

/// Waits `delay`, acknowledging subscription changes meanwhile (they are recorded in
/// `desired` and made at the next connection); `false` when the backplane stops.
async fn pause(shared: &Shared, commands: &mut mpsc::Receiver<Command>, delay: Duration) -> bool {
    let sleep = tokio::time::sleep(delay);
    tokio::pin!(sleep);
    loop {
        tokio::select! {
            () = shared.stop.cancelled() => return false,
            () = &mut sleep => return true,
            command = commands.recv() => match command {
                Some(command) => command.ack(),
                None => return false,
            },
        }
    }
}

/// The channels to subscribe to after connecting, the fleet channel last (see
/// [`wait_for_fleet`]).
fn resubscription(shared: &Shared) -> Vec<String> {
    let desired = shared
        .desired
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let mut channels: Vec<String> = desired
        .iter()
        .filter(|channel| **channel != shared.fleet_channel)
        .cloned()
        .collect();
    if desired.contains(&shared.fleet_channel) {
        channels.push(shared.fleet_channel.clone());
    }
    channels
}

/// Keeps the subscriptions and hands their messages to the hub, for as long as the backplane
/// lives.
async fn subscribe_loop(
    shared: Arc<Shared>,
    mut commands: mpsc::Receiver<Command>,
    incoming: mpsc::Sender<Received>,
) {
    let options = &shared.options;
    let mut delay = options.reconnect_min;
    let mut attempt = 0u64;
    loop {
        let connecting = tokio::time::timeout(options.connect_timeout, async {
            let (mut sink, stream) = shared.client.get_async_pubsub().await?.split();
            let channels = resubscription(&shared);
            if !channels.is_empty() {
                sink.subscribe(&channels).await?;
            }
            Ok::<_, redis::RedisError>((sink, stream, channels.len()))
        });
        let result = tokio::select! {
            () = shared.stop.cancelled() => return,
            result = connecting => result,
        };
        let (mut sink, mut stream, count) = match result {
            Ok(Ok(connected)) => connected,
            failed => {
                attempt += 1;
                let error = match failed {
                    Ok(Err(error)) => error.to_string(),
                    _ => "timed out".to_owned(),
                };
                tracing::warn!(
                    url = %options.url, attempt, retry_in = ?delay, %error,
                    "backplane: cannot reach Redis to subscribe; retrying"
                );
                if !pause(&shared, &mut commands, delay).await {
                    return;
                }
                delay = backoff(delay, options);
                continue;
            }
        };
        shared.subscriber_up.store(true, Ordering::Relaxed);
        tracing::info!(url = %options.url, channels = count, "backplane: subscribed to Redis");
        delay = options.reconnect_min;
        attempt = 0;
        loop {
            tokio::select! {
                () = shared.stop.cancelled() => return,
                message = stream.next() => {
                    let Some(message) = message else { break };
                    shared.received.fetch_add(1, Ordering::Relaxed);
                    let received = Received {
                        channel: message.get_channel_name().to_owned(),
                        payload: Bytes::copy_from_slice(message.get_payload_bytes()),
                    };
                    if incoming.send(received).await.is_err() {
                        return;
                    }
                }
                command = commands.recv() => {
                    let Some(command) = command else { return };
                    let limit = options.response_timeout;
                    let result = match &command {
                        Command::Subscribe(channel, _) => {
                            tokio::time::timeout(limit, sink.subscribe(channel)).await
                        }
                        Command::Unsubscribe(channel, _) => {
                            tokio::time::timeout(limit, sink.unsubscribe(channel)).await
                        }
                    };
                    command.ack();
                    if !matches!(result, Ok(Ok(()))) {
                        break;
                    }
                }
            }
        }
        shared.subscriber_up.store(false, Ordering::Relaxed);
        tracing::warn!(
            url = %options.url,
            "backplane: lost the subscribing connection to Redis; reconnecting"
        );
    }
}
