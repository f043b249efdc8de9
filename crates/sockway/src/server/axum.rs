//! The axum 0.8 extractor (feature `axum`).
//!
//! ```no_run
//! use axum::response::IntoResponse;
//! use axum::routing::any;
//! use sockway::server::axum::WebSocketUpgrade;
//!
//! async fn handler(ws: WebSocketUpgrade) -> impl IntoResponse {
//!     ws.protocols(["chat"]).on_upgrade(|mut socket| async move {
//!         while let Ok(Some(message)) = socket.recv().await {
//!             if socket.send(message).await.is_err() {
//!                 break;
//!             }
//!         }
//!     })
//! }
//!
//! // `any`, not `get`: HTTP/2 WebSockets arrive as CONNECT (RFC 8441).
//! let app: axum::Router = axum::Router::new().route("/ws", any(handler));
//! ```
//!
//! The handshake is validated when the extractor runs (400, 405, 426 with a body on failure);
//! the per-route options (origins, subprotocols, limits) are applied by
//! [`WebSocketUpgrade::on_upgrade`], which answers 403 for an origin not allowed. The options
//! start from an [`AcceptOptions`] found in the request extensions (add one with
//! `.layer(axum::Extension(options))`), or the defaults, and can be changed per handler.

use std::future::Future;

use ::axum::extract::FromRequestParts;
use ::axum::response::{IntoResponse, Response};
use http::request::Parts;

use super::info::UpgradeInfo;
use super::options::AcceptOptions;
use super::rejection::Rejection;
use super::upgrade::{Handshake, ServerWebSocket};

/// Extractor for a WebSocket request: both HTTP/1.1 `GET` upgrades and HTTP/2 extended
/// `CONNECT`, so route it with `any` (or `on(MethodFilter::GET.or(MethodFilter::CONNECT))`).
#[derive(Debug)]
pub struct WebSocketUpgrade {
    handshake: Handshake,
    options: AcceptOptions,
}

impl<S: Send + Sync> FromRequestParts<S> for WebSocketUpgrade {
    type Rejection = Rejection;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Rejection> {
        let handshake = Handshake::from_parts(parts)?;
        let options = parts
            .extensions
            .get::<AcceptOptions>()
            .cloned()
            .unwrap_or_default();
        Ok(Self { handshake, options })
    }
}

impl IntoResponse for Rejection {
    fn into_response(self) -> Response {
        Rejection::into_response(self).map(::axum::body::Body::new)
    }
}

impl WebSocketUpgrade {
    /// What the client offered and where it came from.
    pub fn info(&self) -> &UpgradeInfo {
        self.handshake.info()
    }

    /// Replaces the options the socket is accepted with.
    pub fn options(mut self, options: AcceptOptions) -> Self {
        self.options = options;
        self
    }

    /// Sets the subprotocols this route speaks, in order of preference (see
    /// [`AcceptOptions::subprotocols`]).
    pub fn protocols<I, P>(mut self, names: I) -> Self
    where
        I: IntoIterator<Item = P>,
        P: Into<String>,
    {
        self.options = self.options.subprotocols(names);
        self
    }

    /// Allows only these origins (see [`AcceptOptions::allowed_origins`]).
    pub fn allowed_origins<I, P>(mut self, origins: I) -> Self
    where
        I: IntoIterator<Item = P>,
        P: AsRef<str>,
    {
        self.options = self.options.allowed_origins(origins);
        self
    }

    /// Sets the largest message accepted (see [`AcceptOptions::max_message_size`]).
    pub fn max_message_size(mut self, bytes: usize) -> Self {
        self.options = self.options.max_message_size(bytes);
        self
    }

    /// Accepts the socket and runs `callback` with it in a new task once the handshake
    /// response has gone out; returns that response (101, or 200 for HTTP/2), or the refusal
    /// (403 for an origin not allowed) without calling `callback`.
    pub fn on_upgrade<F, Fut>(self, callback: F) -> Response
    where
        F: FnOnce(ServerWebSocket) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        match self.handshake.accept(&self.options) {
            Ok((response, pending)) => {
                // As in `WebSocketLayer`: the callback gets a task of its own, which then
                // holds only its future.
                tokio::spawn(async move {
                    match pending.await {
                        Ok(socket) => {
                            tokio::spawn(callback(socket));
                        }
                        Err(error) => {
                            tracing::debug!(%error, "WebSocket upgrade did not complete")
                        }
                    }
                });
                response.map(::axum::body::Body::new)
            }
            Err(rejection) => rejection.into_response().map(::axum::body::Body::new),
        }
    }
}
