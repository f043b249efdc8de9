//! The sample chat hub of `sockway hub` with the official SignalR JavaScript client (npm
//! `@microsoft/signalr`, and `@microsoft/signalr-protocol-msgpack` for MessagePack) under
//! Node, unchanged: `tests/peers/signalr_client.js` runs every hub method of the sample over
//! each transport and protocol the client offers (MessagePack wherever the transport carries
//! binary: WebSockets and long polling, not Server-Sent Events), wrong calls, a burst in
//! order, sends the client batches beyond 32 KiB, one message over the 32 KiB limit (a Close
//! naming it, other connections undisturbed), skip-negotiation over WebSockets, automatic
//! reconnect after the transport is dropped, and stateful reconnect across a dropped socket
//! with no message lost or duplicated (once, and cut after cut under traffic). Each test
//! starts its own server on a free loopback port.
//!
//! Needs the peers installed (`scripts/install-peers.sh`) and `SOCKWAY_PEERS_NODE_DIR`
//! pointing at `tests/peers` (`scripts/test-all.sh` sets it); without that variable the tests
//! say so and pass.

mod echo_support;
mod hub_support;

use echo_support::peers_dir;
use hub_support::{assert_scenarios, run_node, start_hub};

/// What every run covers: the sample's methods (see `tests/peers/signalr_scenarios.js`).
const METHODS: &[&str] = &[
    "send_message",
    "groups",
    "stream_counter",
    "stream_cancel",
    "upload_stream",
    "client_result",
    "echo",
    "unknown_method",
    "invocation_errors",
    "burst_order",
    "concurrent_large",
    "oversize_message",
];

/// Runs `signalr_client.js HUB_URL ARGS...` against a fresh `sockway hub` and asserts that
/// the sample's methods and the `extra` scenarios all passed.
async fn node_client(args: &[&str], extra: &[&str]) {
    let mut expected = METHODS.to_vec();
    expected.extend_from_slice(extra);
    node_scenarios(args, &expected).await;
}

/// Runs `signalr_client.js HUB_URL ARGS...` against a fresh `sockway hub` and asserts that it
/// ran exactly the `expected` scenarios and every one passed.
async fn node_scenarios(args: &[&str], expected: &[&str]) {
    let Some(peers) = peers_dir() else {
        return;
    };
    let mut hub = start_hub(&peers).await;
    let mut all = vec![hub.hub_url()];
    all.extend(args.iter().map(|a| a.to_string()));
    let run = run_node(&peers, "signalr_client.js", &all).await;
    let results = assert_scenarios(&run, expected, &mut hub);
    assert_eq!(results.len(), expected.len(), "{}", run.stdout);
}

#[tokio::test]
async fn websockets_json() {
    node_client(
        &["--transport", "WebSockets", "--protocol", "json"],
        &["auto_reconnect"],
    )
    .await;
}

#[tokio::test]
async fn websockets_messagepack() {
    node_client(
        &["--transport", "WebSockets", "--protocol", "messagepack"],
        &["auto_reconnect"],
    )
    .await;
}

#[tokio::test]
async fn server_sent_events_json() {
    node_client(
        &["--transport", "ServerSentEvents", "--protocol", "json"],
        &["auto_reconnect"],
    )
    .await;
}

#[tokio::test]
async fn long_polling_json() {
    node_client(
        &["--transport", "LongPolling", "--protocol", "json"],
        &["auto_reconnect"],
    )
    .await;
}

#[tokio::test]
async fn long_polling_messagepack() {
    node_client(
        &["--transport", "LongPolling", "--protocol", "messagepack"],
        &["auto_reconnect"],
    )
    .await;
}

#[tokio::test]
async fn websockets_skip_negotiation() {
    node_client(
        &["--transport", "WebSockets", "--skip-negotiation"],
        &["auto_reconnect"],
    )
    .await;
}

#[tokio::test]
async fn websockets_stateful_reconnect_json() {
    node_client(
        &[
            "--transport",
            "WebSockets",
            "--protocol",
            "json",
            "--stateful-reconnect",
        ],
        &["stateful_reconnect", "stateful_cuts"],
    )
    .await;
}

#[tokio::test]
async fn websockets_stateful_reconnect_messagepack() {
    node_client(
        &[
            "--transport",
            "WebSockets",
            "--protocol",
            "messagepack",
            "--stateful-reconnect",
        ],
        &["stateful_reconnect", "stateful_cuts"],
    )
    .await;
}

/// 35 s without a message from the client (over the hub's 30 s client timeout and the
/// client's own 30 s server timeout): the connection stays up. Over WebSockets and
/// Server-Sent Events on the server's keep-alive pings; over long polling the JS client sends
/// no pings at all (its polls are the keep-alive), and the hub, as the reference, starts the
/// client timeout only at the client's first Ping. The three wait side by side, on one server.
#[tokio::test]
async fn idle_connections_stay_up_on_every_transport() {
    let Some(peers) = peers_dir() else {
        return;
    };
    let mut hub = start_hub(&peers).await;
    let run = |transport: &str| {
        let args = [
            hub.hub_url(),
            "--transport".into(),
            transport.into(),
            "--only".into(),
            "idle_keepalive".into(),
        ];
        let peers = peers.clone();
        async move { run_node(&peers, "signalr_client.js", &args).await }
    };
    let (websockets, sse, long_polling) = tokio::join!(
        run("WebSockets"),
        run("ServerSentEvents"),
        run("LongPolling")
    );
    for run in [websockets, sse, long_polling] {
        assert_scenarios(&run, &["idle_keepalive"], &mut hub);
    }
}
