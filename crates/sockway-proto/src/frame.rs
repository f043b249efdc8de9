//! The frame header (RFC 6455 section 5.2): parsing from a byte stream that may arrive in any
//! number of pieces, and encoding with the minimal length form that section 5.2 requires.

use crate::error::ProtocolError;
use crate::mask::apply_mask;
use crate::message::MessageKind;

/// The largest header: 2 fixed bytes, 8 bytes of extended length, 4 bytes of masking key.
pub const MAX_HEADER_LEN: usize = 14;

/// The largest payload of a control frame (RFC 6455 section 5.5).
pub const MAX_CONTROL_PAYLOAD: usize = 125;

/// A frame opcode (RFC 6455 section 5.2). Reserved opcodes are not representable: meeting one
/// on the wire fails the connection (section 5.2, "the receiving endpoint MUST _Fail_").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OpCode {
    /// `0x0`: continues a fragmented data message (section 5.4).
    Continuation,
    /// `0x1`: starts a text message, whose payload must be UTF-8.
    Text,
    /// `0x2`: starts a binary message.
    Binary,
    /// `0x8`: the close control frame (section 5.5.1).
    Close,
    /// `0x9`: the ping control frame (section 5.5.2).
    Ping,
    /// `0xA`: the pong control frame (section 5.5.3).
    Pong,
}

impl OpCode {
    /// Decodes the 4-bit opcode field; `None` for the reserved values 0x3-0x7 and 0xB-0xF.
    pub fn from_bits(bits: u8) -> Option<Self> {
        Some(match bits {
            0x0 => Self::Continuation,
            0x1 => Self::Text,
            0x2 => Self::Binary,
            0x8 => Self::Close,
            0x9 => Self::Ping,
            0xA => Self::Pong,
            _ => return None,
        })
    }

    /// The 4-bit wire value.
    pub fn bits(self) -> u8 {
        match self {
            Self::Continuation => 0x0,
            Self::Text => 0x1,
            Self::Binary => 0x2,
            Self::Close => 0x8,
            Self::Ping => 0x9,
            Self::Pong => 0xA,
        }
    }

    /// Control frames are those with the high opcode bit set (section 5.5).
    pub fn is_control(self) -> bool {
        self.bits() & 0x8 != 0
    }
}

/// A parsed frame header. The payload follows it on the wire and is handled by the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    /// FIN: this is the final fragment of a message (section 5.2).
    pub fin: bool,
    /// RSV1, RSV2 and RSV3 as the low three bits (RSV1 = 0b100); meaningful only with an
    /// extension that defines them (RFC 7692 uses RSV1).
    pub rsv: u8,
    /// The frame's opcode.
    pub opcode: OpCode,
    /// The masking key, present on every client-to-server frame (section 5.3).
    pub mask: Option<[u8; 4]>,
    /// The payload length in bytes.
    pub payload_len: u64,
}

/// RSV1's position inside [`FrameHeader::rsv`].
pub const RSV1: u8 = 0b100;

impl FrameHeader {
    /// Parses a header from the start of `buf`.
    ///
    /// Returns `Ok(None)` when `buf` holds only part of a header (feed more bytes and call
    /// again: parsing is stateless, so a stream split at any byte yields the same headers),
    /// `Ok(Some((header, header_len)))` once complete. Fails on a reserved opcode and on a
    /// 64-bit length with its most significant bit set (section 5.2).
    #[inline]
    pub fn parse(buf: &[u8]) -> Result<Option<(Self, usize)>, ProtocolError> {
        let [b0, b1, ..] = *buf else {
            return Ok(None);
        };
        // Both refusals come as soon as the bytes they judge are in, before the masking key.
        let opcode =
            OpCode::from_bits(b0 & 0x0F).ok_or(ProtocolError::ReservedOpcode(b0 & 0x0F))?;
        let Some((raw, header_len)) = RawFrameHeader::parse(buf) else {
            if b1 & 0x7F == 127 && buf.len() >= 10 && buf[2] & 0x80 != 0 {
                return Err(ProtocolError::LengthTopBitSet);
            }
            return Ok(None);
        };
        if raw.payload_len >> 63 != 0 {
            return Err(ProtocolError::LengthTopBitSet);
        }
        let header = Self {
            fin: raw.fin,
            rsv: raw.rsv,
            opcode,
            mask: raw.mask,
            payload_len: raw.payload_len,
        };
        Ok(Some((header, header_len)))
    }

