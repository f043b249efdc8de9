//! A ring's pool of receive buffers: the kernel picks one when data arrives (a
//! provided-buffer ring, `IORING_REGISTER_PBUF_RING`, Linux 5.19), so an idle session holds
//! none; the loop gives it back once its bytes are written.

use std::alloc::Layout;
use std::io;
use std::sync::atomic::{AtomicU16, Ordering};

use io_uring::types::BufRingEntry;
use io_uring::IoUring;

/// Buffers in a ring's pool: 64 × 16 KiB (the default `relayBufferBytes`) is 1 MiB per
/// ring, touched only as far as reads need it.
pub(super) const POOL: u16 = 64;
/// The pool's buffer group id.
pub(super) const GROUP: u16 = 0;

/// The ring's provided buffers: `POOL` buffers of `size` bytes and the ring of entries the
/// kernel takes them from (`IORING_REGISTER_PBUF_RING`).
pub(super) struct Pool {
    entries: *mut BufRingEntry,
    memory: *mut u8,
    pub(super) size: usize,
    tail: u16,
}

impl Pool {
    fn ring_layout() -> Layout {
        // Page-aligned, as io_uring_register_buf_ring(3) asks.
        Layout::from_size_align(usize::from(POOL) * size_of::<BufRingEntry>(), 4096)
            .unwrap_or_else(|_| Layout::new::<u8>())
    }

    fn memory_layout(size: usize) -> Layout {
        Layout::from_size_align(usize::from(POOL) * size, 4096)
            .unwrap_or_else(|_| Layout::new::<u8>())
    }

    pub(super) fn new(uring: &IoUring, size: usize) -> io::Result<Self> {
        // SAFETY: both layouts have a non-zero size; the memory is freed in `drop`.
        let (entries, memory) = unsafe {
            (
                std::alloc::alloc_zeroed(Self::ring_layout()).cast::<BufRingEntry>(),
                std::alloc::alloc_zeroed(Self::memory_layout(size)),
            )
        };
        if entries.is_null() || memory.is_null() {
            return Err(io::Error::from(io::ErrorKind::OutOfMemory));
        }
        let mut pool = Self {
            entries,
            memory,
            size,
            tail: 0,
        };
        // SAFETY: the entries stay valid until the ring is dropped (the pool is dropped
        // after it, see `Ring`'s field order).
        unsafe {
            uring
                .submitter()
                .register_buf_ring_with_flags(entries as u64, POOL, GROUP, 0)?;
        }
        for bid in 0..POOL {
            pool.give(bid);
        }
        Ok(pool)
    }

    /// The first `len` bytes of buffer `bid` (which the kernel filled and handed over).
    pub(super) fn bytes(&self, bid: u16, len: usize) -> &[u8] {
        let bid = usize::from(bid % POOL);
        // SAFETY: the buffer lies inside `memory`; the kernel does not write to it until it
        // is given back.
        unsafe { std::slice::from_raw_parts(self.memory.add(bid * self.size), len.min(self.size)) }
    }

    /// Puts buffer `bid` back in the ring for the kernel to fill.
    pub(super) fn give(&mut self, bid: u16) {
        let bid = bid % POOL;
        let index = usize::from(self.tail % POOL);
        // SAFETY: `index` is inside the entries; the tail is published after the entry is
        // written, with release ordering, as the kernel reads it with acquire.
        unsafe {
            let entry = &mut *self.entries.add(index);
            entry.set_addr(self.memory.add(usize::from(bid) * self.size) as u64);
            entry.set_len(self.size as u32);
            entry.set_bid(bid);
            self.tail = self.tail.wrapping_add(1);
            let tail = BufRingEntry::tail(self.entries).cast::<AtomicU16>();
            (*tail).store(self.tail, Ordering::Release);
        }
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with these layouts.
        unsafe {
            std::alloc::dealloc(self.entries.cast(), Self::ring_layout());
            std::alloc::dealloc(self.memory, Self::memory_layout(self.size));
        }
    }
}
