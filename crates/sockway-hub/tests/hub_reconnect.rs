//! Stateful reconnect (`HubProtocol.md`, "Stateful Reconnect"): sequence ids, acks, the
//! bounded replay buffer, replay after a new transport took over, duplicates dropped.

mod hub_support;

use std::time::Duration;

use hub_support::{completion, connect_with, info, TestClient};
use serde_json::{json, Value};
use sockway_hub::link::Inbound;
use sockway_hub::sample::chat_hub_with;
use sockway_hub::HubOptions;

async fn stateful(
    options: HubOptions,
    id: &str,
    capacity: usize,
) -> (sockway_hub::Hub, TestClient) {
    let hub = chat_hub_with(options);
    let client = connect_with(&hub, info(id, true), capacity, 2).await;
    (hub, client)
}

/// What a transport does when a client comes back: drop the lost socket's frames, tell the hub.
async fn reconnect(client: &mut TestClient) {
    client.outbound.clear();
    client.inbound.send(Inbound::Reconnected).await.unwrap();
}

fn is_trackable(message: &Value) -> bool {
    (1..=5).contains(&message["type"].as_u64().unwrap_or(0))
}

#[tokio::test]
async fn unacknowledged_messages_are_replayed_after_a_sequence() {
    let (_hub, mut client) = stateful(HubOptions::default(), "a", 64).await;
    client.invoke("1", "Echo", json!(["one"])).await;
    completion(&mut client, "1").await;
    client.invoke("2", "Echo", json!(["two"])).await;
    completion(&mut client, "2").await;
    client.send(json!({"type": 8, "sequenceId": 1})).await;
    reconnect(&mut client).await;
    assert_eq!(client.next().await, json!({"type": 9, "sequenceId": 2}));
    let replayed = client.next().await;
    assert_eq!(replayed["invocationId"], "2");
    assert_eq!(replayed["result"], "two");
    client.send(json!({"type": 9, "sequenceId": 1})).await;
    client.invoke("1", "Echo", json!(["one"])).await;
    client.invoke("2", "Echo", json!(["two"])).await;
    client.invoke("3", "Echo", json!(["three"])).await;
    let next = client.next().await;
    assert_eq!(next["invocationId"], "3", "duplicates were dropped: {next}");
}

#[tokio::test]
async fn nothing_to_replay_still_sends_the_next_sequence_id() {
    let (_hub, mut client) = stateful(HubOptions::default(), "a", 64).await;
    client.invoke("1", "Echo", json!(["one"])).await;
    completion(&mut client, "1").await;
    client.send(json!({"type": 8, "sequenceId": 1})).await;
    client.send(json!({"type": 6})).await;
    reconnect(&mut client).await;
    assert_eq!(client.next().await, json!({"type": 9, "sequenceId": 2}));
}

#[tokio::test]
async fn the_server_acknowledges_what_it_received() {
    let options = HubOptions {
        ack_interval: Duration::from_millis(20),
        ..HubOptions::default()
    };
    let (_hub, mut client) = stateful(options, "a", 64).await;
    client.invoke("1", "Echo", json!(["one"])).await;
    client.invoke("2", "Echo", json!(["two"])).await;
    loop {
        let message = client.next_any().await;
        if message["type"] == 8 && message["sequenceId"] == 2 {
            break;
        }
    }
}

#[tokio::test]
async fn messages_sent_while_the_transport_is_gone_arrive_in_order_after_it_is_back() {
    let (hub, mut client) = stateful(HubOptions::default(), "a", 4).await;
    let handle = hub.handle();
    for n in 0..12 {
        handle
            .clients()
            .all()
            .send("ReceiveMessage", ("x", n))
            .await
            .unwrap();
    }
    reconnect(&mut client).await;
    assert_eq!(client.next().await, json!({"type": 9, "sequenceId": 1}));
    for n in 0..12 {
        let message = client.next().await;
        assert_eq!(message["arguments"], json!(["x", n]));
    }
}

#[tokio::test]
async fn a_stream_waits_for_acks_when_the_buffer_is_full() {
    let options = HubOptions {
        stateful_reconnect_buffer_size: 200,
        ..HubOptions::default()
    };
    let (_hub, mut client) = stateful(options, "a", 64).await;
    client
        .send(json!({"type": 4, "invocationId": "s", "target": "Counter", "arguments": [40, 0]}))
        .await;
    let mut received = 0u64;
    let mut items = 0;
    loop {
        let message = client.next().await;
        if is_trackable(&message) {
            received += 1;
            client
                .send(json!({"type": 8, "sequenceId": received}))
                .await;
        }
        if message["type"] == 2 {
            assert_eq!(message["item"], items);
            items += 1;
        }
        if message["type"] == 3 {
            break;
        }
    }
    assert_eq!(items, 40);
}

#[tokio::test]
async fn a_client_that_never_acknowledges_is_closed_when_the_buffer_is_full() {
    let options = HubOptions {
        stateful_reconnect_buffer_size: 300,
        ..HubOptions::default()
    };
    let (hub, mut client) = stateful(options, "a", 1024).await;
    for n in 0..40 {
        let _ = hub
            .handle()
            .clients()
            .all()
            .send("ReceiveMessage", ("x", n))
            .await;
    }
    let close = client.closed().await;
    let error = close["error"].as_str().unwrap_or_default();
    assert!(error.contains("did not acknowledge"), "{close}");
}

#[tokio::test]
async fn a_sequence_beyond_what_was_received_is_a_protocol_error() {
    let (_hub, mut client) = stateful(HubOptions::default(), "a", 64).await;
    reconnect(&mut client).await;
    assert_eq!(client.next().await["type"], 9);
    client.send(json!({"type": 9, "sequenceId": 50})).await;
    let close = client.closed().await;
    assert!(
        close["error"]
            .as_str()
            .unwrap_or_default()
            .contains("Sequence ID greater"),
        "{close}"
    );
}

#[tokio::test]
async fn version_1_clients_get_no_stateful_reconnect() {
    let hub = chat_hub_with(HubOptions::default());
    let mut client = connect_with(&hub, info("a", true), 64, 1).await;
    client.invoke("1", "Echo", json!(["one"])).await;
    completion(&mut client, "1").await;
    reconnect(&mut client).await;
    client.invoke("2", "Echo", json!(["two"])).await;
    let next = client.next().await;
    assert_eq!(
        next["invocationId"], "2",
        "no Sequence for a version 1 client: {next}"
    );
}
