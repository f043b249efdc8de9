//! The routing layer of a server in a fleet: a [`HubLifetimeManager`] that delivers to its own
//! connections directly (so local delivery goes on while the backplane is down) and publishes
//! each message once per channel for the other servers (ASP.NET Core's
//! `RedisHubLifetimeManager`, which also delivers its own server's share through Redis).

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use futures_util::future::BoxFuture;
use rand::RngCore as _;
use tokio::sync::mpsc;

use super::envelope::{Body, Envelope, Frames, WireTarget, WireValue};
use super::relay_stats::RelayState;
use super::remote::Waiters;
use super::{channels, Backplane, BackplaneStats, Published};
use crate::lifetime::{HubLifetimeManager, Target};
use crate::local::LocalLifetimeManager;
use crate::protocol::{Completion, HubMessage, Invocation, Outcome, Payload, Protocol, Value};
use crate::serialized::SerializedMessage;
use crate::sink::ConnectionSink;
use crate::HubError;

/// Settings of the scale-out routing layer.
#[derive(Debug, Clone)]
pub struct ScaleOutOptions {
    /// How long adding or removing a connection held by another server waits for that
    /// server's acknowledgement: 30 seconds, the threshold of ASP.NET Core's Redis `AckHandler`.
    pub group_ack_timeout: Duration,
    /// How long a presence query waits for the other servers' answers: 5 seconds. A server
    /// that has not answered by then is left out, and the answer says it is incomplete.
    pub presence_timeout: Duration,
    /// How long a server waits for the answer to an HTTP request it relayed to the server
    /// holding its connection (Server-Sent Events and long polling without sticky sessions),
    /// on top of the time the holder may take on purpose (a long poll's wait): 10 seconds.
    /// Past it the client gets 503.
    pub relay_timeout: Duration,
    /// The largest answer a server sends back for a relayed request: 8 MiB (a long poll's
    /// batch is bounded well below it by `HttpOptions::max_poll_bytes`); a larger one is
    /// refused with 502.
    pub max_relayed_bytes: usize,
    /// How many relayed requests a server serves at once (each waiting poll is one): 4,096.
    /// Past it the requester's client gets 503.
    pub max_relayed_requests: usize,
    /// How long a server keeps hearing the channel of a connection whose transport ended here,
    /// so that a late request of its client gets this server's 404 instead of starting the
    /// connection afresh elsewhere: 60 seconds.
    pub relay_linger: Duration,
    /// While a relayed request waits for its answer, how often the requester checks that the
    /// holding server still hears the connection's channel (one small publish): 5 seconds.
    /// When it does not (the holder died), the client gets 503 then, not after a long poll's
    /// whole wait.
    pub relay_probe_interval: Duration,
}

impl Default for ScaleOutOptions {
    fn default() -> Self {
        ScaleOutOptions {
            group_ack_timeout: Duration::from_secs(30),
            presence_timeout: Duration::from_secs(5),
            relay_timeout: Duration::from_secs(10),
            max_relayed_bytes: 8 * 1024 * 1024,
            max_relayed_requests: 4096,
            relay_linger: Duration::from_secs(60),
            relay_probe_interval: Duration::from_secs(5),
        }
    }
}

/// What this server holds, mirrored from its [`LocalLifetimeManager`] to decide which channels
/// it must hear.
#[derive(Debug, Default)]
pub(super) struct Held {
    pub(super) connections: HashMap<String, Arc<ConnectionSink>>,
    pub(super) groups: HashMap<String, HashSet<String>>,
    pub(super) users: HashMap<String, usize>,
}

/// A client-result invocation of another server, on a connection of this one.
#[derive(Debug)]
pub(super) struct Hosted {
    pub(super) connection: String,
    pub(super) origin: String,
    pub(super) protocol: Protocol,
}

