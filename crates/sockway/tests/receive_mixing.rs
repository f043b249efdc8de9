//! Mixing the three ways of receiving on one socket: `recv` (whole messages), `receive`
//! (pieces into a caller's buffer) and `recv_fragment` (frames). A read by pieces always
//! continues the current message where the last read stopped; `recv` in the middle of a
//! message partly read by pieces fails with `Error::PartlyReceived` and changes nothing.
//!
//! Every test sends one text message in three frames ("abc", "def", "ghi") and then a whole
//! message "next", so that it can check both the message and that the socket goes on.

use std::time::Duration;

use futures_util::FutureExt;
use sockway::{
    DeflateParams, Error, Fragment, Message, MessageKind, ReceivedKind, Role, WebSocket,
    WebSocketConfig,
};
use tokio::io::{duplex, DuplexStream};
use tokio::time::timeout;

/// Bounds every wait: far beyond what an in-memory pipe needs, so only a hang fails.
const LIMIT: Duration = Duration::from_secs(20);

type Socket = WebSocket<DuplexStream>;

fn pair(compression: Option<DeflateParams>) -> (Socket, Socket) {
    let (a, b) = duplex(64 * 1024);
    let config = WebSocketConfig::default();
    (
        WebSocket::from_negotiated(
            a,
            Role::Client,
            config.clone(),
            Default::default(),
            compression,
        ),
        WebSocket::from_negotiated(b, Role::Server, config, Default::default(), compression),
    )
}

/// Sends the first two frames of the message ("abc", "def").
async fn send_start(client: &mut Socket) {
    client
        .send_fragment(MessageKind::Text, b"abc", false)
        .await
        .unwrap();
    client
        .send_fragment(MessageKind::Text, b"def", false)
        .await
        .unwrap();
}

/// Sends the last frame ("ghi") and then the whole message "next".
async fn send_end(client: &mut Socket) {
    client
        .send_fragment(MessageKind::Text, b"ghi", true)
        .await
        .unwrap();
    client.send_text("next").await.unwrap();
}

/// Sends the whole three-frame message and "next".
async fn send_all(client: &mut Socket) {
    send_start(client).await;
    send_end(client).await;
}

