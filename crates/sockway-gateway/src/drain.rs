//! The registry of relayed WebSocket sessions, and closing them on purpose: when their
//! backend leaves the configuration (connection draining: after the drain timeout, or at
//! once when draining is off) and when the gateway shuts down (after the shutdown timeout).
//! A closed session gets a WebSocket close frame 1001 on both sides from its relay, not a
//! TCP reset.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{watch, Notify};

/// An order to a relay: close with this code and reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloseOrder {
    /// WebSocket close code (1001 for drain and shutdown).
    pub code: u16,
    /// Short reason text.
    pub reason: &'static str,
}

#[derive(Debug)]
struct Entry {
    backend_id: String,
    order: watch::Sender<Option<CloseOrder>>,
}

/// Every open session.
#[derive(Debug, Default)]
pub struct Sessions {
    entries: Mutex<HashMap<u64, Entry>>,
    next: AtomicU64,
    emptied: Notify,
}

/// A session's registration; dropping it removes the session.
#[derive(Debug)]
pub struct SessionTicket {
    id: u64,
    sessions: Arc<Sessions>,
    /// Where close orders arrive.
    pub orders: watch::Receiver<Option<CloseOrder>>,
}

impl Drop for SessionTicket {
    fn drop(&mut self) {
        if let Ok(mut entries) = self.sessions.entries.lock() {
            entries.remove(&self.id);
            if entries.is_empty() {
                self.sessions.emptied.notify_waiters();
            }
        }
    }
}

impl Sessions {
    /// Registers a session relayed to backend `backend_id`.
    pub fn register(self: &Arc<Self>, backend_id: &str) -> SessionTicket {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let (order, orders) = watch::channel(None);
        if let Ok(mut entries) = self.entries.lock() {
            entries.insert(
                id,
                Entry {
                    backend_id: backend_id.to_owned(),
                    order,
                },
            );
        }
        SessionTicket {
            id,
            sessions: self.clone(),
            orders,
        }
    }

    /// Open sessions.
    pub fn count(&self) -> usize {
        self.entries.lock().map(|e| e.len()).unwrap_or(0)
    }

    /// Orders the sessions of `backend_id` (or all, with `None`) to close; returns how many.
    pub fn close(&self, backend_id: Option<&str>, order: CloseOrder) -> usize {
        let Ok(entries) = self.entries.lock() else {
            return 0;
        };
        let mut n = 0;
        for entry in entries.values() {
            if backend_id.is_none_or(|id| id == entry.backend_id) {
                entry.order.send_replace(Some(order.clone()));
                n += 1;
            }
        }
        n
    }

    /// Waits until no session is open, at most `limit`; returns whether they all ended.
    pub async fn wait_empty(&self, limit: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let notified = self.emptied.notified();
            if self.count() == 0 {
                return true;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return self.count() == 0;
            }
        }
    }
}

/// Drains a backend that left the configuration: its sessions keep running for `drain`
/// (if draining is on), then get close 1001.
pub fn drain_backend(sessions: Arc<Sessions>, backend_id: String, drain: Option<Duration>) {
    tokio::spawn(async move {
        if let Some(limit) = drain {
            tokio::time::sleep(limit).await;
        }
        let n = sessions.close(
            Some(&backend_id),
            CloseOrder {
                code: 1001,
                reason: "backend removed from the gateway",
            },
        );
        if n > 0 {
            tracing::info!(backend = %backend_id, sessions = n, "closed sessions of a removed backend");
        }
    });
}

/// Drains a backend whose probes took it out of the rotation, when its settings have
/// connection draining on (Azure applies draining to unhealthy backends too): its sessions
/// keep running for `drain`, then get close 1001 unless a probe has brought the backend back
/// by then. Without draining, sessions to an unhealthy backend are left to run, since a
/// failing probe path does not prove the sockets are dead.
pub fn drain_unhealthy(
    sessions: Arc<Sessions>,
    backend: Arc<crate::pool::Backend>,
    drain: Duration,
) {
    tokio::spawn(async move {
        tokio::time::sleep(drain).await;
        if backend.is_healthy() {
            return;
        }
        let n = sessions.close(
            Some(&backend.id),
            CloseOrder {
                code: 1001,
                reason: "backend unhealthy",
            },
        );
        if n > 0 {
            tracing::info!(backend = %backend.authority(), sessions = n, "closed sessions of an unhealthy backend");
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn close_orders_reach_the_right_sessions_and_tickets_unregister() {
        let sessions = Arc::new(Sessions::default());
        let a = sessions.register("a");
        let b = sessions.register("b");
        assert_eq!(sessions.count(), 2);
        let order = CloseOrder {
            code: 1001,
            reason: "x",
        };
        assert_eq!(sessions.close(Some("a"), order.clone()), 1);
        assert_eq!(*a.orders.borrow(), Some(order));
        assert_eq!(*b.orders.borrow(), None);
        drop(a);
        assert!(!sessions.wait_empty(Duration::from_millis(10)).await);
        drop(b);
        assert!(sessions.wait_empty(Duration::from_millis(10)).await);
    }
}
