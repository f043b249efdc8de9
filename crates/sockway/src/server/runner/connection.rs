//! One accepted TCP connection: TLS when configured, then the choice of HTTP version, the
//! bounded read of an HTTP/1.1 connection's first request head, hyper (with upgrades and
//! extended CONNECT), and a graceful close when the server stops.
//!
//! The HTTP version is decided without an extra buffering layer:
//! - over TLS by ALPN (RFC 7301): `h2` is HTTP/2 (RFC 9113 section 3.2); `http/1.1` or no
//!   ALPN at all is HTTP/1.1;
//! - over plain TCP by the first bytes, which the head reader reads anyway: the HTTP/2
//!   connection preface (`PRI * HTTP/2.0`, RFC 9113 section 3.4) is HTTP/2 with prior
//!   knowledge ("h2c") when [`ServerOptions::http2`] is on; anything else is HTTP/1.1.

use std::future::{poll_fn, Future};
use std::pin::{pin, Pin};
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use http::{Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper::server::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo};
use sockway_proto::handshake::{self, H2_PREFACE};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};
use tokio::net::TcpStream;
use tower_service::Service;

use super::head::{read_head, HeadError, Rewind};
use super::options::ServerOptions;
use super::refuse::Refusal;
use super::{HttpService, ResponseBody};
use crate::server::info::{ConnectionInfo, TlsInfo};
use crate::server::shutdown::{ConnectionPermit, Signal, Tracking, Waiter};

/// The first line of the HTTP/2 connection preface (RFC 9113 section 3.4), as the head
/// reader sees it: it ends in an empty line, so it reads as a request head without fields.
const H2_PREFACE_HEAD: &[u8] = H2_PREFACE.split_at(18).0;

/// What every connection task of one server shares.
pub(super) struct Shared {
    pub(super) options: ServerOptions,
    pub(super) http1: http1::Builder,
    pub(super) http2: http2::Builder<TokioExecutor>,
    #[cfg(feature = "tls")]
    pub(super) tls: Option<tokio_rustls::TlsAcceptor>,
    pub(super) shutdown: Signal,
}

/// The HTTP version a connection is served with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Protocol {
    Http1,
    Http2,
}

impl Protocol {
    fn name(self) -> &'static str {
        match self {
            Protocol::Http1 => "HTTP/1.1",
            Protocol::Http2 => "HTTP/2",
        }
    }
}

/// Serves one connection until it ends, or until shutdown plus its graceful close.
pub(super) async fn serve_connection<S, B>(
    shared: Arc<Shared>,
    service: S,
    stream: TcpStream,
    info: ConnectionInfo,
    permit: Arc<ConnectionPermit>,
) where
    S: HttpService<B>,
    B: ResponseBody,
{
    let shutdown = shared.shutdown.waiter();
    let service = ConnectionService {
        inner: service,
        info,
        tls: None,
        tracking: Tracking {
            shutdown: shared.shutdown.clone(),
            permit,
        },
    };
    #[cfg(feature = "tls")]
    if let Some(acceptor) = &shared.tls {
        // Boxed so that the TLS path's larger state does not size the future of every plain
        // connection too (and so the memory each new connection takes while it handshakes).
        Box::pin(serve_tls(&shared, acceptor, stream, service, shutdown)).await;
        return;
    }
    serve_after_head(&shared, stream, service, shutdown, shared.options.http2).await;
}

/// Serves a connection over TLS: the handshake (bounded by the handshake timeout), then
/// HTTP/2 when ALPN chose it, HTTP/1.1 otherwise.
#[cfg(feature = "tls")]
async fn serve_tls<S, B>(
    shared: &Shared,
    acceptor: &tokio_rustls::TlsAcceptor,
    stream: TcpStream,
    service: ConnectionService<S>,
    // Polled by reference only while the TLS handshake and the preface are awaited.
    mut shutdown: Waiter,
) where
    S: HttpService<B>,
    B: ResponseBody,
{
    let accept = tokio::time::timeout(
        shared.options.limits.handshake_timeout,
        acceptor.accept(stream),
    );
    let accepted = tokio::select! {
        accepted = accept => accepted,
        () = &mut shutdown => return,
    };
    let tls = match accepted {
        Ok(Ok(tls)) => tls,
        Ok(Err(error)) => {
            tracing::debug!(peer = %service.info.peer_addr, %error, "TLS handshake failed");
            return;
        }
        Err(_) => {
            tracing::debug!(peer = %service.info.peer_addr, "TLS handshake timed out");
            return;
        }
    };
    let negotiated = super::tls::negotiated(&tls);
    let h2 = negotiated.alpn.as_deref() == Some(super::tls::ALPN_H2);
    let service = ConnectionService {
        tls: Some(negotiated),
        ..service
    };
    if h2 {
        let mut tls = tls;
        let mut preface = BytesMut::new();
        let read = read_preface(
            &mut tls,
            &mut preface,
            shared.options.limits.handshake_timeout,
        );
        let complete = tokio::select! {
            complete = read => complete,
            () = &mut shutdown => return,
        };
        if !complete {
            tracing::debug!(peer = %service.info.peer_addr, "no HTTP/2 preface in time; closing");
            return;
        }
        let io = Rewind::new(tls, preface);
        serve_http(shared, io, Protocol::Http2, service, shutdown).await;
    } else {
        serve_after_head(shared, tls, service, shutdown, false).await;
    }
}

