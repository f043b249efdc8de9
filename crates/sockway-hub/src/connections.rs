//! The connection store: every logical connection this server holds, by connection token.
//!
//! A connection is created by negotiate (or by a WebSocket that skipped it) and lives until
//! its transport ends for good, the client sends `DELETE`, the hub closes it, or it sits idle
//! past a timeout. ASP.NET Core's `HttpConnectionManager` sweeps once a second and removes a
//! connection that has no request in flight and was last seen more than `DisconnectTimeout`
//! (15 seconds by default) ago: one that never started a transport, or a long-polling client
//! that stopped polling. Removing a connection drops its inbound sender, so the hub sees the
//! inbound channel close.

use std::borrow::Borrow;
use std::collections::HashSet;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use crate::channel::{Receiver, Sender};
use crate::inbound_queue::InboundQueue;
use crate::link::{self, Inbound, Outbound, OutboundReceiver, TransportKind};

/// The limits the store enforces, taken from the service's options.
#[derive(Debug, Clone, Copy)]
pub(crate) struct StoreLimits {
    /// Idle time after which a connection with no request in flight is removed.
    pub disconnect_timeout: Duration,
    /// How long a stateful-reconnect connection waits for a new WebSocket after losing one.
    pub reconnect_grace: Duration,
    /// Most connections held at once.
    pub max_connections: usize,
    /// Frames the hub may queue for one client.
    pub outbound_capacity: usize,
    /// Inbound events a transport may queue before waiting for the hub.
    pub inbound_capacity: usize,
}

/// Why a request cannot use a connection with the transport it asked for; the reference's
/// `SetTransportState` results.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TransportRefusal {
    /// The connection has ended (404).
    Gone,
    /// Another request of this persistent transport is active (409).
    AlreadyActive,
    /// The connection uses another transport (400, "Cannot change transports mid-connection").
    CannotChange,
}

/// Why the store takes no new connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StoreRefusal {
    /// It holds `max_connections` already.
    Full,
    /// The server is shutting down.
    Closing,
    /// A connection with this token exists already.
    Exists,
}

impl StoreRefusal {
    /// What the client is told.
    pub fn reason(self) -> &'static str {
        match self {
            StoreRefusal::Full => "The server holds as many connections as it allows.",
            StoreRefusal::Closing => "The server is shutting down.",
            StoreRefusal::Exists => "The connection exists already.",
        }
    }
}

#[derive(Debug)]
struct State {
    transport: Option<TransportKind>,
    /// A socket, event stream or poll is attached.
    active: bool,
    last_seen: Instant,
    /// The last WebSocket was lost without a close frame (stateful reconnect may follow).
    lost: bool,
    /// The hub has finished with the connection.
    hub_done: bool,
}

/// Why [`Connection::released`] resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Release {
    /// The connection was removed from the store.
    Removed,
    /// A newer request attached in place of this one.
    Superseded,
}

