//! The frame header (RFC 6455 section 5.2): parsing from a byte stream that may arrive in any
//! number of pieces, and encoding with the minimal length form that section 5.2 requires.

use crate::error::ProtocolError;

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
    pub fn parse(buf: &[u8]) -> Result<Option<(Self, usize)>, ProtocolError> {
        let [b0, b1, ..] = *buf else {
            return Ok(None);
        };
        let opcode =
            OpCode::from_bits(b0 & 0x0F).ok_or(ProtocolError::ReservedOpcode(b0 & 0x0F))?;
        let masked = b1 & 0x80 != 0;
        let (payload_len, len_bytes) = match b1 & 0x7F {
            126 => match buf.get(2..4) {
                Some(b) => (u64::from(u16::from_be_bytes([b[0], b[1]])), 2),
                None => return Ok(None),
            },
            127 => match buf.get(2..10) {
                Some(b) => {
                    let mut raw = [0u8; 8];
                    raw.copy_from_slice(b);
                    let len = u64::from_be_bytes(raw);
                    if len >> 63 != 0 {
                        return Err(ProtocolError::LengthTopBitSet);
                    }
                    (len, 8)
                }
                None => return Ok(None),
            },
            small => (u64::from(small), 0),
        };
        let mut header_len = 2 + len_bytes;
        let mask = if masked {
            let Some(key) = buf.get(header_len..header_len + 4) else {
                return Ok(None);
            };
            header_len += 4;
            Some([key[0], key[1], key[2], key[3]])
        } else {
            None
        };
        let header = Self {
            fin: b0 & 0x80 != 0,
            rsv: (b0 >> 4) & 0b111,
            opcode,
            mask,
            payload_len,
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
}
