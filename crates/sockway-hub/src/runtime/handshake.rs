//! The hub handshake as the connection runtime sees it (`HubProtocol.md`, "Overview"): the
//! protocol module reads the request and writes the response; this decides what the
//! transport can carry and what to answer.

use bytes::BytesMut;

use crate::link::TransportKind;
use crate::protocol::{HandshakeRequest, HandshakeResponse, Protocol, TransferFormat};

/// What became of the bytes received so far.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Handshake {
    /// The request is not complete yet.
    Incomplete,
    /// The client asked for a protocol the server speaks and the transport can carry, at
    /// this version.
    Agreed(Protocol, i64),
    /// The request is refused; the text goes into the `error` response, then the connection
    /// closes.
    Refused(String),
}

/// Takes the handshake request off the front of `buffer`, leaving whatever follows it (the
/// first messages may arrive in the same data), and decides on it.
pub(crate) fn read(buffer: &mut BytesMut, limit: usize, transport: TransportKind) -> Handshake {
    let request = match HandshakeRequest::parse(buffer, limit) {
        Ok(None) => return Handshake::Incomplete,
        Ok(Some(request)) => request,
        Err(error) => return Handshake::Refused(error.to_string()),
    };
    match request.select(formats(transport)) {
        Ok(protocol) => Handshake::Agreed(protocol, request.version),
        Err(error) => Handshake::Refused(error),
    }
}

/// The transfer formats a transport carries (`TransportProtocols.md`: Server-Sent Events are
/// text only).
fn formats(transport: TransportKind) -> &'static [TransferFormat] {
    match transport {
        TransportKind::ServerSentEvents => &[TransferFormat::Text],
        TransportKind::WebSockets | TransportKind::LongPolling => {
            &[TransferFormat::Text, TransferFormat::Binary]
        }
    }
}

/// The handshake response: `{}` on success, `{"error": ...}` on refusal, with its `0x1E`.
pub(crate) fn response(error: Option<&str>) -> Vec<u8> {
    let response = match error {
        None => HandshakeResponse::success(),
        Some(error) => HandshakeResponse::failure(error),
    };
    let mut out = Vec::new();
    response.write(&mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_str(text: &str, transport: TransportKind) -> (Handshake, BytesMut) {
        let mut buffer = BytesMut::from(text.as_bytes());
        (read(&mut buffer, 1024, transport), buffer)
    }

    #[test]
    fn agrees_and_leaves_what_follows() {
        let (outcome, rest) = read_str(
            "{\"protocol\":\"json\",\"version\":1}\u{1e}{\"type\":6}\u{1e}",
            TransportKind::WebSockets,
        );
        assert_eq!(outcome, Handshake::Agreed(Protocol::Json, 1));
        assert_eq!(&rest[..], b"{\"type\":6}\x1e");
    }

    #[test]
    fn binary_protocols_only_where_the_transport_carries_them() {
        let request = "{\"protocol\":\"messagepack\",\"version\":1}\u{1e}";
        for transport in [TransportKind::WebSockets, TransportKind::LongPolling] {
            let outcome = read_str(request, transport).0;
            assert_eq!(outcome, Handshake::Agreed(Protocol::MessagePack, 1));
        }
        let sse = read_str(request, TransportKind::ServerSentEvents).0;
        assert!(matches!(sse, Handshake::Refused(error) if error.contains("'Binary'")));
    }

    #[test]
    fn refusals_carry_the_reason() {
        let cases = [
            (
                "{\"protocol\":\"xml\",\"version\":1}\u{1e}",
                "not supported",
            ),
            ("{\"protocol\":\"json\",\"version\":99}\u{1e}", "version 99"),
            ("{\"protocol\":\"json\"}\u{1e}", "'version'"),
        ];
        for (text, expected) in cases {
            match read_str(text, TransportKind::WebSockets).0 {
                Handshake::Refused(error) => assert!(error.contains(expected), "{error}"),
                other => panic!("{text}: {other:?}"),
            }
        }
        assert_eq!(response(Some("no")), b"{\"error\":\"no\"}\x1e");
        assert_eq!(response(None), b"{}\x1e");
    }
}
