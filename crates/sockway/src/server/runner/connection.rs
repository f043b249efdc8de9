//! One accepted TCP connection: read its first request head within the limits, hand it to
//! hyper (with upgrades), and shut it down gracefully when the server stops.

use std::future::{poll_fn, Future};
use std::pin::{pin, Pin};
use std::sync::Arc;

use bytes::BytesMut;
use http::{Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpStream;
use tower_service::Service;

use super::head::{read_head, HeadError, HeadLimits, Rewind};
use super::options::ServerOptions;
use super::refuse::Refusal;
use super::BoxError;
use crate::server::info::ConnectionInfo;
use crate::server::shutdown::{ConnectionPermit, Signal, Tracking};

/// What every connection task of one server shares.
#[derive(Debug)]
pub(super) struct Shared {
    pub(super) options: ServerOptions,
    pub(super) builder: auto::Builder<TokioExecutor>,
    pub(super) shutdown: Signal,
}

/// Serves one connection until it ends, or until shutdown plus its graceful close.
pub(super) async fn serve_connection<S, B>(
    shared: Arc<Shared>,
    service: S,
    mut stream: TcpStream,
    info: ConnectionInfo,
    permit: Arc<ConnectionPermit>,
) where
    S: Service<Request<Incoming>, Response = Response<B>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    let options = &shared.options;
    let mut shutdown = shared.shutdown.waiter();
    let mut head = BytesMut::new();
    let limits = HeadLimits {
        max_bytes: options.max_header_bytes,
        max_headers: options.max_headers,
    };
    let read = tokio::select! {
        read = tokio::time::timeout(
            options.handshake_timeout,
            read_head(&mut stream, &mut head, limits),
        ) => read,
        () = &mut shutdown => return,
    };
    let refusal = match read {
        Ok(Ok(())) => None,
        Ok(Err(HeadError::TooLarge)) => Some(Refusal::new(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            format!(
                "the request head is larger than this server's limit of {} bytes",
                options.max_header_bytes
            ),
        )),
        Ok(Err(HeadError::TooManyHeaders(count))) => Some(Refusal::new(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            format!(
                "the request has {count} header fields, more than this server's limit of {}",
                options.max_headers
            ),
        )),
        Ok(Err(HeadError::Closed)) => return,
        Ok(Err(HeadError::Io(error))) => {
            tracing::debug!(peer = %info.peer_addr, %error, "reading the request head failed");
            return;
        }
        // A connection that sent nothing (a browser's speculative preconnect) is closed
        // silently; one that started a request is told why.
        Err(_) if head.is_empty() => return,
        Err(_) => Some(Refusal::new(
            StatusCode::REQUEST_TIMEOUT,
            format!(
                "the request head did not arrive within {:?}",
                options.handshake_timeout
            ),
        )),
    };
    if let Some(refusal) = refusal {
        tracing::debug!(peer = %info.peer_addr, status = %refusal.status, reason = %refusal.message, "request refused");
        refusal.send(stream).await;
        return;
    }

    let service = ConnectionService {
        inner: service,
        info,
        tracking: Tracking {
            shutdown: shared.shutdown.clone(),
            permit,
        },
    };
    let io = TokioIo::new(Rewind::new(stream, head));
    let mut connection = pin!(shared.builder.serve_connection_with_upgrades(io, service));
    let result = tokio::select! {
        result = connection.as_mut() => result,
        () = &mut shutdown => {
            connection.as_mut().graceful_shutdown();
            connection.await
        }
    };
    if let Err(error) = result {
        tracing::debug!(peer = %info.peer_addr, %error, "HTTP connection ended with an error");
    }
}

/// The user's tower service as hyper wants it, putting the connection's [`ConnectionInfo`]
/// and shutdown [`Tracking`] into every request's extensions on the way.
#[derive(Debug, Clone)]
struct ConnectionService<S> {
    inner: S,
    info: ConnectionInfo,
    tracking: Tracking,
}

type ResponseFuture<B, E> = Pin<Box<dyn Future<Output = Result<Response<B>, E>> + Send>>;

impl<S, B> hyper::service::Service<Request<Incoming>> for ConnectionService<S>
where
    S: Service<Request<Incoming>, Response = Response<B>> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response<B>;
    type Error = S::Error;
    type Future = ResponseFuture<B, S::Error>;

    fn call(&self, mut request: Request<Incoming>) -> Self::Future {
        request.extensions_mut().insert(self.info);
        request.extensions_mut().insert(self.tracking.clone());
        let mut inner = self.inner.clone();
        Box::pin(async move {
            poll_fn(|cx| inner.poll_ready(cx)).await?;
            inner.call(request).await
        })
    }
}
