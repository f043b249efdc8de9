//! Backplane outages: Redis killed under traffic and restarted (local delivery goes on,
//! cross-server sends are buffered and delivered in order once it is back, subscriptions are
//! restored; sequence numbers prove order and count), drops past the buffer's bound counted,
//! and a server started while Redis is down that keeps retrying until it is up.

mod scaleout_support;

use std::time::Duration;

use serde_json::json;
use sockway_hub::backplane::{RedisOptions, ScaleOutOptions};
use sockway_hub::token::TokenKey;

use scaleout_support::{fleet, HubClient, HubServer, RedisServer};

fn options() -> RedisOptions {
    RedisOptions {
        reconnect_max: Duration::from_millis(300),
        ..RedisOptions::new("redis://unused/")
    }
}

fn numbered(range: std::ops::Range<u32>) -> Vec<String> {
    range.map(|n| format!("m{n}")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_killed_under_traffic_then_restarted_loses_and_reorders_nothing() {
    let mut redis = RedisServer::start().await;
    let servers = fleet(&redis, 3, options()).await;
    let mut sender = HubClient::connect(&servers[0], None).await;
    let mut local = HubClient::connect(&servers[0], None).await;
    let mut remote = [
        HubClient::connect(&servers[1], None).await,
        HubClient::connect(&servers[2], None).await,
    ];
    local.ok("Join", json!(["g"])).await;
    for client in &mut remote {
        client.ok("Join", json!(["g"])).await;
    }
    for n in 0..10 {
        sender.ok("ToGroup", json!(["g", format!("m{n}")])).await;
    }
    for client in &mut remote {
        for text in numbered(0..10) {
            assert_eq!(client.receive().await, text);
        }
    }

    redis.kill();
    for n in 10..30 {
        sender.ok("ToGroup", json!(["g", format!("m{n}")])).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for text in numbered(0..30) {
        assert_eq!(local.receive().await, text, "local delivery goes on");
    }
    servers[0]
        .until("the sender noticed the outage", |stats| {
            !stats.connected && stats.buffered > 0
        })
        .await;

    redis.resume().await;
    for n in 30..40 {
        sender.ok("ToGroup", json!(["g", format!("m{n}")])).await;
    }
    sender.ok("ToGroup", json!(["g", "END"])).await;
    assert_eq!(local.receive_until("END").await, numbered(30..40));
    for client in &mut remote {
        assert_eq!(
            client.receive_until("END").await,
            numbered(10..40),
            "buffered, then delivered in order, each once"
        );
    }
    let stats = servers[0].manager.stats();
    assert_eq!(stats.dropped, 0);
    assert_eq!(stats.buffered, 0);
    assert!(stats.reconnects >= 1, "{stats:?}");
    for server in &servers {
        server.connected().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sends_past_the_outage_buffer_are_dropped_and_counted() {
    let mut redis = RedisServer::start().await;
    let bounded = RedisOptions {
        max_buffered_messages: 5,
        ..options()
    };
    let servers = fleet(&redis, 2, bounded).await;
    let mut sender = HubClient::connect(&servers[0], None).await;
    let mut remote = HubClient::connect(&servers[1], None).await;
    remote.ok("Join", json!(["g"])).await;

    redis.kill();
    sender.ok("ToGroup", json!(["g", "m0"])).await;
    servers[0]
        .until("the probe waits in the buffer", |stats| {
            !stats.connected && stats.buffered == 1
        })
        .await;
    for n in 1..10 {
        sender.ok("ToGroup", json!(["g", format!("m{n}")])).await;
    }
    let stats = servers[0].manager.stats();
    assert_eq!((stats.buffered, stats.dropped), (5, 5), "{stats:?}");

    redis.resume().await;
    servers[0]
        .until("the buffer is published", |stats| stats.buffered == 0)
        .await;
    sender.ok("ToGroup", json!(["g", "END"])).await;
    assert_eq!(remote.receive_until("END").await, numbered(0..5));
    assert_eq!(servers[0].manager.stats().dropped, 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_started_while_redis_is_down_keeps_retrying_and_joins_when_it_is_up() {
    let mut redis = RedisServer::reserve();
    let key = TokenKey::random();
    let early = HubServer::start(&redis.url(), &key, options()).await;
    let mut client = HubClient::connect(&early, None).await;
    client.ok("Join", json!(["g"])).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!early.manager.stats().connected);

    redis.resume().await;
    early.connected().await;
    let late = HubServer::start(&redis.url(), &key, options()).await;
    late.connected().await;
    let mut sender = HubClient::connect(&late, None).await;
    sender.ok("ToGroup", json!(["g", "hello"])).await;
    assert_eq!(client.receive().await, "hello");
    sender.ok("ToAll", json!(["everyone"])).await;
    assert_eq!(client.receive().await, "everyone");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_change_nobody_can_acknowledge_during_an_outage_is_a_clear_error() {
    let mut redis = RedisServer::start().await;
    let key = TokenKey::random();
    let scale = ScaleOutOptions {
        group_ack_timeout: Duration::from_millis(500),
        ..ScaleOutOptions::default()
    };
    let asking = HubServer::start_with(&redis.url(), &key, options(), scale).await;
    let holding = HubServer::start(&redis.url(), &key, options()).await;
    asking.connected().await;
    holding.connected().await;
    let mut asker = HubClient::connect(&asking, None).await;
    let held = HubClient::connect(&holding, None).await;
    asker.ok("AddOther", json!([held.id, "g"])).await;

    redis.kill();
    asking
        .until("the outage is noticed", |stats| !stats.connected)
        .await;
    let completion = asker.call("RemoveOther", json!([held.id, "g"])).await;
    let error = completion["error"].as_str().unwrap_or_default();
    assert!(
        error.contains(&format!(
            "The server holding connection '{}' did not acknowledge removing it from group 'g' \
             within 500 ms.",
            held.id
        )),
        "{completion}"
    );
    asker.ok("ToAll", json!(["local still works"])).await;
    assert_eq!(asker.receive().await, "local still works");
}
