//! Parsing `ws://` and `wss://` URLs into what the connector needs (RFC 6455 section 3).

use std::net::IpAddr;

use url::{Host, Url};

use super::error::ClientError;

/// The parts of a WebSocket URL the client uses to connect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// `wss://` (TLS) rather than `ws://`.
    pub secure: bool,
    /// The host: a DNS name (lower-case, IDNA-encoded) or an IP literal, without brackets.
    pub host: String,
    /// The host as an address, when the URL names one (no lookup then).
    pub ip: Option<IpAddr>,
    /// The TCP port: the URL's, else 80 for `ws` and 443 for `wss` (RFC 6455 section 3).
    pub port: u16,
    /// Whether the URL spelled out the port (it then appears in `Host` unless it is the
    /// default, RFC 6455 section 4.1 item 4).
    pub explicit_port: Option<u16>,
    /// The request target: path and query, `/` when the path is empty (RFC 6455 section 3,
    /// /resource name/).
    pub resource: String,
    /// `user:password` from the URL, if any, sent as HTTP Basic credentials.
    pub userinfo: Option<(String, String)>,
}

impl Target {
    /// Parses `input`, refusing anything but an absolute `ws`/`wss` URL with a host and
    /// without a fragment (RFC 6455 section 3: fragments MUST NOT be used).
    pub fn parse(input: &str) -> Result<Target, ClientError> {
        let url =
            Url::parse(input.trim()).map_err(|e| ClientError::invalid_url(input, e.to_string()))?;
        let secure = match url.scheme() {
            "ws" => false,
            "wss" => true,
            other => {
                return Err(ClientError::invalid_url(
                    input,
                    format!("scheme {other:?} is not ws or wss"),
                ))
            }
        };
        if url.fragment().is_some() {
            return Err(ClientError::invalid_url(
                input,
                "a WebSocket URL must not have a #fragment",
            ));
        }
        let (host, ip) = match url.host() {
            Some(Host::Domain(name)) if !name.is_empty() => (name.to_owned(), None),
            Some(Host::Ipv4(addr)) => (addr.to_string(), Some(IpAddr::V4(addr))),
            Some(Host::Ipv6(addr)) => (addr.to_string(), Some(IpAddr::V6(addr))),
            _ => return Err(ClientError::invalid_url(input, "the URL has no host")),
        };
        let default_port = if secure { 443 } else { 80 };
        let explicit_port = url.port();
        let mut resource = url.path().to_owned();
        if resource.is_empty() {
            resource.push('/');
        }
        if let Some(query) = url.query() {
            resource.push('?');
            resource.push_str(query);
        }
        let userinfo = (!url.username().is_empty() || url.password().is_some()).then(|| {
            (
                percent_decode(url.username()),
                percent_decode(url.password().unwrap_or_default()),
            )
        });
        Ok(Target {
            secure,
            host,
            ip,
            port: explicit_port.unwrap_or(default_port),
            explicit_port,
            resource,
            userinfo,
        })
    }
}

/// Decodes `%XX` escapes (the URL crate keeps userinfo percent-encoded); invalid escapes and
/// non-UTF-8 results are kept as they are rather than failing.
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8(out).unwrap_or_else(|_| s.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_ws_and_wss() {
        let t = Target::parse("ws://example.com/chat?room=1").unwrap();
        assert!(!t.secure);
        assert_eq!(
            (t.host.as_str(), t.port, t.explicit_port),
            ("example.com", 80, None)
        );
        assert_eq!(t.resource, "/chat?room=1");
        let t = Target::parse("wss://127.0.0.1:9443").unwrap();
        assert!(t.secure);
        assert_eq!(t.port, 9443);
        assert_eq!(t.resource, "/");
        assert_eq!(t.ip, Some("127.0.0.1".parse().unwrap()));
        let t = Target::parse("ws://[::1]:80/x").unwrap();
        assert_eq!(t.host, "::1");
        assert_eq!(t.explicit_port, None, "the default port is normalised away");
    }

    #[test]
    fn refuses_other_schemes_and_fragments() {
        for bad in ["http://a/", "ftp://a", "ws://a/#frag", "not a url", ""] {
            let e = Target::parse(bad).unwrap_err();
            assert!(matches!(e, ClientError::InvalidUrl { .. }), "{bad}: {e}");
        }
    }

    #[test]
    fn userinfo_is_decoded() {
        let t = Target::parse("ws://us%20er:p%40ss@h/").unwrap();
        assert_eq!(t.userinfo, Some(("us er".into(), "p@ss".into())));
        assert_eq!(percent_decode("%zz%4"), "%zz%4");
    }
}
