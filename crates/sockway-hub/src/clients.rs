//! Sending to clients and managing groups, from hub methods and from anywhere else: every call
//! goes through the hub's [`HubLifetimeManager`].

use std::ops::Deref;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::de::DeserializeOwned;
use tokio::sync::OwnedSemaphorePermit;

use crate::args::IntoArguments;
use crate::lifetime::{HubLifetimeManager, Target};
use crate::protocol::{HubMessage, Invocation};
use crate::serialized::SerializedMessage;
use crate::HubError;

/// Whether a client-result invocation may be made from where the proxy came from.
#[derive(Debug, Clone)]
pub(crate) enum InvokeRule {
    /// From a [`HubHandle`](crate::HubHandle): always.
    Free,
    /// From `on_connected`: never, as in the reference ("Client results inside
    /// OnConnectedAsync Hub methods are not allowed.").
    Forbidden,
    /// From a hub method: the method's slot among the connection's parallel invocations is
    /// given up first, as ASP.NET Core 8 does, so the connection can read the client's answer
    /// even with one parallel invocation.
    ReleaseSlot(Arc<Mutex<Option<OwnedSemaphorePermit>>>),
}

impl InvokeRule {
    fn check(&self) -> Result<(), HubError> {
        match self {
            InvokeRule::Free => Ok(()),
            InvokeRule::Forbidden => Err(HubError::new(
                "Client results inside OnConnectedAsync Hub methods are not allowed.",
            )),
            InvokeRule::ReleaseSlot(slot) => {
                if let Ok(mut slot) = slot.lock() {
                    slot.take();
                }
                Ok(())
            }
        }
    }
}

/// The targets a hub can send to (ASP.NET Core's `IHubClients`).
#[derive(Clone)]
pub struct Clients {
    pub(crate) lifetime: Arc<dyn HubLifetimeManager>,
    pub(crate) rule: InvokeRule,
    pub(crate) invoke_timeout: Duration,
}

impl std::fmt::Debug for Clients {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Clients").finish_non_exhaustive()
    }
}

impl Clients {
    fn proxy(&self, target: Target) -> ClientProxy {
        ClientProxy {
            lifetime: self.lifetime.clone(),
            target,
        }
    }

    /// Every connection.
    pub fn all(&self) -> ClientProxy {
        self.proxy(Target::All)
    }

    /// Every connection but `excluded`.
    pub fn all_except<I: IntoIterator<Item = S>, S: Into<String>>(
        &self,
        excluded: I,
    ) -> ClientProxy {
        self.proxy(Target::AllExcept(strings(excluded)))
    }

    /// One connection; its proxy can also await a client result.
    pub fn client(&self, connection_id: impl Into<String>) -> SingleClientProxy {
        let connection_id = connection_id.into();
        SingleClientProxy {
            proxy: self.proxy(Target::Connection(connection_id.clone())),
            connection_id,
            rule: self.rule.clone(),
            timeout: self.invoke_timeout,
        }
    }

    /// Several connections.
    pub fn clients<I: IntoIterator<Item = S>, S: Into<String>>(&self, ids: I) -> ClientProxy {
        self.proxy(Target::Connections(strings(ids)))
    }

    /// The members of a group.
    pub fn group(&self, group: impl Into<String>) -> ClientProxy {
        self.proxy(Target::Group(group.into()))
    }

    /// The members of any of `groups`, each connection once.
    pub fn groups<I: IntoIterator<Item = S>, S: Into<String>>(&self, groups: I) -> ClientProxy {
        self.proxy(Target::Groups(strings(groups)))
    }

    /// The members of a group but `excluded`.
    pub fn group_except<I: IntoIterator<Item = S>, S: Into<String>>(
        &self,
        group: impl Into<String>,
        excluded: I,
    ) -> ClientProxy {
        self.proxy(Target::GroupExcept(group.into(), strings(excluded)))
    }

    /// Every connection of a user.
    pub fn user(&self, user: impl Into<String>) -> ClientProxy {
        self.proxy(Target::User(user.into()))
    }

    /// Every connection of any of `users`.
    pub fn users<I: IntoIterator<Item = S>, S: Into<String>>(&self, users: I) -> ClientProxy {
        self.proxy(Target::Users(strings(users)))
    }
}

/// The targets seen from a hub method: those of [`Clients`] plus the caller and the others
/// (ASP.NET Core's `IHubCallerClients`).
#[derive(Debug, Clone)]
pub struct CallerClients {
    pub(crate) clients: Clients,
    pub(crate) caller: String,
}

