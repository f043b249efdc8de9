//! The server side of the opening handshake on hyper requests, for HTTP/1.1 upgrades
//! (RFC 6455 section 4.2) and HTTP/2 extended CONNECT (RFC 8441 section 5) alike.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use bytes::Bytes;
use http::header::UPGRADE;
use http::request::Parts;
use http::{Extensions, HeaderMap, Method, Request, Response, StatusCode, Uri, Version};
use hyper::upgrade::OnUpgrade;
use sockway_proto::deflate::DeflateParams;
use sockway_proto::handshake::{self, header_has_token, ClientOffer, RequestKind};
use sockway_proto::Role;

use super::info::{ConnectionInfo, RequestParts, UpgradeInfo};
use super::options::AcceptOptions;
use super::rejection::Rejection;
use super::shutdown::Tracking;
use super::stream::ServerStream;
use crate::config::WebSocketConfig;
use crate::socket::WebSocket;

/// The response body type used for handshake responses and refusals.
pub type Body = http_body_util::Full<Bytes>;

/// A WebSocket accepted through hyper. It is `Send + 'static`: hand it to any task.
pub type ServerWebSocket = WebSocket<ServerStream>;

/// Whether `request` asks for a WebSocket (ASP.NET Core's `IsWebSocketRequest`): an HTTP/1.x
/// request with `Upgrade: websocket`, or an HTTP/2 `CONNECT` with `:protocol = websocket`
/// (RFC 8441). It looks only at what marks the request as a WebSocket attempt, so that a
/// broken attempt (a `POST` with `Upgrade: websocket`, a missing key) still reaches
/// [`accept`] and is told what is wrong instead of falling through to a plain route.
pub fn is_websocket_request<B>(request: &Request<B>) -> bool {
    is_websocket_attempt(request.version(), request.headers(), request.extensions())
}

fn is_websocket_attempt(version: Version, headers: &HeaderMap, extensions: &Extensions) -> bool {
    match version {
        Version::HTTP_2 | Version::HTTP_3 => connect_protocol(extensions)
            .is_some_and(|p| p.eq_ignore_ascii_case(handshake::WEBSOCKET_PROTOCOL)),
        _ => header_has_token(headers, UPGRADE, handshake::WEBSOCKET_PROTOCOL),
    }
}

/// Whether `request` is an HTTP/2 (or HTTP/3) extended CONNECT (RFC 8441 section 4), for any
/// `:protocol`.
pub(crate) fn is_extended_connect<B>(request: &Request<B>) -> bool {
    request.method() == Method::CONNECT
        && matches!(request.version(), Version::HTTP_2 | Version::HTTP_3)
        && connect_protocol(request.extensions()).is_some()
}

fn connect_protocol(extensions: &Extensions) -> Option<&str> {
    extensions
        .get::<hyper::ext::Protocol>()
        .map(hyper::ext::Protocol::as_str)
}

/// Checks the handshake in `request` against `options` and, if it is acceptable, returns the
/// response to send and the socket to come (ASP.NET Core's `AcceptWebSocketAsync`). Works on any
/// route, for HTTP/1.1 `GET` upgrades and HTTP/2 extended `CONNECT` alike.
///
/// Refusals: a malformed handshake gets 400 (405 for a wrong method, 426 with
/// `Sec-WebSocket-Version: 13` for a wrong version), an origin not allowed gets 403.
pub fn accept<B>(
    request: &mut Request<B>,
    options: &AcceptOptions,
) -> Result<(Response<Body>, PendingWebSocket), Rejection> {
    Handshake::from_request(request)?.accept(options)
}

/// A WebSocket request whose handshake is valid, not yet answered: the first half of
/// [`accept`]. Look at the offer (subprotocols, origin, headers) and then [`Handshake::accept`]
/// it with the options that fit, or refuse it with your own response.
#[derive(Debug)]
pub struct Handshake {
    offer: ClientOffer,
    on_upgrade: OnUpgrade,
    info: UpgradeInfo,
    tracking: Option<Tracking>,
}

impl Handshake {
    /// Validates the handshake of a hyper request (RFC 6455 section 4.2.1, RFC 8441 section 5)
    /// and takes over its upgrade.
    pub fn from_request<B>(request: &mut Request<B>) -> Result<Self, Rejection> {
        let mut handshake = Self::validate(
            request.method(),
            request.version(),
            request.uri(),
            request.headers(),
            request.extensions(),
        )?;
        handshake.on_upgrade = hyper::upgrade::on(&mut *request);
        Ok(handshake)
    }

    /// Validates the handshake from request parts (for extractors, which see `Parts`). Refuses
    /// with 426 when the connection cannot be upgraded (the server did not provide hyper's
    /// upgrade hook, e.g. it was served without upgrades).
    pub fn from_parts(parts: &mut Parts) -> Result<Self, Rejection> {
        let mut handshake = Self::validate(
            &parts.method,
            parts.version,
            &parts.uri,
            &parts.headers,
            &parts.extensions,
        )?;
        handshake.on_upgrade = parts.extensions.remove::<OnUpgrade>().ok_or_else(|| {
            Rejection::new(
                StatusCode::UPGRADE_REQUIRED,
                "this connection cannot be upgraded to a WebSocket: the HTTP server was not \
                 set up to hand over upgraded connections",
            )
        })?;
        Ok(handshake)
    }

