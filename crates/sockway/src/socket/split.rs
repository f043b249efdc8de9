//! A reader and a writer over one socket, for two tasks. Both share the engine behind a mutex
//! that is held only while polling (never across an await). A transport keeps one waker per
//! direction, and both halves may write (the reader writes pongs and close replies), so every
//! poll uses a waker that wakes both halves: a wake-up is never lost, at worst one is spare.

use std::future::{poll_fn, Future};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Wake, Waker};

use futures_util::task::AtomicWaker;
use sockway_proto::{CloseCode, Message, MessageKind, PreparedFrame};
use tokio::io::{AsyncRead, AsyncWrite};

use super::engine::{Engine, Stats};
use super::ops::{self, EngineAccess, Sends};
use super::recv::{Leftover, ReceiveResult};
use crate::error::{CloseInfo, Error};

/// The wakers of both halves; waking it wakes both.
#[derive(Debug, Default)]
struct Wakers {
    reader: AtomicWaker,
    writer: AtomicWaker,
}

impl Wake for Wakers {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.reader.wake();
        self.writer.wake();
    }
}

#[derive(Debug)]
struct Shared<S: AsyncRead + AsyncWrite + Unpin> {
    engine: Mutex<Engine<S>>,
    wakers: Arc<Wakers>,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Shared<S> {
    fn poll_with<R>(
        &self,
        cx: &mut Context<'_>,
        is_reader: bool,
        f: impl FnOnce(&mut Engine<S>, &mut Context<'_>) -> R,
    ) -> R {
        let slot = if is_reader {
            &self.wakers.reader
        } else {
            &self.wakers.writer
        };
        slot.register(cx.waker());
        let waker = Waker::from(self.wakers.clone());
        let mut both = Context::from_waker(&waker);
        f(&mut self.lock(), &mut both)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Engine<S>> {
        self.engine.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The receiving half of a split [`super::WebSocket`]. It also answers pings and close frames.
#[derive(Debug)]
pub struct WebSocketReader<S: AsyncRead + AsyncWrite + Unpin> {
    shared: Arc<Shared<S>>,
    leftover: Leftover,
}

/// The sending half of a split [`super::WebSocket`].
#[derive(Debug)]
pub struct WebSocketWriter<S: AsyncRead + AsyncWrite + Unpin> {
    shared: Arc<Shared<S>>,
}

pub(super) fn split<S: AsyncRead + AsyncWrite + Unpin>(
    engine: Engine<S>,
    leftover: Leftover,
) -> (WebSocketReader<S>, WebSocketWriter<S>) {
    let shared = Arc::new(Shared {
        engine: Mutex::new(engine),
        wakers: Arc::default(),
    });
    (
        WebSocketReader {
            shared: shared.clone(),
            leftover,
        },
        WebSocketWriter { shared },
    )
}

impl<S: AsyncRead + AsyncWrite + Unpin> EngineAccess<S> for WebSocketWriter<S> {
    fn with_engine<R>(
        &mut self,
        cx: &mut Context<'_>,
        f: impl FnOnce(&mut Engine<S>, &mut Context<'_>) -> R,
    ) -> R {
        self.shared.poll_with(cx, false, f)
    }

    fn engine<R>(&mut self, f: impl FnOnce(&mut Engine<S>) -> R) -> R {
        f(&mut self.shared.lock())
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> WebSocketReader<S> {
    /// The next whole message; `Ok(None)` after a clean close. Cancel-safe. Fails with
    /// [`Error::PartlyReceived`] in the middle of a message partly read with `receive` (see
    /// [`super::WebSocket::recv`]).
    pub fn recv(&mut self) -> impl Future<Output = Result<Option<Message>, Error>> + '_ {
        poll_fn(|cx| self.poll_recv(cx))
    }

    /// Polls for the next whole message.
    pub fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Result<Option<Message>, Error>> {
        let Self { shared, leftover } = self;
        shared.poll_with(cx, true, |engine, cx| engine.poll_recv(cx, leftover))
    }

    /// Copies the next bytes of the current message into `buf` (see
    /// [`super::WebSocket::receive`]). Cancel-safe.
    pub async fn receive(&mut self, buf: &mut [u8]) -> Result<ReceiveResult, Error> {
        let Self { shared, leftover } = self;
        poll_fn(|cx| {
            shared.poll_with(cx, true, |engine, cx| {
                engine.poll_receive(cx, leftover, buf)
            })
        })
        .await
    }

    /// Polls for the next bytes of the current message, as [`Self::receive`] does (for
    /// `AsyncRead` adapters such as the client's stream socket).
    pub fn poll_receive(
        &mut self,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<Result<ReceiveResult, Error>> {
        let Self { shared, leftover } = self;
        shared.poll_with(cx, true, |engine, cx| {
            engine.poll_receive(cx, leftover, buf)
        })
    }

    /// How the connection ended, once it has.
    pub fn close_info(&self) -> Option<CloseInfo> {
        self.shared.lock().close_info()
    }

    /// Whether `writer` is this reader's other half.
    pub fn is_pair_of(&self, writer: &WebSocketWriter<S>) -> bool {
        Arc::ptr_eq(&self.shared, &writer.shared)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> WebSocketWriter<S> {
    /// Sends a whole message and waits until it is written.
    pub fn send(
        &mut self,
        message: impl Into<Message>,
    ) -> impl Future<Output = Result<(), Error>> + '_ {
        ops::send_message(self, message.into())
    }

    /// Sends a whole message, choosing whether it may be compressed.
    pub fn send_with(
        &mut self,
        message: impl Into<Message>,
        compression: sockway_proto::connection::Compression,
    ) -> impl Future<Output = Result<(), Error>> + '_ {
        let message = message.into();
        ops::send(self, Sends::MessageEnd, move |conn| {
            conn.send_with(&message, compression)
        })
    }

    /// Sends part of a message.
    pub async fn send_fragment(
        &mut self,
        kind: MessageKind,
        data: &[u8],
        end_of_message: bool,
    ) -> Result<(), Error> {
        let sends = if end_of_message {
            Sends::MessageEnd
        } else {
            Sends::Other
        };
        ops::send(self, sends, |conn| {
            conn.send_fragment(kind, data, end_of_message)
        })
        .await
    }

    /// Queues a message without flushing.
    pub fn feed(
        &mut self,
        message: impl Into<Message>,
    ) -> impl Future<Output = Result<(), Error>> + '_ {
        let message = message.into();
        ops::queue(self, Sends::MessageEnd, move |conn| conn.send(&message))
    }

    /// Writes everything queued.
    pub async fn flush(&mut self) -> Result<(), Error> {
        ops::flush(self).await
    }

    /// Sends a message framed once for many sockets ([`crate::topics`], publish/subscribe)
    /// and waits until it is written; see [`sockway_proto::Connection::send_prepared`].
    pub async fn send_prepared(&mut self, frame: &PreparedFrame) -> Result<(), Error> {
        ops::send(self, Sends::MessageEnd, |conn| conn.send_prepared(frame)).await
    }

    /// Queues a prepared message without flushing, like [`Self::feed`]: a task that
    /// drains its [`crate::topics::Subscriber`] feeds every waiting frame, then flushes once.
    pub async fn feed_prepared(&mut self, frame: &PreparedFrame) -> Result<(), Error> {
        ops::queue(self, Sends::MessageEnd, |conn| conn.send_prepared(frame)).await
    }

    /// Sends a ping.
    pub async fn ping(&mut self, payload: &[u8]) -> Result<(), Error> {
        ops::send(self, Sends::Other, |conn| conn.send_ping(payload)).await
    }

    /// Sends a close frame; the reader sees the peer's reply and then the end of the stream.
    pub async fn close(&mut self, code: CloseCode, reason: &str) -> Result<(), Error> {
        ops::send(self, Sends::Other, |conn| conn.close(code, reason)).await
    }

    /// Bytes and messages sent and received so far (both halves).
    pub fn stats(&self) -> Stats {
        self.shared.lock().stats
    }
}
