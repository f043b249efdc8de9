//! Signals sent the moment a server announces itself are acted on, never left to their
//! default action (which ends the process at once, so open WebSockets would get no close
//! frame): SIGTERM stops `sockway echo` (both servers) and `sockway gateway` cleanly, and
//! SIGHUP reloads the gateway.

mod echo_support;

use echo_support::{lines_until, spawn_logged, wait_for_line, STEP};
use tokio::process::Child;

/// Sends `signal` (a `kill` name such as `TERM`) to `child`.
fn send(child: &Child, signal: &str) {
    let pid = child.id().expect("running").to_string();
    let status = std::process::Command::new("kill")
        .args([&format!("-{signal}"), &pid])
        .status()
        .expect("kill");
    assert!(status.success(), "kill -{signal} {pid}");
}

/// Waits (at most [`STEP`]) for `child` to exit and checks that it exited with 0, not by
/// a signal.
async fn exits_cleanly(child: &mut Child, what: &str) {
    let status = tokio::time::timeout(STEP, child.wait())
        .await
        .expect("exited after the signal")
        .expect("wait");
    assert!(status.success(), "{what}: {status:?}");
}

/// A port that was free a moment ago (a gateway listener needs a fixed number).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

#[tokio::test]
async fn echo_servers_stop_cleanly_on_sigterm_sent_as_soon_as_they_listen() {
    for extra in [None, Some("--event-loop")] {
        let mut args = vec!["echo", "--listen", "127.0.0.1:0"];
        args.extend(extra);
        let (mut child, mut log) = spawn_logged(&args);
        wait_for_line(&mut log, "listening").await;
        send(&child, "TERM");
        exits_cleanly(&mut child, &args.join(" ")).await;
        wait_for_line(&mut log, "echo server stopped").await;
    }
}

#[tokio::test]
async fn the_gateway_reloads_on_sighup_and_stops_on_sigterm_right_after_listening() {
    let dir = std::env::temp_dir().join(format!("sockway-signals-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("gateway.json");
    // Nothing listens on the backend's port: the gateway runs with an unhealthy pool.
    let [port, unused] = [free_port(), free_port()];
    std::fs::write(
        &path,
        format!(
            r#"{{
  "httpListeners": [{{"name": "site", "protocol": "Http", "port": {port},
    "bindAddress": "127.0.0.1"}}],
  "backendAddressPools": [{{"name": "pool",
    "backendAddresses": [{{"ipAddress": "127.0.0.1", "port": {unused}}}]}}],
  "backendHttpSettingsCollection": [{{"name": "plain", "port": {unused},
    "protocol": "Http"}}],
  "requestRoutingRules": [{{"name": "all", "ruleType": "Basic", "httpListener": "site",
    "backendAddressPool": "pool", "backendHttpSettings": "plain"}}],
  "limits": {{"shutdownTimeout": 1}}
}}"#
        ),
    )
    .unwrap();
    let (mut child, mut log) = spawn_logged(&["gateway", "--config", path.to_str().unwrap()]);
    wait_for_line(&mut log, "listening").await;
    send(&child, "HUP");
    let reloaded = wait_for_line(&mut log, "reloaded").await;
    assert!(reloaded.contains("SIGHUP"), "{reloaded}");
    send(&child, "TERM");
    exits_cleanly(&mut child, "sockway gateway").await;
    let rest = lines_until(&mut log, "stopping").await;
    assert!(!rest.is_empty());
    let _ = std::fs::remove_dir_all(&dir);
}
