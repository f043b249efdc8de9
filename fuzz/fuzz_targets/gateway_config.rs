#![no_main]
//! Arbitrary text as a gateway configuration, in both formats (JSON and TOML): parsing
//! (`sockway_gateway::config::parse`, with the ARM-template normalize pass) and validation
//! (`validate`, `from_str`) never panic, whatever the document. A configuration that parses
//! and validates must survive a round trip: printed as JSON and as TOML and loaded again, it
//! is valid and equal to itself; and its route table builds and answers lookups.
use libfuzzer_sys::fuzz_target;
use sockway_gateway::config::{from_str, parse, validate, Format, GatewayConfig};
use sockway_gateway::routing::RouteTable;

/// Checks what must hold for a configuration that loaded without issues.
fn check_valid(config: &GatewayConfig) {
    let json = serde_json::to_string(config).expect("a valid configuration prints as JSON");
    let again = from_str(&json, Format::Json)
        .unwrap_or_else(|e| panic!("printed JSON reloads: {e}\n{json}"));
    assert_eq!(
        &again, config,
        "JSON round trip changed the configuration\n{json}"
    );
    // TOML cannot print every value serde_json can (for example a `null` in a list), so only
    // a successful print has to reload.
    if let Ok(text) = toml::to_string(config) {
        let again = from_str(&text, Format::Toml)
            .unwrap_or_else(|e| panic!("printed TOML reloads: {e}\n{text}"));
        assert_eq!(
            &again, config,
            "TOML round trip changed the configuration\n{text}"
        );
    }
    let table = RouteTable::build(config);
    for listener in &config.http_listeners {
        let hosts = listener.host_names.iter().map(String::as_str).map(Some);
        for host in hosts.chain([None, Some("unknown.invalid"), Some("")]) {
            if let Some(route) = table.listener(listener.port, host) {
                for path in ["/", "/a/b", "/A/%2e%2e/", ""] {
                    let _ = route.route(path);
                }
            }
        }
    }
    let _ = table.upstreams();
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    for format in [Format::Json, Format::Toml] {
        let Ok(config) = parse(text, format) else {
            continue;
        };
        let issues = validate(&config);
        // Validation is a pure function of the document.
        assert_eq!(issues, validate(&config));
        let loaded = from_str(text, format);
        assert_eq!(loaded.is_ok(), issues.is_empty());
        if issues.is_empty() {
            check_valid(&config);
        }
    }
});
