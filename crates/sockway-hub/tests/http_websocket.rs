//! The WebSockets transport: skip negotiation, negotiated ids, 404 / 409 / 400 refusals,
//! text and binary frames, HTTP/2 extended CONNECT, stateful reconnect.

mod http_support;

use std::time::Duration;

use http_support::{raw_websocket, request, ws_url, TestServer, LIMIT};
use sockway::client::{ClientBuilder, ClientError, HttpVersion, MessageWebSocket};
use sockway::Message;
use sockway_hub::link::TransportKind;
use sockway_hub::HttpOptions;

async fn connect(url: &str) -> Result<MessageWebSocket, ClientError> {
    tokio::time::timeout(LIMIT, ClientBuilder::new(url).connect_message())
        .await
        .expect("the handshake did not finish in time")
}

async fn next(socket: &mut MessageWebSocket) -> Message {
    tokio::time::timeout(LIMIT, socket.recv())
        .await
        .expect("no message in time")
        .unwrap()
        .expect("the socket closed")
}

fn status(error: ClientError) -> u16 {
    match error {
        ClientError::Rejected { status, .. } => status.as_u16(),
        other => panic!("expected a refused handshake, got {other}"),
    }
}

#[tokio::test]
async fn without_an_id_a_fresh_connection_starts_and_echoes_text() {
    let mut server = TestServer::start(HttpOptions::default()).await;
    let mut socket = connect(&ws_url(server.addr, "")).await.unwrap();
    let info = server.started().await;
    assert_eq!(info.transport, TransportKind::WebSockets);
    socket.send_text("hello\u{1e}").await.unwrap();
    assert_eq!(next(&mut socket).await, Message::text("hello\u{1e}"));
    socket.close(sockway::CloseCode::NORMAL, "").await.unwrap();
    server.gone(&info.connection_id).await;
}

#[tokio::test]
async fn a_negotiated_token_opens_its_connection_once() {
    let mut server = TestServer::start(HttpOptions::default()).await;
    let (id, token) = server.connection("").await;
    let mut socket = connect(&ws_url(server.addr, &format!("?id={token}")))
        .await
        .unwrap();
    let info = server.started().await;
    assert_eq!(info.connection_id, id);
    assert_eq!(info.request.path(), "/hub");
    assert_eq!(info.request.query(), Some(format!("id={token}").as_str()));
    let host = server.addr.to_string();
    assert_eq!(info.request.headers().get_str("Host"), Some(host.as_str()));
    assert!(
        !info.request.headers().contains("sec-websocket-key"),
        "the handshake's own headers are not kept"
    );
    let second = connect(&ws_url(server.addr, &format!("?id={token}"))).await;
    assert_eq!(status(second.err().unwrap()), 409);
    let post = request(server.addr, "POST", &format!("/hub?id={token}"), &[], b"x").await;
    assert_eq!(post.status, 405);
    socket.send_text("still here").await.unwrap();
    assert_eq!(next(&mut socket).await, Message::text("still here"));
}

#[tokio::test]
async fn unknown_and_forged_tokens_get_404() {
    let server = TestServer::start(HttpOptions::default()).await;
    let unknown = connect(&ws_url(server.addr, "?id=nope")).await;
    assert_eq!(status(unknown.err().unwrap()), 404);

    let (_, token) = server.connection("").await;
    let mut forged = token.into_bytes();
    let last = forged.len() - 3;
    forged[last] = if forged[last] == b'A' { b'B' } else { b'A' };
    let forged = String::from_utf8(forged).unwrap();
    let refused = connect(&ws_url(server.addr, &format!("?id={forged}"))).await;
    assert_eq!(status(refused.err().unwrap()), 404);

    let other = TestServer::start(HttpOptions::default()).await;
    let (_, foreign) = other.connection("").await;
    let refused = connect(&ws_url(server.addr, &format!("?id={foreign}"))).await;
    assert_eq!(status(refused.err().unwrap()), 404, "signed by another key");
}

#[tokio::test]
async fn a_connection_that_polled_cannot_switch_to_websockets() {
    let server = TestServer::start(HttpOptions::default()).await;
    let (_, token) = server.connection("").await;
    let poll = request(server.addr, "GET", &format!("/hub?id={token}"), &[], b"").await;
    assert_eq!(poll.status, 200);
    let refused = connect(&ws_url(server.addr, &format!("?id={token}"))).await;
    assert_eq!(status(refused.err().unwrap()), 400);
}

