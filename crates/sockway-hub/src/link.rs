//! The link between a transport and the hub for one logical connection.
//!
//! A transport (WebSockets, Server-Sent Events, long polling) turns whatever the client sends
//! into [`Inbound`] events and carries what the hub puts in the [`Outbound`] queue to the client,
//! one frame at a time. The hub never sees HTTP, and a transport never sees a hub message: the
//! same split as ASP.NET Core's `ConnectionContext` and its duplex pipe.
//!
//! With stateful reconnect a logical connection outlives its transport: when the client comes
//! back with the same connection token the transport layer attaches the new socket to the same
//! link, clears frames that were queued for the lost one and sends [`Inbound::Reconnected`]; the
//! hub then sends a `Sequence` message and replays what the client has not acknowledged.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use bytes::Bytes;
use futures_util::future::BoxFuture;
use tokio::sync::{Notify, Semaphore};

use crate::channel;
use crate::protocol::TransferFormat;

pub use crate::request_head::{HeaderIter, Headers, RequestHead};

/// The transports of the SignalR transport protocol, by their names in `availableTransports`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TransportKind {
    /// `WebSockets`.
    WebSockets,
    /// `ServerSentEvents`.
    ServerSentEvents,
    /// `LongPolling`.
    LongPolling,
}

/// What the hub learns of a connection from the request that opened it.
#[derive(Debug, Clone)]
pub struct ConnectionInfo {
    /// The public connection id (`connectionId` in the negotiate response).
    pub connection_id: String,
    /// The user the authentication hook resolved, if any.
    pub user: Option<String>,
    /// The transport in use (the first one, for a connection that reconnected).
    pub transport: TransportKind,
    /// Whether the client asked for stateful reconnect and the server allowed it.
    pub stateful_reconnect: bool,
    /// The request that opened the transport, in one compact buffer: its authority, path and
    /// query (the query carries the client's parameters), and its headers but the WebSocket
    /// handshake's own (`Connection`, `Upgrade`, `Sec-WebSocket-Key`, `-Version` and
    /// `-Extensions`), which say nothing once the socket is open and would cost every
    /// connection memory.
    pub request: RequestHead,
    /// The client's address, when the server knows it.
    pub peer_addr: Option<std::net::SocketAddr>,
}

/// One connection handed from a transport to the hub.
#[derive(Debug)]
pub struct LinkedConnection {
    /// Who and how.
    pub info: ConnectionInfo,
    /// What the client sends; closed when the client is gone for good.
    pub inbound: channel::Receiver<Inbound>,
    /// Where the hub puts frames for the client.
    pub outbound: Outbound,
}

/// What the transports hand each new connection to: the hub, or a stand-in in tests.
pub trait ConnectionHandler: Send + Sync + 'static {
    /// Runs the connection until it ends (the hub closes it, or the client is gone).
    fn run(&self, connection: LinkedConnection) -> BoxFuture<'static, ()>;

    /// The hub, when this handler is one (`None` by default). A WebSocket without stateful
    /// reconnect then runs the hub's message loop in the socket's own loop, with no queue of
    /// inbound events and no second future (docs/benchmarks/hub.md, "Idle memory", change
    /// 12); any other handler gets [`run`](Self::run) and the queues of a
    /// [`LinkedConnection`].
    fn hub(&self) -> Option<&crate::Hub> {
        None
    }
}

/// What a transport delivers to the hub. The channel closing means the client is gone.
#[derive(Debug)]
pub enum Inbound {
    /// Bytes the client sent: a WebSocket message, or the body of a POST. Records may span
    /// several of these and one may hold several records.
    Data(Bytes),
    /// A new transport took over after the old one was lost (stateful reconnect only). Frames
    /// queued before it are gone; the hub replays what the client has not acknowledged.
    Reconnected,
}

/// Why a frame could not be queued for the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum OutboundError {
    /// The client does not read fast enough: its queue is at its limit.
    #[error("the client's send queue is full")]
    Full,
    /// The connection has ended.
    #[error("the connection has ended")]
    Closed,
}

/// The hub's side of the queue of frames to one client: each frame is one or more complete
/// encoded hub messages, sent as one WebSocket message, one Server-Sent Event, or part of one
/// long-polling response. Bounded: a client that does not keep up fills it, and the hub then
/// ends the connection instead of buffering without limit.
#[derive(Debug, Clone)]
pub struct Outbound {
    frames: channel::Sender<Bytes, Shared>,
}

/// The transports' side of the queue, kept by the connection for its whole life (its drop
/// ends the queue). A transport request takes frames through an [`OutboundLease`], one
/// request at a time.
#[derive(Debug)]
pub struct OutboundReceiver {
    frames: channel::Receiver<Bytes, Shared>,
}

