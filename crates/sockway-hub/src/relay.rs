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

use std::sync::{Arc, Weak};
use std::time::Duration;

use bytes::Bytes;
use futures_util::future::BoxFuture;
use http::header::CONTENT_TYPE;
use http::{Request, Response, StatusCode, Uri};
use http_body_util::{BodyExt as _, Full};
use serde::{Deserialize, Serialize};

use crate::service::HubShared;
use crate::transport::{self, HubBody};

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

/// The handler a hub service installs on its relay: it answers relayed requests as if they
/// had reached this server directly. It holds the service weakly so that the two can be
/// dropped.
pub(crate) fn handler(shared: Weak<HubShared>) -> RelayHandler {
    Arc::new(move |request| {
        let shared = shared.clone();
        Box::pin(async move {
            match shared.upgrade() {
                Some(shared) => answer(&shared, request).await,
                None => {
                    into_relayed(transport::text(
                        StatusCode::NOT_FOUND,
                        "No Connection with that ID",
                    ))
                    .await
                }
            }
        })
    })
}

/// Runs a relayed request on this server's transports.
async fn answer(shared: &HubShared, request: RelayedRequest) -> RelayedResponse {
    let Ok(uri) = Uri::try_from(format!("/?id={}", request.token)) else {
        return into_relayed(transport::text(
            StatusCode::NOT_FOUND,
            "No Connection with that ID",
        ))
        .await;
    };
    let mut http = Request::new(Full::new(Bytes::from(request.body)));
    *http.uri_mut() = uri.clone();
    let response = match request.kind {
        RelayedKind::Post => transport::post::send(shared, http).await,
        RelayedKind::Poll => transport::long_polling::poll(shared, http, None).await,
        RelayedKind::Delete => transport::long_polling::delete(shared, &uri),
    };
    into_relayed(response).await
}

/// The parts of `response` a relay carries; a body that cannot be read becomes a 500.
async fn into_relayed(response: Response<HubBody>) -> RelayedResponse {
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    match response.into_body().collect().await {
        Ok(body) => RelayedResponse {
            status,
            content_type,
            body: body.to_bytes().to_vec(),
        },
        Err(_) => RelayedResponse {
            status: 500,
            content_type: Some("text/plain".into()),
            body: b"the relayed request failed".to_vec(),
        },
    }
}

/// The response a client gets for its relayed request.
pub(crate) fn into_response(relayed: RelayedResponse) -> Response<HubBody> {
    let status = StatusCode::from_u16(relayed.status).unwrap_or(StatusCode::BAD_GATEWAY);
    let mut response = Response::new(
        Full::new(Bytes::from(relayed.body))
            .map_err(|never| match never {})
            .boxed_unsync(),
    );
    *response.status_mut() = status;
    if let Some(value) = relayed
        .content_type
        .and_then(|value| http::HeaderValue::from_str(&value).ok())
    {
        response.headers_mut().insert(CONTENT_TYPE, value);
    }
    response
}

/// The requests of an endpoint that a fleet may relay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Route {
    /// `POST ?id=`.
    Post,
    /// A poll.
    Poll,
    /// `DELETE ?id=`.
    Delete,
    /// `GET` with `Accept: text/event-stream`.
    EventStream,
}

