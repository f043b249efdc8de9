//! The hub's HTTP settings ([`HttpOptions`], with ASP.NET Core's defaults) and what every
//! request of one hub shares (`HubShared`: the settings, the connection store, the hub's
//! handler, the paths). The negotiate endpoint and the transports use it; the tower service
//! that dispatches to them is `crate::endpoint::HubService`.

use std::sync::Arc;
use std::time::Duration;

use futures_util::FutureExt as _;
use http::{Response, StatusCode};
use sockway::server::AcceptOptions;

use crate::auth::{Authenticator, SharedAuthenticator};
use crate::claims::ConnectionClaims;
use crate::connections::{Connection, ConnectionStore, StoreLimits};
use crate::link::{ConnectionHandler, ConnectionInfo, LinkedConnection, TransportKind};
use crate::relay::Relay;
use crate::response::{text, HubBody};
use crate::token::TokenKey;

mod cors;

pub(crate) use cors::CorsPolicy;

/// The HTTP side's settings, with ASP.NET Core's defaults where it has one.
#[derive(Clone)]
pub struct HttpOptions {
    pub(crate) transports: Vec<TransportKind>,
    pub(crate) stateful_reconnect: bool,
    pub(crate) disconnect_timeout: Duration,
    pub(crate) reconnect_grace: Duration,
    pub(crate) poll_timeout: Duration,
    pub(crate) max_poll_bytes: usize,
    pub(crate) post_timeout: Duration,
    pub(crate) close_timeout: Duration,
    pub(crate) max_receive_size: usize,
    pub(crate) outbound_capacity: usize,
    pub(crate) inbound_capacity: usize,
    pub(crate) max_connections: usize,
    pub(crate) token_key: TokenKey,
    pub(crate) token_lifetime: Duration,
    pub(crate) adopt_signed_tokens: bool,
    pub(crate) connection_claims: Option<Arc<dyn ConnectionClaims>>,
    pub(crate) authenticator: Option<SharedAuthenticator>,
    pub(crate) websocket: AcceptOptions,
    pub(crate) cors: CorsPolicy,
    pub(crate) relay: Option<Arc<dyn Relay>>,
}

impl std::fmt::Debug for HttpOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpOptions")
            .field("transports", &self.transports)
            .field("stateful_reconnect", &self.stateful_reconnect)
            .field("disconnect_timeout", &self.disconnect_timeout)
            .field("reconnect_grace", &self.reconnect_grace)
            .field("poll_timeout", &self.poll_timeout)
            .field("max_poll_bytes", &self.max_poll_bytes)
            .field("post_timeout", &self.post_timeout)
            .field("close_timeout", &self.close_timeout)
            .field("max_receive_size", &self.max_receive_size)
            .field("outbound_capacity", &self.outbound_capacity)
            .field("inbound_capacity", &self.inbound_capacity)
            .field("max_connections", &self.max_connections)
            .field("token_lifetime", &self.token_lifetime)
            .field("adopt_signed_tokens", &self.adopt_signed_tokens)
            .field("connection_claims", &self.connection_claims.is_some())
            .field("authenticator", &self.authenticator.is_some())
            .field("allowed_origins", &self.cors.origins())
            .field("relay", &self.relay.is_some())
            .finish_non_exhaustive()
    }
}

impl Default for HttpOptions {
    fn default() -> Self {
        Self {
            transports: vec![
                TransportKind::WebSockets,
                TransportKind::ServerSentEvents,
                TransportKind::LongPolling,
            ],
            stateful_reconnect: false,
            disconnect_timeout: Duration::from_secs(15),
            reconnect_grace: Duration::from_secs(15),
            poll_timeout: Duration::from_secs(90),
            max_poll_bytes: 1024 * 1024,
            post_timeout: Duration::from_secs(30),
            close_timeout: Duration::from_secs(5),
            max_receive_size: 1024 * 1024,
            outbound_capacity: 1024,
            inbound_capacity: 64,
            max_connections: 100_000,
            token_key: TokenKey::random(),
            token_lifetime: Duration::from_secs(24 * 60 * 60),
            adopt_signed_tokens: false,
            connection_claims: None,
            authenticator: None,
            // A hub connection is idle most of its life: its socket keeps no output room
            // between sends (docs/benchmarks/hub.md, "Idle memory").
            websocket: AcceptOptions::default()
                .socket_config(sockway::WebSocketConfig::for_server().idle_output_room(0)),
            cors: CorsPolicy::default(),
            relay: None,
        }
    }
}

impl HttpOptions {
    /// The transports offered, in the order negotiate lists them (all three by default,
    /// like ASP.NET Core's `HttpTransports.All`). A request for another one gets 404.
    pub fn transports(mut self, transports: &[TransportKind]) -> Self {
        self.transports = transports.to_vec();
        self
    }

    /// Allows stateful reconnect for clients that ask (`AllowStatefulReconnects`, off by
    /// default as in ASP.NET Core).
    pub fn stateful_reconnect(mut self, allowed: bool) -> Self {
        self.stateful_reconnect = allowed;
        self
    }

