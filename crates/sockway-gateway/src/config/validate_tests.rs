use crate::config::{from_str, ConfigError, Format};
use serde_json::{json, Value};

fn base() -> Value {
    json!({
        "httpListeners": [{"name": "web", "port": 8080}],
        "backendAddressPools": [
            {"name": "pool1", "backendAddresses": [{"ipAddress": "127.0.0.1", "port": 5001}]},
            {"name": "pool2", "backendAddresses": [{"fqdn": "localhost"}]}
        ],
        "backendHttpSettingsCollection": [{"name": "settings", "port": 5000}],
        "requestRoutingRules": [{
            "name": "rule", "ruleType": "Basic", "httpListener": "web",
            "backendAddressPool": "pool1", "backendHttpSettings": "settings"
        }]
    })
}

/// Every problem the document has, as `--check` prints them.
fn issues(doc: Value) -> Vec<String> {
    match from_str(&doc.to_string(), Format::Json) {
        Ok(_) => Vec::new(),
        Err(ConfigError::Invalid(issues)) => issues.iter().map(ToString::to_string).collect(),
        Err(other) => panic!("not a list of issues: {other}"),
    }
}

fn has(list: &[String], needle: &str) -> bool {
    list.iter().any(|l| l.contains(needle))
}

#[test]
fn the_base_config_is_valid_and_defaults_apply() {
    let c = from_str(&base().to_string(), Format::Json).unwrap();
    let s = &c.backend_http_settings_collection[0];
    assert_eq!(s.request_timeout.as_f64(), 20.0);
    assert_eq!(s.affinity_cookie_name, "ApplicationGatewayAffinity");
    assert_eq!(c.http_listeners[0].bind_address.to_string(), "0.0.0.0");
    assert_eq!(c.limits.max_header_bytes, 64 * 1024);
}

#[test]
fn dangling_references_name_path_and_known_names() {
    let mut doc = base();
    doc["requestRoutingRules"][0]["backendAddressPool"] = json!("poolX");
    doc["requestRoutingRules"][0]["backendHttpSettings"] = json!("nope");
    let list = issues(doc);
    assert!(
        list.contains(&"requestRoutingRules[0].backendAddressPool: no pool named \"poolX\" (known: pool1, pool2)".to_owned()),
        "{list:#?}"
    );
    assert!(has(
        &list,
        "requestRoutingRules[0].backendHttpSettings: no backend settings named \"nope\""
    ));
    assert_eq!(list.len(), 2, "all errors, nothing else: {list:#?}");
}

#[test]
fn duplicate_names_and_listener_ports() {
    let mut doc = base();
    doc["httpListeners"] = json!([
        {"name": "web", "port": 8080},
        {"name": "web", "port": 8080}
    ]);
    let list = issues(doc);
    assert!(
        has(
            &list,
            "httpListeners[1].name: duplicate name \"web\" (also httpListeners[0])"
        ),
        "{list:#?}"
    );
    assert!(
        has(&list, "httpListeners[1].port: duplicate listener port 8080"),
        "{list:#?}"
    );
}

#[test]
fn multi_site_listeners_may_share_a_port_but_not_a_host() {
    let mut doc = base();
    doc["httpListeners"] = json!([
        {"name": "a", "port": 8080, "hostNames": ["a.example.com"]},
        {"name": "b", "port": 8080, "hostNames": ["A.example.com", "*.example.com"]},
        {"name": "c", "port": 8080, "protocol": "Https", "certificateFile": "/nonexistent.pem", "keyFile": "/nonexistent.key"}
    ]);
    doc["requestRoutingRules"] = json!([
        {"name": "r1", "httpListener": "a", "backendAddressPool": "pool1", "backendHttpSettings": "settings"},
        {"name": "r2", "httpListener": "b", "backendAddressPool": "pool1", "backendHttpSettings": "settings"},
        {"name": "r3", "httpListener": "c", "backendAddressPool": "pool1", "backendHttpSettings": "settings"}
    ]);
    let list = issues(doc);
    assert!(has(&list, "httpListeners[1].hostNames[0]: host name \"A.example.com\" on port 8080 is also served by httpListeners[0]"), "{list:#?}");
    assert!(has(&list, "httpListeners[2].port: port 8080 is also used by httpListeners[0] with another bindAddress or protocol"));
    assert!(has(&list, "httpListeners[2].certificateFile: cannot read"));
    assert!(has(&list, "httpListeners[2].keyFile: cannot read"));
}

