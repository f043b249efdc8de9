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
use sockway_proto::mask::{apply_mask, apply_mask_naive};
use sockway_proto::utf8::{validate, Utf8Validator};

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

criterion_group!(benches, mask, utf8);
criterion_main!(benches);
