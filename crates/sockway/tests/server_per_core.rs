//! `Server::serve_per_core` and `Server::serve_threads` over loopback: connections spread
//! over the threads (by the kernel over `SO_REUSEPORT` listeners, or dealt by thread 0 to the
//! thread with the fewest) and echo on the thread they were given to, one connection limit
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
use sockway::{CloseCode, Message};
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

/// How the threads of the server under test get their connections.
#[derive(Debug, Clone, Copy)]
enum Layout {
    /// `serve_per_core`: a `SO_REUSEPORT` listener per thread.
    PerCore,
    /// `serve_threads`: one listener, thread 0 dealing.
    Dealt,
}

/// Starts `threads` threads of one server on 127.0.0.1, any port; `task` ends when the serve
/// call returns (and fails the test if it returned an error).
fn start(options: ServerOptions, threads: usize, layout: Layout) -> TestServer {
    let server = Server::new(options.handle_signals(false));
    let handle = server.shutdown_handle();
    let app = WebSocketLayer::new(thread_name)
        .path("/ws")
        .layer(not_found());
    let any_port = SocketAddr::from(([127, 0, 0, 1], 0));
    let (addr, task) = match layout {
        Layout::PerCore => {
            let listeners = reuse_port_listeners(any_port, threads).expect("bind");
            assert_eq!(listeners.len(), threads);
            let addr = listeners[0].local_addr().expect("local addr");
            for listener in &listeners {
                assert_eq!(listener.local_addr().expect("local addr"), addr);
            }
            let task = tokio::task::spawn_blocking(move || {
                server
                    .serve_per_core(listeners, app)
                    .expect("serve_per_core");
            });
            (addr, task)
        }
        Layout::Dealt => {
            let listener = std::net::TcpListener::bind(any_port).expect("bind");
            let addr = listener.local_addr().expect("local addr");
            let task = tokio::task::spawn_blocking(move || {
                server
                    .serve_threads(listener, threads, app)
                    .expect("serve_threads");
            });
            (addr, task)
        }
    };
    TestServer { addr, handle, task }
}

/// The name of the thread `socket`'s connection runs on, asked `times` times (all answers
/// must agree: a connection never moves).
async fn thread_of(socket: &mut sockway::WebSocket<tokio::net::TcpStream>, times: usize) -> String {
    let mut seen = HashSet::new();
    for _ in 0..times {
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
    seen.into_iter().next().unwrap_or_default()
}

#[tokio::test]
async fn connections_spread_over_the_threads_and_stay_on_theirs() {
    let server = start(ServerOptions::default(), 2, Layout::PerCore);
    let mut names = HashSet::new();
    for _ in 0..32 {
        let mut socket = open_client(&server, "/ws").await;
        names.insert(thread_of(&mut socket, 3).await);
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
async fn dealt_connections_alternate_between_the_threads_and_stay_on_theirs() {
    let server = start(ServerOptions::default(), 3, Layout::Dealt);
    let mut sockets = Vec::new();
    let mut names = Vec::new();
    for _ in 0..7 {
        let mut socket = open_client(&server, "/ws").await;
        names.push(thread_of(&mut socket, 3).await);
        sockets.push(socket);
    }
    // Each goes to the thread with the fewest, the first of them on a tie.
    let expected = [0, 1, 2, 0, 1, 2, 0].map(|index| format!("sockway-server-{index}"));
    assert_eq!(names, expected);
    drop(sockets);
    server.handle.shutdown();
    within("serve_threads returns", server.task).await.unwrap();
}

#[tokio::test]
async fn a_thread_whose_connections_closed_is_dealt_the_next_ones() {
    let server = start(ServerOptions::default(), 2, Layout::Dealt);
    let mut kept = Vec::new();
    for _ in 0..4 {
        let mut socket = open_client(&server, "/ws").await;
        let name = thread_of(&mut socket, 1).await;
        kept.push((name, socket));
    }
    // Close thread 1's two; once the server has counted them gone, thread 1 has none
    // against thread 0's two, so the next two connections both go there.
    let (on_zero, on_one): (Vec<_>, Vec<_>) = kept
        .into_iter()
        .partition(|(name, _)| name == "sockway-server-0");
    assert_eq!((on_zero.len(), on_one.len()), (2, 2));
    for (_, mut socket) in on_one {
        within("close", socket.close(CloseCode::NORMAL, ""))
            .await
            .unwrap();
    }
    let mut dealt = Vec::new();
    for _ in 0..200 {
        let mut socket = open_client(&server, "/ws").await;
        let name = thread_of(&mut socket, 1).await;
        if name == "sockway-server-1" {
            dealt.push(socket);
            if dealt.len() == 2 {
                break;
            }
        } else {
            // Dealt before the closes were counted: give it back and ask again.
            within("close", socket.close(CloseCode::NORMAL, ""))
                .await
                .unwrap();
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    }
    assert_eq!(
        dealt.len(),
        2,
        "thread 1 was not dealt the next connections"
    );
    drop((on_zero, dealt));
    server.handle.shutdown();
    within("serve_threads returns", server.task).await.unwrap();
}

#[tokio::test]
async fn one_connection_limit_counts_every_thread() {
    for layout in [Layout::PerCore, Layout::Dealt] {
        one_limit_for_every_thread(layout).await;
    }
}

async fn one_limit_for_every_thread(layout: Layout) {
    let server = start(ServerOptions::default().max_connections(2), 2, layout);
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
    for layout in [Layout::PerCore, Layout::Dealt] {
        shutdown_closes_every_thread(layout).await;
    }
}

async fn shutdown_closes_every_thread(layout: Layout) {
    let server = start(ServerOptions::default(), 2, layout);
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
    within("the serve call returns", server.task).await.unwrap();
    assert!(tokio::net::TcpStream::connect(server.addr).await.is_err());
}
