//! Reusing HTTP/1.1 connections to a backend for ordinary requests (RFC 9112 section 9.3,
//! persistence), so that a request does not pay a TCP (and TLS) handshake each time.
//!
//! A connection goes back to its backend's idle list once hyper says it can take the next
//! request, which is after the response body has been read to its end; a response cut short,
//! a `Connection: close` or a broken connection never comes back. Idle connections are kept
//! for `limits.backendKeepAlive` seconds at most (below the keep-alive timeouts of common
//! servers, so that the backend rarely closes one just as it is reused) and at most
//! `limits.backendMaxIdle` per backend. A request sent on a reused connection that turns out
//! to be closed is sent again on a new one: hyper hands back a request it could not start
//! writing, so nothing is ever sent twice. WebSocket upgrades always use a new connection,
//! which the session then owns.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hyper::client::conn::http1::SendRequest;

/// How idle backend connections are kept.
#[derive(Debug, Clone, Copy)]
pub struct KeepAlive {
    /// Longest time a connection stays idle before it is dropped; zero turns reuse off.
    pub idle: Duration,
    /// Most idle connections kept per backend.
    pub max_idle: usize,
}

impl KeepAlive {
    fn enabled(&self) -> bool {
        !self.idle.is_zero() && self.max_idle > 0
    }
}

/// Which connections may serve a request: the same TLS setting and server name, so that a
/// reload that changes a backend's settings never reuses a connection made under the old ones.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// TLS to the backend.
    pub tls: bool,
    /// The TLS server name (or the host used for plain HTTP).
    pub sni: String,
}

struct Idle<B> {
    sender: SendRequest<B>,
    route: Route,
    since: Instant,
}

/// A backend's idle connections, most recently used last.
pub struct IdleConnections<B> {
    list: Mutex<Vec<Idle<B>>>,
}

impl<B> Default for IdleConnections<B> {
    fn default() -> Self {
        Self {
            list: Mutex::new(Vec::new()),
        }
    }
}

impl<B> std::fmt::Debug for IdleConnections<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdleConnections")
            .field("idle", &self.len())
            .finish()
    }
}

impl<B> IdleConnections<B> {
    /// Idle connections held now (the `sockway_gateway_backend_idle_connections` gauge).
    pub fn len(&self) -> usize {
        self.list.lock().map_or(0, |list| list.len())
    }
}

impl<B: Send + 'static> IdleConnections<B> {
    /// The most recently used idle connection for `route` that is still open, ready and not
    /// older than `keep.idle`; the expired and closed ones met on the way are dropped.
    pub fn take(&self, route: &Route, keep: KeepAlive) -> Option<SendRequest<B>> {
        if !keep.enabled() {
            return None;
        }
        let mut list = self.list.lock().ok()?;
        list.retain(|idle| {
            idle.since.elapsed() < keep.idle && !idle.sender.is_closed() && idle.sender.is_ready()
        });
        let at = list.iter().rposition(|idle| idle.route == *route)?;
        Some(list.remove(at).sender)
    }

    /// Puts `sender` back once it can take another request, unless keeping it would exceed
    /// `keep.max_idle` (then the oldest idle connection is dropped instead).
    pub fn give_back_when_ready(
        self: std::sync::Arc<Self>,
        mut sender: SendRequest<B>,
        route: Route,
        keep: KeepAlive,
    ) {
        if !keep.enabled() {
            return;
        }
        tokio::spawn(async move {
            // Resolves when the response body has been read to its end; fails when the
            // connection closes instead. A body never read holds only this task.
            if sender.ready().await.is_err() {
                return;
            }
            let Ok(mut list) = self.list.lock() else {
                return;
            };
            if list.len() >= keep.max_idle {
                list.remove(0);
            }
            list.push(Idle {
                sender,
                route,
                since: Instant::now(),
            });
        });
    }
}

/// The proxy's connection cache: every backend's idle connections, by backend id
/// ([`crate::pool::Backend::id`], stable across reloads as the backend itself is). A reload
/// drops the lists of backends that left ([`ConnectionCache::retain`]).
pub struct ConnectionCache<B> {
    backends: Mutex<HashMap<String, Arc<IdleConnections<B>>>>,
}

impl<B> Default for ConnectionCache<B> {
    fn default() -> Self {
        Self {
            backends: Mutex::new(HashMap::new()),
        }
    }
}

impl<B> std::fmt::Debug for ConnectionCache<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let backends = self.backends.lock().map_or(0, |map| map.len());
        f.debug_struct("ConnectionCache")
            .field("backends", &backends)
            .finish()
    }
}

impl<B> ConnectionCache<B> {
    /// The idle list of backend `id`, made empty on first use.
    pub fn of(&self, id: &str) -> Arc<IdleConnections<B>> {
        let mut map = match self.backends.lock() {
            Ok(map) => map,
            Err(poisoned) => poisoned.into_inner(),
        };
        map.entry(id.to_owned()).or_default().clone()
    }

    /// Idle connections held now to backend `id` (the
    /// `sockway_gateway_backend_idle_connections` gauge).
    pub fn idle(&self, id: &str) -> usize {
        self.backends
            .lock()
            .ok()
            .and_then(|map| map.get(id).map(|list| list.len()))
            .unwrap_or(0)
    }

    /// Keeps the lists of the backends `keep` says yes to; the others' connections close.
    pub fn retain(&self, keep: impl Fn(&str) -> bool) {
        if let Ok(mut map) = self.backends.lock() {
            map.retain(|id, _| keep(id));
        }
    }
}

/// What sending on a reused connection gave: the response, or the request back when the
/// connection closed before any of it was written (so it is safe to send again).
pub enum Attempt<B> {
    /// The backend answered, or failed after the request was (partly) written.
    Done(Result<http::Response<hyper::body::Incoming>, hyper::Error>),
    /// Not sent at all; try a new connection.
    NotSent(http::Request<B>),
}

/// Sends `request` on `sender`, giving the request back if it was never written.
pub async fn try_send<B>(sender: &mut SendRequest<B>, request: http::Request<B>) -> Attempt<B>
where
    B: hyper::body::Body + Send + 'static,
{
    match sender.try_send_request(request).await {
        Ok(response) => Attempt::Done(Ok(response)),
        Err(mut error) => match error.take_message() {
            Some(request) => Attempt::NotSent(request),
            None => Attempt::Done(Err(error.into_error())),
        },
    }
}
