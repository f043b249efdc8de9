//! Publish/subscribe in the event-loop server over real loopback sockets: every message
//! published reaches every subscriber of its topic on every worker, and no one else; a
//! connection unsubscribes; another thread publishes through a `Sender`; a subscriber that
//! does not read misses messages instead of holding up the others.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use sockway::event_loop::{Conn, EventLoopOptions, EventLoopServer, Handler, OpenRequest};
use sockway::event_loop::{RunningServer, SubscribeRefused};
use sockway::{Message, Role, WebSocket, WebSocketConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;

/// A bound on every step, so a bug fails the test instead of hanging it.
const STEP: Duration = Duration::from_secs(20);

/// Subscribes each connection to the topic named by its path (in `open`, so before the
/// client has its 101 response) and publishes what it sends there; "unsubscribe"
/// unsubscribes it, answered "unsubscribed true" or "unsubscribed false" when it was not.
#[derive(Clone)]
struct Rooms;

impl Handler for Rooms {
    type Session = String;

    fn open(&mut self, conn: &mut Conn<'_>, request: &OpenRequest<'_>) -> String {
        let topic = request.path.trim_start_matches('/').to_owned();
        assert_eq!(conn.subscribe(&topic), Ok(true));
        assert_eq!(conn.subscribe(&topic), Ok(false));
        // The limit is 2 in these tests: one more topic fits, a third does not.
        assert_eq!(conn.subscribe("extra"), Ok(true));
        assert_eq!(
            conn.subscribe("one too many"),
            Err(SubscribeRefused::TooMany(2))
        );
        topic
    }

    fn message(&mut self, conn: &mut Conn<'_>, topic: &mut String, message: Message) {
        if message.as_bytes() == b"unsubscribe" {
            let was = conn.unsubscribe(topic);
            conn.send_text(&format!("unsubscribed {was}")).unwrap();
            return;
        }
        conn.publish(topic, &message).unwrap();
    }
}

fn start(config: WebSocketConfig, threads: usize) -> RunningServer {
    let options = EventLoopOptions::default()
        .threads(threads)
        .max_subscriptions(2)
        .websocket(config);
    EventLoopServer::new(Rooms, options)
        .bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .unwrap()
}

/// A client WebSocket on a fresh connection to `path`.
async fn client(addr: SocketAddr, path: &str) -> WebSocket<TcpStream> {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        head.push(timeout(STEP, stream.read_u8()).await.unwrap().unwrap());
    }
    assert!(head.starts_with(b"HTTP/1.1 101 "));
    let config = WebSocketConfig::default().max_message_size(64 << 20);
    WebSocket::from_raw(stream, Role::Client, config, BytesMut::new())
}

async fn recv(socket: &mut WebSocket<TcpStream>) -> Message {
    timeout(STEP, socket.recv())
        .await
        .expect("a message in time")
        .unwrap()
        .expect("the connection is open")
}

#[tokio::test]
async fn every_subscriber_on_every_worker_gets_every_message_small_and_large() {
    let server = start(WebSocketConfig::default().max_message_size(64 << 20), 2);
    let addr = server.local_addr();
    for size in [20usize, 16 * 1024] {
        let topic = format!("/room{size}");
        let mut clients = Vec::new();
        for _ in 0..6 {
            clients.push(client(addr, &topic).await);
        }
        let mut bystander = client(addr, "/elsewhere").await;
        for (i, socket) in clients.iter_mut().enumerate() {
            socket
                .send(Message::binary(vec![i as u8; size]))
                .await
                .unwrap();
        }
        for socket in clients.iter_mut() {
            let mut seen: Vec<u8> = Vec::new();
            for _ in 0..6 {
                let message = recv(socket).await;
                assert_eq!(message.len(), size);
                let first = message.as_bytes()[0];
                assert!(message.as_bytes().iter().all(|&b| b == first));
                seen.push(first);
            }
            seen.sort_unstable();
            assert_eq!(seen, vec![0, 1, 2, 3, 4, 5]);
        }
        // The bystander's topic got nothing: its next message is its own publish.
        bystander.send(Message::text("mine")).await.unwrap();
        assert_eq!(recv(&mut bystander).await, Message::text("mine"));
    }
    server.stop();
    server.join().unwrap();
}

#[tokio::test]
async fn unsubscribed_and_closed_connections_get_nothing_and_other_threads_publish() {
    // One worker: its commands and events run in order, which the end of the test uses.
    let server = start(WebSocketConfig::default(), 1);
    let addr = server.local_addr();
    let mut stays = client(addr, "/news").await;
    let mut leaves = client(addr, "/news").await;
    let closes = client(addr, "/news").await;
    leaves.send(Message::text("unsubscribe")).await.unwrap();
    assert_eq!(recv(&mut leaves).await, Message::text("unsubscribed true"));
    drop(closes);
    // From this thread, which is no worker.
    let sender = server.sender();
    sender
        .publish("news", &Message::text("from outside"))
        .unwrap();
    assert_eq!(recv(&mut stays).await, Message::text("from outside"));
    // The publish has been written to every subscriber by now; `leaves` got none of it:
    // the next thing it receives is the answer to this.
    leaves.send(Message::text("unsubscribe")).await.unwrap();
    assert_eq!(recv(&mut leaves).await, Message::text("unsubscribed false"));
    server.stop();
    server.join().unwrap();
}

#[tokio::test]
async fn a_subscriber_that_does_not_read_misses_messages_and_holds_up_no_one() {
    let config = WebSocketConfig::default().write_buffer_limit(64 * 1024);
    let server = start(config, 2);
    let addr = server.local_addr();
    let mut fast = client(addr, "/feed").await;
    let mut slow = client(addr, "/feed").await;
    let sender = server.sender();
    // 600 messages of 32 KiB (19 MiB, more than loopback buffers hold), in lockstep with
    // the fast subscriber, which must get every one.
    let total = 600u32;
    for i in 0..total {
        let mut payload = vec![0u8; 32 * 1024];
        payload[..4].copy_from_slice(&i.to_be_bytes());
        sender.publish("feed", &Message::binary(payload)).unwrap();
        let message = recv(&mut fast).await;
        assert_eq!(&message.as_bytes()[..4], &i.to_be_bytes());
    }
    // Now the slow one reads: whole messages in order, fewer than all, then an end marker
    // (published until it arrives: while its output was over the limit, markers were
    // dropped too).
    let stop = Arc::new(AtomicBool::new(false));
    let marker = {
        let (stop, sender) = (Arc::clone(&stop), sender.clone());
        std::thread::spawn(move || {
            for _ in 0..300 {
                if stop.load(Ordering::Acquire) {
                    return;
                }
                let _ = sender.publish("feed", &Message::text("end"));
                std::thread::sleep(Duration::from_millis(100));
            }
        })
    };
    let mut received = 0u32;
    let mut last = None;
    loop {
        let message = recv(&mut slow).await;
        match message.as_bytes() {
            b"end" => break,
            bytes => {
                assert_eq!(bytes.len(), 32 * 1024);
                let index = u32::from_be_bytes(bytes[..4].try_into().unwrap());
                assert!(last.is_none_or(|last| index > last), "out of order");
                last = Some(index);
                received += 1;
            }
        }
    }
    stop.store(true, Ordering::Release);
    marker.join().unwrap();
    assert!(
        received < total,
        "the slow subscriber missed nothing ({received})"
    );
    server.stop();
    server.join().unwrap();
}