async fn receive(server: &mut Socket, size: usize) -> (String, bool) {
    let mut buf = vec![0u8; size];
    let got = timeout(LIMIT, server.receive(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.kind, ReceivedKind::Text);
    (
        String::from_utf8(buf[..got.count].to_vec()).unwrap(),
        got.end_of_message,
    )
}

async fn fragment(server: &mut Socket) -> (String, bool) {
    let Fragment {
        kind,
        data,
        end_of_message,
    } = timeout(LIMIT, server.recv_fragment())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(kind, MessageKind::Text);
    (String::from_utf8(data.to_vec()).unwrap(), end_of_message)
}

/// Reads the rest of the current message with `receive` (a buffer of `size` bytes).
async fn receive_rest(server: &mut Socket, size: usize) -> String {
    let mut text = String::new();
    loop {
        let (piece, end) = receive(server, size).await;
        text += &piece;
        if end {
            return text;
        }
    }
}

/// Reads the rest of the current message with `recv_fragment`.
async fn fragments_rest(server: &mut Socket) -> String {
    let mut text = String::new();
    loop {
        let (piece, end) = fragment(server).await;
        text += &piece;
        if end {
            return text;
        }
    }
}

async fn assert_next_is_whole(server: &mut Socket) {
    let next = timeout(LIMIT, server.recv()).await.unwrap().unwrap();
    assert_eq!(next, Some(Message::text("next")));
}

fn assert_partly_received(result: Option<Result<Option<Message>, Error>>) {
    assert!(
        matches!(result, Some(Err(Error::PartlyReceived))),
        "{result:?}"
    );
}

#[tokio::test]
async fn receive_then_recv_is_refused_and_receive_continues() {
    let (mut client, mut server) = pair(None);
    send_all(&mut client).await;
    assert_eq!(receive(&mut server, 2).await, ("ab".into(), false));
    // Part of "abc" is kept back by `receive`, and "ab" is gone: `recv` cannot return the
    // message whole. It says so at once, without waiting or reading anything.
    assert_partly_received(server.recv().now_or_never());
    assert_eq!(receive(&mut server, 2).await, ("c".into(), false));
    // Nothing kept back now, but the message is still partly read.
    assert_partly_received(server.recv().now_or_never());
    assert_eq!(receive_rest(&mut server, 2).await, "defghi");
    assert_next_is_whole(&mut server).await;
}

#[tokio::test]
async fn receive_then_recv_fragment_continues_with_what_receive_kept() {
    let (mut client, mut server) = pair(None);
    send_all(&mut client).await;
    assert_eq!(receive(&mut server, 2).await, ("ab".into(), false));
    assert_eq!(fragment(&mut server).await, ("c".into(), false));
    assert_eq!(fragments_rest(&mut server).await, "defghi");
    assert_next_is_whole(&mut server).await;
}

#[tokio::test]
async fn recv_fragment_then_recv_is_refused_and_recv_fragment_continues() {
    let (mut client, mut server) = pair(None);
    send_all(&mut client).await;
    assert_eq!(fragment(&mut server).await, ("abc".into(), false));
    assert_partly_received(server.recv().now_or_never());
    assert_eq!(fragments_rest(&mut server).await, "defghi");
    assert_next_is_whole(&mut server).await;
}

#[tokio::test]
async fn recv_fragment_then_receive_continues() {
    let (mut client, mut server) = pair(None);
    send_all(&mut client).await;
    assert_eq!(fragment(&mut server).await, ("abc".into(), false));
    assert_eq!(receive_rest(&mut server, 4).await, "defghi");
    assert_next_is_whole(&mut server).await;
}

/// `recv` is cancelled after it gathered the first two frames: the bytes are in the pipe when
/// `send_fragment` returns, so one poll reads and keeps them, then waits for the third.
async fn cancel_recv_after_two_frames(client: &mut Socket, server: &mut Socket) {
    send_start(client).await;
    assert!(server.recv().now_or_never().is_none());
    send_end(client).await;
}

#[tokio::test]
async fn a_cancelled_recv_then_receive_starts_from_the_messages_first_byte() {
    let (mut client, mut server) = pair(None);
    cancel_recv_after_two_frames(&mut client, &mut server).await;
    assert_eq!(receive(&mut server, 4).await, ("abcd".into(), false));
    assert_eq!(receive_rest(&mut server, 4).await, "efghi");
    assert_next_is_whole(&mut server).await;
}

#[tokio::test]
async fn a_cancelled_recv_then_recv_fragment_starts_from_the_messages_first_byte() {
    let (mut client, mut server) = pair(None);
    cancel_recv_after_two_frames(&mut client, &mut server).await;
    assert_eq!(fragment(&mut server).await, ("abcdef".into(), false));
    assert_eq!(fragment(&mut server).await, ("ghi".into(), true));
    assert_next_is_whole(&mut server).await;
}

#[tokio::test]
async fn a_cancelled_recv_of_a_compressed_message_hands_out_its_inflated_start() {
    let params = DeflateParams {
        local_max_window_bits: 15,
        local_no_context_takeover: false,
        remote_no_context_takeover: false,
        local_compression_level: 1,
    };
    let (mut client, mut server) = pair(Some(params));
    cancel_recv_after_two_frames(&mut client, &mut server).await;
    assert_eq!(fragments_rest(&mut server).await, "abcdefghi");
    assert_next_is_whole(&mut server).await;
}

#[tokio::test]
async fn recv_goes_on_normally_once_the_message_is_finished_by_pieces() {
    let (mut client, mut server) = pair(None);
    send_all(&mut client).await;
    // The last piece of the message read with a buffer too small for it: the rest is kept
    // back after the core finished the message, and `recv` still refuses until it is read.
    assert_eq!(fragment(&mut server).await, ("abc".into(), false));
    assert_eq!(fragment(&mut server).await, ("def".into(), false));
    assert_eq!(receive(&mut server, 1).await, ("g".into(), false));
    assert_partly_received(server.recv().now_or_never());
    assert_eq!(receive_rest(&mut server, 8).await, "hi");
    assert_next_is_whole(&mut server).await;
}
