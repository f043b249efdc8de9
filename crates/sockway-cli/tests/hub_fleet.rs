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
mod fleet_support;
mod hub_support;

use std::process::{Command, Stdio};
use std::time::Duration;

use echo_support::peers_dir;
use fleet_support::{fleet_flags, free_port, start_gateway, start_redis, TempDir};
use hub_support::{assert_scenarios, run_node, start_hub_with};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test]
async fn the_official_client_chats_across_two_servers_on_every_transport() {
    let Some(peers) = peers_dir() else { return };
    let redis = start_redis().await;
    let flags = vec!["--redis".to_owned(), redis.url()];
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
    let dir = TempDir::new("sockway-hub-fleet");
    let redis = start_redis().await;
    let mut hubs = Vec::new();
    let mut metrics_ports = Vec::new();
    for _ in 0..3 {
        let metrics_port = free_port();
        let mut flags = fleet_flags(&redis, &dir);
        flags.push("--metrics-listen".to_owned());
        flags.push(format!("127.0.0.1:{metrics_port}"));
        hubs.push(start_hub_with(&peers, &flags).await);
        metrics_ports.push(metrics_port);
    }
    let gateway = start_gateway(&dir, &hubs).await;
    let url = gateway.hub_url.clone();
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
