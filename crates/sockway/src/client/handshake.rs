//! The client's opening handshake over HTTP/1.1 (RFC 6455 section 4.1): write the upgrade
//! request, read the response head with a bounded buffer (parsed by the core's
//! [`sockway_proto::handshake::parse_response`]), and check it with
//! [`sockway_proto::handshake::validate_response`]. Bytes after the head are the first frames.

use bytes::{BufMut as _, BytesMut};
use http::header::{HeaderMap, HeaderName, HeaderValue, USER_AGENT};
use http::StatusCode;
use sockway_proto::deflate::{self, DeflateConfig, DeflateParams};
use sockway_proto::handshake::{
    self, HeadError, HeadLimits, Negotiated, RequestHeaders, RequestKind, ResponseError,
};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::error::ClientError;
use super::url::Target;

/// Headers the handshake writes itself; setting them by hand would break it (RFC 6455 section
/// 4.1 items 2 to 11), so [`super::ClientBuilder::header`] refuses them.
pub(crate) const RESERVED_HEADERS: [&str; 8] = [
    "host",
    "upgrade",
    "connection",
    "sec-websocket-key",
    "sec-websocket-version",
    "sec-websocket-accept",
    "sec-websocket-protocol",
    "sec-websocket-extensions",
];

/// What the request carries besides the fixed upgrade headers.
#[derive(Debug, Clone, Default)]
pub(crate) struct RequestOptions {
    /// Subprotocols to offer, in order of preference (RFC 6455 section 4.1 item 10).
    pub subprotocols: Vec<String>,
    /// The `Origin` header (RFC 6455 section 4.1 item 8).
    pub origin: Option<String>,
    /// Extra headers (authorization, cookies, ...), none of [`RESERVED_HEADERS`].
    pub headers: HeaderMap,
    /// The largest response head accepted, in bytes.
    pub max_response_head: usize,
    /// The most response header lines accepted.
    pub max_response_headers: usize,
    /// permessage-deflate to offer (RFC 7692), if any.
    pub compression: Option<DeflateConfig>,
}

/// The server's answer to the upgrade request.
#[derive(Debug, Clone)]
pub(crate) struct ResponseHead {
    pub status: StatusCode,
    pub headers: HeaderMap,
}

/// A request ready to write, and the key its answer must match.
struct Request {
    bytes: Vec<u8>,
    key: String,
}

fn build_request(target: &Target, options: &RequestOptions) -> Result<Request, ClientError> {
    let key = handshake::generate_key();
    let mut builder = RequestHeaders::upgrade(
        &target.host,
        target.explicit_port,
        target.secure,
        key.clone(),
    )
    .subprotocols(options.subprotocols.iter().cloned());
    if let Some(origin) = &options.origin {
        builder = builder.origin(origin.clone());
    }
    if let Some(config) = &options.compression {
        builder = builder.extensions(deflate::client_offer(config).to_header_value());
    }
    let fixed = builder
        .build()
        .map_err(|e| ClientError::InvalidSetting(e.to_string()))?;
    let mut bytes = Vec::with_capacity(256);
    bytes.extend_from_slice(b"GET ");
    bytes.extend_from_slice(target.resource.as_bytes());
    bytes.extend_from_slice(b" HTTP/1.1\r\n");
    let mut write = |name: &HeaderName, value: &HeaderValue| {
        bytes.extend_from_slice(name.as_str().as_bytes());
        bytes.extend_from_slice(b": ");
        bytes.extend_from_slice(value.as_bytes());
        bytes.extend_from_slice(b"\r\n");
    };
    for (name, value) in fixed.iter().chain(options.headers.iter()) {
        write(name, value);
    }
    if !options.headers.contains_key(USER_AGENT) {
        write(&USER_AGENT, &HeaderValue::from_static("sockway"));
    }
    bytes.extend_from_slice(b"\r\n");
    Ok(Request { bytes, key })
}

/// Runs the handshake on `io`: returns the response head, what was negotiated, and the bytes
/// read past the head.
pub(crate) async fn run<S: AsyncRead + AsyncWrite + Unpin>(
    io: &mut S,
    target: &Target,
    options: &RequestOptions,
) -> Result<(ResponseHead, Negotiated, Option<DeflateParams>, BytesMut), ClientError> {
    let request = build_request(target, options)?;
    io.write_all(&request.bytes)
        .await
        .map_err(ClientError::from_io)?;
    io.flush().await.map_err(ClientError::from_io)?;
    let (head, leftover) = read_response(io, options).await?;
    let negotiated = handshake::validate_response(
        RequestKind::Upgrade,
        head.status,
        &head.headers,
        &request.key,
        &options.subprotocols,
        if options.compression.is_some() {
            &[deflate::EXTENSION_NAME]
        } else {
            &[]
        },
    )
    .map_err(|e| match e {
        ResponseError::Rejected { status } => ClientError::Rejected {
            status,
            headers: Box::new(head.headers.clone()),
        },
        other => ClientError::InvalidResponse(other.to_string()),
    })?;
    let compression = match &options.compression {
        Some(config) => deflate::confirm_response(&negotiated.extensions, config)
            .map_err(|e| ClientError::InvalidResponse(format!("permessage-deflate: {e}")))?,
        None => None,
    };
    Ok((head, negotiated, compression, leftover))
}