/// Answers a request of `route` on a server with a relay: here when this server runs its
/// connection, through the relay when another one does, here again (adopting a sibling's
/// token for the first poll or the event stream) when none does.
pub(crate) async fn dispatch<B>(
    shared: &Arc<HubShared>,
    relay: &Arc<dyn Relay>,
    route: Route,
    request: Request<B>,
    user: Option<String>,
) -> Response<HubBody>
where
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<transport::BoxError>,
{
    let Some(token) = transport::request_token(request.uri()) else {
        return locally(shared, route, request, user).await;
    };
    let local = shared.store.get(&token);
    if local.as_ref().is_some_and(|c| c.transport().is_some()) {
        return locally(shared, route, request, user).await;
    }
    let claims = match crate::token::verify(&shared.options.token_key, &token) {
        Some(claims) if claims.expires > std::time::SystemTime::now() => claims,
        _ => return locally(shared, route, request, user).await,
    };
    let id = claims.public_id(&token);
    if route == Route::EventStream {
        return start_here(shared, relay, id, route, request, user).await;
    }
    let (parts, body) = request.into_parts();
    let body = if route == Route::Post {
        match read_post(shared, body).await {
            Ok(body) => body,
            Err(refusal) => return refusal,
        }
    } else {
        Bytes::new()
    };
    let kind = match route {
        Route::Post => RelayedKind::Post,
        Route::Delete => RelayedKind::Delete,
        _ => RelayedKind::Poll,
    };
    let relayed = RelayedRequest {
        token,
        kind,
        body: body.to_vec(),
    };
    let request = Request::from_parts(parts, Full::new(body));
    let wait = if route == Route::Poll {
        shared.options.poll_timeout
    } else {
        Duration::ZERO
    };
    match relay.forward(id.clone(), relayed, wait).await {
        Relayed::Answered(answer) => {
            let mut response = into_response(answer);
            if route == Route::Poll {
                transport::no_cache(response.headers_mut());
            }
            response
        }
        Relayed::Failed(reason) => transport::text(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("the server holding this connection could not be reached: {reason}"),
        ),
        Relayed::NotHeld if route == Route::Poll => {
            start_here(shared, relay, id, route, request, user).await
        }
        Relayed::NotHeld | Relayed::Ended => locally(shared, route, request, user).await,
    }
}

/// Starts the connection here: adopts it when another server negotiated it, and hears its
/// channel before the transport answers, so the client's next request finds it.
async fn start_here<B>(
    shared: &Arc<HubShared>,
    relay: &Arc<dyn Relay>,
    id: String,
    route: Route,
    request: Request<B>,
    user: Option<String>,
) -> Response<HubBody>
where
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<transport::BoxError>,
{
    let held = match transport::lookup(shared, request.uri()) {
        Ok(connection) => Some(connection),
        Err(_) => match transport::websocket::adopt(shared, request.uri()).await {
            transport::websocket::Adoption::Adopted(connection) => Some(connection),
            _ => None,
        },
    };
    if let Some(connection) = held {
        relay.hold(id.clone()).await;
        let relay = relay.clone();
        tokio::spawn(async move {
            connection.ended.cancelled().await;
            relay.release(id).await;
        });
    }
    locally(shared, route, request, user).await
}

/// The request as a server without a relay answers it.
async fn locally<B>(
    shared: &Arc<HubShared>,
    route: Route,
    request: Request<B>,
    user: Option<String>,
) -> Response<HubBody>
where
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<transport::BoxError>,
{
    match route {
        Route::Post => transport::post::send(shared, request).await,
        Route::Poll => transport::long_polling::poll(shared, request, user).await,
        Route::Delete => transport::long_polling::delete(shared, request.uri()),
        Route::EventStream => transport::sse::start(shared, request, user),
    }
}

/// Reads a `POST` body to relay, with the limits and refusals of a local `POST`.
async fn read_post<B>(shared: &HubShared, body: B) -> Result<Bytes, Response<HubBody>>
where
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<transport::BoxError>,
{
    let limit = shared.options.max_receive_size;
    let read = tokio::time::timeout(
        shared.options.post_timeout,
        http_body_util::Limited::new(body, limit).collect(),
    );
    match read.await {
        Err(_) => Err(transport::text(
            StatusCode::REQUEST_TIMEOUT,
            "the request body did not arrive in time",
        )),
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
        Ok(Err(error)) if error.is::<http_body_util::LengthLimitError>() => Err(transport::text(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the body is over the limit of {limit} bytes"),
        )),
        Ok(Err(_)) => Err(transport::text(
            StatusCode::BAD_REQUEST,
            "the request body could not be read",
        )),
    }
}
