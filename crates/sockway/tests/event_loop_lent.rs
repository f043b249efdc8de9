//! The event-loop server's lent messages (`Handler::lent_message`, `Conn::send_lent`,
//! `LentMessage::into_owned`) and its handshake read through the worker's buffers: a head
//! that arrives in pieces, and frames that arrive in the same packet as the head.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::BytesMut;
use sockway::event_loop::{
    Conn, EventLoopOptions, EventLoopServer, Handler, LentMessage, OpenRequest, RunningServer,
};
use sockway::{CloseCode, Message, MessageKind, Role, WebSocket, WebSocketConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;

/// A bound on every step, so a bug fails the test instead of hanging it.
const STEP: Duration = Duration::from_secs(10);

const REQUEST: &str = "GET /lent HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n\
    Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
    Sec-WebSocket-Version: 13\r\n\r\n";

/// Echoes lent messages without taking them, and keeps every one that starts with "keep".
#[derive(Clone, Default)]
struct Lender {
    kept: Arc<Mutex<Vec<Message>>>,
}

impl Handler for Lender {
    type Session = ();

    fn open(&mut self, _conn: &mut Conn<'_>, _request: &OpenRequest<'_>) {}

    fn message(&mut self, _conn: &mut Conn<'_>, _session: &mut (), _message: Message) {
        panic!("lent_message is overridden, so message is never called");
    }

    fn lent_message(&mut self, conn: &mut Conn<'_>, _session: &mut (), message: LentMessage<'_>) {
        if message.as_bytes().starts_with(b"keep") {
            assert_eq!(message.kind(), MessageKind::Binary);
            self.kept.lock().unwrap().push(message.into_owned());
            return;
        }
        if let Some(text) = message.as_text() {
            assert_eq!(text.len(), message.len());
        }
        conn.send_lent(&message).unwrap();
    }
}

fn start(handler: Lender) -> RunningServer {
    let options = EventLoopOptions::default()
        .threads(2)
        .websocket(WebSocketConfig::for_server().max_message_size(8 << 20));
    EventLoopServer::new(handler, options)
        .bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .unwrap()
}

fn stop(server: RunningServer) {
    server.stop();
    server.join().unwrap();
}

/// Reads until what was read ends with `end` (a response head's blank line, an expected
/// echo); returns it all.
async fn read_through(stream: &mut TcpStream, end: &[u8]) -> Vec<u8> {
    let mut got = Vec::new();
    let mut chunk = [0u8; 256];
    while !got.ends_with(end) {
        let n = timeout(STEP, stream.read(&mut chunk))
            .await
            .unwrap()
            .unwrap();
        assert!(n > 0, "closed after {got:?}");
        got.extend_from_slice(&chunk[..n]);
    }
    got
}

/// Reads the response head; asserts it is a 101.
async fn expect_101(stream: &mut TcpStream) {
    let head = String::from_utf8(read_through(stream, b"\r\n\r\n").await).unwrap();
    assert!(head.starts_with("HTTP/1.1 101 "), "{head}");
}

/// A masked client frame (RFC 6455 section 5.2) with a mask key of `key`.
fn frame(first: u8, payload: &[u8], key: [u8; 4]) -> Vec<u8> {
    assert!(payload.len() < 126);
    let mut out = vec![first, 0x80 | payload.len() as u8];
    out.extend_from_slice(&key);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
    out
}

#[tokio::test]
async fn lent_messages_echo_at_every_size_and_kept_ones_stay_intact() {
    let handler = Lender::default();
    let server = start(handler.clone());
    let addr = server.local_addr();
    let mut tasks = Vec::new();
    for c in 0..4u8 {
        tasks.push(tokio::spawn(async move {
            let mut stream = TcpStream::connect(addr).await.unwrap();
            stream.write_all(REQUEST.as_bytes()).await.unwrap();
            expect_101(&mut stream).await;
            let config = WebSocketConfig::default().max_message_size(8 << 20);
            let mut ws = WebSocket::from_raw(stream, Role::Client, config, BytesMut::new());
            for size in [0, 1, 20, 125, 4095, 4096, 16_384, 70_000, 1 << 20] {
                let message = Message::binary(vec![c.wrapping_add(size as u8); size]);
                ws.send(message.clone()).await.unwrap();
                assert_eq!(ws.recv().await.unwrap(), Some(message));
                let text = Message::text("é".repeat(size / 2));
                ws.send(text.clone()).await.unwrap();
                assert_eq!(ws.recv().await.unwrap(), Some(text));
                let mut keep = format!("keep {c} {size} ").into_bytes();
                keep.resize(size.max(keep.len()), b'k');
                ws.send(Message::binary(keep)).await.unwrap();
            }
            ws.close(CloseCode::NORMAL, "").await.unwrap();
        }));
    }
    for task in tasks {
        timeout(STEP * 3, task).await.unwrap().unwrap();
    }
    stop(server);
    let kept = handler.kept.lock().unwrap();
    assert_eq!(kept.len(), 4 * 9);
    for message in kept.iter() {
        let bytes = message.as_bytes();
        let words: Vec<&[u8]> = bytes.splitn(4, |&b| b == b' ').collect();
        let size: usize = std::str::from_utf8(words[2]).unwrap().parse().unwrap();
        assert_eq!(words[0], b"keep");
        assert_eq!(bytes.len(), size.max(words[0..3].concat().len() + 3));
        assert!(words[3].iter().all(|&b| b == b'k'), "kept bytes changed");
    }
}

#[tokio::test]
async fn a_head_in_pieces_and_frames_in_the_head_packet_are_served() {
    let server = start(Lender::default());
    let addr = server.local_addr();
    // The head a few bytes at a time: the connection holds it until it is complete.
    let mut stream = TcpStream::connect(addr).await.unwrap();
    for piece in REQUEST.as_bytes().chunks(7) {
        stream.write_all(piece).await.unwrap();
        stream.flush().await.unwrap();
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    expect_101(&mut stream).await;
    let echo = frame(0x81, b"after pieces", [1, 2, 3, 4]);
    stream.write_all(&echo).await.unwrap();
    let got = read_through(&mut stream, b"\x81\x0cafter pieces").await;
    assert_eq!(got.len(), 14);
    drop(stream);
    // The head and two frames (the second cut short) in one write: the first is answered
    // right after the 101, the rest waits with the connection.
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let mut packet = REQUEST.as_bytes().to_vec();
    packet.extend(frame(0x82, b"first", [9, 8, 7, 6]));
    let second = frame(0x82, b"second", [5, 5, 5, 5]);
    packet.extend(&second[..4]);
    stream.write_all(&packet).await.unwrap();
    let got = read_through(&mut stream, b"\r\n\r\n\x82\x05first").await;
    assert!(got.starts_with(b"HTTP/1.1 101 "));
    stream.write_all(&second[4..]).await.unwrap();
    let got = read_through(&mut stream, b"\x82\x06second").await;
    assert_eq!(got.len(), 8);
    drop(stream);
    stop(server);
}
