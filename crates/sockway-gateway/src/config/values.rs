//! The typed values of the configuration, parsed once when a document is read: path patterns,
//! status ranges, address ranges, durations, error-page statuses and header templates. Each
//! deserializes from its text (or number) and fails with an [`InvalidValue`] saying what is
//! wrong, so the runtime only ever sees values that parsed; each serializes back to the text
//! it came from.

use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Why a value of the configuration does not parse; the message names the value.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum InvalidValue {
    /// A path pattern that does not start with `/`.
    #[error("{0:?} must start with '/'")]
    PathStart(String),
    /// A path pattern longer than [`MAX_PATH_PATTERN`].
    #[error("a path pattern is at most {MAX_PATH_PATTERN} characters")]
    PathLength,
    /// A path pattern with characters a request path cannot have.
    #[error("{0:?} may not contain spaces, control characters, '?' or '#'")]
    PathCharacters(String),
    /// A `*` elsewhere than at the end, after `/`.
    #[error("{0:?}: '*' is only allowed at the end, after '/' (like /chat/*)")]
    PathWildcard(String),
    /// Not `NNN` or `NNN-NNN` with statuses 100-599.
    #[error("{0:?} is not a status code or range (like \"200-399\" or \"204\")")]
    Status(String),
    /// A status range whose low end is above its high end.
    #[error("{0:?}: the range is backwards")]
    StatusBackwards(String),
    /// Neither an IP address nor `addr/len`.
    #[error("{0:?} is not an IP address or CIDR range")]
    Cidr(String),
    /// A CIDR prefix longer than the address.
    #[error("{text:?}: the prefix length must be 0-{max}")]
    CidrPrefix {
        /// The range as written.
        text: String,
        /// 32 for IPv4, 128 for IPv6.
        max: u8,
    },
    /// A duration that is negative, not finite or beyond [`MAX_SECONDS`].
    #[error("{0} is not a number of seconds 0-{MAX_SECONDS}")]
    Seconds(f64),
    /// An error page status outside 400-599.
    #[error("{0:?} is not a status 400-599 (like HttpStatus502)")]
    ErrorStatus(String),
    /// Not an HTTP field name (RFC 9110 section 5.1: a token).
    #[error("{0:?} is not a header name")]
    FieldName(String),
    /// A header template with an unclosed `{`.
    #[error("{0:?}: '{{' without '}}'")]
    TemplateOpen(String),
    /// A header template naming a variable the gateway does not know.
    #[error("{{{0}}} is not a server variable sockway knows (var_{vars}, or http_req_<header>)", vars = SERVER_VARIABLES.join(", var_"))]
    TemplateVariable(String),
}

/// The longest path pattern, characters.
pub const MAX_PATH_PATTERN: usize = 1024;
/// The longest duration any setting takes, seconds (one year; every setting has a smaller
/// range of its own, checked by validation).
pub const MAX_SECONDS: f64 = 31_536_000.0;

/// One path pattern of a path rule, as the Azure URL path map has them: exact (`/api`) or a
/// prefix ending in `/*` (`/chat/*`), compared ignoring ASCII case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathPattern {
    text: String,
    kind: PathKind,
}

/// Whether a pattern is exact or a prefix, lower-cased.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathKind {
    /// Matches this path only.
    Exact(String),
    /// Matches paths starting with this (ends with `/`).
    Prefix(String),
}

impl PathPattern {
    /// Parses `/x`, `/x/*` or `/*`.
    pub fn parse(pattern: &str) -> Result<PathPattern, InvalidValue> {
        if !pattern.starts_with('/') {
            return Err(InvalidValue::PathStart(pattern.to_owned()));
        }
        if pattern.len() > MAX_PATH_PATTERN {
            return Err(InvalidValue::PathLength);
        }
        if pattern
            .bytes()
            .any(|b| b <= b' ' || b == 0x7f || b == b'?' || b == b'#')
        {
            return Err(InvalidValue::PathCharacters(pattern.to_owned()));
        }
        let lower = pattern.to_ascii_lowercase();
        let kind = match lower.find('*') {
            None => PathKind::Exact(lower),
            Some(i) if i == lower.len() - 1 && lower[..i].ends_with('/') => {
                PathKind::Prefix(lower[..i].to_owned())
            }
            Some(_) => return Err(InvalidValue::PathWildcard(pattern.to_owned())),
        };
        Ok(PathPattern {
            text: pattern.to_owned(),
            kind,
        })
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Exact or prefix, lower-cased: two patterns with the same kind match the same paths.
    pub fn kind(&self) -> &PathKind {
        &self.kind
    }

    /// Whether `path` (already lower-cased, no query) matches.
    pub fn matches(&self, path: &str) -> bool {
        match &self.kind {
            PathKind::Exact(p) => p == path,
            PathKind::Prefix(p) => path.starts_with(p.as_str()),
        }
    }

    /// Ordering weight: exact patterns beat prefixes, longer prefixes beat shorter ones.
    pub fn rank(&self) -> (u8, usize) {
        match &self.kind {
            PathKind::Exact(p) => (1, p.len()),
            PathKind::Prefix(p) => (0, p.len()),
        }
    }
}

/// An inclusive range of HTTP status codes, from `"200-399"` or `"204"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatusRange {
    /// Lowest status accepted.
    pub low: u16,
    /// Highest status accepted.
    pub high: u16,
}

