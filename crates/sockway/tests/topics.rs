//! Publish/subscribe for task-driven sockets (`sockway::topics`) over real loopback
//! sockets: server tasks that subscribe their socket to one topic and publish what it sends,
//! as the async server's broadcast would; every client gets every message, small and large.

use std::time::Duration;

use bytes::BytesMut;
use sockway::topics::Topics;
use sockway::{Message, Role, WebSocket, WebSocketConfig};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::timeout;

/// A bound on every step, so a bug fails the test instead of hanging it.
const STEP: Duration = Duration::from_secs(20);

fn config() -> WebSocketConfig {
    WebSocketConfig::default().max_message_size(1 << 20)
}

/// One server socket's task: subscribed to "all", publishing what it receives there, and
/// writing what was published in batches (every waiting frame fed, then one flush).
async fn serve(stream: TcpStream, topics: Topics) {
    let mut socket = WebSocket::from_raw(stream, Role::Server, config(), BytesMut::new());
    let mut subscriber = topics.subscriber();
    subscriber.subscribe("all").unwrap();
    loop {
        tokio::select! {
            received = socket.recv() => match received {
                Ok(Some(message)) => {
                    topics.publish("all", &message);
                }
                _ => return,
            },
            frame = subscriber.recv() => {
                if socket.feed_prepared(&frame).await.is_err() {
                    return;
                }
                while let Some(frame) = subscriber.try_recv() {
                    if socket.feed_prepared(&frame).await.is_err() {
                        return;
                    }
                }
                if socket.flush().await.is_err() {
                    return;
                }
            }
        }
    }
}

#[tokio::test]
async fn every_client_gets_every_published_message() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let topics = Topics::default();
    let clients_count = 5usize;
    let accepting = {
        let topics = topics.clone();
        tokio::spawn(async move {
            for _ in 0..clients_count {
                let (stream, _) = listener.accept().await.unwrap();
                tokio::spawn(serve(stream, topics.clone()));
            }
        })
    };
    let mut clients = Vec::new();
    for _ in 0..clients_count {
        let stream = TcpStream::connect(addr).await.unwrap();
        clients.push(WebSocket::from_raw(
            stream,
            Role::Client,
            config(),
            BytesMut::new(),
        ));
    }
    timeout(STEP, accepting).await.unwrap().unwrap();
    // Every server task subscribes as it starts: wait until all five have.
    for _ in 0..2000 {
        if topics.subscribers("all") == clients_count {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(topics.subscribers("all"), clients_count);
    for size in [20usize, 16 * 1024] {
        for (i, client) in clients.iter_mut().enumerate() {
            client
                .send(Message::binary(vec![i as u8; size]))
                .await
                .unwrap();
        }
        for client in clients.iter_mut() {
            let mut seen = Vec::new();
            for _ in 0..clients_count {
                let message = timeout(STEP, client.recv())
                    .await
                    .unwrap()
                    .unwrap()
                    .unwrap();
                assert_eq!(message.len(), size);
                let first = message.as_bytes()[0];
                assert!(message.as_bytes().iter().all(|&b| b == first));
                seen.push(first);
            }
            seen.sort_unstable();
            assert_eq!(seen, (0..clients_count as u8).collect::<Vec<_>>());
        }
    }
    // Closing the clients ends the server tasks, whose subscribers then unsubscribe.
    drop(clients);
    for _ in 0..2000 {
        if topics.subscribers("all") == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(topics.subscribers("all"), 0);
}