/// Reads the first request head within the limits (answering 431/408 itself), then serves
/// the connection: as HTTP/2 if `h2c` is allowed and the head is the HTTP/2 preface, else as
/// HTTP/1.1.
async fn serve_after_head<I, S, B>(
    shared: &Shared,
    mut io: I,
    service: ConnectionService<S>,
    mut shutdown: Waiter,
    h2c: bool,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    S: HttpService<B>,
    B: ResponseBody,
{
    let options = &shared.options;
    let peer = service.info.peer_addr;
    let mut head = BytesMut::new();
    let limits = options.limits.head();
    let read = tokio::select! {
        read = tokio::time::timeout(
            options.limits.handshake_timeout,
            read_head(&mut io, &mut head, limits),
        ) => read,
        () = &mut shutdown => return,
    };
    let refusal = match read {
        Ok(Ok(())) => None,
        Ok(Err(HeadError::Limit(error))) => {
            let refusal = handshake::Refusal::from_head(&error);
            Some(Refusal::new(refusal.status(), refusal.body()))
        }
        Ok(Err(HeadError::Closed)) => return,
        Ok(Err(HeadError::Io(error))) => {
            tracing::debug!(%peer, %error, "reading the request head failed");
            return;
        }
        // A connection that sent nothing (a browser's speculative preconnect) is closed
        // silently; one that started a request is told why.
        Err(_) if head.is_empty() => return,
        Err(_) => Some(Refusal::new(
            StatusCode::REQUEST_TIMEOUT,
            format!(
                "the request head did not arrive within {:?}",
                options.limits.handshake_timeout
            ),
        )),
    };
    if let Some(refusal) = refusal {
        tracing::debug!(%peer, status = %refusal.status, reason = %refusal.message, "request refused");
        // Boxed: a refusal is rare, and its drain buffer would otherwise enlarge every
        // connection's future (and so the memory each new connection takes).
        Box::pin(refusal.send(io)).await;
        return;
    }
    let protocol = if h2c && head.starts_with(H2_PREFACE_HEAD) {
        let read = read_preface(&mut io, &mut head, options.limits.handshake_timeout);
        let complete = tokio::select! {
            complete = read => complete,
            () = &mut shutdown => return,
        };
        if !complete {
            tracing::debug!(%peer, "incomplete HTTP/2 preface; closing");
            return;
        }
        Protocol::Http2
    } else {
        Protocol::Http1
    };
    serve_http(shared, Rewind::new(io, head), protocol, service, shutdown).await;
}

/// Reads into `buf` until it holds the whole HTTP/2 client preface (RFC 9113 section 3.4),
/// within `timeout`, so that a client that chose HTTP/2 and then stays silent is dropped like
/// a slow HTTP/1.1 one instead of holding a connection slot forever. `false`: the preface is
/// wrong, incomplete or late, and the connection should be closed.
async fn read_preface<I: AsyncRead + Unpin>(
    io: &mut I,
    buf: &mut BytesMut,
    timeout: Duration,
) -> bool {
    let read = async {
        while buf.len() < H2_PREFACE.len() {
            let missing = (H2_PREFACE.len() - buf.len()) as u64;
            if (&mut *io).take(missing).read_buf(buf).await? == 0 {
                return Ok(false);
            }
        }
        Ok::<_, std::io::Error>(buf.starts_with(H2_PREFACE))
    };
    matches!(tokio::time::timeout(timeout, read).await, Ok(Ok(true)))
}

/// Hands the connection to hyper with `protocol` and drives it, closing it gracefully (GOAWAY
/// for HTTP/2, RFC 9113 section 6.8) when the server shuts down.
async fn serve_http<I, S, B>(
    shared: &Shared,
    io: I,
    protocol: Protocol,
    service: ConnectionService<S>,
    mut shutdown: Waiter,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    S: HttpService<B>,
    B: ResponseBody,
{
    let peer = service.info.peer_addr;
    let tls = service.tls.is_some();
    tracing::debug!(%peer, http = protocol.name(), tls, "serving connection");
    let io = TokioIo::new(io);
    let result = match protocol {
        Protocol::Http1 => {
            let connection = shared.http1.serve_connection(io, service).with_upgrades();
            drive(pin!(connection), &mut shutdown, |c| c.graceful_shutdown()).await
        }
        Protocol::Http2 => {
            let connection = shared.http2.serve_connection(io, service);
            drive(pin!(connection), &mut shutdown, |c| c.graceful_shutdown()).await
        }
    };
    if let Err(error) = result {
        tracing::debug!(%peer, http = protocol.name(), %error, "HTTP connection ended with an error");
    }
}

/// Runs `connection` to its end; when `shutdown` fires first, asks it to close gracefully and
/// waits for that.
async fn drive<C, E>(
    mut connection: Pin<&mut C>,
    shutdown: &mut Waiter,
    graceful: impl FnOnce(Pin<&mut C>),
) -> Result<(), E>
where
    C: Future<Output = Result<(), E>>,
{
    tokio::select! {
        result = connection.as_mut() => result,
        () = shutdown => {
            graceful(connection.as_mut());
            connection.await
        }
    }
}

/// The user's tower service as hyper wants it, putting the connection's [`ConnectionInfo`],
/// [`TlsInfo`] and shutdown [`Tracking`] into every request's extensions on the way.
#[derive(Debug, Clone)]
struct ConnectionService<S> {
    inner: S,
    info: ConnectionInfo,
    tls: Option<TlsInfo>,
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
        if let Some(tls) = &self.tls {
            request.extensions_mut().insert(tls.clone());
        }
        request.extensions_mut().insert(self.tracking.clone());
        let mut inner = self.inner.clone();
        Box::pin(async move {
            poll_fn(|cx| inner.poll_ready(cx)).await?;
            inner.call(request).await
        })
    }
}
