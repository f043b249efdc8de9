#![no_main]
//! Arbitrary compressed data: inflation never grows past its limit.
use libfuzzer_sys::fuzz_target;
use sockway_proto::deflate::Decompressor;

fuzz_target!(|data: &[u8]| {
    let limit = 4096;
    let mut decompressor = Decompressor::new(false);
    for piece in data.split(|&b| b == 0xA5) {
        let mut out = Vec::new();
        let _ = decompressor.decompress(piece, true, limit, &mut out, &mut |_| true);
        assert!(out.len() <= limit);
    }
});