    /// How long a connection with no request attached lives (`DisconnectTimeout`, 15 s):
    /// one that never started a transport, or a long-polling client that stopped polling.
    pub fn disconnect_timeout(mut self, timeout: Duration) -> Self {
        self.disconnect_timeout = timeout;
        self
    }

    /// How long a stateful-reconnect connection waits for a new WebSocket after losing its
    /// socket without a close frame (15 s by default, the reference's disconnect timeout).
    pub fn reconnect_grace(mut self, grace: Duration) -> Self {
        self.reconnect_grace = grace;
        self
    }

    /// How long a poll waits for data before answering 200 with no body (`PollTimeout`, 90 s).
    pub fn poll_timeout(mut self, timeout: Duration) -> Self {
        self.poll_timeout = timeout;
        self
    }

    /// How many bytes of queued frames one poll carries at most (1 MiB; at least one frame):
    /// the rest waits for the next poll. ASP.NET Core drains the whole queue; the bound keeps
    /// a poll relayed through the backplane under its size limit.
    pub fn max_poll_bytes(mut self, bytes: usize) -> Self {
        self.max_poll_bytes = bytes;
        self
    }

    /// How long a client may take to send a POST body (30 s by default); a slower one gets
    /// 408, so it cannot hold the connection's single POST slot for ever.
    pub fn post_timeout(mut self, timeout: Duration) -> Self {
        self.post_timeout = timeout;
        self
    }

    /// The largest WebSocket message or POST body accepted, in bytes (1 MiB by default);
    /// larger POSTs get 413, larger messages close the socket with 1009. One of them may
    /// carry several hub messages: the official clients batch what is queued while a send is
    /// in flight into one message or body. Each hub message is held to the hub's own limit
    /// (`HubOptions::maximum_receive_message_size`, 32 KiB), which answers with a `Close`
    /// that says why, as ASP.NET Core does; this one only bounds the transport's buffer.
    pub fn max_receive_size(mut self, bytes: usize) -> Self {
        self.max_receive_size = bytes;
        self
    }

    /// How many frames the hub may queue for one client (1,024 by default); past that its
    /// sends fail with `OutboundError::Full` and the hub drops the client.
    pub fn outbound_capacity(mut self, frames: usize) -> Self {
        self.outbound_capacity = frames.max(1);
        self
    }

    /// How many received messages or POST bodies may wait for the hub (64 by default) before
    /// the transport stops reading.
    pub fn inbound_capacity(mut self, events: usize) -> Self {
        self.inbound_capacity = events.max(1);
        self
    }

    /// The most connections held at once (100,000 by default); negotiate past it answers
    /// with an error and a WebSocket without `id` gets 503.
    pub fn max_connections(mut self, max: usize) -> Self {
        self.max_connections = max;
        self
    }

    /// The key that signs connection tokens (random per process by default). Give every
    /// server of a fleet the same key so any of them accepts the others' tokens.
    pub fn token_key(mut self, key: TokenKey) -> Self {
        self.token_key = key;
        self
    }

    /// The expiry written into each token (24 h from negotiate). This server finds the
    /// connections it holds by token whatever the expiry; the expiry is for a server that
    /// does not hold the connection (scale-out, issue #17), which can then tell a stale
    /// token from a live one without asking anyone ([`crate::token::verify`] reports it).
    pub fn token_lifetime(mut self, lifetime: Duration) -> Self {
        self.token_lifetime = lifetime;
        self
    }

    /// Lets a WebSocket whose token this server did not issue, but that carries the shared
    /// key's signature and has not expired, start its connection here (off by default: the
    /// transport spec answers an unknown id with 404). For a fleet sharing one
    /// [`token_key`](Self::token_key) behind a balancer without affinity (issue #17):
    /// negotiate on one server, the socket on another. Server-Sent Events and long polling
    /// still need the server that holds the connection.
    pub fn adopt_signed_tokens(mut self, adopt: bool) -> Self {
        self.adopt_signed_tokens = adopt;
        self
    }

    /// The fleet-wide record of started connections (none by default) that
    /// [`adopt_signed_tokens`](Self::adopt_signed_tokens) consults: every WebSocket with a
    /// token claims its connection id there, and a token another server issued is adopted
    /// only when no server had claimed it, so a stateful reconnect after its server died gets
    /// 404 (and the client starts over) instead of a connection it does not know about
    /// ([`crate::claims`]). When the record cannot be reached such a token gets 503.
    pub fn connection_claims(mut self, claims: Arc<dyn ConnectionClaims>) -> Self {
        self.connection_claims = Some(claims);
        self
    }

    /// How long a WebSocket whose connection the hub has closed may take to write what was
    /// queued for it and its `Close` (5 s, ASP.NET Core's `WebSocketOptions.CloseTimeout`);
    /// past it the socket is dropped, so a client that stopped reading cannot hold the
    /// connection's socket and queue for ever.
    pub fn close_timeout(mut self, timeout: Duration) -> Self {
        self.close_timeout = timeout;
        self
    }

