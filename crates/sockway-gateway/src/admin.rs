//! The admin listener: `GET /metrics` ([`crate::metrics`], Prometheus text format 0.0.4),
//! `GET /healthz` (200 while the gateway runs) and `GET /backend-health` (JSON, see
//! [`crate::health_view`]). It is a separate socket so that metrics are
//! never exposed on the public listeners; bind it to a private address.
//!
//! Who may ask: with `admin.bearerToken` set, every request must carry
//! `Authorization: Bearer <token>` (RFC 6750 section 2.1; 401 with `WWW-Authenticate: Bearer`
//! otherwise, section 3); without one, only loopback peers are answered (403 for others), so
//! an admin address bound to a public interface by mistake exposes nothing. The token is read
//! from the current configuration at each request, so a reload changes it.
//!
//! An accept error (out of file descriptors, say) is retried after a pause that doubles from
//! 10 ms up to 1 s ([`Backoff`]), instead of a loop that spins on the error.

use std::convert::Infallible;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use http::header::{AUTHORIZATION, CONTENT_TYPE, WWW_AUTHENTICATE};
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use crate::proxy::body::{full, refusal, ProxyBody};
use crate::state::Shared;

/// Serves the admin endpoints on `listener` until `shutdown` turns true.
pub fn start(
    shared: Arc<Shared>,
    listener: TcpListener,
    shutdown: watch::Receiver<bool>,
) -> SocketAddr {
    let addr = listener
        .local_addr()
        .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 0)));
    tokio::spawn(accept_loop(
        AcceptAll(listener),
        shutdown,
        move |(stream, peer)| serve(shared.clone(), stream, peer),
    ));
    addr
}

/// Something connections are accepted from (a trait so the loop can be tested with a
/// listener that fails).
pub(crate) trait Acceptor: Send + 'static {
    /// What one accept yields.
    type Conn: Send;
    /// The next connection.
    fn accept(&mut self) -> impl Future<Output = std::io::Result<Self::Conn>> + Send;
}

/// A TCP listener as an [`Acceptor`].
struct AcceptAll(TcpListener);

impl Acceptor for AcceptAll {
    type Conn = (TcpStream, SocketAddr);

    fn accept(&mut self) -> impl Future<Output = std::io::Result<Self::Conn>> + Send {
        self.0.accept()
    }
}

/// The pause after consecutive accept errors: 10 ms, doubling, at most 1 s; reset by a
/// successful accept.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Backoff(Duration);

impl Backoff {
    const FIRST: Duration = Duration::from_millis(10);
    const MAX: Duration = Duration::from_secs(1);

    fn new() -> Self {
        Self(Self::FIRST)
    }

    /// The pause to take now; the next one is twice as long (up to [`Self::MAX`]).
    fn next(&mut self) -> Duration {
        let now = self.0;
        self.0 = (self.0 * 2).min(Self::MAX);
        now
    }
}

/// Accepts until `shutdown`, handing each connection to `on_conn`; pauses after errors.
pub(crate) async fn accept_loop<A: Acceptor>(
    mut acceptor: A,
    mut shutdown: watch::Receiver<bool>,
    mut on_conn: impl FnMut(A::Conn) + Send,
) {
    let mut backoff = Backoff::new();
    loop {
        let accepted = tokio::select! {
            a = acceptor.accept() => a,
            _ = shutdown.wait_for(|s| *s) => return,
        };
        match accepted {
            Ok(conn) => {
                backoff = Backoff::new();
                on_conn(conn);
            }
            Err(error) => {
                let pause = backoff.next();
                tracing::warn!(%error, ?pause, "admin listener: accept failed");
                tokio::select! {
                    _ = tokio::time::sleep(pause) => {}
                    _ = shutdown.wait_for(|s| *s) => return,
                }
            }
        }
    }
}

fn serve(shared: Arc<Shared>, stream: TcpStream, peer: SocketAddr) {
    tokio::spawn(async move {
        let service = service_fn(move |request| answer(shared.clone(), peer.ip(), request));
        let _ = tokio::time::timeout(
            Duration::from_secs(30),
            hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service),
        )
        .await;
    });
}

/// Why the admin listener refused a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refused {
    /// No token is configured and the peer is not on loopback: 403.
    NotLoopback,
    /// A token is configured and none was presented: 401.
    MissingToken,
    /// A token is configured and another was presented: 401, `error="invalid_token"`.
    WrongToken,
}

impl Refused {
    /// The response: a status, a `Bearer` challenge for 401s, a body saying why.
    pub(crate) fn into_response(self) -> Response<ProxyBody> {
        let (challenge, message) = match self {
            Refused::NotLoopback => {
                return refusal(
                    StatusCode::FORBIDDEN,
                    "the admin listener answers loopback clients only \
                     (set admin.bearerToken to allow others)",
                )
            }
            Refused::MissingToken => (
                "Bearer realm=\"sockway-gateway\"",
                "the admin listener needs Authorization: Bearer <admin.bearerToken>",
            ),
            Refused::WrongToken => (
                "Bearer realm=\"sockway-gateway\", error=\"invalid_token\"",
                "the bearer token is not the admin token",
            ),
        };
        let mut response = refusal(StatusCode::UNAUTHORIZED, message);
        response
            .headers_mut()
            .insert(WWW_AUTHENTICATE, HeaderValue::from_static(challenge));
        response
    }
}

/// Whether a request from `peer` with `headers` may be answered, given the configured
/// `token`.
pub(crate) fn authorize(
    peer: IpAddr,
    headers: &HeaderMap,
    token: Option<&str>,
) -> Result<(), Refused> {
    let Some(token) = token else {
        return if peer.to_canonical().is_loopback() {
            Ok(())
        } else {
            Err(Refused::NotLoopback)
        };
    };
    let presented = headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, credentials)| credentials.trim());
    match presented {
        Some(given) if same_secret(given.as_bytes(), token.as_bytes()) => Ok(()),
        Some(_) => Err(Refused::WrongToken),
        None => Err(Refused::MissingToken),
    }
}

/// Compares without stopping at the first difference, so the time taken does not tell an
/// attacker how much of a guess was right.
fn same_secret(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn answer(
    shared: Arc<Shared>,
    peer: IpAddr,
    request: Request<Incoming>,
) -> Result<Response<ProxyBody>, Infallible> {
    let runtime = shared.current();
    let token = runtime
        .config
        .admin
        .as_ref()
        .and_then(|a| a.bearer_token.as_deref());
    if let Err(refused) = authorize(peer, request.headers(), token) {
        return Ok(refused.into_response());
    }
    if request.method() != Method::GET {
        return Ok(refusal(
            StatusCode::METHOD_NOT_ALLOWED,
            "the admin listener only answers GET",
        ));
    }
    Ok(match request.uri().path() {
        "/metrics" => {
            let idle = |b: &crate::pool::Backend| shared.connections.idle(&b.id) as u64;
            let text =
                shared
                    .metrics
                    .render(runtime.upstreams.values(), shared.sessions.count(), &idle);
            let mut response = Response::new(full(text));
            response.headers_mut().insert(
                CONTENT_TYPE,
                HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
            );
            response
        }
        "/healthz" => Response::new(full("ok\n")),
        "/backend-health" => {
            let view = crate::health_view::to_json(&crate::health_view::collect(&runtime));
            let mut response = Response::new(full(view.to_string()));
            response
                .headers_mut()
                .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            response
        }
        _ => refusal(
            StatusCode::NOT_FOUND,
            "the admin listener serves /metrics, /healthz and /backend-health",
        ),
    })
}

#[cfg(test)]
#[path = "admin_tests.rs"]
mod tests;
