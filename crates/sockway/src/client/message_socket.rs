//! [`MessageWebSocket`]: the Windows Runtime's `MessageWebSocket` on RFC 6455: whole UTF-8 or
//! binary messages, a message-received callback, a closed callback saying who closed and why, a
//! default message type that can change after connecting, and send/receive timeouts.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use sockway_proto::message::TextBytes;
use sockway_proto::{CloseCode, Message, MessageKind};

use super::error::{ClientError, Phase};
use super::info::ConnectionInfo;
use super::settings::Settings;
use super::transport::ClientStream;
use crate::error::CloseInfo;
use crate::{Stats, WebSocket, WebSocketReader, WebSocketWriter};

/// Who ended a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ClosedBy {
    /// This side sent the first close frame (or failed the connection for a protocol error).
    Local,
    /// The server sent the first close frame.
    Remote,
    /// The connection ended without a close handshake (reset, timeout, EOF): status 1006.
    Abnormal,
}

/// The closed notification: how a connection ended (.NET's `CloseStatus` and
/// `CloseStatusDescription`, plus who closed and the error, if any).
#[derive(Debug)]
pub struct Closed {
    /// The close status: the peer's code, 1005 if its close frame had none, 1006 if the
    /// connection ended without a close handshake.
    pub code: CloseCode,
    /// The peer's reason (or ours, when we failed the connection), possibly empty.
    pub reason: String,
    /// Who started the close.
    pub by: ClosedBy,
    /// The error that ended the connection, when it did not end with a clean close.
    pub error: Option<ClientError>,
}

impl Closed {
    pub(crate) fn from_info(info: Option<CloseInfo>, error: Option<ClientError>) -> Self {
        // A protocol violation: this side failed the connection with the error's code.
        if let Some(ClientError::Protocol { code, detail }) = &error {
            return Closed {
                code: *code,
                reason: detail.clone(),
                by: ClosedBy::Local,
                error,
            };
        }
        match info {
            Some(info) => {
                let by = if info.code == CloseCode::ABNORMAL {
                    ClosedBy::Abnormal
                } else if info.initiated_locally {
                    ClosedBy::Local
                } else {
                    ClosedBy::Remote
                };
                Closed {
                    code: info.code,
                    reason: info.reason,
                    by,
                    error,
                }
            }
            None => Closed {
                code: CloseCode::ABNORMAL,
                reason: String::new(),
                by: ClosedBy::Abnormal,
                error,
            },
        }
    }

    /// Whether the connection ended with a normal close (1000, or 1001 "going away").
    pub fn is_normal(&self) -> bool {
        self.error.is_none() && matches!(self.code, CloseCode::NORMAL | CloseCode::GOING_AWAY)
    }
}

/// The timeouts and the shared default message type.
#[derive(Debug, Clone)]
struct Options {
    send_timeout: Option<Duration>,
    receive_timeout: Option<Duration>,
    /// `true` when [`MessageWebSocket::send_bytes`] sends text.
    text: Arc<AtomicBool>,
}

impl Options {
    fn kind(&self) -> MessageKind {
        if self.text.load(Ordering::Relaxed) {
            MessageKind::Text
        } else {
            MessageKind::Binary
        }
    }

    fn message(&self, data: &[u8]) -> Result<Message, ClientError> {
        match self.kind() {
            MessageKind::Binary => Ok(Message::Binary(Bytes::copy_from_slice(data))),
            MessageKind::Text => TextBytes::try_from_bytes(Bytes::copy_from_slice(data))
                .map(Message::Text)
                .map_err(|_| ClientError::Send(sockway_proto::SendError::InvalidUtf8)),
        }
    }
}

async fn with_timeout<T>(
    limit: Option<Duration>,
    phase: Phase,
    op: impl Future<Output = Result<T, crate::Error>>,
) -> Result<T, ClientError> {
    match limit {
        Some(after) => match tokio::time::timeout(after, op).await {
            Ok(result) => result.map_err(ClientError::from),
            Err(_) => Err(ClientError::Timeout { phase, after }),
        },
        None => op.await.map_err(ClientError::from),
    }
}