/// One transport request's exclusive use of the outbound queue (see
/// [`OutboundReceiver::lease`]): frames to send, in order, and the end of the connection.
/// Dropping it lets the next request (a poll or socket that replaces this one) take over.
#[derive(Debug)]
pub struct OutboundLease {
    frames: channel::Taker<Bytes, Shared>,
    /// Whether this lease holds the queue's one permit (always, as the permit's semaphore is
    /// never closed), to give back when it is dropped.
    held: bool,
}

/// What the hub and the transports share beside the frames, in the frame queue's own
/// allocation: three allocations (the queue, this, and a lock around the receiver) cost
/// each idle connection some 100 bytes more (docs/benchmarks/hub.md, "Idle memory").
#[derive(Debug)]
struct Shared {
    closed: AtomicBool,
    binary: AtomicBool,
    notify: Notify,
    /// A last frame to send after the queued ones, even when the queue was full (the hub's
    /// `Close` for a client that read too slowly).
    last: Mutex<Option<Bytes>>,
    /// One permit: which transport request takes frames now (a socket, an event stream, a
    /// poll). Waiters get it in order, as with tokio's fair `Mutex`.
    lease: Semaphore,
}

/// Resolves once the hub has closed the connection (see [`OutboundLease::close_signal`]).
#[derive(Debug)]
pub struct CloseSignal(channel::Waker<Bytes, Shared>);

impl CloseSignal {
    /// Waits until the hub has closed the connection.
    pub async fn closed(&self) {
        let shared = self.0.extra();
        loop {
            // Made before the check: `notify_waiters` reaches a `Notified` from its creation.
            let notified = shared.notify.notified();
            if shared.closed.load(Ordering::Acquire) {
                return;
            }
            notified.await;
        }
    }
}

/// A new outbound queue holding at most `capacity` frames.
pub fn outbound(capacity: usize) -> (Outbound, OutboundReceiver) {
    let shared = Shared {
        closed: AtomicBool::new(false),
        binary: AtomicBool::new(false),
        notify: Notify::new(),
        last: Mutex::new(None),
        lease: Semaphore::new(1),
    };
    let (frames, receiver) = channel::bounded_with(capacity, shared);
    (Outbound { frames }, OutboundReceiver { frames: receiver })
}

impl Outbound {
    /// Queues `frame` without waiting.
    pub fn try_send(&self, frame: Bytes) -> Result<(), OutboundError> {
        if self.frames.extra().closed.load(Ordering::Acquire) {
            return Err(OutboundError::Closed);
        }
        self.frames.try_send(frame).map_err(|error| match error {
            channel::TrySendError::Full(_) => OutboundError::Full,
            channel::TrySendError::Closed(_) => OutboundError::Closed,
        })
    }

    /// Ends the connection from the hub's side: the transport sends what is queued, then
    /// closes (WebSocket close, end of the event stream, 204 to the next poll).
    pub fn close(&self) {
        let shared = self.frames.extra();
        shared.closed.store(true, Ordering::Release);
        shared.notify.notify_waiters();
        self.frames.wake_receiver();
    }

    /// Ends the connection like [`close`](Self::close), with `frame` sent after every queued
    /// frame even when the queue is full: how the hub tells a client that does not read fast
    /// enough why it is being closed.
    pub fn close_with(&self, frame: Bytes) {
        let shared = self.frames.extra();
        if let Ok(mut last) = shared.last.lock() {
            if !shared.closed.load(Ordering::Acquire) {
                *last = Some(frame);
            }
        }
        self.close();
    }

    /// Sets how frames must be carried from now on: the handshake is always text, and a
    /// binary protocol switches WebSocket frames to binary once it is agreed.
    pub fn set_transfer_format(&self, format: TransferFormat) {
        self.frames
            .extra()
            .binary
            .store(format == TransferFormat::Binary, Ordering::Release);
    }

    /// Whether [`close`](Self::close) was called or the transport side is gone.
    pub fn is_closed(&self) -> bool {
        self.frames.extra().closed.load(Ordering::Acquire) || self.frames.is_closed()
    }
}

impl OutboundReceiver {
    /// Waits until no other transport request takes frames, then takes them until the lease
    /// is dropped. Cancel-safe: a request that stops waiting leaves the queue as it was.
    pub async fn lease(&self) -> OutboundLease {
        let held = match self.frames.extra().lease.acquire().await {
            Ok(permit) => {
                permit.forget();
                true
            }
            Err(_closed) => false,
        };
        OutboundLease {
            frames: self.frames.taker(),
            held,
        }
    }
}

impl OutboundReceiver {
    /// The next frame to send (as [`OutboundLease::recv`]), for the receiver's owner when no
    /// one else takes from the queue (a [`ConnectionHandler`] test or a custom transport that
    /// keeps the receiver to itself).
    pub async fn recv(&mut self) -> Option<Bytes> {
        self.unleased().recv().await
    }

    /// As [`OutboundLease::try_recv`], for the receiver's owner (see [`recv`](Self::recv)).
    pub fn try_recv(&mut self) -> Option<Bytes> {
        self.unleased().try_recv()
    }

