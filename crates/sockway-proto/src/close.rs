//! Close status codes (RFC 6455 section 7.4) and the close frame payload (section 5.5.1).

use std::fmt;

use bytes::{BufMut, Bytes, BytesMut};

use crate::error::ProtocolError;

/// A close status code (RFC 6455 section 7.4), the `CloseStatus` an application reads after a
/// close. Any `u16` can be held; [`CloseCode::is_sendable`] says which may appear on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CloseCode(pub u16);

impl CloseCode {
    /// 1000: the purpose of the connection has been fulfilled.
    pub const NORMAL: Self = Self(1000);
    /// 1001: the endpoint is going away (server shutdown, page navigation).
    pub const GOING_AWAY: Self = Self(1001);
    /// 1002: the peer broke the protocol.
    pub const PROTOCOL_ERROR: Self = Self(1002);
    /// 1003: a data type the endpoint cannot accept (e.g. binary to a text-only endpoint).
    pub const UNSUPPORTED_DATA: Self = Self(1003);
    /// 1005: reported locally when a close frame carried no status; never sent.
    pub const NO_STATUS: Self = Self(1005);
    /// 1006: reported locally when the connection ended without a close frame; never sent.
    pub const ABNORMAL: Self = Self(1006);
    /// 1007: a message's data was not consistent with its type (invalid UTF-8 in text).
    pub const INVALID_PAYLOAD: Self = Self(1007);
    /// 1008: a message violated the endpoint's policy.
    pub const POLICY_VIOLATION: Self = Self(1008);
    /// 1009: a message was too big to process.
    pub const MESSAGE_TOO_BIG: Self = Self(1009);
    /// 1010: the client expected the server to negotiate an extension it did not.
    pub const MANDATORY_EXTENSION: Self = Self(1010);
    /// 1011: the server met an unexpected condition.
    pub const INTERNAL_ERROR: Self = Self(1011);
    /// 1012: the service is restarting (IANA registry).
    pub const SERVICE_RESTART: Self = Self(1012);
    /// 1013: try again later (IANA registry).
    pub const TRY_AGAIN_LATER: Self = Self(1013);
    /// 1014: a gateway received an invalid response from upstream (IANA registry).
    pub const BAD_GATEWAY: Self = Self(1014);
    /// 1015: reported locally when the TLS handshake failed; never sent.
    pub const TLS_HANDSHAKE: Self = Self(1015);

    /// Whether this code may appear in a close frame (section 7.4): the defined codes
    /// 1000-1003 and 1007-1014, and 3000-4999 (registered and private use). 1004-1006 and 1015
    /// are reserved or local-only; everything else below 3000 is unassigned, and 5000 and up
    /// are outside the defined ranges.
    pub fn is_sendable(self) -> bool {
        matches!(self.0, 1000..=1003 | 1007..=1014 | 3000..=4999)
    }
}

impl From<u16> for CloseCode {
    fn from(code: u16) -> Self {
        Self(code)
    }
}

impl From<CloseCode> for u16 {
    fn from(code: CloseCode) -> Self {
        code.0
    }
}

impl fmt::Display for CloseCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Which close code fails the connection for each violation: the mapping of section 7.4.1,
/// beside the codes themselves.
impl ProtocolError {
    /// The close code that reports this violation (section 7.4.1).
    pub fn close_code(&self) -> CloseCode {
        match self {
            Self::InvalidUtf8 | Self::InvalidCloseReason => CloseCode::INVALID_PAYLOAD,
            Self::FrameTooBig { .. } | Self::MessageTooBig { .. } => CloseCode::MESSAGE_TOO_BIG,
            _ => CloseCode::PROTOCOL_ERROR,
        }
    }
}

/// The largest close reason: a control payload holds 125 bytes, two of which carry the code.
pub const MAX_REASON_LEN: usize = 123;

/// A close frame's status code and reason (`CloseStatus` + `CloseStatusDescription`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CloseFrame {
    /// The status code.
    pub code: CloseCode,
    /// The reason, valid UTF-8 of at most [`MAX_REASON_LEN`] bytes.
    pub reason: String,
}

impl CloseFrame {
    /// A close frame with `code` and `reason`, the reason cut at a character boundary so it
    /// fits in a control frame.
    pub fn new(code: CloseCode, reason: &str) -> Self {
        Self {
            code,
            reason: truncate_reason(reason).to_owned(),
        }
    }

    /// Decodes a received close payload (section 5.5.1): empty means "no status" (`None`); one
    /// byte, or a code that may not be sent, is a protocol error (1002); a reason that is not
    /// UTF-8 is invalid data (1007).
    pub fn decode(payload: &[u8]) -> Result<Option<Self>, ProtocolError> {
        match payload {
            [] => Ok(None),
            [_] => Err(ProtocolError::OneByteClosePayload),
            [hi, lo, reason @ ..] => {
                let code = CloseCode(u16::from_be_bytes([*hi, *lo]));
                if !code.is_sendable() {
                    return Err(ProtocolError::InvalidCloseCode(code.0));
                }
                let reason = simdutf8::basic::from_utf8(reason)
                    .map_err(|_| ProtocolError::InvalidCloseReason)?;
                Ok(Some(Self {
                    code,
                    reason: reason.to_owned(),
                }))
            }
        }
    }

    /// Encodes the payload: the code in network byte order, then the reason.
    pub fn encode(&self) -> Bytes {
        let reason = truncate_reason(&self.reason);
        let mut buf = BytesMut::with_capacity(2 + reason.len());
        buf.put_u16(self.code.0);
        buf.put_slice(reason.as_bytes());
        buf.freeze()
    }
}

impl fmt::Display for CloseFrame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.reason.is_empty() {
            write!(f, "{}", self.code)
        } else {
            write!(f, "{} ({})", self.code, self.reason)
        }
    }
}

/// Cuts `reason` to at most [`MAX_REASON_LEN`] bytes without splitting a character.
pub fn truncate_reason(reason: &str) -> &str {
    if reason.len() <= MAX_REASON_LEN {
        return reason;
    }
    let mut end = MAX_REASON_LEN;
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    &reason[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sendable_codes_follow_section_7_4() {
        for ok in [
            1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 3999,
            4000, 4999,
        ] {
            assert!(CloseCode(ok).is_sendable(), "{ok}");
        }
        for bad in [
            0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535,
        ] {
            assert!(!CloseCode(bad).is_sendable(), "{bad}");
        }
    }

    #[test]
    fn payloads_decode_with_the_right_errors() {
        assert_eq!(CloseFrame::decode(&[]), Ok(None));
        assert_eq!(
            CloseFrame::decode(&[3]),
            Err(ProtocolError::OneByteClosePayload)
        );
        assert_eq!(
            CloseFrame::decode(&[0x03, 0xED]),
            Err(ProtocolError::InvalidCloseCode(1005))
        );
        assert_eq!(
            CloseFrame::decode(&[0x03, 0xE8, 0xFF]),
            Err(ProtocolError::InvalidCloseReason)
        );
        let frame = CloseFrame::decode(&[0x03, 0xE8, b'b', b'y', b'e'])
            .unwrap()
            .unwrap();
        assert_eq!(frame, CloseFrame::new(CloseCode::NORMAL, "bye"));
        assert_eq!(&frame.encode()[..], &[0x03, 0xE8, b'b', b'y', b'e']);
    }

    #[test]
    fn long_reasons_are_cut_at_a_character_boundary() {
        let reason = "é".repeat(100);
        let cut = truncate_reason(&reason);
        assert!(cut.len() <= MAX_REASON_LEN);
        assert_eq!(cut.len(), 122);
    }
}
