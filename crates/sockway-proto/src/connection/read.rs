//! The receiving half: frame headers checked the moment they are complete, payloads unmasked
//! and validated as their bytes arrive (so invalid text fails fast), messages assembled.

use bytes::{Buf, Bytes, BytesMut};

use super::{Connection, ConnectionState, Delivery, Event};
use crate::close::CloseFrame;
use crate::deflate::{Decompressor, InflateError};
use crate::error::ProtocolError;
use crate::frame::{FrameHeader, OpCode, MAX_CONTROL_PAYLOAD, RSV1};
use crate::mask::apply_mask;
use crate::message::{Message, MessageKind, MessageView, TextBytes};
use crate::utf8::Utf8Validator;
use crate::Role;

/// Receive-side state.
#[derive(Debug, Default)]
pub(super) struct Reader {
    frame: Option<FrameInProgress>,
    message: Option<MessageInProgress>,
    /// Present when permessage-deflate was negotiated.
    inflating: Option<Box<Inflating>>,
}

impl Reader {
    pub(super) fn in_message(&self) -> bool {
        self.message.is_some()
    }

    /// Whether [`next_event`] could produce an event from an empty input: only a frame whose
    /// payload is complete but not yet acted on, which [`next_event`] never leaves behind
    /// (inflating keeps no output back either). Kept as the one place to change should that
    /// ever stop being true.
    #[inline]
    pub(super) fn has_work_without_input(&self) -> bool {
        self.frame
            .as_ref()
            .is_some_and(|frame| frame.remaining == 0)
    }

    pub(super) fn set_decompressor(&mut self, decompressor: Decompressor) {
        self.inflating = Some(Box::new(Inflating {
            decompressor,
            inflated_len: 0,
            inflated: Vec::new(),
        }));
    }

    /// Forgets the current compressed message's inflated bytes: at the start and end of each
    /// compressed message, and when the connection fails (nothing more is read then).
    pub(super) fn reset_inflated(&mut self) {
        if let Some(inflating) = self.inflating.as_mut() {
            inflating.inflated_len = 0;
            inflating.inflated = Vec::new();
        }
    }
}

/// The permessage-deflate receive state, boxed with the decompressor: only compressed
/// messages need it, so a connection carries one pointer for it instead of a message buffer.
#[derive(Debug)]
struct Inflating {
    decompressor: Decompressor,
    /// Bytes of the current compressed message inflated so far, checked against the message
    /// limit.
    inflated_len: usize,
    /// The current compressed message's inflated earlier fragments, for [`Delivery::Messages`].
    inflated: Vec<u8>,
}

/// The frame whose payload is being received. Of its [`FrameHeader`] it keeps only the fields
/// still needed (`remaining` stands in for the length), as every connection carries room for it.
#[derive(Debug)]
struct FrameInProgress {
    opcode: OpCode,
    fin: bool,
    /// The masking key as seen from the first byte not yet handed out: rotated by the
    /// payload bytes handed out so far, so that unmasking resumes there without keeping
    /// their count (section 5.3: byte `i` is masked with key byte `i mod 4`).
    mask: Option<[u8; 4]>,
    /// Payload bytes not yet handed out (they sit at the front of the input).
    remaining: usize,
    /// Bytes at the front of the input already unmasked and validated.
    ready: usize,
}

/// The data message being received.
#[derive(Debug)]
struct MessageInProgress {
    kind: MessageKind,
    /// Payload bytes announced so far by the message's frame headers.
    size: usize,
    /// Present for text messages.
    utf8: Option<Utf8Validator>,
    /// Earlier fragments, for [`Delivery::Messages`]; boxed, since most messages are one
    /// frame and every connection keeps room for this struct.
    assembled: Option<Box<BytesMut>>,
    /// RSV1 was set on the first frame: the payload is compressed (RFC 7692 section 6), and
    /// [`Reader::inflating`] holds its inflated state.
    compressed: bool,
    /// How the message's bytes have been read so far: [`HELD`] and [`HANDED_OUT`] bits, in
    /// one byte so that the message state keeps its size.
    reads: u8,
}

