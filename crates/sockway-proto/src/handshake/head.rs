//! HTTP/1.1 message heads, sans-I/O: where a head ends, whether it keeps within
//! [`HeadLimits`], and the request or response it holds (parsed with `httparse`, the parser
//! hyper uses, so every side of sockway reads a head exactly as hyper would).
//!
//! Drivers feed the bytes read so far from the start of the connection and get `Ok(None)`
//! while the head is incomplete and within the limits; nothing here reads or blocks.

use http::header::{HeaderMap, HeaderName, HeaderValue};
use http::{Method, StatusCode, Version};

use super::limits::HeadLimits;

/// The HTTP/2 connection preface a client with prior knowledge sends first (RFC 9113 section
/// 3.4). As HTTP/1.1 it reads as a `PRI * HTTP/2.0` request head followed by `SM\r\n\r\n`.
pub const H2_PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Why a head was not accepted. [`super::Refusal::from_head`] turns it into the response.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeadError {
    /// The head passed [`HeadLimits::max_bytes`] (431, RFC 6585 section 5).
    #[error("the head is larger than the limit of {limit} bytes")]
    TooLarge {
        /// The limit in force.
        limit: usize,
    },
    /// The head has more header fields than [`HeadLimits::max_fields`] (431).
    #[error("the head has {count} header fields, more than the limit of {limit}")]
    TooManyFields {
        /// The fields counted.
        count: usize,
        /// The limit in force.
        limit: usize,
    },
    /// The head is not HTTP/1.1 (RFC 9112 sections 2 to 5), or a field name or value is not
    /// one `http` accepts. Holds the parser's reason, which never quotes the input.
    #[error("malformed HTTP head: {0}")]
    Malformed(String),
}

/// Index just past the empty line ending a head, searching from `from`: the first `\n`
/// followed by `\n` or `\r\n`. A line ends in CRLF or in a bare LF, which RFC 9112 section 2.2
/// lets a recipient accept and httparse (so hyper) does, in any mix (`\r\n\r\n`, `\n\n`,
/// `\n\r\n`, `\r\n\n`). When bytes arrive in pieces, pass `from = searched.saturating_sub(3)`
/// to look only where a terminator could newly appear.
pub fn find_head_end(buf: &[u8], from: usize) -> Option<usize> {
    let mut i = from;
    while i < buf.len() {
        if buf[i] == b'\n' {
            match &buf[i + 1..] {
                [b'\n', ..] => return Some(i + 2),
                [b'\r', b'\n', ..] => return Some(i + 3),
                _ => {}
            }
        }
        i += 1;
    }
    None
}

/// Checks the bytes of a head that is still arriving against `limits`: `Ok(Some(len))` once it
/// is complete (`len` bytes, what follows belongs to the body or the next protocol),
/// `Ok(None)` while incomplete and within [`HeadLimits::max_bytes`], or the limit it broke.
/// Fields are counted as lines between the start line and the empty line, so the check costs
/// no allocation; `from` is as for [`find_head_end`].
pub fn check_head(
    buf: &[u8],
    from: usize,
    limits: &HeadLimits,
) -> Result<Option<usize>, HeadError> {
    let Some(end) = find_head_end(buf, from) else {
        if buf.len() > limits.max_bytes {
            return Err(HeadError::TooLarge {
                limit: limits.max_bytes,
            });
        }
        return Ok(None);
    };
    if end > limits.max_bytes {
        return Err(HeadError::TooLarge {
            limit: limits.max_bytes,
        });
    }
    let lines = buf[..end].iter().filter(|&&b| b == b'\n').count();
    let count = lines.saturating_sub(2);
    if count > limits.max_fields {
        return Err(HeadError::TooManyFields {
            count,
            limit: limits.max_fields,
        });
    }
    Ok(Some(end))
}

/// A complete HTTP/1.1 request head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestHead {
    /// The request method.
    pub method: Method,
    /// HTTP/1.1, or HTTP/1.0 for `HTTP/1.0` (refused later by
    /// [`validate_request`](super::validate_request)).
    pub version: Version,
    /// The request target as sent (origin form: path and query).
    pub target: String,
    /// The header fields, repeated names kept in order.
    pub headers: HeaderMap,
    /// Bytes the head took; what follows is not part of it.
    pub len: usize,
}

