//! The HTTP/1.1 opening handshake written by hand (RFC 6455 section 4), for both ends: the
//! raw client used against servers under test, and the raw server used against clients under
//! test. The accept key is computed here from section 4.2.2 (SHA-1 and base64), not taken
//! from the code under test.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use bytes::BytesMut;
use sha1::{Digest, Sha1};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The GUID of RFC 6455 section 1.3.
pub const GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// The largest request or response head accepted.
const MAX_HEAD: usize = 16 * 1024;

/// `Sec-WebSocket-Accept` for a key (section 4.2.2 item 5.4).
pub fn accept_for(key: &str) -> String {
    let mut sha1 = Sha1::new();
    sha1.update(key.as_bytes());
    sha1.update(GUID.as_bytes());
    STANDARD.encode(sha1.finalize())
}

/// A fresh `Sec-WebSocket-Key`: 16 bytes, base64 (section 4.1 item 7). Uniqueness is all a
/// test needs.
pub fn new_key() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(1);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&n.to_be_bytes());
    bytes[8..].copy_from_slice(&nanos.to_be_bytes());
    STANDARD.encode(bytes)
}

/// A parsed request or response head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    /// The request line or status line.
    pub start: String,
    /// Header fields in order, names as sent.
    pub headers: Vec<(String, String)>,
}

impl Head {
    /// All values of a header (case-insensitive name).
    pub fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The single value of a header, if present once.
    pub fn get<'a>(&'a self, name: &'a str) -> Option<&'a str> {
        let mut values = self.all(name);
        let first = values.next()?;
        values.next().is_none().then_some(first)
    }

    /// Whether a comma-separated header lists `token` (case-insensitive).
    pub fn has_token(&self, name: &str, token: &str) -> bool {
        self.all(name)
            .flat_map(|v| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case(token))
    }

    /// The status code of a response head.
    pub fn status(&self) -> Option<u16> {
        let mut parts = self.start.split(' ');
        let version = parts.next()?;
        if version != "HTTP/1.1" {
            return None;
        }
        parts.next()?.parse().ok()
    }
}

/// Reads a head (up to the blank line) and returns it with the bytes read past it.
pub async fn read_head(
    stream: &mut TcpStream,
    within: Duration,
) -> Result<(Head, BytesMut), String> {
    let mut buf = BytesMut::with_capacity(1024);
    let read = async {
        loop {
            if let Some(end) = find_blank_line(&buf) {
                let head_bytes = buf.split_to(end + 4);
                return parse_head(&head_bytes[..end]).map(|h| (h, buf.split()));
            }
            if buf.len() > MAX_HEAD {
                return Err("head too large".to_string());
            }
            buf.reserve(4096);
            match stream.read_buf(&mut buf).await {
                Ok(0) => {
                    return Err(format!(
                        "connection closed after {} bytes of head",
                        buf.len()
                    ))
                }
                Ok(_) => {}
                Err(e) => return Err(format!("reading head: {e}")),
            }
        }
    };
    tokio::time::timeout(within, read)
        .await
        .map_err(|_| "timed out reading the HTTP head".to_string())?
}

fn find_blank_line(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n")
}

fn parse_head(bytes: &[u8]) -> Result<Head, String> {
    let text = std::str::from_utf8(bytes).map_err(|_| "head is not UTF-8".to_string())?;
    let mut lines = text.split("\r\n");
    let start = lines.next().unwrap_or_default().to_owned();
    let mut headers = Vec::new();
    for line in lines {
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| format!("malformed header line {line:?}"))?;
        headers.push((name.to_owned(), value.trim().to_owned()));
    }
    Ok(Head { start, headers })
}

/// A client request head for `path` with the usual handshake headers, and `extra` lines
/// (each `Name: value`) appended.
pub fn request(host: &str, path: &str, key: &str, extra: &[&str]) -> String {
    let mut req = format!(
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
    );
    for line in extra {
        req.push_str(line);
        req.push_str("\r\n");
    }
    req.push_str("\r\n");
    req
}

/// Checks a 101 response against the key (section 4.1, the client's checks).
pub fn check_upgrade_response(head: &Head, key: &str) -> Result<(), String> {
    if head.status() != Some(101) {
        return Err(format!("expected 101, got {:?}", head.start));
    }
    if !head
        .get("Upgrade")
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
    {
        return Err("response lacks Upgrade: websocket".into());
    }
    if !head.has_token("Connection", "upgrade") {
        return Err("response lacks Connection: Upgrade".into());
    }
    let expected = accept_for(key);
    match head.get("Sec-WebSocket-Accept") {
        Some(v) if v == expected => Ok(()),
        other => Err(format!(
            "Sec-WebSocket-Accept {other:?}, expected {expected:?}"
        )),
    }
}

/// Connects to `addr` and performs a valid client handshake on `path`, with `after` (frames)
/// sent in the same write as the request; returns the stream and the bytes read past the
/// response.
pub async fn connect(
    addr: std::net::SocketAddr,
    path: &str,
    after: &[u8],
) -> Result<(TcpStream, BytesMut), String> {
    let mut stream = TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connect {addr}: {e}"))?;
    let _ = stream.set_nodelay(true);
    let key = new_key();
    let mut req = request(&addr.to_string(), path, &key, &[]).into_bytes();
    req.extend_from_slice(after);
    stream
        .write_all(&req)
        .await
        .map_err(|e| format!("writing request: {e}"))?;
    let (head, leftover) = read_head(&mut stream, Duration::from_secs(5)).await?;
    check_upgrade_response(&head, &key)?;
    Ok((stream, leftover))
}

/// Reads a client's request on `stream` and, if it is a valid RFC 6455 client handshake,
/// answers 101 with the right accept key followed by `after` (frames sent in the same write,
/// to exercise a client's handling of bytes that arrive with the response). Returns the
/// request head and the bytes read past it.
pub async fn accept(stream: &mut TcpStream, after: &[u8]) -> Result<(Head, BytesMut), String> {
    let (head, leftover) = read_head(stream, Duration::from_secs(5)).await?;
    let ok = head.start.starts_with("GET ")
        && head.start.ends_with(" HTTP/1.1")
        && head.get("Host").is_some()
        && head.has_token("Upgrade", "websocket")
        && head.has_token("Connection", "upgrade")
        && head.get("Sec-WebSocket-Version") == Some("13");
    let key = head.get("Sec-WebSocket-Key").unwrap_or_default().to_owned();
    let key_ok = STANDARD.decode(&key).is_ok_and(|k| k.len() == 16);
    if !ok || !key_ok {
        let _ = stream
            .write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
            .await;
        return Err(format!("client sent an invalid handshake: {head:?}"));
    }
    let mut response = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: {}\r\n\r\n",
        accept_for(&key)
    )
    .into_bytes();
    response.extend_from_slice(after);
    stream
        .write_all(&response)
        .await
        .map_err(|e| format!("writing response: {e}"))?;
    Ok((head, leftover))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_matches_rfc_6455_section_1_3() {
        assert_eq!(
            accept_for("dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }

    #[test]
    fn keys_are_16_bytes_and_fresh() {
        let (a, b) = (new_key(), new_key());
        assert_ne!(a, b);
        assert_eq!(STANDARD.decode(&a).unwrap().len(), 16);
    }
}
