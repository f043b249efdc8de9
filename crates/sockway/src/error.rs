//! Errors of an established WebSocket.

use sockway_proto::{CloseCode, CloseFrame, ProtocolError, SendError};

/// Why a WebSocket operation failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The transport failed (reset, broken pipe, ...).
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// The peer broke the protocol; the connection was failed with the error's close code.
    #[error("peer violated the protocol ({code}): {0}", code = .0.close_code())]
    Protocol(#[from] ProtocolError),
    /// The operation is not allowed now (for example sending after a close).
    #[error("not allowed: {0}")]
    Send(#[from] SendError),
    /// The transport ended without a close handshake (close status 1006).
    #[error("connection closed abnormally: the peer went away without a close frame")]
    AbnormalClosure,
    /// Keep-alive gave up: nothing arrived within the interval plus the timeout.
    #[error("keep-alive timeout: nothing received from the peer in {0:?}")]
    KeepAliveTimeout(std::time::Duration),
    /// The peer did not finish the close handshake in time.
    #[error("close handshake timed out")]
    CloseTimeout,
    /// The connection is already closed; its close status is available on the socket.
    #[error("the connection is closed")]
    Closed,
    /// `recv` was called while a message was partly read with `receive` or
    /// `recv_fragment`: that message can no longer be returned whole. Nothing changed; the
    /// socket stays usable, and `receive` or `recv_fragment` continue the message.
    #[error("a message was partly received by pieces (receive or recv_fragment); finish it with receive or recv_fragment before calling recv")]
    PartlyReceived,
}

impl Error {
    /// The close code this error stands for, as the application should report it.
    pub fn close_code(&self) -> CloseCode {
        match self {
            Self::Protocol(e) => e.close_code(),
            _ => CloseCode::ABNORMAL,
        }
    }
}

/// How the connection ended, for the application: .NET's `CloseStatus` and
/// `CloseStatusDescription`, plus who closed first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloseInfo {
    /// The status code: the peer's, 1005 if its close frame had none, or 1006 if it sent none.
    pub code: CloseCode,
    /// The peer's reason (empty when none).
    pub reason: String,
    /// Whether this side started the close (or failed the connection).
    pub initiated_locally: bool,
}

impl CloseInfo {
    pub(crate) fn from_parts(
        code: CloseCode,
        frame: Option<&CloseFrame>,
        initiated_locally: bool,
    ) -> Self {
        Self {
            code,
            reason: frame.map(|f| f.reason.clone()).unwrap_or_default(),
            initiated_locally,
        }
    }
}