/// [`MessageInProgress::reads`]: earlier bytes are held for a whole-message read
/// ([`Delivery::Messages`]) in `assembled` or the inflated buffer; a read by pieces hands them
/// out first.
const HELD: u8 = 1;

/// [`MessageInProgress::reads`]: part of the message went out as a fragment
/// ([`Delivery::Frames`] or [`Delivery::Pieces`]), so a whole-message read can no longer
/// return it.
const HANDED_OUT: u8 = 2;

impl MessageInProgress {
    fn held(&self) -> bool {
        self.reads & HELD != 0
    }

    fn set_held(&mut self, held: bool) {
        self.reads = if held {
            self.reads | HELD
        } else {
            self.reads & !HELD
        };
    }

    fn set_handed_out(&mut self) {
        self.reads |= HANDED_OUT;
    }
}

impl Reader {
    /// Whether part of the message being received was handed out as a fragment.
    pub(super) fn handed_out(&self) -> bool {
        self.message
            .as_ref()
            .is_some_and(|m| m.reads & HANDED_OUT != 0)
    }
}

/// The next event from `input`, or `None` when more bytes are needed.
pub(super) fn next_event(
    conn: &mut Connection,
    input: &mut BytesMut,
    delivery: Delivery,
) -> Result<Option<Event>, ProtocolError> {
    if delivery != Delivery::Messages
        && conn
            .reader
            .message
            .as_ref()
            .is_some_and(MessageInProgress::held)
    {
        return Ok(take_held(&mut conn.reader));
    }
    if delivery == Delivery::Messages
        && conn.reader.frame.is_none()
        && conn.reader.message.is_none()
    {
        if let Some(event) = whole_small_message(conn, input) {
            return event.map(Some);
        }
    }
    loop {
        if conn.reader.frame.is_none() {
            let Some((header, header_len)) = FrameHeader::parse(input)? else {
                return Ok(None);
            };
            check_header(conn, &header)?;
            input.advance(header_len);
            // `check_header` bounds the length by a `usize` limit (or 125 for control frames).
            let remaining = usize::try_from(header.payload_len)
                .map_err(|_| too_big(conn, header.payload_len))?;
            conn.reader.frame = Some(FrameInProgress {
                opcode: header.opcode,
                fin: header.fin,
                mask: header.mask,
                remaining,
                ready: 0,
            });
        }
        let Reader {
            frame: Some(frame),
            message,
            ..
        } = &mut conn.reader
        else {
            return Ok(None);
        };
        let control = frame.opcode.is_control();
        let available = input.len().min(frame.remaining);
        if available > frame.ready {
            let fresh = &mut input[frame.ready..available];
            if let Some(key) = frame.mask {
                apply_mask(fresh, key, frame.ready);
            }
            if !control {
                // Compressed text is validated after inflating.
                let plain = message.as_mut().filter(|m| !m.compressed);
                if let Some(validator) = plain.and_then(|m| m.utf8.as_mut()) {
                    validator
                        .feed(fresh)
                        .map_err(|_| ProtocolError::InvalidUtf8)?;
                }
            }
            frame.ready = available;
        }
        if frame.ready < frame.remaining {
            if control || delivery != Delivery::Pieces || frame.ready == 0 {
                return Ok(None);
            }
            let mut data = input.split_to(frame.ready).freeze();
            frame.remaining -= frame.ready;
            if let Some(key) = frame.mask.as_mut() {
                key.rotate_left(frame.ready % 4);
            }
            frame.ready = 0;
            let kind = message.as_ref().map_or(MessageKind::Binary, |m| m.kind);
            if let Some(message) = message.as_mut() {
                message.set_handed_out();
            }
            if message.as_ref().is_some_and(|m| m.compressed) {
                data = inflate_piece(conn, &data, false)?;
                if data.is_empty() {
                    continue;
                }
            }
            return Ok(Some(Event::Fragment {
                kind,
                data,
                end_of_message: false,
            }));
        }
        let payload = take_front(input, frame.remaining);
        let (opcode, fin) = (frame.opcode, frame.fin);
        conn.reader.frame = None;
        if let Some(event) = finish_frame(conn, opcode, fin, payload, delivery)? {
            return Ok(Some(event));
        }
    }
}

