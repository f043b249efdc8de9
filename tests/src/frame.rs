//! RFC 6455 frames as the test suites write and read them, implemented here from section 5
//! independently of `sockway-proto`, so that the code under test never checks itself.
//!
//! [`Frame`] builds any frame, including the ones a correct endpoint must refuse (reserved bits
//! and opcodes, wrong masking, oversized control frames, a declared length that differs from
//! the bytes that follow). [`FrameReader`] parses what a peer sends and rejects anything that
//! breaks the rules a *sender* must follow, and [`Assembler`] turns the frames into
//! message-level [`Event`]s, so that a peer is judged by what it means, not by how it chose to
//! fragment.

use std::fmt;
use std::sync::atomic::{AtomicU32, Ordering};

use bytes::{Buf, BytesMut};

/// Opcode of a continuation frame (section 5.2).
pub const OP_CONT: u8 = 0x0;
/// Opcode of a text frame.
pub const OP_TEXT: u8 = 0x1;
/// Opcode of a binary frame.
pub const OP_BINARY: u8 = 0x2;
/// Opcode of a close frame.
pub const OP_CLOSE: u8 = 0x8;
/// Opcode of a ping frame.
pub const OP_PING: u8 = 0x9;
/// Opcode of a pong frame.
pub const OP_PONG: u8 = 0xA;

/// RSV1 as it appears in [`Frame::rsv`] (the high one of the three bits).
pub const RSV1: u8 = 0b100;
/// RSV2.
pub const RSV2: u8 = 0b010;
/// RSV3.
pub const RSV3: u8 = 0b001;

/// Which end writes a frame: clients mask, servers do not (section 5.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sender {
    /// The end that opened the connection.
    Client,
    /// The end that accepted it.
    Server,
}

/// Whether a frame is masked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Masking {
    /// As the sender must: masked from a client, unmasked from a server.
    Auto,
    /// The opposite of what the sender must do (a violation).
    Wrong,
}

/// A frame to send. Build with the constructors, adjust with the modifiers, encode with
/// [`Frame::encode`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// FIN bit.
    pub fin: bool,
    /// RSV1-3 as three bits ([`RSV1`], [`RSV2`], [`RSV3`]).
    pub rsv: u8,
    /// The 4-bit opcode, reserved values included.
    pub opcode: u8,
    /// The payload (unmasked).
    pub payload: Vec<u8>,
    /// Masking relative to the sender's duty.
    pub masking: Masking,
    /// A payload length to announce instead of the payload's real length, for sending only a
    /// header (or a header and part of a payload) of a frame.
    pub declared_len: Option<u64>,
}

impl Frame {
    /// A final frame with any opcode.
    pub fn raw(opcode: u8, payload: impl Into<Vec<u8>>) -> Self {
        Self {
            fin: true,
            rsv: 0,
            opcode,
            payload: payload.into(),
            masking: Masking::Auto,
            declared_len: None,
        }
    }

    /// A final text frame.
    pub fn text(payload: impl Into<Vec<u8>>) -> Self {
        Self::raw(OP_TEXT, payload)
    }

    /// A final binary frame.
    pub fn binary(payload: impl Into<Vec<u8>>) -> Self {
        Self::raw(OP_BINARY, payload)
    }

    /// A final continuation frame.
    pub fn cont(payload: impl Into<Vec<u8>>) -> Self {
        Self::raw(OP_CONT, payload)
    }

    /// A ping.
    pub fn ping(payload: impl Into<Vec<u8>>) -> Self {
        Self::raw(OP_PING, payload)
    }

    /// A pong.
    pub fn pong(payload: impl Into<Vec<u8>>) -> Self {
        Self::raw(OP_PONG, payload)
    }

    /// A close frame with a status code and no reason.
    pub fn close(code: u16) -> Self {
        Self::close_with(code, b"")
    }

    /// A close frame with a status code and a reason (any bytes, valid UTF-8 or not).
    pub fn close_with(code: u16, reason: &[u8]) -> Self {
        let mut payload = code.to_be_bytes().to_vec();
        payload.extend_from_slice(reason);
        Self::raw(OP_CLOSE, payload)
    }

    /// A close frame with an empty payload (no status code).
    pub fn close_empty() -> Self {
        Self::raw(OP_CLOSE, Vec::new())
    }

    /// Sets FIN.
    pub fn fin(mut self, fin: bool) -> Self {
        self.fin = fin;
        self
    }

