//! Tests for the shared header grammar (RFC 9110 section 5.6, RFC 6455 section 9.1).

use http::header::{HeaderMap, HeaderValue, CONNECTION, SEC_WEBSOCKET_EXTENSIONS, UPGRADE};
use proptest::prelude::*;

use super::*;

fn map(name: http::header::HeaderName, lines: &[&str]) -> HeaderMap {
    let mut headers = HeaderMap::new();
    for line in lines {
        headers.append(name.clone(), HeaderValue::from_str(line).unwrap());
    }
    headers
}

fn ext(lines: &[&str]) -> Result<Vec<ExtensionOffer>, ExtensionError> {
    parse_extensions(&map(SEC_WEBSOCKET_EXTENSIONS, lines))
}

fn reason(value: &str) -> ExtensionErrorReason {
    parse_extension_list(value).unwrap_err().reason
}

#[test]
fn tokens() {
    assert!(is_token("permessage-deflate"));
    assert!(is_token("!#$%&'*+-.^_`|~09azAZ"));
    for bad in [
        "", "a b", "a,b", "a;b", "a=b", "\"a\"", "a/b", "é", "a\tb", "(a)", "a\u{7f}",
    ] {
        assert!(!is_token(bad), "{bad:?}");
    }
}

#[test]
fn trim_ows_edges() {
    assert_eq!(trim_ows(b""), b"");
    assert_eq!(trim_ows(b" \t "), b"");
    assert_eq!(trim_ows(b" a b\t"), b"a b");
}

#[test]
fn token_lists_are_case_insensitive_and_span_lines() {
    let headers = map(CONNECTION, &["keep-alive, Upgrade"]);
    assert!(header_has_token(&headers, CONNECTION, "upgrade"));
    assert!(header_has_token(&headers, CONNECTION, "KEEP-ALIVE"));
    assert!(header_has_token(&headers, "connection", "upgrade"));

    let headers = map(CONNECTION, &["keep-alive", "  UPGRADE\t"]);
    assert!(header_has_token(&headers, CONNECTION, "upgrade"));

    let headers = map(CONNECTION, &[",, ,upgrade,"]);
    assert!(header_has_token(&headers, CONNECTION, "upgrade"));
}

#[test]
fn token_lists_need_whole_elements() {
    for line in [
        "upgrades",
        "not-upgrade",
        "upgrade2",
        "up grade",
        "\"upgrade\"",
        "",
    ] {
        let headers = map(CONNECTION, &[line]);
        assert!(
            !header_has_token(&headers, CONNECTION, "upgrade"),
            "{line:?}"
        );
    }
    assert!(!header_has_token(&HeaderMap::new(), CONNECTION, "upgrade"));
    // Another header's tokens do not count.
    let headers = map(UPGRADE, &["upgrade"]);
    assert!(!header_has_token(&headers, CONNECTION, "upgrade"));
}

#[test]
fn token_list_parsing() {
    let headers = map(UPGRADE, &["a, b", "", " ,c ,"]);
    assert_eq!(
        parse_token_list(&headers, UPGRADE).unwrap(),
        ["a", "b", "c"]
    );
    let headers = map(UPGRADE, &["a, b c"]);
    assert_eq!(parse_token_list(&headers, UPGRADE).unwrap_err(), "b c");
    let mut headers = HeaderMap::new();
    headers.append(UPGRADE, HeaderValue::from_bytes(b"a, \xff").unwrap());
    assert!(parse_token_list(&headers, UPGRADE).is_err());
}

#[test]
fn extension_without_params() {
    assert_eq!(
        ext(&["permessage-deflate"]).unwrap(),
        [ExtensionOffer::new("permessage-deflate")]
    );
    assert_eq!(ext(&[]).unwrap(), []);
}

