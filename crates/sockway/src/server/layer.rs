//! [`WebSocketLayer`]: WebSockets as tower middleware (what ASP.NET Core's `UseWebSockets`
//! middleware does). Requests that ask for a WebSocket are accepted with the layer's
//! [`AcceptOptions`] and handed to a handler in a task of their own; everything else falls through
//! to the wrapped service.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures_util::future::{self, Either as EitherFuture, MapOk, Ready, TryFutureExt};
use http::{Request, Response};
use http_body_util::Either;
use tower_layer::Layer;
use tower_service::Service;

use super::info::UpgradeInfo;
use super::options::AcceptOptions;
use super::upgrade::{is_extended_connect, is_websocket_request, Body, Handshake, ServerWebSocket};
use crate::config::WebSocketConfig;

/// Tower middleware that accepts WebSockets and passes other requests on.
///
/// ```no_run
/// use sockway::server::{AcceptOptions, ServerWebSocket, UpgradeInfo, WebSocketLayer};
/// let layer = WebSocketLayer::new(|mut socket: ServerWebSocket, _info: UpgradeInfo| async move {
///     while let Ok(Some(message)) = socket.recv().await {
///         if socket.send(message).await.is_err() {
///             break;
///         }
///     }
/// })
/// .path("/ws")
/// .options(AcceptOptions::default().allowed_origins(["https://client.example"]));
/// ```
///
/// - A WebSocket request (HTTP/1.1 `GET` upgrade or HTTP/2 extended `CONNECT`; the layer does
///   not filter on the method, [`super::accept`] checks it) on a matching path is answered by
///   the layer: 101 (or 200 for HTTP/2) and the handler runs in a new task with the socket,
///   or a refusal (400, 403, 405, 426) with a body saying why. The same handler serves both
///   HTTP versions; [`UpgradeInfo::http_version`] says which one a socket arrived over.
/// - An extended `CONNECT` for another protocol than `websocket` (RFC 8441 section 4) on a
///   matching path is refused with 400: this endpoint only tunnels WebSockets.
/// - Anything else goes to the inner service untouched.
///
/// The response body is `Either<Body, B>` of the layer's own [`Body`] and the inner body `B`.
pub struct WebSocketLayer<H> {
    handler: Arc<H>,
    options: Arc<AcceptOptions>,
    /// `options.socket`, shared by every socket the layer accepts.
    socket_config: Arc<WebSocketConfig>,
    path: Option<Arc<str>>,
}

impl<H> Clone for WebSocketLayer<H> {
    fn clone(&self) -> Self {
        Self {
            handler: self.handler.clone(),
            options: self.options.clone(),
            socket_config: self.socket_config.clone(),
            path: self.path.clone(),
        }
    }
}

impl<H> std::fmt::Debug for WebSocketLayer<H> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebSocketLayer")
            .field("options", &self.options)
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl<H, Fut> WebSocketLayer<H>
where
    H: Fn(ServerWebSocket, UpgradeInfo) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    /// A layer that gives every accepted socket to `handler`, with the default options, on
    /// every path.
    pub fn new(handler: H) -> Self {
        let options = AcceptOptions::default();
        Self {
            handler: Arc::new(handler),
            socket_config: Arc::new(options.socket.clone()),
            options: Arc::new(options),
            path: None,
        }
    }
}

impl<H> WebSocketLayer<H> {
    /// Sets the options every socket is accepted with.
    pub fn options(mut self, options: AcceptOptions) -> Self {
        self.socket_config = Arc::new(options.socket.clone());
        self.options = Arc::new(options);
        self
    }

    /// Accepts WebSockets only on this exact path; WebSocket requests elsewhere fall through
    /// to the inner service like any other request.
    pub fn path(mut self, path: impl Into<String>) -> Self {
        self.path = Some(Arc::from(path.into()));
        self
    }
}

impl<H, S> Layer<S> for WebSocketLayer<H> {
    type Service = WebSocketService<S, H>;