/// Routes a hub's messages across every server that shares a [`Backplane`]: each target
/// reaches each intended connection once, on whichever server holds it.
pub struct ScaleOutLifetimeManager {
    pub(super) id: String,
    pub(super) backplane: Arc<dyn Backplane>,
    pub(super) local: LocalLifetimeManager,
    pub(super) options: ScaleOutOptions,
    pub(super) held: Mutex<Held>,
    /// Serializes group and connection changes, so a channel is subscribed exactly while a
    /// local member needs it.
    pub(super) membership: tokio::sync::Mutex<()>,
    last_id: AtomicU64,
    pub(super) acks: Waiters<Result<(), String>>,
    pub(super) invocations: Waiters<Result<Value, String>>,
    pub(super) hosted: Mutex<HashMap<String, Hosted>>,
    /// Presence queries of this server waiting for answers.
    pub(super) queries: Mutex<HashMap<u64, mpsc::Sender<Vec<String>>>>,
    /// HTTP requests relayed to and from this server.
    pub(super) relay: RelayState,
}

impl std::fmt::Debug for ScaleOutLifetimeManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScaleOutLifetimeManager")
            .field("server", &self.id)
            .field("stats", &self.backplane.stats())
            .finish_non_exhaustive()
    }
}

pub(super) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

pub(super) fn missing(connection_id: &str) -> HubError {
    HubError::new(format!(
        "Connection '{connection_id}' does not exist on any server."
    ))
}

fn dropped() -> HubError {
    HubError::new("The backplane's publish buffer is full: the message was dropped.")
}

impl ScaleOutLifetimeManager {
    /// A manager for one server of the fleet that shares `backplane`: it subscribes to the
    /// fleet's and its own server's channels and starts handling what arrives. Fails when the
    /// backplane's incoming messages were already taken by another manager.
    pub async fn start(
        backplane: Arc<dyn Backplane>,
        options: ScaleOutOptions,
    ) -> Result<Arc<Self>, HubError> {
        let incoming = backplane
            .take_incoming()
            .ok_or_else(|| HubError::new("The backplane is already used by another hub."))?;
        let mut id = [0u8; 8];
        rand::rng().fill_bytes(&mut id);
        let id: String = id.iter().map(|byte| format!("{byte:02x}")).collect();
        let manager = Arc::new(ScaleOutLifetimeManager {
            id,
            backplane,
            local: LocalLifetimeManager::new(),
            held: Mutex::default(),
            membership: tokio::sync::Mutex::new(()),
            last_id: AtomicU64::new(0),
            acks: Waiters::default(),
            invocations: Waiters::default(),
            hosted: Mutex::default(),
            queries: Mutex::default(),
            relay: RelayState::new(options.max_relayed_requests),
            options,
        });
        let prefix = manager.backplane.channel_prefix();
        let server = channels::server(prefix, &manager.id);
        let fleet = channels::fleet(prefix);
        manager.backplane.subscribe(server).await;
        manager.backplane.subscribe(fleet).await;
        let weak = Arc::downgrade(&manager);
        tokio::spawn(async move {
            let mut incoming = incoming;
            while let Some(received) = incoming.recv().await {
                let Some(manager) = weak.upgrade() else {
                    return;
                };
                manager.receive(&received.payload).await;
            }
        });
        Ok(manager)
    }

    /// This server's id in the fleet.
    pub fn server_id(&self) -> &str {
        &self.id
    }

    /// The backplane's counters (published, received, buffered, dropped, reconnects).
    pub fn stats(&self) -> BackplaneStats {
        self.backplane.stats()
    }

    pub(super) fn prefix(&self) -> &str {
        self.backplane.channel_prefix()
    }

    pub(super) fn sink(&self, connection_id: &str) -> Option<Arc<ConnectionSink>> {
        lock(&self.held).connections.get(connection_id).cloned()
    }

    pub(super) fn next_id(&self) -> u64 {
        self.last_id.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Publishes `body` on `channel`; an envelope that cannot be encoded is logged and
    /// counts as dropped.
    pub(super) fn publish(&self, channel: String, body: Body) -> BoxFuture<'static, Published> {
        let envelope = Envelope {
            origin: self.id.clone(),
            body,
        };
        match envelope.encode() {
            Ok(bytes) => self.backplane.publish(channel, bytes),
            Err(error) => {
                tracing::error!(%error, "backplane: cannot encode a message");
                Box::pin(std::future::ready(Published::Dropped))
            }
        }
    }