#[test]
fn extension_with_params_and_ows() {
    let expected = ExtensionOffer::new("permessage-deflate")
        .with_param("client_max_window_bits", None)
        .with_param("server_max_window_bits", Some("10"));
    for value in [
        "permessage-deflate; client_max_window_bits; server_max_window_bits=10",
        "permessage-deflate;client_max_window_bits;server_max_window_bits=10",
        " permessage-deflate ;\tclient_max_window_bits ; server_max_window_bits = 10 ",
        "permessage-deflate; client_max_window_bits; server_max_window_bits=\"10\"",
        "permessage-deflate; client_max_window_bits; server_max_window_bits=\"1\\0\"",
    ] {
        assert_eq!(
            parse_extension_list(value).unwrap(),
            std::slice::from_ref(&expected),
            "{value:?}"
        );
    }
}

#[test]
fn several_offers_keep_order_within_and_across_lines() {
    let offers = ext(&[
        "permessage-deflate; client_max_window_bits=12, permessage-deflate",
        "x-foo",
        "permessage-deflate; server_no_context_takeover",
    ])
    .unwrap();
    let names: Vec<_> = offers.iter().map(|o| o.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "permessage-deflate",
            "permessage-deflate",
            "x-foo",
            "permessage-deflate"
        ]
    );
    assert_eq!(
        offers[0].params,
        [("client_max_window_bits".to_owned(), Some("12".to_owned()))]
    );
    assert!(offers[1].params.is_empty());
    assert_eq!(
        offers[3]
            .params_named("server_no_context_takeover")
            .collect::<Vec<_>>(),
        [None]
    );
}

#[test]
fn empty_list_elements_are_ignored() {
    assert_eq!(
        ext(&["", " , ,", "a,,b,"]).unwrap(),
        [ExtensionOffer::new("a"), ExtensionOffer::new("b")]
    );
}

#[test]
fn duplicate_params_are_kept_for_the_extension_to_judge() {
    let offer = &parse_extension_list("e; a=1; a=2; a").unwrap()[0];
    assert_eq!(
        offer.params_named("a").collect::<Vec<_>>(),
        [Some("1"), Some("2"), None]
    );
}

#[test]
fn malformed_extensions() {
    use ExtensionErrorReason::*;
    let cases: &[(&str, ExtensionErrorReason)] = &[
        ("a;", ExpectedParamName),
        ("a; ", ExpectedParamName),
        ("a; b;", ExpectedParamName),
        ("a;;b", ExpectedParamName),
        ("a; , b", ExpectedParamName),
        ("; a", ExpectedName),
        ("a, ;b", ExpectedName),
        ("a; b=", ExpectedParamValue),
        ("a; b= ,c", ExpectedParamValue),
        ("a; b==c", ExpectedParamValue),
        ("a; b=\"\"", QuotedValueNotToken),
        ("a; b=\"c d\"", QuotedValueNotToken),
        ("a; b=\"\\\"c\"", QuotedValueNotToken),
        ("a; b=\"c", UnterminatedQuote),
        ("a; b=\"c\\", UnterminatedQuote),
        ("a; b=\"c\"d", UnexpectedChar),
        ("a=b", UnexpectedChar),
        ("a b", UnexpectedChar),
        ("a; b c", UnexpectedChar),
        ("a; b=c/d", UnexpectedChar),
        ("a; b=c d", UnexpectedChar),
        ("\"a\"", ExpectedName),
        ("a; \"b\"", ExpectedParamName),
        ("a/b", UnexpectedChar),
        ("a; b=é", ExpectedParamValue),
        ("é", ExpectedName),
    ];
    for (value, expected) in cases {
        assert_eq!(reason(value), *expected, "{value:?}");
    }
}

#[test]
fn malformed_bytes_in_header_lines() {
    let mut headers = HeaderMap::new();
    headers.append(SEC_WEBSOCKET_EXTENSIONS, HeaderValue::from_static("a"));
    headers.append(
        SEC_WEBSOCKET_EXTENSIONS,
        HeaderValue::from_static("b; c=\"d\"; ;"),
    );
    let err = parse_extensions(&headers).unwrap_err();
    assert_eq!(err.reason, ExtensionErrorReason::ExpectedParamName);
    assert_eq!((err.line, err.offset), (1, 10));

    // HeaderValue refuses control bytes, but the string parser must cope with them.
    let err = parse_extension_list("b; c=\"\x01\"").unwrap_err();
    assert_eq!(err.reason, ExtensionErrorReason::InvalidQuotedChar);
    assert_eq!(err.offset, 6);
    assert_eq!(
        reason("b; c=\"\\\x7f\""),
        ExtensionErrorReason::InvalidQuotedChar
    );

    let mut headers = HeaderMap::new();
    headers.append(
        SEC_WEBSOCKET_EXTENSIONS,
        HeaderValue::from_bytes(b"b; c=\"\xff\"").unwrap(),
    );
    assert_eq!(
        parse_extensions(&headers).unwrap_err().reason,
        ExtensionErrorReason::QuotedValueNotToken
    );
}