    /// Sets the reserved bits.
    pub fn rsv(mut self, rsv: u8) -> Self {
        self.rsv = rsv & 0b111;
        self
    }

    /// Masks the frame the wrong way for its sender (section 5.1 violation).
    pub fn wrong_masking(mut self) -> Self {
        self.masking = Masking::Wrong;
        self
    }

    /// Announces `len` payload bytes whatever the payload holds.
    pub fn declared_len(mut self, len: u64) -> Self {
        self.declared_len = Some(len);
        self
    }

    /// Whether `sender` masks this frame.
    pub fn is_masked_by(&self, sender: Sender) -> bool {
        (sender == Sender::Client) == (self.masking == Masking::Auto)
    }

    /// The header's length on the wire.
    pub fn header_len(&self, sender: Sender) -> usize {
        let len = self.declared_len.unwrap_or(self.payload.len() as u64);
        let ext = match len {
            0..=125 => 0,
            126..=0xFFFF => 2,
            _ => 8,
        };
        2 + ext + if self.is_masked_by(sender) { 4 } else { 0 }
    }

    /// The frame's bytes as `sender` writes them, with the minimal length encoding
    /// (section 5.2) and, when masked, a fresh non-zero masking key (section 5.3).
    pub fn encode(&self, sender: Sender) -> Vec<u8> {
        let masked = self.is_masked_by(sender);
        let len = self.declared_len.unwrap_or(self.payload.len() as u64);
        let mut out = Vec::with_capacity(14 + self.payload.len());
        out.push((u8::from(self.fin) << 7) | ((self.rsv & 0b111) << 4) | (self.opcode & 0x0F));
        let mask_bit = if masked { 0x80 } else { 0 };
        match len {
            0..=125 => out.push(mask_bit | len as u8),
            126..=0xFFFF => {
                out.push(mask_bit | 126);
                out.extend_from_slice(&(len as u16).to_be_bytes());
            }
            _ => {
                out.push(mask_bit | 127);
                out.extend_from_slice(&len.to_be_bytes());
            }
        }
        if masked {
            let key = next_mask_key();
            out.extend_from_slice(&key);
            out.extend(self.payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
        } else {
            out.extend_from_slice(&self.payload);
        }
        out
    }
}

/// Masking keys that vary from frame to frame and always have all four bytes set, so that a
/// receiver that forgets to unmask cannot pass by accident.
fn next_mask_key() -> [u8; 4] {
    static STATE: AtomicU32 = AtomicU32::new(0x9E37_79B9);
    let mut x = STATE.fetch_add(0x6D2B_79F5, Ordering::Relaxed);
    x ^= x >> 15;
    x = x.wrapping_mul(0x2C1B_3C6D);
    x ^= x >> 12;
    x.to_be_bytes().map(|b| b | 0x01)
}

/// A frame as received, unmasked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawFrame {
    /// FIN bit.
    pub fin: bool,
    /// Opcode (only the six defined ones get this far).
    pub opcode: u8,
    /// The masking key, if the frame was masked on the wire.
    pub mask_key: Option<[u8; 4]>,
    /// The payload, unmasked.
    pub payload: Vec<u8>,
}

/// Parses the frames a peer sends, enforcing what section 5 asks of every sender: no reserved
/// bits or opcodes, masking by clients only (and always), minimal length encoding, a 64-bit
/// length with its top bit clear, control frames final and at most 125 bytes.
#[derive(Debug)]
pub struct FrameReader {
    /// Who sends the frames being read.
    pub sender: Sender,
}