impl StatusRange {
    /// Parses `NNN` or `NNN-NNN` (100-599, low ≤ high).
    pub fn parse(text: &str) -> Result<StatusRange, InvalidValue> {
        let status = |s: &str| -> Result<u16, InvalidValue> {
            let s = s.trim();
            match s.parse::<u16>() {
                Ok(n) if (100..=599).contains(&n) && s.len() == 3 => Ok(n),
                _ => Err(InvalidValue::Status(text.to_owned())),
            }
        };
        let (low, high) = match text.split_once('-') {
            Some((a, b)) => (status(a)?, status(b)?),
            None => {
                let n = status(text)?;
                (n, n)
            }
        };
        if low > high {
            return Err(InvalidValue::StatusBackwards(text.to_owned()));
        }
        Ok(StatusRange { low, high })
    }

    /// Whether `status` is in the range.
    pub fn contains(&self, status: http::StatusCode) -> bool {
        (self.low..=self.high).contains(&status.as_u16())
    }
}

impl fmt::Display for StatusRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.low == self.high {
            write!(f, "{}", self.low)
        } else {
            write!(f, "{}-{}", self.low, self.high)
        }
    }
}

/// An address range (`10.0.0.0/8`, `2001:db8::/32`, or one address without `/len`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// Parses `addr/len` or a single address.
    pub fn parse(text: &str) -> Result<Cidr, InvalidValue> {
        let (addr, prefix) = match text.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (text, None),
        };
        let network: IpAddr = addr
            .trim()
            .parse()
            .map_err(|_| InvalidValue::Cidr(text.to_owned()))?;
        let max = if network.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => match p.trim().parse::<u8>() {
                Ok(n) if n <= max => n,
                _ => {
                    return Err(InvalidValue::CidrPrefix {
                        text: text.to_owned(),
                        max,
                    })
                }
            },
        };
        Ok(Cidr { network, prefix })
    }

    /// Whether `ip` is in the range (an IPv4-mapped IPv6 address counts as its IPv4 one).
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.network.to_canonical(), ip.to_canonical()) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                prefix_equal(&n.octets(), &a.octets(), self.prefix.min(32))
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => prefix_equal(&n.octets(), &a.octets(), self.prefix),
            _ => false,
        }
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

fn prefix_equal(a: &[u8], b: &[u8], bits: u8) -> bool {
    let whole = usize::from(bits / 8);
    if a[..whole] != b[..whole] {
        return false;
    }
    let rest = bits % 8;
    if rest == 0 {
        return true;
    }
    let mask = 0xffu8 << (8 - rest);
    (a[whole] & mask) == (b[whole] & mask)
}

/// A duration written as seconds, fractions allowed (`0.2`): Azure only takes whole seconds,
/// but short intervals make tests fast.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Seconds(Duration);

impl Seconds {
    /// From a number of seconds: finite, 0 to [`MAX_SECONDS`].
    pub fn new(seconds: f64) -> Result<Seconds, InvalidValue> {
        if seconds.is_finite() && (0.0..=MAX_SECONDS).contains(&seconds) {
            Ok(Seconds(Duration::from_secs_f64(seconds)))
        } else {
            Err(InvalidValue::Seconds(seconds))
        }
    }

    /// Whole seconds, for defaults.
    pub const fn from_secs(seconds: u64) -> Seconds {
        Seconds(Duration::from_secs(seconds))
    }

    /// Milliseconds, for defaults.
    pub const fn from_millis(millis: u64) -> Seconds {
        Seconds(Duration::from_millis(millis))
    }

    /// The duration.
    pub fn duration(self) -> Duration {
        self.0
    }

