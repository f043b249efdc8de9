//! Tests for request building and response validation (RFC 6455 section 4.1, RFC 8441 section 5).

use http::header::HeaderValue;
use http::Method;
use proptest::prelude::*;

use super::*;
use crate::handshake::{response_headers, validate_request, ExtensionErrorReason};

const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
const ACCEPT: &str = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

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

fn upgrade_response(extra: &[(&str, &str)]) -> HeaderMap {
    let mut map = headers(&[
        ("upgrade", "websocket"),
        ("connection", "Upgrade"),
        ("sec-websocket-accept", ACCEPT),
    ]);
    for (name, value) in &headers(extra) {
        map.append(name, value.clone());
    }
    map
}

fn offered(names: &[&str]) -> Vec<String> {
    names.iter().map(|s| (*s).to_owned()).collect()
}

fn check(map: &HeaderMap) -> Result<Negotiated, ResponseError> {
    validate_response(
        RequestKind::Upgrade,
        StatusCode::SWITCHING_PROTOCOLS,
        map,
        KEY,
        &offered(&["chat", "superchat"]),
        &["permessage-deflate"],
    )
}

#[test]
fn generated_keys_are_valid_and_fresh() {
    let a = generate_key();
    let b = generate_key();
    assert!(is_valid_key(&a) && is_valid_key(&b));
    assert_ne!(a, b);
}

#[test]
fn host_header_values() {
    assert_eq!(host_header_value("example.com", None, false), "example.com");
    assert_eq!(
        host_header_value("example.com", Some(80), false),
        "example.com"
    );
    assert_eq!(
        host_header_value("example.com", Some(443), true),
        "example.com"
    );
    assert_eq!(
        host_header_value("example.com", Some(443), false),
        "example.com:443"
    );
    assert_eq!(
        host_header_value("example.com", Some(80), true),
        "example.com:80"
    );
    assert_eq!(
        host_header_value("example.com", Some(9001), true),
        "example.com:9001"
    );
    assert_eq!(host_header_value("::1", Some(8080), false), "[::1]:8080");
    assert_eq!(host_header_value("[::1]", None, true), "[::1]");
}

#[test]
fn upgrade_request_headers() {
    let map = RequestHeaders::upgrade("server.example.com", Some(80), false, KEY)
        .subprotocols(["chat", "superchat"])
        .origin("http://example.com")
        .extensions("permessage-deflate;client_max_window_bits")
        .build()
        .unwrap();
    assert_eq!(map[HOST], "server.example.com");
    assert_eq!(map[UPGRADE], "websocket");
    assert_eq!(map[CONNECTION], "Upgrade");
    assert_eq!(map[SEC_WEBSOCKET_KEY], KEY);
    assert_eq!(map[SEC_WEBSOCKET_VERSION], "13");
    assert_eq!(map[SEC_WEBSOCKET_PROTOCOL], "chat, superchat");
    assert_eq!(
        map[SEC_WEBSOCKET_EXTENSIONS],
        "permessage-deflate; client_max_window_bits"
    );
    assert_eq!(map[ORIGIN], "http://example.com");
    assert_eq!(map.len(), 8);

    // The server side accepts what the client side builds.
    let offer = validate_request(&Method::GET, http::Version::HTTP_11, &map, None).unwrap();
    assert_eq!(offer.subprotocols, ["chat", "superchat"]);

    let minimal = RequestHeaders::upgrade("h", Some(8080), false, generate_key());
    assert!(minimal.key().is_some());
    let map = minimal.build().unwrap();
    assert_eq!(map[HOST], "h:8080");
    assert_eq!(map.len(), 5);
    assert!(!map.contains_key(SEC_WEBSOCKET_PROTOCOL));
}

#[test]
fn extended_connect_request_headers() {
    let request = RequestHeaders::extended_connect()
        .subprotocol("chat")
        .origin("http://www.example.com");
    assert_eq!(request.kind(), RequestKind::ExtendedConnect);
    assert_eq!(request.key(), None);
    assert_eq!(request.offered_subprotocols(), ["chat"]);
    let map = request.build().unwrap();
    assert_eq!(map.len(), 3);
    assert_eq!(map[SEC_WEBSOCKET_VERSION], "13");
    for absent in [HOST, UPGRADE, CONNECTION, SEC_WEBSOCKET_KEY] {
        assert!(!map.contains_key(&absent), "{absent}");
    }
    let offer = validate_request(
        &Method::CONNECT,
        http::Version::HTTP_2,
        &map,
        Some("websocket"),
    )
    .unwrap();
    assert_eq!(offer.subprotocols, ["chat"]);
}

