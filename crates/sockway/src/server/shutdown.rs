//! Graceful shutdown plumbing of the [`super::Server`] runner: a one-shot broadcast signal that
//! any number of tasks and sockets wait on, a count of live connections, and the hook that
//! lets the runner ask every WebSocket it accepted to close with 1001 ("going away",
//! RFC 6455 section 7.4.1) without the application doing anything.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Waker};

use sockway_proto::CloseCode;
use tokio::sync::watch;

use crate::socket::CloseRequest;

/// The shared state of a [`Signal`].
#[derive(Debug, Default)]
struct SignalState {
    fired: AtomicBool,
    next_id: AtomicU64,
    waiters: Mutex<HashMap<u64, Waker>>,
}

/// A one-shot broadcast: once fired it stays fired, and every waiter is woken. Poll-based
/// (no borrowed futures), so a socket's engine can hold a [`Waiter`] and poll it directly.
#[derive(Debug, Clone, Default)]
pub(crate) struct Signal {
    state: Arc<SignalState>,
}

impl Signal {
    /// Fires the signal and wakes everyone waiting on it.
    pub(crate) fn fire(&self) {
        self.state.fired.store(true, Ordering::SeqCst);
        let wakers: Vec<Waker> = {
            let mut waiters = self
                .state
                .waiters
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            waiters.drain().map(|(_, waker)| waker).collect()
        };
        for waker in wakers {
            waker.wake();
        }
    }

    /// Whether the signal has fired.
    pub(crate) fn is_fired(&self) -> bool {
        self.state.fired.load(Ordering::SeqCst)
    }

    /// A future-like registration that becomes ready when the signal fires.
    pub(crate) fn waiter(&self) -> Waiter {
        Waiter {
            state: self.state.clone(),
            id: self.state.next_id.fetch_add(1, Ordering::Relaxed),
            registered: None,
        }
    }
}

/// One waiter on a [`Signal`]; it removes its waker from the signal when dropped, so the
/// signal holds at most one waker per live waiter.
#[derive(Debug)]
pub(crate) struct Waiter {
    state: Arc<SignalState>,
    id: u64,
    /// A copy of the waker this waiter last put into the signal's map. While the task polls
    /// with a waker that wakes the same task, the map already holds an equivalent one, so
    /// polling needs no lock: a socket's engine polls its waiter before every wait.
    registered: Option<Waker>,
}

impl Waiter {
    /// Ready once the signal has fired.
    #[inline]
    pub(crate) fn poll_fired(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        if self.state.fired.load(Ordering::SeqCst) {
            return Poll::Ready(());
        }
        // Not fired, so `fire` has not drained the map yet and the waker registered last is
        // still there to be woken.
        if let Some(registered) = &self.registered {
            if registered.will_wake(cx.waker()) {
                return Poll::Pending;
            }
        }
        self.register(cx)
    }

    /// [`Waiter::poll_fired`] with a waker the signal's map does not hold yet: puts it there
    /// (under the lock), then looks at the signal again. Out of line, so that the check above,
    /// made before every wait of every socket, stays a few instructions.
    #[cold]
    #[inline(never)]
    fn register(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        {
            let mut waiters = self
                .state
                .waiters
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            match waiters.get_mut(&self.id) {
                Some(waker) if waker.will_wake(cx.waker()) => {}
                Some(waker) => waker.clone_from(cx.waker()),
                None => {
                    waiters.insert(self.id, cx.waker().clone());
                }
            }
        }
        match &mut self.registered {
            Some(registered) => registered.clone_from(cx.waker()),
            None => self.registered = Some(cx.waker().clone()),
        }
        // Fired between the first check and the registration: `fire` may have drained the
        // map before our insert, so look again.
        if self.state.fired.load(Ordering::SeqCst) {
            return Poll::Ready(());
        }
        Poll::Pending
    }
}

impl Future for Waiter {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.poll_fired(cx)
    }
}

impl Drop for Waiter {
    fn drop(&mut self) {
        self.state
            .waiters
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&self.id);
    }
}

/// A handle that starts a [`super::Server`]'s graceful shutdown, for tests and for
/// applications with their own stop condition (the runner also reacts to Ctrl-C and SIGTERM
/// unless told not to). Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct ShutdownHandle {
    signal: Signal,
}

impl ShutdownHandle {
    /// Starts the graceful shutdown: stop accepting, close every WebSocket with 1001, drain.
    /// Calling it again does nothing.
    pub fn shutdown(&self) {
        self.signal.fire();
    }

    /// Whether the shutdown has started.
    pub fn is_shutting_down(&self) -> bool {
        self.signal.is_fired()
    }

    /// Resolves once the shutdown has started, so background tasks (a broadcaster, a timer)
    /// can stop with the server.
    pub fn wait(&self) -> impl Future<Output = ()> + Send + 'static {
        self.signal.waiter()
    }

    pub(crate) fn signal(&self) -> &Signal {
        &self.signal
    }
}

/// Counts live connections; each one holds a [`ConnectionPermit`].
#[derive(Debug, Clone)]
pub(crate) struct ConnectionCounter {
    live: Arc<watch::Sender<usize>>,
}

impl Default for ConnectionCounter {
    fn default() -> Self {
        Self {
            live: Arc::new(watch::Sender::new(0)),
        }
    }
}

