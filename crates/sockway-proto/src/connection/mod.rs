//! The per-role connection state machine (RFC 6455 sections 5 to 7), without I/O.
//!
//! The caller owns the transport. Received bytes are appended to a `BytesMut` the caller keeps
//! and handed to [`Connection::read_event`], which consumes whole or partial frames from its
//! front and returns [`Event`]s; unmasking happens in place and text is validated as its bytes
//! arrive, so nothing is copied for a message that arrives in one frame. Everything to send
//! (data, pongs answering pings, close replies) is queued as output that the caller drains with
//! [`Connection::output`] (or [`Connection::output_slices`]) and [`Connection::advance_output`];
//! with [`Connection::set_vectored_output`], a server's large payloads are queued as they are,
//! not copied.
//!
//! Close handshake (section 7): [`Connection::close`] sends a close frame and moves to
//! [`ConnectionState::CloseSent`]; the peer's reply moves to [`ConnectionState::Closed`]. A
//! close frame from the peer while open is answered with the same status code and also ends in
//! `Closed`. Once closed, received bytes are discarded. A protocol violation *fails* the
//! connection (section 7.1.7): a close frame with the matching code is queued and the state
//! becomes `Closed`. Then the server closes TCP at once; the client waits for the server to do
//! so (section 7.1.1), which [`Connection::closes_transport_first`] tells the driver.

mod direct;
mod prepared;
mod read;
mod timers;
mod write;

use bytes::{Bytes, BytesMut};

use crate::close::{CloseCode, CloseFrame};
use crate::config::Config;
use crate::deflate::{Decompressor, DeflateParams};
use crate::error::ProtocolError;
use crate::message::{Message, MessageKind};
use crate::Role;

pub use direct::DirectFrame;
pub use prepared::PreparedFrame;
use read::Reader;
pub use timers::{KeepAlive, Millis, Timeout, Timers};
pub use write::Compression;
use write::Writer;

/// How [`Connection::read_event`] hands out data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// Whole messages: fragments are collected, and an event comes when the message is
    /// complete.
    Messages,
    /// Each data frame once it is complete, with an end-of-message flag: frame by frame, so
    /// an echo preserves the peer's framing.
    Frames,
    /// Pieces as they arrive, each frame or part of a frame as soon as it is validated, with
    /// an end-of-message flag (.NET's `WebSocket.ReceiveAsync` into a caller's buffer): a message
    /// of any size flows through without being held whole.
    Pieces,
}

/// Something the peer did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A whole data message ([`Delivery::Messages`]).
    Message(Message),
    /// Part of a data message ([`Delivery::Frames`], [`Delivery::Pieces`]); text pieces may
    /// split a character,
    /// but the message as a whole has been validated up to this point.
    Fragment {
        /// The message's kind, from its first frame.
        kind: MessageKind,
        /// The bytes, unmasked.
        data: Bytes,
        /// Whether this piece ends the message.
        end_of_message: bool,
    },
    /// A ping; the pong that answers it is already in the output (section 5.5.2).
    Ping(Bytes),
    /// A pong, solicited or not (section 5.5.3).
    Pong(Bytes),
    /// The peer's close frame (`None` when it carried no status code). If this side had not
    /// sent a close frame yet, the reply is already in the output. No event follows.
    Close(Option<CloseFrame>),
}

/// Where the close handshake stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectionState {
    /// Data flows both ways.
    Open,
    /// This side sent a close frame and awaits the reply; data still arrives.
    CloseSent,
    /// The close handshake is over, or the connection failed: nothing more is read or sent.
    Closed,
}

/// A WebSocket connection's protocol state for one role. See the module documentation.
#[derive(Debug)]
pub struct Connection {
    role: Role,
    config: Config,
    state: ConnectionState,
    reader: Reader,
    writer: Writer,
    /// Present once a close frame is sent or received, or the connection fails.
    ending: Option<Box<Ending>>,
    close_frame_seen: bool,
    close_frame_sent: bool,
    closed_locally: bool,
    /// A keep-alive ping went out and nothing arrived since (see [`timers`]).
    ping_sent: bool,
    /// When the peer was last heard from, on the driver's clock; once closing, when the
    /// current closing phase's clock started (see [`timers`]).
    heard_at: Millis,
    /// Which closing phase `heard_at` counts, if any (see [`timers`]).
    close_clock: timers::CloseClock,
}

/// How the connection ends, behind one pointer: most of a connection's life has no close
/// frame and no failure, and an idle connection should not carry room for them.
#[derive(Debug, Default)]
struct Ending {
    /// The peer's close frame, if it carried a status code.
    close_received: Option<CloseFrame>,
    /// This side's close frame, if it carried a status code.
    close_sent: Option<CloseFrame>,
    /// The violation that failed the connection, if one did.
    failure: Option<ProtocolError>,
}

