//! The opening handshake of the event-loop server: the core's
//! [`sockway_proto::handshake::accept`] reads the request head from the connection's input and
//! answers it (RFC 6455 section 4.2, the origin by the one [`OriginPolicy`] rule,
//! permessage-deflate by RFC 7692 section 5 when the options allow it), and this module turns
//! its answer into the bytes to send.
//!
//! [`OriginPolicy`]: sockway_proto::handshake::OriginPolicy

use bytes::BytesMut;
use http::{HeaderMap, StatusCode};
use sockway_proto::deflate::DeflateParams;
use sockway_proto::handshake::{self, Refusal, ServerRules};

use super::options::EventLoopOptions;

/// What a complete, acceptable request asked for.
#[derive(Debug)]
pub(super) struct Accepted {
    /// The 101 response to send.
    pub(super) response: BytesMut,
    /// Bytes of the head, so the caller can drop them from its input.
    pub(super) head_len: usize,
    /// The request target (path and query).
    pub(super) path: String,
    /// The `Origin` header, if any.
    pub(super) origin: Option<String>,
    /// The subprotocol chosen, if any.
    pub(super) subprotocol: Option<String>,
    /// The permessage-deflate terms, if the client offered it and the server takes it.
    pub(super) compression: Option<DeflateParams>,
}

/// Where the handshake stands after the bytes that arrived so far.
#[derive(Debug)]
pub(super) enum Outcome {
    /// The head is not complete yet and still within the limits.
    Incomplete,
    /// Accept: send the response, then speak WebSocket.
    Accept(Accepted),
    /// Refuse: send this response, then close.
    Refuse(BytesMut),
}

/// Looks at the request head in `input` (bytes from the connection start).
pub(super) fn examine(input: &[u8], options: &EventLoopOptions) -> Outcome {
    let rules = ServerRules {
        limits: options.limits.head(),
        origins: &options.origins,
        subprotocols: &options.subprotocols,
        compression: options.compression.as_ref(),
    };
    match handshake::accept(input, &rules) {
        Ok(None) => Outcome::Incomplete,
        Ok(Some(accepted)) => Outcome::Accept(Accepted {
            response: accepted.to_http1(),
            head_len: accepted.head_len,
            path: accepted.target,
            origin: accepted.offer.origin,
            subprotocol: accepted.subprotocol,
            compression: accepted.compression,
        }),
        Err(refusal) => Outcome::Refuse(refusal.to_http1()),
    }
}

/// A refusal: `status`, its headers, `Connection: close`, and `reason` as a plain-text body,
/// written by the core's [`Refusal::to_http1`].
pub(super) fn refusal(status: StatusCode, headers: &HeaderMap, reason: &str) -> BytesMut {
    Refusal::with_headers(status, headers.clone(), reason).to_http1()
}

#[cfg(test)]
mod tests {
    use super::*;

    const UPGRADE: &[u8] = b"GET /chat?x=1 HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n\
        Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
        Sec-WebSocket-Version: 13\r\nOrigin: https://good.example\r\n\
        Sec-WebSocket-Protocol: b, chat\r\n\r\n";

    fn text(bytes: &[u8]) -> String {
        String::from_utf8_lossy(bytes).into_owned()
    }

    #[test]
    fn accepts_a_valid_upgrade_with_the_rfc_accept_key_and_subprotocol() {
        let options = EventLoopOptions::default().subprotocols(["chat"]);
        let Outcome::Accept(accepted) = examine(UPGRADE, &options) else {
            panic!("refused")
        };
        let response = text(&accepted.response);
        assert!(response.starts_with("HTTP/1.1 101 Switching Protocols\r\n"));
        // The example key and accept value of RFC 6455 section 1.3.
        assert!(response.contains("sec-websocket-accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"));
        assert!(response.contains("sec-websocket-protocol: chat\r\n"));
        assert!(!response.contains("content-length"));
        assert_eq!(accepted.head_len, UPGRADE.len());
        assert_eq!(accepted.path, "/chat?x=1");
        assert_eq!(accepted.subprotocol.as_deref(), Some("chat"));
    }

    #[test]
    fn waits_for_the_rest_of_a_head_within_the_limit() {
        let options = EventLoopOptions::default();
        assert!(matches!(
            examine(&UPGRADE[..40], &options),
            Outcome::Incomplete
        ));
    }

    #[test]
    fn refuses_heads_over_the_limits_with_431() {
        // 1 KiB: the least the limit can be, as for the server runner.
        let options = EventLoopOptions::default().max_header_bytes(256);
        assert_eq!(options.limits.max_header_bytes, 1024);
        let long = vec![b'a'; 1100];
        let Outcome::Refuse(response) = examine(&long, &options) else {
            panic!("not refused")
        };
        assert!(text(&response).starts_with("HTTP/1.1 431 "));
        let mut many = b"GET / HTTP/1.1\r\n".to_vec();
        for i in 0..20 {
            many.extend_from_slice(format!("x-{i}: v\r\n").as_bytes());
        }
        many.extend_from_slice(b"\r\n");
        let options = EventLoopOptions::default().max_headers(8);
        let Outcome::Refuse(response) = examine(&many, &options) else {
            panic!("not refused")
        };
        assert!(text(&response).starts_with("HTTP/1.1 431 "));
    }

    #[test]
    fn refuses_what_the_rfc_refuses_with_its_status() {
        let options = EventLoopOptions::default();
        let post = text(UPGRADE).replacen("GET", "POST", 1);
        let Outcome::Refuse(response) = examine(post.as_bytes(), &options) else {
            panic!("not refused")
        };
        let response = text(&response);
        assert!(response.starts_with("HTTP/1.1 405 "), "{response}");
        assert!(response.contains("allow: GET\r\n"));
        let old = text(UPGRADE).replacen("Version: 13", "Version: 8", 1);
        let Outcome::Refuse(response) = examine(old.as_bytes(), &options) else {
            panic!("not refused")
        };
        let response = text(&response);
        assert!(response.starts_with("HTTP/1.1 426 "), "{response}");
        assert!(response.contains("sec-websocket-version: 13\r\n"));
        let Outcome::Refuse(response) = examine(b"GET / HTTP/1.1\r\n\x01\r\n\r\n", &options) else {
            panic!("not refused")
        };
        assert!(text(&response).starts_with("HTTP/1.1 400 "));
    }

    #[test]
    fn refuses_origins_outside_the_allowed_list_with_403() {
        let options = EventLoopOptions::default().allowed_origins(["https://other.example"]);
        let Outcome::Refuse(response) = examine(UPGRADE, &options) else {
            panic!("not refused")
        };
        let response = text(&response);
        assert!(response.starts_with("HTTP/1.1 403 "));
        assert!(response.contains("origin https://good.example is not allowed"));
        // The async server's rule: ports normalised, case ignored, an empty list allows all.
        let options = EventLoopOptions::default().allowed_origins(["https://GOOD.example:443"]);
        assert!(matches!(examine(UPGRADE, &options), Outcome::Accept(_)));
        let options = EventLoopOptions::default().allowed_origins(Vec::<String>::new());
        assert!(matches!(examine(UPGRADE, &options), Outcome::Accept(_)));
    }
}
