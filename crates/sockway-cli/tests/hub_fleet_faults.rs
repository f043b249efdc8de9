//! Faults in a fleet of `sockway hub --redis` servers sharing one `redis-server` (Debian's
//! package, started here on a free loopback port with no persistence), with the official
//! SignalR JavaScript client (`tests/peers/signalr_fleet_faults.js`):
//!
//! - one server killed (SIGKILL) while clients are connected: its clients, which came through
//!   `sockway gateway` (round-robin, no affinity), reconnect with the client's automatic
//!   reconnect (some with stateful reconnect) to another server and keep receiving group and
//!   all-messages; clients of the other servers are not disturbed;
//! - a slow subscriber (a raw WebSocket client that stops reading) stalls no publishing to the
//!   clients of its own server or another; once its queue bound is hit it is dropped with a
//!   `Close` that says why.
//!
//! Redis killed and restarted mid-traffic is `sockway-hub`'s `scaleout_outage` test (real
//! Redis, real hub servers on loopback ports, sequence numbers proving order and count).
//!
//! Needs the peers installed (`scripts/install-peers.sh`, which also installs redis-server)
//! and `SOCKWAY_PEERS_NODE_DIR` pointing at `tests/peers`; without that variable the tests
//! say so and pass.

mod echo_support;
mod fleet_support;
mod hub_support;
mod slow_client;

use std::time::Duration;

use echo_support::peers_dir;
use fleet_support::{start_fleet, start_gateway, start_redis, TempDir};
use hub_support::{assert_scenarios, run_node};
use slow_client::SlowClient;

#[tokio::test]
async fn a_killed_server_s_clients_reconnect_to_the_others_and_nobody_else_notices() {
    let Some(peers) = peers_dir() else { return };
    let dir = TempDir::new("sockway-hub-fleet-kill");
    let redis = start_redis().await;
    let mut servers = start_fleet(&peers, &redis, &dir, 3).await;
    let gateway = start_gateway(&dir, &servers).await;
    let victim = servers[0].pid().to_string();
    let args = [
        "kill".to_owned(),
        gateway.hub_url.clone(),
        servers[1].hub_url(),
        servers[2].hub_url(),
        victim,
    ];
    let run = run_node(&peers, "signalr_fleet_faults.js", &args).await;
    assert_scenarios(&run, &["kill_one_server"], &mut servers[1]);
    println!("{}", run.stdout);
    assert!(!servers[0].is_running(), "the killed server is gone");
    assert!(servers[1].is_running() && servers[2].is_running());
}

/// Messages the sender sends while the slow subscriber does not read: enough to fill both
/// TCP buffers (about 4 MiB on a Linux loopback) and the hub's queue of 1,024 frames.
const FLOOD_COUNT: usize = 2_000;

/// Bytes of padding in each (under the hub's 32 KiB receive limit).
const FLOOD_SIZE: usize = 16_000;

#[tokio::test]
async fn a_slow_subscriber_stalls_nobody_and_is_dropped_with_a_reason() {
    let Some(peers) = peers_dir() else { return };
    let dir = TempDir::new("sockway-hub-fleet-slow");
    let redis = start_redis().await;
    let mut servers = start_fleet(&peers, &redis, &dir, 2).await;
    let mut slow = SlowClient::connect(servers[0].addr, "/chatHub").await;
    slow.join("room").await;

    let args = [
        "flood".to_owned(),
        servers[0].hub_url(),
        servers[1].hub_url(),
        FLOOD_COUNT.to_string(),
        FLOOD_SIZE.to_string(),
    ];
    let run = run_node(&peers, "signalr_fleet_faults.js", &args).await;
    assert_scenarios(&run, &["flood"], &mut servers[0]);

    let records = slow.read_to_close(Duration::from_secs(30)).await;
    let numbers: Vec<usize> = records.iter().filter_map(flood_number).collect();
    assert!(
        numbers.len() < FLOOD_COUNT,
        "the slow client was dropped before the end, got {}",
        numbers.len()
    );
    assert_eq!(
        numbers,
        (0..numbers.len()).collect::<Vec<_>>(),
        "what it got is the beginning, in order"
    );
    let close = records.last().expect("records before the close");
    assert_eq!(close["type"], 7, "a Close record last: {close}");
    let error = close["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("did not read its messages fast enough"),
        "{close}"
    );
    assert!(servers[0].is_running() && servers[1].is_running());
}

/// The number of a flood message (`Send("seq N ...")`).
fn flood_number(record: &serde_json::Value) -> Option<usize> {
    if record["type"] != 1 || record["target"] != "Send" {
        return None;
    }
    let text = record["arguments"][0].as_str()?;
    text.strip_prefix("seq ")?.split(' ').next()?.parse().ok()
}