    /// The number of bytes [`FrameHeader::encode`] writes for this header.
    pub fn encoded_len(&self) -> usize {
        let len_bytes = match self.payload_len {
            0..=125 => 0,
            126..=0xFFFF => 2,
            _ => 8,
        };
        2 + len_bytes + if self.mask.is_some() { 4 } else { 0 }
    }

    /// Encodes the header into `dst` using the minimal length encoding (section 5.2: "the
    /// minimal number of bytes MUST be used"), returning the number of bytes written.
    #[inline]
    pub fn encode(&self, dst: &mut [u8; MAX_HEADER_LEN]) -> usize {
        dst[0] = (u8::from(self.fin) << 7) | ((self.rsv & 0b111) << 4) | self.opcode.bits();
        let mask_bit = if self.mask.is_some() { 0x80 } else { 0 };
        let mut at = 2;
        match self.payload_len {
            len @ 0..=125 => dst[1] = mask_bit | len as u8,
            len @ 126..=0xFFFF => {
                dst[1] = mask_bit | 126;
                dst[2..4].copy_from_slice(&(len as u16).to_be_bytes());
                at = 4;
            }
            len => {
                dst[1] = mask_bit | 127;
                dst[2..10].copy_from_slice(&len.to_be_bytes());
                at = 10;
            }
        }
        if let Some(key) = self.mask {
            dst[at..at + 4].copy_from_slice(&key);
            at += 4;
        }
        at
    }
}

/// The length of a frame header from its second byte (RFC 6455 section 5.2): 2 bytes, plus 2
/// or 8 for an extended payload length (7-bit length 126 or 127), plus 4 for a masking key.
#[inline]
pub const fn header_len(second: u8) -> usize {
    let ext = match second & 0x7F {
        126 => 2,
        127 => 8,
        _ => 0,
    };
    2 + ext + if second & 0x80 != 0 { 4 } else { 0 }
}

/// A frame header read as it stands on the wire, without judging it: any opcode, any length.
///
/// For code that forwards frames it does not own, such as a gateway relaying bytes between a
/// client and a backend: it needs to know where frames begin and end (RFC 6455 section 5.2),
/// while judging the frames is left to the endpoints. [`FrameHeader::parse`] is this parse
/// plus the checks an endpoint must make.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawFrameHeader {
    /// FIN: this is the final fragment of a message.
    pub fin: bool,
    /// RSV1, RSV2 and RSV3 as the low three bits, as in [`FrameHeader::rsv`].
    pub rsv: u8,
    /// The 4-bit opcode field as sent, reserved values included.
    pub opcode: u8,
    /// The masking key, if the MASK bit is set (section 5.3).
    pub mask: Option<[u8; 4]>,
    /// The payload length as sent (the top bit, which section 5.2 forbids, is not checked).
    pub payload_len: u64,
}

