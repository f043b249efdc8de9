//! Loading a full ARM export of an Application Gateway: the template envelope (`$schema`,
//! `parameters`, `resources[]`) is unwrapped to the `Microsoft.Network/applicationGateways`
//! resource, and fields of Application Gateway that this gateway does not implement (`sku`,
//! `sslPolicy`, `frontendIPConfigurations`, `webApplicationFirewallConfiguration`, ...) are
//! removed with one warning each, naming its path, instead of failing the load.
//!
//! Only names from Application Gateway's resource schema are tolerated: any other unknown
//! field (a typo such as `reqestTimeout`) still fails with its path. Resource metadata
//! (`id`, `etag`, `type`, `provisioningState`) and back-references that exports add inside
//! elements (a probe's `backendHttpSettings`, a pool's `backendIPConfigurations`) describe
//! the resource rather than ask for behaviour, so they are dropped without a warning.

use serde::de::DeserializeOwned;
use serde_json::Value;
use serde_path_to_error::Segment;

use super::issue::Issue;

/// Fields of Application Gateway's schema that sockway does not implement: warned, ignored.
const UNSUPPORTED: &[&str] = &[
    "sku",
    "sslPolicy",
    "gatewayIPConfigurations",
    "frontendIPConfigurations",
    "autoscaleConfiguration",
    "webApplicationFirewallConfiguration",
    "firewallPolicy",
    "enableHttp2",
    "enableFips",
    "forceFirewallPolicyAssociation",
    "authenticationCertificates",
    "trustedRootCertificates",
    "trustedClientCertificates",
    "sslProfiles",
    "sslProfile",
    "privateLinkConfigurations",
    "privateLinkConfiguration",
    "privateEndpointConnections",
    "loadDistributionPolicies",
    "loadDistributionPolicy",
    "defaultLoadDistributionPolicy",
    "backendSettingsCollection",
    "listeners",
    "routingRules",
    "defaultRedirectConfiguration",
    "defaultRewriteRuleSet",
    "requireServerNameIndication",
    "path",
    "probeEnabled",
    "globalConfiguration",
    "defaultPredefinedSslPolicy",
    "identity",
    "zones",
];

/// Resource metadata and back-references: dropped silently.
const METADATA: &[&str] = &[
    "id",
    "etag",
    "type",
    "provisioningState",
    "resourceGuid",
    "operationalState",
    "backendIPConfigurations",
    "backendHttpSettings",
    "backendHttpSettingsCollection",
    "httpListeners",
    "requestRoutingRules",
    "urlPathMaps",
    "pathRules",
    "probes",
];

/// Resource-level keys of the gateway resource in a template: who and where it is.
const RESOURCE_KEYS: &[&str] = &[
    "type",
    "apiVersion",
    "name",
    "location",
    "dependsOn",
    "tags",
    "id",
    "etag",
    "comments",
];

/// Unwraps an ARM template (`{"$schema", "resources": [...]}`) to its Application Gateway
/// resource; other documents are returned as they are. Warns about other resources and the
/// resource's `zones`/`identity`/`sku` (the latter sit in `properties` in exports and are
/// met later).
pub(super) fn unwrap_template(value: Value, warnings: &mut Vec<Issue>) -> Value {
    let Value::Object(mut root) = value else {
        return value;
    };
    let Some(Value::Array(resources)) = root.remove("resources") else {
        return Value::Object(root);
    };
    let is_gateway = |r: &Value| {
        r.get("type")
            .and_then(Value::as_str)
            .is_some_and(|t| t.eq_ignore_ascii_case("Microsoft.Network/applicationGateways"))
    };
    let mut gateway = None;
    for (i, resource) in resources.into_iter().enumerate() {
        if gateway.is_none() && is_gateway(&resource) {
            gateway = Some((i, resource));
        } else {
            let kind = resource.get("type").and_then(Value::as_str).unwrap_or("?");
            warnings.push(Issue::new(
                format!("resources[{i}]"),
                format!("resource of type {kind:?} ignored: only an application gateway is read"),
            ));
        }
    }
    let Some((i, Value::Object(mut resource))) = gateway else {
        return Value::Object(root);
    };
    let mut out = match resource.remove("properties") {
        Some(Value::Object(props)) => props,
        _ => Default::default(),
    };
    for (key, value) in resource {
        if RESOURCE_KEYS.contains(&key.as_str()) {
            continue;
        }
        if key.eq_ignore_ascii_case("sku") || key == "identity" || key == "zones" {
            warnings.push(not_implemented(&format!("resources[{i}].{key}")));
            continue;
        }
        out.entry(key).or_insert(value);
    }
    Value::Object(out)
}

