//! Telling an HTTP/1 client from an HTTP/2 one on a plain TCP connection, by peeking at its
//! first bytes without taking them.
//!
//! An HTTP/2 client without TLS starts with the connection preface (RFC 9113 section 3.4,
//! "prior knowledge"); anything that differs from the preface in the bytes received so far is
//! HTTP/1. The listener serves such a connection with hyper's HTTP/1 server directly, so
//! that after a WebSocket upgrade the relay can take the socket back out (see
//! [`crate::proxy::upgraded`]); when the first bytes cannot tell yet, it keeps hyper-util's
//! automatic server, which waits for the whole preface.

use sockway_proto::handshake::H2_PREFACE as PREFACE;
use tokio::net::TcpStream;

/// What the first bytes of a connection say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Preface {
    /// Not the HTTP/2 preface: HTTP/1.
    Http1,
    /// The preface, part of it, nothing yet, or an error: let the automatic server decide.
    Unknown,
}

/// Waits for the client's first bytes and classifies them (nothing is consumed).
pub async fn sniff(stream: &TcpStream) -> Preface {
    let mut buf = [0u8; 24];
    match stream.peek(&mut buf).await {
        Ok(n) => classify(&buf[..n.min(buf.len())]),
        Err(_) => Preface::Unknown,
    }
}

/// Classifies the first bytes received.
pub fn classify(first: &[u8]) -> Preface {
    if !first.is_empty() && !PREFACE.starts_with(first) {
        Preface::Http1
    } else {
        Preface::Unknown
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http1_methods_are_told_apart_early() {
        assert_eq!(classify(b"GET / HTTP/1.1\r\n"), Preface::Http1);
        assert_eq!(classify(b"G"), Preface::Http1);
        assert_eq!(classify(b"POST"), Preface::Http1);
        assert_eq!(classify(b"PUT / HTTP/1.1"), Preface::Http1);
        assert_eq!(classify(b"\r\nGET"), Preface::Http1);
    }

    #[test]
    fn the_preface_or_part_of_it_is_left_to_the_automatic_server() {
        assert_eq!(classify(PREFACE), Preface::Unknown);
        assert_eq!(classify(b"PRI * HTTP/2"), Preface::Unknown);
        assert_eq!(classify(b"P"), Preface::Unknown);
        assert_eq!(classify(b""), Preface::Unknown);
    }
}
