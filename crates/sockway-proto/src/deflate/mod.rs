//! permessage-deflate (RFC 7692): negotiation of its four parameters and the per-message
//! compression that follows.
//!
//! Compression is off unless both ends agree on it in the opening handshake. A server offered
//! several variants takes the first it can honour; one it cannot parse is declined, and if none
//! is acceptable the connection simply stays uncompressed (RFC 7692 section 5). A client fails
//! the handshake on a response it did not ask for (section 5).
//!
//! Window sizes: inflating always uses a 32 KiB window, which decodes any smaller window, so
//! the peer's `*_max_window_bits` only ever limits our *compressor*. zlib cannot compress raw
//! deflate with a 256-byte window (8 bits); with a 512-byte window (9 bits) it never refers
//! further back than 512 - 262 = 250 bytes, so its output is valid for an 8-bit window, and that
//! is what an agreed 8 uses.

mod codec;
mod negotiate;
mod reuse;

pub use codec::{Compressor, Decompressor, InflateError};
pub use negotiate::{
    accept_offer, client_offer, confirm_response, DeflateConfig, DeflateParams, NegotiationError,
    DEFAULT_COMPRESSION_LEVEL,
};

/// The extension's registered name (RFC 7692 section 7).
pub const EXTENSION_NAME: &str = "permessage-deflate";
