//! Payload masking (RFC 6455 section 5.3).
//!
//! Every frame a client sends carries a 32-bit masking key, and its payload is XORed with
//! that key repeated: byte `i` of the payload is XORed with `key[i % 4]` (section 5.3). The
//! same operation masks and unmasks, because XOR is its own inverse.
//!
//! A server unmasks every byte it receives, so this is on the hot path of every read. Instead
//! of XORing one byte at a time, [`apply_mask`] rotates the key so that it lines up with the
//! first byte of the buffer, repeats it into a 64-bit pattern and XORs eight bytes at a time.
//! The compiler vectorises that loop with the SSE2 instructions every x86_64 CPU has; on x86_64
//! CPUs with AVX2 (detected at run time) the same loop is compiled a second time for 256-bit
//! registers, which measured about 20-30% faster on buffers of a kilobyte or more, and on CPUs
//! with AVX-512F that keep their clock speed under it a third time for 512-bit registers,
//! another 29% faster on 1 and 16 KiB buffers (`cargo bench -p sockway-proto --bench core --
//! mask`, Intel Xeon model 207), and what a C++ server built with `-march=native`
//! (uWebSockets) gets on such a CPU.
//!
//! Payloads often arrive in several reads. The `offset` argument says where in the payload the
//! buffer starts, so each piece can be unmasked as it arrives, without copying it together
//! first.

/// Below this many bytes, [`apply_mask`] skips the run-time CPU feature check: the AVX2 loop
/// only pays off once there are a few 32-byte registers' worth of data.
#[cfg(target_arch = "x86_64")]
const AVX2_MIN_LEN: usize = 128;

/// XORs `buf` with the masking `key`, as if `buf` began `offset` bytes into the masked payload
/// (RFC 6455 section 5.3): byte `i` of `buf` is XORed with `key[(offset + i) % 4]`.
///
/// Applying it twice with the same key and offset restores the original bytes, so it both
/// masks (client side, section 5.1) and unmasks (server side). Because of `offset`, a payload
/// arriving in pieces can be unmasked piece by piece: mask each piece with `offset` equal to
/// the number of payload bytes that came before it.
///
/// It works a machine word at a time (vectorised by the compiler, and with AVX2 or AVX-512F
/// when the CPU has them), and never panics.
#[inline]
pub fn apply_mask(buf: &mut [u8], key: [u8; 4], offset: usize) {
    let key = rotate_key(key, offset);

    #[cfg(target_arch = "x86_64")]
    if buf.len() >= AVX512_MIN_LEN && avx512_keeps_the_clock() {
        // SAFETY: `mask_words_avx512` only requires that the CPU supports AVX-512F, which
        // `avx512_keeps_the_clock` has just confirmed. It does nothing else unsafe.
        unsafe { mask_words_avx512(buf, key) };
        return;
    }
    #[cfg(target_arch = "x86_64")]
    if buf.len() >= AVX2_MIN_LEN && std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: `mask_words_avx2` only requires that the CPU supports AVX2, which
        // `is_x86_feature_detected!` has just confirmed. It does nothing else unsafe.
        unsafe { mask_words_avx2(buf, key) };
        return;
    }

    mask_words(buf, key);
}

/// The reference implementation of [`apply_mask`]: one byte at a time, straight from the
/// formula in RFC 6455 section 5.3.
///
/// Not meant for use: it exists so that tests can check [`apply_mask`] against it and the
/// benchmark can show what the word-at-a-time version gains.
#[doc(hidden)]
pub fn apply_mask_naive(buf: &mut [u8], key: [u8; 4], offset: usize) {
    for (i, byte) in buf.iter_mut().enumerate() {
        *byte ^= key[offset.wrapping_add(i) & 3];
    }
}

/// Returns the key as seen from a buffer starting `offset` bytes into the payload: the key
/// rotated so that its first byte is `key[offset % 4]`.
///
/// Done on a `u32` (one rotate instruction) rather than with `<[u8]>::rotate_left`, whose
/// general-purpose code costs more than masking a short buffer.
#[inline(always)]
fn rotate_key(key: [u8; 4], offset: usize) -> [u8; 4] {
    // Little-endian on purpose: byte 0 of the key is the least significant byte, so rotating
    // right by whole bytes moves later key bytes to the front, whatever the CPU's byte order.
    let shift = 8 * (offset & 3) as u32;
    u32::from_le_bytes(key).rotate_right(shift).to_le_bytes()
}

