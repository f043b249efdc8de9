//! The hub's message loop run in the socket's own loop (a WebSocket without stateful
//! reconnect, docs/benchmarks/hub.md "Idle memory" changes 12-13), against a real server and a real
//! WebSocket client: the handshake and its timeout, invocations, the keep-alive `Ping` and the
//! client timeout from the shared ticker, a protocol error's `Close`, the disconnect hook, and
//! a client result that needs the socket written while the hub waits.

use std::net::SocketAddr;
use std::time::Duration;

use sockway::client::{ClientBuilder, MessageWebSocket};
use sockway::server::{Server, ServerOptions, ShutdownHandle};
use sockway::Message;
use sockway_hub::sample::chat_hub_builder;
use sockway_hub::{HttpOptions, HubContext, HubOptions, HubService};
use tokio::sync::mpsc;

/// The longest any step may take before the test fails (CI is a loaded 2-core machine).
const WAIT: Duration = Duration::from_secs(20);

struct TestHub {
    addr: SocketAddr,
    stop: ShutdownHandle,
    disconnected: mpsc::UnboundedReceiver<Option<String>>,
}

impl Drop for TestHub {
    fn drop(&mut self) {
        self.stop.shutdown();
    }
}

/// The sample chat hub at `/hub` with `options`, reporting each disconnect's error.
async fn start(options: HubOptions) -> TestHub {
    let (tx, disconnected) = mpsc::unbounded_channel();
    let hub = chat_hub_builder(options)
        .on_disconnected(move |_: HubContext, error: Option<String>| {
            let _ = tx.send(error);
            async {}
        })
        .build();
    let service = HubService::new("/hub", hub, HttpOptions::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = Server::new(ServerOptions::default().handle_signals(false));
    let stop = server.shutdown_handle();
    tokio::spawn(server.serve(listener, service));
    TestHub {
        addr,
        stop,
        disconnected,
    }
}

async fn connect(hub: &TestHub) -> MessageWebSocket {
    let url = format!("ws://{}/hub", hub.addr);
    tokio::time::timeout(WAIT, ClientBuilder::new(&url).connect_message())
        .await
        .expect("the handshake in time")
        .expect("the socket opens")
}

/// The next text message's records (without their separators); `None` once the socket ends.
async fn next(socket: &mut MessageWebSocket) -> Option<Vec<serde_json::Value>> {
    let message = tokio::time::timeout(WAIT, socket.recv())
        .await
        .expect("a message in time")
        .ok()??;
    let Message::Text(text) = message else {
        panic!("expected a text message, got {message:?}");
    };
    let records = text
        .as_str()
        .split('\u{1e}')
        .filter(|record| !record.is_empty())
        .map(|record| serde_json::from_str(record).expect("a JSON record"))
        .collect();
    Some(records)
}

/// Waits for the first record of `kind` (the hub message type), skipping others.
async fn record_of(socket: &mut MessageWebSocket, kind: u64) -> serde_json::Value {
    loop {
        let records = next(socket).await.expect("the socket is open");
        if let Some(record) = records.into_iter().find(|r| r["type"] == kind) {
            return record;
        }
    }
}

async fn handshake(socket: &mut MessageWebSocket) {
    socket
        .send_text("{\"protocol\":\"json\",\"version\":1}\u{1e}")
        .await
        .unwrap();
    let answer = next(socket).await.expect("a handshake answer");
    assert_eq!(answer, vec![serde_json::json!({})]);
}

async fn ended(socket: &mut MessageWebSocket) {
    loop {
        if next(socket).await.is_none() {
            return;
        }
    }
}

#[tokio::test]
async fn invocations_and_keep_alive_pings_and_the_disconnect_hook() {
    let mut hub = start(HubOptions {
        keep_alive_interval: Duration::from_millis(200),
        ..HubOptions::default()
    })
    .await;
    let mut socket = connect(&hub).await;
    handshake(&mut socket).await;
    socket
        .send_text(
            "{\"type\":1,\"invocationId\":\"1\",\"target\":\"Echo\",\"arguments\":[\"hi\"]}\u{1e}",
        )
        .await
        .unwrap();
    let completion = record_of(&mut socket, 3).await;
    assert_eq!(completion["invocationId"], "1");
    assert_eq!(completion["result"], "hi");
    // Silence from the server side: the keep-alive ping comes from the shared ticker.
    record_of(&mut socket, 6).await;
    record_of(&mut socket, 6).await;
    socket.close(sockway::CloseCode::NORMAL, "").await.unwrap();
    let error = tokio::time::timeout(WAIT, hub.disconnected.recv()).await;
    assert_eq!(error.expect("the hook in time"), Some(None));
}

#[tokio::test]
async fn a_silent_client_times_out_with_a_close_allowing_reconnect() {
    let mut hub = start(HubOptions {
        client_timeout_interval: Duration::from_millis(300),
        keep_alive_interval: Duration::from_millis(100),
        ..HubOptions::default()
    })
    .await;
    let mut socket = connect(&hub).await;
    handshake(&mut socket).await;
    // The client timeout runs from the client's first ping, as in the reference.
    socket.send_text("{\"type\":6}\u{1e}").await.unwrap();
    let close = record_of(&mut socket, 7).await;
    assert_eq!(close["allowReconnect"], true);
    let error = close["error"].as_str().unwrap();
    assert!(error.contains("ClientTimeoutInterval"), "{error}");
    ended(&mut socket).await;
    let reported = tokio::time::timeout(WAIT, hub.disconnected.recv()).await;
    let reported = reported.expect("the hook in time").expect("one report");
    assert!(reported.is_some_and(|e| e.contains("ClientTimeoutInterval")));
}

#[tokio::test]
async fn no_handshake_within_the_timeout_ends_the_socket_without_hooks() {
    let mut hub = start(HubOptions {
        handshake_timeout: Duration::from_millis(200),
        ..HubOptions::default()
    })
    .await;
    let mut socket = connect(&hub).await;
    ended(&mut socket).await;
    // No connection was made, so no disconnect is reported.
    let hook = tokio::time::timeout(Duration::from_millis(300), hub.disconnected.recv()).await;
    assert!(hook.is_err(), "{hook:?}");
}

#[tokio::test]
async fn a_malformed_record_gets_a_close_that_says_why() {
    let hub = start(HubOptions::default()).await;
    let mut socket = connect(&hub).await;
    handshake(&mut socket).await;
    socket.send_text("{\"type\":1,\u{1e}").await.unwrap();
    let close = record_of(&mut socket, 7).await;
    let error = close["error"].as_str().unwrap();
    assert!(error.contains("InvalidDataException"), "{error}");
    ended(&mut socket).await;
    // Another connection is not disturbed.
    let mut other = connect(&hub).await;
    handshake(&mut other).await;
}

#[tokio::test]
async fn a_client_result_is_asked_and_answered_while_the_caller_waits() {
    let hub = start(HubOptions::default()).await;
    let mut asker = connect(&hub).await;
    handshake(&mut asker).await;
    let mut answerer = connect(&hub).await;
    handshake(&mut answerer).await;
    // The answerer's id, from a group message naming it.
    answerer
        .send_text(
            "{\"type\":1,\"invocationId\":\"g\",\"target\":\"AddToGroup\",\"arguments\":[\"g\"]}\u{1e}",
        )
        .await
        .unwrap();
    let joined = record_of(&mut answerer, 1).await;
    let text = joined["arguments"][0].as_str().unwrap().to_owned();
    let id = text.split(' ').next().unwrap().to_owned();
    let ask = format!(
        "{{\"type\":1,\"invocationId\":\"w\",\"target\":\"WaitForMessage\",\"arguments\":[\"{id}\"]}}\u{1e}"
    );
    asker.send_text(&ask).await.unwrap();
    let request = record_of(&mut answerer, 1).await;
    assert_eq!(request["target"], "GetMessage");
    let reply = format!(
        "{{\"type\":3,\"invocationId\":{},\"result\":\"answer\"}}\u{1e}",
        request["invocationId"]
    );
    answerer.send_text(&reply).await.unwrap();
    let completion = record_of(&mut asker, 3).await;
    assert_eq!(completion["invocationId"], "w");
    assert_eq!(completion["result"], "answer");
}