    fn layer(&self, inner: S) -> Self::Service {
        WebSocketService {
            inner,
            layer: self.clone(),
        }
    }
}

/// The service [`WebSocketLayer`] wraps around an inner service.
pub struct WebSocketService<S, H> {
    inner: S,
    layer: WebSocketLayer<H>,
}

impl<S: Clone, H> Clone for WebSocketService<S, H> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            layer: self.layer.clone(),
        }
    }
}

impl<S: std::fmt::Debug, H> std::fmt::Debug for WebSocketService<S, H> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebSocketService")
            .field("inner", &self.inner)
            .field("layer", &self.layer)
            .finish()
    }
}

/// Wraps the inner service's response body.
type MapBody<B> = fn(Response<B>) -> Response<Either<Body, B>>;

impl<S, H, Fut, ReqBody, ResBody> Service<Request<ReqBody>> for WebSocketService<S, H>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    H: Fn(ServerWebSocket, UpgradeInfo) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    type Response = Response<Either<Body, ResBody>>;
    type Error = S::Error;
    type Future =
        EitherFuture<Ready<Result<Self::Response, S::Error>>, MapOk<S::Future, MapBody<ResBody>>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<ReqBody>) -> Self::Future {
        let on_path = self
            .layer
            .path
            .as_deref()
            .is_none_or(|path| request.uri().path() == path);
        if on_path && (is_websocket_request(&request) || is_extended_connect(&request)) {
            let response = accept_and_spawn(&mut request, &self.layer);
            return EitherFuture::Left(future::ready(Ok(response.map(Either::Left))));
        }
        let wrap: MapBody<ResBody> = |response| response.map(Either::Right);
        EitherFuture::Right(self.inner.call(request).map_ok(wrap))
    }
}

/// Accepts with the layer's options and runs the handler in a new task.
fn accept_and_spawn<B, H, Fut>(
    request: &mut Request<B>,
    layer: &WebSocketLayer<H>,
) -> Response<Body>
where
    H: Fn(ServerWebSocket, UpgradeInfo) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let accepted = Handshake::from_request(request)
        .and_then(|h| h.accept_with_config(&layer.options, layer.socket_config.clone()));
    match accepted {
        Ok((response, pending)) => {
            let handler = layer.handler.clone();
            let (upgrading, info) = pending.into_parts();
            // The handler runs in a task of its own once the socket exists, so that the task
            // that lives as long as the socket holds only the handler's future, not also what
            // waiting for the upgrade took.
            tokio::spawn(async move {
                match upgrading.await {
                    Ok(socket) => {
                        tokio::spawn(handler(socket, info));
                    }
                    Err(error) => tracing::debug!(%error, "WebSocket upgrade did not complete"),
                }
            });
            response
        }
        Err(rejection) => {
            tracing::debug!(status = %rejection.status(), reason = rejection.message(), "WebSocket handshake refused");
            rejection.into_response()
        }
    }
}

/// A tower service that answers every request with `f(request)`, for the pages next to a
/// WebSocket endpoint (or any small app) without pulling in a framework.
pub fn service_fn<F, B, Fut, R>(f: F) -> ServiceFn<F>
where
    F: Fn(Request<B>) -> Fut,
    Fut: Future<Output = Response<R>>,
{
    ServiceFn { f }
}

/// The service [`service_fn`] makes; it never fails.
#[derive(Debug, Clone, Copy)]
pub struct ServiceFn<F> {
    f: F,
}

impl<F, B, Fut, R> Service<Request<B>> for ServiceFn<F>
where
    F: Fn(Request<B>) -> Fut,
    Fut: Future<Output = Response<R>>,
{
    type Response = Response<R>;
    type Error = Infallible;
    type Future =
        futures_util::future::Map<Fut, fn(Response<R>) -> Result<Response<R>, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        use futures_util::FutureExt;
        (self.f)(request).map(Ok as fn(_) -> _)
    }
}
