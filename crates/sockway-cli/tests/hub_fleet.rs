//! `sockway hub --redis URL`: two servers of a fleet sharing one `redis-server` (Debian's
//! package, started here on a free loopback port with no persistence, killed at the end), and
//! the official SignalR JavaScript client: `tests/peers/signalr_fleet.js` chats across them
//! (all, a group, a client result), with one client per server on each transport, and
//! through `sockway gateway` balancing round-robin over both with no cookie affinity (the
//! negotiate and the WebSocket of one client land on different servers: the shared token
//! secret lets the second adopt the connection).
//!
//! Needs the peers installed (`scripts/install-peers.sh`, which also installs redis-server)
//! and `SOCKWAY_PEERS_NODE_DIR` pointing at `tests/peers`; without that variable the test
//! says so and passes.

mod echo_support;
mod fleet_support;
mod hub_support;

use echo_support::peers_dir;
use fleet_support::{start_fleet, start_gateway, start_redis, TempDir};
use hub_support::{assert_scenarios, run_node, start_hub_with};

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

#[tokio::test]
async fn websockets_through_a_round_robin_gateway_need_no_sticky_sessions() {
    let Some(peers) = peers_dir() else { return };
    let dir = TempDir::new("sockway-hub-fleet");
    let redis = start_redis().await;
    let mut servers = start_fleet(&peers, &redis, &dir, 2).await;
    let gateway = start_gateway(&dir, &servers).await;
    let url = gateway.hub_url.clone();
    let run = run_node(
        &peers,
        "signalr_fleet.js",
        &[url.clone(), url, "WebSockets".to_owned()],
    )
    .await;
    assert_scenarios(&run, &["fleet_WebSockets"], &mut servers[0]);
}
