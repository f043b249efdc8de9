//! What the threads of one event-loop server share: connection names ([`ConnId`]), the
//! commands a [`super::Sender`] queues for a worker ([`Command`]), and each worker's queues and
//! waker ([`Shared`]). A leaf: the workers, the senders and the callbacks' handles all use it,
//! and it uses none of them.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use mio::net::TcpStream;
use mio::Waker;
use sockway_proto::{CloseCode, Message, PreparedFrame};

/// A connection's name, valid across threads: its worker, its slot, and the slot's
/// generation, so that a message for a closed connection never reaches the one that later
/// takes its slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId {
    pub(super) worker: u16,
    pub(super) key: u32,
    pub(super) generation: u32,
}

/// What a [`Sender`](super::Sender) asks a worker to do.
#[derive(Debug)]
pub(super) enum Command {
    /// Send a message to one connection.
    Send(ConnId, Message),
    /// Start one connection's close handshake.
    Close(ConnId, CloseCode, String),
    /// Subscribe a connection to a topic.
    Subscribe(ConnId, Arc<str>),
    /// Unsubscribe a connection from a topic.
    Unsubscribe(ConnId, Arc<str>),
    /// Write a frame to every subscriber of a topic on the worker.
    Publish(Arc<str>, PreparedFrame),
}

/// What every worker of one server shares.
#[derive(Debug)]
pub(super) struct Shared {
    /// Connections open across all workers.
    pub(super) connections: AtomicUsize,
    /// Set once shutdown starts.
    pub(super) stopping: AtomicBool,
    /// One link per worker, by index.
    pub(super) workers: Vec<WorkerLink>,
}

/// How the other threads reach one worker.
#[derive(Debug)]
pub(super) struct WorkerLink {
    /// Connections this worker has, or has been dealt.
    pub(super) open: AtomicUsize,
    /// Connections dealt to it and not adopted yet.
    pub(super) inbox: Mutex<Vec<(TcpStream, SocketAddr)>>,
    /// Commands from [`super::Sender`]s for its connections.
    pub(super) commands: Mutex<Vec<Command>>,
    /// Wakes its poller.
    pub(super) waker: Waker,
}

impl Shared {
    /// Shared state for workers reached through `wakers`.
    pub(super) fn new(wakers: Vec<Waker>) -> Self {
        let workers = wakers
            .into_iter()
            .map(|waker| WorkerLink {
                open: AtomicUsize::new(0),
                inbox: Mutex::new(Vec::new()),
                commands: Mutex::new(Vec::new()),
                waker,
            })
            .collect();
        Self {
            connections: AtomicUsize::new(0),
            stopping: AtomicBool::new(false),
            workers,
        }
    }

    /// The worker with the fewest connections (the first of them on a tie).
    pub(super) fn least_loaded(&self) -> usize {
        (0..self.workers.len())
            .min_by_key(|&index| self.workers[index].open.load(Ordering::Relaxed))
            .unwrap_or(0)
    }
}

/// A queue's lock, even if a thread panicked while holding it (a `Vec` push cannot leave
/// it inconsistent).
pub(super) fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
