//! Redirects (`redirectConfigurations`): a rule with a `redirectConfiguration` answers every
//! request itself with 301, 302, 303, 307 or 308 and a `Location` (RFC 9110 section 10.2.2):
//! the target listener's scheme and port with the host the client asked for (HTTP to HTTPS,
//! say), or a fixed URL; with `includePath` and `includeQueryString` the request's path and
//! query are appended.

use http::header::LOCATION;
use http::{HeaderValue, Response, StatusCode, Uri};

use super::body::{refusal, ProxyBody};
use crate::config::{GatewayConfig, Protocol, RedirectConfiguration};

/// The redirect response for `uri` on a host the client named `host` (may carry a port).
pub fn respond(
    config: &GatewayConfig,
    name: &str,
    host: Option<&str>,
    uri: &Uri,
) -> Response<ProxyBody> {
    let Some(r) = config
        .redirect_configurations
        .iter()
        .find(|r| r.name == name)
    else {
        return refusal(
            StatusCode::BAD_GATEWAY,
            "the rule's redirect is not configured",
        );
    };
    let Some(location) = location(config, r, host, uri) else {
        return refusal(
            StatusCode::BAD_REQUEST,
            "the request has no host to redirect to",
        );
    };
    let status = StatusCode::from_u16(r.redirect_type.status()).unwrap_or(StatusCode::FOUND);
    let mut response = refusal(status, &format!("redirected to {location}"));
    if let Ok(value) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(LOCATION, value);
    }
    response
}

/// Where `r` sends a request for `uri` on `host`.
pub fn location(
    config: &GatewayConfig,
    r: &RedirectConfiguration,
    host: Option<&str>,
    uri: &Uri,
) -> Option<String> {
    let mut out = match (&r.target_url, &r.target_listener) {
        (Some(url), _) => url.clone(),
        (None, Some(name)) => {
            let listener = config.http_listeners.iter().find(|l| &l.name == name)?;
            let host = host_without_port(host?);
            let (scheme, default_port) = match listener.protocol {
                Protocol::Http => ("http", 80),
                Protocol::Https => ("https", 443),
            };
            if listener.port == default_port {
                format!("{scheme}://{host}")
            } else {
                format!("{scheme}://{host}:{}", listener.port)
            }
        }
        (None, None) => return None,
    };
    if r.include_path {
        out = format!("{}{}", out.trim_end_matches('/'), uri.path());
    }
    if r.include_query_string {
        if let Some(q) = uri.query() {
            out.push(if out.contains('?') { '&' } else { '?' });
            out.push_str(q);
        }
    }
    Some(out)
}

fn host_without_port(host: &str) -> &str {
    if host.starts_with('[') {
        return host.split_inclusive(']').next().unwrap_or(host);
    }
    host.rsplit_once(':').map_or(host, |(h, _)| h)
}