#[test]
fn port_and_timeout_ranges() {
    let mut doc = base();
    doc["httpListeners"][0]["port"] = json!(0);
    doc["backendHttpSettingsCollection"][0]["requestTimeout"] = json!(86401);
    doc["backendHttpSettingsCollection"][0]["connectionDraining"] =
        json!({"enabled": true, "drainTimeoutInSec": 3601});
    doc["backendAddressPools"][0]["backendAddresses"][0]["port"] = json!(0);
    let list = issues(doc);
    assert!(
        has(&list, "httpListeners[0].port: port must be 1-65535"),
        "{list:#?}"
    );
    assert!(has(
        &list,
        "backendHttpSettingsCollection[0].requestTimeout: 86401 is out of range"
    ));
    assert!(has(&list, "backendHttpSettingsCollection[0].connectionDraining.drainTimeoutInSec: 3601 is out of range 1-3600"));
    assert!(has(
        &list,
        "backendAddressPools[0].backendAddresses[0].port: port must be 1-65535"
    ));
}

#[test]
fn probes_status_ranges_paths_and_thresholds() {
    let mut doc = base();
    doc["probes"] = json!([{
        "name": "p", "path": "health", "interval": 0, "timeout": 0.5, "unhealthyThreshold": 0,
        "match": {"statusCodes": ["200-399", "2xx", "500-400"], "body": ""}
    }]);
    doc["backendHttpSettingsCollection"][0]["probe"] = json!("q");
    let list = issues(doc);
    assert!(
        has(&list, "probes[0].path: \"health\" must start with '/'"),
        "{list:#?}"
    );
    assert!(has(&list, "probes[0].interval: 0 is out of range"));
    assert!(
        !has(&list, "probes[0].timeout"),
        "fractional seconds are fine"
    );
    assert!(has(
        &list,
        "probes[0].unhealthyThreshold: 0 is out of range 1-20"
    ));
    assert!(has(
        &list,
        "probes[0].match.statusCodes[1]: \"2xx\" is not a status code"
    ));
    assert!(has(
        &list,
        "probes[0].match.statusCodes[2]: \"500-400\": the range is backwards"
    ));
    assert!(has(&list, "probes[0].match.body"));
    assert!(has(
        &list,
        "backendHttpSettingsCollection[0].probe: no probe named \"q\" (known: p)"
    ));
}

#[test]
fn rule_shapes_and_listener_coverage() {
    let mut doc = base();
    doc["httpListeners"] = json!([{"name": "web", "port": 8080}, {"name": "lonely", "port": 8081}]);
    doc["requestRoutingRules"] = json!([
        {"name": "r1", "ruleType": "PathBasedRouting", "httpListener": "web", "backendAddressPool": "pool1", "priority": 5},
        {"name": "r2", "ruleType": "Basic", "httpListener": "web", "urlPathMap": "m", "priority": 5},
        {"name": "r3", "httpListener": "ghost", "backendAddressPool": "pool1", "backendHttpSettings": "settings", "priority": 20001}
    ]);
    let list = issues(doc);
    assert!(
        has(
            &list,
            "requestRoutingRules[0].urlPathMap: a PathBasedRouting rule needs a urlPathMap"
        ),
        "{list:#?}"
    );
    assert!(has(
        &list,
        "requestRoutingRules[0].ruleType: a PathBasedRouting rule takes"
    ));
    assert!(has(
        &list,
        "requestRoutingRules[1].httpListener: listener \"web\" already has a rule"
    ));
    assert!(has(
        &list,
        "requestRoutingRules[1].backendAddressPool: a Basic rule needs a pool"
    ));
    assert!(has(
        &list,
        "requestRoutingRules[1].urlPathMap: only PathBasedRouting rules take a path map"
    ));
    assert!(has(
        &list,
        "requestRoutingRules[1].priority: priority 5 is also used by requestRoutingRules[0]"
    ));
    assert!(has(
        &list,
        "requestRoutingRules[2].httpListener: no listener named \"ghost\" (known: web, lonely)"
    ));
    assert!(has(
        &list,
        "requestRoutingRules[2].priority: 20001 is out of range 1-20000"
    ));
    assert!(has(
        &list,
        "httpListeners[1]: no routing rule uses listener \"lonely\""
    ));
}

