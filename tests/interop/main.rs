//! Interop with third-party WebSocket implementations over loopback:
//!
//! - Python `websockets` and Node `ws` clients (`tests/peers/py_client.py`,
//!   `tests/peers/node_client.js`) exchange text and binary messages of 0 B to 1 MiB with a
//!   sockway server: the in-process echo server, and the `sockway echo` binary when
//!   `SOCKWAY_BIN` names it;
//! - sockway's client exchanges the same sizes, multibyte text and binary, whole and
//!   fragmented, with their echo servers (`py_echo_server.py`, `node_echo_server.js`).
//!
//! The peers come from `./scripts/install-peers.sh`; `SOCKWAY_PEERS_PYTHON` (the venv's
//! python) and `SOCKWAY_PEERS_NODE_DIR` (`tests/peers` with `node_modules`) say where. Without
//! them the tests fail and say so: they never pass silently.

mod compression;
mod tls;

use std::path::{Path, PathBuf};
use std::time::Duration;

use sockway::server::AcceptOptions;
use sockway::{CloseCode, Message, MessageKind, WebSocketConfig};
use sockway_tests::echo_server::EchoServer;
use sockway_tests::process::{self, ChildGuard};
use sockway_tests::{client, payload};
use tokio::process::Command;

/// The message sizes exchanged, around each frame length form's edges, up to 1 MiB.
const SIZES: [usize; 8] = [0, 1, 125, 126, 127, 65535, 65536, 1 << 20];

/// How long a peer client may run (its own limit is 30 s).
const PEER_CLIENT_TIMEOUT: Duration = Duration::from_secs(90);

/// How long sockway's client exchange with a peer server may take.
const EXCHANGE_TIMEOUT: Duration = Duration::from_secs(60);

/// Where the peers are, from the environment.
struct Peers {
    python: PathBuf,
    node_dir: PathBuf,
}

fn peers() -> Peers {
    let hint = "run ./scripts/install-peers.sh, then set SOCKWAY_PEERS_PYTHON=$PWD/target/peers/venv/bin/python \
                and SOCKWAY_PEERS_NODE_DIR=$PWD/tests/peers (scripts/test-all.sh sets both)";
    let var = |name: &str| match std::env::var_os(name) {
        Some(value) if !value.is_empty() => PathBuf::from(value),
        _ => panic!("interop peers are not configured: {name} is not set; {hint}"),
    };
    let python = var("SOCKWAY_PEERS_PYTHON");
    let node_dir = var("SOCKWAY_PEERS_NODE_DIR");
    assert!(
        python.exists(),
        "SOCKWAY_PEERS_PYTHON={} does not exist; {hint}",
        python.display()
    );
    assert!(
        node_dir.join("node_modules/ws").is_dir(),
        "SOCKWAY_PEERS_NODE_DIR={} has no node_modules/ws; {hint}",
        node_dir.display()
    );
    Peers { python, node_dir }
}

fn peers_script(name: &str) -> PathBuf {
    process::workspace_root().join("tests/peers").join(name)
}

fn out_dir() -> PathBuf {
    let dir = process::target_dir().join("interop");
    std::fs::create_dir_all(&dir).expect("create target/interop");
    dir
}

/// Runs a peer client against `url` and checks it reports every message echoed.
async fn run_peer_client(mut command: Command, what: &str, url: &str) {
    command.arg(url);
    let (ok, output) = process::run_bounded(command, PEER_CLIENT_TIMEOUT)
        .await
        .unwrap_or_else(|e| panic!("{what} against {url}: {e}"));
    let expected = format!("OK {}", SIZES.len() * 2);
    assert!(
        ok && output.lines().any(|l| l.trim() == expected),
        "{what} against {url} did not report {expected:?}:\n{output}"
    );
    println!("{what} against {url}: {}", expected);
}

