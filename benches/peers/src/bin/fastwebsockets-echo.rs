//! fastwebsockets' echo server for the comparison, as its own example builds one: hyper's
//! HTTP/1 server with upgrades, `fastwebsockets::upgrade::upgrade`, and a `FragmentCollector`
//! echoing whole messages (`read_frame`, `write_frame`). Auto-pong and auto-close stay on.

use fastwebsockets::{upgrade, FragmentCollector, OpCode, WebSocketError};
use http_body_util::Empty;
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use sockway_bench_peers::{accept, args, run, tls_acceptor, tls_handshake, MAX_MESSAGE};
use tokio::io::{AsyncRead, AsyncWrite};

/// Echoes data messages until the peer closes.
async fn echo(upgrade: upgrade::UpgradeFut) -> Result<(), WebSocketError> {
    let mut socket = upgrade.await?;
    socket.set_max_message_size(MAX_MESSAGE);
    let mut socket = FragmentCollector::new(socket);
    loop {
        let frame = socket.read_frame().await?;
        match frame.opcode {
            OpCode::Close => return Ok(()),
            OpCode::Text | OpCode::Binary => socket.write_frame(frame).await?,
            _ => {}
        }
    }
}

/// Answers the upgrade and runs the echo in a task of its own.
async fn upgrade(mut request: Request<Incoming>) -> Result<Response<Empty<Bytes>>, WebSocketError> {
    let (response, socket) = upgrade::upgrade(&mut request)?;
    tokio::spawn(async move {
        let _ = echo(socket).await;
    });
    Ok(response)
}

/// Serves HTTP/1.1 with upgrades on one connection.
async fn serve_http<S: AsyncRead + AsyncWrite + Unpin + Send + 'static>(stream: S) {
    let _ = http1::Builder::new()
        .serve_connection(TokioIo::new(stream), service_fn(upgrade))
        .with_upgrades()
        .await;
}

fn main() {
    let args = args("fastwebsockets-echo", false);
    let acceptor = args.tls.as_deref().map(tls_acceptor);
    run("fastwebsockets-echo", args, |listener| async move {
        loop {
            let stream = accept(&listener).await;
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                match acceptor {
                    None => serve_http(stream).await,
                    Some(acceptor) => {
                        if let Some(stream) = tls_handshake(acceptor, stream).await {
                            serve_http(stream).await;
                        }
                    }
                }
            });
        }
    });
}
