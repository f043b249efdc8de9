//! The opening handshake of the event-loop server: the request head parsed with `httparse`
//! from the connection's input, checked by [`sockway_proto::handshake::validate_request`]
//! (RFC 6455 section 4.2.1), the origin and subprotocol decided, and the response (101, or
//! the refusal's status with a plain-text reason) written as bytes to send.

use std::fmt::Write as _;

use bytes::{BufMut, BytesMut};
use http::header::{HeaderName, HeaderValue};
use http::{HeaderMap, Method, StatusCode, Version};
use sockway_proto::handshake::{
    response_headers, response_status, select_subprotocol, validate_request,
};

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
    let mut fields = vec![httparse::EMPTY_HEADER; options.limits.max_headers];
    let mut request = httparse::Request::new(&mut fields);
    let head_len = match request.parse(input) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) if input.len() <= options.limits.max_header_bytes => {
            return Outcome::Incomplete
        }
        Ok(httparse::Status::Partial) | Err(httparse::Error::TooManyHeaders) => {
            return Outcome::Refuse(refusal(
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                &HeaderMap::new(),
                "request head too large",
            ))
        }
        Err(error) => {
            return Outcome::Refuse(refusal(
                StatusCode::BAD_REQUEST,
                &HeaderMap::new(),
                &format!("malformed request: {error}"),
            ))
        }
    };
    if head_len > options.limits.max_header_bytes {
        return Outcome::Refuse(refusal(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            &HeaderMap::new(),
            "request head too large",
        ));
    }
    match decide(&request, options) {
        Ok(mut accepted) => {
            accepted.head_len = head_len;
            Outcome::Accept(accepted)
        }
        Err(refused) => Outcome::Refuse(refused),
    }
}

/// Validates a complete request and builds the response.
fn decide(request: &httparse::Request, options: &EventLoopOptions) -> Result<Accepted, BytesMut> {
    let method = Method::from_bytes(request.method.unwrap_or("").as_bytes())
        .map_err(|_| refusal(StatusCode::BAD_REQUEST, &HeaderMap::new(), "bad method"))?;
    let version = match request.version {
        Some(1) => Version::HTTP_11,
        _ => Version::HTTP_10,
    };
    let mut headers = HeaderMap::with_capacity(request.headers.len());
    for field in request.headers.iter() {
        let name = HeaderName::from_bytes(field.name.as_bytes());
        let value = HeaderValue::from_bytes(field.value);
        let (Ok(name), Ok(value)) = (name, value) else {
            return Err(refusal(
                StatusCode::BAD_REQUEST,
                &HeaderMap::new(),
                "malformed header field",
            ));
        };
        headers.append(name, value);
    }
    let offer = validate_request(&method, version, &headers, None).map_err(|error| {
        refusal(
            error.status(),
            &error.response_headers(),
            &error.to_string(),
        )
    })?;
    if let (Some(allowed), Some(origin)) = (&options.allowed_origins, &offer.origin) {
        if !allowed.iter().any(|a| a.eq_ignore_ascii_case(origin)) {
            return Err(refusal(
                StatusCode::FORBIDDEN,
                &HeaderMap::new(),
                "origin not allowed",
            ));
        }
    }
    let subprotocol = select_subprotocol(&offer.subprotocols, &options.subprotocols);
    let headers = response_headers(&offer, subprotocol, None).map_err(|_| {
        refusal(
            StatusCode::BAD_REQUEST,
            &HeaderMap::new(),
            "cannot answer this handshake",
        )
    })?;
    Ok(Accepted {
        response: response_bytes(response_status(offer.kind), &headers, ""),
        head_len: 0,
        path: request.path.unwrap_or("/").to_owned(),
        origin: offer.origin,
        subprotocol: subprotocol.map(str::to_owned),
    })
}

/// A refusal: `status`, its headers, `Connection: close`, and `reason` as a plain-text body.
pub(super) fn refusal(status: StatusCode, headers: &HeaderMap, reason: &str) -> BytesMut {
    let mut headers = headers.clone();
    headers.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    headers.insert(http::header::CONNECTION, HeaderValue::from_static("close"));
    response_bytes(status, &headers, reason)
}

/// An HTTP/1.1 response head with `headers`, a `Content-Length` when `body` is not empty
/// (or the status is not 101), and `body`.
fn response_bytes(status: StatusCode, headers: &HeaderMap, body: &str) -> BytesMut {
    let mut head = String::with_capacity(160 + body.len());
    let _ = write!(
        head,
        "HTTP/1.1 {} {}\r\n",
        status.as_u16(),
        status.canonical_reason().unwrap_or("")
    );
    for (name, value) in headers {
        head.push_str(name.as_str());
        head.push_str(": ");
        head.push_str(value.to_str().unwrap_or(""));
        head.push_str("\r\n");
    }
    if status != StatusCode::SWITCHING_PROTOCOLS {
        let _ = write!(head, "content-length: {}\r\n", body.len());
    }
    head.push_str("\r\n");
    let mut bytes = BytesMut::with_capacity(head.len() + body.len());
    bytes.put_slice(head.as_bytes());
    bytes.put_slice(body.as_bytes());
    bytes
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
        assert!(response.ends_with("origin not allowed"));
        let options = EventLoopOptions::default().allowed_origins(["https://GOOD.example"]);
        assert!(matches!(examine(UPGRADE, &options), Outcome::Accept(_)));
    }
}