impl Connection {
    /// A connection in the open state, as after a successful opening handshake.
    pub fn new(role: Role, config: Config) -> Self {
        Self {
            role,
            config,
            state: ConnectionState::Open,
            reader: Reader::default(),
            writer: Writer::new(role),
            ending: None,
            close_frame_seen: false,
            close_frame_sent: false,
            closed_locally: false,
            ping_sent: false,
            heard_at: 0,
            close_clock: timers::CloseClock::Idle,
        }
    }

    /// A connection that negotiated permessage-deflate (RFC 7692) with `params`: data
    /// messages are compressed unless sent with compression off, and messages with RSV1 set
    /// on their first frame are inflated.
    pub fn with_deflate(role: Role, config: Config, params: DeflateParams) -> Self {
        let mut conn = Self::new(role, config);
        conn.reader
            .set_decompressor(Decompressor::new(params.remote_no_context_takeover));
        conn.writer.set_compression(params);
        conn
    }

    /// The permessage-deflate parameters in force, if compression was negotiated.
    pub fn compression(&self) -> Option<DeflateParams> {
        self.writer.compression()
    }

    /// This end's role.
    pub fn role(&self) -> Role {
        self.role
    }

    /// The settings in force.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Where the close handshake stands.
    pub fn state(&self) -> ConnectionState {
        self.state
    }

    /// Whether nothing more will be read or sent.
    pub fn is_closed(&self) -> bool {
        self.state == ConnectionState::Closed
    }

    /// Whether part of the data message being received was already handed out as an
    /// [`Event::Fragment`] ([`Delivery::Frames`] or [`Delivery::Pieces`]). A whole-message
    /// read ([`Delivery::Messages`]) cannot return that message any more, so a driver that
    /// offers both should refuse it until the message is finished by pieces. (The other way
    /// round needs nothing: bytes held for a whole message are handed out first when reading
    /// switches to pieces.)
    pub fn message_handed_out(&self) -> bool {
        self.reader.handed_out()
    }

    /// The close frame the peer sent, if it sent one with a status code.
    pub fn close_received(&self) -> Option<&CloseFrame> {
        self.ending.as_ref()?.close_received.as_ref()
    }

    /// The close status as the application should see it: the peer's code, 1005 when the
    /// peer's close frame had none, 1006 when the connection ended without one (section 7.1.5),
    /// or `None` while no close has happened.
    pub fn close_status(&self) -> Option<CloseCode> {
        match (self.close_received(), self.close_frame_seen, self.state) {
            (Some(frame), _, _) => Some(frame.code),
            (None, true, _) => Some(CloseCode::NO_STATUS),
            (None, false, ConnectionState::Closed) => Some(CloseCode::ABNORMAL),
            _ => None,
        }
    }

    /// The close frame this side sent, if it sent one with a status code.
    pub fn close_sent(&self) -> Option<&CloseFrame> {
        self.ending.as_ref()?.close_sent.as_ref()
    }

    /// Whether this side started the close handshake or failed the connection, rather than
    /// answering the peer's close frame or losing the transport.
    pub fn closed_locally(&self) -> bool {
        self.closed_locally
    }

    /// The violation that failed the connection, if one did.
    pub fn failure(&self) -> Option<&ProtocolError> {
        self.ending.as_ref()?.failure.as_ref()
    }

    /// Whether this side closes the TCP connection as soon as the close handshake is over: the
    /// server does; the client waits for the server to do it first (section 7.1.1).
    pub fn closes_transport_first(&self) -> bool {
        self.role == Role::Server
    }

    /// Consumes frames from the front of `input` and returns the next event, or `Ok(None)` when
    /// more bytes are needed. `input` may hold any number of bytes, split anywhere.
    ///
    /// On a violation the connection is failed: the close frame that reports it is queued and
    /// the error is returned; later calls discard input. Once the state is
    /// [`ConnectionState::Closed`], input is discarded (data after close is ignored).
    ///
    /// With `input` empty it returns `Ok(None)` at once (inlined into the caller): a frame in
    /// progress waits for payload bytes, and compressed frames are inflated whole when their
    /// last byte arrives, so no event can come out of an empty input.
    #[inline]
    pub fn read_event(
        &mut self,
        input: &mut BytesMut,
        delivery: Delivery,
    ) -> Result<Option<Event>, ProtocolError> {
        if input.is_empty() && !self.reader.has_work_without_input() {
            return Ok(None);
        }
        self.read_event_from(input, delivery)
    }