#[test]
fn error_position_and_message() {
    let err = parse_extension_list("abc; d;").unwrap_err();
    assert_eq!((err.line, err.offset), (0, 7));
    assert_eq!(
        err.to_string(),
        "malformed Sec-WebSocket-Extensions header: expected a parameter name (a token) after ';' \
         (line 0, byte 7)"
    );
}

#[test]
fn serialization() {
    let offer = ExtensionOffer::new("permessage-deflate")
        .with_param("client_max_window_bits", None)
        .with_param("server_max_window_bits", Some("10"));
    assert_eq!(
        offer.to_header_value(),
        "permessage-deflate; client_max_window_bits; server_max_window_bits=10"
    );
    assert_eq!(
        extensions_to_header_value(&[offer, ExtensionOffer::new("x")]),
        "permessage-deflate; client_max_window_bits; server_max_window_bits=10, x"
    );
    assert_eq!(extensions_to_header_value(&[]), "");
    // Non-token values are quoted and escaped, and then refused by the strict parser.
    let odd = ExtensionOffer::new("x").with_param("p", Some("a \"b\"\\"));
    assert_eq!(odd.to_header_value(), r#"x; p="a \"b\"\\""#);
    assert_eq!(
        reason(&odd.to_header_value()),
        ExtensionErrorReason::QuotedValueNotToken
    );
}

fn token_strategy() -> impl Strategy<Value = String> {
    "[!#$%&'*+.^_`|~0-9A-Za-z-]{1,12}"
}

fn offer_strategy() -> impl Strategy<Value = ExtensionOffer> {
    (
        token_strategy(),
        proptest::collection::vec(
            (token_strategy(), proptest::option::of(token_strategy())),
            0..5,
        ),
    )
        .prop_map(|(name, params)| ExtensionOffer { name, params })
}

proptest! {
    #[test]
    fn parse_never_panics_on_strings(value in ".{0,64}") {
        let _ = parse_extension_list(&value);
    }

    #[test]
    fn parse_never_panics_on_grammar_like_strings(value in "[a-c;,= \"\\\\\t]{0,40}") {
        let _ = parse_extension_list(&value);
    }

    #[test]
    fn parse_never_panics_on_header_bytes(
        lines in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..48), 0..4)
    ) {
        let mut headers = HeaderMap::new();
        for line in lines {
            if let Ok(value) = HeaderValue::from_bytes(&line) {
                headers.append(SEC_WEBSOCKET_EXTENSIONS, value);
            }
        }
        let _ = parse_extensions(&headers);
        let _ = header_has_token(&headers, SEC_WEBSOCKET_EXTENSIONS, "a");
        let _ = parse_token_list(&headers, SEC_WEBSOCKET_EXTENSIONS);
    }

    #[test]
    fn to_header_value_round_trips(
        offers in proptest::collection::vec(offer_strategy(), 1..4)
    ) {
        for offer in &offers {
            let parsed = parse_extension_list(&offer.to_header_value()).unwrap();
            prop_assert_eq!(parsed, vec![offer.clone()]);
        }
        let parsed = parse_extension_list(&extensions_to_header_value(&offers)).unwrap();
        prop_assert_eq!(parsed, offers);
    }

    #[test]
    fn quoted_token_values_parse_like_bare_ones(
        name in token_strategy(),
        value in token_strategy(),
    ) {
        let bare = parse_extension_list(&format!("e; {name}={value}")).unwrap();
        let quoted = parse_extension_list(&format!("e; {name}=\"{value}\"")).unwrap();
        prop_assert_eq!(bare, quoted);
    }
}