    async fn send_all(
        &self,
        target: Target,
        message: Arc<SerializedMessage>,
    ) -> Result<(), HubError> {
        let local = self.local.send(target.clone(), message.clone()).await;
        let prefix = self.prefix().to_owned();
        let frames = || Frames::encode(&message).map_err(HubError::new);
        match &target {
            Target::Connection(id) => {
                if self.sink(id).is_some() {
                    return local;
                }
                let body = Body::Send {
                    target: target.clone().into(),
                    index: 0,
                    frames: frames()?,
                };
                return match self.publish(channels::connection(&prefix, id), body).await {
                    Published::Delivered(0) => Err(missing(id)),
                    Published::Dropped => Err(dropped()),
                    Published::Delivered(_) | Published::Buffered => Ok(()),
                };
            }
            Target::Connections(ids) => {
                let remote: Vec<String> = {
                    let held = lock(&self.held);
                    ids.iter()
                        .filter(|id| !held.connections.contains_key(*id))
                        .cloned()
                        .collect()
                };
                if !remote.is_empty() {
                    let target = WireTarget::Connections(remote);
                    let body = Body::Send {
                        target,
                        index: 0,
                        frames: frames()?,
                    };
                    drop(self.publish(channels::fleet(&prefix), body));
                }
            }
            Target::All | Target::AllExcept(_) => {
                let body = Body::Send {
                    target: target.clone().into(),
                    index: 0,
                    frames: frames()?,
                };
                drop(self.publish(channels::fleet(&prefix), body));
            }
            Target::Group(group) | Target::GroupExcept(group, _) => {
                let body = Body::Send {
                    target: target.clone().into(),
                    index: 0,
                    frames: frames()?,
                };
                drop(self.publish(channels::group(&prefix, group), body));
            }
            Target::User(user) => {
                let body = Body::Send {
                    target: target.clone().into(),
                    index: 0,
                    frames: frames()?,
                };
                drop(self.publish(channels::user(&prefix, user), body));
            }
            Target::Groups(names) | Target::Users(names) => {
                let is_groups = matches!(target, Target::Groups(_));
                let mut seen = HashSet::new();
                let names: Vec<String> = names
                    .iter()
                    .filter(|name| seen.insert(name.as_str()))
                    .cloned()
                    .collect();
                for (index, name) in names.iter().enumerate() {
                    let (channel, target) = if is_groups {
                        (
                            channels::group(&prefix, name),
                            WireTarget::Groups(names.clone()),
                        )
                    } else {
                        (
                            channels::user(&prefix, name),
                            WireTarget::Users(names.clone()),
                        )
                    };
                    let body = Body::Send {
                        target,
                        index: index as u32,
                        frames: frames()?,
                    };
                    drop(self.publish(channel, body));
                }
            }
        }
        local
    }

    /// Adds a local connection to a group, hearing the group's channel first if it is the
    /// server's first member there.
    pub(super) async fn join_local(
        &self,
        connection_id: &str,
        group: &str,
    ) -> Result<(), HubError> {
        let _membership = self.membership.lock().await;
        if self.sink(connection_id).is_none() {
            return Err(missing(connection_id));
        }
        let first = !lock(&self.held).groups.contains_key(group);
        if first {
            let channel = channels::group(self.prefix(), group);
            self.backplane.subscribe(channel).await;
        }
        lock(&self.held)
            .groups
            .entry(group.to_owned())
            .or_default()
            .insert(connection_id.to_owned());
        self.local
            .add_to_group(connection_id.to_owned(), group.to_owned())
            .await
    }

    /// Removes a local connection from a group, no longer hearing the group's channel if it
    /// was the server's last member there.
    pub(super) async fn leave_local(
        &self,
        connection_id: &str,
        group: &str,
    ) -> Result<(), HubError> {
        let _membership = self.membership.lock().await;
        self.local
            .remove_from_group(connection_id.to_owned(), group.to_owned())
            .await?;
        if self.forget_member(connection_id, group) {
            let channel = channels::group(self.prefix(), group);
            self.backplane.unsubscribe(channel).await;
        }
        Ok(())
    }

    /// Removes a member from the mirror; `true` when the group has no local member left.
    fn forget_member(&self, connection_id: &str, group: &str) -> bool {
        let mut held = lock(&self.held);
        let Some(members) = held.groups.get_mut(group) else {
            return false;
        };
        members.remove(connection_id);
        if members.is_empty() {
            held.groups.remove(group);
            return true;
        }
        false
    }

