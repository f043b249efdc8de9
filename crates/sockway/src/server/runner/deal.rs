//! Where one accept loop's connections come from: a listener of its own, or the listener of
//! another thread that deals each new connection to the thread with the fewest
//! ([`Server::serve_threads`](super::Server::serve_threads)).
//!
//! A dealt connection leaves the accepting thread's reactor (`into_std`) and is registered
//! with its new thread's reactor there, so that its readiness is reported to the thread that
//! polls it; it then stays on that thread for its whole life. The thread's load is the number
//! of permits counted on it, so a WebSocket that outlives its HTTP connection task still
//! counts where it runs.

use std::future::pending;
use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

use crate::server::info::ConnectionInfo;
use crate::server::shutdown::{ConnectionCounter, ConnectionPermit};

/// The connections of one accept loop.
pub(super) enum Source {
    /// Accepted from a listener; with a dealer, each is handed to the least-loaded thread.
    Listener {
        listener: TcpListener,
        dealer: Option<Dealer>,
    },
    /// Dealt by another thread's listener, already counted.
    Dealt(mpsc::UnboundedReceiver<Dealt>),
}

/// What [`Source::next`] yields.
pub(super) enum Next {
    /// A new connection from this loop's listener, not yet counted.
    Accepted(TcpStream, std::net::SocketAddr),
    /// A connection another thread accepted, counted and dealt to this one.
    Dealt(TcpStream, ConnectionInfo, Arc<ConnectionPermit>),
    /// The listener failed to accept.
    Failed(io::Error),
}

impl Source {
    /// The next connection. A loop whose dealer has stopped waits for shutdown instead.
    pub(super) async fn next(&mut self) -> Next {
        match self {
            Source::Listener { listener, .. } => match listener.accept().await {
                Ok((stream, peer_addr)) => Next::Accepted(stream, peer_addr),
                Err(error) => Next::Failed(error),
            },
            Source::Dealt(inbox) => loop {
                let Some(dealt) = inbox.recv().await else {
                    return pending().await;
                };
                match TcpStream::from_std(dealt.stream) {
                    Ok(stream) => return Next::Dealt(stream, dealt.info, dealt.permit),
                    // Dropped with its permit: closed unanswered, like a refused accept.
                    Err(error) => tracing::warn!(%error, "dealt connection not registered"),
                }
            },
        }
    }

    /// The dealer of this loop's listener, if it deals.
    pub(super) fn dealer(&self) -> Option<&Dealer> {
        match self {
            Source::Listener { dealer, .. } => dealer.as_ref(),
            Source::Dealt(_) => None,
        }
    }

    /// The local address of this loop's listener (none for a loop that is dealt to).
    pub(super) fn local_addr(&self) -> Option<std::net::SocketAddr> {
        match self {
            Source::Listener { listener, .. } => listener.local_addr().ok(),
            Source::Dealt(_) => None,
        }
    }
}

/// A connection on its way to the thread it was dealt to.
pub(super) struct Dealt {
    stream: std::net::TcpStream,
    info: ConnectionInfo,
    permit: Arc<ConnectionPermit>,
}

/// One thread as the dealer sees it.
struct Seat {
    /// Connections counted on this thread.
    load: Arc<AtomicUsize>,
    /// Where connections dealt to it go; `None` for the dealer's own thread.
    inbox: Option<mpsc::UnboundedSender<Dealt>>,
}

/// Hands each connection the accepting thread's listener takes to the thread with the fewest.
pub(super) struct Dealer {
    seats: Vec<Seat>,
}

/// Where a connection was dealt.
pub(super) enum Dealing {
    /// To the dealer's own thread: serve it here with this permit.
    Kept(TcpStream, Arc<ConnectionPermit>),
    /// To another thread (or closed, when that thread has already stopped).
    Passed,
}

impl Dealer {
    /// A dealer on thread 0 and the inboxes of the other `threads - 1` threads, in order.
    pub(super) fn new(threads: usize) -> (Self, Vec<mpsc::UnboundedReceiver<Dealt>>) {
        let mut receivers = Vec::new();
        let seats = (0..threads.max(1))
            .map(|index| {
                let inbox = (index > 0).then(|| {
                    let (sender, receiver) = mpsc::unbounded_channel();
                    receivers.push(receiver);
                    sender
                });
                Seat {
                    load: Arc::default(),
                    inbox,
                }
            })
            .collect();
        (Self { seats }, receivers)
    }

    /// Counts `stream` with `counter` on the thread with the fewest connections (the first
    /// of them on a tie, so the dealer's own thread when all are even) and passes it there.
    pub(super) fn deal(
        &self,
        counter: &ConnectionCounter,
        stream: TcpStream,
        info: ConnectionInfo,
    ) -> Dealing {
        let Some(seat) = self
            .seats
            .iter()
            .min_by_key(|seat| seat.load.load(Ordering::Relaxed))
        else {
            return Dealing::Kept(stream, counter.acquire());
        };
        let permit = counter.acquire_on(&seat.load);
        let Some(inbox) = &seat.inbox else {
            return Dealing::Kept(stream, permit);
        };
        match stream.into_std() {
            Ok(stream) => {
                // A thread that has stopped drops what it is sent, permit and all.
                let _ = inbox.send(Dealt {
                    stream,
                    info,
                    permit,
                });
            }
            Err(error) => tracing::warn!(%error, "accepted connection not dealt"),
        }
        Dealing::Passed
    }
}