impl FrameReader {
    /// Parses one frame from the front of `buf`; `Ok(None)` when more bytes are needed. The
    /// error names the rule the peer broke.
    pub fn next_frame(&self, buf: &mut BytesMut) -> Result<Option<RawFrame>, String> {
        if buf.len() < 2 {
            return Ok(None);
        }
        let (b0, b1) = (buf[0], buf[1]);
        let fin = b0 & 0x80 != 0;
        let rsv = (b0 >> 4) & 0b111;
        let opcode = b0 & 0x0F;
        let masked = b1 & 0x80 != 0;
        if rsv != 0 {
            return Err(format!("peer set reserved bits {rsv:03b}"));
        }
        if !matches!(
            opcode,
            OP_CONT | OP_TEXT | OP_BINARY | OP_CLOSE | OP_PING | OP_PONG
        ) {
            return Err(format!("peer used reserved opcode {opcode:#x}"));
        }
        match (self.sender, masked) {
            (Sender::Client, false) => return Err("client frame is not masked".into()),
            (Sender::Server, true) => return Err("server frame is masked".into()),
            _ => {}
        }
        let (len, mut at) = match b1 & 0x7F {
            126 => {
                let Some(b) = buf.get(2..4) else {
                    return Ok(None);
                };
                let len = u64::from(u16::from_be_bytes([b[0], b[1]]));
                if len < 126 {
                    return Err(format!("length {len} not minimally encoded (16-bit form)"));
                }
                (len, 4)
            }
            127 => {
                let Some(b) = buf.get(2..10) else {
                    return Ok(None);
                };
                let len = u64::from_be_bytes(b.try_into().expect("8 bytes"));
                if len >> 63 != 0 {
                    return Err("64-bit length has its top bit set".into());
                }
                if len <= 0xFFFF {
                    return Err(format!("length {len} not minimally encoded (64-bit form)"));
                }
                (len, 10)
            }
            small => (u64::from(small), 2),
        };
        if opcode & 0x8 != 0 {
            if !fin {
                return Err(format!("fragmented control frame (opcode {opcode:#x})"));
            }
            if len > 125 {
                return Err(format!("control frame of {len} bytes"));
            }
        }
        let key = if masked {
            let Some(k) = buf.get(at..at + 4) else {
                return Ok(None);
            };
            at += 4;
            Some([k[0], k[1], k[2], k[3]])
        } else {
            None
        };
        let len = usize::try_from(len).map_err(|_| format!("frame of {len} bytes"))?;
        if buf.len() < at + len {
            return Ok(None);
        }
        buf.advance(at);
        let mut payload = buf.split_to(len).to_vec();
        if let Some(key) = key {
            for (i, b) in payload.iter_mut().enumerate() {
                *b ^= key[i % 4];
            }
        }
        Ok(Some(RawFrame {
            fin,
            opcode,
            mask_key: key,
            payload,
        }))
    }
}

/// Something the peer did, at the level an application sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A whole text message (already checked to be UTF-8).
    Text(Vec<u8>),
    /// A whole binary message.
    Binary(Vec<u8>),
    /// A ping with its payload.
    Ping(Vec<u8>),
    /// A pong with its payload.
    Pong(Vec<u8>),
    /// A close frame: its status code (`None` when empty) and reason.
    Close(Option<u16>, String),
    /// The peer closed the TCP connection (end of stream).
    Eof,
}

impl Event {
    /// A text message event from a string.
    pub fn text(s: impl AsRef<[u8]>) -> Self {
        Self::Text(s.as_ref().to_vec())
    }

    /// A binary message event.
    pub fn binary(b: impl AsRef<[u8]>) -> Self {
        Self::Binary(b.as_ref().to_vec())
    }

    /// A pong event.
    pub fn pong(b: impl AsRef<[u8]>) -> Self {
        Self::Pong(b.as_ref().to_vec())
    }
}

/// Shows a payload briefly: its length, and its start as text or hex.
pub fn brief(payload: &[u8]) -> String {
    const SHOWN: usize = 24;
    let head = &payload[..payload.len().min(SHOWN)];
    let more = if payload.len() > SHOWN { "…" } else { "" };
    match std::str::from_utf8(head) {
        Ok(s) if s.chars().all(|c| !c.is_control()) => {
            format!("{} B {:?}{more}", payload.len(), s)
        }
        _ => {
            let hex: Vec<String> = head.iter().map(|b| format!("{b:02x}")).collect();
            format!("{} B [{}{more}]", payload.len(), hex.join(" "))
        }
    }
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Text(p) => write!(f, "text({})", brief(p)),
            Self::Binary(p) => write!(f, "binary({})", brief(p)),
            Self::Ping(p) => write!(f, "ping({})", brief(p)),
            Self::Pong(p) => write!(f, "pong({})", brief(p)),
            Self::Close(Some(code), reason) if reason.is_empty() => write!(f, "close({code})"),
            Self::Close(Some(code), reason) => write!(f, "close({code}, {reason:?})"),
            Self::Close(None, _) => write!(f, "close(no status)"),
            Self::Eof => write!(f, "end of stream"),
        }
    }
}

/// Whether a close code may appear in a close frame (RFC 6455 section 7.4.1 and 7.4.2, and the
/// IANA registry of section 11.7, which added 1012-1014): 1000-1003, 1007-1014, 3000-4999.
pub fn is_valid_close_code(code: u16) -> bool {
    matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999)
}

