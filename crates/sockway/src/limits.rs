//! [`ServerLimits`]: the limits both servers hold a connection to before a WebSocket opens,
//! and how long their shutdown waits. One type with one set of defaults, so that the
//! [`Server`](crate::server::Server) runner and the event-loop server cannot drift apart.

use std::time::Duration;

use sockway_proto::handshake::HeadLimits;

/// Server-wide limits shared by the server runner (`ServerOptions::limits`) and the
/// event-loop server (`EventLoopOptions::limits`).
///
/// | setting | default | why |
/// |---|---|---|
/// | [`handshake_timeout`](Self::handshake_timeout) | 10 s | a client that has not sent a whole request head by then (slowloris) is dropped (408 where the server can still answer) |
/// | [`max_connections`](Self::max_connections) | 10 000 | bounds sockets and memory; more get 503 |
/// | [`max_header_bytes`](Self::max_header_bytes) | 32 KiB | bounds the memory of a request head; larger heads get 431 (the size ASP.NET Core's Kestrel server allows by default; [`HeadLimits`]'s default) |
/// | [`max_headers`](Self::max_headers) | 100 | more header fields get 431 (hyper's own default; [`HeadLimits`]'s default) |
/// | [`drain_timeout`](Self::drain_timeout) | 10 s | on shutdown, how long open connections get to finish their close handshake |
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerLimits {
    /// How long a client has, from connecting, to send its whole request head.
    pub handshake_timeout: Duration,
    /// Most connections open at once; connections beyond it are answered 503 and closed.
    pub max_connections: usize,
    /// Most bytes a request head (request line and header fields) may take.
    pub max_header_bytes: usize,
    /// Most header fields a request may have.
    pub max_headers: usize,
    /// How long shutdown waits for open connections to close after asking them to.
    pub drain_timeout: Duration,
}

impl Default for ServerLimits {
    fn default() -> Self {
        Self {
            handshake_timeout: Duration::from_secs(10),
            max_connections: 10_000,
            max_header_bytes: HeadLimits::default().max_bytes,
            max_headers: HeadLimits::default().max_fields,
            drain_timeout: Duration::from_secs(10),
        }
    }
}

impl ServerLimits {
    /// Sets [`ServerLimits::handshake_timeout`] (at least 1 ms).
    pub fn handshake_timeout(mut self, timeout: Duration) -> Self {
        self.handshake_timeout = timeout.max(Duration::from_millis(1));
        self
    }

    /// Sets [`ServerLimits::max_connections`] (at least 1).
    pub fn max_connections(mut self, max: usize) -> Self {
        self.max_connections = max.max(1);
        self
    }

    /// Sets [`ServerLimits::max_header_bytes`] (at least 1 KiB: a browser's handshake alone
    /// takes several hundred bytes).
    pub fn max_header_bytes(mut self, bytes: usize) -> Self {
        self.max_header_bytes = bytes.max(HeadLimits::MIN_BYTES);
        self
    }

    /// Sets [`ServerLimits::max_headers`] (at least 8).
    pub fn max_headers(mut self, max: usize) -> Self {
        self.max_headers = max.max(HeadLimits::MIN_FIELDS);
        self
    }

    /// The request head limits as the core's [`HeadLimits`], which both servers' head
    /// readers take ([`sockway_proto::handshake::check_head`], [`sockway_proto::handshake::accept`]).
    pub fn head(&self) -> HeadLimits {
        HeadLimits {
            max_bytes: self.max_header_bytes,
            max_fields: self.max_headers,
        }
    }

    /// Sets [`ServerLimits::drain_timeout`].
    pub fn drain_timeout(mut self, timeout: Duration) -> Self {
        self.drain_timeout = timeout;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn setters_keep_values_within_their_floors() {
        let limits = ServerLimits::default()
            .handshake_timeout(Duration::ZERO)
            .max_connections(0)
            .max_header_bytes(10)
            .max_headers(1)
            .drain_timeout(Duration::ZERO);
        assert_eq!(limits.handshake_timeout, Duration::from_millis(1));
        assert_eq!(limits.max_connections, 1);
        assert_eq!(limits.max_header_bytes, 1024);
        assert_eq!(limits.max_headers, 8);
        assert_eq!(limits.drain_timeout, Duration::ZERO);
    }
}
