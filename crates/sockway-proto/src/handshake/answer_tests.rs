//! Tests for the server's answer: accept, and each refusal with its status (400, 403, 405,
//! 426, 431) and headers.

use super::*;
use crate::deflate::DeflateConfig;

const UPGRADE: &str = "GET /chat?x=1 HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n\
    Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
    Sec-WebSocket-Version: 13\r\nOrigin: https://good.example\r\n\
    Sec-WebSocket-Protocol: b, chat\r\n\r\n";

fn rules<'a>(origins: &'a OriginPolicy, subprotocols: &'a [&'a str]) -> ServerRules<'a, &'a str> {
    ServerRules {
        limits: HeadLimits::default(),
        origins,
        subprotocols,
        compression: None,
    }
}

fn refused(input: &str, rules: &ServerRules<'_, &str>) -> Refusal {
    match accept(input.as_bytes(), rules) {
        Err(refusal) => refusal,
        other => panic!("not refused: {other:?}"),
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn a_valid_upgrade_is_accepted_with_the_rfc_accept_key_and_subprotocol() {
    let any = OriginPolicy::Any;
    let input = [UPGRADE.as_bytes(), b"\x81\x80"].concat();
    let accepted = accept(&input, &rules(&any, &["chat"])).unwrap().unwrap();
    assert_eq!(accepted.head_len, UPGRADE.len());
    assert_eq!(accepted.target, "/chat?x=1");
    assert_eq!(accepted.subprotocol.as_deref(), Some("chat"));
    assert_eq!(
        accepted.offer.origin.as_deref(),
        Some("https://good.example")
    );
    let response = text(&accepted.to_http1());
    assert!(response.starts_with("HTTP/1.1 101 Switching Protocols\r\n"));
    // The example key and accept value of RFC 6455 section 1.3.
    assert!(response.contains("sec-websocket-accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"));
    assert!(response.contains("sec-websocket-protocol: chat\r\n"));
    assert!(!response.contains("content-length"));
    assert!(response.ends_with("\r\n\r\n"));
}

#[test]
fn permessage_deflate_is_agreed_only_when_the_rules_take_it() {
    let any = OriginPolicy::Any;
    let offer = UPGRADE.replace(
        "\r\n\r\n",
        "\r\nSec-WebSocket-Extensions: x-other, permessage-deflate; client_max_window_bits\r\n\r\n",
    );
    let declined = accept(offer.as_bytes(), &rules(&any, &[]))
        .unwrap()
        .unwrap();
    assert_eq!(declined.compression, None);
    assert!(!text(&declined.to_http1()).contains("sec-websocket-extensions"));

    let config = DeflateConfig {
        server_no_context_takeover: true,
        ..DeflateConfig::default()
    };
    let taking = ServerRules {
        compression: Some(&config),
        ..rules(&any, &[])
    };
    let agreed = accept(offer.as_bytes(), &taking).unwrap().unwrap();
    let params = agreed.compression.expect("agreed");
    assert!(params.local_no_context_takeover);
    assert_eq!(params.local_max_window_bits, 15);
    let response = text(&agreed.to_http1());
    assert!(
        response.contains(
            "sec-websocket-extensions: permessage-deflate; server_no_context_takeover\r\n"
        ),
        "{response}"
    );
    // No offer: nothing agreed, whatever the rules.
    let plain = accept(UPGRADE.as_bytes(), &taking).unwrap().unwrap();
    assert_eq!(plain.compression, None);
}

#[test]
fn a_partial_head_waits() {
    let any = OriginPolicy::Any;
    for end in [0, 1, 40, UPGRADE.len() - 1] {
        assert_eq!(
            accept(&UPGRADE.as_bytes()[..end], &rules(&any, &[])),
            Ok(None),
            "{end}"
        );
    }
}

#[test]
fn heads_over_the_limits_get_431() {
    let any = OriginPolicy::Any;
    let mut small = rules(&any, &[]);
    small.limits = HeadLimits::default().max_bytes(1024).max_fields(8);
    let refusal = refused(&"a".repeat(1100), &small);
    assert_eq!(
        refusal.status(),
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE
    );
    assert!(refusal.body().contains("1024 bytes"), "{}", refusal.body());
    let mut many = String::from("GET / HTTP/1.1\r\n");
    for i in 0..20 {
        many.push_str(&format!("x-{i}: v\r\n"));
    }
    many.push_str("\r\n");
    let refusal = refused(&many, &small);
    assert_eq!(
        refusal.status(),
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE
    );
    assert!(
        refusal.body().contains("20 header fields"),
        "{}",
        refusal.body()
    );
}

#[test]
fn what_the_rfc_refuses_gets_its_status_and_headers() {
    let any = OriginPolicy::Any;
    let rules = rules(&any, &[]);
    let refusal = refused(&UPGRADE.replacen("GET", "POST", 1), &rules);
    assert_eq!(refusal.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(refusal.headers()["allow"], "GET");
    let refusal = refused(&UPGRADE.replacen("Version: 13", "Version: 8", 1), &rules);
    assert_eq!(refusal.status(), StatusCode::UPGRADE_REQUIRED);
    assert_eq!(refusal.headers()["sec-websocket-version"], "13");
    let response = text(&refusal.to_http1());
    assert!(
        response.starts_with("HTTP/1.1 426 Upgrade Required\r\n"),
        "{response}"
    );
    assert!(response.contains("sec-websocket-version: 13\r\n"));
    assert!(response.contains("connection: close\r\n"));
    let refusal = refused(&UPGRADE.replacen("Upgrade: websocket\r\n", "", 1), &rules);
    assert_eq!(refusal.status(), StatusCode::BAD_REQUEST);
    let refusal = refused("GET / HTTP/1.1\r\n\x01\r\n\r\n", &rules);
    assert_eq!(refusal.status(), StatusCode::BAD_REQUEST);
    assert!(refusal.body().starts_with("malformed request"));
}

#[test]
fn origins_are_compared_with_ports_normalised_and_an_empty_list_allows_all() {
    let other = OriginPolicy::list(["https://other.example"]);
    let refusal = refused(UPGRADE, &rules(&other, &[]));
    assert_eq!(refusal.status(), StatusCode::FORBIDDEN);
    assert!(refusal.body().contains("https://good.example"));
    let response = text(&refusal.to_http1());
    assert!(response.starts_with("HTTP/1.1 403 Forbidden\r\n"));
    assert!(response.contains(&format!("content-length: {}\r\n", refusal.body().len() + 1)));
    let same = OriginPolicy::list(["https://GOOD.example:443"]);
    assert!(accept(UPGRADE.as_bytes(), &rules(&same, &[]))
        .unwrap()
        .is_some());
    let empty = OriginPolicy::list(Vec::<String>::new());
    assert!(accept(UPGRADE.as_bytes(), &rules(&empty, &[]))
        .unwrap()
        .is_some());
    let no_origin = UPGRADE.replacen("Origin: https://good.example\r\n", "", 1);
    assert!(accept(no_origin.as_bytes(), &rules(&other, &[]))
        .unwrap()
        .is_some());
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]

    /// Whatever a peer sends, the answer is a wait, an acceptance or a refusal (no panic), and
    /// a wait only while the bytes are within the head limit.
    #[test]
    fn arbitrary_bytes_never_panic_and_waits_stay_within_the_limit(
        input in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..1500),
        cut in 0usize..1500,
    ) {
        let any = OriginPolicy::Any;
        let mut rules = rules(&any, &["chat"]);
        rules.limits = HeadLimits::default().max_bytes(1024);
        if let Ok(None) = accept(&input, &rules) {
            proptest::prop_assert!(input.len() <= 1024);
        }
        // A valid head followed by anything, cut anywhere.
        let mut valid = UPGRADE.as_bytes().to_vec();
        valid.extend_from_slice(&input);
        let cut = cut.min(valid.len());
        let _ = accept(&valid[..cut], &rules);
        let _ = super::super::head::parse_response(&input, &rules.limits);
    }
}
