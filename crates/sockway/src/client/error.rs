//! Client errors as an enumeration an application can branch on (the Windows
//! Runtime's `WebErrorStatus`): each variant names what happened, and its message says what to try.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use http::{HeaderMap, StatusCode};
use sockway_proto::{CloseCode, SendError};

/// The step of a connection an operation was in when it failed or timed out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Phase {
    /// Looking up the host name.
    Resolve,
    /// Opening TCP connections (RFC 8305 address racing).
    Connect,
    /// The TLS handshake of a `wss://` connection.
    Tls,
    /// The opening handshake: the HTTP/1.1 upgrade (RFC 6455 section 4.1), or the HTTP/2
    /// connection setup and extended CONNECT (RFC 8441 section 5).
    Handshake,
    /// Sending a message.
    Send,
    /// Waiting for a message (receive timeout or keep-alive).
    Receive,
    /// The closing handshake (RFC 6455 section 7).
    Close,
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Phase::Resolve => "name resolution",
            Phase::Connect => "TCP connect",
            Phase::Tls => "TLS handshake",
            Phase::Handshake => "WebSocket handshake",
            Phase::Send => "send",
            Phase::Receive => "receive",
            Phase::Close => "close handshake",
        })
    }
}

/// Why a client operation failed. Match on the variant to branch on the cause; the message
/// (`Display`) says what happened and what to try. [`ClientError::status`] gives the bare
/// category, like the Windows Runtime's `WebErrorStatus`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The URL is not a usable `ws://` or `wss://` URL (RFC 6455 section 3).
    #[error(
        "invalid WebSocket URL {url:?}: {reason} (expected ws://host[:port][/path] or wss://...)"
    )]
    InvalidUrl {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A client setting cannot be used (an invalid header, an unreadable certificate file...).
    #[error("invalid client setting: {0}")]
    InvalidSetting(String),
    /// The host name has no address.
    #[error("host {host:?} not found ({detail}); check the name, DNS, or /etc/hosts")]
    HostNotFound {
        /// The name looked up.
        host: String,
        /// The resolver's answer.
        detail: String,
    },
    /// Every address tried refused the TCP connection: nothing listens on that port.
    #[error("connection refused by {addrs:?}; is the server running on that port?")]
    Refused {
        /// The addresses that refused.
        addrs: Vec<SocketAddr>,
    },
    /// Every address tried failed for another reason (unreachable network, ...).
    #[error("could not connect to {addrs:?}: {detail}; check the network and firewall")]
    Unreachable {
        /// The addresses tried.
        addrs: Vec<SocketAddr>,
        /// The last failure.
        detail: String,
    },
    /// An operation took longer than its timeout.
    #[error("timed out during {phase} after {after:?}; the server may be slow or unreachable, or raise the timeout")]
    Timeout {
        /// What was going on.
        phase: Phase,
        /// The timeout that expired.
        after: Duration,
    },
    /// The server's TLS certificate was not accepted.
    #[error("server certificate rejected: {reason}; check the host name in the URL and trust the server's CA (a CA file), or, for testing only, accept invalid certificates")]
    Certificate {
        /// Why (expired, unknown issuer, wrong name, ...).
        reason: String,
    },
    /// The TLS handshake failed for another reason than the certificate.
    #[error("TLS handshake failed: {0}; is the server speaking TLS on that port (wss://)?")]
    Tls(String),
    /// The server answered the upgrade request with another status than 101 (RFC 6455
    /// section 4.1): wrong path, authentication required, origin refused, ...
    #[error(
        "handshake rejected with HTTP status {status}; check the path, credentials and origin"
    )]
    Rejected {
        /// The status.
        status: StatusCode,
        /// The response headers (e.g. `WWW-Authenticate`, `Location`).
        headers: Box<HeaderMap>,
    },
    /// The server's response is not a valid WebSocket handshake response (RFC 6455 section
    /// 4.1: bad accept key, unoffered subprotocol, malformed HTTP, oversized head...).
    #[error("invalid handshake response: {0}; is this a WebSocket endpoint?")]
    InvalidResponse(String),
    /// HTTP/2 was required ([`super::HttpVersion::Http2Only`]) but the server does not offer
    /// WebSockets over it: no `h2` through ALPN (RFC 7301), or no
    /// `SETTINGS_ENABLE_CONNECT_PROTOCOL` (RFC 8441 section 3).
    #[error("WebSockets over HTTP/2 are not available: {0}; allow HTTP/1.1 (HttpVersion::Auto) or enable RFC 8441 on the server")]
    Http2Unavailable(String),
    /// The peer broke the protocol or a limit; the connection was failed with `code`
    /// (1002, 1007, 1009...; RFC 6455 section 7.4.1).
    #[error("protocol violation by the server (close {code}): {detail}")]
    Protocol {
        /// The close code sent to the peer.
        code: CloseCode,
        /// What the peer did.
        detail: String,
    },
    /// The connection was reset or broken by the peer or the network.
    #[error("connection reset ({0}); the server or a proxy dropped the connection")]
    Reset(io::Error),
    /// The connection ended without a close handshake (close status 1006).
    #[error("connection closed abnormally (1006): the server went away without a close frame")]
    Abnormal,
    /// The peer closed the connection with a close frame; no more data can be sent.
    #[error("the server closed the connection ({code}{sep}{reason})", sep = if reason.is_empty() { "" } else { ": " })]
    ClosedByPeer {
        /// The peer's status code (1005 if its close frame had none).
        code: CloseCode,
        /// The peer's reason.
        reason: String,
    },
    /// This side already closed the connection.
    #[error("the connection is closed")]
    Closed,
    /// The operation was cancelled by the application.
    #[error("cancelled by the application")]
    Cancelled,
    /// A send the protocol does not allow (e.g. bytes that are not UTF-8 as a text message).
    #[error("cannot send: {0}")]
    Send(SendError),
    /// Another I/O error.
    #[error("I/O error: {0}")]
    Io(io::Error),
}

