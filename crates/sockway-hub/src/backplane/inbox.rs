//! What a server does with the messages other servers publish: deliver a send to its share of
//! the target, change a group of one of its connections and acknowledge it, pass a client-result
//! invocation to one of its connections, hand answers to whoever waits for them.

use std::collections::HashSet;
use std::sync::Arc;

use super::channels;
use super::envelope::{Body, Envelope, Frames, WireTarget, WireValue};
use super::manager::{lock, missing, Hosted, ScaleOutLifetimeManager};
use crate::lifetime::{HubLifetimeManager, Target};

impl ScaleOutLifetimeManager {
    /// Handles one message from another server.
    pub(super) async fn receive(self: &Arc<Self>, payload: &[u8]) {
        let envelope = match Envelope::decode(payload) {
            Ok(envelope) => envelope,
            Err(error) => {
                tracing::warn!(%error, "backplane: skipped a message that is not a hub envelope");
                return;
            }
        };
        if envelope.origin == self.id {
            return;
        }
        let origin = envelope.origin;
        match envelope.body {
            Body::Send {
                target,
                index,
                frames,
            } => {
                let target = self.local_target(target, index as usize);
                let message = Arc::new(frames.into_message());
                if let Err(error) = self.local.send(target, message).await {
                    tracing::warn!(%error, "backplane: a message from another server failed");
                }
            }
            Body::Group {
                connection,
                group,
                add,
                ack,
            } => {
                let manager = self.clone();
                tokio::spawn(async move {
                    let result = if add {
                        manager.join_local(&connection, &group).await
                    } else if manager.sink(&connection).is_some() {
                        manager.leave_local(&connection, &group).await
                    } else {
                        Err(missing(&connection))
                    };
                    let channel = channels::server(manager.prefix(), &origin);
                    let error = result.err().map(|error| error.message().to_owned());
                    drop(manager.publish(channel, Body::GroupAck { ack, error }));
                });
            }
            Body::GroupAck { ack, error } => {
                self.acks
                    .resolve(&ack.to_string(), error.map_or(Ok(()), Err));
            }
            Body::Invoke {
                connection,
                invocation_id,
                frames,
            } => self.host_invocation(origin, connection, invocation_id, frames),
            Body::InvokeResult {
                invocation_id,
                result,
            } => {
                let result = result.and_then(WireValue::into_value);
                self.invocations.resolve(&invocation_id, result);
            }
            Body::PresenceQuery { query, of } => self.answer_presence(&origin, query, &of),
            Body::PresenceReply { query, connections } => {
                self.presence_reply(query, connections);
            }
            Body::Relay { id, request } => self.serve_relayed(origin, id, request),
            Body::RelayAnswer { id, response } => {
                self.relay.answers.resolve(&id.to_string(), response);
            }
            Body::RelayProbe => {}
        }
    }

    /// The local share of a target that came through the backplane: for several groups, the
    /// members of the group the copy came through that are in no group before it.
    fn local_target(&self, target: WireTarget, index: usize) -> Target {
        match target {
            WireTarget::Groups(groups) => {
                let held = lock(&self.held);
                let earlier: HashSet<&String> = groups
                    .iter()
                    .take(index)
                    .filter_map(|group| held.groups.get(group))
                    .flatten()
                    .collect();
                let ids = groups
                    .get(index)
                    .and_then(|group| held.groups.get(group))
                    .into_iter()
                    .flatten()
                    .filter(|id| !earlier.contains(id))
                    .cloned()
                    .collect();
                Target::Connections(ids)
            }
            WireTarget::Users(users) => match users.into_iter().nth(index) {
                Some(user) => Target::User(user),
                None => Target::Connections(Vec::new()),
            },
            other => other.into(),
        }
    }

    fn host_invocation(
        &self,
        origin: String,
        connection: String,
        invocation_id: String,
        frames: Frames,
    ) {
        let Some(sink) = self.sink(&connection) else {
            self.reply(
                &origin,
                invocation_id,
                Err(missing(&connection).to_string()),
            );
            return;
        };
        lock(&self.hosted).insert(
            invocation_id.clone(),
            Hosted {
                connection: connection.clone(),
                origin: origin.clone(),
                protocol: sink.protocol(),
            },
        );
        if sink.send_shared(&frames.into_message()).is_err() {
            lock(&self.hosted).remove(&invocation_id);
            let error = format!("Connection '{connection}' disconnected.");
            self.reply(&origin, invocation_id, Err(error));
        }
    }
}
