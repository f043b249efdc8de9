//! The connection runtime: handshake, limits, timers, bad input and slow clients, each
//! refused with a reason and without disturbing other connections.

mod hub_support;

use std::time::Duration;

use hub_support::{completion, connect, connect_with, info, open, WAIT};
use serde_json::json;
use sockway_hub::link::TransportKind;
use sockway_hub::sample::{chat_hub, chat_hub_with};
use sockway_hub::HubOptions;

fn error_of(close: &serde_json::Value) -> String {
    close["error"].as_str().unwrap_or_default().to_owned()
}

#[tokio::test]
async fn the_first_messages_may_come_with_the_handshake() {
    let hub = chat_hub();
    let mut client = open(&hub, info("a", false), 64);
    client
        .send_raw(
            "{\"protocol\":\"json\",\"version\":1}\u{1e}{\"type\":1,\"invocationId\":\"1\",\
             \"target\":\"Echo\",\"arguments\":[\"early\"]}\u{1e}",
        )
        .await;
    assert_eq!(client.next_record().await, b"{}");
    assert_eq!(completion(&mut client, "1").await["result"], "early");
}

#[tokio::test]
async fn a_handshake_split_across_messages_is_read_whole() {
    let hub = chat_hub();
    let mut client = open(&hub, info("a", false), 64);
    client.send_raw("{\"protocol\":").await;
    client.send_raw("\"json\",\"version\":1}").await;
    client.send_raw("\u{1e}").await;
    assert_eq!(client.next_record().await, b"{}");
}

#[tokio::test]
async fn an_unsupported_handshake_gets_an_error_then_the_end() {
    let hub = chat_hub();
    let cases = [
        (
            "{\"protocol\":\"xml\",\"version\":1}\u{1e}",
            "The protocol 'xml' is not supported.",
        ),
        ("{\"protocol\":\"json\",\"version\":99}\u{1e}", "version 99"),
        ("nonsense\u{1e}", ""),
    ];
    for (request, expected) in cases {
        let mut client = open(&hub, info("a", false), 64);
        client.send_raw(request).await;
        let response: serde_json::Value =
            serde_json::from_slice(&client.next_record().await).unwrap();
        let error = response["error"].as_str().expect("an error response");
        assert!(error.contains(expected), "{request}: {error}");
        client.ended().await;
    }
    let mut sse = info("b", false);
    sse.transport = TransportKind::ServerSentEvents;
    let mut client = open(&hub, sse, 64);
    client
        .send_raw("{\"protocol\":\"messagepack\",\"version\":1}\u{1e}")
        .await;
    let response: serde_json::Value = serde_json::from_slice(&client.next_record().await).unwrap();
    assert!(
        response["error"].as_str().unwrap().contains("'Binary'"),
        "{response}"
    );
    client.ended().await;
}

#[tokio::test]
async fn no_handshake_in_time_ends_the_connection() {
    let hub = chat_hub_with(HubOptions {
        handshake_timeout: Duration::from_millis(100),
        ..HubOptions::default()
    });
    let mut client = open(&hub, info("a", false), 64);
    client.ended().await;
}

#[tokio::test]
async fn a_malformed_record_closes_with_a_reason_and_spares_others() {
    let hub = chat_hub();
    let mut bad = connect(&hub, "bad").await;
    let mut good = connect(&hub, "good").await;
    bad.send_raw("{\"type\":1,\"target\":\u{1e}").await;
    let error = error_of(&bad.closed().await);
    assert!(
        error.starts_with("Connection closed with an error."),
        "{error}"
    );
    good.invoke("1", "Echo", json!(["fine"])).await;
    assert_eq!(completion(&mut good, "1").await["result"], "fine");
}

#[tokio::test]
async fn an_over_size_message_closes_saying_so() {
    let hub = chat_hub_with(HubOptions {
        maximum_receive_message_size: 1000,
        ..HubOptions::default()
    });
    let mut big = connect(&hub, "big").await;
    let mut good = connect(&hub, "good").await;
    let text = "x".repeat(2000);
    big.invoke("1", "Echo", json!([text])).await;
    let error = error_of(&big.closed().await);
    assert!(error.contains("1000"), "{error}");
    good.invoke("1", "Echo", json!(["x".repeat(900)])).await;
    assert_eq!(completion(&mut good, "1").await["result"], "x".repeat(900));
}