/// A server's usual input, taken in one step: a whole message in one final, masked text or
/// binary frame with a 7- or 16-bit length (RFC 6455 section 5.2), no reserved bit, within
/// both size limits, at the front of `input`, while no frame or message is in progress.
/// Checked and unmasked exactly as the general path would (text validated as UTF-8, section
/// 8.1), without its frame and message bookkeeping; `None` for anything else, which the
/// general path then reads.
#[inline]
fn whole_small_message(
    conn: &Connection,
    input: &mut BytesMut,
) -> Option<Result<Event, ProtocolError>> {
    let frame = WholeFrame::at_front(conn, input, usize::MAX)?;
    let payload = frame.unmask(input);
    if frame.kind == MessageKind::Text && simdutf8::basic::from_utf8(payload).is_err() {
        return Some(Err(ProtocolError::InvalidUtf8));
    }
    input.advance(frame.header_len);
    let data = take_front(input, frame.len);
    Some(Ok(Event::Message(match frame.kind {
        MessageKind::Text => Message::Text(TextBytes::from_validated(data)),
        MessageKind::Binary => Message::Binary(data),
    })))
}

/// A whole small message's frame at the front of the input (see [`whole_small_message`]).
struct WholeFrame {
    kind: MessageKind,
    header_len: usize,
    /// The payload's length.
    len: usize,
}

impl WholeFrame {
    /// The frame at the front of `input` if it is a whole final, masked text or binary frame
    /// with a 7- or 16-bit length, no reserved bit, a payload of at most `max_len` bytes and
    /// within both size limits, and the connection a server's with no frame or message in
    /// progress; `None` otherwise.
    #[inline]
    fn at_front(conn: &Connection, input: &[u8], max_len: usize) -> Option<Self> {
        let [b0, b1, ..] = input[..] else {
            return None;
        };
        let kind = match b0 {
            0x81 => MessageKind::Text,
            0x82 => MessageKind::Binary,
            _ => return None,
        };
        if conn.role != Role::Server || b1 & 0x80 == 0 {
            return None;
        }
        let (len, header_len) = match b1 & 0x7F {
            127 => return None,
            126 => match input.get(2..4) {
                Some(&[high, low]) => (usize::from(u16::from_be_bytes([high, low])), 8),
                _ => return None,
            },
            short => (usize::from(short), 6),
        };
        let limit = conn
            .config
            .max_frame_size
            .min(conn.config.max_message_size)
            .min(max_len);
        if len > limit || input.len() < header_len + len {
            return None;
        }
        Some(Self {
            kind,
            header_len,
            len,
        })
    }

    /// Unmasks the payload in place (section 5.3); the payload. Text is still to be
    /// validated as UTF-8 (section 8.1).
    #[inline]
    fn unmask<'a>(&self, input: &'a mut [u8]) -> &'a [u8] {
        let at = self.header_len - 4;
        let key = [input[at], input[at + 1], input[at + 2], input[at + 3]];
        let payload = &mut input[self.header_len..self.header_len + self.len];
        apply_mask(payload, key, 0);
        payload
    }
}

