//! The sending half: frames encoded into the output buffer, masked in the client role with a
//! fresh key from a cryptographically secure generator per frame (RFC 6455 section 5.3), and
//! fragmented messages kept from interleaving (section 5.4).
//!
//! A server's large unmasked payloads are not copied: the frame header is queued, then the
//! message's own `Bytes`, and the driver writes them together with a vectored write.

use std::collections::VecDeque;
use std::io::IoSlice;

use bytes::{Buf, Bytes, BytesMut};

use super::{Connection, ConnectionState};
use crate::close::{CloseCode, CloseFrame};
use crate::deflate::{Compressor, DeflateParams};
use crate::error::SendError;
use crate::frame::{FrameHeader, OpCode, MAX_CONTROL_PAYLOAD, MAX_HEADER_LEN, RSV1};
use crate::mask::apply_mask;
use crate::message::{Message, MessageKind};
use crate::utf8::Utf8Validator;
use crate::Role;

/// Send-side state.
#[derive(Debug)]
pub(super) struct Writer {
    role: Role,
    /// Output queued ahead of `out` without copying (see [`SharedRuns`]); made by the first
    /// such frame and kept until [`Writer::release_if_empty`], as most connections never
    /// send a large payload and every connection would otherwise carry 40 bytes for it.
    shared: Option<Box<SharedRuns>>,
    /// Whether large payloads may be queued without copying (see
    /// [`Connection::set_vectored_output`]).
    share_payloads: bool,
    /// Output after `shared`.
    out: BytesMut,
    /// The most bytes `out` held since [`Writer::release_if_empty`] last ran: its capacity
    /// says too little once sent bytes were advanced past.
    out_peak: usize,
    /// The kind of the fragmented message being sent, if one is.
    sending: Option<MessageKind>,
    /// Checks text fragments, which may split characters, as they go out.
    utf8: Utf8Validator,
    /// Present when permessage-deflate was negotiated.
    deflating: Option<Box<Deflating>>,
    /// The latest ping's payload while the output is backed up (see [`Writer::answer_ping`]).
    pending_pong: Option<Box<HeldPong>>,
}

/// Output queued without copying: frame headers (and whatever was in `out` before them) and
/// the payloads of large unmasked frames, in order; never an empty run.
#[derive(Debug, Default)]
struct SharedRuns {
    runs: VecDeque<Bytes>,
    /// Bytes in `runs`.
    len: usize,
}

impl SharedRuns {
    fn push(&mut self, run: Bytes) {
        self.len += run.len();
        self.runs.push_back(run);
    }

    /// Moves every run onto the front of `out`, copying them.
    fn drain_into(&mut self, capacity: usize, tail: &[u8]) -> BytesMut {
        let mut all = BytesMut::with_capacity(capacity);
        for run in self.runs.drain(..) {
            all.extend_from_slice(&run);
        }
        self.len = 0;
        all.extend_from_slice(tail);
        all
    }
}

/// The payload of a pong held back while the output is backed up: rare, and at most 125 bytes
/// (section 5.5), so it is kept at that fixed size behind one thin pointer.
#[derive(Debug)]
struct HeldPong {
    len: u8,
    bytes: [u8; MAX_CONTROL_PAYLOAD],
}

impl HeldPong {
    /// Holds `payload`, which the caller has bounded to 125 bytes (longer is cut there).
    fn new(payload: &[u8]) -> Box<Self> {
        let len = payload.len().min(MAX_CONTROL_PAYLOAD);
        let mut held = Box::new(Self {
            len: len as u8,
            bytes: [0; MAX_CONTROL_PAYLOAD],
        });
        held.bytes[..len].copy_from_slice(&payload[..len]);
        held
    }

    fn payload(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }
}

/// The permessage-deflate send state, boxed with the compressor: only compressed messages
/// need it, so a connection without compression carries one pointer for it.
#[derive(Debug)]
struct Deflating {
    /// The negotiated parameters, kept here as they exist exactly when compression does.
    params: DeflateParams,
    compressor: Compressor,
    /// Whether the message being sent is compressed (decided by its first fragment).
    sending_compressed: bool,
    /// Compressed output before it is framed.
    scratch: Vec<u8>,
}