/// Reads until a whole response head has arrived, never holding more than
/// `max_response_head` bytes of an incomplete head; the core's
/// [`handshake::parse_response`] decides where the head ends and whether it keeps within the
/// limits.
async fn read_response<S: AsyncRead + Unpin>(
    io: &mut S,
    options: &RequestOptions,
) -> Result<(ResponseHead, BytesMut), ClientError> {
    let limits = HeadLimits {
        max_bytes: options.max_response_head.max(64),
        max_fields: options.max_response_headers.clamp(1, 1024),
    };
    let mut buf = BytesMut::with_capacity(limits.max_bytes.min(4096));
    loop {
        if !buf.is_empty() {
            let parsed =
                handshake::parse_response(&buf, &limits).map_err(|e| head_error(&e, options))?;
            if let Some(head) = parsed {
                let leftover = buf.split_off(head.len);
                let head = ResponseHead {
                    status: head.status,
                    headers: head.headers,
                };
                return Ok((head, leftover));
            }
        }
        // Read at most one byte past the limit, so that an oversized head is told apart.
        let room = (limits.max_bytes + 1 - buf.len().min(limits.max_bytes)).min(8192);
        buf.reserve(room);
        let n = io
            .read_buf(&mut (&mut buf).limit(room))
            .await
            .map_err(ClientError::from_io)?;
        if n == 0 {
            return Err(ClientError::InvalidResponse(
                "the server closed the connection before answering the upgrade request".into(),
            ));
        }
    }
}

/// The client's wording of a response head the core refused.
fn head_error(error: &HeadError, options: &RequestOptions) -> ClientError {
    ClientError::InvalidResponse(match error {
        HeadError::TooLarge { limit } => format!(
            "the response head exceeds {limit} bytes (raise max_response_head_size if it is \
             legitimate)"
        ),
        HeadError::TooManyFields { .. } => format!(
            "the response has more than {} header lines",
            options.max_response_headers
        ),
        HeadError::Malformed(reason) => format!("malformed HTTP response: {reason}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options() -> RequestOptions {
        RequestOptions {
            max_response_head: 16 * 1024,
            max_response_headers: 64,
            ..RequestOptions::default()
        }
    }

    #[test]
    fn request_has_path_query_and_headers() {
        let target = Target::parse("ws://example.com:8080/chat?x=1").unwrap();
        let mut options = options();
        options.subprotocols = vec!["chat".into(), "superchat".into()];
        options.origin = Some("http://example.com".into());
        options
            .headers
            .insert("x-extra", HeaderValue::from_static("1"));
        let request = build_request(&target, &options).unwrap();
        let text = String::from_utf8(request.bytes).unwrap();
        assert!(text.starts_with("GET /chat?x=1 HTTP/1.1\r\nhost: example.com:8080\r\n"));
        assert!(text.contains("sec-websocket-protocol: chat, superchat\r\n"));
        assert!(text.contains("origin: http://example.com\r\n"));
        assert!(text.contains("x-extra: 1\r\n"));
        assert!(text.contains(&format!("sec-websocket-key: {}\r\n", request.key)));
        assert!(text.ends_with("\r\n\r\n"));
    }

    #[tokio::test]
    async fn response_head_is_bounded_and_leftover_kept() {
        let (mut client, mut server) = tokio::io::duplex(1 << 16);
        let options = options();
        server
            .write_all(b"HTTP/1.1 404 Not Found\r\nX-A: b\r\n\r\n\x81\x00")
            .await
            .unwrap();
        let (head, leftover) = read_response(&mut client, &options).await.unwrap();
        assert_eq!(head.status, StatusCode::NOT_FOUND);
        assert_eq!(head.headers["x-a"], "b");
        assert_eq!(&leftover[..], b"\x81\x00");

        let mut small = options.clone();
        small.max_response_head = 100;
        server.write_all(b"HTTP/1.1 101 OK\r\n").await.unwrap();
        server.write_all(&[b'x'; 200]).await.unwrap();
        let e = read_response(&mut client, &small).await.unwrap_err();
        assert!(e.to_string().contains("exceeds 100 bytes"), "{e}");
    }

    #[tokio::test]
    async fn eof_and_garbage_are_invalid_responses() {
        let (mut client, server) = tokio::io::duplex(1024);
        drop(server);
        let e = read_response(&mut client, &options()).await.unwrap_err();
        assert!(matches!(e, ClientError::InvalidResponse(_)));
        let (mut client, mut server) = tokio::io::duplex(1024);
        server.write_all(b"SSH-2.0-OpenSSH\r\n\r\n").await.unwrap();
        let e = read_response(&mut client, &options()).await.unwrap_err();
        assert!(matches!(e, ClientError::InvalidResponse(_)));
    }
}
