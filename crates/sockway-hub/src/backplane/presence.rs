//! Presence across the fleet: the members of a group and the connections of a user, on every
//! server (what ASP.NET Core SignalR does not offer: its `IGroupManager` can only add and
//! remove).
//!
//! Consistency model: a query is answered by scatter and gather. The asking server publishes
//! it once on the fleet channel; each server answers with its own connections at the moment
//! it handles the query, and the asking server adds its own. The answer is therefore a union
//! of per-server snapshots taken at slightly different moments, not one atomic snapshot: a
//! connection that joins, leaves or moves while the query is in flight may be in it or not,
//! and never twice (a connection lives on one server). Servers that do not answer within
//! `presence_timeout`, and every other server while the backplane is unreachable, are left
//! out, and [`Presence::is_complete`] says so.

use std::collections::BTreeSet;
use std::sync::Arc;

use tokio::sync::mpsc;

use super::channels;
use super::envelope::{Body, PresenceOf};
use super::manager::{lock, ScaleOutLifetimeManager};
use crate::HubError;

/// The answer to a presence query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Presence {
    /// The connection ids, sorted, each once.
    pub connections: Vec<String>,
    /// How many servers answered, this one included.
    pub servers_answered: u64,
    /// How many servers were expected to: those hearing the fleet channel at the last check.
    pub servers_expected: u64,
}

impl Presence {
    /// Whether every expected server answered.
    pub fn is_complete(&self) -> bool {
        self.servers_answered >= self.servers_expected
    }

    /// How many connections there are.
    pub fn count(&self) -> usize {
        self.connections.len()
    }

    /// The connections when every expected server answered, else an error saying how many
    /// did (what the hub API's `Groups::members` reports).
    pub fn complete(self) -> Result<Vec<String>, HubError> {
        if self.is_complete() {
            return Ok(self.connections);
        }
        Err(HubError::new(format!(
            "Presence is incomplete: {} of {} servers answered.",
            self.servers_answered, self.servers_expected
        )))
    }
}

/// Forgets a query when its asker stops waiting.
struct Forget<'a> {
    manager: &'a ScaleOutLifetimeManager,
    query: u64,
}

impl Drop for Forget<'_> {
    fn drop(&mut self) {
        lock(&self.manager.queries).remove(&self.query);
    }
}

impl ScaleOutLifetimeManager {
    /// The members of `group` on every server.
    pub async fn group_presence(&self, group: &str) -> Presence {
        self.presence(PresenceOf::Group(group.to_owned())).await
    }

    /// The connections of `user` on every server.
    pub async fn user_presence(&self, user: &str) -> Presence {
        self.presence(PresenceOf::User(user.to_owned())).await
    }

    async fn presence(&self, of: PresenceOf) -> Presence {
        let mut connections: BTreeSet<String> = self.local_presence(&of).into_iter().collect();
        let stats = self.backplane.stats();
        let expected = stats.servers.max(1);
        let mut answered = 1;
        if stats.connected && expected > 1 {
            let query = self.next_id();
            let (sender, mut answers) = mpsc::channel(64);
            lock(&self.queries).insert(query, sender);
            let _forget = Forget {
                manager: self,
                query,
            };
            let channel = channels::fleet(self.backplane.channel_prefix());
            drop(self.publish(channel, Body::PresenceQuery { query, of }));
            let deadline = tokio::time::Instant::now() + self.options.presence_timeout;
            while answered < expected {
                match tokio::time::timeout_at(deadline, answers.recv()).await {
                    Ok(Some(answer)) => {
                        answered += 1;
                        connections.extend(answer);
                    }
                    Ok(None) | Err(_) => break,
                }
            }
        }
        Presence {
            connections: connections.into_iter().collect(),
            servers_answered: answered,
            servers_expected: expected,
        }
    }

    /// This server's share of a presence query.
    fn local_presence(&self, of: &PresenceOf) -> Vec<String> {
        let held = lock(&self.held);
        match of {
            PresenceOf::Group(group) => held
                .groups
                .get(group)
                .map(|members| members.iter().cloned().collect())
                .unwrap_or_default(),
            PresenceOf::User(user) => held
                .connections
                .iter()
                .filter(|(_, sink)| sink.user() == Some(user.as_str()))
                .map(|(id, _)| id.clone())
                .collect(),
        }
    }

    /// Answers another server's presence query with this server's share.
    pub(super) fn answer_presence(self: &Arc<Self>, origin: &str, query: u64, of: &PresenceOf) {
        let connections = self.local_presence(of);
        let channel = channels::server(self.backplane.channel_prefix(), origin);
        drop(self.publish(channel, Body::PresenceReply { query, connections }));
    }

    /// Hands one server's answer to the query waiting for it (ignored when nobody waits, or
    /// when more answers came than servers were expected).
    pub(super) fn presence_reply(&self, query: u64, connections: Vec<String>) {
        if let Some(sender) = lock(&self.queries).get(&query) {
            let _ = sender.try_send(connections);
        }
    }
}
