//! The hub handshake as the connection runtime sees it (`HubProtocol.md`, "Overview"): the
//! first record, always JSON and ended by `0x1E`, names the protocol; the answer is `{}` or
//! `{"error": ...}`, both ended by `0x1E`.

use bytes::{Buf, BytesMut};

use crate::link::TransportKind;
use crate::protocol::{Protocol, TransferFormat, RECORD_SEPARATOR};

/// What became of the bytes received so far.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Handshake {
    /// The record is not complete yet.
    Incomplete,
    /// The client asked for a protocol the server speaks and the transport can carry, at
    /// this version.
    Agreed(Protocol, i64),
    /// The request is refused; the text goes into the `error` response, then the connection
    /// closes.
    Refused(String),
}

#[derive(serde::Deserialize)]
struct Request {
    protocol: String,
    version: i64,
}

/// Takes the handshake request off the front of `buffer`, leaving whatever follows it (the
/// first messages may arrive in the same data). Every version up to the protocol's is served,
/// as ASP.NET Core's `IsVersionSupported` decides.
pub(crate) fn read(buffer: &mut BytesMut, limit: usize, transport: TransportKind) -> Handshake {
    let Some(end) = buffer.iter().position(|&byte| byte == RECORD_SEPARATOR) else {
        if buffer.len() > limit {
            return Handshake::Refused(format!(
                "The handshake request of {} bytes or more is over the limit of {limit} bytes.",
                buffer.len()
            ));
        }
        return Handshake::Incomplete;
    };
    let record = buffer.split_to(end);
    buffer.advance(1);
    let request: Request = match serde_json::from_slice(&record) {
        Ok(request) => request,
        Err(error) => {
            return Handshake::Refused(format!("The handshake request is invalid: {error}."))
        }
    };
    let Some(protocol) = Protocol::from_name(&request.protocol) else {
        return Handshake::Refused(format!(
            "The protocol '{}' is not supported.",
            request.protocol
        ));
    };
    if request.version > i64::from(protocol.version()) {
        return Handshake::Refused(format!(
            "The server does not support version {} of the '{}' protocol.",
            request.version, request.protocol
        ));
    }
    if protocol.transfer_format() == TransferFormat::Binary
        && transport == TransportKind::ServerSentEvents
    {
        return Handshake::Refused(format!(
            "Cannot use the '{}' protocol on the current transport. The transport does not \
             support 'Binary' transfer format.",
            request.protocol
        ));
    }
    Handshake::Agreed(protocol, request.version)
}

/// The handshake response: `{}` on success, `{"error": ...}` on refusal, with its `0x1E`.
pub(crate) fn response(error: Option<&str>) -> Vec<u8> {
    let mut out = match error {
        None => b"{}".to_vec(),
        Some(error) => serde_json::to_vec(&serde_json::json!({ "error": error }))
            .unwrap_or_else(|_| b"{\"error\":\"Handshake failed.\"}".to_vec()),
    };
    out.push(RECORD_SEPARATOR);
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
    fn waits_for_the_separator_within_the_limit() {
        let (outcome, _) = read_str("{\"protocol\":", TransportKind::WebSockets);
        assert_eq!(outcome, Handshake::Incomplete);
        let mut long = BytesMut::from(&[b' '; 2000][..]);
        assert!(matches!(
            read(&mut long, 1024, TransportKind::WebSockets),
            Handshake::Refused(_)
        ));
    }

    #[test]
    fn refuses_what_it_cannot_do() {
        let cases = [
            (
                "{\"protocol\":\"xml\",\"version\":1}\u{1e}",
                "not supported",
            ),
            ("{\"protocol\":\"json\",\"version\":99}\u{1e}", "version 99"),
            ("{\"protocol\":\"json\"}\u{1e}", "invalid"),
            ("not json\u{1e}", "invalid"),
        ];
        for (text, expected) in cases {
            match read_str(text, TransportKind::WebSockets).0 {
                Handshake::Refused(error) => assert!(error.contains(expected), "{error}"),
                other => panic!("{text}: {other:?}"),
            }
        }
        let sse = read_str(
            "{\"protocol\":\"messagepack\",\"version\":1}\u{1e}",
            TransportKind::ServerSentEvents,
        );
        assert!(matches!(sse.0, Handshake::Refused(error) if error.contains("'Binary'")));
    }
}