    /// Changes the group membership of a connection another server may hold.
    async fn change_group(
        &self,
        connection_id: String,
        group: String,
        add: bool,
    ) -> Result<(), HubError> {
        if self.sink(&connection_id).is_some() {
            return if add {
                self.join_local(&connection_id, &group).await
            } else {
                self.leave_local(&connection_id, &group).await
            };
        }
        let ack = self.next_id();
        let mut wait = self.acks.register(ack.to_string());
        let channel = channels::connection(self.prefix(), &connection_id);
        let body = Body::Group {
            connection: connection_id.clone(),
            group: group.clone(),
            add,
            ack,
        };
        match self.publish(channel, body).await {
            Published::Delivered(0) => return Err(missing(&connection_id)),
            Published::Dropped => return Err(dropped()),
            Published::Delivered(_) | Published::Buffered => {}
        }
        let verb = if add {
            "adding it to"
        } else {
            "removing it from"
        };
        let timeout = self.options.group_ack_timeout;
        match tokio::time::timeout(timeout, &mut wait.answer).await {
            Ok(Ok(Ok(()))) => Ok(()),
            Ok(Ok(Err(error))) => Err(HubError::new(error)),
            Ok(Err(_)) | Err(_) => Err(HubError::new(format!(
                "The server holding connection '{connection_id}' did not acknowledge {verb} \
                 group '{group}' within {} ms.",
                timeout.as_millis()
            ))),
        }
    }

    async fn connect(&self, sink: Arc<ConnectionSink>) {
        let _membership = self.membership.lock().await;
        let id = sink.connection_id().to_owned();
        let user = sink.user().map(str::to_owned);
        self.local.on_connected(sink.clone()).await;
        let first_of_user = {
            let mut held = lock(&self.held);
            held.connections.insert(id.clone(), sink);
            user.as_ref().is_some_and(|user| {
                let count = held.users.entry(user.clone()).or_default();
                *count += 1;
                *count == 1
            })
        };
        let prefix = self.prefix().to_owned();
        self.backplane
            .subscribe(channels::connection(&prefix, &id))
            .await;
        if let (true, Some(user)) = (first_of_user, user) {
            self.backplane
                .subscribe(channels::user(&prefix, &user))
                .await;
        }
    }

    async fn disconnect(&self, connection_id: String) {
        let _membership = self.membership.lock().await;
        self.local.on_disconnected(connection_id.clone()).await;
        let prefix = self.prefix().to_owned();
        let (emptied, last_of_user) = {
            let mut held = lock(&self.held);
            let sink = held.connections.remove(&connection_id);
            let mut emptied = Vec::new();
            held.groups.retain(|group, members| {
                if members.remove(&connection_id) && members.is_empty() {
                    emptied.push(group.clone());
                    return false;
                }
                true
            });
            let mut last_of_user = None;
            if let Some(user) = sink.as_ref().and_then(|sink| sink.user()) {
                if let Some(count) = held.users.get_mut(user) {
                    *count -= 1;
                    if *count == 0 {
                        held.users.remove(user);
                        last_of_user = Some(user.to_owned());
                    }
                }
            }
            (emptied, last_of_user)
        };
        for group in emptied {
            self.backplane
                .unsubscribe(channels::group(&prefix, &group))
                .await;
        }
        if let Some(user) = last_of_user {
            self.backplane
                .unsubscribe(channels::user(&prefix, &user))
                .await;
        }
        if !self.relay_holds(&connection_id) {
            self.backplane
                .unsubscribe(channels::connection(&prefix, &connection_id))
                .await;
        }
        let orphaned: Vec<(String, Hosted)> = {
            let mut hosted = lock(&self.hosted);
            let ids: Vec<String> = hosted
                .iter()
                .filter(|(_, entry)| entry.connection == connection_id)
                .map(|(id, _)| id.clone())
                .collect();
            ids.into_iter()
                .filter_map(|id| hosted.remove(&id).map(|entry| (id, entry)))
                .collect()
        };
        for (invocation_id, entry) in orphaned {
            let error = format!("Connection '{connection_id}' disconnected.");
            self.reply(&entry.origin, invocation_id, Err(error));
        }
    }

    pub(super) fn reply(
        &self,
        origin: &str,
        invocation_id: String,
        result: Result<WireValue, String>,
    ) {
        let channel = channels::server(self.prefix(), origin);
        let body = Body::InvokeResult {
            invocation_id,
            result,
        };
        drop(self.publish(channel, body));
    }

