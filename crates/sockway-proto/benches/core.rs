//! Benchmarks for the hot paths of the protocol core.
//!
//! One function per benchmark group, all listed in `criterion_group!` at the bottom; to add
//! a group (framing, say), write another `fn name(c: &mut Criterion)` and add it to the list.
//! Every group sets `Throughput::Bytes`, so criterion reports GiB/s alongside the times.
//!
//! Run with `cargo bench -p sockway-proto --bench core` (add `-- --quick` for a rough pass,
//! or a group name such as `-- mask` to run one group).

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use sockway_proto::connection::Delivery;
use sockway_proto::deflate::{Compressor, Decompressor};
use sockway_proto::handshake::validate_request;
use sockway_proto::mask::{apply_mask, apply_mask_naive};
use sockway_proto::utf8::{validate, Utf8Validator};
use sockway_proto::{Config, Connection, FrameHeader, Role};

/// Payload sizes for masking: tiny, the largest control frame payload (125 bytes, RFC 6455
/// section 5.5), then typical, large and huge data frames.
const MASK_SIZES: [usize; 5] = [16, 125, 1024, 16 * 1024, 1024 * 1024];

/// Where the payload starts in the benchmark's buffer: after the 6-byte header of a small
/// masked frame (RFC 6455 section 5.2), so it is not 8-byte aligned, as in a real read buffer.
const PAYLOAD_START: usize = 6;

/// The size of the texts for UTF-8 validation.
const TEXT_SIZE: usize = 64 * 1024;

/// How big the pieces are when a text is fed to the validator piece by piece. Not a multiple
/// of any UTF-8 sequence length, so code points get split between pieces.
const PIECE_SIZE: usize = 1000;

/// `apply_mask` (a word at a time, vectorised) against the byte-at-a-time reference.
fn mask(c: &mut Criterion) {
    let key = [0x37, 0xfa, 0x21, 0x3d];
    let mut group = c.benchmark_group("mask");
    for size in MASK_SIZES {
        let mut buf: Vec<u8> = (0..PAYLOAD_START + size).map(|i| i as u8).collect();
        let payload = &mut buf[PAYLOAD_START..];
        group.throughput(Throughput::Bytes(size as u64));
        group.bench_with_input(BenchmarkId::new("apply_mask", size), &size, |b, _| {
            b.iter(|| apply_mask(black_box(&mut *payload), black_box(key), black_box(0)))
        });
        group.bench_with_input(BenchmarkId::new("naive", size), &size, |b, _| {
            b.iter(|| apply_mask_naive(black_box(&mut *payload), black_box(key), black_box(0)))
        });
    }
    group.finish();
}

/// The incremental validator (whole text in one piece, and in small pieces), the
/// whole-buffer `validate`, and `std::str::from_utf8` for comparison, on ASCII text and on
/// text mixing one- to four-byte code points.
fn utf8(c: &mut Criterion) {
    let ascii = repeat_to_size("The quick brown fox jumps over the lazy dog. ", TEXT_SIZE);
    let mixed = repeat_to_size("κόσμε 日本語 🎉 hello ", TEXT_SIZE);
    let mut group = c.benchmark_group("utf8");
    for (name, text) in [("ascii", &ascii), ("mixed", &mixed)] {
        let bytes = text.as_bytes();
        group.throughput(Throughput::Bytes(bytes.len() as u64));
        group.bench_with_input(BenchmarkId::new("validator", name), bytes, |b, bytes| {
            let mut validator = Utf8Validator::new();
            b.iter(|| {
                validator.feed(black_box(bytes))?;
                validator.finish()
            })
        });
        group.bench_with_input(
            BenchmarkId::new(format!("validator_{PIECE_SIZE}b_pieces"), name),
            bytes,
            |b, bytes| {
                let mut validator = Utf8Validator::new();
                b.iter(|| {
                    for piece in black_box(bytes).chunks(PIECE_SIZE) {
                        validator.feed(piece)?;
                    }
                    validator.finish()
                })
            },
        );
        group.bench_with_input(BenchmarkId::new("validate", name), bytes, |b, bytes| {
            b.iter(|| validate(black_box(bytes)).map(str::len))
        });
        group.bench_with_input(BenchmarkId::new("std", name), bytes, |b, bytes| {
            b.iter(|| std::str::from_utf8(black_box(bytes)).map(str::len))
        });
    }
    group.finish();
}