/// Whether a close payload is well formed (section 5.5.1): empty, or a valid code followed by
/// UTF-8.
pub fn is_valid_close_payload(payload: &[u8]) -> bool {
    match payload {
        [] => true,
        [_] => false,
        [hi, lo, reason @ ..] => {
            is_valid_close_code(u16::from_be_bytes([*hi, *lo]))
                && std::str::from_utf8(reason).is_ok()
        }
    }
}

/// Turns a peer's frames into [`Event`]s, checking the message-level rules a sender must
/// follow (section 5.4 fragmentation, section 5.6 UTF-8 text, section 5.5.1 close payloads, and
/// nothing after a close frame).
#[derive(Debug, Default)]
pub struct Assembler {
    message: Option<(u8, Vec<u8>)>,
    closed: bool,
    /// Bytes of a message the peer had started but not finished when it sent its close frame
    /// (allowed: a frame-by-frame echo may fail in the middle of a message).
    pub unfinished_at_close: Option<usize>,
}

impl Assembler {
    /// Feeds one frame; returns the event it completes, if any.
    pub fn push(&mut self, frame: RawFrame) -> Result<Option<Event>, String> {
        if self.closed {
            return Err(format!(
                "frame (opcode {:#x}) after the close frame",
                frame.opcode
            ));
        }
        match frame.opcode {
            OP_PING => Ok(Some(Event::Ping(frame.payload))),
            OP_PONG => Ok(Some(Event::Pong(frame.payload))),
            OP_CLOSE => {
                self.closed = true;
                self.unfinished_at_close = self.message.take().map(|(_, data)| data.len());
                let p = &frame.payload;
                if !is_valid_close_payload(p) {
                    return Err(format!("invalid close payload [{}]", brief(p)));
                }
                Ok(Some(match p.len() {
                    0 => Event::Close(None, String::new()),
                    _ => Event::Close(
                        Some(u16::from_be_bytes([p[0], p[1]])),
                        String::from_utf8_lossy(&p[2..]).into_owned(),
                    ),
                }))
            }
            OP_TEXT | OP_BINARY => {
                if self.message.is_some() {
                    return Err("new data frame inside a fragmented message".into());
                }
                self.message = Some((frame.opcode, frame.payload));
                self.finish_if(frame.fin)
            }
            _ => {
                let Some((_, data)) = self.message.as_mut() else {
                    return Err("continuation frame without a message to continue".into());
                };
                data.extend_from_slice(&frame.payload);
                self.finish_if(frame.fin)
            }
        }
    }

    fn finish_if(&mut self, fin: bool) -> Result<Option<Event>, String> {
        if !fin {
            return Ok(None);
        }
        let (opcode, data) = self.message.take().expect("a message is open");
        if opcode == OP_BINARY {
            return Ok(Some(Event::Binary(data)));
        }
        if std::str::from_utf8(&data).is_err() {
            return Err(format!("text message is not UTF-8 [{}]", brief(&data)));
        }
        Ok(Some(Event::Text(data)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_examples_encode_and_parse() {
        // Section 5.7: a single-frame unmasked text message "Hello".
        let frame = Frame::text("Hello").encode(Sender::Server);
        assert_eq!(frame, [0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f]);
        let mut buf = BytesMut::from(&frame[..]);
        let reader = FrameReader {
            sender: Sender::Server,
        };
        let raw = reader.next_frame(&mut buf).unwrap().unwrap();
        assert_eq!(raw.payload, b"Hello");
        // 256 bytes use the 16-bit form, 65536 the 64-bit form.
        assert_eq!(
            &Frame::binary(vec![0; 256]).encode(Sender::Server)[..4],
            [0x82, 0x7E, 0x01, 0x00]
        );
        let big = Frame::binary(vec![0; 65536]).encode(Sender::Server);
        assert_eq!(&big[..10], [0x82, 0x7F, 0, 0, 0, 0, 0, 1, 0, 0]);
        // A masked frame round-trips.
        let mut buf = BytesMut::from(&Frame::text("Hello").encode(Sender::Client)[..]);
        let reader = FrameReader {
            sender: Sender::Client,
        };
        assert_eq!(
            reader.next_frame(&mut buf).unwrap().unwrap().payload,
            b"Hello"
        );
    }

    #[test]
    fn non_minimal_lengths_are_refused() {
        let reader = FrameReader {
            sender: Sender::Server,
        };
        let mut buf = BytesMut::from(&[0x82, 0x7E, 0x00, 0x05, 1, 2, 3, 4, 5][..]);
        assert!(reader.next_frame(&mut buf).is_err());
    }
}