#[test]
fn path_maps_check_patterns_and_references() {
    let mut doc = base();
    doc["urlPathMaps"] = json!([{
        "name": "m", "defaultBackendAddressPool": "pool9", "defaultBackendHttpSettings": "settings",
        "pathRules": [
            {"name": "a", "paths": ["/chat/*", "api"], "backendAddressPool": "pool1", "backendHttpSettings": "settings"},
            {"name": "a", "paths": ["/Chat/*", "/x*y"], "backendAddressPool": "pool1", "backendHttpSettings": "s2"},
            {"name": "c", "paths": [], "backendAddressPool": "pool1", "backendHttpSettings": "settings"}
        ]
    }]);
    doc["requestRoutingRules"][0] = json!({"name": "rule", "ruleType": "PathBasedRouting", "httpListener": "web", "urlPathMap": "m"});
    let list = issues(doc);
    assert!(
        has(
            &list,
            "urlPathMaps[0].defaultBackendAddressPool: no pool named \"pool9\""
        ),
        "{list:#?}"
    );
    assert!(has(
        &list,
        "urlPathMaps[0].pathRules[0].paths[1]: \"api\" must start with '/'"
    ));
    assert!(has(
        &list,
        "urlPathMaps[0].pathRules[1].name: duplicate path rule name \"a\""
    ));
    assert!(has(
        &list,
        "urlPathMaps[0].pathRules[1].paths[0]: path \"/Chat/*\" is also in pathRules[0]"
    ));
    assert!(has(
        &list,
        "urlPathMaps[0].pathRules[1].paths[1]: \"/x*y\": '*' is only allowed at the end"
    ));
    assert!(has(
        &list,
        "urlPathMaps[0].pathRules[1].backendHttpSettings: no backend settings named \"s2\""
    ));
    assert!(has(
        &list,
        "urlPathMaps[0].pathRules[2].paths: a path rule needs at least one path"
    ));
}

#[test]
fn addresses_hosts_and_settings_conflicts() {
    let mut doc = base();
    doc["backendAddressPools"][0]["backendAddresses"] = json!([
        {"ipAddress": "300.1.1.1"}, {"fqdn": "a b"}, {}, {"fqdn": "x", "ipAddress": "1.1.1.1"}
    ]);
    doc["backendHttpSettingsCollection"][0]["hostName"] = json!("api.example.com");
    doc["backendHttpSettingsCollection"][0]["pickHostNameFromBackendAddress"] = json!(true);
    doc["backendHttpSettingsCollection"][0]["trustedRootCertificate"] = json!("/nonexistent.pem");
    doc["backendHttpSettingsCollection"][0]["affinityCookieName"] = json!("bad cookie");
    let list = issues(doc);
    assert!(
        has(
            &list,
            "backendAddressPools[0].backendAddresses[0].ipAddress: invalid IP address syntax"
        ),
        "{list:#?}"
    );
    assert!(has(
        &list,
        "backendAddressPools[0].backendAddresses[1].fqdn"
    ));
    assert!(has(
        &list,
        "backendAddressPools[0].backendAddresses[2]: needs fqdn or ipAddress"
    ));
    assert!(has(
        &list,
        "backendAddressPools[0].backendAddresses[3]: set fqdn or ipAddress, not both"
    ));
    assert!(has(&list, "backendHttpSettingsCollection[0].hostName: set hostName or pickHostNameFromBackendAddress, not both"));
    assert!(has(
        &list,
        "backendHttpSettingsCollection[0].trustedRootCertificate: only used with protocol Https"
    ));
    assert!(has(
        &list,
        "backendHttpSettingsCollection[0].affinityCookieName"
    ));
}

