//! The hub service's side of the [`Relay`]: requests of Server-Sent
//! Events and long polling that find no started connection on this server go to the one that
//! holds it ([`dispatch`]), and requests relayed here are answered on this server's transports
//! ([`handler`]). The types and the trait a backplane implements are in [`crate::relay`].

use std::sync::{Arc, Weak};
use std::time::Duration;

use bytes::Bytes;
use http::header::CONTENT_TYPE;
use http::{Request, Response, StatusCode, Uri};
use http_body_util::{BodyExt as _, Full};

use crate::relay::{Relay, RelayHandler, Relayed, RelayedKind, RelayedRequest, RelayedResponse};
use crate::service::HubShared;
use crate::transport::{self, HubBody};

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
            connection.ended().await;
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