fn not_implemented(path: &str) -> Issue {
    Issue::new(path, "not implemented by sockway gateway: ignored")
}

/// Deserializes `value`, removing each unknown field that Application Gateway's schema has
/// but this gateway does not implement (one warning each, with its path) and each metadata
/// field (silently), and putting a placeholder ([`super::values`]) where a value does not
/// parse (one issue each, with its path), until it loads or fails on something else. The
/// issues come back with the result: a document with any is refused.
pub(super) fn deserialize_tolerant<T: DeserializeOwned>(
    mut value: Value,
    warnings: &mut Vec<Issue>,
) -> Result<(T, Vec<Issue>), serde_path_to_error::Error<serde_json::Error>> {
    let mut issues = Vec::new();
    // Each round removes a field or replaces a scalar for good, so a document cannot loop
    // more often than it has keys and values.
    let mut budget = count_nodes(&value) + 1;
    loop {
        let error = match serde_path_to_error::deserialize::<_, T>(value.clone()) {
            Ok(config) => return Ok((config, issues)),
            Err(error) => error,
        };
        if budget == 0 {
            return Err(error);
        }
        budget -= 1;
        let field = unknown_field(&error.inner().to_string());
        if let Some(field) = field {
            let known = UNSUPPORTED.contains(&field.as_str()) || METADATA.contains(&field.as_str());
            if !known || !remove_at(&mut value, error.path()) {
                return Err(error);
            }
            if UNSUPPORTED.contains(&field.as_str()) {
                warnings.push(not_implemented(&error.path().to_string()));
            }
        } else if let Some(fixed) = with_placeholder::<T>(&value, error.path()) {
            issues.push(Issue::new(
                error.path().to_string(),
                error.inner().to_string(),
            ));
            value = fixed;
        } else {
            return Err(error);
        }
    }
}

/// `value` with the scalar at `path` replaced by the first placeholder that makes the error
/// there go away; `None` when the error is not about a scalar's value (a missing field, a
/// wrong structure) or no placeholder helps (an unknown enum variant).
fn with_placeholder<T: DeserializeOwned>(
    value: &Value,
    path: &serde_path_to_error::Path,
) -> Option<Value> {
    let here = path.to_string();
    for placeholder in super::values::placeholders() {
        let mut candidate = value.clone();
        let slot = node_at(&mut candidate, path.iter())?;
        if slot.is_object() || slot.is_array() {
            return None;
        }
        *slot = placeholder;
        match serde_path_to_error::deserialize::<_, T>(candidate.clone()) {
            Err(e) if e.path().to_string() == here => continue,
            _ => return Some(candidate),
        }
    }
    None
}

/// The node at the end of `path`, if there is one.
fn node_at<'a, 'p>(
    value: &'a mut Value,
    path: impl IntoIterator<Item = &'p Segment>,
) -> Option<&'a mut Value> {
    let mut here = value;
    for segment in path {
        here = match (segment, here) {
            (Segment::Map { key }, Value::Object(map)) => map.get_mut(key)?,
            (Segment::Seq { index }, Value::Array(items)) => items.get_mut(*index)?,
            _ => return None,
        };
    }
    Some(here)
}

/// The field name of serde's "unknown field `x`, expected ..." message.
fn unknown_field(message: &str) -> Option<String> {
    let rest = message.strip_prefix("unknown field `")?;
    Some(rest.split('`').next()?.to_owned())
}

fn count_nodes(value: &Value) -> usize {
    match value {
        Value::Object(map) => 1 + map.values().map(count_nodes).sum::<usize>(),
        Value::Array(items) => 1 + items.iter().map(count_nodes).sum::<usize>(),
        _ => 1,
    }
}

/// Removes the field at `path` (whose last segment is the field's key); whether it was there.
fn remove_at(value: &mut Value, path: &serde_path_to_error::Path) -> bool {
    let segments: Vec<&Segment> = path.iter().collect();
    let Some((Segment::Map { key }, parents)) = segments.split_last() else {
        return false;
    };
    match node_at(value, parents.iter().copied()) {
        Some(Value::Object(map)) => map.remove(key).is_some(),
        _ => false,
    }
}

#[cfg(test)]
#[path = "arm_export_tests.rs"]
mod tests;