/// A client WebSocket for whole messages (as the Windows Runtime's `MessageWebSocket`).
///
/// Send with [`Self::send_text`], [`Self::send_binary`] or [`Self::send_bytes`] (which uses
/// the changeable default type); receive with [`Self::recv`], or hand the socket to
/// [`Self::run`] to get callbacks. [`Self::split`] gives a cloneable [`MessageSender`] and a
/// [`MessageReceiver`] for sending while callbacks run. Every operation is cancel-safe.
#[derive(Debug)]
pub struct MessageWebSocket {
    socket: WebSocket<ClientStream>,
    info: ConnectionInfo,
    options: Options,
}

impl MessageWebSocket {
    pub(crate) fn new(
        socket: WebSocket<ClientStream>,
        info: ConnectionInfo,
        settings: &Settings,
    ) -> Self {
        Self {
            socket,
            info,
            options: Options {
                send_timeout: settings.send_timeout,
                receive_timeout: settings.receive_timeout,
                text: Arc::new(AtomicBool::new(settings.message_type == MessageKind::Text)),
            },
        }
    }

    /// Facts about the connection (addresses, subprotocol, certificates, connect time).
    pub fn info(&self) -> &ConnectionInfo {
        &self.info
    }

    /// Bytes and messages sent and received so far.
    pub fn stats(&self) -> Stats {
        self.socket.stats()
    }

    /// The type [`Self::send_bytes`] sends.
    pub fn message_type(&self) -> MessageKind {
        self.options.kind()
    }

    /// Changes the type [`Self::send_bytes`] sends; the one setting that may change after
    /// connecting, as the Windows Runtime's `MessageWebSocketControl.MessageType` can. Affects
    /// [`MessageSender`]s split from this socket too.
    pub fn set_message_type(&self, kind: MessageKind) {
        self.options
            .text
            .store(kind == MessageKind::Text, Ordering::Relaxed);
    }

    /// Sends a text message.
    pub async fn send_text(&mut self, text: &str) -> Result<(), ClientError> {
        with_timeout(
            self.options.send_timeout,
            Phase::Send,
            self.socket.send_text(text),
        )
        .await
    }

    /// Sends a binary message.
    pub async fn send_binary(&mut self, data: &[u8]) -> Result<(), ClientError> {
        with_timeout(
            self.options.send_timeout,
            Phase::Send,
            self.socket.send_binary(data),
        )
        .await
    }

    /// Sends `data` as the current [`Self::message_type`]; as text it must be UTF-8.
    pub async fn send_bytes(&mut self, data: &[u8]) -> Result<(), ClientError> {
        let message = self.options.message(data)?;
        self.send(message).await
    }

    /// Sends a message.
    pub async fn send(&mut self, message: impl Into<Message>) -> Result<(), ClientError> {
        with_timeout(
            self.options.send_timeout,
            Phase::Send,
            self.socket.send(message),
        )
        .await
    }

    /// Sends a ping (at most 125 bytes); the pong is handled by the receiving side.
    pub async fn ping(&mut self, payload: &[u8]) -> Result<(), ClientError> {
        with_timeout(
            self.options.send_timeout,
            Phase::Send,
            self.socket.ping(payload),
        )
        .await
    }

    /// The next whole message; `Ok(None)` once the connection closed cleanly (see
    /// [`Self::closed`]). Cancel-safe.
    pub async fn recv(&mut self) -> Result<Option<Message>, ClientError> {
        with_timeout(
            self.options.receive_timeout,
            Phase::Receive,
            self.socket.recv(),
        )
        .await
    }

    /// Runs the close handshake (RFC 6455 section 7): sends a close frame, discards messages
    /// until the server's close frame arrives and waits for its TCP close, within the close
    /// timeout. Returns how the connection ended.
    pub async fn close(&mut self, code: CloseCode, reason: &str) -> Result<Closed, ClientError> {
        let info = self.socket.close(code, reason).await?;
        Ok(Closed::from_info(Some(info), None))
    }

    /// How the connection ended, once it has.
    pub fn closed(&self) -> Option<Closed> {
        self.socket
            .close_info()
            .map(|info| Closed::from_info(Some(info), None))
    }

    /// The event-style runner: calls `on_message` for every message until the connection
    /// ends, then `on_closed` once with how it ended (a clean close, a protocol error, a
    /// reset, a receive timeout...). Pings are answered meanwhile. To send while it runs, use
    /// [`Self::split`] and [`MessageReceiver::run`].
    pub async fn run(
        mut self,
        mut on_message: impl FnMut(Message),
        on_closed: impl FnOnce(Closed),
    ) {
        let error = loop {
            match self.recv().await {
                Ok(Some(message)) => on_message(message),
                Ok(None) => break None,
                Err(error) => break Some(error),
            }
        };
        on_closed(Closed::from_info(self.socket.close_info(), error));
    }

