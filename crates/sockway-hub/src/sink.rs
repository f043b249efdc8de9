//! One connection's writing side: every message to the client goes through here, so keep-alive
//! timing, the slow-client rule and stateful reconnect's numbering see all of them.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Instant;

use bytes::Bytes;
use tokio::sync::Notify;

use crate::channel::Waker;
use crate::link::{ConnectionInfo, Inbound, Outbound, OutboundError};
use crate::protocol::{Close, HubMessage, Outgoing, Protocol};
use crate::replay::Replay;
use crate::serialized::{encode, SerializedMessage};

/// Why a message could not be sent to a connection.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// The connection has ended (perhaps just now, for being too slow).
    #[error("the connection has ended")]
    Closed,
    /// The message could not be encoded in the connection's protocol.
    #[error("{0}")]
    Encode(String),
}

/// The writing side of one connection, shared by its own tasks and the routing layer.
#[derive(Debug)]
pub struct ConnectionSink {
    /// Who: the connection's id and user (shared with the hub's contexts, not copied).
    info: Arc<ConnectionInfo>,
    protocol: Protocol,
    outbound: Outbound,
    /// Wakes the connection's message loop when the sink closes.
    wake_loop: Option<Waker<Inbound>>,
    /// Boxed: most connections have no stateful reconnect, and the state inline would cost
    /// each of them some 100 bytes (docs/benchmarks/hub.md, "Idle memory").
    replay: Option<Box<Mutex<Replay>>>,
    /// Wakes senders waiting for room in the replay buffer, and the connection's loop when the
    /// sink closes.
    changed: Notify,
    closed: AtomicBool,
    /// Whether a frame was queued since the last keep-alive check ([`Self::idle_for`]).
    written: AtomicBool,
    /// Keep-alive's estimate of the last frame queued, in [`millis`]: the check before the
    /// one that found it queued, so it is never later than the frame. Writes set `written`
    /// and read no clock (a clock reading per frame was 1 % of a broadcast's CPU); the
    /// check reads it once per tick.
    last_write: AtomicU64,
    /// When the last keep-alive check ran, in [`millis`].
    last_check: AtomicU64,
}

impl ConnectionSink {
    /// A sink writing `protocol` into `outbound`; `replay_limit` is set when the connection
    /// uses stateful reconnect.
    pub(crate) fn new(
        info: Arc<ConnectionInfo>,
        protocol: Protocol,
        outbound: Outbound,
        wake_loop: Option<Waker<Inbound>>,
        replay_limit: Option<usize>,
    ) -> Self {
        ConnectionSink {
            info,
            protocol,
            outbound,
            wake_loop,
            replay: replay_limit.map(|limit| Box::new(Mutex::new(Replay::new(limit)))),
            changed: Notify::new(),
            closed: AtomicBool::new(false),
            written: AtomicBool::new(false),
            last_write: AtomicU64::new(millis()),
            last_check: AtomicU64::new(millis()),
        }
    }

    /// The connection's id.
    pub fn connection_id(&self) -> &str {
        &self.info.connection_id
    }

    /// The connection's user, if authenticated.
    pub fn user(&self) -> Option<&str> {
        self.info.user.as_deref()
    }

    /// The protocol the connection speaks.
    pub fn protocol(&self) -> Protocol {
        self.protocol
    }

