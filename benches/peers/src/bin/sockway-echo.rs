//! sockway's echo server for the comparison: the `Server` runner with a `WebSocketLayer`,
//! echoing whole messages with `recv` and `send`. Settings are the library defaults (keep-alive
//! on, 4 KiB receive buffer) except the 64 MiB message limit, a connection limit high enough
//! for the idle-memory run, no signal handling (SIGTERM ends it at once, like the peers), and
//! permessage-deflate with its defaults when `--compression` is given.

use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use sockway::server::{
    service_fn, AcceptOptions, Body, Layer, Server, ServerOptions, ServerTls, ServerWebSocket,
    UpgradeInfo, WebSocketLayer,
};
use sockway::DeflateConfig;
use sockway_bench_peers::{
    args, dealing_listener, reuse_port_listeners, run, tls_pem, MAX_MESSAGE,
};

/// Echoes every message back until the peer closes. Like the peers' handlers, which are
/// given nothing of the request, it keeps nothing of it: the request's info (headers and all)
/// is dropped at once instead of living as long as the socket.
async fn echo(mut socket: ServerWebSocket, info: UpgradeInfo) {
    drop(info);
    while let Ok(Some(message)) = socket.recv().await {
        if socket.send(message).await.is_err() {
            break;
        }
    }
}

/// Anything that is not a WebSocket request.
async fn not_found(_request: Request<Incoming>) -> Response<Body> {
    let mut response = Response::new(Body::default());
    *response.status_mut() = StatusCode::NOT_FOUND;
    response
}

fn main() {
    let args = args("sockway-echo", true);
    let accept = AcceptOptions::default()
        .max_message_size(MAX_MESSAGE)
        .compression(args.compression.then(DeflateConfig::default));
    let app = WebSocketLayer::new(echo)
        .options(accept)
        .layer(service_fn(not_found));
    let options = ServerOptions::default()
        .max_connections(1_000_000)
        .handle_signals(false);
    let mut server = Server::new(options);
    if let Some(dir) = &args.tls {
        let (cert, key) = tls_pem(dir);
        server = server.tls(ServerTls::from_pem(&cert, &key).expect("cert.pem and key.pem"));
    }
    if args.dealt {
        let layout = "Server::serve_threads: a tokio current_thread runtime per thread";
        let listener = dealing_listener("sockway-echo", &args, layout);
        server
            .serve_threads(listener, args.threads, app)
            .expect("server threads");
    } else if args.per_core {
        let layout = "Server::serve_per_core: a tokio current_thread runtime per thread";
        let listeners = reuse_port_listeners("sockway-echo", &args, layout);
        server
            .serve_per_core(listeners, app)
            .expect("server threads");
    } else {
        run("sockway-echo", args, |listener| server.serve(listener, app));
    }
}