impl ConnectionCounter {
    /// How many connections are live now.
    pub(crate) fn live(&self) -> usize {
        *self.live.borrow()
    }

    /// Counts one more connection until the permit (and every clone of its `Arc`) is dropped.
    pub(crate) fn acquire(&self) -> Arc<ConnectionPermit> {
        self.live.send_modify(|n| *n += 1);
        Arc::new(ConnectionPermit {
            live: self.live.clone(),
            load: None,
        })
    }

    /// As [`acquire`](Self::acquire), and counts the connection in `load` too (the load of
    /// the thread it runs on) until the permit is dropped.
    pub(crate) fn acquire_on(&self, load: &Arc<AtomicUsize>) -> Arc<ConnectionPermit> {
        self.live.send_modify(|n| *n += 1);
        load.fetch_add(1, Ordering::Relaxed);
        Arc::new(ConnectionPermit {
            live: self.live.clone(),
            load: Some(load.clone()),
        })
    }

    /// Resolves when no connection is live.
    pub(crate) async fn all_closed(&self) {
        let mut rx = self.live.subscribe();
        let _ = rx.wait_for(|n| *n == 0).await;
    }
}

/// One live connection; dropping the last `Arc` of it ends the count. An upgraded WebSocket
/// keeps its connection's permit, so sockets count against the connection limit too.
#[derive(Debug)]
pub(crate) struct ConnectionPermit {
    live: Arc<watch::Sender<usize>>,
    /// The load of the thread the connection was dealt to, if it was dealt.
    load: Option<Arc<AtomicUsize>>,
}

impl Drop for ConnectionPermit {
    fn drop(&mut self) {
        self.live.send_modify(|n| *n = n.saturating_sub(1));
        if let Some(load) = &self.load {
            load.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

/// What the runner puts into each request's extensions so that [`super::accept`] can hook
/// the socket it creates into the shutdown and the connection count.
#[derive(Debug, Clone)]
pub(crate) struct Tracking {
    pub(crate) shutdown: Signal,
    pub(crate) permit: Arc<ConnectionPermit>,
}

impl Tracking {
    /// The hook to install on a socket accepted on this connection.
    pub(crate) fn close_request(&self) -> Box<dyn CloseRequest> {
        Box::new(ShutdownCloseRequest {
            waiter: Some(self.shutdown.waiter()),
            _permit: self.permit.clone(),
        })
    }
}

/// Closes its socket with 1001 when the server shuts down, and keeps the connection counted
/// while the socket lives.
#[derive(Debug)]
struct ShutdownCloseRequest {
    /// `None` once fired: the request is made only once.
    waiter: Option<Waiter>,
    _permit: Arc<ConnectionPermit>,
}

/// The close reason sent to peers when the server shuts down.
pub(crate) const SHUTDOWN_REASON: &str = "server shutting down";

impl CloseRequest for ShutdownCloseRequest {
    fn poll_close_request(&mut self, cx: &mut Context<'_>) -> Poll<(CloseCode, &'static str)> {
        let Some(waiter) = self.waiter.as_mut() else {
            return Poll::Pending;
        };
        match waiter.poll_fired(cx) {
            Poll::Ready(()) => {
                self.waiter = None;
                Poll::Ready((CloseCode::GOING_AWAY, SHUTDOWN_REASON))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn signal_wakes_every_waiter_once_fired() {
        let signal = Signal::default();
        let waiters: Vec<_> = (0..3).map(|_| tokio::spawn(signal.waiter())).collect();
        tokio::task::yield_now().await;
        assert!(!signal.is_fired());
        signal.fire();
        for waiter in waiters {
            tokio::time::timeout(std::time::Duration::from_secs(5), waiter)
                .await
                .expect("woken")
                .expect("joined");
        }
        // A waiter made after firing is ready at once.
        signal.waiter().await;
        assert!(signal.state.waiters.lock().unwrap().is_empty());
    }

    /// Counts its wake-ups.
    struct CountingWaker(std::sync::atomic::AtomicUsize);

    impl std::task::Wake for CountingWaker {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn the_waker_polled_last_is_woken() {
        let signal = Signal::default();
        let mut waiter = signal.waiter();
        let first = Arc::new(CountingWaker(0.into()));
        let second = Arc::new(CountingWaker(0.into()));
        let (first_waker, second_waker) = (Waker::from(first.clone()), Waker::from(second.clone()));
        for waker in [&first_waker, &first_waker, &second_waker, &second_waker] {
            assert!(waiter
                .poll_fired(&mut Context::from_waker(waker))
                .is_pending());
        }
        signal.fire();
        assert_eq!(first.0.load(Ordering::SeqCst), 0);
        assert_eq!(second.0.load(Ordering::SeqCst), 1);
        assert!(waiter
            .poll_fired(&mut Context::from_waker(&second_waker))
            .is_ready());
    }

    #[test]
    fn permits_count_until_the_last_clone_drops() {
        let counter = ConnectionCounter::default();
        let permit = counter.acquire();
        let clone = permit.clone();
        assert_eq!(counter.live(), 1);
        drop(permit);
        assert_eq!(counter.live(), 1);
        drop(clone);
        assert_eq!(counter.live(), 0);
    }
}
