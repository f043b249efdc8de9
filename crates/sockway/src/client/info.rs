//! [`ConnectionInfo`]: what is known about a client connection once it is established (the Windows
//! Runtime sockets' `Information`: local address, negotiated protocol, server certificate). Live
//! counters (bytes and messages) come from the socket's `stats()`.

use std::net::SocketAddr;
use std::time::Duration;

use http::{HeaderMap, StatusCode, Version};
use sockway_proto::handshake::ExtensionOffer;

/// Read-only facts about an established client connection.
#[derive(Debug, Clone)]
pub struct ConnectionInfo {
    /// The URL connected to, as given.
    pub url: String,
    /// This end's address.
    pub local_addr: SocketAddr,
    /// The server's address (the one that won the address race).
    pub remote_addr: SocketAddr,
    /// How many addresses the name resolved to, after the `max_addresses` cut.
    pub addresses: usize,
    /// The subprotocol the server selected, if any (RFC 6455 section 4.1 item 10).
    pub subprotocol: Option<String>,
    /// The extensions the server accepted (permessage-deflate, when offered and agreed).
    pub extensions: Vec<ExtensionOffer>,
    /// The handshake response's status: 101 over HTTP/1.1, 200 over HTTP/2 (RFC 8441
    /// section 5).
    pub status: StatusCode,
    /// The handshake response's headers.
    pub headers: HeaderMap,
    /// Whether the connection is TLS (`wss://`).
    pub secure: bool,
    /// The server's certificate chain, DER-encoded, end entity first; empty for `ws://`.
    pub peer_certificates: Vec<Vec<u8>>,
    /// Time from the start of the connect call to the end of the handshake.
    pub connect_duration: Duration,
    /// The HTTP version the socket runs over: `HTTP/1.1` (an upgraded connection of its own)
    /// or `HTTP/2` (a stream of a shared connection, RFC 8441); see
    /// [`super::ClientBuilder::http_version`].
    pub http_version: Version,
}
