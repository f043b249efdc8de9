//! `Server::serve_per_core` over loopback: connections spread over the threads'
//! `SO_REUSEPORT` listeners and echo on the thread that accepted them, one connection limit
//! for all threads (503 beyond it), and one shutdown that closes every thread's sockets with
//! 1001 and ends the call.

mod server_support;

use std::collections::HashSet;
use std::net::SocketAddr;

use server_support::*;
use sockway::server::{
    reuse_port_listeners, Layer, Server, ServerOptions, ServerWebSocket, UpgradeInfo,
    WebSocketLayer,
};
use sockway::Message;
use tokio::io::AsyncWriteExt;

/// Answers every message with the name of the thread the socket runs on.
async fn thread_name(mut socket: ServerWebSocket, _info: UpgradeInfo) {
    while let Ok(Some(_)) = socket.recv().await {
        let name = std::thread::current()
            .name()
            .unwrap_or("unnamed")
            .to_owned();
        if socket.send(Message::text(name)).await.is_err() {
            break;
        }
    }
}

/// Starts `threads` threads of one server on 127.0.0.1, any port; `task` ends when
/// `serve_per_core` returns (and fails the test if it returned an error).
fn start(options: ServerOptions, threads: usize) -> TestServer {
    let listeners =
        reuse_port_listeners(SocketAddr::from(([127, 0, 0, 1], 0)), threads).expect("bind");
    assert_eq!(listeners.len(), threads);
    let addr = listeners[0].local_addr().expect("local addr");
    for listener in &listeners {
        assert_eq!(listener.local_addr().expect("local addr"), addr);
    }
    let server = Server::new(options.handle_signals(false));
    let handle = server.shutdown_handle();
    let app = WebSocketLayer::new(thread_name)
        .path("/ws")
        .layer(not_found());
    let task = tokio::task::spawn_blocking(move || {
        server
            .serve_per_core(listeners, app)
            .expect("serve_per_core");
    });
    TestServer { addr, handle, task }
}

#[tokio::test]
async fn connections_spread_over_the_threads_and_stay_on_theirs() {
    let server = start(ServerOptions::default(), 2);
    let mut names = HashSet::new();
    for _ in 0..32 {
        let mut socket = open_client(&server, "/ws").await;
        let mut seen = HashSet::new();
        for _ in 0..3 {
            within("send", socket.send(Message::text("which thread?")))
                .await
                .unwrap();
            let reply = within("reply", socket.recv()).await.unwrap();
            let Some(Message::Text(name)) = reply else {
                panic!("expected a text reply, got {reply:?}");
            };
            seen.insert(name.to_string());
        }
        assert_eq!(seen.len(), 1, "one socket answered from {seen:?}");
        names.extend(seen);
    }
    // 32 connections from distinct source ports all hashed to one of two listeners would
    // happen about once in 2^31 runs.
    let expected: HashSet<String> = ["sockway-server-0", "sockway-server-1"]
        .map(String::from)
        .into();
    assert_eq!(names, expected);
    server.handle.shutdown();
    within("serve_per_core returns", server.task).await.unwrap();
}

#[tokio::test]
async fn one_connection_limit_counts_every_thread() {
    let server = start(ServerOptions::default().max_connections(2), 2);
    let (_first, _) = open_raw(&server, "/ws", &[]).await;
    let (_second, _) = open_raw(&server, "/ws", &[]).await;
    // Whichever thread accepts them, the two sockets above fill the server.
    for _ in 0..6 {
        let refused = request(&server, &handshake("/ws", &[])).await;
        assert_eq!(refused.status, 503, "{refused:?}");
        assert!(
            refused.body.contains("limit of 2 open connections"),
            "{refused:?}"
        );
    }
    server.handle.shutdown();
}

#[tokio::test]
async fn shutdown_closes_the_sockets_of_every_thread_with_1001() {
    let server = start(ServerOptions::default(), 2);
    let mut sockets = Vec::new();
    for _ in 0..8 {
        sockets.push(open_raw(&server, "/ws", &[]).await);
    }
    server.handle.shutdown();
    for (stream, buf) in &mut sockets {
        let close = within("close frame", read_frame(stream, buf))
            .await
            .expect("close frame");
        assert_eq!(close.close_code(), Some(1001), "{close:?}");
        write_frame(stream, 0x8, &close.payload[..2], true).await;
        within("EOF", wait_for_eof(stream)).await;
        stream.shutdown().await.unwrap();
    }
    within("serve_per_core returns", server.task).await.unwrap();
    assert!(tokio::net::TcpStream::connect(server.addr).await.is_err());
}
