//! What the gateway knows about one client connection: its addresses, TLS, the guard that
//! read its request heads and its slot under the connection limits. Listeners fill it in;
//! the proxy reads it for every request of the connection.

use std::net::SocketAddr;
use std::sync::Arc;

use crate::guard::GuardState;
use crate::slots::ConnectionSlot;

/// What the service knows about the client connection.
#[derive(Debug)]
pub struct ConnInfo {
    /// The client's address.
    pub peer: SocketAddr,
    /// The port it connected to.
    pub local_port: u16,
    /// Whether it came over TLS.
    pub secure: bool,
    /// The server name the client sent in its TLS handshake (SNI, RFC 6066 section 3), which
    /// picked the certificate; `None` on plain connections or without SNI.
    pub sni: Option<String>,
    /// Shared with the connection's [`crate::guard::HeadGuard`].
    pub guard: Arc<GuardState>,
    /// The connection's slot under `limits.maxConnections`; a WebSocket session keeps it
    /// (through this struct) until the relay ends, so sessions count as connections.
    pub permit: ConnectionSlot,
}
