//! One read buffer per worker thread for the relay, instead of one per direction of every
//! session.
//!
//! A relayed direction reads into this buffer and writes what it read to the other side in
//! the same poll; only bytes the destination does not take at once are copied into a buffer
//! of the direction's own, which is freed once written. An idle session therefore holds no
//! relay buffer at all (uWebSockets keeps one shared receive buffer per event-loop thread
//! for the same reason; nginx, by contrast, keeps `proxy_buffer_size` per upgraded side).
//! The buffer is only borrowed within one poll, never across an `.await`.

use std::cell::RefCell;

thread_local! {
    static SCRATCH: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// Runs `f` with this thread's buffer, at least `len` bytes long (grown to the largest
/// `relayBufferBytes` asked for). Should it already be in use (a nested call, which the relay
/// never makes), `f` gets a buffer of its own instead.
pub fn with<R>(len: usize, f: impl FnOnce(&mut [u8]) -> R) -> R {
    SCRATCH.with(|cell| match cell.try_borrow_mut() {
        Ok(mut buf) => {
            if buf.len() < len {
                buf.resize(len, 0);
            }
            f(&mut buf[..len])
        }
        Err(_) => f(&mut vec![0u8; len]),
    })
}

#[cfg(test)]
mod tests {
    use super::with;

    #[test]
    fn gives_at_least_the_length_asked_and_keeps_the_largest() {
        with(16, |b| {
            assert_eq!(b.len(), 16);
            b[0] = 7;
        });
        with(64, |b| assert_eq!(b.len(), 64));
        with(8, |b| assert_eq!(b.len(), 8));
    }

    #[test]
    fn a_nested_call_gets_a_buffer_of_its_own() {
        with(4, |outer| {
            outer.fill(1);
            with(4, |inner| {
                assert_eq!(inner, &[0, 0, 0, 0]);
                inner.fill(2);
            });
            assert_eq!(outer, &[1, 1, 1, 1]);
        });
    }
}
