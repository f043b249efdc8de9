//! Opening a sockway client connection for the suites, through the library's own connector
//! ([`sockway::client::ClientBuilder`]): URL parsing, TCP connect and the HTTP/1.1 upgrade are
//! the code under test too.

use std::net::SocketAddr;

use sockway::client::{ClientBuilder, ClientStream};
use sockway::{WebSocket, WebSocketConfig};

/// The socket type the suites' clients use.
pub type ClientSocket = WebSocket<ClientStream>;

/// Connects a sockway client to `ws://{addr}{path}` with `config`.
pub async fn connect(
    addr: SocketAddr,
    path: &str,
    config: WebSocketConfig,
) -> Result<ClientSocket, String> {
    let url = format!("ws://{addr}{path}");
    ClientBuilder::new(url.as_str())
        .websocket_config(config)
        .connect()
        .await
        .map(|(socket, _info)| socket)
        .map_err(|e| format!("connect {url}: {e}"))
}
