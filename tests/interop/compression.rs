//! permessage-deflate (RFC 7692) with real peers, both ways: Python `websockets` (its default
//! compression) and Node `ws` (with and without context takeover) as clients of both sockway
//! servers (the async one and the event loop) with compression enabled, and as servers for
//! sockway's client offering it.

use std::net::SocketAddr;
use std::time::Duration;

use sockway::client::ClientBuilder;
use sockway::event_loop::{Conn, EventLoopOptions, EventLoopServer, Handler, OpenRequest};
use sockway::server::AcceptOptions;
use sockway::{CloseCode, Compression, DeflateConfig, Message, WebSocketConfig};
use sockway_tests::echo_server::EchoServer;
use sockway_tests::payload;
use tokio::process::Command;

use super::{peers, peers_script, run_peer_client, start_peer_server};

async fn compressing_server() -> EchoServer {
    let options = AcceptOptions::default().compression(Some(DeflateConfig::default()));
    EchoServer::start(options)
        .await
        .expect("start the compressing echo server")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_client_compresses_with_a_sockway_server() {
    let peers = peers();
    let server = compressing_server().await;
    let mut command = Command::new(&peers.python);
    command
        .arg(peers_script("py_client.py"))
        .arg("--compression");
    run_peer_client(command, "python websockets client (deflate)", &server.url()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_client_compresses_with_a_sockway_server_with_and_without_context_takeover() {
    let peers = peers();
    let server = compressing_server().await;
    for extra in [&[][..], &["--no-context-takeover"][..]] {
        let mut command = Command::new("node");
        command
            .arg(peers.node_dir.join("node_client.js"))
            .arg("--compression")
            .args(extra);
        run_peer_client(
            command,
            &format!("node ws client (deflate {extra:?})"),
            &server.url(),
        )
        .await;
    }
}

/// Sockway's client offers compression to the peer server at `addr`, checks it was agreed,
/// exchanges compressible and incompressible messages of several sizes, some sent with
/// compression disabled, and checks that the wire carried less than the payload.
async fn compressed_exchange(addr: &str, what: &str) {
    let url = format!("ws://{addr}/ws");
    let run = async {
        let (mut socket, info) = ClientBuilder::new(url.as_str())
            .compression(Some(DeflateConfig::default()))
            .max_message_size(4 << 20)
            .connect()
            .await
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        assert!(
            socket.compression().is_some(),
            "{what} agreed to compress: {:?}",
            info.extensions
        );
        let mut payload_bytes = 0u64;
        for (i, size) in [0usize, 1, 200, 70_000, 1 << 20].into_iter().enumerate() {
            for message in [
                Message::text(payload::text(size)),
                Message::binary(payload::bytes(size, i as u32)),
            ] {
                let compression = if i % 2 == 1 {
                    Compression::Disabled
                } else {
                    Compression::Allowed
                };
                payload_bytes += message.len() as u64;
                socket
                    .send_with(message.clone(), compression)
                    .await
                    .unwrap_or_else(|e| panic!("{what}: {e}"));
                let echo = socket
                    .recv()
                    .await
                    .unwrap_or_else(|e| panic!("{what}: {e}"));
                assert_eq!(
                    echo.as_ref(),
                    Some(&message),
                    "{what}: {size}-byte {:?} echo differs",
                    message.kind()
                );
            }
        }
        let received = socket.stats().bytes_received;
        assert!(
            received < payload_bytes,
            "{what}: {received} bytes on the wire for {payload_bytes} of payload"
        );
        let closed = socket
            .close(CloseCode::NORMAL, "")
            .await
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_eq!(closed.code, CloseCode::NORMAL);
    };
    tokio::time::timeout(Duration::from_secs(60), run)
        .await
        .unwrap_or_else(|_| panic!("{what}: timed out"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sockway_client_compresses_with_python_and_node_servers() {
    let peers = peers();
    let mut command = Command::new(&peers.python);
    command
        .arg(peers_script("py_echo_server.py"))
        .arg("--compression");
    let (_python, addr) = start_peer_server(command, "py-echo-server-deflate").await;
    compressed_exchange(&addr, "python websockets server (deflate)").await;
    for (name, extra) in [
        ("node-echo-server-deflate", &[][..]),
        (
            "node-echo-server-deflate-nct",
            &["--no-context-takeover"][..],
        ),
    ] {
        let mut command = Command::new("node");
        command
            .arg(peers.node_dir.join("node_echo_server.js"))
            .arg("--compression")
            .args(extra);
        let (_node, addr) = start_peer_server(command, name).await;
        compressed_exchange(&addr, &format!("node ws server (deflate {extra:?})")).await;
    }
}

/// Echoes every message back, compressed when the client agreed to it.
#[derive(Clone)]
pub(super) struct LoopEcho;

impl Handler for LoopEcho {
    type Session = ();

    fn open(&mut self, _conn: &mut Conn<'_>, _request: &OpenRequest<'_>) {}

    fn message(&mut self, conn: &mut Conn<'_>, _session: &mut (), message: Message) {
        let _ = conn.send(&message);
    }
}

/// The event-loop server compresses through the same core as the async server: Python
/// `websockets`, Node `ws` (with and without context takeover) and sockway's own client agree
/// to permessage-deflate with it and get every message back intact.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_node_and_sockway_clients_compress_with_the_event_loop_server() {
    let peers = peers();
    let options = EventLoopOptions::default()
        .threads(2)
        .websocket(WebSocketConfig::for_server().max_message_size(64 << 20))
        .compression(Some(DeflateConfig::default()));
    let server = EventLoopServer::new(LoopEcho, options)
        .bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .expect("start the event-loop echo server");
    let url = format!("ws://{}/ws", server.local_addr());
    let mut python = Command::new(&peers.python);
    python
        .arg(peers_script("py_client.py"))
        .arg("--compression");
    run_peer_client(
        python,
        "python websockets client (deflate, event loop)",
        &url,
    )
    .await;
    for extra in [&[][..], &["--no-context-takeover"][..]] {
        let mut node = Command::new("node");
        node.arg(peers.node_dir.join("node_client.js"))
            .arg("--compression")
            .args(extra);
        let what = format!("node ws client (deflate {extra:?}, event loop)");
        run_peer_client(node, &what, &url).await;
    }
    let addr = server.local_addr().to_string();
    compressed_exchange(&addr, "sockway client with the event loop (deflate)").await;
    server.stop();
    server.join().expect("the event-loop server stops");
}