    fn validate(
        method: &Method,
        version: Version,
        uri: &Uri,
        headers: &HeaderMap,
        extensions: &Extensions,
    ) -> Result<Self, Rejection> {
        let offer =
            handshake::validate_request(method, version, headers, connect_protocol(extensions))
                .map_err(|e| Rejection::from_handshake(&e))?;
        let (uri, headers) = UpgradeInfo::owned_request_parts(uri, headers);
        let info = UpgradeInfo::new(RequestParts {
            uri,
            headers,
            http_version: version,
            kind: offer.kind,
            origin: offer.origin.clone(),
            offered_subprotocols: offer.subprotocols.clone(),
            subprotocol: None,
            compression: None,
            peer_addr: extensions.get::<ConnectionInfo>().map(|c| c.peer_addr),
        });
        Ok(Self {
            offer,
            on_upgrade: placeholder_upgrade(),
            info,
            tracking: extensions.get::<Tracking>().cloned(),
        })
    }

    /// What the request offered and where it came from (`subprotocol` is not chosen yet).
    pub fn info(&self) -> &UpgradeInfo {
        &self.info
    }

    /// Applies `options` (origin check, subprotocol choice) and returns the response to send
    /// and the socket to come. An origin not allowed gets 403 with a body saying so.
    pub fn accept(
        self,
        options: &AcceptOptions,
    ) -> Result<(Response<Body>, PendingWebSocket), Rejection> {
        let config = Arc::new(options.socket.clone());
        self.accept_with_config(options, config)
    }

    /// [`Handshake::accept`] with the socket settings given apart (`options.socket` is not
    /// read), so that an endpoint can share one copy among all its sockets: [`accept`]
    /// makes a copy for each socket, about 100 bytes that every connection keeps.
    ///
    /// [`accept`]: Handshake::accept
    pub fn accept_with_config(
        self,
        options: &AcceptOptions,
        config: Arc<WebSocketConfig>,
    ) -> Result<(Response<Body>, PendingWebSocket), Rejection> {
        let Self {
            offer,
            on_upgrade,
            mut info,
            tracking,
        } = self;
        let agreed = handshake::agree(
            &offer,
            &options.origins,
            &options.subprotocols,
            options.compression.as_ref(),
        )?;
        let mut response = Response::new(Body::default());
        *response.status_mut() = agreed.status;
        *response.headers_mut() = agreed.headers;
        let parts = info.parts_mut();
        parts.subprotocol = agreed.subprotocol;
        parts.compression = agreed.compression;
        let pending = PendingWebSocket {
            upgrade: Upgrading {
                on_upgrade,
                config: Some(config),
                compression: info.compression(),
                tracking,
            },
            info,
        };
        Ok((response, pending))
    }
}

/// An `OnUpgrade` to hold until the real one is taken from the request.
fn placeholder_upgrade() -> OnUpgrade {
    hyper::upgrade::on(Request::new(()))
}

/// The socket [`accept`] promised: resolves once the handshake response has gone out and
/// hyper hands over the connection (for HTTP/2, the stream).
#[derive(Debug)]
pub struct PendingWebSocket {
    upgrade: Upgrading,
    info: UpgradeInfo,
}

/// The part of a [`PendingWebSocket`] that waits for hyper's hand-over and builds the socket;
/// apart from the request's [`UpgradeInfo`], so that a task can wait on it and then hand the
/// info to a handler without copying it.
#[derive(Debug)]
pub(crate) struct Upgrading {
    on_upgrade: OnUpgrade,
    config: Option<Arc<WebSocketConfig>>,
    compression: Option<DeflateParams>,
    tracking: Option<Tracking>,
}

impl PendingWebSocket {
    /// The request behind the socket, with the chosen subprotocol.
    pub fn info(&self) -> &UpgradeInfo {
        &self.info
    }

    /// The subprotocol chosen, if any.
    pub fn subprotocol(&self) -> Option<&str> {
        self.info.subprotocol()
    }

    /// The HTTP version the socket arrived over (1.1 upgrade or 2 extended CONNECT).
    pub fn http_version(&self) -> Version {
        self.info.http_version()
    }

    /// Whether the socket arrived as an HTTP/1.1 upgrade or an extended CONNECT.
    pub fn request_kind(&self) -> RequestKind {
        self.info.kind()
    }

    /// The client's `Origin`, if it sent one.
    pub fn origin(&self) -> Option<&str> {
        self.info.origin()
    }

    /// Replaces the settings the socket will be created with.
    pub fn set_config(&mut self, config: WebSocketConfig) {
        self.upgrade.config = Some(Arc::new(config));
    }

    /// The hand-over to wait for, and the request's info.
    pub(crate) fn into_parts(self) -> (Upgrading, UpgradeInfo) {
        (self.upgrade, self.info)
    }
}

impl Future for PendingWebSocket {
    type Output = Result<ServerWebSocket, hyper::Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.upgrade).poll(cx)
    }
}

impl Future for Upgrading {
    type Output = Result<ServerWebSocket, hyper::Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let upgraded = ready!(Pin::new(&mut self.on_upgrade).poll(cx))?;
        let config = self.config.take().unwrap_or_default();
        let (stream, leftover) = ServerStream::from_upgraded(upgraded);
        let mut socket =
            WebSocket::with_shared_config(stream, Role::Server, config, leftover, self.compression);
        if let Some(tracking) = &self.tracking {
            socket.set_close_request(tracking.close_request());
        }
        Poll::Ready(Ok(socket))
    }
}
