//! `sockway hub --redis URL`: servers of a fleet sharing one `redis-server` (Debian's
//! package, started here on a free loopback port with no persistence, killed at the end), and
//! the official SignalR JavaScript client: `tests/peers/signalr_fleet.js` chats across them
//! (all, an ordered burst, a group, a client result), with one client per server on each
//! transport; and through `sockway gateway` balancing round-robin over three servers with no
//! cookie affinity, on every transport: the negotiate, the WebSocket or event stream, and each
//! `POST` and poll of one client land on different servers (the shared token secret lets a
//! server adopt a connection another negotiated; the backplane relays `POST`s and polls to
//! the server holding the connection). Each server's `--metrics-listen` endpoint then shows
//! the relayed requests and the backplane counters.
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

/// Reads `GET path` from a hub's metrics listener: the status and the body.
async fn scrape(port: u16, path: &str) -> (u16, String) {
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .expect("the metrics listener accepts");
        let request = format!("GET {path} HTTP/1.1\r\nHost: hub\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.expect("write");
        let mut response = Vec::new();
        stream.read_to_end(&mut response).await.expect("read");
        String::from_utf8(response).expect("a UTF-8 response")
    };
    let text = tokio::time::timeout(Duration::from_secs(20), exchange)
        .await
        .expect("the metrics listener answered in time");
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .expect("a status line");
    let body = text.split_once("\r\n\r\n").map_or("", |(_, body)| body);
    (status, body.to_owned())
}

/// The value of the metric `name` (a line `name value`) in a Prometheus exposition.
fn metric(body: &str, name: &str) -> f64 {
    body.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in:\n{body}"))
}

#[tokio::test]
async fn every_transport_through_a_round_robin_gateway_needs_no_sticky_sessions() {
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
    let mut hubs = Vec::new();
    let mut metrics_ports = Vec::new();
    for _ in 0..3 {
        let metrics_port = free_port();
        let flags = vec![
            "--redis".to_owned(),
            format!("redis://127.0.0.1:{}/", redis.port),
            "--token-secret-file".to_owned(),
            secret.display().to_string(),
            "--metrics-listen".to_owned(),
            format!("127.0.0.1:{metrics_port}"),
        ];
        hubs.push(start_hub_with(&peers, &flags).await);
        metrics_ports.push(metrics_port);
    }
    let port = free_port();
    let config = dir.0.join("gateway.json");
    let backends: Vec<u16> = hubs.iter().map(|hub| hub.addr.port()).collect();
    std::fs::write(&config, gateway_config(port, &backends)).expect("config");
    let (_gateway, mut log) = spawn_logged(&["gateway", "--config", path(&config)]);
    wait_for_line(&mut log, &format!("listening address=127.0.0.1:{port}")).await;
    for _ in &backends {
        wait_for_line(&mut log, "backend is healthy").await;
    }
    let url = format!("http://127.0.0.1:{port}/chatHub");
    let run = run_node(&peers, "signalr_fleet.js", &[url.clone(), url]).await;
    assert_scenarios(
        &run,
        &[
            "fleet_WebSockets",
            "fleet_ServerSentEvents",
            "fleet_LongPolling",
        ],
        &mut hubs[0],
    );

    let mut relayed = 0.0;
    let mut published = 0.0;
    for port in &metrics_ports {
        let (status, body) = scrape(*port, "/metrics").await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(metric(&body, "sockway_hub_backplane_connected"), 1.0);
        assert_eq!(metric(&body, "sockway_hub_backplane_dropped_total"), 0.0);
        assert_eq!(metric(&body, "sockway_hub_relay_failed_total"), 0.0);
        metric(&body, "sockway_hub_backplane_buffered");
        metric(&body, "sockway_hub_backplane_received_total");
        metric(&body, "sockway_hub_backplane_publish_seconds_sum");
        relayed += metric(&body, "sockway_hub_relay_answered_total");
        published += metric(&body, "sockway_hub_backplane_published_total");
    }
    assert!(
        relayed > 0.0,
        "no request was relayed: the gateway kept affinity?"
    );
    assert!(published > 0.0);
    assert_eq!(scrape(metrics_ports[0], "/healthz").await.0, 200);
    assert_eq!(scrape(metrics_ports[0], "/other").await.0, 404);
}

#[test]
fn metrics_without_redis_is_refused_with_the_reason() {
    let output = Command::new(env!("CARGO_BIN_EXE_sockway"))
        .args([
            "hub",
            "--listen",
            "127.0.0.1:0",
            "--metrics-listen",
            "127.0.0.1:0",
        ])
        .stdin(Stdio::null())
        .output()
        .expect("run sockway hub");
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--redis"), "{stderr}");
}

fn path(path: &Path) -> &str {
    path.to_str().expect("a UTF-8 path")
}