/// XORs `buf` with `key` (already rotated to line up with `buf[0]`) eight bytes at a time,
/// then finishes the last zero to seven bytes one at a time.
///
/// Reads and writes go through `u64::from_ne_bytes` on eight-byte chunks, so no alignment is
/// assumed and no unsafe code is needed; the compiler turns the loop into vector
/// instructions. Since the pattern is the key repeated, byte order does not matter.
#[inline(always)]
fn mask_words(buf: &mut [u8], key: [u8; 4]) {
    let pattern = u64::from_ne_bytes([
        key[0], key[1], key[2], key[3], key[0], key[1], key[2], key[3],
    ]);
    let mut chunks = buf.chunks_exact_mut(8);
    for chunk in &mut chunks {
        let mut word = [0u8; 8];
        // `chunks_exact_mut(8)` yields exactly eight bytes, so the lengths always match (and
        // the compiler removes the length check).
        word.copy_from_slice(chunk);
        chunk.copy_from_slice(&(u64::from_ne_bytes(word) ^ pattern).to_ne_bytes());
    }
    // Every chunk above was a multiple of four bytes long, so the rest starts at key[0]:
    // four bytes of it at once when there are four (a 20-byte payload then needs no byte
    // loop at all), then the last zero to three.
    let rest = chunks.into_remainder();
    let (four, tail) = rest.split_at_mut(rest.len() & 4);
    if let Ok(four) = <&mut [u8; 4]>::try_from(four) {
        *four = (u32::from_ne_bytes(*four) ^ u32::from_ne_bytes(key)).to_ne_bytes();
    }
    for (i, byte) in tail.iter_mut().enumerate() {
        *byte ^= key[i & 3];
    }
}

/// [`mask_words`] over whole `BLOCK`s first (a fixed length, so each becomes straight-line
/// vector code), then the rest. Every block is a multiple of four bytes, so the key stays
/// lined up. Inlined into [`mask_words_avx2`] and [`mask_words_avx512`], which compile it for
/// their registers.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn mask_blocks<const BLOCK: usize>(buf: &mut [u8], key: [u8; 4]) {
    let mut blocks = buf.chunks_exact_mut(BLOCK);
    for block in &mut blocks {
        mask_words(block, key);
    }
    mask_words(blocks.into_remainder(), key);
}

/// How many bytes [`mask_words_avx2`] masks per step of its main loop: sixteen 256-bit
/// registers' worth, so that the loop's own counting and branching is a small part of it.
#[cfg(target_arch = "x86_64")]
const AVX2_BLOCK: usize = 512;

/// [`mask_words`] compiled for CPUs with AVX2, so that the compiler can use 256-bit
/// registers, in [`AVX2_BLOCK`]s.
///
/// # Safety
///
/// The CPU running it must support AVX2 (check with `is_x86_feature_detected!("avx2")`).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn mask_words_avx2(buf: &mut [u8], key: [u8; 4]) {
    mask_blocks::<AVX2_BLOCK>(buf, key);
}

/// Below this many bytes, [`apply_mask`] leaves a buffer to the AVX2 loop: the 512-bit loop
/// pays off on whole blocks.
#[cfg(target_arch = "x86_64")]
const AVX512_MIN_LEN: usize = AVX512_BLOCK;

/// Whether to mask with 512-bit registers: the CPU has AVX-512F and also AVX-VNNI. Intel
/// cores with both (Sapphire Rapids and later) keep their clock speed while 512-bit loads and
/// stores run, which is the rule glibc's string functions follow (`Prefer_No_AVX512` unless
/// AVX-VNNI). Elsewhere the AVX2 loop is used: Intel's earlier AVX-512 cores (Skylake-SP to
/// Ice Lake) lower their clock for a while after such instructions, slowing everything else
/// the thread runs, and AMD's Zen 4 runs them as two 256-bit halves.
#[cfg(target_arch = "x86_64")]
#[inline]
fn avx512_keeps_the_clock() -> bool {
    std::arch::is_x86_feature_detected!("avx512f") && std::arch::is_x86_feature_detected!("avxvnni")
}

/// How many bytes [`mask_words_avx512`] masks per step of its main loop: sixteen 512-bit
/// registers' worth, as [`AVX2_BLOCK`] is for 256-bit ones.
#[cfg(target_arch = "x86_64")]
const AVX512_BLOCK: usize = 1024;