impl RawFrameHeader {
    /// Parses a header from the start of `buf`: `None` while `buf` holds only part of one
    /// (see [`header_len`] for how many bytes it needs), else the header and its length.
    /// Never fails: every byte sequence is some header.
    #[inline]
    pub fn parse(buf: &[u8]) -> Option<(Self, usize)> {
        let [b0, b1, ref rest @ ..] = *buf else {
            return None;
        };
        // Each length form reads its bytes with one bounds check (the 7-bit form, the
        // common one, with none).
        let (payload_len, rest, len) = match b1 & 0x7F {
            126 => {
                let (ext, rest) = rest.split_first_chunk::<2>()?;
                (u64::from(u16::from_be_bytes(*ext)), rest, 4)
            }
            127 => {
                let (ext, rest) = rest.split_first_chunk::<8>()?;
                (u64::from_be_bytes(*ext), rest, 10)
            }
            small => (u64::from(small), rest, 2),
        };
        let (mask, len) = if b1 & 0x80 != 0 {
            (Some(*rest.first_chunk::<4>()?), len + 4)
        } else {
            (None, len)
        };
        debug_assert_eq!(len, header_len(b1));
        let header = Self {
            fin: b0 & 0x80 != 0,
            rsv: (b0 >> 4) & 0b111,
            opcode: b0 & 0x0F,
            mask,
            payload_len,
        };
        Some((header, len))
    }
}

/// One whole frame as bytes: the header with `fin` set, then `payload`, masked with `mask`
/// when given (a client's frames must be masked, RFC 6455 section 5.3).
///
/// For code that writes a single frame outside a [`crate::Connection`], such as a gateway
/// closing both ends of a relayed session on their behalf; a connection writes its frames
/// into its own output buffer instead.
pub fn encode_frame(opcode: OpCode, payload: &[u8], mask: Option<[u8; 4]>) -> Vec<u8> {
    encode_whole_frame(opcode, 0, payload, mask).0
}

/// [`encode_frame`] with these RSV bits (RSV1 marks a compressed message, RFC 7692 section
/// 6), also returning the header's length (at most [`MAX_HEADER_LEN`]).
pub(crate) fn encode_whole_frame(
    opcode: OpCode,
    rsv: u8,
    payload: &[u8],
    mask: Option<[u8; 4]>,
) -> (Vec<u8>, usize) {
    let header = FrameHeader {
        fin: true,
        rsv,
        opcode,
        mask,
        payload_len: payload.len() as u64,
    };
    let mut raw = [0u8; MAX_HEADER_LEN];
    let len = header.encode(&mut raw);
    let mut frame = Vec::with_capacity(len + payload.len());
    frame.extend_from_slice(&raw[..len]);
    frame.extend_from_slice(payload);
    if let Some(key) = mask {
        apply_mask(&mut frame[len..], key, 0);
    }
    (frame, len)
}

