//! [`ConnectionPool`]: the client's HTTP/2 connections, per origin, so that many WebSockets
//! to one server share one connection (RFC 8441 section 1: "the ability to multiplex").
//!
//! A connection is keyed by scheme, host, port and TLS settings. It is reused while it is
//! alive and below the server's `SETTINGS_MAX_CONCURRENT_STREAMS` (RFC 9113 section 6.5.2);
//! otherwise another one is opened next to it. Opening is serialized per origin, so sockets
//! that connect at once wait for the first connection instead of each opening their own. A
//! connection without sockets for [`IDLE_TIMEOUT`] leaves the pool and closes (`GOAWAY`).
//! The pool also remembers, for [`REFUSAL_MEMORY`], origins that turned out not to support
//! WebSockets over HTTP/2, so `HttpVersion::Auto` goes straight to HTTP/1.1 there.

use std::collections::HashMap;
use std::fmt;
use std::hash::Hash;
use std::net::SocketAddr;
use std::pin::pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::Duration;

use bytes::Bytes;
use h2::client::{Connection, SendRequest};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::client::url::Target;

/// How long a connection without sockets stays open for the next one.
pub(crate) const IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// How long an origin that refused WebSockets over HTTP/2 is sent HTTP/1.1 directly.
pub(crate) const REFUSAL_MEMORY: Duration = Duration::from_secs(300);

/// Connections are shared only between identical origins and TLS settings.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct PoolKey {
    secure: bool,
    host: String,
    port: u16,
    /// A digest of the TLS settings (trust, client certificate, verification switch).
    tls: u64,
}

impl PoolKey {
    /// The key of `target` for a connection with TLS settings of digest `tls`
    /// (`Settings::tls_digest`).
    pub(crate) fn new(target: &Target, tls: u64) -> Self {
        Self {
            secure: target.secure,
            host: target.host.clone(),
            port: target.port,
            tls,
        }
    }
}

/// What every socket on one connection has in common.
#[derive(Debug)]
pub(crate) struct ConnectionFacts {
    pub id: u64,
    pub local_addr: SocketAddr,
    pub remote_addr: SocketAddr,
    pub addresses: usize,
    pub peer_certificates: Vec<Vec<u8>>,
}

/// The live state of one connection, shared by the pool, its sockets and its driver task.
#[derive(Debug)]
struct ConnectionState {
    facts: Arc<ConnectionFacts>,
    /// Open sockets (leases).
    streams: AtomicUsize,
    /// The connection ended or left the pool: no new sockets on it.
    closed: AtomicBool,
    /// Woken when a socket opens or closes, for the idle timer.
    activity: Notify,
}

/// One pooled HTTP/2 connection: a handle to open streams on it, and its state.
#[derive(Clone)]
pub(crate) struct PooledConnection {
    send: SendRequest<Bytes>,
    state: Arc<ConnectionState>,
}

impl fmt::Debug for PooledConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PooledConnection")
            .field("id", &self.state.facts.id)
            .field("streams", &self.state.streams.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl PooledConnection {
    /// A handle to open streams with.
    pub(crate) fn sender(&self) -> SendRequest<Bytes> {
        self.send.clone()
    }

    /// Takes a stream slot if the connection is open and below the server's limit on
    /// concurrent streams.
    pub(crate) fn try_lease(&self) -> Option<StreamLease> {
        if self.state.closed.load(Ordering::Acquire) {
            return None;
        }
        let max = self.send.current_max_send_streams();
        self.state
            .streams
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max).then_some(n + 1)
            })
            .ok()?;
        self.state.activity.notify_one();
        Some(StreamLease {
            state: self.state.clone(),
        })
    }

    /// Takes the connection out of service (it failed, or the server is going away).
    pub(crate) fn retire(&self) {
        self.state.closed.store(true, Ordering::Release);
    }
}

