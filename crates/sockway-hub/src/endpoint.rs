//! Mounting a hub: [`HubService`], a tower `Service` that answers `{path}` (the transports)
//! and `{path}/negotiate`, and hands every other request to the service it wraps (404 by
//! default). It runs on `sockway::server::Server::serve` like any service:
//!
//! ```rust,ignore
//! let hub = HubService::new("/chatHub", chat_hub(), HttpOptions::default())
//!     .fallback(pages); // anything else: the application's own service
//! Server::new(ServerOptions::default()).serve(listener, hub).await;
//! ```
//!
//! It takes any request body and never fails, so it drops into axum as a route service on
//! both of its paths (WebSockets included: the upgrade travels in the request):
//!
//! ```rust,ignore
//! let app = Router::new()
//!     .route_service("/chatHub", hub.clone())
//!     .route_service("/chatHub/negotiate", hub);
//! ```

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::header::ACCEPT;
use http::{Method, Request, Response, StatusCode};
use http_body_util::BodyExt as _;
use sockway::server::{is_websocket_request, ShutdownHandle};
use tower_service::Service;

use crate::auth::resolve_user;
use crate::connections::ConnectionStore;
use crate::link::ConnectionHandler;
use crate::relay_dispatch::Route;
use crate::service::{method_not_allowed, unauthorized, HttpOptions, HubShared};
use crate::transport::{self, BoxError, HubBody};

/// The hub's HTTP endpoint as a tower service: `POST {path}/negotiate`, and on `{path}` the
/// WebSocket upgrade (HTTP/1.1 or HTTP/2 extended CONNECT), Server-Sent Events (`GET` with
/// `Accept: text/event-stream`), long polling (`GET`, `DELETE`) and the `POST` that carries
/// client data for the last two. Other paths go to the wrapped service.
pub struct HubService<S = NotFound> {
    shared: Arc<HubShared>,
    inner: S,
}

impl<S: Clone> Clone for HubService<S> {
    fn clone(&self) -> Self {
        Self {
            shared: self.shared.clone(),
            inner: self.inner.clone(),
        }
    }
}

impl<S> std::fmt::Debug for HubService<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HubService")
            .field("path", &self.shared.path)
            .field("connections", &self.shared.store.len())
            .finish_non_exhaustive()
    }
}

impl HubService<NotFound> {
    /// A hub at `path` (e.g. `/chatHub`) whose connections `handler` runs.
    pub fn new(path: &str, handler: impl ConnectionHandler, options: HttpOptions) -> Self {
        let path = format!("/{}", path.trim_matches('/'));
        let store = ConnectionStore::new(options.limits());
        let socket_config = Arc::new(
            options
                .websocket
                .socket
                .clone()
                .max_message_size(options.max_receive_size),
        );
        let shared = Arc::new(HubShared {
            socket_config,
            options,
            store,
            handler: Arc::new(handler),
            negotiate_path: format!("{}/negotiate", path.trim_end_matches('/')),
            path,
        });
        if let Some(relay) = &shared.options.relay {
            relay.serve(crate::relay_dispatch::handler(Arc::downgrade(&shared)));
        }
        Self {
            shared,
            inner: NotFound,
        }
    }
}

impl<S> HubService<S> {
    /// Passes requests for other paths to `inner` (another hub, the application's pages).
    pub fn fallback<T>(self, inner: T) -> HubService<T> {
        HubService {
            shared: self.shared,
            inner,
        }
    }

    /// How many connections the hub holds.
    pub fn connection_count(&self) -> usize {
        self.shared.store.len()
    }

    /// Ends every connection and takes no new one, as ASP.NET Core does when the application
    /// stops: event streams end, waiting polls get 204, sockets close, negotiate answers with
    /// an error. Call it when the server shuts down, or use [`Self::close_on`].
    pub fn close_all(&self) {
        self.shared.store.close_all();
    }