/// Output size beyond which pongs are coalesced instead of queued.
const PONG_BACKLOG: usize = 64 * 1024;

/// The smallest unmasked, uncompressed payload queued without copying it; below this a copy
/// costs less than the extra bookkeeping and iovec.
const SHARE_MIN: usize = 4096;

/// Whether a data message may be compressed, when permessage-deflate was negotiated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// Compress (the default once negotiated).
    Allowed,
    /// Send this message uncompressed: it never enters the compressor's history. Use it for
    /// secrets sent next to attacker-influenced data over TLS, where compression would leak
    /// them through sizes (CRIME/BREACH); .NET's `WebSocketMessageFlags.DisableCompression`.
    Disabled,
}

impl Writer {
    pub(super) fn new(role: Role) -> Self {
        Self {
            role,
            shared: None,
            share_payloads: false,
            out: BytesMut::new(),
            out_peak: 0,
            sending: None,
            utf8: Utf8Validator::new(),
            deflating: None,
            pending_pong: None,
        }
    }

    /// Compresses data messages from now on, as permessage-deflate with `params` allows.
    pub(super) fn set_compression(&mut self, params: DeflateParams) {
        let compressor = Compressor::new(
            params.local_max_window_bits,
            params.local_no_context_takeover,
        )
        .with_level(params.local_compression_level);
        self.deflating = Some(Box::new(Deflating {
            params,
            compressor,
            sending_compressed: false,
            scratch: Vec::new(),
        }));
    }

    /// The permessage-deflate parameters in force, if compression was negotiated.
    pub(super) fn compression(&self) -> Option<DeflateParams> {
        self.deflating.as_ref().map(|deflating| deflating.params)
    }

    pub(super) fn in_message(&self) -> bool {
        self.sending.is_some()
    }

    /// The first contiguous run of waiting output.
    #[inline]
    pub(super) fn output(&self) -> &[u8] {
        match self.shared.as_ref().and_then(|shared| shared.runs.front()) {
            Some(front) => &front[..],
            None => &self.out[..],
        }
    }

    /// The runs queued without copying, when there are some.
    fn runs(&self) -> Option<&SharedRuns> {
        self.shared.as_deref().filter(|shared| shared.len != 0)
    }

    /// See [`Connection::release_idle_output`].
    #[inline]
    pub(super) fn release_if_empty(&mut self, keep: usize) {
        if self.len() != 0 {
            return;
        }
        if self.out_peak > keep {
            self.out = BytesMut::new();
        }
        self.out_peak = 0;
        if self.shared.is_some() {
            self.shared = None;
        }
    }

    /// Room held by the output buffers, for tests of [`Writer::release_if_empty`].
    #[cfg(test)]
    pub(super) fn held(&self) -> (usize, usize) {
        let shared = self
            .shared
            .as_ref()
            .map_or(0, |shared| shared.runs.capacity());
        (self.out.capacity(), shared)
    }

    /// All waiting output bytes.
    #[inline]
    pub(super) fn len(&self) -> usize {
        self.shared.as_ref().map_or(0, |shared| shared.len) + self.out.len()
    }

    /// Fills `slices` with the waiting output in order; returns how many it filled.
    pub(super) fn slices<'a>(&'a self, slices: &mut [IoSlice<'a>]) -> usize {
        let runs = self
            .runs()
            .into_iter()
            .flat_map(|shared| shared.runs.iter());
        let runs = runs.map(|run| &run[..]);
        let out = Some(&self.out[..]).filter(|out| !out.is_empty());
        let mut filled = 0;
        for (slot, run) in slices.iter_mut().zip(runs.chain(out)) {
            *slot = IoSlice::new(run);
            filled += 1;
        }
        filled
    }

