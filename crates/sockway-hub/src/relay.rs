//! No sticky sessions for Server-Sent Events and long polling: a `POST`, a poll or a
//! `DELETE` that reaches a server of a fleet which does not hold its connection is handed to
//! the server that does, and that server's answer goes back to the client unchanged.
//!
//! ASP.NET Core SignalR cannot do this: its scale-out documentation requires sticky sessions
//! for every transport but WebSockets with negotiation skipped, because a connection's HTTP
//! requests must all reach the server that holds it. Here the request travels instead:
//!
//! - the first request of a transport (the event stream's `GET`, the first poll) starts the
//!   connection on the server it reaches, adopting a token a sibling signed (as WebSockets
//!   do with [`HttpOptions::adopt_signed_tokens`](crate::HttpOptions::adopt_signed_tokens));
//!   that server hears the connection's backplane channel before the client can send more;
//! - every later `POST`, poll or `DELETE` that finds no started connection here goes through
//!   a [`Relay`] (the backplane's [`ScaleOutLifetimeManager`](crate::backplane::ScaleOutLifetimeManager))
//!   to the server that holds it; when no server does, it is answered here as usual.
//!
//! The event stream thus lives where its `GET` landed instead of being relayed chunk by
//! chunk from the server that negotiated it: `docs/hub-scaleout.md` says why.

use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use serde::{Deserialize, Serialize};

/// Which request of `TransportProtocols.md` is relayed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RelayedKind {
    /// `POST ?id=`: data from the client (Server-Sent Events and long polling).
    Post,
    /// `GET ?id=`: a long poll.
    Poll,
    /// `DELETE ?id=`: a long-polling client ending its connection.
    Delete,
}

/// A request handed to the server that holds its connection.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RelayedRequest {
    /// The connection token of the request's `?id=`, already checked against the fleet's key.
    pub token: String,
    /// What the request is.
    pub kind: RelayedKind,
    /// The body of a `POST`, read whole up to the receive limit; empty otherwise.
    #[serde(with = "serde_bytes")]
    pub body: Vec<u8>,
}

/// The holding server's answer, as its client gets it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RelayedResponse {
    /// The HTTP status code.
    pub status: u16,
    /// The `Content-Type`, if any.
    pub content_type: Option<String>,
    /// The body.
    #[serde(with = "serde_bytes")]
    pub body: Vec<u8>,
}

/// How a relayed request went.
#[derive(Debug, Clone)]
pub enum Relayed {
    /// The server holding the connection answered.
    Answered(RelayedResponse),
    /// No server holds the connection: the request is answered here.
    NotHeld,
    /// The connection ran on this server and has ended: the request is answered here (404),
    /// without starting it again.
    Ended,
    /// The request could not be handed over (the backplane is down or the holder did not
    /// answer in time): the client gets 503 with this reason.
    Failed(String),
}

/// What a server runs for requests relayed to it.
pub type RelayHandler =
    Arc<dyn Fn(RelayedRequest) -> BoxFuture<'static, RelayedResponse> + Send + Sync>;

/// Hands HTTP requests to the server of a fleet that holds their connection.
pub trait Relay: Send + Sync + 'static {
    /// Sends `request` to the server holding `connection_id` and waits for its answer: `wait`
    /// (the time the holder may take on purpose, a long poll's timeout) plus the relay's own
    /// timeout.
    fn forward(
        &self,
        connection_id: String,
        request: RelayedRequest,
        wait: Duration,
    ) -> BoxFuture<'_, Relayed>;

    /// Makes this server the one that hears requests for `connection_id` from now on; it
    /// resolves once the engine confirmed it, before the client learns that the connection
    /// started here.
    fn hold(&self, connection_id: String) -> BoxFuture<'_, ()>;

    /// Ends [`hold`](Self::hold) once the connection is gone from this server; an
    /// implementation may go on hearing it a while, so that a late request of its client
    /// gets this server's 404 rather than starting the connection afresh elsewhere.
    fn release(&self, connection_id: String) -> BoxFuture<'_, ()>;

    /// Runs `handler` for every request relayed to this server (the last one set wins).
    fn serve(&self, handler: RelayHandler);
}