/// `unit` repeated, cut at a character boundary to at most `size` bytes.
fn repeat_to_size(unit: &str, size: usize) -> String {
    let mut text = unit.repeat(size / unit.len() + 1);
    let mut end = size;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.truncate(end);
    text
}

/// Frame header parsing, frame serialization, and the whole receive path (parse, unmask,
/// validate, deliver) per frame, for the small messages that dominate chat-like traffic.
fn frame(c: &mut Criterion) {
    let mut group = c.benchmark_group("frame");
    let mut client = Connection::new(Role::Client, Config::default());
    client.send_text("twenty bytes of text").unwrap();
    let masked = client.take_output().freeze();
    group.bench_function("parse_header", |b| {
        b.iter(|| FrameHeader::parse(black_box(&masked)).unwrap())
    });
    let mut server = Connection::new(Role::Server, Config::default());
    group.bench_function("serialize_20B", |b| {
        b.iter(|| {
            server
                .send_binary(black_box(b"twenty bytes of data"))
                .unwrap();
            server.advance_output(server.output().len());
        })
    });
    group.bench_function("serialize_masked_20B", |b| {
        b.iter(|| {
            client
                .send_binary(black_box(b"twenty bytes of data"))
                .unwrap();
            client.advance_output(client.output().len());
        })
    });
    for size in [20usize, 1024, 16 * 1024] {
        let mut sender = Connection::new(Role::Client, Config::default());
        sender.send_text(&"a".repeat(size)).unwrap();
        let frame = sender.take_output();
        group.throughput(Throughput::Bytes(size as u64));
        group.bench_with_input(
            BenchmarkId::new("receive_text", size),
            &frame,
            |b, frame| {
                let mut receiver = Connection::new(Role::Server, Config::default());
                let mut input = bytes::BytesMut::with_capacity(frame.len() * 64);
                b.iter(|| {
                    input.extend_from_slice(frame);
                    black_box(receiver.read_event(&mut input, Delivery::Messages).unwrap());
                })
            },
        );
    }
    group.finish();
}

/// Validating an opening handshake request as a browser sends it.
fn handshake(c: &mut Criterion) {
    let mut headers = http::HeaderMap::new();
    for (name, value) in [
        ("host", "example.com:5000"),
        ("upgrade", "websocket"),
        ("connection", "keep-alive, Upgrade"),
        ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
        ("sec-websocket-version", "13"),
        ("origin", "http://example.com:5000"),
        (
            "sec-websocket-extensions",
            "permessage-deflate; client_max_window_bits",
        ),
        ("user-agent", "Mozilla/5.0 (X11; Linux x86_64) Chrome/156.0"),
    ] {
        headers.append(name, http::HeaderValue::from_static(value));
    }
    c.bench_function("handshake/validate_request", |b| {
        b.iter(|| {
            validate_request(
                &http::Method::GET,
                http::Version::HTTP_11,
                black_box(&headers),
                None,
            )
            .unwrap()
        })
    });
}

/// A message compressed (zlib level 1, 15-bit window) and inflated again, with and without
/// context takeover (RFC 7692 section 7.1.1): JSON-like records of 1 KiB, a different one
/// each time, as a chat or telemetry server sends them.
fn deflate(c: &mut Criterion) {
    let records: Vec<Vec<u8>> = (0..8)
        .map(|i| {
            let record = format!(
                "{{\"user\":\"user{i}\",\"event\":\"move\",\"x\":{}.5,\"y\":-{i}.25}},",
                i * 37
            );
            record.repeat(1024 / record.len() + 1).into_bytes()[..1024].to_vec()
        })
        .collect();
    let mut group = c.benchmark_group("deflate");
    group.throughput(Throughput::Bytes(1024));
    for (name, reset) in [("takeover", false), ("no_context_takeover", true)] {
        let mut compressor = Compressor::new(15, reset);
        let mut decompressor = Decompressor::new(reset);
        let (mut wire, mut out, mut turn) = (Vec::new(), Vec::new(), 0);
        group.bench_function(BenchmarkId::new("compress_and_inflate_1KiB", name), |b| {
            b.iter(|| {
                turn = (turn + 1) % records.len();
                wire.clear();
                out.clear();
                compressor.compress(black_box(&records[turn]), true, &mut wire);
                decompressor
                    .decompress(&wire, true, 1 << 20, &mut out, &mut |_| true)
                    .unwrap();
                black_box(out.len())
            })
        });
    }
    group.finish();
}

criterion_group!(benches, mask, utf8, frame, handshake, deflate);
criterion_main!(benches);
