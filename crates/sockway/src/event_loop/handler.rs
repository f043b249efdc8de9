//! What the application gives the event-loop server ([`Handler`]) and what it gets in its
//! callbacks ([`Conn`], [`OpenRequest`]).

use std::net::SocketAddr;
use std::sync::Arc;

use sockway_proto::deflate::DeflateParams;
use sockway_proto::error::SendError;
use sockway_proto::{CloseCode, Connection, Message, MessageKind, MessageView, PreparedFrame};

use super::sender::{SendRefused, Sender};
use super::shared::{ConnId, Shared};
use super::topics::{SubscribeRefused, Topics};

/// The application's side of an [`super::EventLoopServer`]: callbacks run on the worker
/// thread that owns the connection, one at a time per thread, so they must not block (hand
/// slow work to another thread or a runtime, and answer later through a queued message).
///
/// Each worker thread gets its own clone of the handler; per-connection state lives in
/// [`Handler::Session`], which never leaves its thread.
pub trait Handler: Clone + Send + 'static {
    /// State the application keeps per connection (`()` for none).
    type Session;

    /// A WebSocket was accepted (the 101 response is queued before anything `conn` sends).
    /// Returns the connection's session.
    fn open(&mut self, conn: &mut Conn<'_>, request: &OpenRequest<'_>) -> Self::Session;

    /// A whole message arrived (text already validated as UTF-8, RFC 6455 section 8.1).
    /// A message of 4 KiB or more may share the worker's 64 KiB read buffer; to keep one
    /// long, copy it (`Bytes::copy_from_slice`) rather than hold the whole buffer.
    fn message(&mut self, conn: &mut Conn<'_>, session: &mut Self::Session, message: Message);

    /// A whole message, lent for this call only, as uWebSockets hands its message handler a
    /// view into its receive buffer: a handler that only reads the message, or sends it on
    /// with [`Conn::send_lent`], overrides this and saves the copy (and allocation) that
    /// detaching a small message from the worker's read buffer costs. The default gives
    /// [`Handler::message`] an owned message ([`LentMessage::into_owned`]).
    fn lent_message(
        &mut self,
        conn: &mut Conn<'_>,
        session: &mut Self::Session,
        message: LentMessage<'_>,
    ) {
        self.message(conn, session, message.into_owned());
    }

    /// The connection is over; called once per opened connection. `code` is the WebSocket
    /// connection close code of RFC 6455 section 7.1.5: the peer's status, 1005 when its close
    /// frame carried none, 1006 when the connection ended without a close frame from the peer.
    fn close(&mut self, session: Self::Session, code: CloseCode) {
        let _ = (session, code);
    }
}

/// Messages read into the worker's shared buffer and smaller than this are copied out of it
/// when the handler takes them ([`LentMessage::into_owned`]: a few nanoseconds); larger ones
/// are handed out in place, and one that the handler keeps holds at most 64 KiB of shared
/// buffer, 16 times its size or less.
pub(super) const DETACH_BELOW: usize = 4096;

/// A whole message lent to [`Handler::lent_message`]: readable during the call, sent on
/// without a copy by [`Conn::send_lent`], kept by [`LentMessage::into_owned`]. Text is
/// already validated as UTF-8 (RFC 6455 section 8.1).
#[derive(Debug)]
pub struct LentMessage<'a> {
    lent: Lent<'a>,
}

/// Where a lent message's bytes are.
#[derive(Debug)]
enum Lent<'a> {
    /// A small message read in one frame: a view into the worker's shared read buffer,
    /// unmasked in place ([`sockway_proto::Connection::read_message_in_place`]).
    View(MessageView<'a>),
    /// A message of its own; its bytes are a slice of the worker's shared read buffer when
    /// `shared`.
    Owned { message: Message, shared: bool },
}

impl<'a> LentMessage<'a> {
    /// A message whose bytes are a slice of the worker's shared read buffer when `shared`.
    pub(super) fn new(message: Message, shared: bool) -> Self {
        Self {
            lent: Lent::Owned { message, shared },
        }
    }

    /// A small message viewed where it was read.
    pub(super) fn view(view: MessageView<'a>) -> Self {
        Self {
            lent: Lent::View(view),
        }
    }

    /// Text or binary.
    pub fn kind(&self) -> MessageKind {
        match &self.lent {
            Lent::View(view) => view.kind(),
            Lent::Owned { message, .. } => message.kind(),
        }
    }

    /// The payload.
    pub fn as_bytes(&self) -> &[u8] {
        match &self.lent {
            Lent::View(view) => view.as_bytes(),
            Lent::Owned { message, .. } => message.as_bytes(),
        }
    }

    /// The text, for a text message.
    pub fn as_text(&self) -> Option<&str> {
        match &self.lent {
            Lent::View(MessageView::Text(text)) => Some(text),
            Lent::Owned {
                message: Message::Text(text),
                ..
            } => Some(text),
            Lent::View(MessageView::Binary(_)) | Lent::Owned { .. } => None,
        }
    }

    /// The payload's length in bytes.
    pub fn len(&self) -> usize {
        self.as_bytes().len()
    }