    /// Splits into a cloneable sender and a receiver, usable from different tasks.
    pub fn split(self) -> (MessageSender, MessageReceiver) {
        let (reader, writer) = self.socket.split();
        (
            MessageSender {
                writer: Arc::new(tokio::sync::Mutex::new(writer)),
                options: self.options.clone(),
            },
            MessageReceiver {
                reader,
                info: self.info,
                options: self.options,
            },
        )
    }

    /// The underlying socket and the connection's facts.
    pub fn into_inner(self) -> (WebSocket<ClientStream>, ConnectionInfo) {
        (self.socket, self.info)
    }
}

/// The sending half of a split [`MessageWebSocket`]; clones share the connection (sends are
/// serialized, each message goes out whole).
#[derive(Debug, Clone)]
pub struct MessageSender {
    writer: Arc<tokio::sync::Mutex<WebSocketWriter<ClientStream>>>,
    options: Options,
}

impl MessageSender {
    /// Sends a message.
    pub async fn send(&self, message: impl Into<Message>) -> Result<(), ClientError> {
        let message = message.into();
        let limit = self.options.send_timeout;
        let op = async { self.writer.lock().await.send(message).await };
        with_timeout(limit, Phase::Send, op).await
    }

    /// Sends a text message.
    pub async fn send_text(&self, text: &str) -> Result<(), ClientError> {
        self.send(Message::text(text.to_owned())).await
    }

    /// Sends a binary message.
    pub async fn send_binary(&self, data: &[u8]) -> Result<(), ClientError> {
        self.send(Message::binary(Bytes::copy_from_slice(data)))
            .await
    }

    /// Sends `data` as the current default type (see [`MessageWebSocket::set_message_type`]).
    pub async fn send_bytes(&self, data: &[u8]) -> Result<(), ClientError> {
        let message = self.options.message(data)?;
        self.send(message).await
    }

    /// The type [`Self::send_bytes`] sends.
    pub fn message_type(&self) -> MessageKind {
        self.options.kind()
    }

    /// Changes the type [`Self::send_bytes`] sends, for every half of this connection.
    pub fn set_message_type(&self, kind: MessageKind) {
        self.options
            .text
            .store(kind == MessageKind::Text, Ordering::Relaxed);
    }

    /// Starts the close handshake; the receiver sees the server's reply and then the end.
    pub async fn close(&self, code: CloseCode, reason: &str) -> Result<(), ClientError> {
        let limit = self.options.send_timeout;
        let op = async { self.writer.lock().await.close(code, reason).await };
        with_timeout(limit, Phase::Send, op).await
    }

    /// Bytes and messages sent and received so far (both halves).
    pub async fn stats(&self) -> Stats {
        self.writer.lock().await.stats()
    }
}

/// The receiving half of a split [`MessageWebSocket`]; it also answers pings and the close.
#[derive(Debug)]
pub struct MessageReceiver {
    reader: WebSocketReader<ClientStream>,
    info: ConnectionInfo,
    options: Options,
}

impl MessageReceiver {
    /// Facts about the connection.
    pub fn info(&self) -> &ConnectionInfo {
        &self.info
    }

    /// The next whole message; `Ok(None)` after a clean close. Cancel-safe.
    pub async fn recv(&mut self) -> Result<Option<Message>, ClientError> {
        with_timeout(
            self.options.receive_timeout,
            Phase::Receive,
            self.reader.recv(),
        )
        .await
    }

    /// How the connection ended, once it has.
    pub fn closed(&self) -> Option<Closed> {
        self.reader
            .close_info()
            .map(|info| Closed::from_info(Some(info), None))
    }

    /// The event-style runner: `on_message` for each message, then `on_closed` once.
    pub async fn run(
        mut self,
        mut on_message: impl FnMut(Message),
        on_closed: impl FnOnce(Closed),
    ) {
        let error = loop {
            match self.recv().await {
                Ok(Some(message)) => on_message(message),
                Ok(None) => break None,
                Err(error) => break Some(error),
            }
        };
        on_closed(Closed::from_info(self.reader.close_info(), error));
    }
}