#[tokio::test]
async fn frames_are_binary_once_the_hub_says_so() {
    let server = TestServer::start(HttpOptions::default()).await;
    let mut socket = connect(&ws_url(server.addr, "")).await.unwrap();
    socket.send_text("binary").await.unwrap();
    socket.send_binary(&[0x01, 0xff]).await.unwrap();
    assert_eq!(next(&mut socket).await, Message::binary(vec![0x01, 0xff]));
}

#[tokio::test]
async fn the_hub_closing_closes_the_socket_normally() {
    let mut server = TestServer::start(HttpOptions::default()).await;
    let mut socket = connect(&ws_url(server.addr, "")).await.unwrap();
    let info = server.started().await;
    socket.send_text("close").await.unwrap();
    let end = tokio::time::timeout(LIMIT, socket.recv()).await.unwrap();
    assert!(matches!(end, Ok(None)), "{end:?}");
    let again = connect(&ws_url(server.addr, &format!("?id={}", info.connection_id))).await;
    assert_eq!(status(again.err().unwrap()), 404);
}

#[tokio::test]
async fn messages_over_the_receive_limit_close_the_socket_with_1009() {
    let server = TestServer::start(HttpOptions::default().max_receive_size(16)).await;
    let mut socket = connect(&ws_url(server.addr, "")).await.unwrap();
    socket.send_text(&"x".repeat(64)).await.unwrap();
    let end = tokio::time::timeout(LIMIT, socket.recv()).await.unwrap();
    let code = match end {
        Err(ClientError::ClosedByPeer { code, .. }) => code,
        Ok(None) => socket.closed().expect("how it closed").code,
        other => panic!("expected a close, got {other:?}"),
    };
    assert_eq!(code, sockway::CloseCode::MESSAGE_TOO_BIG);
}

#[tokio::test]
async fn http2_extended_connect_reaches_the_hub() {
    let server = TestServer::start(HttpOptions::default()).await;
    let builder = ClientBuilder::new(ws_url(server.addr, "")).http_version(HttpVersion::Http2Only);
    let mut socket = tokio::time::timeout(LIMIT, builder.connect_message())
        .await
        .unwrap()
        .unwrap();
    socket.send_text("over h2").await.unwrap();
    assert_eq!(next(&mut socket).await, Message::text("over h2"));
}

#[tokio::test]
async fn a_lost_socket_of_a_stateful_connection_is_taken_over_by_the_next() {
    let options = HttpOptions::default()
        .stateful_reconnect(true)
        .reconnect_grace(Duration::from_secs(30));
    let mut server = TestServer::start(options).await;
    let (id, token) = server.connection("&useStatefulReconnect=true").await;
    let lost = raw_websocket(server.addr, &format!("?id={token}")).await;
    let info = server.started().await;
    assert!(info.stateful_reconnect);
    drop(lost);
    let mut socket = connect(&ws_url(server.addr, &format!("?id={token}")))
        .await
        .unwrap();
    assert_eq!(next(&mut socket).await, Message::text("reconnected"));
    socket.send_text("after").await.unwrap();
    assert_eq!(next(&mut socket).await, Message::text("after"));
    socket.close(sockway::CloseCode::NORMAL, "").await.unwrap();
    server.gone(&id).await;
}

#[tokio::test]
async fn a_lost_socket_without_stateful_reconnect_ends_the_connection() {
    let mut server = TestServer::start(HttpOptions::default().stateful_reconnect(true)).await;
    let (id, token) = server.connection("").await;
    let lost = raw_websocket(server.addr, &format!("?id={token}")).await;
    server.started().await;
    drop(lost);
    server.gone(&id).await;
}

#[tokio::test]
async fn a_stateful_connection_not_reconnected_in_its_grace_period_ends() {
    let options = HttpOptions::default()
        .stateful_reconnect(true)
        .reconnect_grace(Duration::from_millis(200));
    let mut server = TestServer::start(options).await;
    let (id, token) = server.connection("&useStatefulReconnect=true").await;
    let lost = raw_websocket(server.addr, &format!("?id={token}")).await;
    server.started().await;
    drop(lost);
    server.gone(&id).await;
    let late = connect(&ws_url(server.addr, &format!("?id={token}"))).await;
    assert_eq!(status(late.err().unwrap()), 404);
}

#[tokio::test]
async fn a_new_socket_of_a_stateful_connection_replaces_one_still_open() {
    let mut server = TestServer::start(HttpOptions::default().stateful_reconnect(true)).await;
    let (_, token) = server.connection("&useStatefulReconnect=true").await;
    let url = ws_url(server.addr, &format!("?id={token}"));
    let mut old = connect(&url).await.unwrap();
    server.started().await;
    let mut new = connect(&url).await.unwrap();
    assert_eq!(next(&mut new).await, Message::text("reconnected"));
    let end = tokio::time::timeout(LIMIT, old.recv()).await.unwrap();
    assert!(
        matches!(end, Ok(None)),
        "the replaced socket is closed: {end:?}"
    );
    new.send_text("on the new one").await.unwrap();
    assert_eq!(next(&mut new).await, Message::text("on the new one"));
}

