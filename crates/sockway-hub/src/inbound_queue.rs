//! The queue from a connection's transports to its hub loop, made only when a transport
//! needs it.
//!
//! Server-Sent Events, long polling and stateful-reconnect WebSockets hand what the client
//! sends to the hub's own task through this queue. A WebSocket without stateful reconnect
//! feeds the hub in its own loop (`transport/websocket.rs`) and never uses it, so making it
//! up front would cost each such idle connection the queue's shared state for nothing
//! (docs/benchmarks/hub.md, "Idle memory").

use std::sync::{Mutex, MutexGuard, PoisonError};

use crate::channel::{self, Receiver, Sender};
use crate::link::Inbound;

/// A connection's inbound queue, made on first use.
#[derive(Debug)]
pub(crate) struct InboundQueue {
    capacity: usize,
    ends: Mutex<Ends>,
}

#[derive(Debug, Default)]
struct Ends {
    /// The store's sender: transports get clones of it while the connection exists.
    sender: Option<Sender<Inbound>>,
    /// The hub's receiver, until the hub takes it.
    receiver: Option<Receiver<Inbound>>,
    /// The hub has taken the receiver.
    taken: bool,
    /// The connection was removed: no more senders.
    closed: bool,
}

impl InboundQueue {
    /// A queue of `capacity` events, not made yet.
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            capacity,
            ends: Mutex::new(Ends::default()),
        }
    }

    fn ends(&self) -> MutexGuard<'_, Ends> {
        self.ends.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A sender for a transport, while the connection exists (the queue is made now if it
    /// was not yet; what is sent waits for the hub to take the receiver).
    pub(crate) fn sender(&self) -> Option<Sender<Inbound>> {
        let mut ends = self.ends();
        if ends.closed {
            return None;
        }
        if ends.sender.is_none() {
            let (sender, receiver) = channel::bounded(self.capacity);
            ends.sender = Some(sender);
            ends.receiver = (!ends.taken).then_some(receiver);
        }
        ends.sender.clone()
    }

    /// The hub's receiver, once. After [`close`](Self::close) it is already closed, so a hub
    /// started for a connection that is gone ends at once.
    pub(crate) fn take_receiver(&self) -> Option<Receiver<Inbound>> {
        let mut ends = self.ends();
        if ends.taken {
            return None;
        }
        ends.taken = true;
        if let Some(receiver) = ends.receiver.take() {
            return Some(receiver);
        }
        let (sender, receiver) = channel::bounded(self.capacity);
        if !ends.closed {
            ends.sender = Some(sender);
        }
        Some(receiver)
    }

    /// No more senders: the hub's receiver sees the queue close once the transports' clones
    /// are gone too.
    pub(crate) fn close(&self) {
        let mut ends = self.ends();
        ends.closed = true;
        ends.sender = None;
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;

    #[tokio::test]
    async fn what_a_transport_sends_before_the_hub_starts_waits_for_it() {
        let queue = InboundQueue::new(4);
        let sender = queue.sender().expect("open");
        sender
            .send(Inbound::Data(Bytes::from_static(b"early")))
            .await
            .expect("queued");
        let mut receiver = queue.take_receiver().expect("first take");
        assert!(queue.take_receiver().is_none());
        assert!(matches!(receiver.recv().await, Some(Inbound::Data(data)) if data == "early"));
        drop(sender);
        queue.close();
        assert!(receiver.recv().await.is_none());
        assert!(queue.sender().is_none());
    }

    #[tokio::test]
    async fn a_hub_started_first_gets_what_transports_send_later() {
        let queue = InboundQueue::new(4);
        let mut receiver = queue.take_receiver().expect("first take");
        let sender = queue.sender().expect("open");
        sender.send(Inbound::Reconnected).await.expect("queued");
        assert!(matches!(receiver.recv().await, Some(Inbound::Reconnected)));
    }

    #[tokio::test]
    async fn a_hub_started_after_removal_sees_the_queue_closed() {
        let queue = InboundQueue::new(4);
        queue.close();
        assert!(queue.sender().is_none());
        let mut receiver = queue.take_receiver().expect("first take");
        assert!(receiver.recv().await.is_none());
    }
}