    /// Hands `POST`s, polls and `DELETE`s for connections another server of the fleet holds
    /// to that server (none by default): with it and
    /// [`adopt_signed_tokens`](Self::adopt_signed_tokens), Server-Sent Events and long
    /// polling need no sticky sessions either ([`crate::relay`]). The hub service answers the
    /// requests the relay brings to this server.
    pub fn relay(mut self, relay: Arc<dyn Relay>) -> Self {
        self.relay = Some(relay);
        self
    }

    /// Resolves each request's bearer token to a user; a refusal answers 401 on negotiate
    /// and on every transport request.
    pub fn authenticator(mut self, authenticator: impl Authenticator) -> Self {
        self.authenticator = Some(Arc::new(authenticator));
        self
    }

    /// The WebSocket handshake options (allowed origins, keep-alive, compression). The
    /// message size limit is [`max_receive_size`](Self::max_receive_size)'s. The default's
    /// sockets keep no output buffer while idle
    /// ([`WebSocketConfig::idle_output_room`](sockway::WebSocketConfig::idle_output_room) 0).
    pub fn websocket(mut self, options: AcceptOptions) -> Self {
        self.websocket = options;
        self
    }

    /// The origins whose pages may call the hub cross-origin (none by default: no CORS
    /// headers, same-origin only), as ASP.NET Core's CORS policy `WithOrigins(...)
    /// .AllowAnyHeader().WithMethods("GET", "POST").AllowCredentials()` that the SignalR docs
    /// configure for the JavaScript client. Matched on scheme, host and port, ignoring case.
    /// Requests from them get `Access-Control-Allow-Origin` and
    /// `Access-Control-Allow-Credentials: true`; preflights get 204 with the route's methods
    /// and the headers the clients send (a preflight from another origin gets 403). With a
    /// list, WebSocket handshakes are held to it too (plus the server's own origin, taken from
    /// `Host`), through [`AcceptOptions::allowed_origins`]: others get 403.
    pub fn allowed_origins<I, S>(mut self, origins: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        self.cors = CorsPolicy::new(origins);
        self
    }

    pub(crate) fn limits(&self) -> StoreLimits {
        StoreLimits {
            disconnect_timeout: self.disconnect_timeout,
            reconnect_grace: self.reconnect_grace,
            max_connections: self.max_connections,
            outbound_capacity: self.outbound_capacity,
            inbound_capacity: self.inbound_capacity,
        }
    }
}

/// What every request of one hub shares.
pub(crate) struct HubShared {
    pub options: HttpOptions,
    pub store: ConnectionStore,
    pub(crate) handler: Arc<dyn ConnectionHandler>,
    pub(crate) path: String,
    pub(crate) negotiate_path: String,
    /// The WebSocket transport's socket settings ([`HttpOptions::websocket`] with the message
    /// limit of [`HttpOptions::max_receive_size`]), made once and shared by every socket: a
    /// copy per socket would cost each connection about 100 bytes.
    pub(crate) socket_config: Arc<sockway::WebSocketConfig>,
}

impl HubShared {
    /// Hands the connection to the hub in a task of its own if no transport has yet; `false`
    /// when the hub already runs it (a new poll, or a WebSocket reconnecting).
    pub fn start(&self, connection: &Arc<Connection>, info: ConnectionInfo) -> bool {
        match self.hub_run(connection, info) {
            Some(run) => {
                tokio::spawn(run);
                true
            }
            None => false,
        }
    }

    /// The hub's run of the connection, for the caller to drive, if no transport has started
    /// it yet: a WebSocket without stateful reconnect, whose connection ends with its socket,
    /// runs it inside its own task, which spares each connection a task and its header
    /// (docs/benchmarks/hub.md, "Idle memory"). It ends with the store told that the hub is done.
    pub fn hub_run(
        &self,
        connection: &Arc<Connection>,
        info: ConnectionInfo,
    ) -> Option<impl std::future::Future<Output = ()> + Send + 'static> {
        let (inbound, outbound) = connection.take_link()?;
        let run = self.handler.run(LinkedConnection {
            info,
            inbound,
            outbound,
        });
        let store = self.store.clone();
        let connection = connection.clone();
        Some(async move {
            // A handler that panics still ends its connection instead of leaving the client
            // attached to nothing.
            if std::panic::AssertUnwindSafe(run)
                .catch_unwind()
                .await
                .is_err()
            {
                tracing::error!(connection_id = %connection.id, "the hub's handler panicked");
            }
            store.hub_finished(&connection);
        })
    }

    /// Whether `kind` is offered.
    pub fn offers(&self, kind: TransportKind) -> bool {
        self.options.transports.contains(&kind)
    }
}

/// 405 with the methods the route answers.
pub(crate) fn method_not_allowed(allow: &'static str) -> Response<HubBody> {
    let mut response = text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed");
    response
        .headers_mut()
        .insert(http::header::ALLOW, http::HeaderValue::from_static(allow));
    response
}

/// 401 with the hook's reason and a bearer challenge (RFC 6750 section 3).
pub(crate) fn unauthorized(reason: &str) -> Response<HubBody> {
    let mut response = text(StatusCode::UNAUTHORIZED, reason.to_owned());
    response.headers_mut().insert(
        http::header::WWW_AUTHENTICATE,
        http::HeaderValue::from_static("Bearer"),
    );
    response
}
