//! Data messages as an application sees them: text (always valid UTF-8) or binary.

use std::fmt;
use std::ops::Deref;

use bytes::Bytes;

/// The two kinds of data message (RFC 6455 section 5.6), .NET's `WebSocketMessageType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MessageKind {
    /// UTF-8 text.
    Text,
    /// Arbitrary bytes.
    Binary,
}

/// Bytes known to be valid UTF-8: a text message's payload, shared without copying.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct TextBytes(Bytes);

impl TextBytes {
    /// Wraps bytes after checking they are UTF-8.
    pub fn try_from_bytes(bytes: Bytes) -> Result<Self, crate::utf8::InvalidUtf8> {
        match simdutf8::basic::from_utf8(&bytes) {
            Ok(_) => Ok(Self(bytes)),
            Err(_) => Err(crate::utf8::InvalidUtf8),
        }
    }

    /// Wraps bytes the caller has already validated as UTF-8 (the connection validates every
    /// text message incrementally as it arrives, so it need not look again).
    pub(crate) fn from_validated(bytes: Bytes) -> Self {
        debug_assert!(std::str::from_utf8(&bytes).is_ok());
        Self(bytes)
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        // SAFETY: every constructor guarantees the bytes are valid UTF-8, and `Bytes` is
        // immutable.
        unsafe { std::str::from_utf8_unchecked(&self.0) }
    }

    /// The underlying bytes.
    pub fn as_bytes(&self) -> &Bytes {
        &self.0
    }

    /// Gives up the UTF-8 guarantee for the plain bytes.
    pub fn into_bytes(self) -> Bytes {
        self.0
    }
}

impl Deref for TextBytes {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl fmt::Debug for TextBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for TextBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<String> for TextBytes {
    fn from(s: String) -> Self {
        Self(Bytes::from(s))
    }
}

impl From<&'static str> for TextBytes {
    fn from(s: &'static str) -> Self {
        Self(Bytes::from_static(s.as_bytes()))
    }
}

/// A whole data message lent where it was read ([`crate::Connection::read_message_in_place`]):
/// a view into the driver's receive buffer, as uWebSockets hands its message handler a
/// `string_view`. Text is validated UTF-8 (RFC 6455 section 8.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageView<'a> {
    /// A text message.
    Text(&'a str),
    /// A binary message.
    Binary(&'a [u8]),
}

impl MessageView<'_> {
    /// Which kind this is.
    pub fn kind(&self) -> MessageKind {
        match self {
            Self::Text(_) => MessageKind::Text,
            Self::Binary(_) => MessageKind::Binary,
        }
    }

    /// The payload bytes.
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            Self::Text(text) => text.as_bytes(),
            Self::Binary(bytes) => bytes,
        }
    }

    /// The message to keep: its bytes copied.
    pub fn to_message(&self) -> Message {
        match self {
            Self::Text(text) => Message::text(String::from(*text)),
            Self::Binary(bytes) => Message::binary(Bytes::copy_from_slice(bytes)),
        }
    }
}

/// A whole data message.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Message {
    /// A text message.
    Text(TextBytes),
    /// A binary message.
    Binary(Bytes),
}

impl Message {
    /// A text message.
    pub fn text(text: impl Into<TextBytes>) -> Self {
        Self::Text(text.into())
    }

    /// A binary message.
    pub fn binary(bytes: impl Into<Bytes>) -> Self {
        Self::Binary(bytes.into())
    }

    /// Which kind this is.
    pub fn kind(&self) -> MessageKind {
        self.view().kind()
    }

    /// The payload bytes.
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            Self::Text(t) => t.as_bytes(),
            Self::Binary(b) => b,
        }
    }

    /// The message as a view of its bytes.
    pub fn view(&self) -> MessageView<'_> {
        match self {
            Self::Text(t) => MessageView::Text(t.as_str()),
            Self::Binary(b) => MessageView::Binary(b),
        }
    }

    /// The payload size in bytes.
    pub fn len(&self) -> usize {
        self.as_bytes().len()
    }

    /// Whether the payload is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The payload, with the text guarantee dropped.
    pub fn into_bytes(self) -> Bytes {
        match self {
            Self::Text(t) => t.into_bytes(),
            Self::Binary(b) => b,
        }
    }
}
