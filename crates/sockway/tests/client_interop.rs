//! The client against independent servers: Python `websockets` and Node `ws`, over `ws://` and
//! over `wss://` with a CA made at test time.
//!
//! Peers come from `SOCKWAY_PEERS_PYTHON` (a python with `websockets`) and
//! `SOCKWAY_PEERS_NODE_DIR` (tests/peers with `node_modules`), or from where
//! `scripts/install-peers.sh` puts them. A peer that is not installed is skipped with a note;
//! one named by its variable but broken fails the test.

#![cfg(all(feature = "client", feature = "tls"))]

mod client_support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use client_support::tls::pki;
use client_support::STEP;
use sockway::client::{ClientBuilder, ClosedBy};
use sockway::{CloseCode, Message};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::timeout;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The interpreter and the directory holding the peer scripts, if the peer is installed.
fn python() -> Option<(PathBuf, PathBuf)> {
    let scripts = root().join("tests/peers");
    if let Some(python) = std::env::var_os("SOCKWAY_PEERS_PYTHON") {
        return Some((python.into(), scripts));
    }
    let venv = root().join("target/peers/venv/bin/python");
    venv.exists().then_some((venv, scripts))
}

fn node() -> Option<(PathBuf, PathBuf)> {
    if let Some(dir) = std::env::var_os("SOCKWAY_PEERS_NODE_DIR") {
        return Some(("node".into(), dir.into()));
    }
    let dir = root().join("tests/peers");
    dir.join("node_modules/ws")
        .exists()
        .then_some(("node".into(), dir))
}

/// A peer server process; killed when dropped. Its stdin stays open while it lives.
struct Peer {
    child: Child,
    port: u16,
    _dir: tempdir::Dir,
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

mod tempdir {
    /// A temporary directory removed on drop.
    pub struct Dir(pub std::path::PathBuf);