    /// Marks the first `n` output bytes as sent. Always inlined: a driver calls it after
    /// every write, and with more than one caller in a codegen unit (the event loop's plain
    /// and TLS workers) the compiler stopped inlining it on its own, 11 instructions more per
    /// echo (callgrind, `benches/instructions.sh`).
    #[inline(always)]
    pub(super) fn advance(&mut self, mut n: usize) {
        if let Some(shared) = self.shared.as_deref_mut() {
            while n > 0 {
                let Some(front) = shared.runs.front_mut() else {
                    break;
                };
                let step = n.min(front.len());
                front.advance(step);
                shared.len -= step;
                n -= step;
                if front.is_empty() {
                    shared.runs.pop_front();
                }
            }
        }
        if n >= self.out.len() {
            // All sent: the next frames go where these were, so the buffer's start is not
            // moved on (and memory past it not touched) by every write.
            self.out.clear();
        } else if n > 0 {
            self.out.advance(n);
        }
        if self.pending_pong.is_some() && self.len() < PONG_BACKLOG {
            self.release_pong();
        }
    }

    pub(super) fn take(&mut self) -> BytesMut {
        self.release_pong();
        let capacity = self.len();
        match self.shared.as_deref_mut().filter(|shared| shared.len != 0) {
            None => self.out.split(),
            Some(shared) => {
                let all = shared.drain_into(capacity, &self.out);
                self.out.clear();
                all
            }
        }
    }

    /// Answers a ping with a pong carrying its payload (section 5.5.2). While more than
    /// [`PONG_BACKLOG`] bytes wait to be sent, only the latest ping's pong is kept (section
    /// 5.5.3 allows answering just the most recent ping), so a peer that pings without reading
    /// cannot make this side's output grow, and receiving never has to stop for it.
    pub(super) fn answer_ping(&mut self, payload: &[u8]) {
        if self.len() < PONG_BACKLOG {
            self.write_control(OpCode::Pong, payload);
        } else {
            self.pending_pong = Some(HeldPong::new(payload));
        }
    }

    /// Writes the pong held back by [`Writer::answer_ping`], if any.
    fn release_pong(&mut self) {
        if let Some(held) = self.pending_pong.take() {
            self.write_control(OpCode::Pong, held.payload());
        }
    }

    /// Forgets a held-back pong: a close frame must be the last frame sent (section 5.5.1).
    pub(super) fn drop_pending_pong(&mut self) {
        self.pending_pong = None;
    }

    /// Appends one frame: header, then the payload (masked for a client).
    pub(super) fn write_frame(&mut self, opcode: OpCode, payload: &[u8], fin: bool, rsv: u8) {
        let mask = (self.role == Role::Client).then(rand::random::<[u8; 4]>);
        self.encode_frame(
            FrameHeader {
                fin,
                rsv,
                opcode,
                mask,
                payload_len: payload.len() as u64,
            },
            payload,
        );
    }

    /// A server's whole uncompressed message as one frame: [`Writer::write_frame`] with
    /// what a server's data frame always is (final, no reserved bit, unmasked) known here,
    /// so that the small echo's frame is a few stores and a copy.
    #[inline]
    fn write_server_frame(&mut self, opcode: OpCode, payload: &[u8]) {
        self.encode_frame(
            FrameHeader {
                fin: true,
                rsv: 0,
                opcode,
                mask: None,
                payload_len: payload.len() as u64,
            },
            payload,
        );
    }

    /// Appends `header` and `payload`, masking the payload with the header's key if any.
    #[inline(always)]
    fn encode_frame(&mut self, header: FrameHeader, payload: &[u8]) {
        let mask = header.mask;
        let mut raw = [0u8; MAX_HEADER_LEN];
        let header_len = header.encode(&mut raw);
        self.out.reserve(header_len + payload.len());
        if header_len == 2 {
            // A constant length: two stores instead of a call to `memcpy`.
            self.out.extend_from_slice(&raw[..2]);
        } else {
            self.out.extend_from_slice(&raw[..header_len]);
        }
        let start = self.out.len();
        self.out.extend_from_slice(payload);
        if let Some(key) = mask {
            apply_mask(&mut self.out[start..], key, 0);
        }
        self.out_peak = self.out_peak.max(self.out.len());
    }

