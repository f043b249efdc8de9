//! Compressing and inflating message payloads (RFC 7692 section 7.2).

use flate2::{Compress, Decompress, FlushCompress, FlushDecompress, Status};

use super::reuse;

/// The four bytes a sync flush ends with; removed from a compressed message's end on the way
/// out and put back before inflating (section 7.2.1, 7.2.2).
const SYNC_TAIL: [u8; 4] = [0x00, 0x00, 0xFF, 0xFF];

/// How much output inflation produces at a time; the message limit is checked between steps.
const INFLATE_STEP: usize = 32 * 1024;

/// A message's compressor, kept across messages unless context takeover is off.
///
/// zlib's state is a few hundred KiB, so it is taken on the first compressed message, not
/// when the connection opens, and without context takeover it goes back to the thread's few
/// after every message (at most two kept per thread, reset between messages): an idle
/// connection then holds none, and a message does not pay for building one.
pub struct Compressor {
    deflate: Option<Compress>,
    window_bits: u8,
    no_context_takeover: bool,
    level: u8,
}

impl std::fmt::Debug for Compressor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Compressor")
            .field("no_context_takeover", &self.no_context_takeover)
            .field("level", &self.level)
            .finish()
    }
}

impl Compressor {
    /// A compressor with an LZ77 window of at most `2^window_bits` bytes (an 8-bit window is
    /// served by zlib's 9-bit one, whose matches never reach past 250 bytes: see the module
    /// documentation).
    pub fn new(window_bits: u8, no_context_takeover: bool) -> Self {
        Self {
            deflate: None,
            window_bits: window_bits.clamp(9, 15),
            no_context_takeover,
            level: super::DEFAULT_COMPRESSION_LEVEL,
        }
    }

    /// The same compressor at zlib level `level`, 0 (stored) to 9 (values above mean 9).
    pub fn with_level(mut self, level: u8) -> Self {
        self.level = level.min(9);
        self
    }

    /// Appends the compressed form of one piece of a message to `out`. The final piece drops
    /// the sync-flush tail (section 7.2.1); earlier pieces keep it, so that the pieces
    /// concatenated form one valid compressed message. Resets afterwards without context
    /// takeover.
    pub fn compress(&mut self, input: &[u8], end_of_message: bool, out: &mut Vec<u8>) {
        let start_out = out.len();
        let (bits, level) = (self.window_bits, self.level);
        let deflate = self
            .deflate
            .get_or_insert_with(|| reuse::take_deflater(bits, level));
        let start_in = deflate.total_in();
        loop {
            out.reserve(input.len() / 2 + 64);
            let consumed = (deflate.total_in() - start_in) as usize;
            let rest = input.get(consumed..).unwrap_or_default();
            // Compressing into spare capacity of a Vec cannot fail with a zlib-compatible
            // backend; a failure would leave the output short, which the peer reports.
            let _ = deflate.compress_vec(rest, out, FlushCompress::Sync);
            let done = (deflate.total_in() - start_in) as usize == input.len();
            if done && out.len() < out.capacity() {
                break;
            }
        }
        if end_of_message {
            if out.ends_with(&SYNC_TAIL) {
                out.truncate(out.len() - SYNC_TAIL.len());
            }
            // zlib writes nothing for a flush that follows a flush, so a message (or final
            // fragment) adding no data would otherwise end up empty, and the tail the receiver
            // appends would follow the previous tail: invalid. One zero byte starts the empty
            // stored block that the appended tail completes (section 7.2.3.6).
            if out.len() == start_out {
                out.push(0x00);
            }
            if self.no_context_takeover {
                if let Some(deflate) = self.deflate.take() {
                    reuse::give_deflater(bits, level, deflate);
                }
            }
        }
    }
}

/// A compressed message was corrupt or inflated beyond the limit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InflateError {
    /// The data is not valid deflate.
    #[error("corrupt compressed data")]
    Corrupt,
    /// The message inflates beyond the limit.
    #[error("inflated message exceeds the limit of {limit} bytes")]
    TooBig {
        /// The limit.
        limit: usize,
    },
}

/// A message's decompressor. It always uses a 32 KiB window, which decodes any window the
/// peer may use.
///
/// Like the [`Compressor`], its state is taken on the first compressed message and, when the
/// peer resets per message, given back to the thread's few after each one.
pub struct Decompressor {
    inflate: Option<Decompress>,
    no_context_takeover: bool,
    /// The peer ended the deflate stream with a final block (BFINAL) in this message, which
    /// RFC 7692 section 7.2.3.3 allows: the rest of the message is ignored and the next message
    /// starts a new stream.
    stream_ended: bool,
}

impl std::fmt::Debug for Decompressor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Decompressor")
            .field("no_context_takeover", &self.no_context_takeover)
            .finish()
    }
}

impl Decompressor {
    /// A decompressor; `no_context_takeover` says the peer resets after each message, so this
    /// side may too.
    pub fn new(no_context_takeover: bool) -> Self {
        Self {
            inflate: None,
            no_context_takeover,
            stream_ended: false,
        }
    }

