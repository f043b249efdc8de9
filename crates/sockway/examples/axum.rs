//! WebSockets in an axum app, with the [`WebSocketUpgrade`] extractor, served by sockway's
//! runner (limits, graceful shutdown closing sockets with 1001, HTTP/2 on).
//!
//! ```text
//! cargo run -p sockway --features axum --example axum [ADDR]    # default 127.0.0.1:3000
//! ```
//!
//! `/ws` echoes; `/ws/chat` speaks the `chat` subprotocol and accepts only the origin
//! `http://localhost:3000`; `/` says where things are.

use axum::response::IntoResponse;
use axum::routing::{any, get};
use axum::{Extension, Router};
use sockway::server::axum::WebSocketUpgrade;
use sockway::server::{AcceptOptions, Server, ServerOptions};
use sockway::Message;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let address = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:3000".to_owned());
    let app = Router::new()
        .route(
            "/",
            get(|| async { "WebSocket echo at /ws, chat at /ws/chat\n" }),
        )
        // `any`, not `get`: over HTTP/2 a WebSocket request is a CONNECT (RFC 8441).
        .route("/ws", any(echo))
        .route("/ws/chat", any(chat))
        // Options for every WebSocketUpgrade under this router; handlers may change them.
        .layer(Extension(
            AcceptOptions::default().max_message_size(1 << 20),
        ));

    let listener = tokio::net::TcpListener::bind(&address).await?;
    println!("listening on http://{}", listener.local_addr()?);
    Server::new(ServerOptions::default().http2(true))
        .serve(listener, app)
        .await;
    Ok(())
}

async fn echo(ws: WebSocketUpgrade) -> impl IntoResponse {
    ws.on_upgrade(|mut socket| async move {
        while let Ok(Some(message)) = socket.recv().await {
            if socket.send(message).await.is_err() {
                break;
            }
        }
    })
}

async fn chat(ws: WebSocketUpgrade) -> impl IntoResponse {
    let peer = ws.info().peer_addr();
    ws.protocols(["chat"])
        .allowed_origins(["http://localhost:3000"])
        .on_upgrade(move |mut socket| async move {
            let hello = format!("hello {peer:?}; say something");
            if socket.send(Message::text(hello)).await.is_err() {
                return;
            }
            while let Ok(Some(message)) = socket.recv().await {
                if let Message::Text(text) = message {
                    let reply = format!("you said: {}", text.as_str());
                    if socket.send(Message::text(reply)).await.is_err() {
                        break;
                    }
                }
            }
        })
}
