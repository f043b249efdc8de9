//! [`HeadLimits`]: how large an HTTP/1.1 head may be before the opening handshake is refused.
//! One type with one set of defaults for every side that reads a head (the async server's
//! runner, the event-loop server, the client and the gateway), so their limits cannot drift.

/// Bounds on an HTTP/1.1 message head (start line, header fields, empty line).
///
/// | setting | default | why |
/// |---|---|---|
/// | [`max_bytes`](Self::max_bytes) | 32 KiB | bounds the memory of a head; the size ASP.NET Core's Kestrel server allows by default; larger request heads get 431 (RFC 6585 section 5) |
/// | [`max_fields`](Self::max_fields) | 100 | hyper's own default; more request header fields get 431 |
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeadLimits {
    /// Most bytes the head may take, empty line included.
    pub max_bytes: usize,
    /// Most header fields it may have.
    pub max_fields: usize,
}

impl HeadLimits {
    /// The defaults (32 KiB, 100 fields), usable in constants: the gateway sizes its parser's
    /// field array with them.
    pub const DEFAULT: HeadLimits = HeadLimits {
        max_bytes: 32 * 1024,
        max_fields: 100,
    };
    /// The least [`max_bytes`](Self::max_bytes) the setter allows: a browser's handshake
    /// alone takes several hundred bytes.
    pub const MIN_BYTES: usize = 1024;
    /// The least [`max_fields`](Self::max_fields) the setter allows: a WebSocket handshake
    /// needs `Host`, `Upgrade`, `Connection`, `Sec-WebSocket-Key` and `-Version` at least.
    pub const MIN_FIELDS: usize = 8;

    /// Sets [`HeadLimits::max_bytes`] (at least [`HeadLimits::MIN_BYTES`]).
    pub fn max_bytes(mut self, bytes: usize) -> Self {
        self.max_bytes = bytes.max(Self::MIN_BYTES);
        self
    }

    /// Sets [`HeadLimits::max_fields`] (at least [`HeadLimits::MIN_FIELDS`]).
    pub fn max_fields(mut self, fields: usize) -> Self {
        self.max_fields = fields.max(Self::MIN_FIELDS);
        self
    }
}

impl Default for HeadLimits {
    fn default() -> Self {
        Self::DEFAULT
    }
}
