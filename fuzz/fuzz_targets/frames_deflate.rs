#![no_main]
//! Arbitrary bytes into a server that negotiated permessage-deflate: RSV1 frames are inflated.
use libfuzzer_sys::fuzz_target;
use sockway_proto::deflate::DeflateParams;
use sockway_proto::{Connection, Role};

fuzz_target!(|data: &[u8]| {
    let params = DeflateParams {
        local_max_window_bits: 15,
        local_no_context_takeover: data.first().is_some_and(|b| b & 1 == 1),
        remote_no_context_takeover: false,
        local_compression_level: data.get(1).map_or(1, |b| b % 10),
    };
    sockway_fuzz::drive(data, |config| Connection::with_deflate(Role::Server, config, params));
});