#[test]
fn request_builder_refuses_bad_values() {
    let base = || RequestHeaders::upgrade("h", None, false, KEY);
    assert_eq!(
        RequestHeaders::upgrade("h", None, false, "c2hvcnQ=").build(),
        Err(BuildError::InvalidKey)
    );
    assert_eq!(
        RequestHeaders::upgrade("", None, false, KEY).build(),
        Err(BuildError::InvalidHost)
    );
    assert_eq!(
        RequestHeaders::upgrade("a b", None, false, KEY).build(),
        Err(BuildError::InvalidHost)
    );
    assert_eq!(
        RequestHeaders::upgrade("h\r\nx: y", None, false, KEY).build(),
        Err(BuildError::InvalidHost)
    );
    assert_eq!(
        base().subprotocol("a b").build(),
        Err(BuildError::InvalidSubprotocol("a b".to_owned()))
    );
    assert_eq!(
        base().subprotocol("").build(),
        Err(BuildError::InvalidSubprotocol(String::new()))
    );
    assert_eq!(
        base().subprotocols(["a", "b", "a"]).build(),
        Err(BuildError::DuplicateSubprotocol("a".to_owned()))
    );
    assert!(matches!(
        base().extensions("permessage-deflate;").build(),
        Err(BuildError::Extensions(_))
    ));
    assert_eq!(base().origin("\n").build(), Err(BuildError::InvalidOrigin));
    assert_eq!(base().origin("").build(), Err(BuildError::InvalidOrigin));
    // An empty extension offer is no offer.
    assert!(!base()
        .extensions("")
        .build()
        .unwrap()
        .contains_key(SEC_WEBSOCKET_EXTENSIONS));
}

#[test]
fn accepts_the_rfc_example_response() {
    let negotiated = check(&upgrade_response(&[("sec-websocket-protocol", "chat")])).unwrap();
    assert_eq!(negotiated.subprotocol.as_deref(), Some("chat"));
    assert!(negotiated.extensions.is_empty());
    assert_eq!(
        check(&upgrade_response(&[])).unwrap(),
        Negotiated::default()
    );
}

#[test]
fn upgrade_and_connection_are_case_insensitive() {
    let map = headers(&[
        ("upgrade", "WebSocket"),
        ("connection", "keep-alive"),
        ("connection", "UPGRADE"),
        ("sec-websocket-accept", ACCEPT),
    ]);
    assert!(check(&map).is_ok());
}

#[test]
fn non_101_is_rejected_with_its_status() {
    for status in [
        StatusCode::OK,
        StatusCode::FORBIDDEN,
        StatusCode::UPGRADE_REQUIRED,
    ] {
        let err = validate_response(
            RequestKind::Upgrade,
            status,
            &upgrade_response(&[]),
            KEY,
            &[],
            &[],
        )
        .unwrap_err();
        assert_eq!(err, ResponseError::Rejected { status });
    }
    let err = ResponseError::Rejected {
        status: StatusCode::FORBIDDEN,
    };
    assert_eq!(
        err.to_string(),
        "handshake rejected with status 403 Forbidden"
    );
}

#[test]
fn upgrade_headers_are_checked() {
    let mut map = upgrade_response(&[]);
    map.remove(UPGRADE);
    assert_eq!(check(&map), Err(ResponseError::UpgradeNotWebSocket));
    for value in ["h2c", "websocket, h2c", "websockets", ""] {
        let mut map = upgrade_response(&[]);
        map.insert(UPGRADE, HeaderValue::from_str(value).unwrap());
        assert_eq!(
            check(&map),
            Err(ResponseError::UpgradeNotWebSocket),
            "{value:?}"
        );
    }
    let mut map = upgrade_response(&[]);
    map.insert(CONNECTION, HeaderValue::from_static("keep-alive"));
    assert_eq!(check(&map), Err(ResponseError::MissingConnectionUpgrade));
    map.remove(CONNECTION);
    assert_eq!(check(&map), Err(ResponseError::MissingConnectionUpgrade));
}

