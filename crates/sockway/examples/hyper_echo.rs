//! An echo server on plain hyper, without the runner or a framework: the lowest level of
//! the server API. Any route can ask [`is_websocket_request`] and call [`accept`]; the
//! response goes back through hyper, and the socket arrives once it has.
//!
//! ```text
//! cargo run -p sockway --example hyper_echo [ADDR]      # default 127.0.0.1:9001
//! ```
//!
//! `/ws` echoes whole messages; a plain request there gets 400; other paths 404.

use std::convert::Infallible;
use std::net::SocketAddr;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use sockway::server::{accept, is_websocket_request, AcceptOptions, Body, ServerWebSocket};
use tokio::net::TcpListener;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let address = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:9001".to_owned());
    let listener = TcpListener::bind(&address).await?;
    println!("echo on ws://{}/ws", listener.local_addr()?);
    loop {
        let (stream, peer) = listener.accept().await?;
        tokio::spawn(async move {
            let service =
                service_fn(move |request| async move { Ok::<_, Infallible>(route(request, peer)) });
            let connection = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                // Without this, hyper never hands over the upgraded connection.
                .with_upgrades();
            if let Err(error) = connection.await {
                eprintln!("{peer}: {error}");
            }
        });
    }
}

fn route(mut request: Request<Incoming>, peer: SocketAddr) -> Response<Body> {
    if request.uri().path() != "/ws" {
        return text(StatusCode::NOT_FOUND, "not found; the echo is at /ws\n");
    }
    if !is_websocket_request(&request) {
        return text(
            StatusCode::BAD_REQUEST,
            "/ws only takes WebSocket requests\n",
        );
    }
    match accept(&mut request, &AcceptOptions::default()) {
        Ok((response, pending)) => {
            tokio::spawn(async move {
                match pending.await {
                    Ok(socket) => echo(socket, peer).await,
                    Err(error) => eprintln!("{peer}: upgrade failed: {error}"),
                }
            });
            response
        }
        // 400/403/405/426 with a body saying why.
        Err(rejection) => rejection.into_response(),
    }
}

async fn echo(mut socket: ServerWebSocket, peer: SocketAddr) {
    println!("{peer}: open");
    while let Ok(Some(message)) = socket.recv().await {
        if socket.send(message).await.is_err() {
            break;
        }
    }
    match socket.close_info() {
        Some(info) => println!("{peer}: closed with {} {:?}", info.code, info.reason),
        None => println!("{peer}: connection lost"),
    }
}

fn text(status: StatusCode, body: &'static str) -> Response<Body> {
    let mut response = Response::new(Body::new(Bytes::from_static(body.as_bytes())));
    *response.status_mut() = status;
    response
}