    /// As a number of seconds, for messages and range checks.
    pub fn as_f64(self) -> f64 {
        self.0.as_secs_f64()
    }
}

/// The status of a custom error page, from Application Gateway's `HttpStatus502` or `502`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ErrorStatus(u16);

impl ErrorStatus {
    /// Parses `HttpStatusNNN` or `NNN`, 400-599.
    pub fn parse(text: &str) -> Result<ErrorStatus, InvalidValue> {
        let digits = text.strip_prefix("HttpStatus").unwrap_or(text);
        match digits.parse::<u16>() {
            Ok(s) if (400..=599).contains(&s) => Ok(ErrorStatus(s)),
            _ => Err(InvalidValue::ErrorStatus(text.to_owned())),
        }
    }

    /// The status code.
    pub fn get(self) -> u16 {
        self.0
    }
}

/// The server variables a header template may use, as Application Gateway names them
/// without their `var_` prefix (the ones that make sense for a proxy that sees the request).
pub const SERVER_VARIABLES: &[&str] = &[
    "client_ip",
    "client_port",
    "host",
    "http_method",
    "query_string",
    "request_scheme",
    "request_uri",
    "server_port",
    "ssl_enabled",
    "uri_path",
];

/// A header value of a rewrite rule: text with `{var_...}` and `{http_req_<Header>}`
/// references, each known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderTemplate(String);

impl HeaderTemplate {
    /// Checks that every `{...}` reference is a known variable.
    pub fn parse(template: &str) -> Result<HeaderTemplate, InvalidValue> {
        let mut rest = template;
        while let Some(open) = rest.find('{') {
            let Some(close) = rest[open..].find('}') else {
                return Err(InvalidValue::TemplateOpen(template.to_owned()));
            };
            let name = &rest[open + 1..open + close];
            let known = match name.strip_prefix("var_") {
                Some(v) => SERVER_VARIABLES.contains(&v),
                None => name
                    .strip_prefix("http_req_")
                    .is_some_and(|h| http::HeaderName::from_bytes(h.as_bytes()).is_ok()),
            };
            if !known {
                return Err(InvalidValue::TemplateVariable(name.to_owned()));
            }
            rest = &rest[open + close + 1..];
        }
        Ok(HeaderTemplate(template.to_owned()))
    }

    /// The empty template: the header is removed.
    pub fn empty() -> HeaderTemplate {
        HeaderTemplate(String::new())
    }

    /// The template as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The name of a header a rewrite rule sets: an HTTP field name (RFC 9110 section 5.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldName(http::HeaderName);

impl FieldName {
    /// Parses a field name (a token; stored lower-cased, as HTTP/2 sends it).
    pub fn parse(name: &str) -> Result<FieldName, InvalidValue> {
        http::HeaderName::from_bytes(name.as_bytes())
            .map(FieldName)
            .map_err(|_| InvalidValue::FieldName(name.to_owned()))
    }

    /// The header name.
    pub fn get(&self) -> &http::HeaderName {
        &self.0
    }
}

/// Placeholders, one valid value of each kind above (and of addresses), that the loader puts where a value did
/// not parse so that it can read on and report every problem of a document in one go (the
/// document is then refused; a placeholder never reaches the runtime).
pub(super) fn placeholders() -> [serde_json::Value; 5] {
    use serde_json::json;
    [
        json!("/"),
        json!("500"),
        json!("0.0.0.0"),
        json!("0.0.0.0:0"),
        json!(1),
    ]
}

/// Serde for the types parsed from text: deserialize with `parse`, serialize as written.
macro_rules! text_serde {
    ($ty:ty, $text:expr) => {
        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let text = String::deserialize(d)?;
                <$ty>::parse(&text).map_err(serde::de::Error::custom)
            }
        }

        impl Serialize for $ty {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                let text: fn(&$ty) -> String = $text;
                s.serialize_str(&text(self))
            }
        }
    };
}

text_serde!(PathPattern, |p| p.text.clone());
text_serde!(StatusRange, |r| r.to_string());
text_serde!(Cidr, |c| c.to_string());
text_serde!(ErrorStatus, |s| format!("HttpStatus{}", s.0));
text_serde!(HeaderTemplate, |t| t.0.clone());
text_serde!(FieldName, |n| n.0.as_str().to_owned());

impl<'de> Deserialize<'de> for Seconds {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Seconds::new(f64::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

impl Serialize for Seconds {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(self.as_f64())
    }
}

#[cfg(test)]
#[path = "values_tests.rs"]
mod tests;
