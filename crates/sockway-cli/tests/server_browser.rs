//! The echo page in a real browser: headless Chromium, driven by playwright-core
//! (`tests/peers/browser_echo.js`), loads `/`, connects, sends, sees the echo, closes and sees
//! code 1000 in the Communication Log. The screenshot lands in `target/browser/echo.png`.
//!
//! Needs the peers installed (`scripts/install-peers.sh`: Chromium and playwright-core) and
//! `SOCKWAY_PEERS_NODE_DIR` pointing at `tests/peers` (`scripts/test-all.sh` sets it); without
//! that variable the test says so and passes.

mod echo_support;

use std::path::PathBuf;
use std::time::Duration;

use echo_support::start_echo;
use tokio::process::Command;

#[tokio::test]
async fn the_echo_page_works_in_headless_chromium() {
    let Some(peers) = std::env::var_os("SOCKWAY_PEERS_NODE_DIR") else {
        println!("skipped: SOCKWAY_PEERS_NODE_DIR is not set (run scripts/test-all.sh, or set it to tests/peers after scripts/install-peers.sh)");
        return;
    };
    let peers = PathBuf::from(peers);
    let mut server = start_echo(&[]).await;
    let page = format!("http://{}/", server.addr);
    let screenshot =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/browser/echo.png");

    let run = Command::new("node")
        .arg(peers.join("browser_echo.js"))
        .arg(&page)
        .arg(&screenshot)
        .current_dir(&peers)
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(120), run)
        .await
        .expect("the browser run timed out")
        .expect("run node");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "browser_echo.js failed\n--- stdout\n{stdout}\n--- stderr\n{stderr}"
    );
    assert!(
        stdout.contains(r#"{"kind":"receive","data":"Hello from Chromium"#),
        "{stdout}"
    );
    assert!(
        stdout.contains(r#"{"kind":"close","data":"code 1000"#),
        "{stdout}"
    );
    assert!(
        screenshot.exists(),
        "no screenshot at {}",
        screenshot.display()
    );

    // The server logged the socket's life: one line at open, one at close, with the code.
    let opened = server.wait_for_log("WebSocket opened").await;
    assert!(opened.contains("http=HTTP/1.1"), "{opened}");
    let closed = server.wait_for_log("WebSocket closed").await;
    assert!(closed.contains("code=1000"), "{closed}");
    assert!(closed.contains("duration="), "{closed}");
}
