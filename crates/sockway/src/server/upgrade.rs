//! The server side of the opening handshake on hyper requests, for HTTP/1.1 upgrades
//! (RFC 6455 section 4.2) and HTTP/2 extended CONNECT (RFC 8441 section 5) alike.

use std::future::Future;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::{Bytes, BytesMut};
use http::header::{HeaderValue, ALLOW, CONTENT_TYPE, UPGRADE};
use http::{HeaderMap, Method, Request, Response, StatusCode, Version};
use hyper::upgrade::{OnUpgrade, Upgraded};
use hyper_util::rt::TokioIo;
use sockway_proto::handshake::{self, header_has_token, ClientOffer, HandshakeError, RequestKind};
use sockway_proto::Role;

use super::options::AcceptOptions;
use crate::config::WebSocketConfig;
use crate::socket::WebSocket;

/// The response body type used for handshake responses and refusals.
pub type Body = http_body_util::Full<Bytes>;

/// The transport of a server-side WebSocket accepted through hyper.
pub type ServerStream = TokioIo<Upgraded>;

/// A WebSocket accepted through hyper.
pub type ServerWebSocket = WebSocket<ServerStream>;

/// Whether `request` asks for a WebSocket (the seeds' `IsWebSocketRequest`): a `GET` with
/// `Upgrade: websocket`, or an HTTP/2 `CONNECT` with `:protocol = websocket` (RFC 8441). It
/// does not check the rest of the handshake; [`accept`] does.
pub fn is_websocket_request<B>(request: &Request<B>) -> bool {
    match (request.method(), request.version()) {
        (&Method::GET, Version::HTTP_11) => {
            header_has_token(request.headers(), UPGRADE, "websocket")
        }
        (&Method::CONNECT, Version::HTTP_2 | Version::HTTP_3) => connect_protocol(request)
            .is_some_and(|p| p.eq_ignore_ascii_case(handshake::WEBSOCKET_PROTOCOL)),
        _ => false,
    }
}

fn connect_protocol<B>(request: &Request<B>) -> Option<&str> {
    request
        .extensions()
        .get::<hyper::ext::Protocol>()
        .map(hyper::ext::Protocol::as_str)
}

/// Why [`accept`] refused a request, as the HTTP response that says so.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{status}: {message}")]
pub struct Rejection {
    /// The status: 400 (malformed), 403 (origin), 405 (method), 426 (version), 500.
    pub status: StatusCode,
    /// Headers the response must carry (`Sec-WebSocket-Version` with 426, `Allow` with 405).
    pub headers: HeaderMap,
    /// A plain-text explanation for the body.
    pub message: String,
}

impl Rejection {
    fn from_handshake(error: &HandshakeError) -> Self {
        let mut headers = error.response_headers();
        if error.status() == StatusCode::METHOD_NOT_ALLOWED && !headers.contains_key(ALLOW) {
            headers.insert(ALLOW, HeaderValue::from_static("GET"));
        }
        Self {
            status: error.status(),
            headers,
            message: error.to_string(),
        }
    }

    /// The refusal as a response with a plain-text body.
    pub fn into_response(self) -> Response<Body> {
        let mut response = Response::new(Body::new(Bytes::from(format!("{}\n", self.message))));
        *response.status_mut() = self.status;
        *response.headers_mut() = self.headers;
        response.headers_mut().insert(
            CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        response
    }
}

/// Checks the handshake in `request` against `options` and, if it is acceptable, returns the
/// response to send and the socket to come (the seeds' `AcceptWebSocketAsync`).
///
/// Refusals: a malformed handshake gets 400 (405 for a wrong method, 426 with
/// `Sec-WebSocket-Version: 13` for a wrong version), an origin not allowed gets 403.
pub fn accept<B>(
    request: &mut Request<B>,
    options: &AcceptOptions,
) -> Result<(Response<Body>, PendingWebSocket), Rejection> {
    let offer = handshake::validate_request(
        request.method(),
        request.version(),
        request.headers(),
        connect_protocol(request),
    )
    .map_err(|e| Rejection::from_handshake(&e))?;
    if !options.origins.allows(offer.origin.as_deref()) {
        return Err(Rejection {
            status: StatusCode::FORBIDDEN,
            headers: HeaderMap::new(),
            message: format!(
                "origin {} is not allowed to open a WebSocket here",
                offer.origin.as_deref().unwrap_or_default()
            ),
        });
    }
    let subprotocol = handshake::select_subprotocol(&offer.subprotocols, &options.subprotocols)
        .map(str::to_owned);
    let headers =
        handshake::response_headers(&offer, subprotocol.as_deref(), None).map_err(|e| {
            Rejection {
                status: StatusCode::BAD_REQUEST,
                headers: HeaderMap::new(),
                message: e.to_string(),
            }
        })?;
    let on_upgrade = hyper::upgrade::on(&mut *request);
    let mut response = Response::new(Body::default());
    *response.status_mut() = handshake::response_status(offer.kind);
    *response.headers_mut() = headers;
    let pending = PendingWebSocket {
        on_upgrade,
        config: Some(options.socket.clone()),
        version: request.version(),
        subprotocol,
        offer,
    };
    Ok((response, pending))
}

/// The socket [`accept`] promised: resolves once the handshake response has gone out and
/// hyper hands over the connection (for HTTP/2, the stream).
#[derive(Debug)]
pub struct PendingWebSocket {
    on_upgrade: OnUpgrade,
    config: Option<WebSocketConfig>,
    version: Version,
    subprotocol: Option<String>,
    offer: ClientOffer,
}

impl PendingWebSocket {
    /// The subprotocol chosen, if any.
    pub fn subprotocol(&self) -> Option<&str> {
        self.subprotocol.as_deref()
    }

    /// The HTTP version the socket arrived over (1.1 upgrade or 2 extended CONNECT).
    pub fn http_version(&self) -> Version {
        self.version
    }

    /// Whether the socket arrived as an HTTP/1.1 upgrade or an extended CONNECT.
    pub fn request_kind(&self) -> RequestKind {
        self.offer.kind
    }

    /// The client's `Origin`, if it sent one.
    pub fn origin(&self) -> Option<&str> {
        self.offer.origin.as_deref()
    }
}

impl Future for PendingWebSocket {
    type Output = Result<ServerWebSocket, hyper::Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let upgraded = ready!(Pin::new(&mut self.on_upgrade).poll(cx))?;
        let config = self.config.take().unwrap_or_default();
        Poll::Ready(Ok(WebSocket::from_raw(
            TokioIo::new(upgraded),
            Role::Server,
            config,
            BytesMut::new(),
        )))
    }
}
