//! A byte buffer that costs one pointer while it holds nothing.
//!
//! A slot keeps one buffer that is empty for nearly all of its life: the part of a request
//! head or of a frame that waits for more bytes, or a refusal not yet written. Inline, a
//! `BytesMut` is 32 bytes in every idle connection; behind an optional box it is 8, and the
//! box exists only while bytes are held.

use std::ops::Deref;

use bytes::{Buf, BytesMut};

/// An optional boxed `BytesMut`: empty (no allocation) or holding bytes.
#[derive(Debug, Default)]
pub(super) struct Held(Option<Box<BytesMut>>);

impl Held {
    /// Whether no byte is held.
    pub(super) fn is_empty(&self) -> bool {
        self.0.as_ref().is_none_or(|buffer| buffer.is_empty())
    }

    /// The buffer to read into or append to, made when there is none.
    pub(super) fn buffer(&mut self) -> &mut BytesMut {
        self.0.get_or_insert_with(Box::default)
    }

    /// Takes the bytes out, leaving nothing held.
    pub(super) fn take(&mut self) -> BytesMut {
        self.0.take().map(|buffer| *buffer).unwrap_or_default()
    }

    /// Holds `bytes`, or nothing (and frees the buffer) when they are empty.
    pub(super) fn put(&mut self, bytes: BytesMut) {
        self.0 = (!bytes.is_empty()).then(|| Box::new(bytes));
    }

    /// Drops the first `n` held bytes (they were written).
    pub(super) fn advance(&mut self, n: usize) {
        if let Some(buffer) = self.0.as_mut() {
            buffer.advance(n);
        }
    }

    /// Frees the buffer.
    pub(super) fn clear(&mut self) {
        self.0 = None;
    }
}

impl Deref for Held {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        self.0.as_deref().map_or(&[], |buffer| &buffer[..])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holds_bytes_only_while_there_are_some() {
        let mut held = Held::default();
        assert!(held.is_empty());
        held.buffer().extend_from_slice(b"abc");
        assert_eq!(&held[..], b"abc");
        held.advance(1);
        assert_eq!(&held[..], b"bc");
        let taken = held.take();
        assert_eq!(&taken[..], b"bc");
        assert!(held.is_empty() && held.0.is_none());
        held.put(BytesMut::new());
        assert!(held.0.is_none());
        held.put(BytesMut::from(&b"x"[..]));
        assert_eq!(&held[..], b"x");
        held.clear();
        assert!(held.0.is_none());
    }

    #[test]
    fn is_one_pointer() {
        assert_eq!(std::mem::size_of::<Held>(), std::mem::size_of::<usize>());
    }
}
