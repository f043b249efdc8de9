//! `sockway hub --redis URL`: two servers of a fleet sharing one `redis-server` (Debian's
//! package, started here on a free loopback port with no persistence, killed at the end), and
//! the official SignalR JavaScript client: `tests/peers/signalr_fleet.js` chats across them
//! (all, a group, a client result), with one client per server on each transport, and
//! through `sockway gateway` balancing round-robin over both with no cookie affinity (the
//! negotiate and the WebSocket of one client land on different servers: the shared token
//! secret lets the second adopt the connection).
//!
//! Needs the peers installed (`scripts/install-peers.sh`, which also installs redis-server)
//! and `SOCKWAY_PEERS_NODE_DIR` pointing at `tests/peers`; without that variable the test
//! says so and passes.

mod echo_support;
mod hub_support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use echo_support::{peers_dir, spawn_logged, wait_for_line};
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

/// A directory removed when dropped.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The gateway's configuration: plain HTTP on `port`, every request balanced round-robin over
/// `backends`, no cookie affinity, probed on the chat page.
fn gateway_config(port: u16, backends: &[u16]) -> String {
    let addresses: Vec<String> = backends
        .iter()
        .map(|port| format!(r#"{{"ipAddress": "127.0.0.1", "port": {port}}}"#))
        .collect();
    format!(
        r#"{{
  "httpListeners": [{{"name": "site", "protocol": "Http", "port": {port},
    "bindAddress": "127.0.0.1"}}],
  "backendAddressPools": [{{"name": "fleet", "loadBalancing": "RoundRobin",
    "backendAddresses": [{addresses}]}}],
  "backendHttpSettingsCollection": [{{"name": "plain", "port": {first},
    "protocol": "Http", "requestTimeout": 120, "cookieBasedAffinity": "Disabled",
    "probe": "page"}}],
  "probes": [{{"name": "page", "path": "/", "interval": 0.2, "timeout": 2,
    "unhealthyThreshold": 2}}],
  "requestRoutingRules": [{{"name": "all", "ruleType": "Basic", "httpListener": "site",
    "backendAddressPool": "fleet", "backendHttpSettings": "plain"}}],
  "limits": {{"closeGrace": 1, "shutdownTimeout": 1}}
}}"#,
        addresses = addresses.join(", "),
        first = backends[0],
    )
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port()
}

#[tokio::test]
async fn websockets_through_a_round_robin_gateway_need_no_sticky_sessions() {
    let Some(peers) = peers_dir() else { return };
    let dir =
        TempDir(std::env::temp_dir().join(format!("sockway-hub-fleet-{}", std::process::id())));
    std::fs::create_dir_all(&dir.0).expect("temp dir");
    let secret = dir.0.join("fleet.secret");
    std::fs::write(
        &secret,
        "a secret every server of this test fleet shares, 48+ bytes",
    )
    .expect("secret");
    let redis = start_redis().await;
    let flags = vec![
        "--redis".to_owned(),
        format!("redis://127.0.0.1:{}/", redis.port),
        "--token-secret-file".to_owned(),
        secret.display().to_string(),
    ];
    let mut first = start_hub_with(&peers, &flags).await;
    let second = start_hub_with(&peers, &flags).await;
    let port = free_port();
    let config = dir.0.join("gateway.json");
    let backends = [first.addr.port(), second.addr.port()];
    std::fs::write(&config, gateway_config(port, &backends)).expect("config");
    let (_gateway, mut log) = spawn_logged(&["gateway", "--config", path(&config)]);
    wait_for_line(&mut log, &format!("listening address=127.0.0.1:{port}")).await;
    wait_for_line(&mut log, "backend is healthy").await;
    wait_for_line(&mut log, "backend is healthy").await;
    let url = format!("http://127.0.0.1:{port}/chatHub");
    let run = run_node(
        &peers,
        "signalr_fleet.js",
        &[url.clone(), url, "WebSockets".to_owned()],
    )
    .await;
    assert_scenarios(&run, &["fleet_WebSockets"], &mut first);
}

fn path(path: &Path) -> &str {
    path.to_str().expect("a UTF-8 path")
}