#[test]
fn accept_is_checked_exactly() {
    let mut map = upgrade_response(&[]);
    map.remove(SEC_WEBSOCKET_ACCEPT);
    assert_eq!(check(&map), Err(ResponseError::MissingAccept));
    for wrong in [
        "s3pPLMBiTxaQ9kYGzzhZRbK+xOp=",
        "S3PPLMBITXAQ9KYGZZHZRBK+XOO=",
        "s3pPLMBiTxaQ9kYGzzhZRbK+xOo",
        KEY,
        "",
    ] {
        let mut map = upgrade_response(&[]);
        map.insert(SEC_WEBSOCKET_ACCEPT, HeaderValue::from_str(wrong).unwrap());
        assert_eq!(check(&map), Err(ResponseError::AcceptMismatch), "{wrong:?}");
    }
    let map = upgrade_response(&[("sec-websocket-accept", ACCEPT)]);
    assert_eq!(
        check(&map),
        Err(ResponseError::DuplicateHeader(SEC_WEBSOCKET_ACCEPT))
    );
    // Computed from the key we sent, not from any key.
    let err = validate_response(
        RequestKind::Upgrade,
        StatusCode::SWITCHING_PROTOCOLS,
        &upgrade_response(&[]),
        &generate_key(),
        &[],
        &[],
    );
    assert_eq!(err, Err(ResponseError::AcceptMismatch));
}

#[test]
fn subprotocol_must_be_single_and_offered() {
    assert_eq!(
        check(&upgrade_response(&[("sec-websocket-protocol", "other")])),
        Err(ResponseError::UnofferedSubprotocol("other".to_owned()))
    );
    assert_eq!(
        check(&upgrade_response(&[("sec-websocket-protocol", "Chat")])),
        Err(ResponseError::UnofferedSubprotocol("Chat".to_owned()))
    );
    assert_eq!(
        check(&upgrade_response(&[(
            "sec-websocket-protocol",
            "chat, superchat"
        )])),
        Err(ResponseError::MultipleSubprotocols)
    );
    assert_eq!(
        check(&upgrade_response(&[
            ("sec-websocket-protocol", "chat"),
            ("sec-websocket-protocol", "superchat"),
        ])),
        Err(ResponseError::MultipleSubprotocols)
    );
    for bad in ["", " , ", "ch at", "chat/1"] {
        assert_eq!(
            check(&upgrade_response(&[("sec-websocket-protocol", bad)])),
            Err(ResponseError::InvalidSubprotocol),
            "{bad:?}"
        );
    }
    // Nothing offered: any selection is an error.
    let err = validate_response(
        RequestKind::Upgrade,
        StatusCode::SWITCHING_PROTOCOLS,
        &upgrade_response(&[("sec-websocket-protocol", "chat")]),
        KEY,
        &[],
        &[],
    );
    assert_eq!(
        err,
        Err(ResponseError::UnofferedSubprotocol("chat".to_owned()))
    );
}

#[test]
fn extensions_must_parse_and_be_offered() {
    let negotiated = check(&upgrade_response(&[(
        "sec-websocket-extensions",
        "permessage-deflate; server_no_context_takeover; client_max_window_bits=10",
    )]))
    .unwrap();
    assert_eq!(negotiated.extensions.len(), 1);
    assert_eq!(
        negotiated.extensions[0]
            .params_named("client_max_window_bits")
            .collect::<Vec<_>>(),
        [Some("10")]
    );
    assert_eq!(
        check(&upgrade_response(&[(
            "sec-websocket-extensions",
            "x-unknown"
        )])),
        Err(ResponseError::UnofferedExtension("x-unknown".to_owned()))
    );
    assert_eq!(
        check(&upgrade_response(&[
            ("sec-websocket-extensions", "permessage-deflate"),
            ("sec-websocket-extensions", "x-unknown; a=1"),
        ])),
        Err(ResponseError::UnofferedExtension("x-unknown".to_owned()))
    );
    assert!(matches!(
        check(&upgrade_response(&[(
            "sec-websocket-extensions",
            "permessage-deflate; a="
        )])),
        Err(ResponseError::Extensions(ExtensionError {
            reason: ExtensionErrorReason::ExpectedParamValue,
            ..
        }))
    ));
}

