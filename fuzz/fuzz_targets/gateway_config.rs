#![no_main]
//! Arbitrary text as a gateway configuration, in both formats (JSON and TOML): parsing and
//! checking (`sockway_gateway::config::parse_with_warnings`, with the ARM-template pass, and
//! `from_str`) never panic, whatever the document. A configuration that loads must have no
//! rule broken (`validate`), survive a round trip (printed as JSON and as TOML and loaded
//! again, it is equal to itself), and its route table must build and answer lookups.
use libfuzzer_sys::fuzz_target;
use sockway_gateway::config::{from_str, parse_with_warnings, validate, Format, GatewayConfig};

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
    sockway_gateway::fuzz_route_lookups(config);
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    for format in [Format::Json, Format::Toml] {
        let parsed = parse_with_warnings(text, format);
        assert_eq!(parsed.is_ok(), from_str(text, format).is_ok());
        if let Ok((config, _warnings)) = parsed {
            assert!(
                validate(&config).is_empty(),
                "a loaded configuration breaks a rule"
            );
            check_valid(&config);
        }
    }
});