/// The category of a [`ClientError`], without details: for branching, logging and exit codes
/// (the Windows Runtime's `WebErrorStatus`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorStatus {
    /// [`ClientError::InvalidUrl`] or [`ClientError::InvalidSetting`].
    InvalidInput,
    /// [`ClientError::HostNotFound`].
    HostNotFound,
    /// [`ClientError::Refused`].
    Refused,
    /// [`ClientError::Unreachable`].
    Unreachable,
    /// [`ClientError::Timeout`].
    Timeout,
    /// [`ClientError::Certificate`].
    CertificateError,
    /// [`ClientError::Tls`].
    TlsError,
    /// [`ClientError::Rejected`].
    Rejected,
    /// [`ClientError::InvalidResponse`].
    InvalidResponse,
    /// [`ClientError::Http2Unavailable`].
    Http2Unavailable,
    /// [`ClientError::Protocol`].
    ProtocolViolation,
    /// [`ClientError::Reset`] or [`ClientError::Abnormal`].
    ConnectionLost,
    /// [`ClientError::ClosedByPeer`] or [`ClientError::Closed`].
    Closed,
    /// [`ClientError::Cancelled`].
    Cancelled,
    /// [`ClientError::Send`] or [`ClientError::Io`].
    Other,
}

impl ClientError {
    /// The category of this error.
    pub fn status(&self) -> ErrorStatus {
        match self {
            Self::InvalidUrl { .. } | Self::InvalidSetting(_) => ErrorStatus::InvalidInput,
            Self::HostNotFound { .. } => ErrorStatus::HostNotFound,
            Self::Refused { .. } => ErrorStatus::Refused,
            Self::Unreachable { .. } => ErrorStatus::Unreachable,
            Self::Timeout { .. } => ErrorStatus::Timeout,
            Self::Certificate { .. } => ErrorStatus::CertificateError,
            Self::Tls(_) => ErrorStatus::TlsError,
            Self::Rejected { .. } => ErrorStatus::Rejected,
            Self::InvalidResponse(_) => ErrorStatus::InvalidResponse,
            Self::Http2Unavailable(_) => ErrorStatus::Http2Unavailable,
            Self::Protocol { .. } => ErrorStatus::ProtocolViolation,
            Self::Reset(_) | Self::Abnormal => ErrorStatus::ConnectionLost,
            Self::ClosedByPeer { .. } | Self::Closed => ErrorStatus::Closed,
            Self::Cancelled => ErrorStatus::Cancelled,
            Self::Send(_) | Self::Io(_) => ErrorStatus::Other,
        }
    }

