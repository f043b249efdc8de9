//! Negotiation rules of RFC 7692 section 7.1, case by case.

use super::*;
use crate::handshake::parse_extension_list;

fn offers(header: &str) -> Vec<ExtensionOffer> {
    parse_extension_list(header).unwrap()
}

fn server(header: &str, config: DeflateConfig) -> Option<(DeflateParams, String)> {
    accept_offer(&offers(header), &config).map(|(p, r)| (p, r.to_header_value()))
}

#[test]
fn a_plain_offer_is_accepted_with_defaults() {
    let (params, response) = server(
        "permessage-deflate; client_max_window_bits",
        DeflateConfig::default(),
    )
    .unwrap();
    assert_eq!(response, "permessage-deflate");
    assert_eq!(
        params,
        DeflateParams {
            local_max_window_bits: 15,
            local_no_context_takeover: false,
            remote_no_context_takeover: false,
            local_compression_level: 1,
        }
    );
}

#[test]
fn requested_server_limits_are_honoured_and_echoed() {
    let (params, response) = server(
        "permessage-deflate; server_no_context_takeover; server_max_window_bits=8",
        DeflateConfig::default(),
    )
    .unwrap();
    assert_eq!(
        response,
        "permessage-deflate; server_no_context_takeover; server_max_window_bits=8"
    );
    assert_eq!(params.local_max_window_bits, 8);
    assert!(params.local_no_context_takeover);
}

#[test]
fn the_server_may_limit_the_client_only_when_the_client_allows_it() {
    let config = DeflateConfig {
        client_max_window_bits: Some(10),
        client_no_context_takeover: true,
        ..Default::default()
    };
    let (_, response) = server("permessage-deflate", config).unwrap();
    assert_eq!(response, "permessage-deflate; client_no_context_takeover");
    let (_, response) = server("permessage-deflate; client_max_window_bits=12", config).unwrap();
    assert_eq!(
        response,
        "permessage-deflate; client_no_context_takeover; client_max_window_bits=10"
    );
    let (_, response) = server("permessage-deflate; client_max_window_bits=9", config).unwrap();
    assert!(response.ends_with("client_max_window_bits=9"));
}

#[test]
fn invalid_offers_are_declined_and_the_next_one_is_taken() {
    for bad in [
        "permessage-deflate; server_max_window_bits",
        "permessage-deflate; server_max_window_bits=7",
        "permessage-deflate; server_max_window_bits=16",
        "permessage-deflate; server_max_window_bits=010",
        "permessage-deflate; client_max_window_bits=foo",
        "permessage-deflate; server_no_context_takeover=1",
        "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
        "permessage-deflate; client_max_window_bits; client_max_window_bits=10",
        "permessage-deflate; mystery",
    ] {
        assert_eq!(server(bad, DeflateConfig::default()), None, "{bad}");
        let with_fallback = format!("{bad}, permessage-deflate; server_max_window_bits=10");
        let (params, _) = server(&with_fallback, DeflateConfig::default()).unwrap();
        assert_eq!(params.local_max_window_bits, 10, "{bad}");
    }
    assert_eq!(
        server("x-webkit-deflate-frame", DeflateConfig::default()),
        None
    );
}

#[test]
fn the_client_checks_the_response_against_its_offer() {
    let config = DeflateConfig {
        server_max_window_bits: 10,
        ..Default::default()
    };
    assert_eq!(
        client_offer(&config).to_header_value(),
        "permessage-deflate; server_max_window_bits=10; client_max_window_bits"
    );
    let confirm = |header: &str| confirm_response(&offers(header), &config);
    assert_eq!(confirm("other"), Ok(None));
    assert_eq!(
        confirm("permessage-deflate"),
        Err(NegotiationError::ServerWindowTooLarge)
    );
    assert_eq!(
        confirm("permessage-deflate; server_max_window_bits=11"),
        Err(NegotiationError::ServerWindowTooLarge)
    );
    assert_eq!(
        confirm("permessage-deflate; server_max_window_bits=10, permessage-deflate"),
        Err(NegotiationError::Repeated)
    );
    assert!(matches!(
        confirm("permessage-deflate; server_max_window_bits=9; x=1"),
        Err(NegotiationError::UnknownParameter(_))
    ));
    assert!(matches!(
        confirm("permessage-deflate; server_max_window_bits=9; client_max_window_bits"),
        Err(NegotiationError::InvalidValue(_))
    ));
    let params = confirm("permessage-deflate; server_max_window_bits=9; client_max_window_bits=11; client_no_context_takeover; server_no_context_takeover")
        .unwrap()
        .unwrap();
    assert_eq!(
        params,
        DeflateParams {
            local_max_window_bits: 11,
            local_no_context_takeover: true,
            remote_no_context_takeover: true,
            local_compression_level: 1,
        }
    );
}

#[test]
fn the_client_no_context_takeover_hint_in_an_offer_does_not_let_the_server_reset() {
    let (params, response) = server(
        "permessage-deflate; client_no_context_takeover",
        DeflateConfig::default(),
    )
    .unwrap();
    assert_eq!(response, "permessage-deflate");
    assert!(
        !params.remote_no_context_takeover,
        "only a response binds the client"
    );
}
