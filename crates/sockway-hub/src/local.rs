//! The routing layer for one server: connections, groups and users held in memory (ASP.NET
//! Core's `DefaultHubLifetimeManager`).

use std::borrow::Borrow;
use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::ops::ControlFlow;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use futures_util::future::BoxFuture;
use tokio::sync::oneshot;

use crate::lifetime::{HubLifetimeManager, Target};
use crate::protocol::{Completion, HubMessage, Invocation, Outcome, Payload, Protocol, Value};
use crate::serialized::SerializedMessage;
use crate::sink::{ConnectionSink, SendError};
use crate::HubError;

/// Routes messages among the connections of this process.
#[derive(Debug, Default)]
pub struct LocalLifetimeManager {
    state: RwLock<State>,
    pending: Mutex<HashMap<String, Pending>>,
    last_invocation_id: AtomicU64,
}

#[derive(Debug, Default)]
struct State {
    /// Each connection's sink, with the groups it is in.
    connections: HashMap<Connected, Groups>,
    /// Each group's members.
    groups: HashMap<String, Members>,
    /// Each user's connections.
    users: HashMap<String, Members>,
}

impl State {
    /// Calls `write` with the sink of every connection `target` names, each once, until it
    /// breaks. Members of one group or one user are distinct already; several groups, users
    /// or ids are deduplicated by sink.
    fn for_each_target(
        &self,
        target: &Target,
        write: &mut dyn FnMut(&ConnectionSink) -> ControlFlow<()>,
    ) -> ControlFlow<()> {
        let by_ids =
            |ids: &mut dyn Iterator<Item = &String>,
             write: &mut dyn FnMut(&ConnectionSink) -> ControlFlow<()>| {
                let sinks = ids.filter_map(|id| self.connections.get_key_value(id.as_str()));
                each_once(&mut sinks.map(|(connected, _)| connected), write)
            };
        match target {
            Target::All => self.connections.keys().try_for_each(|c| write(&c.0)),
            Target::AllExcept(excluded) => self
                .connections
                .keys()
                .filter(|c| !excluded.iter().any(|id| id.as_str() == c.0.connection_id()))
                .try_for_each(|c| write(&c.0)),
            Target::Connection(id) => match self.connections.get_key_value(id.as_str()) {
                Some((connected, _)) => write(&connected.0),
                None => ControlFlow::Continue(()),
            },
            Target::Connections(ids) => by_ids(&mut ids.iter(), write),
            Target::Group(group) => members(self.groups.get(group)).try_for_each(|c| write(&c.0)),
            Target::Groups(groups) => each_once(
                &mut groups
                    .iter()
                    .flat_map(|group| members(self.groups.get(group))),
                write,
            ),
            Target::GroupExcept(group, excluded) => members(self.groups.get(group))
                .filter(|c| !excluded.iter().any(|id| id.as_str() == c.0.connection_id()))
                .try_for_each(|c| write(&c.0)),
            Target::User(user) => members(self.users.get(user)).try_for_each(|c| write(&c.0)),
            Target::Users(users) => each_once(
                &mut users.iter().flat_map(|user| members(self.users.get(user))),
                write,
            ),
        }
    }
}

/// The members of a set that may be missing.
fn members(set: Option<&Members>) -> impl Iterator<Item = &Connected> {
    set.into_iter().flatten()
}

/// Calls `write` with each distinct sink of `sinks`, until it breaks.
fn each_once<'a>(
    sinks: &mut dyn Iterator<Item = &'a Connected>,
    write: &mut dyn FnMut(&ConnectionSink) -> ControlFlow<()>,
) -> ControlFlow<()> {
    let mut seen = HashSet::new();
    sinks
        .filter(|c| seen.insert(Arc::as_ptr(&c.0)))
        .try_for_each(|c| write(&c.0))
}

/// A connection's sink as the key of [`State::connections`], found by the connection's id:
/// the map keeps no copy of the id, and each entry is two pointers (a `String` key and a
/// `HashSet` beside the sink made every idle connection pay about 130 bytes of table;
/// docs/benchmarks/hub.md, "Idle memory").
#[derive(Debug, Clone)]
struct Connected(Arc<ConnectionSink>);

impl Borrow<str> for Connected {
    fn borrow(&self) -> &str {
        self.0.connection_id()
    }
}