/// A data message's opcode (RFC 6455 section 5.6).
impl From<MessageKind> for OpCode {
    fn from(kind: MessageKind) -> Self {
        match kind {
            MessageKind::Text => OpCode::Text,
            MessageKind::Binary => OpCode::Binary,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(opcode: OpCode, len: u64, mask: Option<[u8; 4]>) -> FrameHeader {
        FrameHeader {
            fin: true,
            rsv: 0,
            opcode,
            mask,
            payload_len: len,
        }
    }

    #[test]
    fn lengths_use_the_minimal_encoding() {
        for (len, expected) in [
            (0, 2),
            (125, 2),
            (126, 4),
            (65535, 4),
            (65536, 10),
            (u32::MAX as u64 + 1, 10),
        ] {
            let h = header(OpCode::Binary, len, None);
            let mut buf = [0; MAX_HEADER_LEN];
            assert_eq!(h.encode(&mut buf), expected, "len {len}");
            assert_eq!(h.encoded_len(), expected);
            assert_eq!(
                FrameHeader::parse(&buf[..expected]).unwrap(),
                Some((h, expected))
            );
        }
    }

    #[test]
    fn a_header_split_anywhere_parses_only_when_complete() {
        let h = header(OpCode::Text, 70_000, Some([1, 2, 3, 4]));
        let mut buf = [0; MAX_HEADER_LEN];
        let n = h.encode(&mut buf);
        for cut in 0..n {
            assert_eq!(FrameHeader::parse(&buf[..cut]).unwrap(), None, "cut {cut}");
        }
        assert_eq!(FrameHeader::parse(&buf[..n]).unwrap(), Some((h, n)));
    }

    #[test]
    fn reserved_opcodes_are_refused() {
        for bits in (0x3..=0x7).chain(0xB..=0xF) {
            assert_eq!(
                FrameHeader::parse(&[0x80 | bits, 0]),
                Err(ProtocolError::ReservedOpcode(bits))
            );
        }
    }

    #[test]
    fn a_64_bit_length_with_the_top_bit_set_is_refused() {
        let buf = [0x82, 127, 0x80, 0, 0, 0, 0, 0, 0, 0];
        assert_eq!(
            FrameHeader::parse(&buf),
            Err(ProtocolError::LengthTopBitSet)
        );
    }

    #[test]
    fn rsv_bits_and_fin_are_read() {
        let (h, _) = FrameHeader::parse(&[0x70 | 0x1, 0]).unwrap().unwrap();
        assert!(!h.fin);
        assert_eq!(h.rsv, 0b111);
        assert_eq!(h.opcode, OpCode::Text);
    }

    #[test]
    fn header_len_matches_the_encoder() {
        for len in [0u64, 125, 126, 65_535, 65_536] {
            for mask in [None, Some([9, 8, 7, 6])] {
                let h = header(OpCode::Binary, len, mask);
                let mut buf = [0; MAX_HEADER_LEN];
                let n = h.encode(&mut buf);
                assert_eq!(header_len(buf[1]), n, "len {len}, mask {mask:?}");
            }
        }
    }

    #[test]
    fn the_raw_parse_reads_what_the_strict_one_refuses() {
        // Reserved opcode 0x3, and a 64-bit length with its top bit set, masked.
        assert_eq!(
            RawFrameHeader::parse(&[0x83, 0]),
            Some((
                RawFrameHeader {
                    fin: true,
                    rsv: 0,
                    opcode: 3,
                    mask: None,
                    payload_len: 0
                },
                2
            ))
        );
        let buf = [0x02, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 1, 1, 2, 3, 4];
        for cut in 0..buf.len() {
            assert_eq!(RawFrameHeader::parse(&buf[..cut]), None, "cut {cut}");
        }
        let (raw, n) = RawFrameHeader::parse(&buf).unwrap();
        assert_eq!(n, 14);
        assert!(!raw.fin);
        assert_eq!(raw.payload_len, (1 << 63) | 1);
        assert_eq!(raw.mask, Some([1, 2, 3, 4]));
        assert_eq!(
            FrameHeader::parse(&buf),
            Err(ProtocolError::LengthTopBitSet)
        );
    }

    #[test]
    fn the_raw_and_strict_parses_agree_on_valid_headers() {
        let h = FrameHeader {
            fin: false,
            rsv: RSV1,
            opcode: OpCode::Text,
            mask: Some([1, 2, 3, 4]),
            payload_len: 300,
        };
        let mut buf = [0; MAX_HEADER_LEN];
        let n = h.encode(&mut buf);
        let (raw, raw_len) = RawFrameHeader::parse(&buf[..n]).unwrap();
        assert_eq!(raw_len, n);
        assert_eq!(
            (raw.fin, raw.rsv, raw.opcode, raw.mask, raw.payload_len),
            (h.fin, h.rsv, h.opcode.bits(), h.mask, h.payload_len)
        );
    }

    #[test]
    fn encode_frame_masks_and_round_trips() {
        assert_eq!(
            encode_frame(OpCode::Close, &[0x03, 0xE9], None),
            [0x88, 2, 0x03, 0xE9]
        );
        let key = [0xA, 0xB, 0xC, 0xD];
        let frame = encode_frame(OpCode::Text, b"hello", Some(key));
        let (h, n) = FrameHeader::parse(&frame).unwrap().unwrap();
        assert_eq!(
            (h.opcode, h.mask, h.payload_len, n),
            (OpCode::Text, Some(key), 5, 6)
        );
        let mut payload = frame[n..].to_vec();
        apply_mask(&mut payload, key, 0);
        assert_eq!(payload, b"hello");
    }
}
