#![no_main]
//! Arbitrary `Sec-WebSocket-Extensions` values: parsing, printing and parsing again agree,
//! and permessage-deflate negotiation never panics on either side.
use libfuzzer_sys::fuzz_target;
use sockway_proto::deflate::{accept_offer, confirm_response, DeflateConfig};
use sockway_proto::handshake::{extensions_to_header_value, parse_extension_list};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(offers) = parse_extension_list(text) else { return };
    let printed = extensions_to_header_value(&offers);
    let reparsed = parse_extension_list(&printed).expect("printed extensions parse");
    assert_eq!(reparsed, offers);
    let config = DeflateConfig { server_max_window_bits: 10, client_max_window_bits: Some(12), ..Default::default() };
    let _ = accept_offer(&offers, &config);
    let _ = confirm_response(&offers, &config);
});
