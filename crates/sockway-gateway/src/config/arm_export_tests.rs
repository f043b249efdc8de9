//! An export in the shape the Azure portal's "Export template" writes loads, with one warning
//! per field this gateway does not implement.

use serde_json::json;

use crate::config::{from_str, parse_with_warnings, Format};

fn export() -> serde_json::Value {
    let gw = "[resourceId('Microsoft.Network/applicationGateways', parameters('gw'))]";
    let id = |kind: &str, name: &str| json!({"id": format!("[concat({gw}, '/{kind}/{name}')]")});
    json!({
        "$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#",
        "contentVersion": "1.0.0.0",
        "parameters": {"gw": {"defaultValue": "appgw", "type": "String"}},
        "variables": {},
        "resources": [
            {"type": "Microsoft.Network/publicIPAddresses", "apiVersion": "2023-09-01", "name": "pip"},
            {
                "type": "Microsoft.Network/applicationGateways",
                "apiVersion": "2023-09-01",
                "name": "[parameters('gw')]",
                "location": "westeurope",
                "zones": ["1"],
                "properties": {
                    "sku": {"name": "Standard_v2", "tier": "Standard_v2"},
                    "gatewayIPConfigurations": [{"name": "ipc", "id": "x", "properties": {"subnet": {"id": "s"}}}],
                    "frontendIPConfigurations": [{"name": "fip", "properties": {"publicIPAddress": {"id": "p"}}}],
                    "frontendPorts": [{"name": "port_8080", "id": "x", "properties": {"port": 8080}}],
                    "backendAddressPools": [{
                        "name": "pool", "id": "x", "etag": "W/\"1\"",
                        "properties": {"provisioningState": "Succeeded",
                            "backendAddresses": [{"ipAddress": "127.0.0.1"}]}
                    }],
                    "backendHttpSettingsCollection": [{
                        "name": "settings", "id": "x",
                        "properties": {"port": 5001, "protocol": "Http", "cookieBasedAffinity": "Disabled",
                            "pickHostNameFromBackendAddress": false, "requestTimeout": 20,
                            "path": "/app/", "probe": id("probes", "probe1')]")}
                    }],
                    "httpListeners": [{
                        "name": "listener", "id": "x",
                        "properties": {
                            "frontendIPConfiguration": id("frontendIPConfigurations", "fip"),
                            "frontendPort": id("frontendPorts", "port_8080"),
                            "protocol": "Http", "hostName": "www.example.com",
                            "requireServerNameIndication": false,
                            "customErrorConfigurations": []
                        }
                    }],
                    "requestRoutingRules": [{
                        "name": "rule", "id": "x",
                        "properties": {"ruleType": "Basic", "priority": 100,
                            "httpListener": id("httpListeners", "listener"),
                            "backendAddressPool": id("backendAddressPools", "pool"),
                            "backendHttpSettings": id("backendHttpSettingsCollection", "settings")}
                    }],
                    "probes": [{
                        "name": "probe1", "id": "x",
                        "properties": {"protocol": "Http", "host": "127.0.0.1", "path": "/", "interval": 30,
                            "timeout": 30, "unhealthyThreshold": 3, "pickHostNameFromBackendHttpSettings": false,
                            "minServers": 0, "match": {"statusCodes": ["200-399"]},
                            "backendHttpSettings": [id("backendHttpSettingsCollection", "settings")]}
                    }],
                    "sslPolicy": {"policyType": "Predefined", "policyName": "AppGwSslPolicy20220101"},
                    "autoscaleConfiguration": {"minCapacity": 0, "maxCapacity": 10},
                    "webApplicationFirewallConfiguration": {"enabled": false},
                    "enableHttp2": true,
                    "redirectConfigurations": [],
                    "rewriteRuleSets": []
                }
            }
        ]
    })
}

#[test]
fn a_full_arm_export_loads_with_one_warning_per_unsupported_field() {
    let (config, warnings) = parse_with_warnings(&export().to_string(), Format::Json).unwrap();
    assert_eq!(config.http_listeners[0].port, 8080);
    assert_eq!(config.http_listeners[0].host_names, ["www.example.com"]);
    assert_eq!(
        config.backend_http_settings_collection[0].probe.as_deref(),
        Some("probe1")
    );
    assert_eq!(config.request_routing_rules[0].priority, Some(100));
    let paths: Vec<&str> = warnings.iter().map(|w| w.path.as_str()).collect();
    for expected in [
        "resources[0]",
        "resources[1].zones",
        "sku",
        "gatewayIPConfigurations",
        "frontendIPConfigurations",
        "sslPolicy",
        "autoscaleConfiguration",
        "webApplicationFirewallConfiguration",
        "enableHttp2",
        "backendHttpSettingsCollection[0].path",
        "httpListeners[0].requireServerNameIndication",
    ] {
        assert_eq!(
            paths.iter().filter(|p| **p == expected).count(),
            1,
            "one warning for {expected}: {paths:?}"
        );
    }
    assert!(
        !paths
            .iter()
            .any(|p| p.ends_with(".id") || p.ends_with("etag")),
        "metadata is dropped silently: {paths:?}"
    );
    assert!(
        from_str(&export().to_string(), Format::Json).is_ok(),
        "and it validates"
    );
}

#[test]
fn unknown_fields_outside_the_schema_still_fail_with_their_path() {
    let mut doc = export();
    doc["resources"][1]["properties"]["backendHttpSettingsCollection"][0]["properties"]
        ["reqestTimeout"] = json!(5);
    let error = parse_with_warnings(&doc.to_string(), Format::Json).unwrap_err();
    let text = error.to_string();
    assert!(
        text.contains("backendHttpSettingsCollection[0].reqestTimeout"),
        "{text}"
    );
}
