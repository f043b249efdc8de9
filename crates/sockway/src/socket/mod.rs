//! [`WebSocket`]: an established WebSocket over any `AsyncRead + AsyncWrite` transport.

mod direct;
mod engine;
mod keep_alive;
mod ops;
mod recv;
mod small_read;
mod split;
mod stream;
mod wheel;

use std::future::{poll_fn, Future};
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::BytesMut;
use sockway_proto::connection::{Compression, Timers};
use sockway_proto::deflate::DeflateParams;
use sockway_proto::{CloseCode, ConnectionState, Message, MessageKind, PreparedFrame, Role};
use tokio::io::{AsyncRead, AsyncWrite};

use crate::config::WebSocketConfig;
use crate::error::{CloseInfo, Error};
use engine::Engine;
use ops::{EngineAccess, Sends};
use recv::Leftover;

#[cfg(feature = "server")]
pub(crate) use engine::CloseRequest;
pub use engine::Stats;
pub use recv::{Fragment, ReceiveResult, ReceivedKind};
pub use split::{WebSocketReader, WebSocketWriter};

/// An established WebSocket: the opening handshake is done, frames flow.
///
/// Receive whole messages with [`WebSocket::recv`] (or as a `futures` `Stream`), or pieces into
/// your own buffer with [`WebSocket::receive`]; send whole messages with [`WebSocket::send`]
/// (or as a `Sink`), or parts with [`WebSocket::send_fragment`]. Pings are answered and close
/// frames replied to automatically, as long as something receives. [`WebSocket::split`] gives
/// a reader and a writer for two tasks.
///
/// **Cancel safety**: `recv` and `receive` keep all progress in the socket, so they can sit in
/// `tokio::select!` and be dropped at any point without losing or corrupting data. A dropped
/// `send` either queued its message whole (it goes out with the next operation) or not at all.
///
/// **Backpressure**: at most [`WebSocketConfig::write_buffer_limit`] bytes queue; past that a
/// send waits for the peer to read.
///
/// **Dropping** an open socket queues close 1001 ("going away", RFC 6455 section 7.4.1),
/// writes it if the transport takes it at once, and then shuts the transport down.
#[derive(Debug)]
pub struct WebSocket<S: AsyncRead + AsyncWrite + Unpin> {
    /// Boxed so that the socket is one pointer wide: futures that hold it (a handler's
    /// `async fn` keeps its arguments twice) stay small, which is most of what an idle
    /// connection's task costs.
    inner: Box<Inner<S>>,
}

/// Everything a [`WebSocket`] owns, in one allocation.
#[derive(Debug)]
struct Inner<S: AsyncRead + AsyncWrite + Unpin> {
    engine: Engine<S>,
    leftover: Leftover,
}

