//! The operations shared by [`super::WebSocket`] and its split halves, written once against
//! [`EngineAccess`]: direct access for the whole socket, a lock for the halves.

use std::future::{poll_fn, Future};
use std::marker::PhantomData;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use sockway_proto::{Connection, Message, SendError};
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

/// Waits for room, lets `op` queue frames, and then, for a send, writes everything queued.
///
/// Written by hand rather than as an `async fn` so that it holds only the socket reference
/// and the pending operation (an `async fn` keeps its arguments twice and each nested
/// future's state besides): a handler parked in a send, or holding one in `select!`, stays
/// small. Dropped before the room came, it queued nothing; after, the whole message.
pub(crate) struct Queue<'a, S, A, F> {
    access: &'a mut A,
    op: Option<F>,
    sends: Sends,
    flush: bool,
    stream: PhantomData<fn() -> S>,
}

/// Queues with `op` once there is room; writes only when the queue is past its limit.
pub(crate) fn queue<S, A, F>(access: &mut A, sends: Sends, op: F) -> Queue<'_, S, A, F>
where
    F: FnOnce(&mut Connection) -> Result<(), SendError>,
{
    Queue {
        access,
        op: Some(op),
        sends,
        flush: false,
        stream: PhantomData,
    }
}

/// Queues with `op`, then flushes.
pub(crate) fn send<S, A, F>(access: &mut A, sends: Sends, op: F) -> Queue<'_, S, A, F>
where
    F: FnOnce(&mut Connection) -> Result<(), SendError>,
{
    Queue {
        flush: true,
        ..queue(access, sends, op)
    }
}

impl<S, A, F> Future for Queue<'_, S, A, F>
where
    S: AsyncRead + AsyncWrite + Unpin,
    A: EngineAccess<S>,
    F: FnOnce(&mut Connection) -> Result<(), SendError> + Unpin,
{
    type Output = Result<(), Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        if this.op.is_some() {
            ready!(this
                .access
                .with_engine(cx, |engine, cx| engine.poll_send_ready(cx)))?;
            if let Some(op) = this.op.take() {
                let sends = this.sends;
                this.access.engine(|engine| {
                    op(&mut engine.conn)?;
                    if sends == Sends::MessageEnd {
                        engine.stats.messages_sent += 1;
                    }
                    Ok::<(), Error>(())
                })?;
            }
        }
        if this.flush {
            this.access
                .with_engine(cx, |engine, cx| engine.poll_flush(cx))
        } else {
            Poll::Ready(Ok(()))
        }
    }
}

/// Sends a whole message ([`Engine::send_message`]: written straight to the transport when
/// nothing is queued) once there is room, then flushes. Like [`Queue`], written by hand to
/// hold only the socket reference and the message; dropped before the room came, it sent
/// nothing; after, the whole message.
pub(crate) struct SendMessage<'a, S, A> {
    access: &'a mut A,
    message: Option<Message>,
    stream: PhantomData<fn() -> S>,
}

/// Sends `message` and flushes.
pub(crate) fn send_message<S, A>(access: &mut A, message: Message) -> SendMessage<'_, S, A> {
    SendMessage {
        access,
        message: Some(message),
        stream: PhantomData,
    }
}

impl<S, A> Future for SendMessage<'_, S, A>
where
    S: AsyncRead + AsyncWrite + Unpin,
    A: EngineAccess<S>,
{
    type Output = Result<(), Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        if let Some(message) = this.message.take() {
            let ready = this.access.with_engine(cx, |engine, cx| {
                let ready = engine.poll_send_ready(cx);
                if let Poll::Ready(Ok(())) = ready {
                    return Poll::Ready(engine.send_message(cx, &message));
                }
                ready
            });
            match ready {
                Poll::Pending => {
                    this.message = Some(message);
                    return Poll::Pending;
                }
                Poll::Ready(result) => result?,
            }
        }
        this.access
            .with_engine(cx, |engine, cx| engine.poll_flush(cx))
    }
}

/// Writes everything queued.
pub(crate) fn flush<S, A>(access: &mut A) -> impl Future<Output = Result<(), Error>> + '_
where
    S: AsyncRead + AsyncWrite + Unpin,
    A: EngineAccess<S>,
{
    poll_fn(|cx| access.with_engine(cx, |engine, cx| engine.poll_flush(cx)))
}