    /// As [`OutboundLease::clear`], for the receiver's owner (see [`recv`](Self::recv)).
    pub fn clear(&mut self) {
        self.unleased().clear();
    }

    /// As [`OutboundLease::transfer_format`].
    pub fn transfer_format(&self) -> TransferFormat {
        self.unleased().transfer_format()
    }

    /// The queue's frames without taking the lease's permit: for the owner's own use.
    fn unleased(&self) -> OutboundLease {
        OutboundLease {
            frames: self.frames.taker(),
            held: false,
        }
    }
}

impl Drop for OutboundLease {
    fn drop(&mut self) {
        if self.held {
            self.frames.extra().lease.add_permits(1);
        }
    }
}

impl OutboundLease {
    /// The next frame to send; `None` once the hub has closed the connection and every
    /// queued frame has been taken.
    pub async fn recv(&mut self) -> Option<Bytes> {
        let closed = || self.frames.extra().closed.load(Ordering::Acquire);
        let frame = self.frames.recv_unless(closed).await;
        match frame {
            Some(frame) => Some(frame),
            None => self
                .frames
                .extra()
                .last
                .lock()
                .ok()
                .and_then(|mut last| last.take()),
        }
    }

    /// A frame already queued, without waiting (for batching several into one write).
    pub fn try_recv(&mut self) -> Option<Bytes> {
        self.frames.try_recv()
    }

    /// Drops every queued frame (a lost transport's frames, before a reconnect's replay).
    pub fn clear(&mut self) {
        self.frames.clear();
    }

    /// Whether the hub has closed the connection.
    pub fn is_closed(&self) -> bool {
        self.frames.extra().closed.load(Ordering::Acquire)
    }

    /// A handle that tells when the hub closes the connection, usable while this lease is
    /// busy (a transport blocked writing to a client that does not read).
    pub fn close_signal(&self) -> CloseSignal {
        CloseSignal(self.frames.waker())
    }

    /// How frames must be carried now (see [`Outbound::set_transfer_format`]).
    pub fn transfer_format(&self) -> TransferFormat {
        if self.frames.extra().binary.load(Ordering::Acquire) {
            TransferFormat::Binary
        } else {
            TransferFormat::Text
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn frames_queued_before_close_are_delivered_then_none() {
        let (tx, rx) = outbound(4);
        tx.try_send(Bytes::from_static(b"a")).unwrap();
        tx.try_send(Bytes::from_static(b"b")).unwrap();
        tx.close();
        assert_eq!(
            tx.try_send(Bytes::from_static(b"c")),
            Err(OutboundError::Closed)
        );
        let mut lease = rx.lease().await;
        assert_eq!(lease.recv().await.as_deref(), Some(&b"a"[..]));
        assert_eq!(lease.recv().await.as_deref(), Some(&b"b"[..]));
        assert_eq!(lease.recv().await, None);
    }

    #[tokio::test]
    async fn a_full_queue_refuses_instead_of_growing() {
        let (tx, _rx) = outbound(1);
        tx.try_send(Bytes::from_static(b"a")).unwrap();
        assert_eq!(
            tx.try_send(Bytes::from_static(b"b")),
            Err(OutboundError::Full)
        );
    }

    #[tokio::test]
    async fn close_with_delivers_its_frame_last_even_when_full() {
        let (tx, rx) = outbound(1);
        tx.try_send(Bytes::from_static(b"a")).unwrap();
        tx.close_with(Bytes::from_static(b"bye"));
        let mut lease = rx.lease().await;
        assert_eq!(lease.recv().await.as_deref(), Some(&b"a"[..]));
        assert_eq!(lease.recv().await.as_deref(), Some(&b"bye"[..]));
        assert_eq!(lease.recv().await, None);
    }

    #[tokio::test]
    async fn close_wakes_a_waiting_receiver() {
        let (tx, rx) = outbound(1);
        let waiter = tokio::spawn(async move { rx.lease().await.recv().await });
        tokio::task::yield_now().await;
        tx.close();
        assert_eq!(waiter.await.unwrap(), None);
    }

    #[tokio::test]
    async fn one_lease_at_a_time_and_the_next_takes_over_where_it_stopped() {
        let (tx, rx) = outbound(4);
        tx.try_send(Bytes::from_static(b"a")).unwrap();
        tx.try_send(Bytes::from_static(b"b")).unwrap();
        let mut first = rx.lease().await;
        assert_eq!(first.try_recv().as_deref(), Some(&b"a"[..]));
        let waiting = tokio::time::timeout(std::time::Duration::from_millis(50), rx.lease());
        assert!(waiting.await.is_err(), "the queue is leased");
        drop(first);
        let mut second = tokio::time::timeout(std::time::Duration::from_secs(20), rx.lease())
            .await
            .expect("the lease was given back");
        assert_eq!(second.try_recv().as_deref(), Some(&b"b"[..]));
        assert_eq!(second.try_recv(), None);
    }
}
