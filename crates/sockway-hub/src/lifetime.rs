//! The routing layer: every send, group change and client-result invocation of a hub goes
//! through a [`HubLifetimeManager`] (ASP.NET Core's `HubLifetimeManager<THub>`), so a backplane
//! can take over routing across servers without the hub or its methods changing.

use std::sync::Arc;

use futures_util::future::BoxFuture;

use crate::protocol::{Completion, Payload, Value};
use crate::serialized::SerializedMessage;
use crate::sink::ConnectionSink;
use crate::HubError;

/// The connections a message is for (the reference's `IHubClients` targets).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// Every connection.
    All,
    /// Every connection but these.
    AllExcept(Vec<String>),
    /// One connection.
    Connection(String),
    /// Several connections.
    Connections(Vec<String>),
    /// The members of a group.
    Group(String),
    /// The members of any of these groups (each connection once).
    Groups(Vec<String>),
    /// The members of a group but these connections.
    GroupExcept(String, Vec<String>),
    /// Every connection of a user.
    User(String),
    /// Every connection of any of these users.
    Users(Vec<String>),
}

/// Routes a hub's messages. The local implementation is [`LocalLifetimeManager`]; a backplane
/// implements the same trait and forwards what it cannot deliver itself.
///
/// [`LocalLifetimeManager`]: crate::local::LocalLifetimeManager
pub trait HubLifetimeManager: Send + Sync + 'static {
    /// A connection finished its handshake: it can now be sent to.
    fn on_connected(&self, connection: Arc<ConnectionSink>) -> BoxFuture<'_, ()>;

    /// A connection ended: it leaves every group, and its pending client results fail.
    fn on_disconnected(&self, connection_id: String) -> BoxFuture<'_, ()>;

    /// Sends `message` to every connection `target` names. Connections that cannot take it
    /// are closed, never waited for.
    fn send(
        &self,
        target: Target,
        message: Arc<SerializedMessage>,
    ) -> BoxFuture<'_, Result<(), HubError>>;

    /// Adds a connection to a group (nothing when the connection is not known).
    fn add_to_group(
        &self,
        connection_id: String,
        group: String,
    ) -> BoxFuture<'_, Result<(), HubError>>;

    /// Removes a connection from a group.
    fn remove_from_group(
        &self,
        connection_id: String,
        group: String,
    ) -> BoxFuture<'_, Result<(), HubError>>;

    /// Invokes `method` on one client and resolves with its `Completion` (the reference's
    /// `InvokeConnectionAsync`). Dropping the future forgets the invocation.
    fn invoke_client(
        &self,
        connection_id: String,
        method: String,
        arguments: Vec<Payload>,
    ) -> BoxFuture<'_, Result<Value, HubError>>;

    /// A `Completion` the client sent that may answer a client-result invocation; returns
    /// whether it did (the reference's `SetConnectionResultAsync`).
    fn set_client_result(
        &self,
        connection_id: String,
        completion: Completion<Value>,
    ) -> BoxFuture<'_, bool>;

    /// The ids of a group's members, sorted (presence: ASP.NET Core's `IGroupManager` can
    /// only add and remove, and SignalR users keep asking for this). A routing layer that
    /// cannot tell refuses with an error saying so.
    fn group_members(&self, group: String) -> BoxFuture<'_, Result<Vec<String>, HubError>> {
        let _ = group;
        Box::pin(std::future::ready(Err(no_presence())))
    }

    /// The ids of a user's connections, sorted (presence, as [`group_members`]).
    ///
    /// [`group_members`]: HubLifetimeManager::group_members
    fn user_connections(&self, user: String) -> BoxFuture<'_, Result<Vec<String>, HubError>> {
        let _ = user;
        Box::pin(std::future::ready(Err(no_presence())))
    }
}

fn no_presence() -> HubError {
    HubError::new("This hub's routing layer does not offer presence.")
}