    /// Whether `payload` (of an uncompressed frame) is queued without copying it.
    fn shares(&self, payload: &Bytes) -> bool {
        self.share_payloads && self.role == Role::Server && payload.len() >= SHARE_MIN
    }

    /// Appends one unmasked, uncompressed frame without copying its payload: the header (with
    /// what `out` held before it) and then `payload` itself join the shared runs.
    fn write_shared_frame(&mut self, opcode: OpCode, payload: &Bytes, fin: bool) {
        let header = FrameHeader {
            fin,
            rsv: 0,
            opcode,
            mask: None,
            payload_len: payload.len() as u64,
        };
        let mut raw = [0u8; MAX_HEADER_LEN];
        let header_len = header.encode(&mut raw);
        self.out.extend_from_slice(&raw[..header_len]);
        let head = self.out.split().freeze();
        let shared = self.shared.get_or_insert_with(Box::default);
        shared.push(head);
        shared.push(payload.clone());
    }

    /// Copies the shared runs into `out`, so the output holds no other buffer (see
    /// [`Connection::own_output`]).
    pub(super) fn unshare(&mut self) {
        let capacity = self.len();
        let Some(shared) = self.shared.as_deref_mut().filter(|shared| shared.len != 0) else {
            return;
        };
        self.out = shared.drain_into(capacity, &self.out);
        self.out_peak = self.out_peak.max(self.out.len());
    }

    /// Whether a server's whole uncompressed frame may go out ahead of the queue (see
    /// [`super::DirectFrame`]): nothing waits to be sent, so order is kept; no fragmented
    /// message is being sent (section 5.4); no compression; no pong is held back.
    #[inline]
    pub(super) fn may_write_direct(&self) -> bool {
        self.role == Role::Server
            && self.len() == 0
            && self.sending.is_none()
            && self.deflating.is_none()
            && self.pending_pong.is_none()
    }

    /// Queues what a driver's own write of a frame left unwritten: `header` and then
    /// `payload`, of which the first `written` bytes went out. A large rest of the payload is
    /// shared as [`Writer::write_shared_frame`] shares one, a small one copied.
    pub(super) fn queue_unwritten(&mut self, header: &[u8], payload: &Bytes, written: usize) {
        self.out
            .extend_from_slice(header.get(written..).unwrap_or_default());
        let rest = payload.slice(written.saturating_sub(header.len()).min(payload.len())..);
        if self.shares(&rest) {
            let shared = self.shared.get_or_insert_with(Box::default);
            if !self.out.is_empty() {
                shared.push(self.out.split().freeze());
            }
            shared.push(rest);
        } else {
            self.out.extend_from_slice(&rest);
            self.out_peak = self.out_peak.max(self.out.len());
        }
    }

    /// Appends a frame encoded elsewhere (a server's [`super::PreparedFrame`]): shared as it
    /// is when large and the output is vectored, copied otherwise.
    pub(super) fn push_encoded(&mut self, frame: &Bytes) {
        if self.share_payloads && frame.len() >= SHARE_MIN {
            let shared = self.shared.get_or_insert_with(Box::default);
            if !self.out.is_empty() {
                shared.push(self.out.split().freeze());
            }
            shared.push(frame.clone());
        } else {
            self.out.extend_from_slice(frame);
            self.out_peak = self.out_peak.max(self.out.len());
        }
    }

    /// Appends a control frame whose payload the caller has bounded to 125 bytes.
    pub(super) fn write_control(&mut self, opcode: OpCode, payload: &[u8]) {
        self.write_frame(opcode, payload, true, 0);
    }