    /// Whether the payload is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The message to keep: a small one is copied out of the worker's read buffer (so that
    /// keeping it does not keep the whole buffer alive), a large one shares it.
    pub fn into_owned(self) -> Message {
        match self.lent {
            Lent::View(view) => view.to_message(),
            Lent::Owned { message, shared } => {
                if !shared || message.len() >= DETACH_BELOW {
                    return message;
                }
                match message {
                    Message::Text(text) => Message::text(String::from(&*text)),
                    Message::Binary(bytes) => {
                        Message::binary(bytes::Bytes::copy_from_slice(&bytes))
                    }
                }
            }
        }
    }
}

/// The request that opened a connection, as [`Handler::open`] sees it.
#[derive(Debug, Clone, Copy)]
pub struct OpenRequest<'a> {
    /// The request target: path and query.
    pub path: &'a str,
    /// The `Origin` header, if the client sent one.
    pub origin: Option<&'a str>,
    /// The subprotocol chosen from [`super::EventLoopOptions::subprotocols`], if any.
    pub subprotocol: Option<&'a str>,
    /// The client's address.
    pub peer_addr: SocketAddr,
    /// Whether the connection came over TLS (`wss://`, [`super::EventLoopOptions`]' `tls`).
    pub secure: bool,
    /// The host name the client asked for in its TLS handshake (SNI, RFC 6066 section 3),
    /// if it was a TLS client that sent one: a server with one certificate for several names
    /// can tell them apart before the request's `Host` header, which the client chose too.
    pub server_name: Option<&'a str>,
}

/// One connection, lent to a callback: what it sends is queued and written when the
/// callback returns (one write for everything a batch of input produced).
#[derive(Debug)]
pub struct Conn<'a> {
    pub(super) protocol: &'a mut Connection,
    pub(super) id: ConnId,
    pub(super) shared: &'a Arc<Shared>,
    pub(super) topics: &'a mut Topics,
}

impl Conn<'_> {
    /// This connection's name, for a [`Sender`] on any thread.
    pub fn id(&self) -> ConnId {
        self.id
    }

    /// The permessage-deflate terms agreed with this client, if any
    /// ([`super::EventLoopOptions::compression`]).
    pub fn compression(&self) -> Option<DeflateParams> {
        self.protocol.compression()
    }

    /// A sender for every connection of this server (keep one in the handler to broadcast).
    pub fn sender(&self) -> Sender {
        Sender {
            shared: Arc::clone(self.shared),
        }
    }

    /// Queues a whole message as one frame.
    pub fn send(&mut self, message: &Message) -> Result<(), SendError> {
        self.protocol.send(message)
    }

    /// Queues a lent message as one frame (an echo): a large payload is written from where
    /// it was read, not copied.
    #[inline]
    pub fn send_lent(&mut self, message: &LentMessage<'_>) -> Result<(), SendError> {
        match &message.lent {
            Lent::View(MessageView::Text(text)) => self.protocol.send_text(text),
            Lent::View(MessageView::Binary(bytes)) => self.protocol.send_binary(bytes),
            Lent::Owned { message, .. } => self.protocol.send(message),
        }
    }

    /// Queues a text message.
    pub fn send_text(&mut self, text: &str) -> Result<(), SendError> {
        self.protocol.send_text(text)
    }

    /// Queues a binary message.
    pub fn send_binary(&mut self, data: &[u8]) -> Result<(), SendError> {
        self.protocol.send_binary(data)
    }

    /// Starts the close handshake (RFC 6455 section 7.1.2): no data may be sent afterwards;
    /// messages still arrive until the peer's reply, then the server closes TCP.
    pub fn close(&mut self, code: CloseCode, reason: &str) -> Result<(), SendError> {
        self.protocol.close(code, reason)
    }

    /// Subscribes this connection to `topic` (until it closes or unsubscribes): it then
    /// gets every message published to the topic, from [`Conn::publish`] or
    /// [`Sender::publish`] on any thread. `Ok(false)` when it was subscribed already; refused
    /// beyond [`super::EventLoopOptions::max_subscriptions`] topics.
    pub fn subscribe(&mut self, topic: &str) -> Result<bool, SubscribeRefused> {
        self.topics.subscribe(self.id, topic)
    }

    /// Unsubscribes this connection from `topic`; `false` when it was not subscribed.
    pub fn unsubscribe(&mut self, topic: &str) -> bool {
        self.topics.unsubscribe(self.id, topic)
    }

    /// Sends `message` to every connection subscribed to `topic`, this one included when it
    /// is subscribed (as uWebSockets' `App::publish`; see [`Sender::publish`] for the
    /// rules). The frame is built once; this worker's subscribers get it at the end of the
    /// loop turn, together with everything else published in it (one write per socket).
    pub fn publish(&mut self, topic: &str, message: &Message) -> Result<(), SendRefused> {
        let frame = PreparedFrame::new(message);
        self.topics.queue(topic, frame.clone());
        if self.shared.workers.len() > 1 {
            self.sender()
                .publish_prepared(topic, &frame, Some(self.id.worker))?;
        }
        Ok(())
    }

    /// Bytes queued and not yet written: a handler that sends more than it receives can
    /// hold back while this is high.
    pub fn buffered(&self) -> usize {
        self.protocol.output_len()
    }
}
