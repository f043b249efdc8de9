//! Tests for request validation and response building (RFC 6455 section 4.2, RFC 8441 section 5).

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use http::header::HeaderValue;
use proptest::prelude::*;

use super::*;
use crate::handshake::{response_status, ExtensionErrorReason};

const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";

fn headers(lines: &[(&str, &str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in lines {
        map.append(
            HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_str(value).unwrap(),
        );
    }
    map
}

/// The RFC 6455 section 1.3 example request, plus extras.
fn upgrade_request(extra: &[(&str, &str)]) -> HeaderMap {
    let mut map = headers(&[
        ("host", "server.example.com"),
        ("upgrade", "websocket"),
        ("connection", "Upgrade"),
        ("sec-websocket-key", KEY),
        ("sec-websocket-version", "13"),
    ]);
    for (name, value) in extra {
        map.append(
            HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_str(value).unwrap(),
        );
    }
    map
}

fn without(mut map: HeaderMap, name: HeaderName) -> HeaderMap {
    map.remove(name);
    map
}

fn with(mut map: HeaderMap, name: HeaderName, value: &str) -> HeaderMap {
    map.insert(name, HeaderValue::from_str(value).unwrap());
    map
}

fn h1(map: &HeaderMap) -> Result<ClientOffer, HandshakeError> {
    validate_request(&Method::GET, Version::HTTP_11, map, None)
}

fn h2(map: &HeaderMap) -> Result<ClientOffer, HandshakeError> {
    validate_request(&Method::CONNECT, Version::HTTP_2, map, Some("websocket"))
}

#[test]
fn accepts_the_rfc_example() {
    let offer = h1(&upgrade_request(&[
        ("origin", "http://example.com"),
        ("sec-websocket-protocol", "chat, superchat"),
    ]))
    .unwrap();
    assert_eq!(
        offer,
        ClientOffer {
            kind: RequestKind::Upgrade,
            key: Some(KEY.to_owned()),
            version: 13,
            subprotocols: vec!["chat".to_owned(), "superchat".to_owned()],
            extensions: vec![],
            origin: Some("http://example.com".to_owned()),
            host: Some("server.example.com".to_owned()),
        }
    );
}

#[test]
fn header_values_are_case_insensitive_and_lists_span_lines() {
    let map = headers(&[
        ("Host", "h"),
        ("Upgrade", "h2c"),
        ("UPGRADE", "WebSocket"),
        ("Connection", "keep-alive"),
        ("connection", "close, UPGRADE"),
        ("Sec-WebSocket-Key", KEY),
        ("Sec-WebSocket-Version", " 13 "),
        ("Sec-WebSocket-Protocol", "a,"),
        ("Sec-WebSocket-Protocol", ", b"),
        ("Sec-WebSocket-Extensions", "x; y=1"),
        ("Sec-WebSocket-Extensions", "z"),
    ]);
    let offer = h1(&map).unwrap();
    assert_eq!(offer.subprotocols, ["a", "b"]);
    let names: Vec<_> = offer.extensions.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names, ["x", "z"]);
}

#[test]
fn wrong_method_is_405_with_allow() {
    let err =
        validate_request(&Method::POST, Version::HTTP_11, &upgrade_request(&[]), None).unwrap_err();
    assert_eq!(
        err,
        HandshakeError::MethodNotAllowed {
            method: Method::POST,
            kind: RequestKind::Upgrade
        }
    );
    assert_eq!(err.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(err.response_headers()[ALLOW], "GET");
    assert_eq!(
        err.to_string(),
        "method POST cannot open a WebSocket; use GET"
    );

    let err = validate_request(&Method::GET, Version::HTTP_2, &HeaderMap::new(), None).unwrap_err();
    assert_eq!(err.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(err.response_headers()[ALLOW], "CONNECT");
    // HTTP/1.1 CONNECT is a proxy tunnel, not a WebSocket.
    let err = validate_request(
        &Method::CONNECT,
        Version::HTTP_11,
        &upgrade_request(&[]),
        None,
    )
    .unwrap_err();
    assert_eq!(err.status(), StatusCode::METHOD_NOT_ALLOWED);
}

#[test]
fn http_1_0_is_refused() {
    for version in [Version::HTTP_10, Version::HTTP_09] {
        let err = validate_request(&Method::GET, version, &upgrade_request(&[]), None).unwrap_err();
        assert_eq!(err, HandshakeError::HttpVersion(version));
        assert_eq!(err.status(), StatusCode::BAD_REQUEST);
    }
}

#[test]
fn host_is_required_once() {
    let err = h1(&without(upgrade_request(&[]), HOST)).unwrap_err();
    assert_eq!(err, HandshakeError::MissingHost);
    assert_eq!(err.status(), StatusCode::BAD_REQUEST);
    assert!(err.response_headers().is_empty());
    assert_eq!(
        h1(&upgrade_request(&[("host", "other")])).unwrap_err(),
        HandshakeError::DuplicateHeader(HOST)
    );
    assert_eq!(
        h1(&with(upgrade_request(&[]), HOST, "")).unwrap_err(),
        HandshakeError::InvalidHeaderValue(HOST)
    );
    let mut map = upgrade_request(&[]);
    map.insert(HOST, HeaderValue::from_bytes(b"h\xe9").unwrap());
    assert_eq!(
        h1(&map).unwrap_err(),
        HandshakeError::InvalidHeaderValue(HOST)
    );
}

#[test]
fn upgrade_and_connection_tokens_are_required() {
    for value in ["", "websockets", "h2c", "web socket"] {
        let err = h1(&with(upgrade_request(&[]), UPGRADE, value)).unwrap_err();
        assert_eq!(err, HandshakeError::MissingUpgrade, "{value:?}");
        assert_eq!(err.status(), StatusCode::BAD_REQUEST);
    }
    assert_eq!(
        h1(&without(upgrade_request(&[]), UPGRADE)).unwrap_err(),
        HandshakeError::MissingUpgrade
    );
    for value in ["", "keep-alive", "upgraded", "close"] {
        let err = h1(&with(upgrade_request(&[]), CONNECTION, value)).unwrap_err();
        assert_eq!(err, HandshakeError::MissingConnectionUpgrade, "{value:?}");
    }
    assert_eq!(
        h1(&without(upgrade_request(&[]), CONNECTION)).unwrap_err(),
        HandshakeError::MissingConnectionUpgrade
    );
    assert!(h1(&with(
        upgrade_request(&[]),
        CONNECTION,
        "keep-alive, Upgrade"
    ))
    .is_ok());
}

#[test]
fn bad_keys_are_400() {
    let base = upgrade_request(&[]);
    let err = h1(&without(base.clone(), SEC_WEBSOCKET_KEY)).unwrap_err();
    assert_eq!(err, HandshakeError::MissingKey);
    assert_eq!(err.status(), StatusCode::BAD_REQUEST);
    for key in [
        STANDARD.encode([7u8; 15]),
        STANDARD.encode([7u8; 17]),
        "not base64 at all!!!!!!!".to_owned(),
        "dGhlIHNhbXBsZSBub25jZQ".to_owned(),
        "dGhlIHNhbXBsZSBub25jZQ-_".to_owned(),
        String::new(),
    ] {
        let err = h1(&with(base.clone(), SEC_WEBSOCKET_KEY, &key)).unwrap_err();
        assert_eq!(err, HandshakeError::InvalidKey, "{key:?}");
        assert_eq!(err.status(), StatusCode::BAD_REQUEST);
    }
    let err = h1(&upgrade_request(&[("sec-websocket-key", KEY)])).unwrap_err();
    assert_eq!(err, HandshakeError::DuplicateHeader(SEC_WEBSOCKET_KEY));
    assert_eq!(err.status(), StatusCode::BAD_REQUEST);
    // Surrounding whitespace is not part of the value.
    let offer = h1(&with(base, SEC_WEBSOCKET_KEY, &format!("  {KEY}\t"))).unwrap();
    assert_eq!(offer.key.as_deref(), Some(KEY));
}

#[test]
fn wrong_version_is_426_with_version_header() {
    for version in ["8", "12", "14", "13, 8", "thirteen", ""] {
        let err = h1(&with(upgrade_request(&[]), SEC_WEBSOCKET_VERSION, version)).unwrap_err();
        assert_eq!(
            err,
            HandshakeError::UnsupportedVersion {
                kind: RequestKind::Upgrade
            },
            "{version:?}"
        );
        assert_eq!(err.status(), StatusCode::UPGRADE_REQUIRED);
        let headers = err.response_headers();
        assert_eq!(headers[SEC_WEBSOCKET_VERSION], "13");
        assert_eq!(headers[UPGRADE], "websocket");
        assert_eq!(headers[CONNECTION], "Upgrade");
    }
    let err = h1(&without(upgrade_request(&[]), SEC_WEBSOCKET_VERSION)).unwrap_err();
    assert_eq!(err.status(), StatusCode::UPGRADE_REQUIRED);
    // Checked before the key, so an old-protocol client learns which version to use.
    let old = without(
        with(upgrade_request(&[]), SEC_WEBSOCKET_VERSION, "8"),
        SEC_WEBSOCKET_KEY,
    );
    assert_eq!(h1(&old).unwrap_err().status(), StatusCode::UPGRADE_REQUIRED);
    let err = h1(&upgrade_request(&[("sec-websocket-version", "13")])).unwrap_err();
    assert_eq!(err, HandshakeError::DuplicateHeader(SEC_WEBSOCKET_VERSION));
}

#[test]
fn subprotocol_offers_must_be_unique_tokens() {
    let err = h1(&upgrade_request(&[(
        "sec-websocket-protocol",
        "chat, su/per",
    )]))
    .unwrap_err();
    assert_eq!(err, HandshakeError::InvalidSubprotocol("su/per".to_owned()));
    assert_eq!(err.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        err.to_string(),
        "Sec-WebSocket-Protocol must be a list of tokens"
    );
    let err = h1(&upgrade_request(&[
        ("sec-websocket-protocol", "chat"),
        ("sec-websocket-protocol", "chat"),
    ]))
    .unwrap_err();
    assert_eq!(err, HandshakeError::DuplicateSubprotocol("chat".to_owned()));
    // Case differs: two distinct names.
    let offer = h1(&upgrade_request(&[(
        "sec-websocket-protocol",
        "chat, Chat, ,",
    )]))
    .unwrap();
    assert_eq!(offer.subprotocols, ["chat", "Chat"]);
}

#[test]
fn malformed_extensions_are_400() {
    let err = h1(&upgrade_request(&[(
        "sec-websocket-extensions",
        "permessage-deflate;",
    )]))
    .unwrap_err();
    assert!(matches!(
        err,
        HandshakeError::Extensions(ExtensionError {
            reason: ExtensionErrorReason::ExpectedParamName,
            ..
        })
    ));
    assert_eq!(err.status(), StatusCode::BAD_REQUEST);
}

#[test]
fn origin_at_most_once() {
    let err = h1(&upgrade_request(&[
        ("origin", "https://a"),
        ("origin", "https://b"),
    ]))
    .unwrap_err();
    assert_eq!(err, HandshakeError::DuplicateHeader(ORIGIN));
    assert_eq!(h1(&upgrade_request(&[])).unwrap().origin, None);
}

fn connect_request(extra: &[(&str, &str)]) -> HeaderMap {
    let mut map = headers(&[("sec-websocket-version", "13")]);
    for (name, value) in &headers(extra) {
        map.append(name, value.clone());
    }
    map
}

#[test]
fn extended_connect_is_accepted() {
    // The RFC 8441 section 5.1 example.
    let map = connect_request(&[
        ("sec-websocket-protocol", "chat, superchat"),
        ("sec-websocket-extensions", "permessage-deflate"),
        ("origin", "http://www.example.com"),
    ]);
    let offer = h2(&map).unwrap();
    assert_eq!(offer.kind, RequestKind::ExtendedConnect);
    assert_eq!(offer.key, None);
    assert_eq!(offer.host, None);
    assert_eq!(offer.subprotocols, ["chat", "superchat"]);
    assert_eq!(offer.extensions[0].name, "permessage-deflate");
    assert_eq!(offer.origin.as_deref(), Some("http://www.example.com"));
    // HTTP/3 (RFC 9220), a case-insensitive :protocol, an ignored key, an optional Host.
    let map = connect_request(&[("sec-websocket-key", "junk"), ("host", "example.com")]);
    let offer = validate_request(&Method::CONNECT, Version::HTTP_3, &map, Some("WebSocket"));
    assert_eq!(offer.unwrap().host.as_deref(), Some("example.com"));
}

#[test]
fn extended_connect_refusals() {
    let map = connect_request(&[]);
    let err = validate_request(&Method::CONNECT, Version::HTTP_2, &map, None).unwrap_err();
    assert_eq!(err, HandshakeError::MissingProtocol);
    assert_eq!(err.status(), StatusCode::BAD_REQUEST);
    let err =
        validate_request(&Method::CONNECT, Version::HTTP_2, &map, Some("connect-udp")).unwrap_err();
    assert_eq!(
        err,
        HandshakeError::UnsupportedProtocol("connect-udp".to_owned())
    );
    assert_eq!(err.status(), StatusCode::BAD_REQUEST);

    for name in ["connection", "upgrade"] {
        let err = h2(&connect_request(&[(name, "websocket")])).unwrap_err();
        assert!(
            matches!(err, HandshakeError::ConnectionSpecificHeader(_)),
            "{name}"
        );
        assert_eq!(err.status(), StatusCode::BAD_REQUEST);
    }

    // Version: 400, not 426, since HTTP/2 cannot carry the Upgrade header a 426 needs.
    let err = h2(&HeaderMap::new()).unwrap_err();
    assert_eq!(
        err,
        HandshakeError::UnsupportedVersion {
            kind: RequestKind::ExtendedConnect
        }
    );
    assert_eq!(err.status(), StatusCode::BAD_REQUEST);
    let headers = err.response_headers();
    assert_eq!(headers[SEC_WEBSOCKET_VERSION], "13");
    assert!(!headers.contains_key(UPGRADE) && !headers.contains_key(CONNECTION));
    let err = h2(&with(connect_request(&[]), SEC_WEBSOCKET_VERSION, "8")).unwrap_err();
    assert_eq!(err.response_headers()[SEC_WEBSOCKET_VERSION], "13");

    let err = h2(&connect_request(&[("sec-websocket-protocol", "a b")])).unwrap_err();
    assert!(matches!(err, HandshakeError::InvalidSubprotocol(_)));
}

#[test]
fn error_messages_do_not_echo_input() {
    let err = HandshakeError::UnsupportedProtocol("<script>".to_owned());
    assert!(!err.to_string().contains("<script>"));
    let err = HandshakeError::InvalidSubprotocol("<script>".to_owned());
    assert!(!err.to_string().contains("<script>"));
}

#[test]
fn select_subprotocol_prefers_server_order_and_exact_case() {
    let offered = vec!["chat".to_owned(), "superchat".to_owned(), "Echo".to_owned()];
    assert_eq!(
        select_subprotocol(&offered, &["superchat", "chat"]),
        Some("superchat")
    );
    assert_eq!(
        select_subprotocol(&offered, &["none", "chat"]),
        Some("chat")
    );
    assert_eq!(select_subprotocol(&offered, &["echo"]), None);
    assert_eq!(
        select_subprotocol(&offered, &[String::from("Echo")]),
        Some("Echo")
    );
    assert_eq!(select_subprotocol(&[], &["chat"]), None);
    assert_eq!(select_subprotocol::<&str>(&offered, &[]), None);
}

#[test]
fn upgrade_response_headers() {
    let offer = h1(&upgrade_request(&[
        ("sec-websocket-protocol", "chat"),
        (
            "sec-websocket-extensions",
            "permessage-deflate; client_max_window_bits",
        ),
    ]))
    .unwrap();
    assert_eq!(response_status(offer.kind), StatusCode::SWITCHING_PROTOCOLS);
    let headers = response_headers(&offer, None, None).unwrap();
    assert_eq!(headers.len(), 3);
    assert_eq!(headers[UPGRADE], "websocket");
    assert_eq!(headers[CONNECTION], "Upgrade");
    assert_eq!(
        headers[SEC_WEBSOCKET_ACCEPT],
        "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
    );

    let headers = response_headers(
        &offer,
        Some("chat"),
        Some("permessage-deflate;  client_max_window_bits=\"15\""),
    )
    .unwrap();
    assert_eq!(headers[SEC_WEBSOCKET_PROTOCOL], "chat");
    assert_eq!(
        headers[SEC_WEBSOCKET_EXTENSIONS],
        "permessage-deflate; client_max_window_bits=15"
    );
    // An empty extension list means no header.
    let headers = response_headers(&offer, None, Some(" , ")).unwrap();
    assert!(!headers.contains_key(SEC_WEBSOCKET_EXTENSIONS));
}

#[test]
fn response_headers_refuse_what_the_client_would_reject() {
    let offer = h1(&upgrade_request(&[
        ("sec-websocket-protocol", "chat"),
        ("sec-websocket-extensions", "permessage-deflate"),
    ]))
    .unwrap();
    assert_eq!(
        response_headers(&offer, Some("Chat"), None).unwrap_err(),
        BuildError::UnofferedSubprotocol("Chat".to_owned())
    );
    assert_eq!(
        response_headers(&offer, None, Some("x-other")).unwrap_err(),
        BuildError::UnofferedExtension("x-other".to_owned())
    );
    assert!(matches!(
        response_headers(&offer, None, Some("permessage-deflate;")).unwrap_err(),
        BuildError::Extensions(_)
    ));
    let mut keyless = offer.clone();
    keyless.key = None;
    assert_eq!(
        response_headers(&keyless, None, None).unwrap_err(),
        BuildError::MissingKey
    );
    keyless.key = Some("short".to_owned());
    assert_eq!(
        response_headers(&keyless, None, None).unwrap_err(),
        BuildError::InvalidKey
    );
}

#[test]
fn extended_connect_response_headers() {
    let offer = h2(&connect_request(&[("sec-websocket-protocol", "chat")])).unwrap();
    assert_eq!(response_status(offer.kind), StatusCode::OK);
    assert!(response_headers(&offer, None, None).unwrap().is_empty());
    let headers = response_headers(&offer, Some("chat"), None).unwrap();
    assert_eq!(headers.len(), 1);
    assert_eq!(headers[SEC_WEBSOCKET_PROTOCOL], "chat");
}

#[test]
fn unrelated_headers_are_ignored() {
    assert!(h1(&upgrade_request(&[
        ("authorization", "Bearer x"),
        ("cookie", "a=b")
    ]))
    .is_ok());
    assert!(h2(&connect_request(&[("authorization", "Bearer x")])).is_ok());
}

proptest! {
    #[test]
    fn validate_request_never_panics(
        lines in proptest::collection::vec(
            (
                prop::sample::select(vec![
                    "host", "upgrade", "connection", "sec-websocket-key",
                    "sec-websocket-version", "sec-websocket-protocol",
                    "sec-websocket-extensions", "origin",
                ]),
                proptest::collection::vec(any::<u8>(), 0..32),
            ),
            0..10,
        ),
        h2 in any::<bool>(),
        protocol in proptest::option::of("[a-zA-Z]{0,10}"),
    ) {
        let mut map = HeaderMap::new();
        for (name, value) in lines {
            if let Ok(value) = HeaderValue::from_bytes(&value) {
                map.append(name, value);
            }
        }
        let (method, version) = if h2 {
            (Method::CONNECT, Version::HTTP_2)
        } else {
            (Method::GET, Version::HTTP_11)
        };
        match validate_request(&method, version, &map, protocol.as_deref()) {
            Ok(offer) => {
                let first = offer.subprotocols.first().map(String::as_str);
                let _ = response_headers(&offer, first, None);
            }
            Err(err) => {
                let _ = (err.status(), err.response_headers(), err.to_string());
            }
        }
    }
}