    /// Appends one fragment of a data message, choosing the opcode (section 5.4) and, on a
    /// message's first fragment, whether it is compressed (RSV1, RFC 7692 section 6).
    /// `shared`, when given, holds the same bytes as `payload` and may be queued instead of
    /// copied.
    fn write_fragment(
        &mut self,
        kind: MessageKind,
        payload: &[u8],
        shared: Option<&Bytes>,
        fin: bool,
        compression: Compression,
    ) -> Result<(), SendError> {
        let opcode = match (self.sending, kind) {
            (None, MessageKind::Text) => OpCode::Text,
            (None, MessageKind::Binary) => OpCode::Binary,
            (Some(open), _) if open == kind => OpCode::Continuation,
            (Some(_), _) => return Err(SendError::MessageInProgress),
        };
        if self.sending.is_none() {
            if let Some(deflating) = self.deflating.as_mut() {
                deflating.sending_compressed = compression == Compression::Allowed;
            }
        }
        match self.deflating.as_mut().filter(|d| d.sending_compressed) {
            Some(deflating) => {
                let mut compressed = std::mem::take(&mut deflating.scratch);
                compressed.clear();
                deflating.compressor.compress(payload, fin, &mut compressed);
                let rsv = if opcode == OpCode::Continuation {
                    0
                } else {
                    RSV1
                };
                self.write_frame(opcode, &compressed, fin, rsv);
                if let Some(deflating) = self.deflating.as_mut() {
                    deflating.scratch = compressed;
                }
            }
            None => match shared.filter(|b| self.shares(b)) {
                Some(shared) => self.write_shared_frame(opcode, shared, fin),
                None => self.write_frame(opcode, payload, fin, 0),
            },
        }
        self.sending = if fin { None } else { Some(kind) };
        Ok(())
    }
}

impl Connection {
    /// Tells the connection whether its driver writes output with vectored writes (all of
    /// [`Connection::output_slices`] at once). When it does, a server queues the payloads of
    /// large uncompressed messages sent with [`Connection::send`] as they are, behind their
    /// frame header, instead of copying them into the output; the output then comes in
    /// several runs. Off by default: the output is one contiguous run.
    pub fn set_vectored_output(&mut self, vectored: bool) {
        self.writer.share_payloads = vectored;
    }

    /// Copies the output queued without copying (see [`Connection::set_vectored_output`])
    /// into the connection's own buffer. For a driver whose payloads are slices of a large
    /// shared read buffer: when the transport did not take all the output, this keeps a
    /// backed-up connection from holding a whole read buffer per payload it still owes
    /// (each payload is copied at most once, and only then).
    pub fn own_output(&mut self) {
        self.writer.unshare();
    }

    /// When no output waits, trades the connection's output buffer for `buffer` and returns
    /// `true`: whatever `buffer` holds becomes the waiting output, and `buffer` gets the
    /// connection's empty buffer (with its room). Otherwise it changes nothing and returns
    /// `false`. A driver with many connections lends one warm buffer to whichever connection
    /// it serves and takes it back once the output is written, as uWebSockets writes every
    /// socket's output of a loop turn through one per-loop cork buffer: no connection then
    /// holds an output buffer while idle, and none is allocated per connection.
    #[inline]
    pub fn trade_output_buffer(&mut self, buffer: &mut BytesMut) -> bool {
        if self.writer.len() != 0 {
            return false;
        }
        std::mem::swap(&mut self.writer.out, buffer);
        self.writer.out_peak = self.writer.out.len();
        true
    }

    fn ensure_open(&self) -> Result<(), SendError> {
        match self.state {
            ConnectionState::Open => Ok(()),
            _ => Err(SendError::Closed),
        }
    }

    /// Queues a whole message as one frame (compressed if permessage-deflate was negotiated).
    pub fn send(&mut self, message: &Message) -> Result<(), SendError> {
        self.send_with(message, Compression::Allowed)
    }

    /// Queues a whole message as one frame, choosing whether it may be compressed.
    pub fn send_with(
        &mut self,
        message: &Message,
        compression: Compression,
    ) -> Result<(), SendError> {
        self.ensure_open()?;
        if self.writer.sending.is_some() {
            return Err(SendError::MessageInProgress);
        }
        let shared = match message {
            Message::Text(text) => text.as_bytes(),
            Message::Binary(bytes) => bytes,
        };
        self.writer
            .write_fragment(message.kind(), shared, Some(shared), true, compression)
    }

