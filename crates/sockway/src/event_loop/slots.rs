//! [`Slots`]: a worker's connections by key, one pointer per entry.
//!
//! The general-purpose `slab::Slab<Box<T>>` keeps a 16-byte entry per key (an enum of the
//! value or the next free key), which with its doubling growth is some 26 bytes per idle
//! connection. Here an entry is an `Option<Box<T>>`, 8 bytes (the box's null pointer is the
//! `None`), and the free keys wait in a stack of their own, which only holds keys freed and
//! not reused yet. Keys are reused last-freed first, as the slab does. The entries grow by a
//! quarter at a time, not by doubling: with 10,000 connections doubling leaves up to 6,384
//! entries (5 bytes per connection) unused.

/// Boxed values by key; a key stays valid until its value is removed.
#[derive(Debug)]
pub(super) struct Slots<T> {
    entries: Vec<Option<Box<T>>>,
    /// Keys of vacant entries, the most recently freed last.
    free: Vec<u32>,
    len: usize,
}

impl<T> Default for Slots<T> {
    fn default() -> Self {
        Self {
            entries: Vec::new(),
            free: Vec::new(),
            len: 0,
        }
    }
}

impl<T> Slots<T> {
    /// Whether no value is held.
    pub(super) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The key the next [`Slots::insert`] uses; `None` when every `u32` key is taken.
    pub(super) fn next_key(&self) -> Option<u32> {
        match self.free.last() {
            Some(&key) => Some(key),
            None => u32::try_from(self.entries.len()).ok(),
        }
    }

    /// Stores `value` under [`Slots::next_key`] and returns that key; `None` (and `value`
    /// dropped) when there is no key left.
    pub(super) fn insert(&mut self, value: Box<T>) -> Option<u32> {
        let key = match self.free.pop() {
            Some(key) => {
                self.entries[key as usize] = Some(value);
                key
            }
            None => {
                let key = u32::try_from(self.entries.len()).ok()?;
                if self.entries.len() == self.entries.capacity() {
                    // A quarter more at a time rather than double: at most a fifth of the
                    // entries stand empty, a pointer each, after a burst of connections.
                    let more = (self.entries.len() / 4).max(64);
                    self.entries.reserve_exact(more);
                }
                self.entries.push(Some(value));
                key
            }
        };
        self.len += 1;
        Some(key)
    }

    /// The value under `key`, if there is one.
    #[inline]
    pub(super) fn get_mut(&mut self, key: usize) -> Option<&mut T> {
        self.entries.get_mut(key)?.as_deref_mut()
    }

    /// Removes and returns the value under `key`, if there is one. When the last value goes,
    /// room beyond 1,024 entries is freed, so a burst of connections is not kept for good.
    pub(super) fn remove(&mut self, key: usize) -> Option<Box<T>> {
        let value = self.entries.get_mut(key)?.take()?;
        self.len -= 1;
        if self.len == 0 {
            self.entries.clear();
            self.free.clear();
            if self.entries.capacity() > 1024 {
                self.entries.shrink_to_fit();
                self.free.shrink_to_fit();
            }
        } else {
            // `key` came from `insert`, so it fits in a `u32`.
            self.free.push(key as u32);
        }
        Some(value)
    }

    /// Every key with its value, in key order.
    pub(super) fn iter_mut(&mut self) -> impl Iterator<Item = (usize, &mut T)> {
        self.entries
            .iter_mut()
            .enumerate()
            .filter_map(|(key, entry)| Some((key, entry.as_deref_mut()?)))
    }

    /// Every key in use, in order.
    pub(super) fn keys(&self) -> Vec<usize> {
        self.entries
            .iter()
            .enumerate()
            .filter_map(|(key, entry)| entry.as_ref().map(|_| key))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reuses_freed_keys_and_forgets_removed_values() {
        let mut slots = Slots::default();
        assert_eq!(slots.next_key(), Some(0));
        let a = slots.insert(Box::new('a')).unwrap();
        let b = slots.insert(Box::new('b')).unwrap();
        let c = slots.insert(Box::new('c')).unwrap();
        assert_eq!((a, b, c, slots.len), (0, 1, 2, 3));
        assert_eq!(slots.remove(1).as_deref(), Some(&'b'));
        assert_eq!(slots.remove(1), None);
        assert_eq!(slots.get_mut(1), None);
        assert_eq!(slots.next_key(), Some(1));
        assert_eq!(slots.insert(Box::new('d')), Some(1));
        assert_eq!(slots.get_mut(1).copied(), Some('d'));
        let seen: Vec<(usize, char)> = slots.iter_mut().map(|(k, v)| (k, *v)).collect();
        assert_eq!(seen, [(0, 'a'), (1, 'd'), (2, 'c')]);
        assert_eq!(slots.keys(), [0, 1, 2]);
        assert_eq!(slots.get_mut(7), None);
        assert_eq!(slots.remove(7), None);
    }

    #[test]
    fn starts_over_once_empty() {
        let mut slots = Slots::default();
        for n in 0..2000 {
            slots.insert(Box::new(n)).unwrap();
        }
        for key in (0..2000).rev() {
            assert!(slots.remove(key).is_some());
        }
        assert!(slots.is_empty());
        assert_eq!(slots.next_key(), Some(0));
        assert!(slots.entries.capacity() <= 1024);
    }

    #[test]
    fn an_entry_is_one_pointer() {
        assert_eq!(
            std::mem::size_of::<Option<Box<[u8; 300]>>>(),
            std::mem::size_of::<usize>()
        );
    }
}