    /// Whether the error happened before the WebSocket was established (resolve, connect, TLS,
    /// handshake), as opposed to on an open connection.
    pub fn is_connect_error(&self) -> bool {
        matches!(
            self,
            Self::InvalidUrl { .. }
                | Self::InvalidSetting(_)
                | Self::HostNotFound { .. }
                | Self::Refused { .. }
                | Self::Unreachable { .. }
                | Self::Certificate { .. }
                | Self::Tls(_)
                | Self::Rejected { .. }
                | Self::InvalidResponse(_)
                | Self::Http2Unavailable(_)
                | Self::Cancelled
        ) || matches!(
            self,
            Self::Timeout { phase, .. }
                if matches!(phase, Phase::Resolve | Phase::Connect | Phase::Tls | Phase::Handshake)
        )
    }

    pub(crate) fn invalid_url(url: &str, reason: impl Into<String>) -> Self {
        Self::InvalidUrl {
            url: url.to_owned(),
            reason: reason.into(),
        }
    }

    /// Maps a transport error: resets and broken pipes are [`ClientError::Reset`].
    pub(crate) fn from_io(error: io::Error) -> Self {
        match error.kind() {
            io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe => Self::Reset(error),
            io::ErrorKind::UnexpectedEof => Self::Abnormal,
            _ => Self::Io(error),
        }
    }
}

impl From<crate::Error> for ClientError {
    fn from(error: crate::Error) -> Self {
        match error {
            crate::Error::Io(e) => Self::from_io(e),
            crate::Error::Protocol(e) => Self::Protocol {
                code: e.close_code(),
                detail: e.to_string(),
            },
            crate::Error::Send(SendError::Closed) | crate::Error::Closed => Self::Closed,
            crate::Error::Send(e) => Self::Send(e),
            crate::Error::AbnormalClosure => Self::Abnormal,
            crate::Error::KeepAliveTimeout(after) => Self::Timeout {
                phase: Phase::Receive,
                after,
            },
            crate::Error::CloseTimeout => Self::Timeout {
                phase: Phase::Close,
                after: Duration::ZERO,
            },
            // The clients read in one style only; kept as what it says, should that change.
            error @ crate::Error::PartlyReceived => Self::Io(io::Error::other(error)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engine_errors_map_to_categories() {
        let reset = io::Error::from(io::ErrorKind::ConnectionReset);
        assert_eq!(
            ClientError::from(crate::Error::Io(reset)).status(),
            ErrorStatus::ConnectionLost
        );
        let e = ClientError::from(crate::Error::Protocol(
            sockway_proto::ProtocolError::MaskedFrame,
        ));
        assert!(
            matches!(e, ClientError::Protocol { code, .. } if code == CloseCode::PROTOCOL_ERROR)
        );
        assert_eq!(
            ClientError::from(crate::Error::AbnormalClosure).status(),
            ErrorStatus::ConnectionLost
        );
        assert!(ClientError::Cancelled.is_connect_error());
        assert!(!ClientError::Abnormal.is_connect_error());
    }
}