    /// Queues a whole text message.
    #[inline]
    pub fn send_text(&mut self, text: &str) -> Result<(), SendError> {
        self.send_whole(MessageKind::Text, text.as_bytes())
    }

    /// Queues a whole binary message.
    #[inline]
    pub fn send_binary(&mut self, data: &[u8]) -> Result<(), SendError> {
        self.send_whole(MessageKind::Binary, data)
    }

    fn send_whole(&mut self, kind: MessageKind, payload: &[u8]) -> Result<(), SendError> {
        self.ensure_open()?;
        if self.writer.sending.is_some() {
            return Err(SendError::MessageInProgress);
        }
        if self.role == Role::Server && self.writer.deflating.is_none() {
            self.writer.write_server_frame(kind.into(), payload);
            return Ok(());
        }
        self.writer
            .write_fragment(kind, payload, None, true, Compression::Allowed)
    }

    /// Queues part of a message (.NET's `WebSocket.SendAsync` with `endOfMessage`): the first part
    /// carries the kind, later parts are continuations, `end_of_message` ends it. Text parts
    /// may split a character, but together they must be UTF-8; a part that makes them invalid
    /// is refused and not sent.
    pub fn send_fragment(
        &mut self,
        kind: MessageKind,
        payload: &[u8],
        end_of_message: bool,
    ) -> Result<(), SendError> {
        self.send_fragment_with(kind, payload, end_of_message, Compression::Allowed)
    }

    /// Queues part of a message as [`Connection::send_fragment`] does, choosing whether the
    /// message may be compressed (only the first part's choice counts).
    pub fn send_fragment_with(
        &mut self,
        kind: MessageKind,
        payload: &[u8],
        end_of_message: bool,
        compression: Compression,
    ) -> Result<(), SendError> {
        self.ensure_open()?;
        if matches!(self.writer.sending, Some(open) if open != kind) {
            return Err(SendError::MessageInProgress);
        }
        if kind == MessageKind::Text {
            let mut check = self.writer.utf8.clone();
            check.feed(payload).map_err(|_| SendError::InvalidUtf8)?;
            if end_of_message {
                check.finish().map_err(|_| SendError::InvalidUtf8)?;
            }
            self.writer.utf8 = check;
        }
        self.writer
            .write_fragment(kind, payload, None, end_of_message, compression)
    }

    /// Queues a ping (section 5.5.2); its payload is at most 125 bytes.
    pub fn send_ping(&mut self, payload: &[u8]) -> Result<(), SendError> {
        self.send_control(OpCode::Ping, payload)
    }

    /// Queues an unsolicited pong, a one-way heartbeat (section 5.5.3).
    pub fn send_pong(&mut self, payload: &[u8]) -> Result<(), SendError> {
        self.send_control(OpCode::Pong, payload)
    }

    fn send_control(&mut self, opcode: OpCode, payload: &[u8]) -> Result<(), SendError> {
        self.ensure_open()?;
        if payload.len() > MAX_CONTROL_PAYLOAD {
            return Err(SendError::ControlPayloadTooLong);
        }
        self.writer.write_control(opcode, payload);
        Ok(())
    }

    /// Starts the close handshake (section 7.1.2) with `code` and `reason` (cut to 123 bytes at
    /// a character boundary). Afterwards no data may be sent; received data still arrives until
    /// the peer's reply.
    pub fn close(&mut self, code: CloseCode, reason: &str) -> Result<(), SendError> {
        if !code.is_sendable() {
            return Err(SendError::InvalidCloseCode(code.0));
        }
        self.ensure_open()?;
        self.send_close_frame(Some(CloseFrame::new(code, reason)));
        self.closed_locally = true;
        self.state = ConnectionState::CloseSent;
        Ok(())
    }
}
