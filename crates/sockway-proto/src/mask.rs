//! Masking (RFC 6455 section 5.3). Placeholder: a helper fills this in.

/// XORs `buf` with `key`, as if `buf` started `offset` bytes into the masked payload.
pub fn apply_mask(buf: &mut [u8], key: [u8; 4], offset: usize) {
    for (i, b) in buf.iter_mut().enumerate() {
        *b ^= key[(offset + i) & 3];
    }
}
