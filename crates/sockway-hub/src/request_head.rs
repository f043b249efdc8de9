//! The request that opened a connection, as the hub keeps it for the connection's whole life:
//! its authority, path and query, and headers, copied into one compact buffer.
//!
//! An `http::Uri` and an `http::HeaderMap` cost an idle connection some 500 bytes (the map's
//! bucket array, its entries, each value's `Bytes`, the URI's parts); the same text in one
//! boxed byte buffer costs its length and a few bytes of lengths (docs/benchmarks/hub.md,
//! "Idle memory per hub connection"). Header names are kept lower-case, as HTTP/2 sends them
//! and as `http::HeaderName` stores them; lookups ignore case (RFC 9110 section 5.1: field
//! names are case-insensitive).

use std::fmt;

/// The authority, path and query, and headers of the request that opened a connection, in
/// one buffer. Each part is a length (LEB128) and its bytes: the authority, the path and
/// query, then a name and a value for each header, in the request's order.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct RequestHead(Box<[u8]>);

impl RequestHead {
    /// Copies `uri`'s authority and path and query, and every header of `headers` but those
    /// named in `leave_out` (the transports leave out the WebSocket handshake's own).
    pub fn new(uri: &http::Uri, headers: &http::HeaderMap, leave_out: &[http::HeaderName]) -> Self {
        let authority = uri.authority().map_or("", |authority| authority.as_str());
        let path_and_query = uri.path_and_query().map_or("", |path| path.as_str());
        let kept = || headers.iter().filter(|(name, _)| !leave_out.contains(name));
        let mut size = sized(authority.len()) + sized(path_and_query.len());
        for (name, value) in kept() {
            size += sized(name.as_str().len()) + sized(value.len());
        }
        let mut buffer = Vec::with_capacity(size);
        put(&mut buffer, authority.as_bytes());
        put(&mut buffer, path_and_query.as_bytes());
        for (name, value) in kept() {
            put(&mut buffer, name.as_str().as_bytes());
            put(&mut buffer, value.as_bytes());
        }
        RequestHead(buffer.into_boxed_slice())
    }

    /// The parts in order: the authority, the path and query, then names and values.
    fn parts(&self) -> Parts<'_> {
        Parts(&self.0)
    }

    /// The request's authority (HTTP/2's `:authority`, or an absolute-form target's), when
    /// its target carried one; an HTTP/1.1 request names its host in the `host` header.
    pub fn authority(&self) -> Option<&str> {
        self.parts()
            .next()
            .filter(|authority| !authority.is_empty())
            .map(text)
    }

    /// The request's path and query, as sent (`/chatHub?id=...`).
    pub fn path_and_query(&self) -> &str {
        self.parts().nth(1).map_or("", text)
    }

    /// The request's path.
    pub fn path(&self) -> &str {
        let target = self.path_and_query();
        target.split_once('?').map_or(target, |(path, _)| path)
    }

    /// The request's query, without its `?` (where the SignalR clients put their
    /// parameters: `id`, `access_token`).
    pub fn query(&self) -> Option<&str> {
        self.path_and_query()
            .split_once('?')
            .map(|(_, query)| query)
    }

    /// The request's headers.
    pub fn headers(&self) -> Headers<'_> {
        Headers(self)
    }
}

/// The headers of a [`RequestHead`]: read-only, names lower-case, looked up case-insensitively.
#[derive(Clone, Copy)]
pub struct Headers<'a>(&'a RequestHead);

impl<'a> Headers<'a> {
    /// Every header as a lower-case name and its value, in the request's order.
    pub fn iter(&self) -> HeaderIter<'a> {
        let mut parts = self.0.parts();
        parts.nth(1);
        HeaderIter(parts)
    }

    /// The first value of the header `name` (any case).
    pub fn get(&self, name: &str) -> Option<&'a [u8]> {
        self.get_all(name).next()
    }

    /// The first value of the header `name` (any case) as text; `None` when it is absent or
    /// not valid UTF-8 (RFC 9110 allows other bytes in a value; [`get`](Self::get) has them).
    pub fn get_str(&self, name: &str) -> Option<&'a str> {
        self.get(name)
            .and_then(|value| std::str::from_utf8(value).ok())
    }

    /// Every value of the header `name` (any case), in the request's order.
    pub fn get_all<'n>(&self, name: &'n str) -> impl Iterator<Item = &'a [u8]> + 'n
    where
        'a: 'n,
    {
        self.iter()
            .filter(move |(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value)
    }

    /// Whether the request had the header `name` (any case).
    pub fn contains(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// How many headers the request had (each repeated one counted each time).
    pub fn len(&self) -> usize {
        self.iter().count()
    }

    /// Whether the request had no header kept.
    pub fn is_empty(&self) -> bool {
        self.iter().next().is_none()
    }
}

impl<'a> IntoIterator for Headers<'a> {
    type Item = (&'a str, &'a [u8]);
    type IntoIter = HeaderIter<'a>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

/// The headers of a [`RequestHead`] in order, from [`Headers::iter`].
#[derive(Clone)]
pub struct HeaderIter<'a>(Parts<'a>);

impl<'a> Iterator for HeaderIter<'a> {
    type Item = (&'a str, &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        let name = self.0.next()?;
        let value = self.0.next()?;
        Some((text(name), value))
    }
}

impl fmt::Debug for Headers<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(
                self.iter()
                    .map(|(name, value)| (name, String::from_utf8_lossy(value))),
            )
            .finish()
    }
}

