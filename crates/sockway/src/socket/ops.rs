//! The operations shared by [`super::WebSocket`] and its split halves, written once against
//! [`EngineAccess`]: direct access for the whole socket, a lock for the halves.

use std::future::poll_fn;
use std::task::Context;

use sockway_proto::{Connection, SendError};
use tokio::io::{AsyncRead, AsyncWrite};

use super::engine::Engine;
use crate::error::Error;

/// Runs a closure on the engine with a context that will wake this side.
pub(crate) trait EngineAccess<S: AsyncRead + AsyncWrite + Unpin> {
    /// Calls `f` with the engine and a context for this side's task.
    fn with_engine<R>(
        &mut self,
        cx: &mut Context<'_>,
        f: impl FnOnce(&mut Engine<S>, &mut Context<'_>) -> R,
    ) -> R;

    /// Calls `f` with the engine, for work that never waits.
    fn engine<R>(&mut self, f: impl FnOnce(&mut Engine<S>) -> R) -> R;
}

/// What a queued operation sends, for the statistics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Sends {
    /// A whole message or the final part of one.
    MessageEnd,
    /// A part of a message, or a control frame.
    Other,
}

/// Waits for room, then lets `op` queue frames.
pub(crate) async fn queue<S, A>(
    access: &mut A,
    sends: Sends,
    op: impl FnOnce(&mut Connection) -> Result<(), SendError>,
) -> Result<(), Error>
where
    S: AsyncRead + AsyncWrite + Unpin,
    A: EngineAccess<S>,
{
    poll_fn(|cx| access.with_engine(cx, |engine, cx| engine.poll_send_ready(cx))).await?;
    access.engine(|engine| {
        op(&mut engine.conn)?;
        if sends == Sends::MessageEnd {
            engine.stats.messages_sent += 1;
        }
        Ok(())
    })
}

/// Writes everything queued.
pub(crate) async fn flush<S, A>(access: &mut A) -> Result<(), Error>
where
    S: AsyncRead + AsyncWrite + Unpin,
    A: EngineAccess<S>,
{
    poll_fn(|cx| access.with_engine(cx, |engine, cx| engine.poll_flush(cx))).await
}

/// Queues with `op`, then flushes.
pub(crate) async fn send<S, A>(
    access: &mut A,
    sends: Sends,
    op: impl FnOnce(&mut Connection) -> Result<(), SendError>,
) -> Result<(), Error>
where
    S: AsyncRead + AsyncWrite + Unpin,
    A: EngineAccess<S>,
{
    queue(access, sends, op).await?;
    flush(access).await
}