/// [`mask_words`] compiled for CPUs with AVX-512F, for 512-bit registers, in
/// [`AVX512_BLOCK`]s.
///
/// # Safety
///
/// The CPU running it must support AVX-512F (check with `is_x86_feature_detected!("avx512f")`).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn mask_words_avx512(buf: &mut [u8], key: [u8; 4]) {
    mask_blocks::<AVX512_BLOCK>(buf, key);
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const KEY: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

    /// Sweep lengths up to past the AVX2 threshold (128 bytes on x86_64).
    const SWEEP_LEN: usize = 200;

    #[test]
    fn rfc_example_hello() {
        // RFC 6455 section 5.7: a masked "Hello" with key 37 fa 21 3d.
        let mut buf = *b"Hello";
        apply_mask(&mut buf, KEY, 0);
        assert_eq!(buf, [0x7f, 0x9f, 0x4d, 0x51, 0x58]);
        apply_mask(&mut buf, KEY, 0);
        assert_eq!(&buf, b"Hello");
    }

    #[test]
    fn empty_buffer_is_untouched() {
        let mut buf: [u8; 0] = [];
        apply_mask(&mut buf, KEY, 3);
        apply_mask_naive(&mut buf, KEY, 3);
    }

    #[test]
    fn offset_selects_key_byte() {
        for offset in 0..8 {
            let mut buf = [0u8; 1];
            apply_mask(&mut buf, KEY, offset);
            assert_eq!(buf[0], KEY[offset % 4], "offset {offset}");
        }
    }

    #[test]
    fn huge_offset_does_not_overflow() {
        let mut fast = [0u8; 300];
        let mut naive = [0u8; 300];
        apply_mask(&mut fast, KEY, usize::MAX);
        apply_mask_naive(&mut naive, KEY, usize::MAX);
        assert_eq!(fast, naive);
        assert_eq!(fast[0], KEY[3]);
        assert_eq!(fast[1], KEY[0]);
    }

    #[test]
    fn matches_naive_for_every_small_length_offset_and_alignment() {
        // Deterministic sweep over the boundaries the fast path cares about: the eight-byte
        // words, the AVX2 threshold and the start alignment.
        let data: Vec<u8> = (0..=255u8).cycle().take(400).collect();
        for start in 0..8 {
            for len in 0..SWEEP_LEN {
                for offset in 0..4 {
                    let mut fast = data.clone();
                    let mut naive = data.clone();
                    apply_mask(&mut fast[start..start + len], KEY, offset);
                    apply_mask_naive(&mut naive[start..start + len], KEY, offset);
                    assert_eq!(fast, naive, "start {start} len {len} offset {offset}");
                }
            }
        }
    }

    /// Masks `len` bytes one byte into a buffer with `mask` at every key offset and compares
    /// with the reference, for lengths on both sides of one, two and several `block`s, so that
    /// whole blocks, the word loop after them and the last bytes all run.
    fn check_around_blocks(mask: impl Fn(&mut [u8], [u8; 4]), block: usize) {
        let data: Vec<u8> = (0..=255u8).cycle().take(3 * block + 80).collect();
        for base in [block, 2 * block, 3 * block] {
            for len in base - 9..base + 70 {
                for offset in 0..4 {
                    let mut fast = data.clone();
                    let mut naive = data.clone();
                    mask(&mut fast[1..=len], rotate_key(KEY, offset));
                    apply_mask_naive(&mut naive[1..=len], KEY, offset);
                    assert_eq!(fast, naive, "block {block} len {len} offset {offset}");
                }
            }
        }
    }

    #[test]
    fn every_loop_matches_naive_around_its_blocks() {
        // Each loop this CPU can run, called directly: `apply_mask` picks only the widest.
        check_around_blocks(mask_words, 512);
        check_around_blocks(|buf, key| apply_mask(buf, key, 0), 512);
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU has AVX2, as just checked.
            check_around_blocks(|buf, key| unsafe { mask_words_avx2(buf, key) }, AVX2_BLOCK);
        }
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU has AVX-512F, as just checked.
            check_around_blocks(
                |buf, key| unsafe { mask_words_avx512(buf, key) },
                AVX512_BLOCK,
            );
        }
    }

    proptest! {
        #[test]
        fn equals_naive(
            data in proptest::collection::vec(any::<u8>(), 0..300),
            start in 0usize..16,
            key in any::<[u8; 4]>(),
            offset in any::<usize>(),
        ) {
            let start = start.min(data.len());
            let mut fast = data.clone();
            let mut naive = data.clone();
            apply_mask(&mut fast[start..], key, offset);
            apply_mask_naive(&mut naive[start..], key, offset);
            prop_assert_eq!(fast, naive);
        }

        #[test]
        fn masking_twice_is_identity(
            data in proptest::collection::vec(any::<u8>(), 0..300),
            key in any::<[u8; 4]>(),
            offset in any::<usize>(),
        ) {
            let mut buf = data.clone();
            apply_mask(&mut buf, key, offset);
            apply_mask(&mut buf, key, offset);
            prop_assert_eq!(buf, data);
        }

        #[test]
        fn pieces_equal_whole(
            data in proptest::collection::vec(any::<u8>(), 0..300),
            cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..4),
            key in any::<[u8; 4]>(),
            offset in 0usize..1 << 20,
        ) {
            let mut whole = data.clone();
            apply_mask(&mut whole, key, offset);

            let mut cuts: Vec<usize> = cuts.iter().map(|c| c.index(data.len() + 1)).collect();
            cuts.push(0);
            cuts.push(data.len());
            cuts.sort_unstable();
            let mut pieces = data.clone();
            for pair in cuts.windows(2) {
                let (from, to) = (pair[0], pair[1]);
                apply_mask(&mut pieces[from..to], key, offset + from);
            }
            prop_assert_eq!(pieces, whole);
        }
    }
}
