//! The hub over the MessagePack protocol: binary frames, typed binding from MessagePack
//! values, and one broadcast encoded once per protocol for a mixed audience.

mod hub_support;

use bytes::BytesMut;
use hub_support::{connect, info, open, TestClient, WAIT};
use serde_json::json;
use sockway_hub::protocol::{
    Completion, HubMessage, Incoming, Invocation, Outcome, Outgoing, Payload, Protocol,
    TransferFormat,
};
use sockway_hub::sample::chat_hub;

/// A MessagePack client over a [`TestClient`]'s link.
struct PackClient {
    link: TestClient,
    buffer: BytesMut,
}

impl PackClient {
    async fn connect(hub: &sockway_hub::Hub, id: &str) -> Self {
        let mut link = open(hub, info(id, false), 1024);
        link.send_raw("{\"protocol\":\"messagepack\",\"version\":1}\u{1e}")
            .await;
        let frame = tokio::time::timeout(WAIT, link.outbound.recv())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(&frame[..], b"{}\x1e");
        assert_eq!(link.outbound.transfer_format(), TransferFormat::Binary);
        PackClient {
            link,
            buffer: BytesMut::new(),
        }
    }

    async fn send(&self, message: Outgoing) {
        let mut out = Vec::new();
        Protocol::MessagePack.write(&message, &mut out).unwrap();
        self.link.send_raw(out).await;
    }

    async fn invoke(&self, id: Option<&str>, target: &str, arguments: Vec<Payload>) {
        self.send(HubMessage::Invocation(Invocation {
            invocation_id: id.map(str::to_owned),
            target: target.to_owned(),
            arguments,
            stream_ids: Vec::new(),
        }))
        .await;
    }

    /// The next message that is not a `Ping`.
    async fn next(&mut self) -> Incoming {
        loop {
            if let Some(message) = Protocol::MessagePack
                .parse(&mut self.buffer, 1 << 20)
                .expect("the hub sends valid MessagePack")
            {
                if message != HubMessage::Ping {
                    return message;
                }
                continue;
            }
            let frame = tokio::time::timeout(WAIT, self.link.outbound.recv())
                .await
                .expect("a frame in time")
                .expect("the connection is open");
            self.buffer.extend_from_slice(&frame);
        }
    }

    async fn completion(&mut self, id: &str) -> Outcome<sockway_hub::protocol::Value> {
        loop {
            if let HubMessage::Completion(Completion {
                invocation_id,
                outcome,
            }) = self.next().await
            {
                if invocation_id == id {
                    return outcome;
                }
            }
        }
    }
}

#[tokio::test]
async fn echo_and_binding_over_messagepack() {
    let hub = chat_hub();
    let mut client = PackClient::connect(&hub, "a").await;
    client
        .invoke(Some("1"), "Echo", vec![Payload::new("packed")])
        .await;
    match client.completion("1").await {
        Outcome::Result(value) => assert_eq!(value.bind::<String>().unwrap(), "packed"),
        other => panic!("{other:?}"),
    }
    client
        .invoke(Some("2"), "Echo", vec![Payload::new(5)])
        .await;
    match client.completion("2").await {
        Outcome::Error(error) => assert!(error.contains("Argument 1"), "{error}"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn counter_streams_over_messagepack() {
    let hub = chat_hub();
    let mut client = PackClient::connect(&hub, "a").await;
    client
        .send(HubMessage::StreamInvocation(Invocation {
            invocation_id: Some("s".into()),
            target: "Counter".into(),
            arguments: vec![Payload::new(3), Payload::new(1)],
            stream_ids: Vec::new(),
        }))
        .await;
    for expected in 0..3u32 {
        match client.next().await {
            HubMessage::StreamItem(item) => {
                assert_eq!(item.item.bind::<u32>().unwrap(), expected)
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(client.completion("s").await, Outcome::Void);
}

#[tokio::test]
async fn a_broadcast_reaches_json_and_messagepack_clients() {
    let hub = chat_hub();
    let mut packed = PackClient::connect(&hub, "p").await;
    let mut text = connect(&hub, "t").await;
    text.invoke("1", "SendMessage", json!(["ann", "to both"]))
        .await;
    let message = text.next().await;
    assert_eq!(message["arguments"], json!(["ann", "to both"]));
    match packed.next().await {
        HubMessage::Invocation(invocation) => {
            assert_eq!(invocation.target, "ReceiveMessage");
            assert_eq!(invocation.invocation_id, None);
            let arguments: Vec<String> = invocation
                .arguments
                .into_iter()
                .map(|value| value.bind().unwrap())
                .collect();
            assert_eq!(arguments, ["ann", "to both"]);
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_malformed_messagepack_record_closes_with_a_reason() {
    let hub = chat_hub();
    let mut client = PackClient::connect(&hub, "a").await;
    client.link.send_raw(vec![0x03, 0x93, 0xc1, 0xc1]).await;
    loop {
        if let HubMessage::Close(close) = client.next().await {
            let error = close.error.expect("a reason");
            assert!(
                error.starts_with("Connection closed with an error."),
                "{error}"
            );
            break;
        }
    }
}
