//! The forwarding headers a backend gets, and how far it may believe them.
//!
//! A client can send any `X-Forwarded-For`, `X-Forwarded-Host`, `X-Forwarded-Proto`,
//! `X-Forwarded-Port`, `Forwarded` (RFC 7239) or `X-Real-IP` it likes, so these are only
//! passed on from peers the operator lists in `trustedProxies` (CIDRs, e.g. the load balancer
//! in front of the gateway). From a trusted peer the lists are extended: the peer's address is
//! appended to `X-Forwarded-For` and a `for=...;proto=...;host=...` element to `Forwarded`,
//! while `X-Forwarded-Proto`, `-Host`, `-Port` and `X-Real-IP` are kept when the peer set
//! them (it saw the original client) and set by the gateway otherwise. From any other peer the
//! client's values are removed and replaced by what the gateway saw. Only the immediate peer
//! is checked, like ASP.NET Core's `ForwardedHeadersOptions.KnownProxies/KnownNetworks` with
//! `ForwardLimit = 1`: the last element of each list is always written by the gateway.

use std::net::{IpAddr, SocketAddr};

use http::header::{HeaderName, HeaderValue, FORWARDED};
use http::HeaderMap;

use crate::config::Cidr;

/// `X-Forwarded-For`.
pub const X_FORWARDED_FOR: &str = "x-forwarded-for";
/// `X-Forwarded-Proto`.
pub const X_FORWARDED_PROTO: &str = "x-forwarded-proto";
/// `X-Forwarded-Host`.
pub const X_FORWARDED_HOST: &str = "x-forwarded-host";
/// `X-Forwarded-Port`.
pub const X_FORWARDED_PORT: &str = "x-forwarded-port";
/// `X-Real-IP` (nginx's name for the client address).
pub const X_REAL_IP: &str = "x-real-ip";
/// `X-Original-Host` (Azure Application Gateway's name for the host the client asked for).
pub const X_ORIGINAL_HOST: &str = "x-original-host";

/// The peers whose forwarding headers are believed (`trustedProxies`); empty by default, so
/// a gateway on the internet believes nobody.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(Vec<Cidr>);

impl TrustedProxies {
    /// From the configuration's list.
    pub fn new(ranges: &[Cidr]) -> Self {
        Self(ranges.to_vec())
    }

    /// Whether `peer` is in one of the ranges.
    pub fn trusts(&self, peer: IpAddr) -> bool {
        self.0.iter().any(|c| c.contains(peer))
    }
}

/// What the gateway itself knows about a request, for the headers it writes.
#[derive(Debug, Clone, Copy)]
pub struct Hop<'a> {
    /// The peer that connected to the gateway.
    pub peer: SocketAddr,
    /// `http` or `https`: the listener's scheme.
    pub scheme: &'static str,
    /// The listener's port.
    pub port: u16,
    /// The host the client asked for (with port as sent), if any.
    pub host: Option<&'a HeaderValue>,
}

/// Rewrites the forwarding headers of a request on its way to a backend (see the module
/// documentation): extends them when `trusted`, replaces them otherwise. `X-Original-Host`
/// is always the gateway's own.
pub fn apply(headers: &mut HeaderMap, hop: Hop<'_>, trusted: bool) {
    let ip = hop.peer.ip().to_canonical();
    let ip_text = ip.to_string();
    if !trusted {
        for name in [
            X_FORWARDED_FOR,
            X_FORWARDED_HOST,
            X_FORWARDED_PROTO,
            X_FORWARDED_PORT,
            X_REAL_IP,
        ] {
            headers.remove(name);
        }
        headers.remove(FORWARDED);
    }
    append_list(headers, HeaderName::from_static(X_FORWARDED_FOR), &ip_text);
    append_list(headers, FORWARDED, &forwarded_element(ip, hop));
    let keep_or_set = |headers: &mut HeaderMap, name: &'static str, value: Option<HeaderValue>| {
        if headers.contains_key(name) {
            return;
        }
        if let Some(value) = value {
            headers.insert(name, value);
        }
    };
    keep_or_set(
        headers,
        X_FORWARDED_PROTO,
        Some(HeaderValue::from_static(hop.scheme)),
    );
    keep_or_set(headers, X_FORWARDED_HOST, hop.host.cloned());
    keep_or_set(headers, X_FORWARDED_PORT, Some(HeaderValue::from(hop.port)));
    keep_or_set(headers, X_REAL_IP, HeaderValue::from_str(&ip_text).ok());
    match hop.host {
        Some(h) => {
            headers.insert(X_ORIGINAL_HOST, h.clone());
        }
        None => {
            headers.remove(X_ORIGINAL_HOST);
        }
    }
}

/// Joins the field's lines and `last` into one comma-separated line (RFC 9110 section 5.3).
fn append_list(headers: &mut HeaderMap, name: HeaderName, last: &str) {
    let mut parts: Vec<&str> = headers
        .get_all(&name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .collect();
    parts.push(last);
    if let Ok(v) = HeaderValue::from_str(&parts.join(", ")) {
        headers.insert(name, v);
    }
}

/// One `Forwarded` element (RFC 7239 section 4): `for`, `proto` and `host`; an IPv6 node is
/// bracketed and quoted (section 6).
fn forwarded_element(ip: IpAddr, hop: Hop<'_>) -> String {
    let node = match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => format!("\"[{v6}]\""),
    };
    let mut element = format!("for={node};proto={}", hop.scheme);
    if let Some(host) = hop.host.and_then(|h| h.to_str().ok()) {
        element.push_str(";host=");
        element.push_str(&token_or_quoted(host));
    }
    element
}

/// `value` as an RFC 9110 token if it is one, else as a quoted-string (section 5.6.4).
fn token_or_quoted(value: &str) -> String {
    let tchar = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
    if !value.is_empty() && value.bytes().all(tchar) {
        return value.to_owned();
    }
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

#[cfg(test)]
#[path = "forwarding_tests.rs"]
mod tests;
