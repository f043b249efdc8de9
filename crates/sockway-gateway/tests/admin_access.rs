//! The admin listener with `admin.bearerToken`: every request needs the token (401 with a
//! `Bearer` challenge otherwise), loopback included.

mod support;

use serde_json::json;
use support::*;

#[tokio::test]
async fn a_configured_bearer_token_is_required() {
    let backend = Backend::start("b1").await;
    let port = free_port();
    let admin_port = free_port();
    let mut doc = basic_config(port, &[&backend], json!({}), None);
    doc["admin"] = json!({"address": format!("127.0.0.1:{admin_port}"),
        "bearerToken": "s3cr3t-t0ken-for-tests"});
    let gateway = start_gateway(&doc).await;

    let missing = get(admin_port, "/metrics", "").await;
    assert!(missing.starts_with("HTTP/1.1 401"), "{missing}");
    assert!(
        missing
            .to_ascii_lowercase()
            .contains("www-authenticate: bearer"),
        "{missing}"
    );
    assert!(!missing.contains("sockway_gateway_"), "{missing}");
    let wrong = get(
        admin_port,
        "/metrics",
        "Authorization: Bearer s3cr3t-t0ken-for-test\r\n",
    )
    .await;
    assert!(wrong.starts_with("HTTP/1.1 401"), "{wrong}");
    assert!(wrong.contains("invalid_token"), "{wrong}");
    let right = get(
        admin_port,
        "/metrics",
        "Authorization: Bearer s3cr3t-t0ken-for-tests\r\n",
    )
    .await;
    assert!(right.starts_with("HTTP/1.1 200"), "{right}");
    assert!(right.contains("sockway_gateway_sessions"), "{right}");
    gateway.shutdown().await;
}
