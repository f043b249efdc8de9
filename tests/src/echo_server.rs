//! An in-process sockway echo server on loopback, built the way an application would build one:
//! hyper serving HTTP/1.1 and HTTP/2, [`sockway::server::accept`] on every request (a route
//! dedicated to WebSockets, so refusals come from the library), and an echo loop on one of the
//! socket's receive APIs ([`EchoMode`]); the default is the loop of ASP.NET Core's WebSockets
//! sample, which returns every frame as it arrives, keeping message boundaries (as `sockway echo`
//! does).

use std::convert::Infallible;
use std::net::SocketAddr;

use http::{Request, Response};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use sockway::server::{self, AcceptOptions, Body, ServerWebSocket};
use sockway::{MessageKind, ReceivedKind};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// Which receive API the echo loop uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EchoMode {
    /// `recv_fragment` / `send_fragment`: frame by frame, keeping the peer's framing.
    Frames,
    /// `recv` / `send`: whole messages.
    Messages,
    /// `receive` into a buffer of this many bytes / `send_fragment` of what it got: the
    /// `ReceiveAsync` loop of ASP.NET Core's WebSockets sample.
    Buffer(usize),
}

/// A running echo server; stops accepting when dropped.
#[derive(Debug)]
pub struct EchoServer {
    addr: SocketAddr,
    task: JoinHandle<()>,
}

impl EchoServer {
    /// Starts a frame-by-frame echo server on `127.0.0.1` with an OS-chosen port.
    pub async fn start(options: AcceptOptions) -> std::io::Result<Self> {
        Self::start_with(options, EchoMode::Frames).await
    }

    /// Starts an echo server using `mode` on `127.0.0.1` with an OS-chosen port.
    pub async fn start_with(options: AcceptOptions, mode: EchoMode) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let _ = stream.set_nodelay(true);
                let options = options.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |request| {
                        let options = options.clone();
                        async move { Ok::<_, Infallible>(route(request, &options, mode)) }
                    });
                    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .serve_connection_with_upgrades(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Ok(Self { addr, task })
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `ws://` URL of its `/ws` endpoint.
    pub fn url(&self) -> String {
        format!("ws://{}/ws", self.addr)
    }
}

impl Drop for EchoServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn route(
    mut request: Request<Incoming>,
    options: &AcceptOptions,
    mode: EchoMode,
) -> Response<Body> {
    match server::accept(&mut request, options) {
        Ok((response, pending)) => {
            tokio::spawn(async move {
                if let Ok(socket) = pending.await {
                    match mode {
                        EchoMode::Frames => echo_frames(socket).await,
                        EchoMode::Messages => echo_messages(socket).await,
                        EchoMode::Buffer(size) => echo_buffer(socket, size).await,
                    }
                }
            });
            response
        }
        Err(rejection) => rejection.into_response(),
    }
}

/// The echo loop: each data frame is sent back as it arrives (`recv_fragment` /
/// `send_fragment`), until the connection closes or fails. A receive returns `None` only once
/// the close handshake and the TCP close are over, so nothing is left to do after the loop.
async fn echo_frames(mut socket: ServerWebSocket) {
    while let Ok(Some(piece)) = socket.recv_fragment().await {
        if socket
            .send_fragment(piece.kind, &piece.data, piece.end_of_message)
            .await
            .is_err()
        {
            break;
        }
    }
}

/// Whole messages back as whole messages.
async fn echo_messages(mut socket: ServerWebSocket) {
    while let Ok(Some(message)) = socket.recv().await {
        if socket.send(message).await.is_err() {
            break;
        }
    }
}

/// Receives into a `size`-byte buffer and sends back each piece as a fragment.
async fn echo_buffer(mut socket: ServerWebSocket, size: usize) {
    let mut buf = vec![0; size.max(1)];
    while let Ok(result) = socket.receive(&mut buf).await {
        let kind = match result.kind {
            ReceivedKind::Text => MessageKind::Text,
            ReceivedKind::Binary => MessageKind::Binary,
            ReceivedKind::Close(_) => break,
        };
        let piece = &buf[..result.count];
        if socket
            .send_fragment(kind, piece, result.end_of_message)
            .await
            .is_err()
        {
            break;
        }
    }
}