/// One logical connection.
#[derive(Debug)]
pub(crate) struct Connection {
    /// The secret token (`?id=`); the public id for negotiate version 0.
    pub token: String,
    /// The public connection id.
    pub id: String,
    /// Whether stateful reconnect was agreed at negotiate.
    pub stateful: bool,
    /// The hub's outbound handle, until the first transport starts the hub.
    link: Mutex<Option<Outbound>>,
    /// A handle on the hub's queue, to close it when the hub finishes or the connection goes.
    closer: Outbound,
    /// Where transports put what the client sends, made when one first needs it; closed
    /// once the connection is removed.
    inbound: InboundQueue,
    /// What the hub queued for the client; leased by the transport request that is sending.
    pub outbound: OutboundReceiver,
    /// The number of the latest request attached; a poll or socket that replaces another
    /// bumps it, and the one replaced ends. (An atomic and a `Notify`: a `watch` channel
    /// would cost some 350 bytes more per connection.)
    attachment: AtomicU64,
    /// Wakes the requests waiting in [`superseded`](Self::superseded) and
    /// [`ended`](Self::ended).
    attached: Notify,
    /// A POST is being read (a second one gets 409).
    pub posting: AtomicBool,
    /// Set when the connection is removed. (A flag and the `Notify` above: a
    /// `CancellationToken` would cost some 110 bytes more per connection.)
    removed: AtomicBool,
    state: Mutex<State>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Connection {
    /// A clone of the inbound sender, while the connection exists.
    pub fn inbound(&self) -> Option<Sender<Inbound>> {
        self.inbound.sender()
    }

    /// The hub's side of the link, once: `None` when a transport already started the hub.
    pub fn take_link(&self) -> Option<(Receiver<Inbound>, Outbound)> {
        let outbound = self.take_outbound()?;
        Some((self.inbound.take_receiver()?, outbound))
    }

    /// The hub's outbound handle alone, once, for a transport that feeds the hub in its own
    /// loop and so needs no inbound queue: `None` when a transport already started the hub.
    pub fn take_outbound(&self) -> Option<Outbound> {
        lock(&self.link).take()
    }

    /// The transport the connection uses, once one has started.
    pub fn transport(&self) -> Option<TransportKind> {
        lock(&self.state).transport
    }

    /// Whether the hub has finished with the connection.
    pub fn hub_done(&self) -> bool {
        lock(&self.state).hub_done
    }

    /// Attaches a request of `kind` (ASP.NET Core's `TrySetTransport`) and returns its
    /// attachment number. A long poll replaces the poll in flight, and a WebSocket of a
    /// stateful-reconnect connection replaces the socket in use (the client reconnects before
    /// the server may have noticed the old one die): the request attached before sees the
    /// number change and steps aside ([`superseded`](Self::superseded)). Otherwise a second
    /// request of the same transport gets 409, as in the reference server.
    pub fn try_attach(&self, kind: TransportKind) -> Result<u64, TransportRefusal> {
        if self.removed.load(Ordering::Acquire) {
            return Err(TransportRefusal::Gone);
        }
        let mut state = lock(&self.state);
        let replaceable = kind == TransportKind::LongPolling
            || (kind == TransportKind::WebSockets && self.stateful);
        match state.transport {
            Some(current) if current != kind => return Err(TransportRefusal::CannotChange),
            _ if state.active && !replaceable => return Err(TransportRefusal::AlreadyActive),
            _ => {}
        }
        state.transport = Some(kind);
        state.active = true;
        state.lost = false;
        state.last_seen = Instant::now();
        let number = self
            .attachment
            .fetch_add(1, Ordering::AcqRel)
            .wrapping_add(1);
        self.attached.notify_waiters();
        Ok(number)
    }

    /// Resolves once a newer request has attached in place of attachment `number`.
    pub async fn superseded(&self, number: u64) {
        loop {
            let changed = self.attached.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            if !self.is_current(number) {
                return;
            }
            changed.await;
        }
    }

    /// Resolves once the connection has been removed, or a newer request has attached in
    /// place of attachment `number`, saying which: one wait for a request that must stop in
    /// either case, where two would cost each idle socket some 100 bytes more.
    pub async fn released(&self, number: u64) -> Release {
        loop {
            let changed = self.attached.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            if self.removed.load(Ordering::Acquire) {
                return Release::Removed;
            }
            if !self.is_current(number) {
                return Release::Superseded;
            }
            changed.await;
        }
    }

    /// Resolves once the connection has been removed from the store.
    pub async fn ended(&self) {
        loop {
            let changed = self.attached.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            if self.removed.load(Ordering::Acquire) {
                return;
            }
            changed.await;
        }
    }

    /// Whether attachment `number` is still the latest.
    pub fn is_current(&self, number: u64) -> bool {
        self.attachment.load(Ordering::Acquire) == number
    }

    /// Attachment `number` ended; the connection goes idle unless a newer request attached
    /// meanwhile. `lost` when the client may come back (a WebSocket of a stateful-reconnect
    /// connection dropped without a close frame). Returns whether it was the latest.
    pub fn detach(&self, number: u64, lost: bool) -> bool {
        let mut state = lock(&self.state);
        if !self.is_current(number) {
            return false;
        }
        state.active = false;
        state.lost = lost;
        state.last_seen = Instant::now();
        true
    }

    /// Whether the sweeper should remove this connection at `now`.
    fn expired(&self, now: Instant, limits: &StoreLimits) -> bool {
        let state = lock(&self.state);
        if state.active {
            return false;
        }
        let timeout = if state.lost && self.stateful && !state.hub_done {
            limits.reconnect_grace
        } else {
            limits.disconnect_timeout
        };
        now.saturating_duration_since(state.last_seen) >= timeout
    }
}

/// A connection in the store, found by its token: the set's entries need no copy of the token
/// (a map keyed by it would hold a second copy of every token, about 100 bytes per
/// connection; docs/benchmarks/hub.md, "Idle memory").
#[derive(Debug)]
struct Held(Arc<Connection>);

impl Borrow<str> for Held {
    fn borrow(&self) -> &str {
        &self.0.token
    }
}

impl PartialEq for Held {
    fn eq(&self, other: &Self) -> bool {
        self.0.token == other.0.token
    }
}

impl Eq for Held {}

impl Hash for Held {
    fn hash<H: Hasher>(&self, state: &mut H) {
        // As `str` hashes, so that lookups by `&str` find it (`Borrow`'s rule).
        self.0.token.as_str().hash(state);
    }
}

#[derive(Debug)]
struct StoreInner {
    connections: Mutex<HashSet<Held>>,
    limits: StoreLimits,
    sweeper: AtomicBool,
    closing: AtomicBool,
}

/// Every connection this server holds, by token. Cheap to clone.
#[derive(Debug, Clone)]
pub(crate) struct ConnectionStore {
    inner: Arc<StoreInner>,
}

impl ConnectionStore {
    /// An empty store with `limits`.
    pub fn new(limits: StoreLimits) -> Self {
        Self {
            inner: Arc::new(StoreInner {
                connections: Mutex::new(HashSet::new()),
                limits,
                sweeper: AtomicBool::new(false),
                closing: AtomicBool::new(false),
            }),
        }
    }