#[test]
fn extended_connect_responses() {
    let ok = |status, map: &HeaderMap| {
        validate_response(
            RequestKind::ExtendedConnect,
            status,
            map,
            "",
            &offered(&["chat"]),
            &["permessage-deflate"],
        )
    };
    let negotiated = ok(
        StatusCode::OK,
        &headers(&[
            ("sec-websocket-protocol", "chat"),
            ("sec-websocket-extensions", "permessage-deflate"),
        ]),
    )
    .unwrap();
    assert_eq!(negotiated.subprotocol.as_deref(), Some("chat"));
    assert_eq!(negotiated.extensions[0].name, "permessage-deflate");
    assert!(ok(StatusCode::NO_CONTENT, &HeaderMap::new()).is_ok());
    for status in [
        StatusCode::SWITCHING_PROTOCOLS,
        StatusCode::BAD_REQUEST,
        StatusCode::MOVED_PERMANENTLY,
    ] {
        assert_eq!(
            ok(status, &HeaderMap::new()),
            Err(ResponseError::Rejected { status })
        );
    }
    assert_eq!(
        ok(StatusCode::OK, &headers(&[("sec-websocket-protocol", "x")])),
        Err(ResponseError::UnofferedSubprotocol("x".to_owned()))
    );
}

#[test]
fn client_accepts_what_the_server_builds() {
    let request = RequestHeaders::upgrade("example.com", None, true, generate_key())
        .subprotocols(["v2.proto", "v1.proto"])
        .extensions("permessage-deflate; client_max_window_bits, permessage-deflate");
    let map = request.build().unwrap();
    let offer = validate_request(&Method::GET, http::Version::HTTP_11, &map, None).unwrap();
    let subprotocol = crate::handshake::select_subprotocol(&offer.subprotocols, &["v1.proto"]);
    let response = response_headers(
        &offer,
        subprotocol,
        Some("permessage-deflate; client_max_window_bits=15"),
    )
    .unwrap();
    let negotiated = validate_response(
        request.kind(),
        crate::handshake::response_status(request.kind()),
        &response,
        request.key().unwrap(),
        request.offered_subprotocols(),
        &["permessage-deflate"],
    )
    .unwrap();
    assert_eq!(negotiated.subprotocol.as_deref(), Some("v1.proto"));
    assert_eq!(negotiated.extensions.len(), 1);
}

proptest! {
    #[test]
    fn validate_response_never_panics(
        lines in proptest::collection::vec(
            (
                prop::sample::select(vec![
                    "upgrade", "connection", "sec-websocket-accept",
                    "sec-websocket-protocol", "sec-websocket-extensions",
                ]),
                proptest::collection::vec(any::<u8>(), 0..32),
            ),
            0..8,
        ),
        status in 100u16..600,
        h2 in any::<bool>(),
    ) {
        let mut map = HeaderMap::new();
        for (name, value) in lines {
            if let Ok(value) = HeaderValue::from_bytes(&value) {
                map.append(name, value);
            }
        }
        let kind = if h2 { RequestKind::ExtendedConnect } else { RequestKind::Upgrade };
        let status = StatusCode::from_u16(status).unwrap();
        let _ = validate_response(kind, status, &map, KEY, &offered(&["a"]), &["b"]);
    }

    #[test]
    fn request_builder_never_panics(
        host in ".{0,12}",
        key in ".{0,26}",
        protocols in proptest::collection::vec(".{0,6}", 0..3),
        extensions in proptest::option::of(".{0,16}"),
        origin in proptest::option::of(".{0,8}"),
        port in proptest::option::of(any::<u16>()),
    ) {
        let mut request = RequestHeaders::upgrade(&host, port, false, key).subprotocols(protocols);
        if let Some(extensions) = extensions {
            request = request.extensions(extensions);
        }
        if let Some(origin) = origin {
            request = request.origin(origin);
        }
        let _ = request.build();
    }
}