impl Connection {
    /// Reads a whole small message where it lies, for a driver that lends messages to its
    /// application instead of handing them over (uWebSockets gives its message handler a
    /// view into its receive buffer): when `input` starts with a whole message in one
    /// final, masked text or binary frame of at most `max_len` payload bytes (7- or 16-bit
    /// length, no reserved bit, within both size limits) and no frame or message is in
    /// progress, the payload is unmasked in place, text validated as UTF-8 (RFC 6455
    /// section 8.1), and the message returned as a view into `input` with the number of
    /// bytes its frame took. `None` for anything else, and for a client or a closed
    /// connection: the driver then reads on with [`Connection::read_event`], after dropping
    /// the bytes it consumed here. Invalid UTF-8 fails the connection (1007, queued) and
    /// returns the error, as [`Connection::read_event`] would; the driver drops its input.
    #[inline]
    pub fn read_message_in_place<'a>(
        &mut self,
        input: &'a mut [u8],
        max_len: usize,
    ) -> Option<Result<(MessageView<'a>, usize), ProtocolError>> {
        if self.state == ConnectionState::Closed
            || self.reader.frame.is_some()
            || self.reader.message.is_some()
        {
            return None;
        }
        let frame = WholeFrame::at_front(self, input, max_len)?;
        let end = frame.header_len + frame.len;
        let payload = frame.unmask(input);
        let view = match frame.kind {
            MessageKind::Binary => MessageView::Binary(payload),
            MessageKind::Text => match simdutf8::basic::from_utf8(payload) {
                Ok(text) => MessageView::Text(text),
                Err(_) => {
                    let error = ProtocolError::InvalidUtf8;
                    self.fail(error.clone());
                    return Some(Err(error));
                }
            },
        };
        Some(Ok((view, end)))
    }
}

/// The first `n` bytes of `input`, as `Bytes`. When they are all of it (the usual case: one
/// read brought one whole frame) and fill at least half of its room, the buffer itself
/// becomes the payload, so no shared-buffer bookkeeping is allocated and the driver's next
/// read starts a fresh buffer; otherwise the front is split off, sharing the buffer. A large
/// reused read buffer (the event loop's, 64 KiB) is so never given away with a small frame,
/// which would make the next read allocate it again.
fn take_front(input: &mut BytesMut, n: usize) -> Bytes {
    if n == input.len() && input.capacity() / 2 <= n {
        std::mem::take(input).freeze()
    } else {
        input.split_to(n).freeze()
    }
}

fn too_big(conn: &Connection, size: u64) -> ProtocolError {
    ProtocolError::FrameTooBig {
        size,
        limit: conn.config.max_frame_size,
    }
}

/// Checks a header the moment it is complete, before any of its payload is awaited, and opens
/// a new message for a text or binary frame.
fn check_header(conn: &mut Connection, header: &FrameHeader) -> Result<(), ProtocolError> {
    // RSV1 marks a compressed message, on its first frame only (RFC 7692 section 6.1).
    let compressed = header.rsv == RSV1
        && conn.reader.inflating.is_some()
        && matches!(header.opcode, OpCode::Text | OpCode::Binary);
    if header.rsv != 0 && !compressed {
        return Err(ProtocolError::ReservedBits);
    }
    match (conn.role, header.mask.is_some()) {
        (Role::Server, false) => return Err(ProtocolError::UnmaskedFrame),
        (Role::Client, true) => return Err(ProtocolError::MaskedFrame),
        _ => {}
    }
    if header.opcode.is_control() {
        if !header.fin {
            return Err(ProtocolError::FragmentedControlFrame);
        }
        if header.payload_len > MAX_CONTROL_PAYLOAD as u64 {
            return Err(ProtocolError::ControlFrameTooLong);
        }
        return Ok(());
    }
    let reader = &mut conn.reader;
    let kind = match (header.opcode, &reader.message) {
        (OpCode::Continuation, None) => return Err(ProtocolError::UnexpectedContinuation),
        (OpCode::Continuation, Some(_)) => None,
        (_, Some(_)) => return Err(ProtocolError::ExpectedContinuation),
        (OpCode::Text, None) => Some(MessageKind::Text),
        (_, None) => Some(MessageKind::Binary),
    };
    if header.payload_len > conn.config.max_frame_size as u64 {
        return Err(too_big(conn, header.payload_len));
    }
    if compressed {
        reader.reset_inflated();
    }
    let so_far = reader.message.as_ref().map_or(0, |m| m.size);
    let size = so_far.saturating_add(header.payload_len as usize);
    let message = reader.message.get_or_insert_with(|| MessageInProgress {
        kind: kind.unwrap_or(MessageKind::Binary),
        size: 0,
        utf8: (kind == Some(MessageKind::Text)).then(Utf8Validator::new),
        assembled: None,
        compressed,
        reads: 0,
    });
    // A compressed message is limited by its inflated size, checked while inflating; each of
    // its frames is still limited by the frame size above.
    if size > conn.config.max_message_size && !message.compressed {
        return Err(ProtocolError::MessageTooBig {
            limit: conn.config.max_message_size,
        });
    }
    message.size = size;
    Ok(())
}

