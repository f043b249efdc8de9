//! Accepting WebSockets in a hyper/tower/axum server.
//!
//! [`is_websocket_request`] tells whether a request asks for a WebSocket; [`accept`] checks
//! the handshake against [`AcceptOptions`] and returns the response to send (101 for an
//! HTTP/1.1 upgrade, 200 for an HTTP/2 extended CONNECT, RFC 8441) together with a
//! [`PendingWebSocket`] that resolves to the [`crate::WebSocket`] once the response is out.
//! Any route can do this, for both HTTP versions, with the same code.

mod options;
mod origin;
mod upgrade;

pub use options::AcceptOptions;
pub use origin::OriginPolicy;
pub use upgrade::{
    accept, is_websocket_request, Body, PendingWebSocket, Rejection, ServerStream, ServerWebSocket,
};
