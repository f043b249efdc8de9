//! Health, timeouts, reloads, draining and shutdown over real loopback sockets.

mod support;

use std::time::{Duration, Instant};

use serde_json::json;
use sockway::Message;
use sockway_gateway::config::{self, Format};
use support::*;

/// Receives until the socket reports its close; returns the close code seen.
async fn close_code(ws: &mut Client) -> u16 {
    bounded("close from the gateway", async {
        while let Ok(Some(_)) = ws.recv().await {}
    })
    .await;
    ws.close_info().map(|c| u16::from(c.code)).unwrap_or(0)
}

#[tokio::test]
async fn a_killed_backend_leaves_the_rotation_and_its_clients_learn_promptly() {
    let a = Backend::start("a").await;
    let mut b = Backend::start("b").await;
    let port = free_port();
    // interval 0.1 s × threshold 2: unhealthy within about 0.2-0.3 s.
    let gateway = start_gateway(&basic_config(port, &[&a, &b], json!({}), None)).await;
    wait_healthy(&gateway, 2).await;
    // Find a session on b.
    let mut on_b = None;
    for _ in 0..4 {
        let (mut ws, _) = ws_connect(port, "/", "").await.unwrap();
        if ask(&mut ws, "whoami").await == "b" {
            on_b = Some(ws);
            break;
        }
    }
    let mut on_b = on_b.expect("round robin reaches b");
    let killed = Instant::now();
    b.kill();
    // The client learns at once: a close frame (1001) or end of stream, not a hang.
    let code = close_code(&mut on_b).await;
    assert!(code == 1001 || code == 1006, "close code {code}");
    assert!(killed.elapsed() < Duration::from_secs(5));
    bounded("b unhealthy", async {
        while gateway
            .health()
            .iter()
            .any(|h| h.healthy && h.backend.ends_with(&b.port().to_string()))
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    for _ in 0..6 {
        let (mut ws, _) = ws_connect(port, "/", "")
            .await
            .expect("new sessions avoid b");
        assert_eq!(ask(&mut ws, "whoami").await, "a");
    }
    let health = gateway.health();
    assert_eq!(health.iter().filter(|h| h.healthy).count(), 1, "{health:?}");
    gateway.shutdown().await;
}

#[tokio::test]
async fn the_request_timeout_is_the_idle_limit_of_sessions() {
    let backend = Backend::start("b").await;
    let port = free_port();
    let gateway = start_gateway(&basic_config(
        port,
        &[&backend],
        json!({"requestTimeout": 0.4, "webSocketKeepAlive": false}),
        None,
    ))
    .await;
    wait_healthy(&gateway, 1).await;
    let (mut ws, _) = ws_connect(port, "/", "").await.unwrap();
    // Traffic keeps it open past the limit...
    for _ in 0..4 {
        assert_eq!(ask(&mut ws, "x").await, "x");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // ...silence closes it with 1001 from the gateway.
    let code = close_code(&mut ws).await;
    assert_eq!(code, 1001);
    assert_eq!(ws.close_info().unwrap().reason, "idle timeout");
    bounded("session gone", async {
        while gateway.sessions() > 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    assert!(gateway
        .metrics_text()
        .contains("sockway_gateway_idle_closes_total 1"));
    gateway.shutdown().await;
}

#[tokio::test]
async fn reload_keeps_sessions_and_removed_backends_drain_with_1001() {
    let a = Backend::start("a").await;
    let b = Backend::start("b").await;
    let port = free_port();
    let draining = json!({"connectionDraining": {"enabled": true, "drainTimeoutInSec": 1}});
    let dir = std::env::temp_dir().join(format!("sockway-gw-reload-{port}"));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("gateway.json");
    let doc = basic_config(port, &[&a, &b], draining.clone(), None);
    std::fs::write(&path, doc.to_string()).unwrap();
    let gateway = sockway_gateway::Gateway::start_file(&path).await.unwrap();
    wait_healthy(&gateway, 2).await;
    let (mut s1, _) = ws_connect(port, "/", "").await.unwrap();
    let (mut s2, _) = ws_connect(port, "/", "").await.unwrap();
    let n1 = ask(&mut s1, "whoami").await;
    let n2 = ask(&mut s2, "whoami").await;
    assert_ne!(n1, n2);
    let (mut on_a, mut on_b) = if n1 == "a" { (s1, s2) } else { (s2, s1) };

    // Reload 1: same backends, a new path rule elsewhere: both sessions survive.
    let mut doc2 = doc.clone();
    doc2["httpListeners"]
        .as_array_mut()
        .unwrap()
        .push(json!({"name": "extra", "port": free_port(), "bindAddress": "127.0.0.1"}));
    doc2["requestRoutingRules"].as_array_mut().unwrap().push(json!({"name": "r2", "httpListener": "extra", "backendAddressPool": "pool", "backendHttpSettings": "settings"}));
    std::fs::write(&path, doc2.to_string()).unwrap();
    gateway.reload().await.unwrap();
    assert_eq!(gateway.generation(), 2);
    assert_eq!(ask(&mut on_a, "whoami").await, "a");
    assert_eq!(ask(&mut on_b, "whoami").await, "b");
    assert_eq!(
        gateway.health().iter().filter(|h| h.healthy).count(),
        2,
        "health survives a reload"
    );

    // An invalid file is refused and changes nothing.
    std::fs::write(&path, "{\"httpListeners\": []}").unwrap();
    let err = gateway.reload().await.unwrap_err();
    assert!(err.to_string().contains("httpListeners"), "{err}");
    assert_eq!(gateway.generation(), 2);

    // Reload 2: b leaves the pool. Its session lives through the drain timeout (1 s), then
    // gets 1001; a's session is untouched; new sessions go to a.
    let doc3 = basic_config(port, &[&a], draining, None);
    let removed = Instant::now();
    gateway
        .apply(config::from_str(&doc3.to_string(), Format::Json).unwrap())
        .await
        .unwrap();
    assert_eq!(
        ask(&mut on_b, "whoami").await,
        "b",
        "still served while draining"
    );
    let (mut fresh, _) = ws_connect(port, "/", "").await.unwrap();
    assert_eq!(ask(&mut fresh, "whoami").await, "a");
    let code = close_code(&mut on_b).await;
    assert_eq!(code, 1001);
    assert!(
        removed.elapsed() >= Duration::from_millis(900),
        "not before the drain timeout"
    );
    assert_eq!(ask(&mut on_a, "whoami").await, "a");
    gateway.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn file_changes_are_picked_up_by_the_watcher() {
    let a = Backend::start("a").await;
    let b = Backend::start("b").await;
    let port = free_port();
    let dir = std::env::temp_dir().join(format!("sockway-gw-watch-{port}"));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("gateway.toml");
    let toml_for = |backend: &Backend| {
        format!(
            r#"
[[httpListeners]]
name = "web"
port = {port}
bindAddress = "127.0.0.1"

[[backendAddressPools]]
name = "pool"
backendAddresses = [{{ ipAddress = "127.0.0.1", port = {} }}]

[[backendHttpSettingsCollection]]
name = "settings"
port = 1
probe = "fast"

[[probes]]
name = "fast"
interval = 0.1
timeout = 1

[[requestRoutingRules]]
name = "rule"
httpListener = "web"
backendAddressPool = "pool"
backendHttpSettings = "settings"

[limits]
reloadPollInterval = 0.1
shutdownTimeout = 0.2
closeGrace = 0.5
"#,
            backend.port()
        )
    };
    std::fs::write(&path, toml_for(&a)).unwrap();
    let gateway = sockway_gateway::Gateway::start_file(&path).await.unwrap();
    let watcher = tokio::spawn(sockway_gateway::reload::watch(
        gateway.clone(),
        sockway_gateway::reload::Hangup::install(),
    ));
    wait_healthy(&gateway, 1).await;
    assert!(get(port, "/", "").await.contains("healthy a"));
    // Make sure the modification time moves even on coarse clocks.
    tokio::time::sleep(Duration::from_millis(50)).await;
    std::fs::write(&path, toml_for(&b) + "\n# changed\n").unwrap();
    bounded("reloaded to b", async {
        loop {
            if gateway.generation() >= 2 && get(port, "/", "").await.contains("healthy b") {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    watcher.abort();
    gateway.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn shutdown_closes_open_sessions_with_1001() {
    let backend = Backend::start("b").await;
    let port = free_port();
    let gateway = start_gateway(&basic_config(port, &[&backend], json!({}), None)).await;
    wait_healthy(&gateway, 1).await;
    let (mut ws, _) = ws_connect(port, "/", "").await.unwrap();
    assert_eq!(ask(&mut ws, "hi").await, "hi");
    let g = gateway.clone();
    let stopping = tokio::spawn(async move { g.shutdown().await });
    let code = close_code(&mut ws).await;
    assert_eq!(code, 1001);
    assert_eq!(ws.close_info().unwrap().reason, "gateway shutting down");
    bounded("shutdown", stopping).await.unwrap();
    assert_eq!(gateway.sessions(), 0);
    bounded("listener closed", async {
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
}

#[tokio::test]
async fn websocket_probes_and_body_matches_decide_health() {
    // Backend `/` answers 503: an HTTP probe on `/` fails, a WebSocket probe succeeds.
    let ws_only = Backend::start_with("ws-only", false).await;
    let port = free_port();
    let probe = json!({"name": "wsprobe", "protocol": "WebSocket", "path": "/ws", "interval": 0.1, "timeout": 1});
    let gateway = start_gateway(&basic_config(port, &[&ws_only], json!({}), Some(probe))).await;
    wait_healthy(&gateway, 1).await;
    let (mut ws, _) = ws_connect(port, "/", "").await.unwrap();
    assert_eq!(ask(&mut ws, "whoami").await, "ws-only");
    gateway.shutdown().await;

    let port = free_port();
    let http_probe = json!({"name": "h", "path": "/", "interval": 0.1, "timeout": 1});
    let gateway = start_gateway(&basic_config(
        port,
        &[&ws_only],
        json!({}),
        Some(http_probe),
    ))
    .await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(
        gateway.health().iter().all(|h| !h.healthy),
        "503 is not healthy"
    );
    let r = get(port, "/", "").await;
    assert!(r.starts_with("HTTP/1.1 502"), "{r}");
    gateway.shutdown().await;

    // Body substring and custom status ranges.
    let good = Backend::start("good").await;
    let port = free_port();
    let body_probe = json!({"name": "b", "path": "/", "interval": 0.1, "timeout": 1,
        "match": {"statusCodes": ["200"], "body": "healthy good"}});
    let gateway = start_gateway(&basic_config(port, &[&good], json!({}), Some(body_probe))).await;
    wait_healthy(&gateway, 1).await;
    gateway.shutdown().await;
    let port = free_port();
    let wrong_body = json!({"name": "b", "path": "/", "interval": 0.1, "timeout": 1,
        "match": {"body": "something else"}});
    let gateway = start_gateway(&basic_config(port, &[&good], json!({}), Some(wrong_body))).await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(gateway.health().iter().all(|h| !h.healthy));
    gateway.shutdown().await;
}

#[tokio::test]
async fn min_servers_keeps_backends_in_rotation() {
    let sick = Backend::start_with("sick", false).await;
    let port = free_port();
    let probe = json!({"name": "p", "path": "/", "interval": 0.1, "timeout": 1, "minServers": 1});
    let gateway = start_gateway(&basic_config(port, &[&sick], json!({}), Some(probe))).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(gateway.health().iter().all(|h| !h.healthy));
    let (mut ws, _) = ws_connect(port, "/", "")
        .await
        .expect("minServers keeps the first backend");
    match bounded("echo", async {
        ws.send_text("hi").await.unwrap();
        ws.recv().await.unwrap()
    })
    .await
    {
        Some(Message::Text(t)) => assert_eq!(t.as_str(), "hi"),
        other => panic!("{other:?}"),
    }
    gateway.shutdown().await;
}