    /// [`Connection::read_event`] for input that may hold something to act on.
    fn read_event_from(
        &mut self,
        input: &mut BytesMut,
        delivery: Delivery,
    ) -> Result<Option<Event>, ProtocolError> {
        if self.state == ConnectionState::Closed {
            input.clear();
            return Ok(None);
        }
        match read::next_event(self, input, delivery) {
            Ok(event) => Ok(event),
            Err(error) => {
                input.clear();
                self.fail(error.clone());
                Err(error)
            }
        }
    }

    /// Records that the transport reached end of stream. If the close handshake had not
    /// finished, the connection closed abnormally (1006, section 7.1.5) and this returns
    /// `false`.
    pub fn receive_eof(&mut self) -> bool {
        let clean = self.state == ConnectionState::Closed && self.close_frame_seen;
        self.state = ConnectionState::Closed;
        clean || self.failure().is_some()
    }

    /// Fails the connection locally (section 7.1.7), for example with 1011 when the application
    /// cannot go on: queues a close frame with `code` and `reason` unless one was sent already.
    pub fn fail_with(&mut self, code: CloseCode, reason: &str) {
        if !self.close_frame_sent && self.state != ConnectionState::Closed {
            self.send_close_frame(Some(CloseFrame::new(code, reason)));
            self.closed_locally = true;
        }
        self.reader.reset_inflated();
        self.state = ConnectionState::Closed;
    }

    fn fail(&mut self, error: ProtocolError) {
        let reason = error.to_string();
        self.fail_with(error.close_code(), &reason);
        self.ending_mut().failure = Some(error);
    }

    /// The record of how the connection ends, made on first use.
    fn ending_mut(&mut self) -> &mut Ending {
        self.ending.get_or_insert_with(Box::default)
    }

    fn send_close_frame(&mut self, frame: Option<CloseFrame>) {
        let payload = frame.as_ref().map(CloseFrame::encode).unwrap_or_default();
        self.writer.drop_pending_pong();
        self.writer
            .write_control(crate::frame::OpCode::Close, &payload);
        self.ending_mut().close_sent = frame;
        self.close_frame_sent = true;
    }

    /// The peer's close frame arrived: reply if this side has not sent one (echoing the status
    /// code, section 5.5.1), and the handshake is over either way.
    fn on_close_received(&mut self, frame: Option<CloseFrame>) {
        if self.state == ConnectionState::Open {
            let reply = frame.as_ref().map(|f| CloseFrame::new(f.code, ""));
            self.send_close_frame(reply);
        }
        self.close_frame_seen = true;
        self.ending_mut().close_received = frame;
        self.state = ConnectionState::Closed;
    }

    /// The first contiguous run of bytes waiting to be sent. Output may come in several runs
    /// (a server's large payloads are queued without copying them), so write until
    /// [`Connection::has_output`] says `false`, or write them all at once with
    /// [`Connection::output_slices`].
    #[inline]
    pub fn output(&self) -> &[u8] {
        self.writer.output()
    }

    /// All the bytes waiting to be sent, in however many runs.
    #[inline]
    pub fn output_len(&self) -> usize {
        self.writer.len()
    }

    /// Fills `slices` with the runs of waiting output, in order, for a vectored write; returns
    /// how many it filled (fewer than all when `slices` is short).
    pub fn output_slices<'a>(&'a self, slices: &mut [std::io::IoSlice<'a>]) -> usize {
        self.writer.slices(slices)
    }

    /// Whether bytes wait to be sent.
    #[inline]
    pub fn has_output(&self) -> bool {
        self.writer.len() != 0
    }

    /// Frees the output buffers when everything queued has been sent and they hold more than
    /// `keep` bytes of room, so that a connection that goes quiet after a large message does
    /// not hold that message's buffer while idle; a small buffer is kept for the next
    /// message. A driver calls it when it is about to wait for the peer.
    #[inline]
    pub fn release_idle_output(&mut self, keep: usize) {
        self.writer.release_if_empty(keep);
    }

    /// Marks the first `n` output bytes as sent (they may span runs).
    #[inline]
    pub fn advance_output(&mut self, n: usize) {
        self.writer.advance(n);
    }

    /// Takes all waiting output at once (for a driver that writes owned buffers).
    pub fn take_output(&mut self) -> BytesMut {
        self.writer.take()
    }

    /// Whether a fragmented message is being received (its start has arrived but not its end).
    pub fn is_receiving_message(&self) -> bool {
        self.reader.in_message()
    }

    /// Whether a fragmented message is being sent (its final fragment has not been sent).
    pub fn is_sending_message(&self) -> bool {
        self.writer.in_message()
    }
}

#[cfg(test)]
mod deflate_tests;
#[cfg(test)]
mod in_place_tests;
#[cfg(test)]
mod tests;