#[test]
fn limits_and_admin() {
    let mut doc = base();
    doc["limits"] = json!({"maxHeaderBytes": 100, "relayBufferBytes": 0, "maxConnections": 0});
    doc["admin"] = json!({"address": "127.0.0.1:8080"});
    let list = issues(doc);
    assert!(
        has(&list, "limits.maxHeaderBytes: must be 8192-1048576"),
        "{list:#?}"
    );
    assert!(has(&list, "limits.relayBufferBytes"));
    assert!(has(&list, "limits.maxConnections"));
    assert!(has(
        &list,
        "admin.address: port 8080 is also httpListeners[0]'s port"
    ));
}

#[test]
fn type_errors_carry_their_path() {
    let mut doc = base();
    doc["requestRoutingRules"][0]["ruleType"] = json!("Fancy");
    let err = from_str(&doc.to_string(), Format::Json).unwrap_err();
    let text = err.to_string();
    assert!(text.contains("requestRoutingRules[0].ruleType"), "{text}");
    let mut doc = base();
    doc["httpListeners"][0]["colour"] = json!("red");
    let text = from_str(&doc.to_string(), Format::Json)
        .unwrap_err()
        .to_string();
    assert!(
        text.contains("httpListeners[0]") && text.contains("colour"),
        "{text}"
    );
}

#[test]
fn toml_reads_the_same_model() {
    let toml = r#"
[[httpListeners]]
name = "web"
port = 8080

[[backendAddressPools]]
name = "pool1"
backendAddresses = [{ ipAddress = "127.0.0.1", port = 5001 }]

[[backendHttpSettingsCollection]]
name = "settings"
port = 5000
cookieBasedAffinity = "Enabled"

[[requestRoutingRules]]
name = "rule"
httpListener = "web"
backendAddressPool = "pool1"
backendHttpSettings = "settings"
"#;
    let from_toml = from_str(toml, Format::Toml).unwrap();
    let mut doc = base();
    doc["backendAddressPools"].as_array_mut().unwrap().pop();
    doc["backendHttpSettingsCollection"][0]["cookieBasedAffinity"] = json!("Enabled");
    let from_json = from_str(&doc.to_string(), Format::Json).unwrap();
    assert_eq!(from_toml, from_json);
    assert!(matches!(
        from_str("[[httpListeners]]\nname = 1", Format::Toml),
        Err(ConfigError::Syntax { .. })
    ));
}

#[test]
fn trusted_proxies_access_log_and_admin_token_are_checked() {
    let mut doc = base();
    doc["trustedProxies"] = json!(["10.0.0.0/8", "::1", "10.0.0.0/40", "proxy"]);
    doc["accessLog"] = json!({"redactQueryParameters": ["sig", ""]});
    doc["admin"] = json!({"address": "127.0.0.1:9090", "bearerToken": "short"});
    let list = issues(doc);
    assert!(has(&list, "trustedProxies[2]: \"10.0.0.0/40\""), "{list:?}");
    assert!(has(&list, "trustedProxies[3]"), "{list:?}");
    assert!(!has(&list, "trustedProxies[0]"), "{list:?}");
    assert!(has(&list, "accessLog.redactQueryParameters[1]"), "{list:?}");
    assert!(has(&list, "admin.bearerToken"), "{list:?}");
    let c = from_str(&base().to_string(), Format::Json).unwrap();
    assert!(c.trusted_proxies.is_empty());
    assert_eq!(
        c.access_log.redact_query_parameters,
        ["access_token", "token", "code"]
    );
}
