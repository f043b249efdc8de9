//! permessage-deflate (RFC 7692) on the event-loop server, with sockway's client: declined
//! unless the options enable it, then compressed both ways on the lent-message path, published
//! messages compressed once for the subscribers that can share it and uncompressed for the
//! others, and a message that inflates past the limit refused with 1009 without inflating it
//! all.

mod event_loop_support;

use std::net::SocketAddr;

use sockway::client::{ClientBuilder, ClientStream};
use sockway::event_loop::{EventLoopOptions, EventLoopServer, RunningServer};
use sockway::{CloseCode, DeflateConfig, Message, WebSocket, WebSocketConfig};
use tokio::time::timeout;

use event_loop_support::{echo, stop, EchoAndPublish, STEP};

fn start(options: EventLoopOptions) -> RunningServer {
    let options = options
        .threads(2)
        .websocket(WebSocketConfig::for_server().max_message_size(64 << 10));
    EventLoopServer::new(EchoAndPublish, options)
        .bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .unwrap()
}

async fn connect(server: &RunningServer, compression: bool) -> WebSocket<ClientStream> {
    let url = format!("ws://{}/", server.local_addr());
    let (socket, _) = ClientBuilder::new(url)
        .compression(compression.then(DeflateConfig::default))
        .connect()
        .await
        .unwrap();
    socket
}

#[tokio::test]
async fn an_offer_is_declined_unless_the_options_enable_compression() {
    let server = start(EventLoopOptions::default());
    let mut socket = connect(&server, true).await;
    assert_eq!(socket.compression(), None);
    echo(&mut socket, Message::text("a".repeat(5_000))).await;
    assert!(socket.stats().bytes_received > 5_000);
    socket.close(CloseCode::NORMAL, "").await.unwrap();
    stop(server);
}

/// Compressed echoes and a publish to a compressing and a plain subscriber, the server
/// resetting its compressor after every message (`reset`) or keeping its context.
async fn echo_and_publish(reset: bool) {
    let config = DeflateConfig {
        server_no_context_takeover: reset,
        ..DeflateConfig::default()
    };
    let server = start(EventLoopOptions::default().compression(Some(config)));
    let mut compressing = connect(&server, true).await;
    let mut plain = connect(&server, false).await;
    assert!(compressing.compression().is_some());
    assert_eq!(plain.compression(), None);

    // Small and large, text and binary: the server inflates them (none can be lent in
    // place) and compresses its answers.
    let mut payload = 0;
    for size in [0, 1, 100, 5_000, 60_000] {
        for message in [
            Message::text("wxyz".repeat(size / 4)),
            Message::binary(vec![7u8; size]),
        ] {
            payload += message.len() as u64;
            echo(&mut compressing, message).await;
        }
    }
    let received = compressing.stats().bytes_received;
    assert!(received < payload / 10, "{received} bytes for {payload}");

    // A publish is framed once and reaches both: compressed once for every connection
    // whose compressor resets per message, uncompressed for the others (RFC 7692 sections
    // 6 and 7.1.1.1).
    let news = Message::text(format!("publish {}", "news ".repeat(1_000)));
    compressing.send(news.clone()).await.unwrap();
    for socket in [&mut compressing, &mut plain] {
        let before = socket.stats().bytes_received;
        let got = timeout(STEP, socket.recv()).await.unwrap().unwrap();
        assert_eq!(got, Some(news.clone()));
        let wire = socket.stats().bytes_received - before;
        let compressed = reset && socket.compression().is_some();
        assert_eq!(wire < news.len() as u64 / 10, compressed, "{wire} bytes");
    }
    // And the compressing connection goes on compressing after it.
    echo(&mut compressing, Message::text("after ".repeat(2_000))).await;
    echo(&mut plain, Message::binary(vec![1u8; 3_000])).await;
    for socket in [&mut compressing, &mut plain] {
        socket.close(CloseCode::NORMAL, "").await.unwrap();
    }
    stop(server);
}

#[tokio::test]
async fn with_context_takeover_a_publish_goes_uncompressed_to_every_subscriber() {
    echo_and_publish(false).await;
}

#[tokio::test]
async fn without_context_takeover_a_publish_is_compressed_once_for_compressing_subscribers() {
    echo_and_publish(true).await;
}

#[tokio::test]
async fn a_message_that_inflates_past_the_limit_is_refused_with_1009() {
    let server = start(EventLoopOptions::default().compression(Some(DeflateConfig::default())));
    let mut socket = connect(&server, true).await;
    // 1 MiB of zeros compresses to about 1 KiB; the server's limit is 64 KiB.
    socket
        .send(Message::binary(vec![0u8; 1 << 20]))
        .await
        .unwrap();
    if let Ok(Some(message)) = timeout(STEP, socket.recv()).await.unwrap() {
        panic!("echoed {} bytes past the limit", message.len());
    }
    let closed = socket.close_info().expect("the server closed");
    assert_eq!(closed.code, CloseCode::MESSAGE_TOO_BIG);
    assert!(!closed.initiated_locally);
    stop(server);
}