impl fmt::Debug for RequestHead {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequestHead")
            .field("authority", &self.authority())
            .field("path_and_query", &self.path_and_query())
            .field("headers", &self.headers())
            .finish()
    }
}

/// The room [`put`] takes for a part of `length` bytes.
fn sized(length: usize) -> usize {
    let mut prefix = 1;
    let mut rest = length >> 7;
    while rest > 0 {
        prefix += 1;
        rest >>= 7;
    }
    prefix + length
}

/// Appends `bytes` with its length before it.
fn put(buffer: &mut Vec<u8>, bytes: &[u8]) {
    let mut length = bytes.len();
    while length >= 0x80 {
        buffer.push((length as u8 & 0x7f) | 0x80);
        length >>= 7;
    }
    buffer.push(length as u8);
    buffer.extend_from_slice(bytes);
}

/// The parts of a buffer [`put`] wrote, in order.
#[derive(Clone)]
struct Parts<'a>(&'a [u8]);

impl<'a> Iterator for Parts<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        let mut length = 0usize;
        let mut shift = 0u32;
        let mut read = 0;
        loop {
            let byte = *self.0.get(read)?;
            read += 1;
            length |= usize::from(byte & 0x7f).checked_shl(shift)?;
            if byte & 0x80 == 0 {
                break;
            }
            shift += 7;
        }
        let (part, rest) = self.0.get(read..)?.split_at_checked(length)?;
        self.0 = rest;
        Some(part)
    }
}

/// A part that was written from a `str` (an authority, a path, a header name).
fn text(bytes: &[u8]) -> &str {
    std::str::from_utf8(bytes).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(uri: &str, headers: &[(&str, &[u8])]) -> RequestHead {
        let mut map = http::HeaderMap::new();
        for (name, value) in headers {
            let name = http::HeaderName::from_bytes(name.as_bytes()).unwrap();
            map.append(name, http::HeaderValue::from_bytes(value).unwrap());
        }
        RequestHead::new(&uri.parse().unwrap(), &map, &[])
    }

    #[test]
    fn keeps_the_target_and_the_headers_in_order() {
        let long = "x".repeat(300);
        let head = head(
            "/chatHub?id=abc&access_token=t",
            &[
                ("Host", b"example.test"),
                ("Cookie", b"a=1"),
                ("cookie", b"b=2"),
                ("x-long", long.as_bytes()),
                ("x-latin", b"caf\xe9"),
            ],
        );
        assert_eq!(head.authority(), None);
        assert_eq!(head.path_and_query(), "/chatHub?id=abc&access_token=t");
        assert_eq!(head.path(), "/chatHub");
        assert_eq!(head.query(), Some("id=abc&access_token=t"));
        let headers = head.headers();
        assert_eq!(headers.get_str("HOST"), Some("example.test"));
        let cookies: Vec<&[u8]> = headers.get_all("Cookie").collect();
        assert_eq!(cookies, [&b"a=1"[..], &b"b=2"[..]]);
        assert_eq!(headers.get_str("x-long"), Some(long.as_str()));
        assert_eq!(headers.get("x-latin"), Some(&b"caf\xe9"[..]));
        assert_eq!(headers.get_str("x-latin"), None, "not UTF-8");
        assert_eq!(headers.get("missing"), None);
        assert!(!headers.contains("missing"));
        let names: Vec<&str> = headers.iter().map(|(name, _)| name).collect();
        assert_eq!(names, ["host", "cookie", "cookie", "x-long", "x-latin"]);
        assert_eq!(headers.len(), 5);
    }

    #[test]
    fn an_absolute_target_keeps_its_authority() {
        let head = head("https://example.test:8443/hub", &[]);
        assert_eq!(head.authority(), Some("example.test:8443"));
        assert_eq!(head.path(), "/hub");
        assert_eq!(head.query(), None);
        assert!(head.headers().is_empty());
        let empty = RequestHead::default();
        assert_eq!(empty.path_and_query(), "");
        assert!(empty.headers().is_empty());
    }

    #[test]
    fn headers_can_be_left_out() {
        let mut map = http::HeaderMap::new();
        map.insert(http::header::HOST, "example.test".parse().unwrap());
        map.insert(http::header::UPGRADE, "websocket".parse().unwrap());
        let uri = http::Uri::from_static("/hub");
        let head = RequestHead::new(&uri, &map, &[http::header::UPGRADE]);
        let names: Vec<&str> = head.headers().iter().map(|(name, _)| name).collect();
        assert_eq!(names, ["host"]);
    }
}
