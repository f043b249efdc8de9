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

use super::validate::Issue;

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
/// field (silently), until it loads or fails on something else.
pub(super) fn deserialize_tolerant<T: DeserializeOwned>(
    mut value: Value,
    warnings: &mut Vec<Issue>,
) -> Result<T, serde_path_to_error::Error<serde_json::Error>> {
    // Each round removes one field, so a document cannot loop more often than it has keys.
    let mut budget = count_keys(&value) + 1;
    loop {
        let error = match serde_path_to_error::deserialize::<_, T>(value.clone()) {
            Ok(config) => return Ok(config),
            Err(error) => error,
        };
        let field = unknown_field(&error.inner().to_string());
        let known = field
            .as_deref()
            .filter(|f| UNSUPPORTED.contains(f) || METADATA.contains(f));
        if budget == 0 || known.is_none() || !remove_at(&mut value, error.path()) {
            return Err(error);
        }
        budget -= 1;
        if known.is_some_and(|f| UNSUPPORTED.contains(&f)) {
            warnings.push(not_implemented(&error.path().to_string()));
        }
    }
}

/// The field name of serde's "unknown field `x`, expected ..." message.
fn unknown_field(message: &str) -> Option<String> {
    let rest = message.strip_prefix("unknown field `")?;
    Some(rest.split('`').next()?.to_owned())
}

fn count_keys(value: &Value) -> usize {
    match value {
        Value::Object(map) => map.len() + map.values().map(count_keys).sum::<usize>(),
        Value::Array(items) => items.iter().map(count_keys).sum(),
        _ => 0,
    }
}

/// Removes the field at `path` (whose last segment is the field's key); whether it was there.
fn remove_at(value: &mut Value, path: &serde_path_to_error::Path) -> bool {
    use serde_path_to_error::Segment;
    let segments: Vec<&Segment> = path.iter().collect();
    let Some((Segment::Map { key }, parents)) = segments.split_last() else {
        return false;
    };
    let mut here = value;
    for segment in parents {
        here = match (segment, here) {
            (Segment::Map { key }, Value::Object(map)) => match map.get_mut(key) {
                Some(v) => v,
                None => return false,
            },
            (Segment::Seq { index }, Value::Array(items)) => match items.get_mut(*index) {
                Some(v) => v,
                None => return false,
            },
            _ => return false,
        };
    }
    match here {
        Value::Object(map) => map.remove(key).is_some(),
        _ => false,
    }
}

#[cfg(test)]
#[path = "arm_export_tests.rs"]
mod tests;
