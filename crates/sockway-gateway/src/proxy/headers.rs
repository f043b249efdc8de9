//! Header rules of a proxy: hop-by-hop fields removed (RFC 9110 section 7.6.1: `Connection`
//! and every field it names, `Keep-Alive`, `TE`, `Trailer`, `Transfer-Encoding`, `Upgrade`,
//! `Proxy-*`), the `Host` chosen by the backend settings, and the affinity cookie. The
//! forwarding headers (`X-Forwarded-*`, `Forwarded`, `X-Real-IP`) are [`crate::forwarding`]'s.

use http::header::{
    HeaderName, HeaderValue, CONNECTION, COOKIE, HOST, PROXY_AUTHENTICATE, PROXY_AUTHORIZATION,
    SET_COOKIE, TE, TRAILER, TRANSFER_ENCODING, UPGRADE,
};
use http::{HeaderMap, Uri};

use crate::guard::REFUSAL_HEADER;
use crate::pool::{Backend, HostPolicy};

/// Removes hop-by-hop fields: those `Connection` names, then the fixed set.
pub fn remove_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    for name in named {
        headers.remove(name);
    }
    for name in [
        CONNECTION,
        TE,
        TRAILER,
        TRANSFER_ENCODING,
        UPGRADE,
        PROXY_AUTHENTICATE,
        PROXY_AUTHORIZATION,
    ] {
        headers.remove(name);
    }
    let proxy: Vec<HeaderName> = headers
        .keys()
        .filter(|k| k.as_str().starts_with("proxy-") || k.as_str() == "keep-alive")
        .cloned()
        .collect();
    for name in proxy {
        headers.remove(name);
    }
    headers.remove(REFUSAL_HEADER);
}

/// The host the client asked for, without port: the URI's authority (HTTP/2) or `Host`.
pub fn request_host(uri: &Uri, headers: &HeaderMap) -> Option<String> {
    if let Some(host) = uri.host() {
        return Some(
            host.trim_start_matches('[')
                .trim_end_matches(']')
                .to_owned(),
        );
    }
    let value = headers.get(HOST)?.to_str().ok()?;
    let authority: http::uri::Authority = value.parse().ok()?;
    Some(
        authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned(),
    )
}

/// The host the client asked for, with its port as sent: the request target's authority
/// when it has one (HTTP/2, or an HTTP/1.1 absolute-form target, for which RFC 9112 section
/// 3.2.2 says `Host` is ignored and a proxy passes on the target's authority), else `Host`.
/// The same precedence as [`request_host`], so a backend is never told another host than the
/// one the request was routed by.
pub fn original_host(uri: &Uri, headers: &HeaderMap) -> Option<HeaderValue> {
    let from_target = uri.host().and_then(|host| {
        let value = match uri.port() {
            Some(port) => format!("{host}:{}", port.as_str()),
            None => host.to_owned(),
        };
        HeaderValue::from_str(&value).ok()
    });
    from_target.or_else(|| headers.get(HOST).cloned())
}

/// Sets `Host` for the backend per the settings.
pub fn set_host(
    headers: &mut HeaderMap,
    policy: &HostPolicy,
    backend: &Backend,
    original: Option<&HeaderValue>,
) {
    let value = match policy {
        HostPolicy::Client => original.cloned(),
        HostPolicy::Fixed(name) => HeaderValue::from_str(name).ok(),
        HostPolicy::BackendAddress => HeaderValue::from_str(&backend.authority()).ok(),
    };
    match value {
        Some(v) => {
            headers.insert(HOST, v);
        }
        None => {
            if let Ok(v) = HeaderValue::from_str(&backend.authority()) {
                headers.insert(HOST, v);
            }
        }
    }
}

/// The value of cookie `name` in the request's `Cookie` fields.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| k.trim() == name)
        .map(|(_, v)| v.trim().trim_matches('"').to_owned())
}

/// Adds `Set-Cookie: name=value; Path=/; HttpOnly` (and `Secure` on HTTPS listeners).
pub fn set_affinity_cookie(headers: &mut HeaderMap, name: &str, value: &str, secure: bool) {
    let cookie = format!(
        "{name}={value}; Path=/; HttpOnly{}",
        if secure { "; Secure" } else { "" }
    );
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        headers.append(SET_COOKIE, v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hop_by_hop_fields_go_including_those_connection_names() {
        let mut h = HeaderMap::new();
        for (k, v) in [
            ("connection", "keep-alive, X-Secret"),
            ("keep-alive", "timeout=5"),
            ("x-secret", "1"),
            ("te", "trailers"),
            ("trailer", "x"),
            ("transfer-encoding", "chunked"),
            ("upgrade", "websocket"),
            ("proxy-authorization", "basic x"),
            ("proxy-connection", "keep-alive"),
            ("x-sockway-refusal", "forged"),
            ("accept", "*/*"),
        ] {
            h.append(k, HeaderValue::from_static(v));
        }
        remove_hop_by_hop(&mut h);
        let left: Vec<&str> = h.keys().map(|k| k.as_str()).collect();
        assert_eq!(left, ["accept"]);
    }

    #[test]
    fn cookies_are_found_by_name() {
        let mut h = HeaderMap::new();
        h.append(
            COOKIE,
            HeaderValue::from_static("a=1; ApplicationGatewayAffinity=abc"),
        );
        assert_eq!(
            cookie(&h, "ApplicationGatewayAffinity").as_deref(),
            Some("abc")
        );
        assert_eq!(cookie(&h, "b"), None);
    }

    #[test]
    fn hosts_come_from_the_uri_or_the_host_header() {
        let mut h = HeaderMap::new();
        h.insert(HOST, HeaderValue::from_static("Example.com:8080"));
        assert_eq!(
            request_host(&Uri::from_static("/x"), &h).as_deref(),
            Some("Example.com")
        );
        assert_eq!(
            request_host(&Uri::from_static("https://[::1]:8443/x"), &HeaderMap::new()).as_deref(),
            Some("::1")
        );
    }

    #[test]
    fn an_absolute_form_target_is_the_host_routed_by_and_passed_on() {
        // RFC 9112 section 3.2.2: with an absolute-form target, `Host` is ignored and a proxy
        // passes on the target's authority; routing uses it too, so both must agree.
        let mut h = HeaderMap::new();
        h.insert(HOST, HeaderValue::from_static("a.example"));
        let uri = Uri::from_static("http://user@b.example:8080/x");
        assert_eq!(request_host(&uri, &h).as_deref(), Some("b.example"));
        assert_eq!(
            original_host(&uri, &h),
            Some(HeaderValue::from_static("b.example:8080"))
        );
        let uri = Uri::from_static("http://[::1]/x");
        assert_eq!(
            original_host(&uri, &h),
            Some(HeaderValue::from_static("[::1]"))
        );
        assert_eq!(
            original_host(&Uri::from_static("/x"), &h),
            Some(HeaderValue::from_static("a.example"))
        );
    }
}
