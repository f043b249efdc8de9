//! An in-process client for hub tests: a `LinkedConnection` driven through its channels, the
//! way a transport drives it, speaking raw JSON records so the tests see the exact wire form.

#![allow(dead_code)]

use std::collections::VecDeque;
use std::time::Duration;

use bytes::Bytes;
use serde_json::{json, Value};
use sockway_hub::channel::{bounded, Sender};
use sockway_hub::link::{
    outbound, ConnectionHandler, ConnectionInfo, Inbound, LinkedConnection, OutboundReceiver,
    RequestHead, TransportKind,
};
use sockway_hub::Hub;
use tokio::task::JoinHandle;

/// The bound of every wait: generous, CI is a loaded 2-core machine.
pub const WAIT: Duration = Duration::from_secs(20);

/// What the transport would know of a connection.
pub fn info(connection_id: &str, stateful_reconnect: bool) -> ConnectionInfo {
    ConnectionInfo {
        connection_id: connection_id.to_owned(),
        user: None,
        transport: TransportKind::WebSockets,
        stateful_reconnect,
        request: RequestHead::new(
            &http::Uri::from_static("/hub"),
            &http::HeaderMap::new(),
            &[],
        ),
        peer_addr: None,
    }
}

/// One client connection to a hub under test.
pub struct TestClient {
    pub id: String,
    pub inbound: Sender<Inbound>,
    pub outbound: OutboundReceiver,
    records: VecDeque<Vec<u8>>,
    pub task: JoinHandle<()>,
}

/// Links a connection with `info` to `hub` (queue of `capacity` frames); no handshake yet.
pub fn open(hub: &Hub, info: ConnectionInfo, capacity: usize) -> TestClient {
    let (inbound, receiver) = bounded(64);
    let (sender, outbound) = outbound(capacity);
    let id = info.connection_id.clone();
    let task = tokio::spawn(hub.run(LinkedConnection {
        info,
        inbound: receiver,
        outbound: sender,
    }));
    TestClient {
        id,
        inbound,
        outbound,
        records: VecDeque::new(),
        task,
    }
}

/// A JSON client that completed the handshake.
pub async fn connect(hub: &Hub, connection_id: &str) -> TestClient {
    connect_with(hub, info(connection_id, false), 1024, 1).await
}

/// A JSON client with the given link, queue size and handshake version.
pub async fn connect_with(
    hub: &Hub,
    info: ConnectionInfo,
    capacity: usize,
    version: u32,
) -> TestClient {
    let mut client = open(hub, info, capacity);
    client
        .send_raw(format!(
            "{{\"protocol\":\"json\",\"version\":{version}}}\u{1e}"
        ))
        .await;
    let response = client.next_record().await;
    assert_eq!(
        String::from_utf8_lossy(&response),
        "{}",
        "handshake response"
    );
    client
}

impl TestClient {
    /// Sends bytes as one transport message.
    pub async fn send_raw(&self, data: impl Into<Bytes>) {
        self.inbound
            .send(Inbound::Data(data.into()))
            .await
            .expect("the hub is reading");
    }

    /// Sends one JSON message.
    pub async fn send(&self, message: Value) {
        self.send_raw(format!("{message}\u{1e}")).await;
    }

    /// Invokes `target` with `arguments` under `id`.
    pub async fn invoke(&self, id: &str, target: &str, arguments: Value) {
        self.send(json!({"type": 1, "invocationId": id, "target": target, "arguments": arguments}))
            .await;
    }

    /// The next raw record (without its separator), waiting up to [`WAIT`].
    pub async fn next_record(&mut self) -> Vec<u8> {
        self.try_next_record()
            .await
            .unwrap_or_else(|| panic!("{}: the connection ended", self.id))
    }

    /// The next raw record, or `None` when the hub ended the connection.
    pub async fn try_next_record(&mut self) -> Option<Vec<u8>> {
        loop {
            if let Some(record) = self.records.pop_front() {
                return Some(record);
            }
            let frame = tokio::time::timeout(WAIT, self.outbound.recv())
                .await
                .unwrap_or_else(|_| panic!("{}: no frame within {WAIT:?}", self.id))?;
            for record in frame.split(|&byte| byte == 0x1e) {
                if !record.is_empty() {
                    self.records.push_back(record.to_vec());
                }
            }
        }
    }

    /// The next message, pings included.
    pub async fn next_any(&mut self) -> Value {
        let record = self.next_record().await;
        serde_json::from_slice(&record).expect("the hub sends JSON")
    }

    /// The next message that is not a `Ping` or an `Ack`.
    pub async fn next(&mut self) -> Value {
        loop {
            let message = self.next_any().await;
            if message["type"] != 6 && message["type"] != 8 {
                return message;
            }
        }
    }

    /// The next message of `kind` (type number), skipping others.
    pub async fn next_of(&mut self, kind: u64) -> Value {
        loop {
            let message = self.next_any().await;
            if message["type"] == kind {
                return message;
            }
        }
    }

    /// The `Close` the hub ends with, then the end of the connection.
    pub async fn closed(&mut self) -> Value {
        let close = self.next_of(7).await;
        self.ended().await;
        close
    }

    /// Waits until the hub ended the connection (skipping whatever it still sent).
    pub async fn ended(&mut self) {
        while self.try_next_record().await.is_some() {}
    }
}

/// The `Completion` for `id`, skipping other messages.
pub async fn completion(client: &mut TestClient, id: &str) -> Value {
    loop {
        let message = client.next().await;
        if message["type"] == 3 && message["invocationId"] == id {
            return message;
        }
    }
}
