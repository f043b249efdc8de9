//! Deterministic payloads: text of an exact UTF-8 length mixing 1- to 4-byte characters, and
//! pseudo-random bytes.

/// Characters of 1, 2, 3 and 4 UTF-8 bytes, cycled through by [`text`].
const UNITS: [char; 10] = ['a', 'b', 'c', 'é', 'd', '€', 'e', '𝄞', 'f', 'g'];

/// A string of exactly `size` UTF-8 bytes, mostly multibyte-rich (ASCII pads the tail).
pub fn text(size: usize) -> String {
    let mut out = String::with_capacity(size);
    for c in UNITS.iter().cycle() {
        if out.len() == size {
            break;
        }
        if out.len() + c.len_utf8() <= size {
            out.push(*c);
        } else {
            out.push('z');
        }
    }
    out
}

/// `size` pseudo-random bytes (xorshift32 seeded by `seed`).
pub fn bytes(size: usize, seed: u32) -> Vec<u8> {
    let mut state = (0x9E37_79B9 ^ seed).max(1);
    (0..size)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            state as u8
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn text_has_the_exact_length() {
        for size in [0, 1, 2, 3, 4, 5, 125, 126, 127, 65535, 65536] {
            assert_eq!(super::text(size).len(), size);
        }
        assert!(super::text(100).chars().any(|c| c.len_utf8() == 4));
    }
}
