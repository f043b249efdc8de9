//! The hub's limits and timers, with ASP.NET Core SignalR's defaults (`HubOptions`).

use std::time::Duration;

/// Settings of a hub. Every limit a client can reach has a default taken from the reference
/// server (ASP.NET Core `HubOptions` and `HttpConnectionDispatcherOptions`) and can be changed.
#[derive(Debug, Clone)]
pub struct HubOptions {
    /// How long a client has to send its handshake after the transport connected (ASP.NET
    /// Core's `HandshakeTimeout`, 15 seconds).
    pub handshake_timeout: Duration,
    /// A `Ping` is sent when nothing else was sent for this long (`KeepAliveInterval`, 15
    /// seconds); never over long polling, whose poll cycle keeps the connection alive (the
    /// reference's inherent keep-alive).
    pub keep_alive_interval: Duration,
    /// The connection is closed when the client sent nothing at all for this long
    /// (`ClientTimeoutInterval`, 30 seconds). As in the reference, the clock starts with the
    /// client's first `Ping`: a client that never pings is not timed out by the hub.
    pub client_timeout_interval: Duration,
    /// The largest hub message a client may send, in bytes (`MaximumReceiveMessageSize`, 32
    /// KiB); a larger one closes the connection with an error saying so.
    pub maximum_receive_message_size: usize,
    /// How many items of one client-to-server stream are held before the connection stops
    /// reading (`StreamBufferCapacity`, 10).
    pub stream_buffer_capacity: usize,
    /// How many invocations of one client run at once; later ones wait, in order
    /// (`MaximumParallelInvocationsPerClient`, 1).
    pub maximum_parallel_invocations_per_client: usize,
    /// How many bytes of sent messages are kept for replay until the client acknowledges them
    /// with stateful reconnect (`StatefulReconnectBufferSize`, 100,000 bytes).
    pub stateful_reconnect_buffer_size: usize,
    /// How long the server waits for a client's answer to a client-result invocation. The
    /// reference has no default (it waits for a cancellation token); 30 seconds here, the same
    /// as the client timeout, so a client that never answers cannot hold a method for ever.
    pub client_result_timeout: Duration,
    /// How often the server acknowledges the client's messages with stateful reconnect (the
    /// reference's `MessageBuffer` timer, 1 second).
    pub ack_interval: Duration,
    /// How many streams one client may have open at once, server-to-client and
    /// client-to-server together. The reference has no such limit (streams do not count
    /// against `MaximumParallelInvocationsPerClient`); without one a client could start
    /// streams without end. 100 by default; the next one is refused with a `Completion` error.
    pub maximum_streams_per_client: usize,
}

impl Default for HubOptions {
    fn default() -> Self {
        HubOptions {
            handshake_timeout: Duration::from_secs(15),
            keep_alive_interval: Duration::from_secs(15),
            client_timeout_interval: Duration::from_secs(30),
            maximum_receive_message_size: 32 * 1024,
            stream_buffer_capacity: 10,
            maximum_parallel_invocations_per_client: 1,
            stateful_reconnect_buffer_size: 100_000,
            client_result_timeout: Duration::from_secs(30),
            ack_interval: Duration::from_secs(1),
            maximum_streams_per_client: 100,
        }
    }
}

impl HubOptions {
    /// The period of a connection's housekeeping timer: half the shortest of the keep-alive,
    /// client-timeout and (with stateful reconnect) ack intervals, at most 1 second (the
    /// reference's heartbeat) and never busier than every 10 ms.
    pub(crate) fn tick(&self, stateful: bool) -> Duration {
        let mut shortest = self.keep_alive_interval.min(self.client_timeout_interval) / 2;
        if stateful {
            shortest = shortest.min(self.ack_interval / 2);
        }
        shortest
            .min(Duration::from_secs(1))
            .max(Duration::from_millis(10))
    }
}
