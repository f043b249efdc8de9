//! The server's whole-message paths of an echo: a small message read where it arrived
//! (several in one read, one followed by part of the next, invalid UTF-8) and a whole
//! message written straight to the transport, also when the transport takes only part of it.

use std::time::Duration;

use bytes::BytesMut;
use sockway::proto::connection::Delivery;
use sockway::proto::{Config, Connection, Event};
use sockway::{CloseCode, Error, Message, Role, WebSocket, WebSocketConfig};
use tokio::io::{duplex, AsyncReadExt, AsyncWriteExt, DuplexStream};
use tokio::time::timeout;

const LIMIT: Duration = Duration::from_secs(20);

/// A server socket and the raw other end of its pipe.
fn server(pipe_capacity: usize) -> (WebSocket<DuplexStream>, DuplexStream) {
    let (raw, io) = duplex(pipe_capacity);
    let config = WebSocketConfig::default();
    let socket = WebSocket::from_raw(io, Role::Server, config, BytesMut::new());
    (socket, raw)
}

/// The masked frames a client sends for `messages`, back to back.
fn client_frames(messages: &[Message]) -> Vec<u8> {
    let mut client = Connection::new(Role::Client, Config::default());
    for message in messages {
        client.send(message).unwrap();
    }
    client.take_output().to_vec()
}

/// Reads from `raw` until `count` messages from the server have arrived.
async fn read_messages(raw: &mut DuplexStream, count: usize) -> Vec<Message> {
    let mut client = Connection::new(Role::Client, Config::default());
    let mut input = BytesMut::new();
    let mut messages = Vec::new();
    while messages.len() < count {
        while let Some(event) = client.read_event(&mut input, Delivery::Messages).unwrap() {
            if let Event::Message(message) = event {
                messages.push(message);
            }
        }
        if messages.len() < count {
            let mut chunk = [0u8; 4096];
            let n = raw.read(&mut chunk).await.unwrap();
            assert_ne!(n, 0, "the server closed after {} messages", messages.len());
            input.extend_from_slice(&chunk[..n]);
        }
    }
    messages
}

fn assorted() -> Vec<Message> {
    let mut messages = Vec::new();
    for (i, len) in [0usize, 1, 20, 125, 126, 1000, 2048, 2049, 5000, 70_000]
        .into_iter()
        .enumerate()
    {
        let bytes: Vec<u8> = (0..len).map(|b| (b + i) as u8).collect();
        messages.push(Message::binary(bytes));
        messages.push(Message::text("é".repeat(len / 2)));
    }
    messages
}

#[tokio::test]
async fn messages_arriving_together_or_split_come_whole_and_in_order() {
    let (mut socket, mut raw) = server(1 << 20);
    let messages = assorted();
    let wire = client_frames(&messages);
    // Several frames per write, and writes that end inside a frame.
    let writer = tokio::spawn(async move {
        for chunk in wire.chunks(37) {
            raw.write_all(chunk).await.unwrap();
            tokio::task::yield_now().await;
        }
        raw
    });
    for expected in &messages {
        let got = timeout(LIMIT, socket.recv()).await.unwrap().unwrap();
        assert_eq!(got.as_ref(), Some(expected));
    }
    let _raw = writer.await.unwrap();
    assert_eq!(socket.stats().messages_received, messages.len() as u64);
}

#[tokio::test]
async fn a_small_message_with_part_of_the_next_keeps_that_part() {
    let (mut socket, mut raw) = server(1 << 16);
    let wire = client_frames(&[Message::text("first"), Message::text("second")]);
    // "first" whole and the first bytes of "second" in one write.
    let cut = wire.len() - 3;
    raw.write_all(&wire[..cut]).await.unwrap();
    let first = timeout(LIMIT, socket.recv()).await.unwrap().unwrap();
    assert_eq!(first, Some(Message::text("first")));
    raw.write_all(&wire[cut..]).await.unwrap();
    let second = timeout(LIMIT, socket.recv()).await.unwrap().unwrap();
    assert_eq!(second, Some(Message::text("second")));
}

#[tokio::test]
async fn invalid_utf8_in_a_small_message_fails_with_1007() {
    let (mut socket, mut raw) = server(1 << 16);
    let mut wire = client_frames(&[Message::binary(vec![0xC3, 0x28])]);
    // The same frame as text: the opcode is in the low bits of the first byte.
    wire[0] = (wire[0] & 0xF0) | 0x1;
    raw.write_all(&wire).await.unwrap();
    let result = timeout(LIMIT, socket.recv()).await.unwrap();
    assert!(
        matches!(result, Err(Error::Protocol(_))),
        "expected a protocol error, got {result:?}"
    );
    // The close frame with 1007 (RFC 6455 section 7.4.1) reaches the peer.
    let mut got = Vec::new();
    timeout(LIMIT, raw.read_to_end(&mut got))
        .await
        .unwrap()
        .unwrap();
    let mut client = Connection::new(Role::Client, Config::default());
    let mut input = BytesMut::from(&got[..]);
    while let Ok(Some(_)) = client.read_event(&mut input, Delivery::Messages) {}
    assert_eq!(client.close_status(), Some(CloseCode(1007)));
}

#[tokio::test]
async fn messages_written_directly_arrive_whole_through_a_narrow_pipe() {
    // A pipe of 7 bytes: every direct write is cut short, and the rest queued behind it.
    let (mut socket, mut raw) = server(7);
    let messages = assorted();
    let expected = messages.clone();
    let reader = tokio::spawn(async move { read_messages(&mut raw, expected.len()).await });
    for message in messages.clone() {
        timeout(LIMIT, socket.send(message)).await.unwrap().unwrap();
    }
    let got = timeout(LIMIT, reader).await.unwrap().unwrap();
    assert_eq!(got, messages);
    assert_eq!(socket.stats().messages_sent, messages.len() as u64);
}

#[tokio::test]
async fn a_send_after_a_queued_fragment_keeps_the_order() {
    let (mut socket, mut raw) = server(1 << 20);
    // Queue without flushing, then send: the direct write must not overtake the queue.
    socket.feed(Message::text("queued")).await.unwrap();
    socket.send(Message::text("sent")).await.unwrap();
    let got = timeout(LIMIT, read_messages(&mut raw, 2)).await.unwrap();
    assert_eq!(got, vec![Message::text("queued"), Message::text("sent")]);
}
