//! Settings of an established WebSocket, shared by the server and client roles.

use std::time::Duration;

/// Keep-alive settings; the rule itself (when to ping, when to give up) is the core's
/// ([`sockway_proto::connection::KeepAlive`]).
pub use sockway_proto::connection::KeepAlive;

/// Settings for a [`crate::WebSocket`]. Every limit has a default and a setter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebSocketConfig {
    /// Protocol limits (max frame and message size).
    pub protocol: sockway_proto::Config,
    /// How many bytes a read into the receive buffer asks for at first (ASP.NET Core's
    /// `ReceiveBufferSize`); default 4 KiB. While reads fill all the room they were given, the
    /// socket doubles the read size up to 64 KiB (or this value, if larger), so big messages
    /// take few reads. An idle socket holds no receive buffer at all: the first read after a
    /// wait lands in stack space (this size up to 4 KiB, or 32 KiB while messages are larger
    /// than that), and only the bytes that arrived are kept.
    pub read_buffer_size: usize,
    /// How many unsent bytes may queue before a send waits for the peer to read; default
    /// 128 KiB. This is the backpressure bound.
    pub write_buffer_limit: usize,
    /// How long to wait for the peer during the closing handshake and TCP close; default 5 s.
    pub close_timeout: Duration,
    /// Keep-alive pings; `None` disables them (the default for the bare socket; the server and
    /// client set their own).
    ///
    /// A peer that vanishes (power loss, a NAT that forgets the mapping) sends no FIN, so TCP
    /// alone never reports it: with keep-alive it is detected within `interval + timeout`
    /// (each to within 10 ms, more with many thousands of sockets). The timing is kept by one
    /// shared timer per tokio runtime, not a timer per socket: a socket joins the timer of the
    /// runtime it first waits in, so it must be waited on inside a tokio runtime (a socket
    /// only ever polled from another executor has no keep-alive), and that runtime must have
    /// its time driver enabled (otherwise the first wait panics, as creating a tokio `Sleep`
    /// would). The quiet interval is counted from that first wait.
    pub keep_alive: Option<KeepAlive>,
    /// The most output-buffer room a socket keeps while it waits for the peer; default 256
    /// bytes. Small messages then reuse one buffer, while a socket that sent a large message
    /// and went quiet does not hold that message's room. 0 frees the buffer whenever
    /// everything queued has been sent: one allocation more per burst of sends, and nothing
    /// held by an idle socket, for servers of many mostly idle connections (the hub's).
    pub idle_output_room: usize,
}

impl Default for WebSocketConfig {
    fn default() -> Self {
        Self {
            protocol: sockway_proto::Config::default(),
            read_buffer_size: 4 * 1024,
            write_buffer_limit: 128 * 1024,
            close_timeout: Duration::from_secs(5),
            keep_alive: None,
            idle_output_room: 256,
        }
    }
}

impl WebSocketConfig {
    /// The servers' defaults, shared by the server runner's routes
    /// ([`AcceptOptions`](crate::server::AcceptOptions)) and the event-loop server: these
    /// defaults with keep-alive on ([`KeepAlive::default`]: ASP.NET Core's
    /// `KeepAliveInterval` default of 2 minutes, then 30 s for the answer).
    pub fn for_server() -> Self {
        Self::default().keep_alive(Some(KeepAlive::default()))
    }

    /// Sets the largest message accepted (close 1009 beyond it), and the largest frame to the
    /// same value, since a message may arrive as one frame. Call
    /// [`WebSocketConfig::max_frame_size`] afterwards for a smaller frame limit.
    pub fn max_message_size(mut self, bytes: usize) -> Self {
        self.protocol.max_message_size = bytes;
        self.protocol.max_frame_size = bytes;
        self
    }

    /// Sets the largest frame accepted.
    pub fn max_frame_size(mut self, bytes: usize) -> Self {
        self.protocol.max_frame_size = bytes;
        self
    }

    /// Sets [`WebSocketConfig::read_buffer_size`] (at least 256 bytes).
    pub fn read_buffer_size(mut self, bytes: usize) -> Self {
        self.read_buffer_size = bytes.max(256);
        self
    }

    /// Sets [`WebSocketConfig::write_buffer_limit`].
    pub fn write_buffer_limit(mut self, bytes: usize) -> Self {
        self.write_buffer_limit = bytes;
        self
    }

    /// Sets [`WebSocketConfig::close_timeout`].
    pub fn close_timeout(mut self, timeout: Duration) -> Self {
        self.close_timeout = timeout;
        self
    }

    /// Sets [`WebSocketConfig::idle_output_room`].
    pub fn idle_output_room(mut self, bytes: usize) -> Self {
        self.idle_output_room = bytes;
        self
    }

    /// Sets [`WebSocketConfig::keep_alive`].
    pub fn keep_alive(mut self, keep_alive: Option<KeepAlive>) -> Self {
        self.keep_alive = keep_alive;
        self
    }
}