impl PartialEq for Connected {
    fn eq(&self, other: &Self) -> bool {
        self.0.connection_id() == other.0.connection_id()
    }
}

impl Eq for Connected {}

impl Hash for Connected {
    fn hash<H: Hasher>(&self, state: &mut H) {
        // As `str` hashes, so that lookups by `&str` find it (`Borrow`'s rule).
        self.0.connection_id().hash(state);
    }
}

/// The groups a connection is in; no allocation until it joins one.
type Groups = Option<Box<HashSet<String>>>;

/// The connections of a group or of a user: their sinks, so that a message to a group of a
/// thousand goes to its members without looking each one up by id (one pointer per member,
/// found by id as [`Connected`] is).
type Members = HashSet<Connected>;

/// A client-result invocation waiting for the client's `Completion`.
#[derive(Debug)]
struct Pending {
    connection_id: String,
    protocol: Protocol,
    answer: oneshot::Sender<Result<Value, String>>,
}

impl LocalLifetimeManager {
    /// An empty manager.
    pub fn new() -> Self {
        Self::default()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, State> {
        self.state
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, State> {
        self.state
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn pending(&self) -> std::sync::MutexGuard<'_, HashMap<String, Pending>> {
        self.pending
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Writes `message` to every connection `target` names, each once. The writes happen
    /// under the read lock: a sink never waits (one that cannot take the message closes its
    /// connection, which leaves this manager later, from the connection's own task), so the
    /// lock is held only for the loop, and a group's members are written without a copy of
    /// the member list or a count taken and dropped on each sink.
    fn send_now(&self, target: &Target, message: &SerializedMessage) -> Result<(), HubError> {
        let state = self.read();
        let mut result = Ok(());
        let mut write = |sink: &ConnectionSink| match sink.send_shared(message) {
            Err(SendError::Encode(error)) => {
                result = Err(HubError::new(error));
                ControlFlow::Break(())
            }
            Ok(()) | Err(SendError::Closed) => ControlFlow::Continue(()),
        };
        let _ = state.for_each_target(target, &mut write);
        result
    }

    fn connect(&self, sink: Arc<ConnectionSink>) {
        let mut state = self.write();
        let connected = Connected(sink);
        if let Some(user) = connected.0.user() {
            let user = user.to_owned();
            state
                .users
                .entry(user)
                .or_default()
                .insert(connected.clone());
        }
        state.connections.insert(connected, None);
    }

    fn disconnect(&self, connection_id: &str) {
        {
            let mut state = self.write();
            if let Some((connected, groups)) = state.connections.remove_entry(connection_id) {
                for group in groups.into_iter().flat_map(|groups| *groups) {
                    remove_member(&mut state.groups, &group, connection_id);
                }
                if let Some(user) = connected.0.user() {
                    remove_member(&mut state.users, user, connection_id);
                }
            }
        }
        self.pending()
            .retain(|_, pending| pending.connection_id != connection_id);
    }

    fn join(&self, connection_id: &str, group: &str) {
        let mut state = self.write();
        let Some(member) = state
            .connections
            .get_key_value(connection_id)
            .map(|(c, _)| c.clone())
        else {
            return;
        };
        if let Some(groups) = state.connections.get_mut(connection_id) {
            groups.get_or_insert_default().insert(group.to_owned());
        }
        state
            .groups
            .entry(group.to_owned())
            .or_default()
            .insert(member);
    }

    fn leave(&self, connection_id: &str, group: &str) {
        let mut state = self.write();
        if let Some(groups) = state.connections.get_mut(connection_id) {
            if let Some(set) = groups {
                set.remove(group);
                if set.is_empty() {
                    *groups = None;
                }
            }
        }
        remove_member(&mut state.groups, group, connection_id);
    }

    async fn invoke(
        &self,
        connection_id: String,
        method: String,
        arguments: Vec<Payload>,
    ) -> Result<Value, HubError> {
        let sink = self
            .read()
            .connections
            .get_key_value(connection_id.as_str())
            .map(|(connected, _)| connected.0.clone())
            .ok_or_else(|| {
                HubError::new(format!("Connection '{connection_id}' does not exist."))
            })?;
        let invocation_id =
            (self.last_invocation_id.fetch_add(1, Ordering::Relaxed) + 1).to_string();
        let (answer, receiver) = oneshot::channel();
        self.pending().insert(
            invocation_id.clone(),
            Pending {
                connection_id: connection_id.clone(),
                protocol: sink.protocol(),
                answer,
            },
        );
        let forget = ForgetOnDrop {
            pending: &self.pending,
            invocation_id: invocation_id.clone(),
        };
        let message = SerializedMessage::new(HubMessage::Invocation(Invocation {
            invocation_id: Some(invocation_id),
            target: method,
            arguments,
            stream_ids: Vec::new(),
        }));
        sink.send_shared(&message).map_err(|error| match error {
            SendError::Encode(error) => HubError::new(error),
            SendError::Closed => {
                HubError::new(format!("Connection '{connection_id}' disconnected."))
            }
        })?;
        let answer = receiver.await;
        drop(forget);
        match answer {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(error)) => Err(HubError::new(error)),
            Err(_) => Err(HubError::new(format!(
                "Connection '{connection_id}' disconnected."
            ))),
        }
    }

    fn answer(&self, connection_id: &str, completion: Completion<Value>) -> bool {
        let mut pending = self.pending();
        match pending.get(&completion.invocation_id) {
            Some(entry) if entry.connection_id == connection_id => {}
            _ => return false,
        }
        let Some(entry) = pending.remove(&completion.invocation_id) else {
            return false;
        };
        let answer = match completion.outcome {
            Outcome::Result(value) => Ok(value),
            Outcome::Void => Ok(null(entry.protocol)),
            Outcome::Error(error) => Err(error),
        };
        let _ = entry.answer.send(answer);
        true
    }
}

/// Removes a client-result invocation that is no longer awaited (timed out, or dropped).
struct ForgetOnDrop<'a> {
    pending: &'a Mutex<HashMap<String, Pending>>,
    invocation_id: String,
}

impl Drop for ForgetOnDrop<'_> {
    fn drop(&mut self) {
        if let Ok(mut pending) = self.pending.lock() {
            pending.remove(&self.invocation_id);
        }
    }
}

