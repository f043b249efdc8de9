//! `sockway echo`: the seeds' sample app. A WebSocket request on any path is echoed frame by
//! frame, preserving message boundaries; `/` serves the test page; a plain request on `/ws`
//! gets 400.

use std::convert::Infallible;
use std::net::SocketAddr;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use sockway::server::{self, AcceptOptions, Body, ServerWebSocket};
use tokio::net::TcpListener;

/// Flags of `sockway echo`.
#[derive(Debug, clap::Args)]
pub struct EchoArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:5000")]
    listen: SocketAddr,
    /// Largest message accepted, in bytes (close 1009 beyond it).
    #[arg(long, default_value_t = sockway::proto::config::DEFAULT_MAX_MESSAGE_SIZE)]
    max_message_size: usize,
}

/// Serves until the process is stopped.
pub async fn run(args: EchoArgs) -> Result<(), Box<dyn std::error::Error>> {
    let listener = TcpListener::bind(args.listen).await?;
    let options = AcceptOptions::default().max_message_size(args.max_message_size);
    tracing::info!(address = %listener.local_addr()?, "echo server listening; page at /, WebSocket at /ws");
    loop {
        let (stream, peer) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        let options = options.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request| {
                let options = options.clone();
                async move { Ok::<_, Infallible>(route(request, &options, peer)) }
            });
            let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
            if let Err(error) = builder
                .serve_connection_with_upgrades(TokioIo::new(stream), service)
                .await
            {
                tracing::debug!(%peer, %error, "HTTP connection ended with an error");
            }
        });
    }
}

fn route(
    mut request: Request<Incoming>,
    options: &AcceptOptions,
    peer: SocketAddr,
) -> Response<Body> {
    if server::is_websocket_request(&request) {
        return match server::accept(&mut request, options) {
            Ok((response, pending)) => {
                tokio::spawn(async move {
                    match pending.await {
                        Ok(socket) => echo(socket, peer).await,
                        Err(error) => tracing::warn!(%peer, %error, "upgrade failed"),
                    }
                });
                response
            }
            Err(rejection) => {
                tracing::info!(%peer, status = %rejection.status, reason = %rejection.message, "handshake refused");
                rejection.into_response()
            }
        };
    }
    match request.uri().path() {
        "/ws" => text(
            StatusCode::BAD_REQUEST,
            "this endpoint only accepts WebSocket requests\n",
        ),
        "/" => text(
            StatusCode::OK,
            "sockway echo server: connect a WebSocket client to /ws\n",
        ),
        _ => text(StatusCode::NOT_FOUND, "not found\n"),
    }
}

fn text(status: StatusCode, body: &'static str) -> Response<Body> {
    let mut response = Response::new(Body::new(Bytes::from_static(body.as_bytes())));
    *response.status_mut() = status;
    response
}

/// Echoes every piece of every message back as it arrives, keeping message boundaries.
async fn echo(mut socket: ServerWebSocket, peer: SocketAddr) {
    tracing::info!(%peer, "WebSocket opened");
    let result = async {
        while let Some(piece) = socket.recv_fragment().await? {
            socket
                .send_fragment(piece.kind, &piece.data, piece.end_of_message)
                .await?;
        }
        Ok::<(), sockway::Error>(())
    }
    .await;
    match (result, socket.close_info()) {
        (Err(error), _) => tracing::info!(%peer, %error, "WebSocket failed"),
        (Ok(()), Some(info)) => {
            tracing::info!(%peer, code = %info.code, reason = %info.reason, "WebSocket closed")
        }
        (Ok(()), None) => tracing::info!(%peer, "WebSocket closed"),
    }
}