    impl Dir {
        pub fn new(tag: &str) -> Self {
            use std::sync::atomic::{AtomicUsize, Ordering};
            static N: AtomicUsize = AtomicUsize::new(0);
            let path = std::env::temp_dir().join(format!(
                "sockway-interop-{tag}-{}-{}",
                std::process::id(),
                N.fetch_add(1, Ordering::Relaxed)
            ));
            std::fs::create_dir_all(&path).unwrap();
            Self(path)
        }
    }

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

fn spawn(program: &Path, script: &Path, args: &[&Path]) -> Peer {
    let dir = tempdir::Dir::new("peer");
    let port_file = dir.0.join("port");
    let child = Command::new(program)
        .arg(script)
        .args(args)
        .arg(&port_file)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", program.display()));
    let deadline = Instant::now() + Duration::from_secs(20);
    let port = loop {
        if let Some(port) = std::fs::read_to_string(&port_file)
            .ok()
            .and_then(|s| s.trim().parse().ok())
        {
            break port;
        }
        assert!(
            Instant::now() < deadline,
            "{} did not start",
            script.display()
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    Peer {
        child,
        port,
        _dir: dir,
    }
}

/// Messages of every kind and size class, then a normal close.
async fn exercise(builder: ClientBuilder) {
    let mut socket = timeout(STEP, builder.connect_message())
        .await
        .expect("connect timed out")
        .expect("connect");
    let messages = [
        Message::text("hello"),
        Message::text(""),
        Message::text("κόσμε 🌍"),
        Message::binary(vec![0u8, 1, 2, 3, 255]),
        Message::binary((0..(1 << 20)).map(|i| (i % 251) as u8).collect::<Vec<u8>>()),
        Message::text("x".repeat(70_000)),
    ];
    for message in messages {
        socket.send(message.clone()).await.unwrap();
        let echoed = timeout(STEP, socket.recv()).await.unwrap().unwrap();
        assert_eq!(echoed.as_ref(), Some(&message));
    }
    socket.ping(b"hi").await.unwrap();
    let closed = timeout(STEP, socket.close(CloseCode::NORMAL, "bye"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(closed.code, CloseCode::NORMAL);
    assert_eq!(closed.by, ClosedBy::Local);
}

/// 16 MiB through the stream socket: the peer echoes message by message while we write. The
/// stream is shut down (close 1000) only once everything came back, since a peer may drop
/// messages it has not echoed yet when our close arrives (Python websockets does).
async fn stream(builder: ClientBuilder) {
    let socket = timeout(STEP, builder.connect_stream())
        .await
        .unwrap()
        .unwrap();
    let (mut reader, mut writer) = socket.into_split();
    let total = 16usize << 20;
    let (done_tx, done_rx) = tokio::sync::oneshot::channel::<()>();
    let write = tokio::spawn(async move {
        let chunk: Vec<u8> = (0..100_003).map(|i| (i % 253) as u8).collect();
        let mut sent = 0;
        while sent < total {
            let n = chunk.len().min(total - sent);
            writer.write_all(&chunk[..n]).await.unwrap();
            sent += n;
        }
        writer.flush().await.unwrap();
        let _ = done_rx.await;
        writer.shutdown().await.unwrap();
    });
    let mut received = 0usize;
    let mut done_tx = Some(done_tx);
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        let n = timeout(Duration::from_secs(60), reader.read(&mut buf))
            .await
            .unwrap()
            .unwrap();
        if n == 0 {
            break;
        }
        for (i, byte) in buf[..n].iter().enumerate() {
            let at = (received + i) % 100_003;
            assert_eq!(*byte, (at % 253) as u8, "at {}", received + i);
        }
        received += n;
        if received >= total {
            if let Some(tx) = done_tx.take() {
                let _ = tx.send(());
            }
        }
    }
    write.await.unwrap();
    assert_eq!(received, total);
    assert_eq!(reader.close_info().map(|c| c.code), Some(CloseCode::NORMAL));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_websockets_over_ws_and_wss() {
    let Some((python, scripts)) = python() else {
        eprintln!("skipped: Python websockets peer not installed (scripts/install-peers.sh)");
        return;
    };
    let peer = spawn(&python, &scripts.join("py_echo_server.py"), &[]);
    let url = format!("ws://127.0.0.1:{}/ws", peer.port);
    exercise(ClientBuilder::new(url.clone())).await;
    stream(ClientBuilder::new(url)).await;

    let pki = pki(&["localhost", "127.0.0.1"]);
    let peer = spawn(
        &python,
        &scripts.join("py_echo_server.py"),
        &[
            Path::new("--tls"),
            &pki.server_cert_file,
            &pki.server_key_file,
        ],
    );
    let url = format!("wss://localhost:{}/ws", peer.port);
    exercise(ClientBuilder::new(url.clone()).ca_file(&pki.ca_file)).await;
    stream(ClientBuilder::new(url).ca_file(&pki.ca_file)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_ws_over_ws_and_wss() {
    let Some((node, dir)) = node() else {
        eprintln!("skipped: Node ws peer not installed (scripts/install-peers.sh)");
        return;
    };
    let peer = spawn(&node, &dir.join("node_echo_server.js"), &[]);
    let url = format!("ws://127.0.0.1:{}/ws", peer.port);
    exercise(ClientBuilder::new(url.clone())).await;
    stream(ClientBuilder::new(url)).await;

    let pki = pki(&["localhost", "127.0.0.1"]);
    let peer = spawn(
        &node,
        &dir.join("node_echo_server.js"),
        &[
            Path::new("--tls"),
            &pki.server_cert_file,
            &pki.server_key_file,
        ],
    );
    let url = format!("wss://127.0.0.1:{}/ws", peer.port);
    exercise(ClientBuilder::new(url.clone()).ca_file(&pki.ca_file)).await;
    stream(ClientBuilder::new(url).ca_file(&pki.ca_file)).await;
}