#[tokio::test]
async fn a_close_from_the_client_ends_the_connection() {
    let hub = chat_hub();
    let mut client = connect(&hub, "a").await;
    client.send(json!({"type": 7})).await;
    client.ended().await;
    tokio::time::timeout(WAIT, client.task)
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn keep_alive_pings_an_idle_client() {
    let hub = chat_hub_with(HubOptions {
        keep_alive_interval: Duration::from_millis(50),
        ..HubOptions::default()
    });
    let mut client = connect(&hub, "a").await;
    for _ in 0..2 {
        assert_eq!(client.next_any().await, json!({"type": 6}));
    }
}

#[tokio::test]
async fn keep_alive_sends_no_ping_while_messages_flow() {
    // Checked every 200 ms; a reply every 40 ms or so.
    let hub = chat_hub_with(HubOptions {
        keep_alive_interval: Duration::from_millis(400),
        ..HubOptions::default()
    });
    let mut client = connect(&hub, "a").await;
    for n in 0..25 {
        let id = n.to_string();
        client.invoke(&id, "Echo", json!([n])).await;
        let reply = client.next_any().await;
        assert_eq!(
            reply["invocationId"], id,
            "no ping between replies: {reply}"
        );
        tokio::time::sleep(Duration::from_millis(40)).await;
    }
    assert_eq!(client.next_any().await, json!({"type": 6}), "idle again");
}

#[tokio::test]
async fn a_silent_client_times_out_with_an_error() {
    let hub = chat_hub_with(HubOptions {
        client_timeout_interval: Duration::from_millis(200),
        ..HubOptions::default()
    });
    let mut client = connect(&hub, "a").await;
    client.send(json!({"type": 6})).await;
    let close = client.closed().await;
    assert_eq!(
        error_of(&close),
        "Connection closed with an error. OperationCanceledException: Client hasn't sent a \
         message/ping within the configured ClientTimeoutInterval.",
        "ASP.NET Core's text"
    );
    assert_eq!(close["allowReconnect"], true, "{close}");
}

#[tokio::test]
async fn a_client_that_never_pinged_is_not_timed_out() {
    let hub = chat_hub_with(HubOptions {
        client_timeout_interval: Duration::from_millis(50),
        ..HubOptions::default()
    });
    let mut client = connect(&hub, "a").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    client.invoke("1", "Echo", json!(["still here"])).await;
    assert_eq!(completion(&mut client, "1").await["result"], "still here");
}

#[tokio::test]
async fn long_polling_gets_no_keep_alive_pings() {
    let hub = chat_hub_with(HubOptions {
        keep_alive_interval: Duration::from_millis(20),
        ..HubOptions::default()
    });
    let mut polling = info("a", false);
    polling.transport = TransportKind::LongPolling;
    let mut client = connect_with(&hub, polling, 64, 1).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    client.invoke("1", "Echo", json!(["x"])).await;
    let first = client.next_any().await;
    assert_eq!(first["invocationId"], "1", "no ping first: {first}");
}

#[tokio::test]
async fn a_slow_client_is_closed_and_never_slows_the_others() {
    let hub = chat_hub();
    let mut slow = connect_with(&hub, info("slow", false), 4, 1).await;
    let mut fast = connect(&hub, "fast").await;
    for n in 0..20 {
        fast.invoke(&n.to_string(), "SendMessage", json!(["f", n.to_string()]))
            .await;
        let mut got_broadcast = false;
        loop {
            let message = fast.next().await;
            if message["target"] == "ReceiveMessage" {
                assert_eq!(message["arguments"][1], n.to_string());
                got_broadcast = true;
            } else if message["type"] == 3 {
                assert!(message.get("error").is_none(), "{message}");
                break;
            }
        }
        assert!(got_broadcast);
    }
    let close = slow.closed().await;
    assert!(
        error_of(&close).contains("did not read its messages fast enough"),
        "{close}"
    );
}

#[tokio::test]
async fn a_broadcast_is_encoded_once_for_every_connection() {
    let hub = chat_hub();
    let mut a = connect(&hub, "a").await;
    let mut b = connect(&hub, "b").await;
    hub.handle()
        .clients()
        .all()
        .send("ReceiveMessage", ("x", "y"))
        .await
        .unwrap();
    let frame_a = tokio::time::timeout(WAIT, a.outbound.recv())
        .await
        .unwrap()
        .unwrap();
    let frame_b = tokio::time::timeout(WAIT, b.outbound.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(frame_a, frame_b);
    assert_eq!(
        frame_a.as_ptr(),
        frame_b.as_ptr(),
        "the same bytes, not a copy"
    );
}

#[tokio::test]
async fn a_completion_or_stream_item_for_nothing_is_ignored() {
    let hub = chat_hub();
    let mut client = connect(&hub, "a").await;
    client
        .send(json!({"type": 2, "invocationId": "zz", "item": 1}))
        .await;
    client
        .send(json!({"type": 3, "invocationId": "zz", "result": 1}))
        .await;
    client.send(json!({"type": 5, "invocationId": "zz"})).await;
    client.send(json!({"type": 6})).await;
    client.invoke("1", "Echo", json!(["ok"])).await;
    assert_eq!(completion(&mut client, "1").await["result"], "ok");
}

#[tokio::test]
async fn a_client_gone_ends_the_connection_and_leaves_groups() {
    let hub = chat_hub();
    let mut a = connect(&hub, "a").await;
    let b = connect(&hub, "b").await;
    b.invoke("1", "AddToGroup", json!(["g"])).await;
    drop(b.inbound);
    tokio::time::timeout(WAIT, b.task).await.unwrap().unwrap();
    a.invoke("2", "SendMessageToGroup", json!(["g", "anyone?"]))
        .await;
    assert!(completion(&mut a, "2").await.get("error").is_none());
}