    /// Inflates one piece of a compressed message into `out`, never letting `out` grow beyond
    /// `limit` bytes: a small frame that would inflate to gigabytes is refused after at most
    /// `limit` bytes of output. `on_output` sees each new stretch of output (for incremental
    /// UTF-8 checks). At the end of the message the sync tail is fed in first.
    pub fn decompress(
        &mut self,
        input: &[u8],
        end_of_message: bool,
        limit: usize,
        out: &mut Vec<u8>,
        on_output: &mut dyn FnMut(&[u8]) -> bool,
    ) -> Result<(), InflateError> {
        if !self.stream_ended {
            self.feed(input, limit, out, on_output)?;
        }
        if end_of_message {
            if !self.stream_ended {
                self.feed(&SYNC_TAIL, limit, out, on_output)?;
            }
            if self.no_context_takeover || self.stream_ended {
                if let Some(inflate) = self.inflate.take() {
                    reuse::give_inflater(inflate);
                }
            }
            self.stream_ended = false;
        }
        Ok(())
    }

    fn feed(
        &mut self,
        input: &[u8],
        limit: usize,
        out: &mut Vec<u8>,
        on_output: &mut dyn FnMut(&[u8]) -> bool,
    ) -> Result<(), InflateError> {
        let inflate = self.inflate.get_or_insert_with(reuse::take_inflater);
        let start_in = inflate.total_in();
        loop {
            let consumed = (inflate.total_in() - start_in) as usize;
            let room = (limit + 1).saturating_sub(out.len()).min(INFLATE_STEP);
            if room == 0 {
                return Err(InflateError::TooBig { limit });
            }
            out.reserve_exact(room);
            let before = out.len();
            let spare = out.capacity() - before;
            let result = inflate.decompress_vec(
                input.get(consumed..).unwrap_or_default(),
                out,
                FlushDecompress::Sync,
            );
            // Checked before the result: the output may fill all of the Vec's spare capacity
            // (more than `room` when it had some already), and it is kept even when inflation
            // then fails on corrupt data.
            if out.len() > limit {
                // One byte past the limit is how overflow is seen; it is not kept.
                out.truncate(limit);
                return Err(InflateError::TooBig { limit });
            }
            let status = result.map_err(|_| InflateError::Corrupt)?;
            if !on_output(&out[before..]) {
                return Err(InflateError::Corrupt);
            }
            let consumed_now = (inflate.total_in() - start_in) as usize;
            let progressed = consumed_now > consumed || out.len() > before;
            let output_full = out.len() - before == spare;
            if status == Status::StreamEnd {
                self.stream_ended = true;
                return Ok(());
            }
            if (consumed_now == input.len() && !output_full) || !progressed {
                return Ok(());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip(window: u8, messages: &[&[u8]]) {
        let mut compressor = Compressor::new(window, false);
        let mut decompressor = Decompressor::new(false);
        for message in messages {
            let mut wire = Vec::new();
            compressor.compress(message, true, &mut wire);
            let mut out = Vec::new();
            decompressor
                .decompress(&wire, true, 1 << 20, &mut out, &mut |_| true)
                .unwrap();
            assert_eq!(&out, message);
        }
    }

    #[test]
    fn messages_round_trip_at_every_window_size() {
        let text =
            b"Hello, Hello, Hello! permessage-deflate keeps context across messages.".repeat(20);
        for window in 8..=15 {
            roundtrip(window, &[b"", &text, b"x", &text]);
        }
    }

    #[test]
    fn every_level_round_trips_and_higher_levels_never_grow_the_output() {
        let text = b"{\"user\":\"amber\",\"event\":\"move\",\"x\":12.5,\"y\":-3.25},".repeat(64);
        let mut sizes = Vec::new();
        for level in [0, 1, 6, 9, 200] {
            let mut compressor = Compressor::new(15, false).with_level(level);
            let mut wire = Vec::new();
            compressor.compress(&text, true, &mut wire);
            let mut out = Vec::new();
            Decompressor::new(false)
                .decompress(&wire, true, 1 << 20, &mut out, &mut |_| true)
                .unwrap();
            assert_eq!(out, text, "level {level}");
            sizes.push(wire.len());
        }
        assert!(sizes[0] > text.len(), "level 0 stores: {sizes:?}");
        assert!(sizes[1] < text.len() / 4, "level 1 compresses: {sizes:?}");
        assert!(sizes[2] <= sizes[1] && sizes[3] <= sizes[2], "{sizes:?}");
        assert_eq!(sizes[3], sizes[4], "levels above 9 mean 9");
    }

    #[test]
    fn the_empty_message_compresses_to_one_zero_byte() {
        let mut wire = Vec::new();
        Compressor::new(15, false).compress(b"", true, &mut wire);
        assert_eq!(wire, [0x00]);
    }

    #[test]
    fn empty_messages_and_empty_final_fragments_stay_valid_after_a_flush() {
        let mut compressor = Compressor::new(15, false);
        let mut decompressor = Decompressor::new(false);
        for pieces in [
            &[&b"abc"[..]][..],
            &[b""],
            &[b""],
            &[b"xyz", b""],
            &[b"", b"", b"q"],
        ] {
            let mut wire = Vec::new();
            for (i, piece) in pieces.iter().enumerate() {
                compressor.compress(piece, i + 1 == pieces.len(), &mut wire);
            }
            let mut out = Vec::new();
            decompressor
                .decompress(&wire, true, 100, &mut out, &mut |_| true)
                .unwrap();
            assert_eq!(out, pieces.concat(), "{pieces:?}");
        }
    }

    #[test]
    fn the_rfc_example_inflates() {
        // RFC 7692 section 7.2.3.1: "Hello" compressed.
        let mut out = Vec::new();
        Decompressor::new(false)
            .decompress(
                &[0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00],
                true,
                100,
                &mut out,
                &mut |_| true,
            )
            .unwrap();
        assert_eq!(out, b"Hello");
    }

    #[test]
    fn a_bomb_is_refused_with_bounded_memory() {
        let mut compressor = Compressor::new(15, false);
        let mut wire = Vec::new();
        compressor.compress(&vec![0u8; 8 << 20], true, &mut wire);
        assert!(
            wire.len() < 128 * 1024,
            "8 MiB of zeros compresses small ({} bytes)",
            wire.len()
        );
        let mut out = Vec::new();
        let result =
            Decompressor::new(false).decompress(&wire, true, 1 << 20, &mut out, &mut |_| true);
        assert_eq!(result, Err(InflateError::TooBig { limit: 1 << 20 }));
        assert!(
            out.capacity() <= (1 << 20) + INFLATE_STEP + 1,
            "capacity {}",
            out.capacity()
        );
    }

    #[test]
    fn a_message_ending_the_stream_with_a_final_block_is_accepted_and_the_next_starts_afresh() {
        let mut decompressor = Decompressor::new(false);
        for _ in 0..3 {
            let mut whole = Compress::new(flate2::Compression::default(), false);
            let mut wire = Vec::with_capacity(256);
            whole
                .compress_vec(b"Hello, final block", &mut wire, FlushCompress::Finish)
                .unwrap();
            let mut out = Vec::new();
            decompressor
                .decompress(&wire, true, 1000, &mut out, &mut |_| true)
                .unwrap();
            assert_eq!(out, b"Hello, final block");
        }
    }

    #[test]
    fn output_never_exceeds_the_limit_even_when_refusing() {
        // Found by the `inflate` fuzz target: the byte that detects the overflow was kept;
        // and output written just before corrupt data was kept past the limit.
        for crash in [
            &include_bytes!("testdata/inflate_limit_regression.bin")[..],
            &include_bytes!("testdata/inflate_limit_corrupt_regression.bin")[..],
        ] {
            let limit = 4096;
            let mut decompressor = Decompressor::new(false);
            for piece in crash.split(|&b| b == 0xA5) {
                let mut out = Vec::new();
                let _ = decompressor.decompress(piece, true, limit, &mut out, &mut |_| true);
                assert!(out.len() <= limit, "{} > {limit}", out.len());
            }
        }
    }

    #[test]
    fn corrupt_data_is_an_error() {
        let mut out = Vec::new();
        let result = Decompressor::new(false).decompress(
            &[0xff, 0xff, 0xff],
            true,
            100,
            &mut out,
            &mut |_| true,
        );
        assert_eq!(result, Err(InflateError::Corrupt));
    }

    #[test]
    fn states_given_back_between_messages_compress_as_fresh_ones() {
        let records = [
            b"{\"user\":\"amber\",\"x\":1}".repeat(30),
            b"{\"user\":\"basil\",\"y\":2}".repeat(30),
            Vec::new(),
        ];
        // What a compressor built for each message alone writes.
        let alone = |window: u8, level: u8, message: &[u8]| {
            let mut wire = Vec::new();
            Compressor::new(window, false)
                .with_level(level)
                .compress(message, true, &mut wire);
            wire
        };
        // Two connections without context takeover, with different settings, taking turns
        // on one thread: each message is compressed as if alone, and inflates back on a
        // resetting inflater that also takes its state from the thread.
        let mut small = Compressor::new(9, true).with_level(6);
        let mut large = Compressor::new(15, true);
        let mut inflater = Decompressor::new(true);
        for _ in 0..3 {
            for message in &records {
                for (compressor, window, level) in [(&mut small, 9, 6), (&mut large, 15, 1)] {
                    let mut wire = Vec::new();
                    compressor.compress(message, true, &mut wire);
                    assert_eq!(wire, alone(window, level, message));
                    assert!(compressor.deflate.is_none(), "given back after the message");
                    let mut out = Vec::new();
                    inflater
                        .decompress(&wire, true, 1 << 20, &mut out, &mut |_| true)
                        .unwrap();
                    assert_eq!(&out, message);
                    assert!(inflater.inflate.is_none());
                }
            }
        }
    }
}
