//! Reaching a connection from outside its callbacks: [`ConnId`] names it across threads, and
//! a [`Sender`] queues messages or a close for it on its worker, waking the worker once per
//! batch. This is how one connection's message reaches connections on other workers
//! (broadcast, rooms) and how other threads push to clients.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use sockway_proto::{CloseCode, Message};

use super::worker::{lock, Shared};

/// Most commands waiting for one worker; beyond it [`Sender::send`] refuses with
/// [`SendRefused::Full`], so a producer faster than the worker cannot grow memory.
pub(super) const MAX_QUEUED: usize = 64 * 1024;

/// A connection's name, valid across threads: its worker, its slot, and the slot's
/// generation, so that a message for a closed connection never reaches the one that later
/// takes its slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId {
    pub(super) worker: u16,
    pub(super) key: u32,
    pub(super) generation: u32,
}

/// What a [`Sender`] asks a worker to do.
#[derive(Debug)]
pub(super) enum Command {
    Send(Message),
    Close(CloseCode, String),
}

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
        self.queue(id, Command::Send(message))
    }

    /// Queues the start of the close handshake for connection `id` (RFC 6455 section 7.1.2).
    pub fn close(&self, id: ConnId, code: CloseCode, reason: &str) -> Result<(), SendRefused> {
        self.queue(id, Command::Close(code, reason.to_owned()))
    }

    fn queue(&self, id: ConnId, command: Command) -> Result<(), SendRefused> {
        let link = self
            .shared
            .workers
            .get(usize::from(id.worker))
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
        queue.push((id, command));
        drop(queue);
        if wake {
            let _ = link.waker.wake();
        }
        Ok(())
    }
}
