//! Shared by the `hub_fleet*` tests: a `redis-server` of the test's own (Debian's package, on
//! a free loopback port, no persistence), a shared token secret in a temporary directory,
//! several `sockway hub --redis` servers using both, and `sockway gateway` balancing
//! round-robin over them with no cookie affinity.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::echo_support::{spawn_logged, wait_gateway_ready};
use crate::hub_support::{start_hub_with, HubProcess};

/// A `redis-server` of the test's own; killed when dropped.
pub struct Redis {
    pub port: u16,
    child: Child,
}

impl Redis {
    /// The URL the hub servers are given.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `redis-server` on a free loopback port and waits until it answers `PING`.
pub async fn start_redis() -> Redis {
    let port = free_port();
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

/// A directory removed when dropped.
pub struct TempDir(pub PathBuf);

impl TempDir {
    /// A fresh directory under the system's temporary directory, named after `name`, this
    /// process and a count (tests of one binary run at once).
    pub fn new(name: &str) -> Self {
        static COUNT: AtomicUsize = AtomicUsize::new(0);
        let n = COUNT.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("{name}-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A free loopback port (bound, read, released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port()
}

/// `path` as a string, for a command line.
pub fn path(path: &Path) -> &str {
    path.to_str().expect("a UTF-8 path")
}

/// The flags of one fleet server: Redis at `redis`, and the token secret in `dir` (written
/// on first use) so any server adopts a WebSocket another negotiated.
pub fn fleet_flags(redis: &Redis, dir: &TempDir) -> Vec<String> {
    let secret = dir.0.join("fleet.secret");
    if !secret.exists() {
        std::fs::write(
            &secret,
            "a secret every server of this test fleet shares, 48+ bytes",
        )
        .expect("secret");
    }
    vec![
        "--redis".to_owned(),
        redis.url(),
        "--token-secret-file".to_owned(),
        secret.display().to_string(),
    ]
}

/// `count` `sockway hub` servers sharing `redis` and the token secret in `dir`.
pub async fn start_fleet(
    peers: &Path,
    redis: &Redis,
    dir: &TempDir,
    count: usize,
) -> Vec<HubProcess> {
    let flags = fleet_flags(redis, dir);
    let mut servers = Vec::new();
    for _ in 0..count {
        servers.push(start_hub_with(peers, &flags).await);
    }
    for server in &mut servers {
        wait_subscribed(server).await;
    }
    servers
}

/// Waits (at most 20 s) until `server` logs that its backplane subscribed to Redis, so what
/// other servers publish from then on reaches it.
pub async fn wait_subscribed(server: &mut HubProcess) {
    let subscribed = async {
        while !server.log_tail().contains("backplane: subscribed to Redis") {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    if tokio::time::timeout(Duration::from_secs(20), subscribed)
        .await
        .is_err()
    {
        panic!(
            "the server did not subscribe to Redis within 20 s:\n{}",
            server.log_tail()
        );
    }
}

/// The gateway's configuration: plain HTTP on `port`, every request balanced round-robin over
/// `backends`, no cookie affinity, probed on the chat page.
pub fn gateway_config(port: u16, backends: &[u16]) -> String {
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

/// A running `sockway gateway` in front of `servers` (see [`gateway_config`]), with its
/// configuration in `dir`; killed when dropped.
pub struct Gateway {
    _child: tokio::process::Child,
    /// The hub's URL through the gateway.
    pub hub_url: String,
}

/// Starts the gateway and waits until it listens and has found every server healthy.
pub async fn start_gateway(dir: &TempDir, servers: &[HubProcess]) -> Gateway {
    let port = free_port();
    let config = dir.0.join("gateway.json");
    let backends: Vec<u16> = servers.iter().map(|server| server.addr.port()).collect();
    std::fs::write(&config, gateway_config(port, &backends)).expect("config");
    let (child, mut log) = spawn_logged(&["gateway", "--config", path(&config)]);
    wait_gateway_ready(&mut log, port, servers.len()).await;
    Gateway {
        _child: child,
        hub_url: format!("http://127.0.0.1:{port}/chatHub"),
    }
}