#[tokio::test]
async fn a_message_batching_many_hub_messages_is_not_held_to_the_hub_message_limit() {
    // The official clients batch queued sends into one message; 64 KiB is two records of the
    // hub's 32 KiB limit, which the hub (not the transport) applies per record.
    let server = TestServer::start(HttpOptions::default()).await;
    let mut socket = connect(&ws_url(server.addr, "")).await.unwrap();
    let batch = "x".repeat(64 * 1024);
    socket.send_text(&batch).await.unwrap();
    assert_eq!(next(&mut socket).await, Message::text(batch));
}

#[tokio::test]
async fn refused_handshakes_leave_the_connection_usable() {
    let options = HttpOptions::default().websocket(
        sockway::server::AcceptOptions::default().allowed_origins(["https://app.example"]),
    );
    let server = TestServer::start(options).await;
    let (_, token) = server.connection("").await;
    let url = ws_url(server.addr, &format!("?id={token}"));
    let no_key = request(
        server.addr,
        "GET",
        &format!("/hub?id={token}"),
        &[
            ("Upgrade", "websocket"),
            ("Connection", "Upgrade, close"),
            ("Sec-WebSocket-Version", "13"),
        ],
        b"",
    )
    .await;
    assert_eq!(no_key.status, 400);
    let foreign = ClientBuilder::new(&url)
        .origin("https://elsewhere.example")
        .connect_message();
    let foreign = tokio::time::timeout(LIMIT, foreign).await.unwrap();
    assert_eq!(status(foreign.err().unwrap()), 403);
    let allowed = ClientBuilder::new(&url)
        .origin("https://app.example")
        .connect_message();
    let mut socket = tokio::time::timeout(LIMIT, allowed).await.unwrap().unwrap();
    socket.send_text("in").await.unwrap();
    assert_eq!(next(&mut socket).await, Message::text("in"));
}

#[tokio::test]
async fn a_hub_that_panics_ends_its_connection_only() {
    let server = TestServer::start(HttpOptions::default()).await;
    let mut doomed = connect(&ws_url(server.addr, "")).await.unwrap();
    let mut other = connect(&ws_url(server.addr, "")).await.unwrap();
    doomed.send_text("panic").await.unwrap();
    let end = tokio::time::timeout(LIMIT, doomed.recv()).await.unwrap();
    assert!(matches!(end, Ok(None)), "{end:?}");
    other.send_text("unaffected").await.unwrap();
    assert_eq!(next(&mut other).await, Message::text("unaffected"));
}

#[tokio::test]
async fn frames_queued_together_arrive_as_separate_messages_in_order() {
    let server = TestServer::start(HttpOptions::default()).await;
    let mut socket = connect(&ws_url(server.addr, "")).await.unwrap();
    socket.send_text("burst").await.unwrap();
    for expected in ["1", "2", "3"] {
        assert_eq!(next(&mut socket).await, Message::text(expected));
    }
}

/// A client that sends but never reads blocks the transport's writes; once the hub closes
/// the connection, the socket gets `close_timeout` to take the rest, then it is dropped (the
/// client's next write fails) instead of being held for ever.
#[tokio::test]
async fn a_client_that_never_reads_is_dropped_after_the_close_timeout() {
    use tokio::io::AsyncWriteExt;

    let server = TestServer::start(
        HttpOptions::default()
            .transports(&[TransportKind::WebSockets])
            .close_timeout(Duration::from_millis(500)),
    )
    .await;
    let stream = raw_websocket(server.addr, "").await;
    let (_unread, mut writer) = stream.into_split();
    // Masked text frames of 60,000 bytes (mask key 0, so the payload stays as written), each
    // echoed by the stand-in hub: the echoes fill the client's receive buffer, the server
    // stops reading, and this writer blocks until the server drops the socket.
    let mut frame = vec![0x81, 0x80 | 126, 0xEA, 0x60, 0, 0, 0, 0];
    frame.extend(std::iter::repeat_n(b'a', 60_000));
    let flood = tokio::spawn(async move {
        loop {
            if writer.write_all(&frame).await.is_err() {
                return;
            }
        }
    });
    tokio::time::sleep(Duration::from_secs(2)).await;
    server.hub.close_all();
    tokio::time::timeout(LIMIT, flood)
        .await
        .expect("the server kept the socket of a client that does not read")
        .unwrap();
}
