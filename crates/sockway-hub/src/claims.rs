//! A fleet-wide record of the connections that have started (issue #17, no sticky sessions).
//!
//! With [`HttpOptions::adopt_signed_tokens`](crate::HttpOptions::adopt_signed_tokens) a
//! server starts a WebSocket whose signed token another server of the fleet issued: the
//! negotiate went to one server, the socket to another. A stateful-reconnect client whose
//! server died sends the very same request when it reconnects its transport, and a server that
//! adopted it would start a new connection the client does not know about: the client waits
//! for a `Sequence` message that never comes and ignores everything else (the JavaScript
//! client's `MessageBuffer`), so it hangs, connected and deaf. ASP.NET Core answers such a
//! request with 404, which makes the client start over (negotiate, a new connection,
//! `onreconnected`). [`ConnectionClaims`] lets a server tell the two apart: every WebSocket
//! start claims the connection id once for the whole fleet, and a server adopts a token only
//! when its claim is the first one.

use std::time::Duration;

use futures_util::future::BoxFuture;

/// Records, once for the whole fleet, that a connection has started on some server.
pub trait ConnectionClaims: Send + Sync + 'static {
    /// Claims `connection_id` for `ttl` (the token's remaining lifetime): `Ok(true)` when no
    /// server had claimed it, `Ok(false)` when one had, `Err` with a reason when the record
    /// cannot be reached.
    fn claim(&self, connection_id: &str, ttl: Duration) -> BoxFuture<'_, Result<bool, String>>;
}
