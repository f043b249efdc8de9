//! A hub: its methods by name, its hooks, its options and its routing layer.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;

use futures_core::Stream;
use futures_util::future::BoxFuture;
use futures_util::FutureExt;

use crate::args::Arguments;
use crate::lifetime::HubLifetimeManager;
use crate::local::LocalLifetimeManager;
use crate::method::{self, MethodEntry, MethodResult, StreamResult};
use crate::{HubContext, HubError, HubHandle, HubOptions};

type ConnectedHook =
    Arc<dyn Fn(HubContext) -> BoxFuture<'static, Result<(), HubError>> + Send + Sync>;
type DisconnectedHook =
    Arc<dyn Fn(HubContext, Option<String>) -> BoxFuture<'static, ()> + Send + Sync>;

/// A hub: hand it to a transport (it implements
/// [`ConnectionHandler`](crate::link::ConnectionHandler)) and every client that connects can
/// call its methods. Cheap to clone.
#[derive(Clone)]
pub struct Hub {
    pub(crate) inner: Arc<HubInner>,
}

pub(crate) struct HubInner {
    /// Methods by lowercased name: the reference matches names case-insensitively.
    pub(crate) methods: HashMap<String, MethodEntry>,
    pub(crate) on_connected: Option<ConnectedHook>,
    pub(crate) on_disconnected: Option<DisconnectedHook>,
    pub(crate) options: HubOptions,
    pub(crate) lifetime: Arc<dyn HubLifetimeManager>,
}

impl std::fmt::Debug for Hub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut names: Vec<_> = self.inner.methods.values().map(|m| &m.name).collect();
        names.sort();
        f.debug_struct("Hub")
            .field("methods", &names)
            .field("options", &self.inner.options)
            .finish_non_exhaustive()
    }
}

impl Hub {
    /// A builder for a hub.
    pub fn builder() -> HubBuilder {
        HubBuilder::default()
    }

    /// A handle that sends to this hub's clients from anywhere.
    pub fn handle(&self) -> HubHandle {
        HubHandle {
            lifetime: self.inner.lifetime.clone(),
            invoke_timeout: self.inner.options.client_result_timeout,
        }
    }

    /// The hub's options.
    pub fn options(&self) -> &HubOptions {
        &self.inner.options
    }

    /// The method a client's `target` names, matched case-insensitively.
    pub(crate) fn method(&self, target: &str) -> Option<&MethodEntry> {
        self.inner.methods.get(&target.to_lowercase())
    }
}

/// Builds a [`Hub`]:
///
/// ```
/// use sockway_hub::{Hub, HubContext, HubError};
///
/// let hub = Hub::builder()
///     .method("SendMessage", |ctx: HubContext, (user, message): (String, String)| async move {
///         ctx.clients().all().send("ReceiveMessage", (user, message)).await
///     })
///     .method("Add", |_ctx: HubContext, (a, b): (i64, i64)| async move {
///         Ok::<_, HubError>(a + b)
///     })
///     .build();
/// ```
#[derive(Default)]
pub struct HubBuilder {
    methods: HashMap<String, MethodEntry>,
    on_connected: Option<ConnectedHook>,
    on_disconnected: Option<DisconnectedHook>,
    options: HubOptions,
    lifetime: Option<Arc<dyn HubLifetimeManager>>,
}

impl HubBuilder {
    /// Registers a method that completes with a result: an async function of the context and
    /// a tuple of arguments (values bound by position from the invocation's `arguments`,
    /// [`ClientStream`](crate::ClientStream)s from its `streamIds`), returning `()` or
    /// `Result<T, HubError>`. A method registered again under a name that matches
    /// case-insensitively replaces the earlier one.
    pub fn method<A, F, Fut, R>(mut self, name: &str, function: F) -> Self
    where
        A: Arguments,
        F: Fn(HubContext, A) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = R> + Send + 'static,
        R: MethodResult,
    {
        self.methods
            .insert(name.to_lowercase(), method::unary(name, function));
        self
    }

    /// Registers a streaming method: a function of the context and its arguments returning a
    /// `Stream` of `Result<T, HubError>` items, each sent as a `StreamItem`, then a
    /// `Completion` (with the error, if an item was one). Clients call it with
    /// `StreamInvocation`; a `CancelInvocation` drops the stream.
    pub fn stream<A, F, S>(mut self, name: &str, function: F) -> Self
    where
        A: Arguments,
        F: Fn(HubContext, A) -> S + Send + Sync + 'static,
        S: Stream + Send + 'static,
        S::Item: StreamResult,
    {
        self.methods
            .insert(name.to_lowercase(), method::streaming(name, function));
        self
    }

    /// Runs `hook` when a client has connected, before any of its invocations (ASP.NET
    /// Core's `OnConnectedAsync`); an error closes the connection with a `Close` carrying it.
    pub fn on_connected<F, Fut>(mut self, hook: F) -> Self
    where
        F: Fn(HubContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), HubError>> + Send + 'static,
    {
        self.on_connected = Some(Arc::new(move |context| hook(context).boxed()));
        self
    }

    /// Runs `hook` when a client's connection has ended, with the error that ended it, if any
    /// (`OnDisconnectedAsync`).
    pub fn on_disconnected<F, Fut>(mut self, hook: F) -> Self
    where
        F: Fn(HubContext, Option<String>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.on_disconnected = Some(Arc::new(move |context, error| hook(context, error).boxed()));
        self
    }

    /// Sets the hub's options (defaults: [`HubOptions::default`]).
    pub fn options(mut self, options: HubOptions) -> Self {
        self.options = options;
        self
    }

    /// Routes the hub's messages through `lifetime` instead of the in-process
    /// [`LocalLifetimeManager`] (a backplane, for instance).
    pub fn lifetime_manager(mut self, lifetime: Arc<dyn HubLifetimeManager>) -> Self {
        self.lifetime = Some(lifetime);
        self
    }

    /// The hub.
    pub fn build(self) -> Hub {
        Hub {
            inner: Arc::new(HubInner {
                methods: self.methods,
                on_connected: self.on_connected,
                on_disconnected: self.on_disconnected,
                options: self.options,
                lifetime: self
                    .lifetime
                    .unwrap_or_else(|| Arc::new(LocalLifetimeManager::new())),
            }),
        }
    }
}
