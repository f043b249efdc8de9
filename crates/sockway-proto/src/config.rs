//! Limits and switches of the protocol state machine.

/// Settings for a [`crate::Connection`]. Every limit has a default and can be changed.
///
/// The defaults are those of a careful server that still serves ordinary applications:
/// 16 MiB for a message is far above what chat, telemetry or RPC payloads need while keeping a
/// hostile peer's worst case per connection bounded (and it is what the Autobahn TestSuite's
/// largest cases, 9.x, send). Memory is only ever taken for bytes that actually arrive, never
/// for a length a header merely announces, so the limit caps growth without reserving it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// The largest frame payload accepted; a larger frame fails the connection with 1009
    /// (RFC 6455 section 7.4.1) as soon as its header arrives. Default 16 MiB.
    pub max_frame_size: usize,
    /// The largest message accepted, summed over its fragments (and, with compression, after
    /// inflating); a larger one fails the connection with 1009 as soon as it is known to be
    /// too big. Default 16 MiB.
    pub max_message_size: usize,
}

/// 16 MiB: the default for both [`Config::max_frame_size`] and [`Config::max_message_size`].
pub const DEFAULT_MAX_MESSAGE_SIZE: usize = 16 << 20;

impl Default for Config {
    fn default() -> Self {
        Self {
            max_frame_size: DEFAULT_MAX_MESSAGE_SIZE,
            max_message_size: DEFAULT_MAX_MESSAGE_SIZE,
        }
    }
}

impl Config {
    /// Sets [`Config::max_frame_size`].
    pub fn max_frame_size(mut self, bytes: usize) -> Self {
        self.max_frame_size = bytes;
        self
    }

    /// Sets [`Config::max_message_size`].
    pub fn max_message_size(mut self, bytes: usize) -> Self {
        self.max_message_size = bytes;
        self
    }
}