    /// Creates a connection under `token`, with its link to the hub ready to start.
    pub fn create(
        &self,
        token: String,
        id: String,
        stateful: bool,
    ) -> Result<Arc<Connection>, StoreRefusal> {
        self.start_sweeper();
        let limits = &self.inner.limits;
        let (outbound, outbound_rx) = link::outbound(limits.outbound_capacity);
        let connection = Arc::new(Connection {
            token,
            id,
            stateful,
            closer: outbound.clone(),
            link: Mutex::new(Some(outbound)),
            inbound: InboundQueue::new(limits.inbound_capacity),
            outbound: outbound_rx,
            attachment: AtomicU64::new(0),
            attached: Notify::new(),
            posting: AtomicBool::new(false),
            removed: AtomicBool::new(false),
            state: Mutex::new(State {
                transport: None,
                active: false,
                last_seen: Instant::now(),
                lost: false,
                hub_done: false,
            }),
        });
        let mut connections = lock(&self.inner.connections);
        if self.inner.closing.load(Ordering::Acquire) {
            return Err(StoreRefusal::Closing);
        }
        if connections.len() >= limits.max_connections {
            return Err(StoreRefusal::Full);
        }
        if connections.contains(connection.token.as_str()) {
            return Err(StoreRefusal::Exists);
        }
        connections.insert(Held(connection.clone()));
        Ok(connection)
    }

    /// The connection with `token`, if this server holds it.
    pub fn get(&self, token: &str) -> Option<Arc<Connection>> {
        lock(&self.inner.connections)
            .get(token)
            .map(|held| held.0.clone())
    }

    /// How many connections are held.
    pub fn len(&self) -> usize {
        lock(&self.inner.connections).len()
    }

    /// Removes `connection`: its requests end, and the hub sees its inbound channel close.
    pub fn remove(&self, connection: &Connection) {
        let removed = {
            let mut connections = lock(&self.inner.connections);
            match connections.get(connection.token.as_str()) {
                Some(held) if std::ptr::eq(Arc::as_ptr(&held.0), connection) => {
                    connections.take(connection.token.as_str())
                }
                _ => None,
            }
        };
        connection.inbound.close();
        connection.closer.close();
        connection.removed.store(true, Ordering::Release);
        connection.attached.notify_waiters();
        drop(removed);
    }

    /// Ends every connection and takes no new one: event streams end, waiting polls get
    /// 204, sockets close, and the hub sees every inbound channel close (ASP.NET Core's
    /// `HttpConnectionManager.CloseConnections` when the application stops).
    pub fn close_all(&self) {
        self.inner.closing.store(true, Ordering::Release);
        let all: Vec<Arc<Connection>> = lock(&self.inner.connections)
            .iter()
            .map(|held| held.0.clone())
            .collect();
        for connection in all {
            self.remove(&connection);
        }
    }

    /// The hub finished with `connection`. A connection with no request attached goes now,
    /// except under long polling, where the next poll is told with 204 (as in ASP.NET Core).
    pub fn hub_finished(&self, connection: &Connection) {
        connection.closer.close();
        let idle = {
            let mut state = lock(&connection.state);
            state.hub_done = true;
            !state.active && state.transport != Some(TransportKind::LongPolling)
        };
        if idle {
            self.remove(connection);
        }
    }