    async fn invoke(
        &self,
        connection_id: String,
        method: String,
        arguments: Vec<Payload>,
    ) -> Result<Value, HubError> {
        if self.sink(&connection_id).is_some() {
            return self
                .local
                .invoke_client(connection_id, method, arguments)
                .await;
        }
        let invocation_id = format!("{}.{}", self.id, self.next_id());
        let message = SerializedMessage::new(HubMessage::Invocation(Invocation {
            invocation_id: Some(invocation_id.clone()),
            target: method,
            arguments,
            stream_ids: Vec::new(),
        }));
        let frames = Frames::encode(&message).map_err(HubError::new)?;
        let mut wait = self.invocations.register(invocation_id.clone());
        let channel = channels::connection(self.prefix(), &connection_id);
        let body = Body::Invoke {
            connection: connection_id.clone(),
            invocation_id,
            frames,
        };
        match self.publish(channel, body).await {
            Published::Delivered(0) => return Err(missing(&connection_id)),
            Published::Dropped => return Err(dropped()),
            Published::Delivered(_) | Published::Buffered => {}
        }
        match (&mut wait.answer).await {
            Ok(result) => result.map_err(HubError::new),
            Err(_) => Err(HubError::new(format!(
                "Connection '{connection_id}' disconnected."
            ))),
        }
    }

    /// A client's `Completion` for an invocation another server made goes back to it.
    fn answer_remote(&self, connection_id: &str, completion: &Completion<Value>) -> bool {
        let entry = {
            let mut hosted = lock(&self.hosted);
            match hosted.get(&completion.invocation_id) {
                Some(entry) if entry.connection == connection_id => {}
                _ => return false,
            }
            hosted.remove(&completion.invocation_id)
        };
        let Some(entry) = entry else {
            return false;
        };
        let result = match &completion.outcome {
            Outcome::Result(value) => WireValue::from_value(value),
            Outcome::Void => WireValue::from_value(&match entry.protocol {
                Protocol::Json => Value::Json(serde_json::Value::Null),
                Protocol::MessagePack => Value::MessagePack(rmpv::Value::Nil),
            }),
            Outcome::Error(error) => Err(error.clone()),
        };
        self.reply(&entry.origin, completion.invocation_id.clone(), result);
        true
    }
}

impl HubLifetimeManager for ScaleOutLifetimeManager {
    fn on_connected(&self, connection: Arc<ConnectionSink>) -> BoxFuture<'_, ()> {
        Box::pin(self.connect(connection))
    }

    fn on_disconnected(&self, connection_id: String) -> BoxFuture<'_, ()> {
        Box::pin(self.disconnect(connection_id))
    }

    fn send(
        &self,
        target: Target,
        message: Arc<SerializedMessage>,
    ) -> BoxFuture<'_, Result<(), HubError>> {
        Box::pin(self.send_all(target, message))
    }

    fn add_to_group(
        &self,
        connection_id: String,
        group: String,
    ) -> BoxFuture<'_, Result<(), HubError>> {
        Box::pin(self.change_group(connection_id, group, true))
    }

    fn remove_from_group(
        &self,
        connection_id: String,
        group: String,
    ) -> BoxFuture<'_, Result<(), HubError>> {
        Box::pin(self.change_group(connection_id, group, false))
    }

    fn invoke_client(
        &self,
        connection_id: String,
        method: String,
        arguments: Vec<Payload>,
    ) -> BoxFuture<'_, Result<Value, HubError>> {
        Box::pin(self.invoke(connection_id, method, arguments))
    }

    fn set_client_result(
        &self,
        connection_id: String,
        completion: Completion<Value>,
    ) -> BoxFuture<'_, bool> {
        if self.answer_remote(&connection_id, &completion) {
            return Box::pin(std::future::ready(true));
        }
        self.local.set_client_result(connection_id, completion)
    }

    fn group_members(&self, group: String) -> BoxFuture<'_, Result<Vec<String>, HubError>> {
        Box::pin(async move { self.group_presence(&group).await.complete() })
    }

    fn user_connections(&self, user: String) -> BoxFuture<'_, Result<Vec<String>, HubError>> {
        Box::pin(async move { self.user_presence(&user).await.complete() })
    }
}
