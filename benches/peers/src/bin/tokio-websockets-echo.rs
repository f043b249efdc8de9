//! tokio-websockets' echo server for the comparison: `ServerBuilder::accept` on each accepted
//! TCP stream, echoing whole messages with `next` and `send` (which flushes).

use futures_util::{SinkExt, StreamExt};
use sockway_bench_peers::{accept, args, run, tls_acceptor, tls_handshake, MAX_MESSAGE};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_websockets::{Limits, ServerBuilder};

/// Runs the handshake, then echoes data messages until the peer closes.
async fn serve<S: AsyncRead + AsyncWrite + Unpin>(stream: S) {
    let builder = ServerBuilder::new().limits(Limits::default().max_payload_len(Some(MAX_MESSAGE)));
    let Ok((_request, mut socket)) = builder.accept(stream).await else {
        return;
    };
    while let Some(Ok(message)) = socket.next().await {
        if (message.is_text() || message.is_binary()) && socket.send(message).await.is_err() {
            break;
        }
    }
}

fn main() {
    let args = args("tokio-websockets-echo", false);
    let acceptor = args.tls.as_deref().map(tls_acceptor);
    run("tokio-websockets-echo", args, |listener| async move {
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
