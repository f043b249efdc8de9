//! Header rewrites (`rewriteRuleSets`): a routing rule's set adds, replaces or removes
//! headers of the request sent to the backend and of the response sent to the client, after
//! the gateway's own changes (hop-by-hop removal, `Host`, forwarding headers), in
//! `ruleSequence` order. An empty value removes the header, as in Application Gateway.
//!
//! Values may use Application Gateway's server variables where they make sense for a
//! proxy that sees the request: `{var_client_ip}`, `{var_client_port}`, `{var_host}`,
//! `{var_http_method}`, `{var_query_string}`, `{var_request_scheme}`, `{var_request_uri}`,
//! `{var_server_port}`, `{var_ssl_enabled}`, `{var_uri_path}`, and `{http_req_<Header>}` for a
//! request header. Unknown variables are refused when the configuration is validated.

use std::net::SocketAddr;

use http::{HeaderMap, HeaderName, HeaderValue, Method, Uri};

use crate::config::{GatewayConfig, HeaderConfiguration};

/// What the variables of one request are.
#[derive(Debug, Clone, Copy)]
pub struct Vars<'a> {
    /// The client's address.
    pub client: SocketAddr,
    /// The port it connected to.
    pub server_port: u16,
    /// Whether over TLS.
    pub secure: bool,
    /// The method.
    pub method: &'a Method,
    /// The request target.
    pub uri: &'a Uri,
    /// The host the client asked for.
    pub host: Option<&'a str>,
    /// The request's headers.
    pub headers: &'a HeaderMap,
}

fn variable(name: &str, vars: &Vars<'_>) -> String {
    if let Some(header) = name.strip_prefix("http_req_") {
        return vars
            .headers
            .get(header)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
    }
    match name.strip_prefix("var_").unwrap_or_default() {
        "client_ip" => vars.client.ip().to_canonical().to_string(),
        "client_port" => vars.client.port().to_string(),
        "host" => vars.host.unwrap_or_default().to_owned(),
        "http_method" => vars.method.to_string(),
        "query_string" => vars.uri.query().unwrap_or_default().to_owned(),
        "request_scheme" => if vars.secure { "https" } else { "http" }.to_owned(),
        "request_uri" => vars
            .uri
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .to_owned(),
        "server_port" => vars.server_port.to_string(),
        "ssl_enabled" => if vars.secure { "on" } else { "off" }.to_owned(),
        "uri_path" => vars.uri.path().to_owned(),
        _ => String::new(),
    }
}

/// `template` with its variables replaced.
pub fn expand(template: &str, vars: &Vars<'_>) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        let Some(close) = rest[open..].find('}') else {
            break;
        };
        out.push_str(&rest[..open]);
        out.push_str(&variable(&rest[open + 1..open + close], vars));
        rest = &rest[open + close + 1..];
    }
    out.push_str(rest);
    out
}

/// One header change: set `name` to the value, or remove it (`None`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderEdit {
    /// The header.
    pub name: HeaderName,
    /// Its new value; `None` removes it.
    pub value: Option<HeaderValue>,
}

/// The request and response header changes of rewrite set `set` for one request.
pub fn edits(
    config: &GatewayConfig,
    set: Option<&str>,
    vars: &Vars<'_>,
) -> (Vec<HeaderEdit>, Vec<HeaderEdit>) {
    let Some(set) = set.and_then(|name| config.rewrite_rule_sets.iter().find(|s| s.name == name))
    else {
        return (Vec::new(), Vec::new());
    };
    let mut rules: Vec<_> = set.rewrite_rules.iter().collect();
    rules.sort_by_key(|r| r.rule_sequence);
    let compile = |list: &[HeaderConfiguration]| -> Vec<HeaderEdit> {
        list.iter()
            .filter_map(|h| {
                let name = h.header_name.get().clone();
                if h.header_value.as_str().is_empty() {
                    return Some(HeaderEdit { name, value: None });
                }
                let value = HeaderValue::from_str(&expand(h.header_value.as_str(), vars)).ok()?;
                Some(HeaderEdit {
                    name,
                    value: Some(value),
                })
            })
            .collect()
    };
    let request = rules
        .iter()
        .flat_map(|r| compile(&r.action_set.request_header_configurations))
        .collect();
    let response = rules
        .iter()
        .flat_map(|r| compile(&r.action_set.response_header_configurations))
        .collect();
    (request, response)
}

/// Applies `edits` to `headers`, in order.
pub fn apply(edits: &[HeaderEdit], headers: &mut HeaderMap) {
    for edit in edits {
        match &edit.value {
            Some(v) => {
                headers.insert(edit.name.clone(), v.clone());
            }
            None => {
                headers.remove(&edit.name);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_are_expanded() {
        let uri: Uri = "/a/b?x=1".parse().unwrap();
        let mut headers = HeaderMap::new();
        headers.insert("origin", HeaderValue::from_static("https://o"));
        let vars = Vars {
            client: "10.1.2.3:4567".parse().unwrap(),
            server_port: 8080,
            secure: true,
            method: &Method::GET,
            uri: &uri,
            host: Some("h.example"),
            headers: &headers,
        };
        assert_eq!(
            expand(
                "{var_client_ip}|{var_uri_path}|{var_query_string}|{var_request_scheme}|{http_req_Origin}|{var_host}",
                &vars
            ),
            "10.1.2.3|/a/b|x=1|https|https://o|h.example"
        );
    }
}
