//! `sockway hub --redis URL`: two servers of a fleet sharing one `redis-server` (Debian's
//! package, started here on a free loopback port with no persistence, killed at the end), and
//! the official SignalR JavaScript client on each transport, one client per server:
//! `tests/peers/signalr_fleet.js` chats across them (all, a group, a client result).
//!
//! Needs the peers installed (`scripts/install-peers.sh`, which also installs redis-server)
//! and `SOCKWAY_PEERS_NODE_DIR` pointing at `tests/peers`; without that variable the test
//! says so and passes.

mod echo_support;
mod hub_support;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use echo_support::peers_dir;
use hub_support::{assert_scenarios, run_node, start_hub_with};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A `redis-server` of the test's own; killed when dropped.
struct Redis {
    port: u16,
    child: Child,
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `redis-server` on a free loopback port and waits until it answers `PING`.
async fn start_redis() -> Redis {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port();
    let child = Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no", "--loglevel", "warning"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("redis-server is installed: run scripts/install-peers.sh");
    let redis = Redis { port, child };
    let ready = async {
        loop {
            if let Ok(mut stream) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await {
                let mut answer = [0u8; 7];
                if stream.write_all(b"PING\r\n").await.is_ok()
                    && stream.read_exact(&mut answer).await.is_ok()
                    && &answer == b"+PONG\r\n"
                {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(20), ready)
        .await
        .expect("redis-server answered in time");
    redis
}

#[tokio::test]
async fn the_official_client_chats_across_two_servers_on_every_transport() {
    let Some(peers) = peers_dir() else { return };
    let redis = start_redis().await;
    let flags = vec![
        "--redis".to_owned(),
        format!("redis://127.0.0.1:{}/", redis.port),
    ];
    let mut first = start_hub_with(&peers, &flags).await;
    let second = start_hub_with(&peers, &flags).await;
    let run = run_node(
        &peers,
        "signalr_fleet.js",
        &[first.hub_url(), second.hub_url()],
    )
    .await;
    assert_scenarios(
        &run,
        &[
            "fleet_WebSockets",
            "fleet_ServerSentEvents",
            "fleet_LongPolling",
        ],
        &mut first,
    );
}
