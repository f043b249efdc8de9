//! Issue 19 item 13: `GET /backend-health` on the admin listener lists each pool, settings
//! and backend with its state, its last probe and why, as Application Gateway's backend
//! health view does.

mod support;

use serde_json::{json, Value};
use support::*;

#[tokio::test]
async fn the_admin_listener_serves_backend_health_as_json() {
    let up = Backend::start("up").await;
    // Answers 503 on `/`, which its probe asks.
    let down = Backend::start_with("down", false).await;
    let port = free_port();
    let admin_port = free_port();
    let mut doc = basic_config(port, &[&up, &down], json!({}), None);
    doc["admin"] = json!({"address": format!("127.0.0.1:{admin_port}")});
    let gateway = start_gateway(&doc).await;
    wait_healthy(&gateway, 1).await;
    bounded("the failing probe is recorded", async {
        while gateway.health().iter().all(|h| h.state != "Down") {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    })
    .await;

    let response = get(admin_port, "/backend-health", "").await;
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(
        response
            .to_ascii_lowercase()
            .contains("content-type: application/json"),
        "{response}"
    );
    let body = &response[response.find("\r\n\r\n").unwrap() + 4..];
    let doc: Value = serde_json::from_str(body).expect("JSON body");
    let pool = &doc["backendAddressPools"][0];
    assert_eq!(pool["backendAddressPool"]["name"], "pool");
    let settings = &pool["backendHttpSettingsCollection"][0];
    assert_eq!(settings["backendHttpSettings"]["name"], "settings");
    let servers = settings["servers"].as_array().unwrap();
    assert_eq!(servers.len(), 2);
    let server = |b: &Backend| {
        servers
            .iter()
            .find(|s| s["address"] == format!("127.0.0.1:{}", b.port()))
            .unwrap()
            .clone()
    };
    let (u, d) = (server(&up), server(&down));
    assert_eq!(u["health"], "Up");
    assert_eq!(u["inRotation"], true);
    assert_eq!(u["lastProbe"]["ok"], true);
    assert_eq!(d["health"], "Down");
    assert_eq!(d["inRotation"], false);
    assert_eq!(d["lastProbe"]["ok"], false);
    let why = d["healthProbeLog"].as_str().unwrap();
    assert!(why.contains("503"), "the log says why: {why}");
    gateway.shutdown().await;
}