impl CallerClients {
    /// The connection that invoked the method.
    pub fn caller(&self) -> SingleClientProxy {
        self.clients.client(self.caller.clone())
    }

    /// Every connection but the caller.
    pub fn others(&self) -> ClientProxy {
        self.clients.all_except([self.caller.clone()])
    }

    /// The members of a group but the caller.
    pub fn others_in_group(&self, group: impl Into<String>) -> ClientProxy {
        self.clients.group_except(group, [self.caller.clone()])
    }
}

impl Deref for CallerClients {
    type Target = Clients;

    fn deref(&self) -> &Clients {
        &self.clients
    }
}

/// Sends to the connections of one target.
#[derive(Clone)]
pub struct ClientProxy {
    lifetime: Arc<dyn HubLifetimeManager>,
    target: Target,
}

impl std::fmt::Debug for ClientProxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientProxy")
            .field("target", &self.target)
            .finish_non_exhaustive()
    }
}

impl ClientProxy {
    /// Invokes `method` on every connection of the target, without waiting for answers (an
    /// `Invocation` without an id). The message is encoded once per protocol in use.
    pub async fn send(&self, method: &str, arguments: impl IntoArguments) -> Result<(), HubError> {
        let message = SerializedMessage::new(HubMessage::Invocation(Invocation {
            invocation_id: None,
            target: method.to_owned(),
            arguments: arguments.into_arguments(),
            stream_ids: Vec::new(),
        }));
        self.lifetime
            .send(self.target.clone(), Arc::new(message))
            .await
    }
}

/// Sends to one connection, and awaits its results.
#[derive(Debug, Clone)]
pub struct SingleClientProxy {
    proxy: ClientProxy,
    connection_id: String,
    rule: InvokeRule,
    timeout: Duration,
}

impl SingleClientProxy {
    /// Invokes `method` on the client without waiting for an answer.
    pub async fn send(&self, method: &str, arguments: impl IntoArguments) -> Result<(), HubError> {
        self.proxy.send(method, arguments).await
    }

    /// Invokes `method` on the client and waits for its result (a client result, ASP.NET
    /// Core 7+): fails when the client answers with an error, disconnects, or does not answer
    /// within the hub's `client_result_timeout`.
    pub async fn invoke<T: DeserializeOwned>(
        &self,
        method: &str,
        arguments: impl IntoArguments,
    ) -> Result<T, HubError> {
        self.rule.check()?;
        let call = self.proxy.lifetime.invoke_client(
            self.connection_id.clone(),
            method.to_owned(),
            arguments.into_arguments(),
        );
        let value = tokio::time::timeout(self.timeout, call)
            .await
            .map_err(|_| {
                HubError::new(format!(
                    "The client did not answer '{method}' within {} ms.",
                    self.timeout.as_millis()
                ))
            })??;
        value
            .bind::<T>()
            .map_err(|error| HubError::new(format!("The client's result did not bind: {error}")))
    }
}

/// Adds connections to groups and removes them (ASP.NET Core's `IGroupManager`).
#[derive(Clone)]
pub struct Groups {
    pub(crate) lifetime: Arc<dyn HubLifetimeManager>,
}

impl std::fmt::Debug for Groups {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Groups").finish_non_exhaustive()
    }
}

impl Groups {
    /// Adds a connection to a group (creating it).
    pub async fn add(
        &self,
        connection_id: impl Into<String>,
        group: impl Into<String>,
    ) -> Result<(), HubError> {
        self.lifetime
            .add_to_group(connection_id.into(), group.into())
            .await
    }

    /// Removes a connection from a group (a group with no members is gone).
    pub async fn remove(
        &self,
        connection_id: impl Into<String>,
        group: impl Into<String>,
    ) -> Result<(), HubError> {
        self.lifetime
            .remove_from_group(connection_id.into(), group.into())
            .await
    }

    /// The ids of a group's members, sorted, on every server of the hub (presence; see
    /// [`HubLifetimeManager::group_members`]).
    pub async fn members(&self, group: impl Into<String>) -> Result<Vec<String>, HubError> {
        self.lifetime.group_members(group.into()).await
    }

    /// The ids of a user's connections, sorted, on every server of the hub.
    pub async fn user_connections(&self, user: impl Into<String>) -> Result<Vec<String>, HubError> {
        self.lifetime.user_connections(user.into()).await
    }
}

fn strings<I: IntoIterator<Item = S>, S: Into<String>>(items: I) -> Vec<String> {
    items.into_iter().map(Into::into).collect()
}