impl<S: AsyncRead + AsyncWrite + Unpin> EngineAccess<S> for WebSocket<S> {
    fn with_engine<R>(
        &mut self,
        cx: &mut Context<'_>,
        f: impl FnOnce(&mut Engine<S>, &mut Context<'_>) -> R,
    ) -> R {
        f(&mut self.inner.engine, cx)
    }

    fn engine<R>(&mut self, f: impl FnOnce(&mut Engine<S>) -> R) -> R {
        f(&mut self.inner.engine)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> WebSocket<S> {
    /// Wraps a transport on which the opening handshake already happened. `leftover` holds
    /// bytes read past the handshake (the first frames), if any.
    pub fn from_raw(io: S, role: Role, config: WebSocketConfig, leftover: BytesMut) -> Self {
        Self::from_negotiated(io, role, config, leftover, None)
    }

    /// Like [`WebSocket::from_raw`], for a handshake that negotiated permessage-deflate
    /// (RFC 7692) with `compression`: messages are then compressed unless sent with
    /// [`Compression::Disabled`], and compressed messages are inflated.
    pub fn from_negotiated(
        io: S,
        role: Role,
        config: WebSocketConfig,
        leftover: BytesMut,
        compression: Option<DeflateParams>,
    ) -> Self {
        Self::with_shared_config(io, role, Arc::new(config), leftover, compression)
    }

    /// [`WebSocket::from_negotiated`] with settings shared among sockets (a server endpoint's).
    pub(crate) fn with_shared_config(
        io: S,
        role: Role,
        config: Arc<WebSocketConfig>,
        leftover: BytesMut,
        compression: Option<DeflateParams>,
    ) -> Self {
        Self {
            inner: Box::new(Inner {
                engine: Engine::new(io, role, config, leftover, compression),
                leftover: Leftover::default(),
            }),
        }
    }

    /// The permessage-deflate parameters in force, if compression was negotiated.
    pub fn compression(&self) -> Option<DeflateParams> {
        self.inner.engine.conn.compression()
    }

    /// Sends a whole message, choosing whether it may be compressed: pass [`Compression::Disabled`]
    /// for secrets (.NET's `WebSocketMessageFlags.DisableCompression`; see `docs/security.md` on
    /// CRIME/BREACH).
    pub fn send_with(
        &mut self,
        message: impl Into<Message>,
        compression: Compression,
    ) -> impl Future<Output = Result<(), Error>> + '_ {
        let message = message.into();
        ops::send(self, Sends::MessageEnd, move |conn| {
            conn.send_with(&message, compression)
        })
    }

    /// The next whole message; `Ok(None)` once the connection has closed cleanly (see
    /// [`WebSocket::close_info`]). Cancel-safe.
    ///
    /// In the middle of a message partly read with [`WebSocket::receive`] or
    /// [`WebSocket::recv_fragment`] it fails with [`Error::PartlyReceived`] and changes
    /// nothing; finish that message with those first.
    pub fn recv(&mut self) -> impl Future<Output = Result<Option<Message>, Error>> + '_ {
        poll_fn(|cx| self.poll_recv(cx))
    }

    /// Polls for the next whole message, as [`WebSocket::recv`] does.
    pub fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Result<Option<Message>, Error>> {
        let Inner { engine, leftover } = &mut *self.inner;
        engine.poll_recv(cx, leftover)
    }

    /// The next data frame's payload as it arrived, without copying; `Ok(None)` after a clean
    /// close. Echoing each with [`WebSocket::send_fragment`] preserves the peer's framing and
    /// message boundaries (the echo loop of ASP.NET Core's WebSockets sample). Cancel-safe.
    /// Continues a message partly read with [`WebSocket::receive`] or a cancelled
    /// [`WebSocket::recv`] where that stopped.
    pub async fn recv_fragment(&mut self) -> Result<Option<Fragment>, Error> {
        let Inner { engine, leftover } = &mut *self.inner;
        poll_fn(|cx| engine.poll_recv_fragment(cx, leftover)).await
    }

    /// Copies the next bytes of the current message into `buf` and says how many, of which
    /// kind, and whether the message ended (.NET's `WebSocket.ReceiveAsync`). When the connection
    /// closes, the result's kind is [`ReceivedKind::Close`] with the status. Cancel-safe.
    /// Continues a message partly read with [`WebSocket::recv_fragment`] or a cancelled
    /// [`WebSocket::recv`] where that stopped.
    pub async fn receive(&mut self, buf: &mut [u8]) -> Result<ReceiveResult, Error> {
        let Inner { engine, leftover } = &mut *self.inner;
        poll_fn(|cx| engine.poll_receive(cx, leftover, buf)).await
    }

    /// Sends a whole message and waits until it is written to the transport.
    pub fn send(
        &mut self,
        message: impl Into<Message>,
    ) -> impl Future<Output = Result<(), Error>> + '_ {
        ops::send_message(self, message.into())
    }

    /// Sends a text message from a borrowed string.
    pub async fn send_text(&mut self, text: &str) -> Result<(), Error> {
        ops::send(self, Sends::MessageEnd, |conn| conn.send_text(text)).await
    }

