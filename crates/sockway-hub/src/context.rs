//! What a hub method knows of its call ([`HubContext`]), and the [`HubHandle`] that reaches
//! clients from outside hub methods.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::clients::{CallerClients, Clients, Groups, InvokeRule};
use crate::lifetime::HubLifetimeManager;
use crate::link::ConnectionInfo;
use crate::sink::ConnectionSink;
use tokio_util::sync::CancellationToken;

/// Values a hub keeps for one connection across its invocations (ASP.NET Core's
/// `HubCallerContext.Items`), one per type.
#[derive(Debug, Clone, Default)]
pub struct Items(Arc<Mutex<http::Extensions>>);

impl Items {
    fn lock(&self) -> std::sync::MutexGuard<'_, http::Extensions> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Stores `value`, returning the one of its type it replaces.
    pub fn insert<T: Clone + Send + Sync + 'static>(&self, value: T) -> Option<T> {
        self.lock().insert(value)
    }

    /// A copy of the stored value of type `T`.
    pub fn get<T: Clone + Send + Sync + 'static>(&self) -> Option<T> {
        self.lock().get::<T>().cloned()
    }

    /// Removes the stored value of type `T`.
    pub fn remove<T: Clone + Send + Sync + 'static>(&self) -> Option<T> {
        self.lock().remove::<T>()
    }

    /// Whether no other handle on these items exists and none is stored: then a fresh
    /// `Items` made later is the same as this one (the connection drops them while idle).
    pub(crate) fn is_unused(&self) -> bool {
        Arc::strong_count(&self.0) == 1 && self.lock().is_empty()
    }
}

/// The context of one hub method call or hook: who called, and how to reach clients.
#[derive(Debug, Clone)]
pub struct HubContext {
    pub(crate) info: Arc<ConnectionInfo>,
    pub(crate) items: Items,
    pub(crate) clients: CallerClients,
    pub(crate) groups: Groups,
    pub(crate) sink: Arc<ConnectionSink>,
    /// The call's own cancellation (`CancelInvocation`); `None` for a hook. The connection's
    /// end is the sink closing.
    pub(crate) cancellation: Option<CancellationToken>,
}

impl HubContext {
    pub(crate) fn new(
        sink: Arc<ConnectionSink>,
        info: Arc<ConnectionInfo>,
        items: Items,
        lifetime: Arc<dyn HubLifetimeManager>,
        rule: InvokeRule,
        invoke_timeout: Duration,
        cancellation: Option<CancellationToken>,
    ) -> Self {
        HubContext {
            clients: CallerClients {
                clients: Clients {
                    lifetime: lifetime.clone(),
                    rule,
                    invoke_timeout,
                },
                caller: info.connection_id.clone(),
            },
            groups: Groups { lifetime },
            info,
            items,
            sink,
            cancellation,
        }
    }

    /// Resolves when the call is cancelled: the client sent `CancelInvocation` for it
    /// (`HubProtocol.md`, "Cancellation"; the reference's `CancellationToken` parameter), or
    /// the connection ended. A method may stop early; its `Completion` is sent either way.
    pub async fn cancelled(&self) {
        match &self.cancellation {
            Some(token) => tokio::select! {
                () = token.cancelled() => {}
                () = self.sink.closed() => {}
            },
            None => self.sink.closed().await,
        }
    }

    /// Whether the call is cancelled (see [`cancelled`](Self::cancelled)).
    pub fn is_cancelled(&self) -> bool {
        self.sink.is_closed()
            || self
                .cancellation
                .as_ref()
                .is_some_and(CancellationToken::is_cancelled)
    }

    /// Ends the caller's connection (ASP.NET Core's `HubCallerContext.Abort`): the client gets
    /// what was already queued, then the transport closes, without a `Close` message.
    pub fn abort(&self) {
        self.sink.abort();
    }

    /// The caller's connection id.
    pub fn connection_id(&self) -> &str {
        &self.info.connection_id
    }

    /// The caller's user, when the authentication hook resolved one.
    pub fn user(&self) -> Option<&str> {
        self.info.user.as_deref()
    }

    /// What the transport knew of the connection (headers, query, peer address).
    pub fn info(&self) -> &ConnectionInfo {
        &self.info
    }

    /// The connection's items.
    pub fn items(&self) -> &Items {
        &self.items
    }

    /// The clients: all, groups, users, the caller, the others.
    pub fn clients(&self) -> &CallerClients {
        &self.clients
    }

    /// Group membership.
    pub fn groups(&self) -> &Groups {
        &self.groups
    }
}

/// Reaches a hub's clients from anywhere (a background task, an HTTP handler): the same
/// targets and group management as a hub method, through the same routing layer (ASP.NET
/// Core's `IHubContext<THub>`). Cheap to clone.
#[derive(Clone)]
pub struct HubHandle {
    pub(crate) lifetime: Arc<dyn HubLifetimeManager>,
    pub(crate) invoke_timeout: Duration,
}

impl std::fmt::Debug for HubHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HubHandle").finish_non_exhaustive()
    }
}

impl HubHandle {
    /// The clients.
    pub fn clients(&self) -> Clients {
        Clients {
            lifetime: self.lifetime.clone(),
            rule: InvokeRule::Free,
            invoke_timeout: self.invoke_timeout,
        }
    }

    /// Group membership.
    pub fn groups(&self) -> Groups {
        Groups {
            lifetime: self.lifetime.clone(),
        }
    }
}
