//! The chat page of `sockway hub` in a real browser: two headless Chromium pages
//! (`tests/peers/hub_browser.js`, playwright-core) load `/`, which loads the official SignalR
//! JavaScript client from the server (`--signalr-js`, the npm bundle) and connects to
//! `/chatHub`; page 1 sends a message, both pages list it, page 2 answers, both list that.
//! Screenshots land in `target/browser/hub-chat-1.png` and `-2.png`.
//!
//! Needs the peers installed (`scripts/install-peers.sh`: Chromium and playwright-core) and
//! `SOCKWAY_PEERS_NODE_DIR` pointing at `tests/peers` (`scripts/test-all.sh` sets it); without
//! that variable the test says so and passes.

mod echo_support;
mod hub_support;

use echo_support::{peers_dir, screenshot_path};
use hub_support::{assert_scenarios, run_node, start_hub};

#[tokio::test]
async fn two_chromium_pages_chat_through_the_hub() {
    let Some(peers) = peers_dir() else {
        return;
    };
    let mut hub = start_hub(&peers).await;
    let screenshots = screenshot_path("");
    let args = [hub.page_url(), screenshots.display().to_string()];
    let run = run_node(&peers, "hub_browser.js", &args).await;
    assert_scenarios(
        &run,
        &["pages_connect", "chat_both_ways", "no_page_errors"],
        &mut hub,
    );
    for page in ["hub-chat-1.png", "hub-chat-2.png"] {
        let shot = screenshot_path(page);
        assert!(shot.exists(), "no screenshot at {}", shot.display());
    }
}