/// Acts on a frame whose payload is complete; `None` when it produces no event of its own.
fn finish_frame(
    conn: &mut Connection,
    opcode: OpCode,
    fin: bool,
    payload: Bytes,
    delivery: Delivery,
) -> Result<Option<Event>, ProtocolError> {
    match opcode {
        OpCode::Ping => {
            if conn.state == ConnectionState::Open {
                conn.writer.answer_ping(&payload);
            }
            Ok(Some(Event::Ping(payload)))
        }
        OpCode::Pong => Ok(Some(Event::Pong(payload))),
        OpCode::Close => {
            let frame = CloseFrame::decode(&payload)?;
            conn.on_close_received(frame.clone());
            Ok(Some(Event::Close(frame)))
        }
        OpCode::Text | OpCode::Binary | OpCode::Continuation => {
            finish_data_frame(conn, fin, payload, delivery)
        }
    }
}

fn finish_data_frame(
    conn: &mut Connection,
    fin: bool,
    payload: Bytes,
    delivery: Delivery,
) -> Result<Option<Event>, ProtocolError> {
    let Some(message) = conn.reader.message.as_mut() else {
        return Err(ProtocolError::UnexpectedContinuation);
    };
    if message.compressed {
        return finish_compressed_frame(conn, fin, &payload, delivery);
    }
    if fin {
        if let Some(validator) = message.utf8.as_mut() {
            validator.finish().map_err(|_| ProtocolError::InvalidUtf8)?;
        }
    }
    let kind = message.kind;
    if delivery != Delivery::Messages {
        if fin {
            conn.reader.message = None;
        } else if payload.is_empty() {
            return Ok(None);
        } else {
            message.set_handed_out();
        }
        return Ok(Some(Event::Fragment {
            kind,
            data: payload,
            end_of_message: fin,
        }));
    }
    if !fin {
        let assembled = message.assembled.get_or_insert_with(Box::default);
        assembled.extend_from_slice(&payload);
        let held = !assembled.is_empty();
        message.set_held(held);
        return Ok(None);
    }
    let assembled = message.assembled.take();
    conn.reader.message = None;
    let data = match assembled {
        Some(mut assembled) if !assembled.is_empty() => {
            assembled.extend_from_slice(&payload);
            assembled.freeze()
        }
        _ => payload,
    };
    Ok(Some(Event::Message(match kind {
        MessageKind::Text => Message::Text(TextBytes::from_validated(data)),
        MessageKind::Binary => Message::Binary(data),
    })))
}

