//! Connections to backends: TCP, optionally TLS, then an HTTP/1.1 client connection (with
//! upgrades, for WebSockets) driven in its own task. Ordinary requests reuse idle connections
//! (see [`super::keepalive`]); a WebSocket upgrade takes a new one over.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use http::Request;
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

use std::sync::atomic::Ordering;

use super::body::BackendBody;
use super::keepalive::{self, Attempt, ConnectionCache, KeepAlive, Route};
use crate::pool::Backend;
use crate::tls;

/// A byte stream to a backend: plain TCP or TLS.
#[derive(Debug)]
pub enum BackendIo {
    /// Plain TCP.
    Plain(TcpStream),
    /// TLS over TCP.
    Tls(Box<TlsStream<TcpStream>>),
}

impl AsyncRead for BackendIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            BackendIo::Plain(s) => Pin::new(s).poll_read(cx, buf),
            BackendIo::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for BackendIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            BackendIo::Plain(s) => Pin::new(s).poll_write(cx, buf),
            BackendIo::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            BackendIo::Plain(s) => Pin::new(s).poll_flush(cx),
            BackendIo::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            BackendIo::Plain(s) => Pin::new(s).poll_shutdown(cx),
            BackendIo::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// Opens TCP to `authority` (`host:port`) and, with `tls`, a TLS session verifying `sni`.
pub async fn connect(
    authority: &str,
    tls: Option<&TlsConnector>,
    sni: &str,
) -> Result<BackendIo, String> {
    let tcp = TcpStream::connect(authority)
        .await
        .map_err(|e| format!("connect to {authority}: {e}"))?;
    let _ = tcp.set_nodelay(true);
    match tls {
        None => Ok(BackendIo::Plain(tcp)),
        Some(connector) => {
            let name = tls::server_name(sni)?;
            let stream = connector
                .connect(name, tcp)
                .await
                .map_err(|e| format!("TLS with {authority}: {e}"))?;
            Ok(BackendIo::Tls(Box::new(stream)))
        }
    }
}

/// Starts an HTTP/1.1 client connection on `io` (its driver runs in a task, with upgrades).
pub async fn handshake<B>(io: BackendIo) -> Result<SendRequest<B>, String>
where
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let (sender, conn) = http1::Builder::new()
        .handshake::<_, B>(TokioIo::new(io))
        .await
        .map_err(|e| format!("HTTP handshake: {e}"))?;
    tokio::spawn(async move {
        if let Err(e) = conn.with_upgrades().await {
            tracing::debug!("backend connection ended: {e}");
        }
    });
    Ok(sender)
}

/// Why a request could not be sent to a backend.
#[derive(Debug)]
pub enum SendError<B> {
    /// No connection could be opened (refused, unreachable, TLS failed): not one byte of the
    /// request was written, so it is handed back to be sent to another backend.
    Connect {
        /// What failed.
        why: String,
        /// The request, untouched (boxed: the error stays small).
        request: Box<Request<B>>,
    },
    /// The exchange failed after the connection was open.
    Exchange(String),
}

/// Sends `request` to `backend`, on one of its idle connections when there is one that can
/// take it, on a new connection otherwise; the connection goes back to the idle list when the
/// response has been read (per `keep`). The idle connections are `cache`'s list for the
/// backend.
pub async fn send(
    backend: &Backend,
    cache: &ConnectionCache<BackendBody>,
    tls: Option<&TlsConnector>,
    sni: &str,
    request: Request<BackendBody>,
    keep: KeepAlive,
) -> Result<http::Response<hyper::body::Incoming>, SendError<BackendBody>> {
    let authority = backend.authority();
    let idle = cache.of(&backend.id);
    let route = Route {
        tls: tls.is_some(),
        sni: sni.to_owned(),
    };
    let mut request = request;
    while let Some(mut sender) = idle.take(&route, keep) {
        match keepalive::try_send(&mut sender, request).await {
            Attempt::Done(result) => {
                backend.stats.reused.fetch_add(1, Ordering::Relaxed);
                let response = result
                    .map_err(|e| SendError::Exchange(format!("request to {authority}: {e}")))?;
                idle.give_back_when_ready(sender, route, keep);
                return Ok(response);
            }
            // Closed by the backend while idle: nothing was written; try the next one.
            Attempt::NotSent(unsent) => request = unsent,
        }
    }
    let io = match connect(&authority, tls, sni).await {
        Ok(io) => io,
        Err(why) => {
            return Err(SendError::Connect {
                why,
                request: Box::new(request),
            })
        }
    };
    let mut sender = handshake::<BackendBody>(io)
        .await
        .map_err(SendError::Exchange)?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| SendError::Exchange(format!("request to {authority}: {e}")))?;
    idle.give_back_when_ready(sender, route, keep);
    Ok(response)
}

/// Sends `request` on a new connection of its own to `authority`: a WebSocket upgrade, whose
/// connection the session then owns.
pub async fn send_on_new_connection<B>(
    authority: &str,
    tls: Option<&TlsConnector>,
    sni: &str,
    request: Request<B>,
) -> Result<http::Response<hyper::body::Incoming>, SendError<B>>
where
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let io = match connect(authority, tls, sni).await {
        Ok(io) => io,
        Err(why) => {
            return Err(SendError::Connect {
                why,
                request: Box::new(request),
            })
        }
    };
    let mut sender = handshake::<B>(io).await.map_err(SendError::Exchange)?;
    sender
        .send_request(request)
        .await
        .map_err(|e| SendError::Exchange(format!("request to {authority}: {e}")))
}
