//! What can go wrong: violations by the peer ([`ProtocolError`], each with the close code that
//! RFC 6455 section 7.4.1 assigns, which `close` maps) and misuse by the local application
//! ([`SendError`]).

/// The peer broke the protocol or a limit; the connection is failed with [`Self::close_code`]
/// (RFC 6455 section 7.1.7).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    /// A client sent an unmasked frame (section 5.1: the server MUST close the connection).
    #[error("frame from client is not masked")]
    UnmaskedFrame,
    /// A server sent a masked frame (section 5.1: the client MUST close the connection).
    #[error("frame from server is masked")]
    MaskedFrame,
    /// RSV bits set that no negotiated extension defines (section 5.2).
    #[error("reserved bits set without an extension that defines them")]
    ReservedBits,
    /// An opcode the protocol reserves (section 5.2).
    #[error("reserved opcode {0:#x}")]
    ReservedOpcode(u8),
    /// A 64-bit payload length with its most significant bit set (section 5.2).
    #[error("64-bit payload length has its most significant bit set")]
    LengthTopBitSet,
    /// A control frame with more than 125 bytes of payload (section 5.5).
    #[error("control frame payload over 125 bytes")]
    ControlFrameTooLong,
    /// A control frame without FIN (section 5.5: control frames MUST NOT be fragmented).
    #[error("fragmented control frame")]
    FragmentedControlFrame,
    /// A continuation frame with no message to continue (section 5.4).
    #[error("continuation frame without a message to continue")]
    UnexpectedContinuation,
    /// A new text or binary frame while a fragmented message is still open (section 5.4).
    #[error("new data frame inside a fragmented message")]
    ExpectedContinuation,
    /// A close payload of exactly one byte (section 5.5.1).
    #[error("close frame payload of one byte")]
    OneByteClosePayload,
    /// A close code that may not be sent (section 7.4).
    #[error("invalid close code {0}")]
    InvalidCloseCode(u16),
    /// A close reason that is not UTF-8 (section 5.5.1).
    #[error("close reason is not valid UTF-8")]
    InvalidCloseReason,
    /// A text message that is not UTF-8 (section 8.1), detected at its first invalid byte.
    #[error("text message is not valid UTF-8")]
    InvalidUtf8,
    /// A frame larger than [`crate::Config::max_frame_size`].
    #[error("frame of {size} bytes exceeds the limit of {limit} bytes")]
    FrameTooBig {
        /// The announced payload length.
        size: u64,
        /// The configured limit.
        limit: usize,
    },
    /// A message larger than [`crate::Config::max_message_size`].
    #[error("message exceeds the limit of {limit} bytes")]
    MessageTooBig {
        /// The configured limit.
        limit: usize,
    },
    /// An extension failed to process a message (for example, corrupt compressed data).
    #[error("extension error: {0}")]
    Extension(String),
}

/// The local application asked for something the protocol does not allow now.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// A close frame was already sent or received: no more data may be sent (section 5.5.1).
    #[error("the connection is closing or closed")]
    Closed,
    /// A control frame payload over 125 bytes (section 5.5).
    #[error("control frame payload over 125 bytes")]
    ControlPayloadTooLong,
    /// A close code that may not be sent (section 7.4).
    #[error("close code {0} may not be sent")]
    InvalidCloseCode(u16),
    /// A fragment of one message type while a message of the other type is being sent
    /// (section 5.4: fragments of different messages MUST NOT interleave).
    #[error("a fragmented message of another type is still being sent")]
    MessageInProgress,
    /// Text fragments that do not form valid UTF-8.
    #[error("text fragment is not valid UTF-8")]
    InvalidUtf8,
}
