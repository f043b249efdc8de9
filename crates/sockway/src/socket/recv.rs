//! Receiving on top of the engine: whole messages, frames, or pieces copied into a caller's
//! buffer (.NET's `WebSocket.ReceiveAsync`). Leftover bytes of a piece stay with the socket,
//! so a cancelled receive loses nothing.
//!
//! The three styles may be mixed on one socket. A read by pieces (`receive`,
//! `recv_fragment`) always continues the current message where the last read stopped: what
//! `receive` kept back comes first, then what a cancelled `recv` had gathered (the core hands
//! it out), then the rest. A whole-message read (`recv`) in the middle of a message that was
//! partly read by pieces cannot return that message whole, so it fails with
//! [`Error::PartlyReceived`] and leaves the socket as it was.

use std::task::{ready, Context, Poll};

use bytes::{Buf, Bytes};
use sockway_proto::connection::Delivery;
use sockway_proto::{Event, Message, MessageKind};
use tokio::io::{AsyncRead, AsyncWrite};

use super::engine::Engine;
use crate::error::{CloseInfo, Error};

/// What [`crate::WebSocket::receive`] put into the caller's buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceiveResult {
    /// How many bytes were written to the buffer.
    pub count: usize,
    /// What the bytes are, or that the connection closed.
    pub kind: ReceivedKind,
    /// Whether these bytes end the message.
    pub end_of_message: bool,
}

/// The type of a [`ReceiveResult`] (.NET's `WebSocketMessageType`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReceivedKind {
    /// Part of a text message (pieces may split a UTF-8 character).
    Text,
    /// Part of a binary message.
    Binary,
    /// The connection closed, with the status and description.
    Close(CloseInfo),
}

/// One data frame's payload, without copying ([`crate::WebSocket::recv_fragment`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fragment {
    /// The message's kind.
    pub kind: MessageKind,
    /// The bytes (text pieces may split a character; the message is validated so far).
    pub data: Bytes,
    /// Whether this piece ends the message.
    pub end_of_message: bool,
}

/// A piece of a message not yet copied out. Boxed, and the box kept once made: a socket that
/// never uses `receive` carries one pointer, one that does allocates once.
#[derive(Debug, Default)]
pub(crate) struct Leftover {
    piece: Option<Box<Piece>>,
}

#[derive(Debug)]
struct Piece {
    /// Whether the piece is still to be copied out (it may be empty and end its message).
    pending: bool,
    kind: MessageKind,
    data: Bytes,
    end: bool,
}

impl Leftover {
    fn pending(&mut self) -> Option<&mut Piece> {
        self.piece.as_deref_mut().filter(|piece| piece.pending)
    }

    /// Whether part of a piece is still to be copied out.
    fn has_pending(&self) -> bool {
        self.piece.as_ref().is_some_and(|piece| piece.pending)
    }

    /// The rest of the pending piece, as a fragment.
    fn take_pending(&mut self) -> Option<Fragment> {
        let piece = self.pending()?;
        piece.pending = false;
        Some(Fragment {
            kind: piece.kind,
            data: std::mem::take(&mut piece.data),
            end_of_message: piece.end,
        })
    }

    fn set(&mut self, kind: MessageKind, data: Bytes, end: bool) {
        let piece = Piece {
            pending: true,
            kind,
            data,
            end,
        };
        match &mut self.piece {
            Some(slot) => **slot = piece,
            None => self.piece = Some(Box::new(piece)),
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Engine<S> {
    /// The next whole data message; `None` after a clean close. Pings, pongs and the close
    /// frame are handled here and not returned. Fails with [`Error::PartlyReceived`], changing
    /// nothing, while a message partly read by pieces is unfinished.
    pub(crate) fn poll_recv(
        &mut self,
        cx: &mut Context<'_>,
        leftover: &Leftover,
    ) -> Poll<Result<Option<Message>, Error>> {
        if leftover.has_pending() || self.conn.message_handed_out() {
            return Poll::Ready(Err(Error::PartlyReceived));
        }
        loop {
            match ready!(self.poll_event(cx, Delivery::Messages))? {
                Some(Event::Message(message)) => return Poll::Ready(Ok(Some(message))),
                Some(_) => continue,
                None => return Poll::Ready(Ok(None)),
            }
        }
    }

    /// The next data frame, whole; `None` after a clean close. What [`Engine::poll_receive`]
    /// kept back of a piece comes first.
    pub(crate) fn poll_recv_fragment(
        &mut self,
        cx: &mut Context<'_>,
        leftover: &mut Leftover,
    ) -> Poll<Result<Option<Fragment>, Error>> {
        if let Some(fragment) = leftover.take_pending() {
            return Poll::Ready(Ok(Some(fragment)));
        }
        loop {
            match ready!(self.poll_event(cx, Delivery::Frames))? {
                Some(Event::Fragment {
                    kind,
                    data,
                    end_of_message,
                }) => {
                    return Poll::Ready(Ok(Some(Fragment {
                        kind,
                        data,
                        end_of_message,
                    })))
                }
                Some(_) => continue,
                None => return Poll::Ready(Ok(None)),
            }
        }
    }

    /// Copies the next bytes of the current message into `buf`.
    pub(crate) fn poll_receive(
        &mut self,
        cx: &mut Context<'_>,
        leftover: &mut Leftover,
        buf: &mut [u8],
    ) -> Poll<Result<ReceiveResult, Error>> {
        loop {
            if let Some(piece) = leftover.pending() {
                let count = piece.data.len().min(buf.len());
                buf[..count].copy_from_slice(&piece.data[..count]);
                piece.data.advance(count);
                let end_of_message = piece.end && piece.data.is_empty();
                let kind = match piece.kind {
                    MessageKind::Text => ReceivedKind::Text,
                    MessageKind::Binary => ReceivedKind::Binary,
                };
                if piece.data.is_empty() {
                    piece.pending = false;
                    piece.data = Bytes::new();
                }
                return Poll::Ready(Ok(ReceiveResult {
                    count,
                    kind,
                    end_of_message,
                }));
            }
            match ready!(self.poll_event(cx, Delivery::Pieces))? {
                Some(Event::Fragment {
                    kind,
                    data,
                    end_of_message,
                }) => {
                    leftover.set(kind, data, end_of_message);
                }
                Some(_) => continue,
                None => {
                    let info = self.close_info().unwrap_or_else(|| {
                        CloseInfo::from_parts(sockway_proto::CloseCode::ABNORMAL, None, false)
                    });
                    return Poll::Ready(Ok(ReceiveResult {
                        count: 0,
                        kind: ReceivedKind::Close(info),
                        end_of_message: true,
                    }));
                }
            }
        }
    }

    /// How the connection closed, once it has.
    pub(crate) fn close_info(&self) -> Option<CloseInfo> {
        let code = self.conn.close_status()?;
        Some(CloseInfo::from_parts(
            code,
            self.conn.close_received(),
            self.conn.closed_locally(),
        ))
    }
}
