//! The hub's side of a connection whose transport runs the message loop itself: a WebSocket
//! without stateful reconnect (`transport::websocket`). The socket's loop hands each message
//! it reads to [`Session::received`], calls [`Session::tick`] at each tick of the runtime's
//! shared [`Ticker`](super::Ticker), and writes what the hub queues; there is no queue of
//! inbound events and no second future with its own waits (docs/benchmarks/hub.md, "Idle memory",
//! change 12). Everything else (the handshake, the hooks, the routing layer, the timers'
//! rules) is the same as in [`Connection::run`](super::Connection).

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use futures_util::FutureExt as _;

use super::{answer, Connection, End};
use crate::link::{ConnectionInfo, Outbound};
use crate::Hub;

/// Why the hub's side of a [`Session`] must end (see [`Session::end`]).
pub(crate) struct Stop(End);

impl Stop {
    /// The client is gone: its socket closed or broke, or the connection was removed.
    pub(crate) const LEFT: Stop = Stop(End::Left);
    /// The hub's queue for the client was closed (by the hub, a slow-client rule, or the
    /// connection store).
    pub(crate) const CLOSED: Stop = Stop(End::Closed);
}

/// The hub's state of one connection driven by its transport's loop.
pub(crate) struct Session {
    phase: Phase,
}

enum Phase {
    /// Waiting for the client's handshake request.
    Handshake(Handshaking),
    /// The handshake was agreed: the message loop's state.
    Open(Connection),
    /// The hub's side has ended.
    Ended,
}

/// What the handshake needs until it is agreed.
struct Handshaking {
    hub: Hub,
    info: Arc<ConnectionInfo>,
    outbound: Outbound,
    buffer: BytesMut,
    /// The handshake timeout's deadline (checked at each tick).
    deadline: Instant,
}

impl Session {
    /// A session of `hub` for the connection `info` describes, writing into `outbound`.
    pub(crate) fn new(hub: &Hub, info: ConnectionInfo, outbound: Outbound) -> Self {
        let deadline = Instant::now() + hub.inner.options.handshake_timeout;
        Session {
            phase: Phase::Handshake(Handshaking {
                hub: hub.clone(),
                info: Arc::new(info),
                outbound,
                buffer: BytesMut::new(),
                deadline,
            }),
        }
    }

    /// How often [`tick`](Self::tick) must be called: the hub's housekeeping period.
    pub(crate) fn tick_period(hub: &Hub) -> Duration {
        hub.inner.options.tick(false)
    }

    /// Whether the hub's side still runs.
    pub(crate) fn is_open(&self) -> bool {
        !matches!(self.phase, Phase::Ended)
    }

    /// Handles a message the client sent: the handshake first (then the `on_connected`
    /// hook), then its hub messages. It may wait (a hook, an invocation waiting for a free
    /// slot, a full upload stream); the transport keeps writing meanwhile. A panic in the
    /// hub's code ends the connection as if the client had left.
    pub(crate) fn received(
        &mut self,
        data: Bytes,
    ) -> impl Future<Output = Result<(), Stop>> + Send + '_ {
        AssertUnwindSafe(self.receive(data))
            .catch_unwind()
            .map(|outcome| {
                outcome.unwrap_or_else(|_| {
                    tracing::error!("the hub panicked handling a message");
                    Err(Stop::LEFT)
                })
            })
    }

    async fn receive(&mut self, data: Bytes) -> Result<(), Stop> {
        let pending = match &mut self.phase {
            Phase::Open(connection) => {
                connection.last_received = Instant::now();
                connection.buffer.extend_from_slice(&data);
                return connection.process().await.map_err(Stop);
            }
            Phase::Ended => return Ok(()),
            Phase::Handshake(pending) => pending,
        };
        pending.buffer.extend_from_slice(&data);
        let (hub, info, outbound) = (&pending.hub, &pending.info, &pending.outbound);
        let agreed = match answer(hub, info, outbound, &mut pending.buffer) {
            None => return Ok(()),
            Some(None) => return Err(Stop::LEFT),
            Some(Some(agreed)) => agreed,
        };
        let Phase::Handshake(pending) = std::mem::replace(&mut self.phase, Phase::Ended) else {
            return Ok(());
        };
        let Handshaking {
            hub,
            info,
            outbound,
            buffer,
            ..
        } = pending;
        self.phase = Phase::Open(Connection::new(hub, info, outbound, None, agreed, buffer));
        let Phase::Open(connection) = &mut self.phase else {
            return Ok(());
        };
        connection.start().await.map_err(Stop)?;
        connection.process().await.map_err(Stop)
    }

    /// The timers, at a tick: the handshake timeout, then the keep-alive `Ping` and the
    /// client timeout.
    pub(crate) fn tick(&mut self) -> Result<(), Stop> {
        match &mut self.phase {
            Phase::Handshake(pending) if Instant::now() >= pending.deadline => {
                tracing::debug!(connection = %pending.info.connection_id, "handshake timed out");
                Err(Stop::LEFT)
            }
            Phase::Open(connection) => connection.housekeeping(true).map_err(Stop),
            Phase::Handshake(_) | Phase::Ended => Ok(()),
        }
    }

    /// Ends the hub's side now, the way `stop` says (a `Close` with its error, or none): what
    /// is queued for the client is then all it gets. Returns what is left to run (the
    /// routing layer and the `on_disconnected` hook), for the transport to run beside its
    /// last writes; `None` when the handshake was never agreed (no hook ran, none runs).
    pub(crate) fn end(&mut self, stop: Stop) -> Option<impl Future<Output = ()> + Send + 'static> {
        match std::mem::replace(&mut self.phase, Phase::Ended) {
            Phase::Handshake(pending) => {
                pending.outbound.close();
                None
            }
            Phase::Ended => None,
            Phase::Open(mut connection) => {
                let error = connection.close(stop.0);
                Some(async move { connection.disconnected(error).await })
            }
        }
    }
}