/// A socket's claim on a slot of its connection; released when the socket's transport is
/// dropped.
pub(crate) struct StreamLease {
    state: Arc<ConnectionState>,
}

impl StreamLease {
    pub(crate) fn connection_id(&self) -> u64 {
        self.state.facts.id
    }

    pub(crate) fn peer_certificates(&self) -> &[Vec<u8>] {
        &self.state.facts.peer_certificates
    }

    pub(crate) fn facts(&self) -> &Arc<ConnectionFacts> {
        &self.state.facts
    }
}

impl Drop for StreamLease {
    fn drop(&mut self) {
        self.state.streams.fetch_sub(1, Ordering::AcqRel);
        self.state.activity.notify_one();
    }
}

/// The pool's entry for one origin.
#[derive(Default)]
struct Entry {
    connections: Vec<PooledConnection>,
    /// Held while a connection to this origin is being opened.
    opening: Arc<tokio::sync::Mutex<()>>,
    /// Until when this origin is known not to support WebSockets over HTTP/2.
    refused_until: Option<Instant>,
}

#[derive(Default)]
struct PoolInner {
    entries: Mutex<HashMap<PoolKey, Entry>>,
}

impl PoolInner {
    fn entries(&self) -> MutexGuard<'_, HashMap<PoolKey, Entry>> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn remove(&self, key: &PoolKey, id: u64) {
        let mut entries = self.entries();
        if let Some(entry) = entries.get_mut(key) {
            entry.connections.retain(|c| c.state.facts.id != id);
            if entry.connections.is_empty()
                && entry.refused_until.is_none()
                && Arc::strong_count(&entry.opening) == 1
            {
                entries.remove(key);
            }
        }
    }
}

/// The HTTP/2 connections of a [`super::super::ClientBuilder`] and its clones, shared so
/// that many WebSockets to one origin ride one connection (RFC 8441). Clones share the pool;
/// pass one to [`super::super::ClientBuilder::connection_pool`] to share it between builders.
#[derive(Clone, Default)]
pub struct ConnectionPool {
    inner: Arc<PoolInner>,
}

impl fmt::Debug for ConnectionPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectionPool")
            .field("http2_connections", &self.http2_connections())
            .finish()
    }
}

static NEXT_CONNECTION_ID: AtomicU64 = AtomicU64::new(1);

impl ConnectionPool {
    /// An empty pool.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many HTTP/2 connections the pool holds open, over all origins.
    pub fn http2_connections(&self) -> usize {
        let entries = self.inner.entries();
        entries
            .values()
            .flat_map(|e| &e.connections)
            .filter(|c| !c.state.closed.load(Ordering::Acquire))
            .count()
    }

    /// A stream slot on an open connection to `key`, if one has room.
    pub(crate) fn checkout(&self, key: &PoolKey) -> Option<(PooledConnection, StreamLease)> {
        let mut entries = self.inner.entries();
        let entry = entries.get_mut(key)?;
        entry
            .connections
            .retain(|c| !c.state.closed.load(Ordering::Acquire));
        entry
            .connections
            .iter()
            .find_map(|c| c.try_lease().map(|lease| (c.clone(), lease)))
    }

    /// The lock that serializes opening connections to `key`.
    pub(crate) fn opening_lock(&self, key: &PoolKey) -> Arc<tokio::sync::Mutex<()>> {
        let mut entries = self.inner.entries();
        entries.entry(key.clone()).or_default().opening.clone()
    }

    /// Whether `key` recently turned out not to support WebSockets over HTTP/2.
    pub(crate) fn refused(&self, key: &PoolKey) -> bool {
        self.refused_at(key, Instant::now())
    }

    fn refused_at(&self, key: &PoolKey, now: Instant) -> bool {
        let mut entries = self.inner.entries();
        let Some(entry) = entries.get_mut(key) else {
            return false;
        };
        match entry.refused_until {
            Some(until) if until > now => true,
            Some(_) => {
                entry.refused_until = None;
                false
            }
            None => false,
        }
    }

