//! Issue 19 items 8 and 9: a backend that refuses connections is skipped for the next one,
//! backends failing in a row leave the rotation before their probe notices (outlier
//! ejection), draining applies to a backend that turns unhealthy, and renaming a pool or
//! settings in a reload keeps the sessions to the same servers.

mod support;

use std::time::Duration;

use serde_json::json;
use sockway_gateway::config::{self, Format};
use support::*;

/// A probe that runs once at start and then not again during a test.
fn slow_probe(path: &str) -> serde_json::Value {
    json!({"name": "slow", "path": path, "interval": 600, "timeout": 5, "unhealthyThreshold": 1})
}

async fn close_code(ws: &mut Client) -> u16 {
    bounded("close from the gateway", async {
        while let Ok(Some(_)) = ws.recv().await {}
    })
    .await;
    ws.close_info().map(|c| u16::from(c.code)).unwrap_or(0)
}

#[tokio::test]
async fn a_backend_that_refuses_connections_is_skipped_for_the_next_one() {
    let a = Backend::start("a").await;
    let mut b = Backend::start("b").await;
    let port = free_port();
    let mut doc = basic_config(port, &[&a, &b], json!({}), Some(slow_probe("/")));
    // Ejection off: the retry alone must hide the dead backend.
    doc["limits"]["outlierConsecutiveFailures"] = json!(0);
    let gateway = start_gateway(&doc).await;
    wait_healthy(&gateway, 2).await;
    let dead = b.port();
    b.kill();
    bounded("b refuses connections", async {
        while tokio::net::TcpStream::connect(("127.0.0.1", dead))
            .await
            .is_ok()
        {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    // The probe still calls b healthy, so round robin keeps picking it.
    for i in 0..6 {
        let r = get(port, &format!("/n{i}"), "").await;
        assert!(
            r.starts_with("HTTP/1.1 200") && r.contains("backend=a"),
            "{r}"
        );
    }
    for _ in 0..4 {
        let (mut ws, _) = ws_connect(port, "/", "").await.expect("upgrade retried");
        assert_eq!(ask(&mut ws, "whoami").await, "a");
    }
    assert!(gateway
        .health()
        .iter()
        .all(|h| h.healthy && h.state == "Up"));
    assert!(gateway
        .metrics_text()
        .contains("sockway_gateway_refusals_total{reason=\"backend_retried\"}"));
    gateway.shutdown().await;
}

#[tokio::test]
async fn backends_answering_5xx_in_a_row_leave_the_rotation_before_the_probe_notices() {
    let good = Backend::start("good").await;
    // Answers 503 on `/`; its probe asks `/headers`, which answers 200.
    let bad = Backend::start_with("bad", false).await;
    let port = free_port();
    let mut doc = basic_config(
        port,
        &[&good, &bad],
        json!({}),
        Some(slow_probe("/headers")),
    );
    doc["limits"]["outlierConsecutiveFailures"] = json!(3);
    doc["limits"]["outlierEjectionTime"] = json!(600);
    let gateway = start_gateway(&doc).await;
    wait_healthy(&gateway, 2).await;
    let mut failures = 0;
    for _ in 0..20 {
        if get(port, "/", "").await.starts_with("HTTP/1.1 503") {
            failures += 1;
        }
    }
    assert_eq!(failures, 3, "ejected after three 5xx in a row");
    let bad_health = gateway
        .health()
        .into_iter()
        .find(|h| h.backend == format!("127.0.0.1:{}", bad.port()))
        .unwrap();
    assert!(bad_health.healthy, "its probe still passes");
    assert_eq!(bad_health.state, "Ejected");
    let metrics = gateway.metrics_text();
    assert!(
        metrics.lines().any(
            |l| l.starts_with("sockway_gateway_backend_ejections_total{")
                && l.contains(&format!("127.0.0.1:{}", bad.port()))
                && l.ends_with(" 1")
        ),
        "{metrics}"
    );
    gateway.shutdown().await;
}

#[tokio::test]
async fn draining_applies_to_a_backend_that_turns_unhealthy() {
    let backend = Backend::start("b").await;
    // The probe asks another server, which the test stops: the backend itself stays up.
    let mut health = Backend::start("health").await;
    let port = free_port();
    let probe = json!({"name": "p", "path": "/", "port": health.port(), "interval": 0.1,
        "timeout": 1, "unhealthyThreshold": 2});
    let draining = json!({"connectionDraining": {"enabled": true, "drainTimeoutInSec": 1}});
    let gateway = start_gateway(&basic_config(port, &[&backend], draining, Some(probe))).await;
    wait_healthy(&gateway, 1).await;
    let (mut ws, _) = ws_connect(port, "/", "").await.unwrap();
    assert_eq!(ask(&mut ws, "whoami").await, "b");
    health.kill();
    assert_eq!(close_code(&mut ws).await, 1001);
    assert!(ws
        .close_info()
        .is_some_and(|c| c.reason.as_str() == "backend unhealthy"));
    gateway.shutdown().await;
}

#[tokio::test]
async fn renaming_a_pool_and_settings_keeps_sessions_and_health() {
    let a = Backend::start("a").await;
    let port = free_port();
    // No draining: a backend taken for removed would have its sessions closed at once.
    let doc = basic_config(port, &[&a], json!({}), Some(slow_probe("/")));
    let gateway = start_gateway(&doc).await;
    wait_healthy(&gateway, 1).await;
    let (mut ws, _) = ws_connect(port, "/", "").await.unwrap();
    assert_eq!(ask(&mut ws, "whoami").await, "a");
    let cookie_id = gateway.health()[0].id.clone();

    let mut renamed = doc.clone();
    renamed["backendAddressPools"][0]["name"] = json!("pool-renamed");
    renamed["backendHttpSettingsCollection"][0]["name"] = json!("settings-renamed");
    renamed["requestRoutingRules"][0]["backendAddressPool"] = json!("pool-renamed");
    renamed["requestRoutingRules"][0]["backendHttpSettings"] = json!("settings-renamed");
    let config = config::from_str(&renamed.to_string(), Format::Json).unwrap();
    gateway.apply(config).await.unwrap();

    let health = gateway.health();
    assert_eq!(health[0].pool, "pool-renamed");
    assert!(health[0].healthy, "health is kept, not re-probed");
    assert_eq!(health[0].id, cookie_id, "affinity cookies stay good");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(ask(&mut ws, "whoami").await, "a", "the session lives on");
    assert_eq!(gateway.sessions(), 1);
    gateway.shutdown().await;
}