    /// Calls [`Self::close_all`] when `shutdown` fires (the runner's graceful shutdown), so
    /// Server-Sent Events and long-polling clients learn at once instead of at the end of the
    /// drain. Call it inside the tokio runtime.
    pub fn close_on(self, shutdown: &ShutdownHandle) -> Self {
        let shared = Arc::downgrade(&self.shared);
        let fired = shutdown.wait();
        tokio::spawn(async move {
            fired.await;
            if let Some(shared) = shared.upgrade() {
                shared.store.close_all();
            }
        });
        self
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for HubService<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError> + Send,
    ResBody: hyper::body::Body<Data = Bytes> + Send + 'static,
    ResBody::Error: Into<BoxError>,
    ReqBody: hyper::body::Body + Send + 'static,
    ReqBody::Data: Send,
    ReqBody::Error: Into<BoxError>,
    Request<ReqBody>: Send,
{
    type Response = Response<HubBody>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response<HubBody>, Infallible>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        let path = request.uri().path();
        let path = if path.len() > 1 {
            path.trim_end_matches('/')
        } else {
            path
        };
        if path == self.shared.path {
            return self.cross_origin(request, "GET, POST, DELETE", |shared, request| {
                Box::pin(endpoint(shared, request))
            });
        }
        if path == self.shared.negotiate_path {
            return self.cross_origin(request, "POST", |shared, request| {
                Box::pin(async move { crate::negotiate::handle(&shared, request).await })
            });
        }
        let mut inner = self.inner.clone();
        Box::pin(async move {
            let ready = std::future::poll_fn(|cx| inner.poll_ready(cx)).await;
            let result = match ready {
                Ok(()) => inner.call(request).await,
                Err(error) => Err(error),
            };
            Ok(match result {
                Ok(response) => response.map(|body| body.map_err(Into::into).boxed_unsync()),
                Err(error) => {
                    let error: BoxError = error.into();
                    tracing::warn!(%error, "the service behind the hub failed");
                    transport::text(StatusCode::INTERNAL_SERVER_ERROR, "internal server error")
                }
            })
        })
    }
}

impl<S> HubService<S> {
    /// Answers a CORS preflight for a route taking `methods`, or runs `route` and adds the
    /// CORS headers its origin earns ([`HttpOptions::allowed_origins`]).
    fn cross_origin<B>(
        &self,
        request: Request<B>,
        methods: &'static str,
        route: impl FnOnce(Arc<HubShared>, Request<B>) -> RouteFuture + Send + 'static,
    ) -> Pin<Box<dyn Future<Output = Result<Response<HubBody>, Infallible>> + Send>>
    where
        B: Send + 'static,
    {
        let shared = self.shared.clone();
        if let Some(response) = shared.options.cors.preflight(&request, methods) {
            return Box::pin(std::future::ready(Ok(response)));
        }
        let origin = request.headers().get(http::header::ORIGIN).cloned();
        Box::pin(async move {
            let mut response = route(shared.clone(), request).await;
            shared.options.cors.decorate(origin.as_ref(), &mut response);
            Ok(response)
        })
    }
}

/// What a hub route answers.
type RouteFuture = Pin<Box<dyn Future<Output = Response<HubBody>> + Send>>;

/// `{path}`: authenticates, then dispatches by method and headers as ASP.NET Core's
/// `HttpConnectionDispatcher` does.
async fn endpoint<B>(shared: Arc<HubShared>, request: Request<B>) -> Response<HubBody>
where
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    let user = match resolve_user(
        shared.options.authenticator.as_ref(),
        request.headers(),
        request.uri(),
    )
    .await
    {
        Ok(user) => user,
        Err(refused) => return unauthorized(&refused.0),
    };
    let method = request.method().clone();
    if let Some(route) = relay_route(&method, &request) {
        if let Some(relay) = shared.options.relay.clone() {
            return crate::relay_dispatch::dispatch(&shared, &relay, route, request, user).await;
        }
    }
    if method == Method::POST {
        return transport::post::send(&shared, request).await;
    }
    if method == Method::DELETE {
        return transport::long_polling::delete(&shared, request.uri());
    }
    if method != Method::GET && method != Method::CONNECT {
        return method_not_allowed("GET, POST, DELETE");
    }
    if accepts_event_stream(request.headers()) {
        return transport::sse::start(&shared, request, user);
    }
    if is_websocket_request(&request) {
        return transport::websocket::start(&shared, request, user).await;
    }
    if method == Method::CONNECT {
        return method_not_allowed("GET, POST, DELETE");
    }
    transport::long_polling::poll(&shared, request, user).await
}

/// The route of a request a fleet relays; `None` for WebSockets and anything refused.
fn relay_route<B>(method: &Method, request: &Request<B>) -> Option<Route> {
    if method == Method::POST {
        Some(Route::Post)
    } else if method == Method::DELETE {
        Some(Route::Delete)
    } else if method != Method::GET {
        None
    } else if accepts_event_stream(request.headers()) {
        Some(Route::EventStream)
    } else if is_websocket_request(request) {
        None
    } else {
        Some(Route::Poll)
    }
}

fn accepts_event_stream(headers: &http::HeaderMap) -> bool {
    headers
        .get_all(ACCEPT)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|media| {
            media
                .split(';')
                .next()
                .is_some_and(|kind| kind.trim().eq_ignore_ascii_case("text/event-stream"))
        })
}

/// The default fallback: 404 for every path that is not the hub's.
#[derive(Debug, Clone, Copy, Default)]
pub struct NotFound;

impl<B> Service<Request<B>> for NotFound {
    type Response = Response<HubBody>;
    type Error = Infallible;
    type Future = std::future::Ready<Result<Response<HubBody>, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _request: Request<B>) -> Self::Future {
        std::future::ready(Ok(transport::text(StatusCode::NOT_FOUND, "not found")))
    }
}
