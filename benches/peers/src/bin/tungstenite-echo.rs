//! tokio-tungstenite's echo server for the comparison: `accept_async_with_config` on each
//! accepted TCP stream, echoing whole messages with `next` and `send` (which flushes).

use futures_util::{SinkExt, StreamExt};
use sockway_bench_peers::{accept, args, run, tls_acceptor, tls_handshake, MAX_MESSAGE};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

/// Runs the handshake, then echoes data messages until the peer closes.
async fn serve<S: AsyncRead + AsyncWrite + Unpin>(stream: S) {
    let config = WebSocketConfig::default()
        .max_message_size(Some(MAX_MESSAGE))
        .max_frame_size(Some(MAX_MESSAGE));
    let Ok(mut socket) = tokio_tungstenite::accept_async_with_config(stream, Some(config)).await
    else {
        return;
    };
    while let Some(Ok(message)) = socket.next().await {
        if (message.is_text() || message.is_binary()) && socket.send(message).await.is_err() {
            break;
        }
    }
}

fn main() {
    let args = args("tungstenite-echo", false);
    let acceptor = args.tls.as_deref().map(tls_acceptor);
    run("tungstenite-echo", args, |listener| async move {
        loop {
            let stream = accept(&listener).await;
            match acceptor.clone() {
                None => drop(tokio::spawn(serve(stream))),
                Some(acceptor) => drop(tokio::spawn(async move {
                    if let Some(stream) = tls_handshake(acceptor, stream).await {
                        serve(stream).await;
                    }
                })),
            }
        }
    });
}