fn null(protocol: Protocol) -> Value {
    match protocol {
        Protocol::Json => Value::Json(serde_json::Value::Null),
        Protocol::MessagePack => Value::MessagePack(rmpv::Value::Nil),
    }
}

fn remove_member(map: &mut HashMap<String, Members>, key: &str, member: &str) {
    if let Some(members) = map.get_mut(key) {
        members.remove(member);
        if members.is_empty() {
            map.remove(key);
        }
    }
}

impl HubLifetimeManager for LocalLifetimeManager {
    fn on_connected(&self, connection: Arc<ConnectionSink>) -> BoxFuture<'_, ()> {
        self.connect(connection);
        Box::pin(std::future::ready(()))
    }

    fn on_disconnected(&self, connection_id: String) -> BoxFuture<'_, ()> {
        self.disconnect(&connection_id);
        Box::pin(std::future::ready(()))
    }

    fn send(
        &self,
        target: Target,
        message: Arc<SerializedMessage>,
    ) -> BoxFuture<'_, Result<(), HubError>> {
        Box::pin(std::future::ready(self.send_now(&target, &message)))
    }

    fn add_to_group(
        &self,
        connection_id: String,
        group: String,
    ) -> BoxFuture<'_, Result<(), HubError>> {
        self.join(&connection_id, &group);
        Box::pin(std::future::ready(Ok(())))
    }

    fn remove_from_group(
        &self,
        connection_id: String,
        group: String,
    ) -> BoxFuture<'_, Result<(), HubError>> {
        self.leave(&connection_id, &group);
        Box::pin(std::future::ready(Ok(())))
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
        Box::pin(std::future::ready(self.answer(&connection_id, completion)))
    }

    fn group_members(&self, group: String) -> BoxFuture<'_, Result<Vec<String>, HubError>> {
        let members = sorted(self.read().groups.get(&group));
        Box::pin(std::future::ready(Ok(members)))
    }

    fn user_connections(&self, user: String) -> BoxFuture<'_, Result<Vec<String>, HubError>> {
        let connections = sorted(self.read().users.get(&user));
        Box::pin(std::future::ready(Ok(connections)))
    }
}

/// The connection ids of a set, sorted (none for a missing set).
fn sorted(set: Option<&Members>) -> Vec<String> {
    let mut ids: Vec<String> = members(set)
        .map(|c| c.0.connection_id().to_owned())
        .collect();
    ids.sort();
    ids
}