    /// Remembers that `key` does not support WebSockets over HTTP/2.
    pub(crate) fn remember_refusal(&self, key: &PoolKey) {
        let mut entries = self.inner.entries();
        entries.entry(key.clone()).or_default().refused_until =
            Some(Instant::now() + REFUSAL_MEMORY);
    }

    /// Adds a freshly opened connection and starts the task that drives it; the task removes
    /// it again when it ends or has been idle for [`IDLE_TIMEOUT`]. Generic over the transport
    /// `T` so that the pool need not know the client's transport type (which holds the pool's
    /// streams: naming it here would tie the two modules in a cycle).
    pub(crate) fn insert<T>(
        &self,
        key: &PoolKey,
        send: SendRequest<Bytes>,
        connection: Connection<T, Bytes>,
        facts: ConnectionFacts,
    ) -> PooledConnection
    where
        T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let facts = ConnectionFacts {
            id: NEXT_CONNECTION_ID.fetch_add(1, Ordering::Relaxed),
            ..facts
        };
        let pooled = PooledConnection {
            send,
            state: Arc::new(ConnectionState {
                facts: Arc::new(facts),
                streams: AtomicUsize::new(0),
                closed: AtomicBool::new(false),
                activity: Notify::new(),
            }),
        };
        self.inner
            .entries()
            .entry(key.clone())
            .or_default()
            .connections
            .push(pooled.clone());
        tokio::spawn(drive(
            connection,
            pooled.state.clone(),
            Arc::downgrade(&self.inner),
            key.clone(),
        ));
        pooled
    }
}

/// Drives one connection's I/O until it ends; takes it out of the pool when it ends or has
/// had no sockets for [`IDLE_TIMEOUT`] (the pool's handle is then dropped, and the connection
/// closes with `GOAWAY` once its last stream is gone).
async fn drive<T: AsyncRead + AsyncWrite + Unpin>(
    connection: Connection<T, Bytes>,
    state: Arc<ConnectionState>,
    pool: Weak<PoolInner>,
    key: PoolKey,
) {
    let id = state.facts.id;
    let leave_pool = |state: &ConnectionState| {
        state.closed.store(true, Ordering::Release);
        if let Some(pool) = pool.upgrade() {
            pool.remove(&key, id);
        }
    };
    let mut connection = pin!(connection);
    let mut pooled = true;
    loop {
        let idle = pooled && state.streams.load(Ordering::Acquire) == 0;
        tokio::select! {
            result = connection.as_mut() => {
                if let Err(error) = result {
                    tracing::debug!(connection = id, %error, "HTTP/2 connection ended with an error");
                }
                break;
            }
            () = state.activity.notified() => {}
            () = tokio::time::sleep(IDLE_TIMEOUT), if idle => {
                if state.streams.load(Ordering::Acquire) == 0 {
                    tracing::debug!(connection = id, "closing idle HTTP/2 connection");
                    leave_pool(&state);
                    pooled = false;
                }
            }
        }
    }
    leave_pool(&state);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(host: &str) -> PoolKey {
        PoolKey {
            secure: true,
            host: host.into(),
            port: 443,
            tls: 0,
        }
    }

    #[test]
    fn refusals_are_remembered_for_a_while() {
        let pool = ConnectionPool::new();
        assert!(!pool.refused(&key("a")));
        pool.remember_refusal(&key("a"));
        assert!(pool.refused(&key("a")));
        assert!(!pool.refused(&key("b")));
        let later = Instant::now() + REFUSAL_MEMORY + Duration::from_secs(1);
        assert!(!pool.refused_at(&key("a"), later));
        assert!(!pool.refused(&key("a")), "the memory was cleared");
        assert_eq!(pool.http2_connections(), 0);
        assert!(pool.checkout(&key("a")).is_none());
    }
}