    /// Sends a binary message from a borrowed slice.
    pub async fn send_binary(&mut self, data: &[u8]) -> Result<(), Error> {
        ops::send(self, Sends::MessageEnd, |conn| conn.send_binary(data)).await
    }

    /// Sends part of a message (.NET's `WebSocket.SendAsync` with `endOfMessage`).
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

    /// Queues a message without flushing: it goes out with the next flush or send, or once
    /// the queue passes its limit. For batching many small messages into fewer writes.
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

    /// Sends a ping (at most 125 bytes of payload).
    pub async fn ping(&mut self, payload: &[u8]) -> Result<(), Error> {
        ops::send(self, Sends::Other, |conn| conn.send_ping(payload)).await
    }

    /// Sends an unsolicited pong, a one-way heartbeat.
    pub async fn pong(&mut self, payload: &[u8]) -> Result<(), Error> {
        ops::send(self, Sends::Other, |conn| conn.send_pong(payload)).await
    }

    /// Sends a close frame without waiting for the reply (.NET's `CloseOutputAsync`);
    /// keep receiving to get the rest of the peer's data and its close frame.
    pub async fn close_output(&mut self, code: CloseCode, reason: &str) -> Result<(), Error> {
        ops::send(self, Sends::Other, |conn| conn.close(code, reason)).await
    }

    /// Runs the whole close handshake (.NET's `CloseAsync`): sends a close frame, discards
    /// data until the peer's close frame arrives, closes the transport, and returns how the
    /// connection ended. Waits at most twice the close timeout.
    pub async fn close(&mut self, code: CloseCode, reason: &str) -> Result<CloseInfo, Error> {
        if self.inner.engine.conn.state() == ConnectionState::Open {
            self.inner.engine.conn.close(code, reason)?;
        }
        let timeout = self.inner.engine.config.close_timeout * 2;
        // Frame by frame, so that a message partly read by pieces is discarded too.
        let drain = async {
            while self.recv_fragment().await?.is_some() {}
            Ok::<(), Error>(())
        };
        tokio::time::timeout(timeout, drain)
            .await
            .map_err(|_| Error::CloseTimeout)??;
        Ok(self
            .close_info()
            .unwrap_or_else(|| CloseInfo::from_parts(CloseCode::ABNORMAL, None, true)))
    }

    /// How the connection ended (status, reason, who started it), once it has.
    pub fn close_info(&self) -> Option<CloseInfo> {
        self.inner.engine.close_info()
    }

    /// Where the close handshake stands.
    pub fn state(&self) -> ConnectionState {
        self.inner.engine.conn.state()
    }

    /// This end's role.
    pub fn role(&self) -> Role {
        self.inner.engine.conn.role()
    }

    /// The settings in force.
    pub fn config(&self) -> &WebSocketConfig {
        &self.inner.engine.config
    }

    /// Bytes and messages sent and received so far.
    pub fn stats(&self) -> Stats {
        self.inner.engine.stats
    }

    /// The transport.
    pub fn get_ref(&self) -> &S {
        &self.inner.engine.io
    }

    /// Lets `request` close this socket (the server runner's graceful shutdown); see
    /// [`CloseRequest`].
    #[cfg(feature = "server")]
    pub(crate) fn set_close_request(&mut self, request: Box<dyn CloseRequest>) {
        self.inner.engine.close_request = Some(request);
    }

    /// Splits into a reader and a writer that can live in different tasks.
    pub fn split(self) -> (WebSocketReader<S>, WebSocketWriter<S>) {
        let Inner { engine, leftover } = *self.inner;
        split::split(engine, leftover)
    }
}

/// The core's timer settings for sockets configured by `config`: its keep-alive and close
/// timeout (the core owns the rules, see `sockway_proto::connection::Timers`).
pub(crate) fn timers(config: &WebSocketConfig) -> Timers {
    Timers {
        keep_alive: config.keep_alive,
        close_timeout: config.close_timeout,
    }
}