/// The sockway servers the peer clients talk to: in-process, and the binary if configured.
async fn sockway_servers(log_name: &str) -> (EchoServer, Option<(ChildGuard, String)>) {
    let server = EchoServer::start(AcceptOptions::default())
        .await
        .expect("start the in-process echo server");
    let binary = match std::env::var_os("SOCKWAY_BIN").filter(|b| !b.is_empty()) {
        Some(bin) => {
            let log = out_dir().join(log_name);
            let (child, addr) = process::start_sockway_echo(
                Path::new(&bin),
                sockway::proto::config::DEFAULT_MAX_MESSAGE_SIZE,
                &log,
            )
            .await
            .unwrap_or_else(|e| panic!("starting SOCKWAY_BIN: {e}"));
            Some((child, format!("ws://{addr}/ws")))
        }
        None => {
            println!("SOCKWAY_BIN not set: only the in-process server is tested");
            None
        }
    };
    (server, binary)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_client_with_sockway_server() {
    let peers = peers();
    let (server, binary) = sockway_servers("python-client-sockway-echo.log").await;
    let mut urls = vec![server.url()];
    urls.extend(binary.as_ref().map(|(_, url)| url.clone()));
    for url in urls {
        let mut command = Command::new(&peers.python);
        command.arg(peers_script("py_client.py"));
        run_peer_client(command, "python websockets client", &url).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_client_with_sockway_server() {
    let peers = peers();
    let (server, binary) = sockway_servers("node-client-sockway-echo.log").await;
    let mut urls = vec![server.url()];
    urls.extend(binary.as_ref().map(|(_, url)| url.clone()));
    for url in urls {
        let mut command = Command::new("node");
        command.arg(peers.node_dir.join("node_client.js"));
        run_peer_client(command, "node ws client", &url).await;
    }
}

/// Starts a peer echo server (`program script PORT_FILE`) and returns it with its URL.
async fn start_peer_server(mut command: Command, name: &str) -> (ChildGuard, String) {
    let dir = out_dir();
    let port_file = dir.join(format!("{name}-{}.port", std::process::id()));
    let _ = std::fs::remove_file(&port_file);
    command.arg(&port_file);
    let mut child = ChildGuard::spawn(command, name, &dir.join(format!("{name}.log")))
        .unwrap_or_else(|e| panic!("{e}"));
    let port = process::wait_for_port_file(&port_file, &mut child, Duration::from_secs(20))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let _ = std::fs::remove_file(&port_file);
    (child, format!("127.0.0.1:{port}"))
}

/// Sockway's client exchanges every size as text and binary, whole and then fragmented, with
/// the echo server at `addr`, checks each echo exactly, and closes with 1000.
async fn exchange_with(addr: &str, what: &str) {
    let run = async {
        let addr = addr.parse().expect("a socket address");
        let mut socket = client::connect(addr, "/ws", WebSocketConfig::default())
            .await
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        let mut count = 0;
        for size in SIZES {
            let text = payload::text(size);
            let data = payload::bytes(size, size as u32);
            for message in [Message::text(text.clone()), Message::binary(data.clone())] {
                socket
                    .send(message.clone())
                    .await
                    .unwrap_or_else(|e| panic!("{what}: sending {size} B: {e}"));
                check_echo(&mut socket, &message, what).await;
                count += 1;
            }
        }
        // Fragmented: 1 MiB in 16 pieces (text pieces split characters), and many small ones.
        let text = payload::text(1 << 20);
        let small = payload::text(1000);
        let data = payload::bytes(1 << 20, 99);
        for (kind, bytes, pieces) in [
            (MessageKind::Text, text.as_bytes(), 16),
            (MessageKind::Binary, &data[..], 16),
            (MessageKind::Text, small.as_bytes(), 1000),
        ] {
            let chunks: Vec<&[u8]> = bytes.chunks(bytes.len().div_ceil(pieces)).collect();
            for (i, chunk) in chunks.iter().enumerate() {
                socket
                    .send_fragment(kind, chunk, i + 1 == chunks.len())
                    .await
                    .unwrap_or_else(|e| {
                        panic!(
                            "{what}: sending fragment {i} of a {kind:?} message ({} B): {e}",
                            chunk.len()
                        )
                    });
            }
            let message = match kind {
                MessageKind::Text => Message::text(String::from_utf8(bytes.to_vec()).unwrap()),
                MessageKind::Binary => Message::binary(bytes.to_vec()),
            };
            check_echo(&mut socket, &message, what).await;
            count += 1;
        }
        let info = socket
            .close(CloseCode::NORMAL, "done")
            .await
            .unwrap_or_else(|e| panic!("{what}: closing: {e}"));
        assert_eq!(info.code, CloseCode::NORMAL, "{what}: close status");
        println!("sockway client with {what}: {count} messages echoed, closed with 1000");
    };
    tokio::time::timeout(EXCHANGE_TIMEOUT, run)
        .await
        .unwrap_or_else(|_| panic!("{what}: exchange did not finish within {EXCHANGE_TIMEOUT:?}"));
}

async fn check_echo(socket: &mut client::ClientSocket, sent: &Message, what: &str) {
    let got = socket
        .recv()
        .await
        .unwrap_or_else(|e| panic!("{what}: receiving the echo of {} B: {e}", sent.len()))
        .unwrap_or_else(|| panic!("{what}: closed before echoing {} B", sent.len()));
    assert_eq!(
        got.kind(),
        sent.kind(),
        "{what}: echo type for {} B",
        sent.len()
    );
    if got.as_bytes() != sent.as_bytes() {
        let first = got
            .as_bytes()
            .iter()
            .zip(sent.as_bytes())
            .position(|(a, b)| a != b);
        panic!(
            "{what}: echo of {} B differs (got {} B, first difference at {first:?})",
            sent.len(),
            got.len()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sockway_client_with_python_server() {
    let peers = peers();
    let mut command = Command::new(&peers.python);
    command.arg(peers_script("py_echo_server.py"));
    let (_server, addr) = start_peer_server(command, "py-echo-server").await;
    exchange_with(&addr, "python websockets server").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sockway_client_with_node_server() {
    let peers = peers();
    let mut command = Command::new("node");
    command.arg(peers.node_dir.join("node_echo_server.js"));
    let (_server, addr) = start_peer_server(command, "node-echo-server").await;
    exchange_with(&addr, "node ws server").await;
}
