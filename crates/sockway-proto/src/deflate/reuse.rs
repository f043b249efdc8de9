//! zlib states kept per thread for the connections that start every message afresh.
//!
//! Without context takeover (RFC 7692 section 7.1.1) a compressor or inflater holds nothing
//! between messages, so an idle connection need not keep zlib's state (a compressor's is
//! about 256 KiB with a 15-bit window). Building that state for each message and freeing it
//! after costs more than the compression of a small message itself; resetting one that is
//! already built costs a fraction of it. So a message's state is taken from a few kept by
//! the thread, reset after the message and given back: per thread, not per connection, in
//! the way of uWebSockets' shared compressor. A thread keeps at most [`KEPT`] of each kind
//! (about 0.6 MiB at most with 15-bit windows), so the memory grows with the threads that
//! compress (a server's few workers), not with the connections, and goes when the thread
//! ends.

use std::cell::RefCell;

use flate2::{Compress, Compression, Decompress};

/// How many states of each kind (compressor, inflater) one thread keeps.
const KEPT: usize = 2;

/// A compressor's state with the settings it was built with.
struct Deflater {
    window_bits: u8,
    level: u8,
    state: Compress,
}

thread_local! {
    static DEFLATERS: RefCell<Vec<Deflater>> = const { RefCell::new(Vec::new()) };
    static INFLATERS: RefCell<Vec<Decompress>> = const { RefCell::new(Vec::new()) };
}

/// A raw-deflate compressor with this window and level, reset: one the thread kept, or a new
/// one.
pub(super) fn take_deflater(window_bits: u8, level: u8) -> Compress {
    let kept = DEFLATERS
        .try_with(|kept| {
            let mut kept = kept.borrow_mut();
            let found = kept
                .iter()
                .position(|d| d.window_bits == window_bits && d.level == level)?;
            Some(kept.swap_remove(found).state)
        })
        .ok()
        .flatten();
    kept.unwrap_or_else(|| {
        Compress::new_with_window_bits(Compression::new(u32::from(level)), false, window_bits)
    })
}

/// Gives back a compressor taken with [`take_deflater`] once its message is done; it is
/// reset and kept if the thread has room, dropped otherwise.
pub(super) fn give_deflater(window_bits: u8, level: u8, mut state: Compress) {
    state.reset();
    let _ = DEFLATERS.try_with(|kept| {
        let mut kept = kept.borrow_mut();
        if kept.len() < KEPT {
            kept.push(Deflater {
                window_bits,
                level,
                state,
            });
        }
    });
}

/// A raw-deflate inflater with a 32 KiB window (which decodes any smaller one), reset.
pub(super) fn take_inflater() -> Decompress {
    INFLATERS
        .try_with(|kept| kept.borrow_mut().pop())
        .ok()
        .flatten()
        .unwrap_or_else(|| Decompress::new_with_window_bits(false, 15))
}

/// Gives back an inflater whose message is done; reset and kept if the thread has room.
pub(super) fn give_inflater(mut state: Decompress) {
    state.reset(false);
    let _ = INFLATERS.try_with(|kept| {
        let mut kept = kept.borrow_mut();
        if kept.len() < KEPT {
            kept.push(state);
        }
    });
}
