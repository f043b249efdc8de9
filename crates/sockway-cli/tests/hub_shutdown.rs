//! Stopping `sockway hub` (SIGTERM) with the official SignalR JavaScript client connected
//! over each transport: every connection ends at once (the WebSocket with its close frame,
//! the Server-Sent Events stream, the pending long poll), as the reference closes every
//! connection when the application stops, and the server exits without having to drop any
//! connection at the end of its drain.
//!
//! Needs the peers installed (`scripts/install-peers.sh`) and `SOCKWAY_PEERS_NODE_DIR`
//! pointing at `tests/peers`; without that variable the test says so and passes.

mod echo_support;
mod hub_support;

use echo_support::peers_dir;
use hub_support::{assert_scenarios, run_peer_with, start_hub};

#[tokio::test]
async fn sigterm_ends_the_connections_of_every_transport() {
    let Some(peers) = peers_dir() else {
        return;
    };
    let mut hub = start_hub(&peers).await;
    let args = [
        peers.join("signalr_client.js").display().to_string(),
        hub.hub_url(),
        "--only".into(),
        "server_shutdown".into(),
    ];
    let env = [("SOCKWAY_HUB_PID", hub.pid().to_string())];
    let run = run_peer_with("node".as_ref(), &args, &peers, &env).await;
    assert_scenarios(&run, &["server_shutdown"], &mut hub);
    let (success, log) = hub.wait_exit().await;
    assert!(success, "sockway hub failed:\n{log}");
    assert!(log.contains("hub server stopped"), "{log}");
    assert!(
        !log.contains("drain ended before every connection closed"),
        "connections were left for the drain deadline to drop:\n{log}"
    );
}