    /// Whether the connection has ended.
    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire) || self.outbound.is_closed()
    }

    /// Sends a message shared with other connections, without waiting: a connection that
    /// cannot take it now (its queue full, or its replay buffer full) is closed with a `Close`
    /// saying why, so it never holds up the sender or the other recipients.
    pub fn send_shared(&self, message: &SerializedMessage) -> Result<(), SendError> {
        let frame = message
            .encoded(self.protocol)
            .map_err(|error| SendError::Encode(error.0))?;
        self.write(frame, message.is_trackable(), false)
    }

    /// Sends one of the connection's own messages (a completion, a stream item): with
    /// stateful reconnect it waits while the replay buffer is full, as the reference's
    /// `MessageBuffer` does, until the client acknowledges or the connection ends.
    pub(crate) async fn send_own(&self, message: &Outgoing) -> Result<(), SendError> {
        let frame = encode(self.protocol, message).map_err(|error| SendError::Encode(error.0))?;
        let trackable = crate::serialized::is_trackable(message);
        if trackable && self.replay.is_some() {
            loop {
                let notified = self.changed.notified();
                if self.is_closed() {
                    return Err(SendError::Closed);
                }
                if !self.replay_state().is_some_and(|replay| replay.is_full()) {
                    break;
                }
                notified.await;
            }
        }
        self.write(frame, trackable, true)
    }

    /// Sends a message that is not trackable (Ping, Ack, Sequence) without waiting.
    pub(crate) fn send_control(&self, message: &Outgoing) -> Result<(), SendError> {
        let frame = encode(self.protocol, message).map_err(|error| SendError::Encode(error.0))?;
        self.write(frame, false, true)
    }

    fn write(&self, frame: Bytes, trackable: bool, own: bool) -> Result<(), SendError> {
        if self.is_closed() {
            return Err(SendError::Closed);
        }
        if let Some(mut replay) = self.replay_state() {
            if !trackable {
                return match self.outbound.try_send(frame) {
                    Ok(()) => {
                        self.wrote();
                        Ok(())
                    }
                    Err(OutboundError::Full) => Ok(()),
                    Err(OutboundError::Closed) => Err(self.ended()),
                };
            }
            if replay.is_full() && !own {
                drop(replay);
                self.close_with_error(
                    "Connection closed: the client did not acknowledge messages fast enough \
                     (the stateful reconnect buffer is full).",
                );
                return Err(SendError::Closed);
            }
            replay.push(frame);
            return self.flush_locked(&mut replay);
        }
        match self.outbound.try_send(frame) {
            Ok(()) => {
                self.wrote();
                Ok(())
            }
            Err(OutboundError::Full) => {
                self.close_with_error(
                    "Connection closed: the client did not read its messages fast enough \
                     (its send queue is full).",
                );
                Err(SendError::Closed)
            }
            Err(OutboundError::Closed) => Err(self.ended()),
        }
    }

    /// With stateful reconnect, queues kept messages the transport has not had yet, in order,
    /// as far as the queue has room (the rest wait for the next flush).
    pub(crate) fn flush(&self) -> Result<(), SendError> {
        match self.replay_state() {
            Some(mut replay) => self.flush_locked(&mut replay),
            None => Ok(()),
        }
    }

    fn flush_locked(&self, replay: &mut Replay) -> Result<(), SendError> {
        let mut written = None;
        let mut result = Ok(());
        for (id, frame) in replay.unwritten() {
            match self.outbound.try_send(frame.clone()) {
                Ok(()) => written = Some(*id),
                Err(OutboundError::Full) => break,
                Err(OutboundError::Closed) => {
                    result = Err(SendError::Closed);
                    break;
                }
            }
        }
        if let Some(id) = written {
            replay.written(id);
            self.wrote();
        }
        if result.is_err() {
            return Err(self.ended());
        }
        Ok(())
    }

    /// The client acknowledged every message up to `id`.
    pub(crate) fn ack(&self, id: u64) {
        if let Some(mut replay) = self.replay_state() {
            replay.ack(id);
        }
        self.changed.notify_waiters();
    }

    /// A new transport took over: sends `Sequence` and replays what is not acknowledged.
    pub(crate) fn reconnected(&self) -> Result<(), SendError> {
        let Some(mut replay) = self.replay_state() else {
            return Ok(());
        };
        let sequence_id = replay.reconnected();
        let frame = encode(self.protocol, &HubMessage::Sequence { sequence_id })
            .map_err(|error| SendError::Encode(error.0))?;
        match self.outbound.try_send(frame) {
            Ok(()) | Err(OutboundError::Full) => {}
            Err(OutboundError::Closed) => return Err(self.ended()),
        }
        self.flush_locked(&mut replay)
    }

    /// The replay state, with stateful reconnect.
    pub(crate) fn replay_state(&self) -> Option<MutexGuard<'_, Replay>> {
        self.replay.as_ref().map(|replay| {
            replay
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
        })
    }

    /// Whether nothing was queued for the client during the last `idle_ms` milliseconds,
    /// as far as the connection's keep-alive checks can tell (it runs them, one at a time,
    /// on its housekeeping tick): never while a frame was queued since the last check, and
    /// afterwards counting from that check, so a ping comes at most one tick early.
    pub(crate) fn idle_for(&self, idle_ms: u64) -> bool {
        let now = millis();
        let previous = self.last_check.swap(now, Ordering::Relaxed);
        if self.written.swap(false, Ordering::Relaxed) {
            self.last_write.store(previous, Ordering::Relaxed);
            return false;
        }
        now.saturating_sub(self.last_write.load(Ordering::Relaxed)) >= idle_ms
    }

    fn wrote(&self) {
        // Read first: a broadcast's later frames find it set and leave the line clean.
        if !self.written.load(Ordering::Relaxed) {
            self.written.store(true, Ordering::Relaxed);
        }
    }

    /// Ends the connection with a `Close` carrying `error`, delivered after what is queued
    /// even when the queue is full.
    pub(crate) fn close_with_error(&self, error: &str) {
        self.close(error, false);
    }

    /// Ends the connection like [`close_with_error`](Self::close_with_error), with
    /// `allowReconnect: true`: the client may connect again (a client timeout).
    pub(crate) fn close_allowing_reconnect(&self, error: &str) {
        self.close(error, true);
    }

    fn close(&self, error: &str, allow_reconnect: bool) {
        let close = HubMessage::Close(Close {
            error: Some(error.to_owned()),
            allow_reconnect,
        });
        self.finish(encode(self.protocol, &close).ok());
    }

    /// Ends the connection without a `Close` (the client is gone, or ended it).
    pub(crate) fn abort(&self) {
        self.finish(None);
    }

    fn finish(&self, frame: Option<Bytes>) {
        if self.closed.swap(true, Ordering::AcqRel) {
            return;
        }
        match frame {
            Some(frame) => self.outbound.close_with(frame),
            None => self.outbound.close(),
        }
        self.changed.notify_waiters();
        if let Some(waker) = &self.wake_loop {
            waker.wake();
        }
    }

    fn ended(&self) -> SendError {
        self.finish(None);
        SendError::Closed
    }

    /// Resolves once the sink has closed (for the connection's loop).
    pub(crate) async fn closed(&self) {
        loop {
            let notified = self.changed.notified();
            if self.is_closed() {
                return;
            }
            notified.await;
        }
    }
}

/// Milliseconds since the first call in this process: keep-alive's clock.
fn millis() -> u64 {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    EPOCH.get_or_init(Instant::now).elapsed().as_millis() as u64
}
