//! Reaching a connection from outside its callbacks: [`ConnId`] names it across threads, and
//! a [`Sender`] queues messages or a close for it on its worker, waking the worker once per
//! batch. This is how one connection's message reaches connections on other workers
//! (broadcast, rooms) and how other threads push to clients. [`Sender::publish`] reaches
//! every subscriber of a topic with one command per worker (see the `topics` module).

use std::sync::atomic::Ordering;
use std::sync::Arc;

use sockway_proto::{CloseCode, Message, PreparedFrame};

use super::shared::{lock, Command, ConnId, Shared};

/// Most commands waiting for one worker; beyond it [`Sender::send`] refuses with
/// [`SendRefused::Full`], so a producer faster than the worker cannot grow memory.
pub(super) const MAX_QUEUED: usize = 64 * 1024;

/// Why a [`Sender`] did not queue a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SendRefused {
    /// The server is shutting down.
    #[error("the server is shutting down")]
    Stopped,
    /// The connection's worker has 65,536 commands waiting already.
    #[error("the worker's queue is full")]
    Full,
    /// The id names no worker of this server.
    #[error("no such connection")]
    Unknown,
}

/// Queues messages for connections of one server from any thread (cheap to clone).
///
/// Delivery is in order per sender and connection. A message for a connection that has
/// closed is dropped; so is one for a connection whose unsent output is over
/// [`crate::WebSocketConfig::write_buffer_limit`] when it is delivered (a consumer too slow
/// for what is pushed to it does not grow the server's memory; check
/// [`super::Conn::buffered`] in its callbacks to slow the producer instead).
#[derive(Debug, Clone)]
pub struct Sender {
    pub(super) shared: Arc<Shared>,
}

impl Sender {
    /// Queues `message` for connection `id`.
    pub fn send(&self, id: ConnId, message: Message) -> Result<(), SendRefused> {
        self.queue(id.worker, Command::Send(id, message))
    }

    /// Queues the start of the close handshake for connection `id` (RFC 6455 section 7.1.2).
    pub fn close(&self, id: ConnId, code: CloseCode, reason: &str) -> Result<(), SendRefused> {
        self.queue(id.worker, Command::Close(id, code, reason.to_owned()))
    }

    /// Queues subscribing connection `id` to `topic` (from its callbacks,
    /// [`super::Conn::subscribe`] does it at once and says whether it was refused). A
    /// subscription over [`super::EventLoopOptions::max_subscriptions`] is dropped.
    pub fn subscribe(&self, id: ConnId, topic: &str) -> Result<(), SendRefused> {
        self.queue(id.worker, Command::Subscribe(id, Arc::from(topic)))
    }

    /// Queues unsubscribing connection `id` from `topic`.
    pub fn unsubscribe(&self, id: ConnId, topic: &str) -> Result<(), SendRefused> {
        self.queue(id.worker, Command::Unsubscribe(id, Arc::from(topic)))
    }

    /// Sends `message` to every connection subscribed to `topic`: framed once, one command
    /// per worker, and the same bytes written to each subscriber (uWebSockets' `publish`).
    /// A subscriber whose unsent output is over
    /// [`crate::WebSocketConfig::write_buffer_limit`] misses it, so one slow client never
    /// holds up the others or grows the server's memory. [`SendRefused::Full`] when a
    /// worker's queue was full: that worker's subscribers miss this message.
    pub fn publish(&self, topic: &str, message: &Message) -> Result<(), SendRefused> {
        self.publish_prepared(topic, &PreparedFrame::new(message), None)
    }

    /// [`Sender::publish`] of a frame prepared already, to every worker but `skip`.
    pub(super) fn publish_prepared(
        &self,
        topic: &str,
        frame: &PreparedFrame,
        skip: Option<u16>,
    ) -> Result<(), SendRefused> {
        let name: Arc<str> = Arc::from(topic);
        let mut outcome = Ok(());
        for worker in 0..self.shared.workers.len() {
            let worker = worker as u16;
            if Some(worker) == skip {
                continue;
            }
            let queued = self.queue(worker, Command::Publish(Arc::clone(&name), frame.clone()));
            if let Err(refused) = queued {
                if refused == SendRefused::Stopped {
                    return Err(refused);
                }
                outcome = Err(refused);
            }
        }
        outcome
    }

    fn queue(&self, worker: u16, command: Command) -> Result<(), SendRefused> {
        let link = self
            .shared
            .workers
            .get(usize::from(worker))
            .ok_or(SendRefused::Unknown)?;
        if self.shared.stopping.load(Ordering::Acquire) {
            return Err(SendRefused::Stopped);
        }
        let mut queue = lock(&link.commands);
        if queue.len() >= MAX_QUEUED {
            return Err(SendRefused::Full);
        }
        // One wake per batch: a queue that was not empty has a wake on its way already (the
        // worker empties the queue in one take, after that wake).
        let wake = queue.is_empty();
        queue.push(command);
        drop(queue);
        if wake {
            let _ = link.waker.wake();
        }
        Ok(())
    }
}