/// A complete HTTP/1.1 response head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseHead {
    /// The status code.
    pub status: StatusCode,
    /// The header fields, repeated names kept in order.
    pub headers: HeaderMap,
    /// Bytes the head took; what follows are the first frames.
    pub len: usize,
}

/// Parses the request head at the start of `buf`: `Ok(None)` while it is incomplete and within
/// `limits`, the head once complete, or why it is refused.
pub fn parse_request(buf: &[u8], limits: &HeadLimits) -> Result<Option<RequestHead>, HeadError> {
    if check_head(buf, 0, limits)?.is_none() {
        return Ok(None);
    }
    let mut slots = vec![httparse::EMPTY_HEADER; limits.max_fields];
    let mut request = httparse::Request::new(&mut slots);
    let Some(len) = complete(request.parse(buf), buf, limits)? else {
        return Ok(None);
    };
    let method = Method::from_bytes(request.method.unwrap_or_default().as_bytes())
        .map_err(|_| HeadError::Malformed("invalid method".into()))?;
    let version = match request.version {
        Some(1) => Version::HTTP_11,
        _ => Version::HTTP_10,
    };
    Ok(Some(RequestHead {
        method,
        version,
        target: request.path.unwrap_or("/").to_owned(),
        headers: header_map(request.headers)?,
        len,
    }))
}

/// Parses the response head at the start of `buf`, as [`parse_request`] does requests.
pub fn parse_response(buf: &[u8], limits: &HeadLimits) -> Result<Option<ResponseHead>, HeadError> {
    if check_head(buf, 0, limits)?.is_none() {
        return Ok(None);
    }
    let mut slots = vec![httparse::EMPTY_HEADER; limits.max_fields];
    let mut response = httparse::Response::new(&mut slots);
    let Some(len) = complete(response.parse(buf), buf, limits)? else {
        return Ok(None);
    };
    let status = response
        .code
        .and_then(|code| StatusCode::from_u16(code).ok())
        .ok_or_else(|| HeadError::Malformed("invalid status code".into()))?;
    Ok(Some(ResponseHead {
        status,
        headers: header_map(response.headers)?,
        len,
    }))
}

/// The length of a complete head from httparse's answer; `None` when httparse still wants
/// more (it skips empty lines before the start line, which [`find_head_end`] does not).
fn complete(
    status: httparse::Result<usize>,
    buf: &[u8],
    limits: &HeadLimits,
) -> Result<Option<usize>, HeadError> {
    match status {
        Ok(httparse::Status::Complete(len)) if len > limits.max_bytes => Err(HeadError::TooLarge {
            limit: limits.max_bytes,
        }),
        Ok(httparse::Status::Complete(len)) => Ok(Some(len)),
        Ok(httparse::Status::Partial) if buf.len() > limits.max_bytes => Err(HeadError::TooLarge {
            limit: limits.max_bytes,
        }),
        Ok(httparse::Status::Partial) => Ok(None),
        Err(httparse::Error::TooManyHeaders) => Err(HeadError::TooManyFields {
            count: limits.max_fields + 1,
            limit: limits.max_fields,
        }),
        Err(error) => Err(HeadError::Malformed(error.to_string())),
    }
}

/// The parsed fields as a [`HeaderMap`], refusing names or values `http` does not accept.
fn header_map(fields: &[httparse::Header<'_>]) -> Result<HeaderMap, HeadError> {
    let mut headers = HeaderMap::with_capacity(fields.len());
    for field in fields {
        let name = HeaderName::from_bytes(field.name.as_bytes())
            .map_err(|_| HeadError::Malformed("invalid header name".into()))?;
        let value = HeaderValue::from_bytes(field.value)
            .map_err(|_| HeadError::Malformed(format!("invalid value for header {name}")))?;
        headers.append(name, value);
    }
    Ok(headers)
}

#[cfg(test)]
#[path = "head_tests.rs"]
mod tests;