/// Inflates a compressed message's frame: into the message for [`Delivery::Messages`], or
/// handed out as its own piece otherwise.
fn finish_compressed_frame(
    conn: &mut Connection,
    fin: bool,
    payload: &[u8],
    delivery: Delivery,
) -> Result<Option<Event>, ProtocolError> {
    let Reader {
        message: Some(message),
        inflating: Some(inflating),
        ..
    } = &mut conn.reader
    else {
        return Err(ProtocolError::UnexpectedContinuation);
    };
    let kind = message.kind;
    if delivery != Delivery::Messages {
        let data = inflate_piece(conn, payload, fin)?;
        if fin {
            end_compressed_message(&mut conn.reader);
        } else if data.is_empty() {
            return Ok(None);
        } else if let Some(message) = conn.reader.message.as_mut() {
            message.set_handed_out();
        }
        return Ok(Some(Event::Fragment {
            kind,
            data,
            end_of_message: fin,
        }));
    }
    let mut inflated = std::mem::take(&mut inflating.inflated);
    inflate_into(conn, payload, fin, &mut inflated)?;
    if !fin {
        let held = !inflated.is_empty();
        if let Reader {
            message: Some(message),
            inflating: Some(inflating),
            ..
        } = &mut conn.reader
        {
            inflating.inflated = inflated;
            message.set_held(held);
        }
        return Ok(None);
    }
    end_compressed_message(&mut conn.reader);
    let data = Bytes::from(inflated);
    Ok(Some(Event::Message(match kind {
        MessageKind::Text => Message::Text(TextBytes::from_validated(data)),
        MessageKind::Binary => Message::Binary(data),
    })))
}

/// Hands out what a whole-message read held of the current message (earlier frames, or
/// their inflated bytes) as one fragment, so that a read by pieces after a cancelled
/// whole-message read continues the message from its start.
#[cold]
fn take_held(reader: &mut Reader) -> Option<Event> {
    let message = reader.message.as_mut()?;
    message.set_held(false);
    message.set_handed_out();
    let data = match reader.inflating.as_mut().filter(|_| message.compressed) {
        Some(inflating) => Bytes::from(std::mem::take(&mut inflating.inflated)),
        None => message
            .assembled
            .take()
            .map_or_else(Bytes::new, |assembled| assembled.freeze()),
    };
    Some(Event::Fragment {
        kind: message.kind,
        data,
        end_of_message: false,
    })
}

/// Ends the compressed message being received, freeing its inflated state.
fn end_compressed_message(reader: &mut Reader) {
    reader.message = None;
    reader.reset_inflated();
}

/// Inflates one piece of the current compressed message into a new buffer.
fn inflate_piece(conn: &mut Connection, payload: &[u8], fin: bool) -> Result<Bytes, ProtocolError> {
    let mut out = Vec::new();
    inflate_into(conn, payload, fin, &mut out)?;
    Ok(Bytes::from(out))
}

/// Inflates `payload` onto `out`, validating text as it appears (so invalid UTF-8 still fails
/// fast) and refusing output beyond the message limit (RFC 7692 section 8.2: bounded memory).
fn inflate_into(
    conn: &mut Connection,
    payload: &[u8],
    fin: bool,
    out: &mut Vec<u8>,
) -> Result<(), ProtocolError> {
    let limit = conn.config.max_message_size;
    let Reader {
        message: Some(message),
        inflating: Some(inflating),
        ..
    } = &mut conn.reader
    else {
        return Err(ProtocolError::ReservedBits);
    };
    let base = out.len();
    let room = limit.saturating_sub(inflating.inflated_len);
    let mut utf8_failed = false;
    let validator = &mut message.utf8;
    let mut check = |bytes: &[u8]| {
        let ok = validator.as_mut().is_none_or(|v| v.feed(bytes).is_ok());
        utf8_failed |= !ok;
        ok
    };
    let result = inflating
        .decompressor
        .decompress(payload, fin, base + room, out, &mut check);
    if utf8_failed {
        return Err(ProtocolError::InvalidUtf8);
    }
    match result {
        Ok(()) => {}
        Err(InflateError::TooBig { .. }) => return Err(ProtocolError::MessageTooBig { limit }),
        Err(InflateError::Corrupt) => {
            return Err(ProtocolError::Extension("corrupt compressed data".into()))
        }
    }
    inflating.inflated_len += out.len() - base;
    if fin {
        if let Some(validator) = message.utf8.as_mut() {
            validator.finish().map_err(|_| ProtocolError::InvalidUtf8)?;
        }
    }
    Ok(())
}
