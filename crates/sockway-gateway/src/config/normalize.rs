//! Accepting the spellings of Azure's ARM templates for Application Gateway: each element may keep its fields
//! in a `properties` object, keys may start with a capital (`RuleType`, `Protocol`),
//! references may be `{"id": ".../backendAddressPools/ContosoServerPool"}`, and listeners may
//! name a `frontendPort` and an `sslCertificate` from top-level `frontendPorts` and
//! `sslCertificates` lists. `frontendIPConfiguration` is ignored (the listener's
//! `bindAddress` says where to listen).

use serde_json::{Map, Value};

use super::issue::Issue;

/// Rewrites a parsed document into the plain shape [`super::schema`] reads.
pub(super) fn normalize(value: Value) -> Result<Value, Vec<Issue>> {
    let mut value = lift(value);
    let mut issues = Vec::new();
    if let Value::Object(root) = &mut value {
        let ports = take_named(root, "frontendPorts");
        let certs = take_named(root, "sslCertificates");
        if let Some(Value::Array(listeners)) = root.get_mut("httpListeners") {
            for (i, listener) in listeners.iter_mut().enumerate() {
                if let Value::Object(l) = listener {
                    resolve_listener(l, i, &ports, &certs, &mut issues);
                }
            }
        }
    }
    if issues.is_empty() {
        Ok(value)
    } else {
        Err(issues)
    }
}

/// Lifts `properties`, fixes key case and turns `{id}` references into names, recursively.
fn lift(value: Value) -> Value {
    match value {
        Value::Array(items) => Value::Array(items.into_iter().map(lift).collect()),
        Value::Object(map) => {
            if let Some(name) = reference_name(&map) {
                return Value::String(name);
            }
            let mut out = Map::new();
            for (key, v) in map {
                let key = lower_first(&key);
                if key == "properties" {
                    if let Value::Object(props) = lift(v) {
                        out.extend(props);
                    }
                } else {
                    out.insert(key, lift(v));
                }
            }
            Value::Object(out)
        }
        other => other,
    }
}

/// `{"id": ".../kind/name')]"}` → `name`: the last path segment, without the trailing
/// characters of an ARM expression (`'`, `)`, `]`).
fn reference_name(map: &Map<String, Value>) -> Option<String> {
    if map.len() != 1 {
        return None;
    }
    let (key, value) = map.iter().next()?;
    if !key.eq_ignore_ascii_case("id") {
        return None;
    }
    let id = value.as_str()?;
    let last = id.rsplit('/').next().unwrap_or(id);
    Some(
        last.trim_end_matches(['\'', ')', ']', '"'])
            .trim()
            .to_owned(),
    )
}

fn lower_first(key: &str) -> String {
    let mut chars = key.chars();
    match chars.next() {
        Some(c) if c.is_ascii_uppercase() => c.to_ascii_lowercase().to_string() + chars.as_str(),
        _ => key.to_owned(),
    }
}

fn take_named(root: &mut Map<String, Value>, key: &str) -> Vec<Map<String, Value>> {
    match root.remove(key) {
        Some(Value::Array(items)) => items
            .into_iter()
            .filter_map(|v| match v {
                Value::Object(m) => Some(m),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}

fn find<'a>(list: &'a [Map<String, Value>], name: &str) -> Option<&'a Map<String, Value>> {
    list.iter()
        .find(|m| m.get("name").and_then(Value::as_str) == Some(name))
}

fn names(list: &[Map<String, Value>]) -> String {
    let names: Vec<&str> = list
        .iter()
        .filter_map(|m| m.get("name").and_then(Value::as_str))
        .collect();
    if names.is_empty() {
        "none".to_owned()
    } else {
        names.join(", ")
    }
}

fn resolve_listener(
    listener: &mut Map<String, Value>,
    index: usize,
    ports: &[Map<String, Value>],
    certs: &[Map<String, Value>],
    issues: &mut Vec<Issue>,
) {
    listener.remove("frontendIPConfiguration");
    // ARM's single `hostName` is a one-element `hostNames`.
    if let Some(Value::String(name)) = listener.remove("hostName") {
        listener
            .entry("hostNames")
            .or_insert_with(|| Value::Array(vec![Value::String(name)]));
    }
    if let Some(port_ref) = listener.remove("frontendPort") {
        let path = format!("httpListeners[{index}].frontendPort");
        match port_ref.as_str().and_then(|name| find(ports, name)) {
            Some(port) => {
                if let Some(p) = port.get("port") {
                    listener.insert("port".into(), p.clone());
                }
            }
            None => issues.push(Issue::new(
                path,
                format!(
                    "no frontend port named {port_ref} (known: {})",
                    names(ports)
                ),
            )),
        }
    }
    if let Some(cert_ref) = listener.remove("sslCertificate") {
        let path = format!("httpListeners[{index}].sslCertificate");
        match cert_ref.as_str().and_then(|name| find(certs, name)) {
            Some(cert) => {
                for key in ["certificateFile", "keyFile"] {
                    if let Some(v) = cert.get(key) {
                        listener.insert(key.into(), v.clone());
                    }
                }
            }
            None => issues.push(Issue::new(
                path,
                format!(
                    "no SSL certificate named {cert_ref} (known: {})",
                    names(certs)
                ),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn lifts_properties_and_references_like_the_seed_template() {
        let doc = json!({
            "frontendPorts": [{"name": "appGatewayFrontendPort80", "properties": {"Port": 80}}],
            "httpListeners": [{
                "name": "appGatewayHttpListener",
                "properties": {
                    "FrontendIPConfiguration": {"Id": "/subscriptions/x/frontendIPConfigurations/ip'"},
                    "FrontendPort": {"Id": "/subscriptions/x/frontendPorts/appGatewayFrontendPort80'"},
                    "Protocol": "Http"
                }
            }],
            "requestRoutingRules": [{
                "name": "rule1",
                "properties": {
                    "RuleType": "Basic",
                    "httpListener": {"id": "/s/httpListeners/appGatewayHttpListener')]"},
                    "backendAddressPool": {"id": "/s/backendAddressPools/ContosoServerPool')]"}
                }
            }]
        });
        let out = normalize(doc).unwrap();
        assert_eq!(out["httpListeners"][0]["port"], json!(80));
        assert_eq!(out["httpListeners"][0]["protocol"], json!("Http"));
        assert!(out["httpListeners"][0]
            .get("frontendIPConfiguration")
            .is_none());
        let rule = &out["requestRoutingRules"][0];
        assert_eq!(rule["ruleType"], json!("Basic"));
        assert_eq!(rule["httpListener"], json!("appGatewayHttpListener"));
        assert_eq!(rule["backendAddressPool"], json!("ContosoServerPool"));
    }

    #[test]
    fn unknown_frontend_port_is_reported_with_its_path() {
        let doc = json!({"httpListeners": [{"name": "l", "frontendPort": "p9"}]});
        let issues = normalize(doc).unwrap_err();
        assert_eq!(issues.len(), 1);
        assert_eq!(issues[0].path, "httpListeners[0].frontendPort");
        assert!(issues[0].message.contains("p9"), "{}", issues[0].message);
    }
}