    /// Starts the once-a-second sweep (from inside the runtime, on first use). It stops when
    /// the store is dropped.
    fn start_sweeper(&self) {
        if self.inner.sweeper.swap(true, Ordering::AcqRel) {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            self.inner.sweeper.store(false, Ordering::Release);
            return;
        };
        let weak = Arc::downgrade(&self.inner);
        runtime.spawn(sweep(weak));
    }
}

async fn sweep(store: Weak<StoreInner>) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(inner) = store.upgrade() else {
            return;
        };
        let now = Instant::now();
        let expired: Vec<Arc<Connection>> = lock(&inner.connections)
            .iter()
            .filter(|held| held.0.expired(now, &inner.limits))
            .map(|held| held.0.clone())
            .collect();
        let store = ConnectionStore { inner };
        for connection in expired {
            tracing::debug!(connection_id = %connection.id, "removing an idle connection");
            store.remove(&connection);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> StoreLimits {
        StoreLimits {
            disconnect_timeout: Duration::from_millis(50),
            reconnect_grace: Duration::from_millis(50),
            max_connections: 2,
            outbound_capacity: 4,
            inbound_capacity: 4,
        }
    }

    #[tokio::test]
    async fn transports_cannot_change_and_persistent_ones_cannot_double() {
        let store = ConnectionStore::new(limits());
        let c = store.create("t".into(), "i".into(), false).unwrap();
        assert_eq!(c.try_attach(TransportKind::ServerSentEvents), Ok(1));
        assert_eq!(
            c.try_attach(TransportKind::ServerSentEvents),
            Err(TransportRefusal::AlreadyActive)
        );
        assert_eq!(
            c.try_attach(TransportKind::LongPolling),
            Err(TransportRefusal::CannotChange)
        );
        assert!(c.detach(1, false));
        assert_eq!(
            c.try_attach(TransportKind::ServerSentEvents),
            Ok(2),
            "an idle connection takes a new request"
        );
        store.remove(&c);
        assert_eq!(
            c.try_attach(TransportKind::ServerSentEvents),
            Err(TransportRefusal::Gone)
        );
        assert!(store.get("t").is_none());
    }

    #[tokio::test]
    async fn polls_and_stateful_sockets_replace_the_one_attached() {
        let store = ConnectionStore::new(limits());
        let poll = store.create("p".into(), "p".into(), false).unwrap();
        let first = poll.try_attach(TransportKind::LongPolling).unwrap();
        let second = poll.try_attach(TransportKind::LongPolling).unwrap();
        poll.superseded(first).await;
        assert!(
            !poll.detach(first, false),
            "a replaced poll leaves the state alone"
        );
        assert!(poll.detach(second, false));

        let socket = store.create("s".into(), "s".into(), true).unwrap();
        let first = socket.try_attach(TransportKind::WebSockets).unwrap();
        assert!(socket.try_attach(TransportKind::WebSockets).is_ok());
        assert!(!socket.is_current(first));

        let plain = store.create("w".into(), "w".into(), false);
        assert_eq!(plain.err(), Some(StoreRefusal::Full), "the limit is 2");
    }

    #[tokio::test]
    async fn released_says_whether_the_request_was_replaced_or_the_connection_removed() {
        let store = ConnectionStore::new(limits());
        let c = store.create("r".into(), "r".into(), true).unwrap();
        let first = c.try_attach(TransportKind::WebSockets).unwrap();
        let second = c.try_attach(TransportKind::WebSockets).unwrap();
        let wait = Duration::from_secs(20);
        let replaced = tokio::time::timeout(wait, c.released(first)).await;
        assert_eq!(replaced, Ok(Release::Superseded));
        let waiting = {
            let c = c.clone();
            tokio::spawn(async move { c.released(second).await })
        };
        tokio::task::yield_now().await;
        store.remove(&c);
        let removed = tokio::time::timeout(wait, waiting).await.unwrap().unwrap();
        assert_eq!(removed, Release::Removed);
        tokio::time::timeout(wait, c.ended()).await.unwrap();
        assert!(store.get("r").is_none(), "found by token until removed");
    }

    #[tokio::test]
    async fn the_store_is_bounded_and_idle_connections_are_swept() {
        let store = ConnectionStore::new(limits());
        let a = store.create("a".into(), "a".into(), false).unwrap();
        store.create("b".into(), "b".into(), false).unwrap();
        assert_eq!(
            store.create("c".into(), "c".into(), false).err(),
            Some(StoreRefusal::Full)
        );
        store.close_all();
        assert_eq!(store.len(), 0);
        assert_eq!(
            store.create("d".into(), "d".into(), false).err(),
            Some(StoreRefusal::Closing)
        );
        let (mut inbound, _outbound) = a.take_link().unwrap();
        let closed = tokio::time::timeout(Duration::from_secs(20), inbound.recv()).await;
        assert!(matches!(closed, Ok(None)), "the hub sees the channel close");
        assert_eq!(store.len(), 0);
    }
}
