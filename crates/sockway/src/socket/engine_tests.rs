//! The engine's large reads, which go into this thread's spare read buffer: a message read
//! there must stay intact whether its handler keeps it or drops it.

use tokio::io::{duplex, AsyncReadExt, AsyncWriteExt};

use crate::{Message, Role, WebSocket, WebSocketConfig};

/// A message larger than the 4 KiB first read, so that every message after the first is read
/// by a large read.
fn payload(byte: u8) -> Vec<u8> {
    vec![byte; 20 * 1024]
}

#[tokio::test]
async fn kept_messages_survive_the_large_reads_after_them() {
    let (a, b) = duplex(256 * 1024);
    let config = WebSocketConfig::default();
    let mut client = WebSocket::from_raw(a, Role::Client, config.clone(), Default::default());
    let mut server = WebSocket::from_raw(b, Role::Server, config, Default::default());
    let mut kept = Vec::new();
    for round in 0..8u8 {
        client.send(Message::binary(payload(round))).await.unwrap();
        let message = server.recv().await.unwrap().unwrap();
        assert_eq!(message, Message::binary(payload(round)), "message {round}");
        // Every other message is kept, so the next read finds the spare buffer still in use;
        // the others are dropped, so the next read takes the spare buffer back.
        if round % 2 == 0 {
            kept.push((round, message));
        }
    }
    for (round, message) in kept {
        assert_eq!(
            message,
            Message::binary(payload(round)),
            "kept message {round}"
        );
    }
}

#[tokio::test]
async fn two_sockets_on_one_thread_keep_their_messages_apart() {
    let config = WebSocketConfig::default();
    let mut pairs = Vec::new();
    for _ in 0..2 {
        let (a, b) = duplex(256 * 1024);
        let client = WebSocket::from_raw(a, Role::Client, config.clone(), Default::default());
        let server = WebSocket::from_raw(b, Role::Server, config.clone(), Default::default());
        pairs.push((client, server));
    }
    let mut kept = Vec::new();
    for round in 0..6u8 {
        for (index, (client, server)) in pairs.iter_mut().enumerate() {
            let byte = round * 2 + index as u8;
            client.send(Message::binary(payload(byte))).await.unwrap();
            let message = server.recv().await.unwrap().unwrap();
            assert_eq!(message, Message::binary(payload(byte)), "message {byte}");
            if index == 0 {
                kept.push((byte, message));
            }
        }
    }
    for (byte, message) in kept {
        assert_eq!(
            message,
            Message::binary(payload(byte)),
            "kept message {byte}"
        );
    }
}

/// The bytes of one masked binary frame carrying `data`, as a client sends them.
async fn client_frame(data: Vec<u8>) -> Vec<u8> {
    let header = 2 + if data.len() > 0xFFFF { 8 } else { 2 } + 4;
    let mut frame = vec![0; header + data.len()];
    let (a, mut b) = duplex(256 * 1024);
    let mut client = WebSocket::from_raw(
        a,
        Role::Client,
        WebSocketConfig::default(),
        Default::default(),
    );
    client.send(Message::binary(data)).await.unwrap();
    b.read_exact(&mut frame).await.unwrap();
    frame
}

#[tokio::test]
async fn messages_arriving_in_pieces_and_larger_than_one_read_come_whole() {
    let (mut peer, ours) = duplex(256 * 1024);
    let mut server = WebSocket::from_raw(
        ours,
        Role::Server,
        WebSocketConfig::default(),
        Default::default(),
    );
    let mut kept = Vec::new();
    for round in 0..6u8 {
        // 20 KiB fits one large read, 40 KiB does not; every other frame comes in two writes
        // with the server waiting in between.
        let size = if round % 3 == 2 { 40 * 1024 } else { 20 * 1024 };
        let data = vec![round; size];
        let frame = client_frame(data.clone()).await;
        let cut = if round % 2 == 1 {
            frame.len() / 2
        } else {
            frame.len()
        };
        let write = async {
            peer.write_all(&frame[..cut]).await.unwrap();
            for _ in 0..4 {
                tokio::task::yield_now().await;
            }
            peer.write_all(&frame[cut..]).await.unwrap();
        };
        let (message, ()) = tokio::join!(server.recv(), write);
        let message = message.unwrap().unwrap();
        assert_eq!(message, Message::binary(data), "message {round}");
        kept.push((round, size, message));
    }
    for (round, size, message) in kept {
        assert_eq!(
            message,
            Message::binary(vec![round; size]),
            "kept message {round}"
        );
    }
}
