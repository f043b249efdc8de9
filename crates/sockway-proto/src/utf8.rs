//! Incremental UTF-8 validation. Placeholder: a helper fills this in.

/// The bytes seen so far can no longer be the start of valid UTF-8.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("invalid UTF-8")]
pub struct InvalidUtf8;

/// Validates UTF-8 fed in arbitrary pieces, failing at the first byte that makes it invalid.
#[derive(Debug, Default, Clone)]
pub struct Utf8Validator {
    pending: Vec<u8>,
}

impl Utf8Validator {
    /// A validator at the start of a text.
    pub fn new() -> Self {
        Self::default()
    }
    /// Feeds the next piece; fails as soon as the text so far cannot be a prefix of valid UTF-8.
    pub fn feed(&mut self, bytes: &[u8]) -> Result<(), InvalidUtf8> {
        self.pending.extend_from_slice(bytes);
        match std::str::from_utf8(&self.pending) {
            Ok(_) => {
                self.pending.clear();
                Ok(())
            }
            Err(e) if e.error_len().is_none() => {
                let valid = e.valid_up_to();
                self.pending.drain(..valid);
                Ok(())
            }
            Err(_) => Err(InvalidUtf8),
        }
    }
    /// Ends the text: fails if it stops inside a code point. Resets the validator.
    pub fn finish(&mut self) -> Result<(), InvalidUtf8> {
        let complete = self.pending.is_empty();
        self.pending.clear();
        if complete {
            Ok(())
        } else {
            Err(InvalidUtf8)
        }
    }
    /// Forgets any partial code point, ready for a new text.
    pub fn reset(&mut self) {
        self.pending.clear();
    }
}
