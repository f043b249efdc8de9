//! Behaviour of the async `WebSocket` over in-memory pipes: messages, partial receives, close,
//! cancel safety, backpressure, split halves, Stream/Sink, and drop.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use sockway::{
    CloseCode, Error, Message, MessageKind, ReceivedKind, Role, WebSocket, WebSocketConfig,
};
use tokio::io::{duplex, AsyncReadExt, AsyncWriteExt, DuplexStream};
use tokio::time::timeout;

const LIMIT: Duration = Duration::from_secs(5);

fn pair_with(
    config: WebSocketConfig,
    pipe_capacity: usize,
) -> (WebSocket<DuplexStream>, WebSocket<DuplexStream>) {
    let (a, b) = duplex(pipe_capacity);
    (
        WebSocket::from_raw(a, Role::Client, config.clone(), Default::default()),
        WebSocket::from_raw(b, Role::Server, config, Default::default()),
    )
}

fn pair() -> (WebSocket<DuplexStream>, WebSocket<DuplexStream>) {
    pair_with(WebSocketConfig::default(), 64 * 1024)
}

#[tokio::test]
async fn messages_flow_both_ways_with_their_types() {
    let (mut client, mut server) = pair();
    let big = vec![7u8; 300_000];
    let sender = tokio::spawn(async move {
        client.send(Message::text("héllo")).await.unwrap();
        client.send_binary(&big).await.unwrap();
        client.send_text("").await.unwrap();
        let echoed = client.recv().await.unwrap().unwrap();
        assert_eq!(echoed, Message::text("back"));
        client
    });
    assert_eq!(server.recv().await.unwrap(), Some(Message::text("héllo")));
    let Some(Message::Binary(bytes)) = server.recv().await.unwrap() else {
        panic!("binary expected")
    };
    assert_eq!(bytes.len(), 300_000);
    assert_eq!(server.recv().await.unwrap(), Some(Message::text("")));
    server.send_text("back").await.unwrap();
    let client = timeout(LIMIT, sender).await.unwrap().unwrap();
    assert_eq!(client.stats().messages_sent, 3);
    assert_eq!(server.stats().messages_received, 3);
}

#[tokio::test]
async fn close_handshake_reports_code_and_reason_on_both_sides() {
    let (mut client, mut server) = pair();
    let closer = tokio::spawn(async move { client.close(CloseCode(4000), "done here").await });
    assert_eq!(timeout(LIMIT, server.recv()).await.unwrap().unwrap(), None);
    let info = server.close_info().unwrap();
    assert_eq!(
        (info.code, info.reason.as_str(), info.initiated_locally),
        (CloseCode(4000), "done here", false)
    );
    let info = timeout(LIMIT, closer).await.unwrap().unwrap().unwrap();
    assert_eq!(info.code, CloseCode(4000), "the server echoes the code");
    assert!(info.initiated_locally);
    assert!(matches!(
        server.send_text("late").await,
        Err(Error::Send(_))
    ));
}

#[tokio::test]
async fn receive_into_a_small_buffer_reports_counts_and_end_of_message() {
    let (mut client, mut server) = pair();
    client.send_binary(&[1u8; 2500]).await.unwrap();
    client
        .send_fragment(MessageKind::Text, b"ab", false)
        .await
        .unwrap();
    client
        .send_fragment(MessageKind::Text, b"cd", true)
        .await
        .unwrap();
    client.close_output(CloseCode::NORMAL, "bye").await.unwrap();
    let client_task = tokio::spawn(async move { client.recv().await });
    let mut buf = [0u8; 1000];
    let mut counts = Vec::new();
    loop {
        let result = timeout(LIMIT, server.receive(&mut buf))
            .await
            .unwrap()
            .unwrap();
        if let ReceivedKind::Close(info) = &result.kind {
            assert_eq!(
                (info.code, info.reason.as_str()),
                (CloseCode::NORMAL, "bye")
            );
            break;
        }
        counts.push((result.count, result.kind, result.end_of_message));
    }
    let total: usize = counts
        .iter()
        .filter(|c| c.1 == ReceivedKind::Binary)
        .map(|c| c.0)
        .sum();
    assert_eq!(total, 2500);
    assert!(counts.iter().all(|c| c.0 <= 1000));
    let text: Vec<_> = counts
        .iter()
        .filter(|c| c.1 == ReceivedKind::Text)
        .collect();
    assert_eq!(text.last().map(|c| c.2), Some(true));
    assert_eq!(text.iter().map(|c| c.0).sum::<usize>(), 4);
    assert_eq!(
        counts.iter().filter(|c| c.2).count(),
        2,
        "exactly two messages end"
    );
    assert_eq!(
        timeout(LIMIT, client_task).await.unwrap().unwrap().unwrap(),
        None
    );
}

#[tokio::test]
async fn recv_is_cancel_safe_inside_select() {
    let (a, b) = duplex(64 * 1024);
    let mut server = WebSocket::from_raw(
        b,
        Role::Server,
        WebSocketConfig::default(),
        Default::default(),
    );
    let mut raw = a;
    let writer = tokio::spawn(async move {
        let mut sender = sockway::proto::Connection::new(Role::Client, Default::default());
        for i in 0..20u32 {
            sender
                .send_text(&format!("message {i} {}", "x".repeat(i as usize * 97)))
                .unwrap();
        }
        let bytes = sender.take_output();
        for (i, chunk) in bytes.chunks(7).enumerate() {
            raw.write_all(chunk).await.unwrap();
            if i % 40 == 0 {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
        raw
    });
    let mut received = Vec::new();
    let mut cancelled = 0;
    while received.len() < 20 {
        tokio::select! {
            message = server.recv() => received.push(message.unwrap().unwrap()),
            _ = tokio::task::yield_now() => cancelled += 1,
        }
    }
    assert!(
        cancelled > 10,
        "the receive was really interrupted ({cancelled} times)"
    );
    for (i, message) in received.iter().enumerate() {
        assert_eq!(
            message,
            &Message::text(format!("message {i} {}", "x".repeat(i * 97)))
        );
    }
    drop(writer.await.unwrap());
}

#[tokio::test]
async fn send_waits_when_the_peer_does_not_read() {
    let config = WebSocketConfig::default().write_buffer_limit(16 * 1024);
    let (mut client, server) = pair_with(config, 4 * 1024);
    let mut sent = 0usize;
    let stalled = loop {
        match timeout(Duration::from_millis(200), client.send_binary(&[0u8; 1024])).await {
            Ok(result) => {
                result.unwrap();
                sent += 1;
                assert!(sent < 1000, "sends never blocked: buffering is unbounded");
            }
            Err(_) => break true,
        }
    };
    assert!(stalled);
    assert!(
        sent * 1024 <= 4 * 1024 + 16 * 1024 + 2048,
        "at most pipe + limit queued, got {sent} KiB"
    );
    drop(server);
}

#[tokio::test]
async fn split_halves_work_from_two_tasks_and_pings_are_answered_while_the_writer_idles() {
    let (client, mut server) = pair();
    let (mut reader, mut writer) = client.split();
    let read_task = tokio::spawn(async move {
        let mut got = Vec::new();
        while let Some(message) = reader.recv().await.unwrap() {
            got.push(message);
        }
        (got, reader.close_info())
    });
    server.ping(b"are you there").await.unwrap();
    writer.send(Message::text("one")).await.unwrap();
    assert_eq!(
        timeout(LIMIT, server.recv()).await.unwrap().unwrap(),
        Some(Message::text("one"))
    );
    server.send_text("two").await.unwrap();
    server.send_text("three").await.unwrap();
    writer.close(CloseCode::NORMAL, "").await.unwrap();
    assert_eq!(timeout(LIMIT, server.recv()).await.unwrap().unwrap(), None);
    let (got, info) = timeout(LIMIT, read_task).await.unwrap().unwrap();
    assert_eq!(got, vec![Message::text("two"), Message::text("three")]);
    assert_eq!(info.unwrap().code, CloseCode::NORMAL);
}

#[tokio::test]
async fn stream_and_sink_carry_messages() {
    let (mut client, mut server) = pair();
    client.send(Message::binary(vec![1, 2])).await.unwrap();
    SinkExt::send(&mut client, Message::text("via sink"))
        .await
        .unwrap();
    SinkExt::close(&mut client).await.unwrap();
    let client_task = tokio::spawn(async move { client.next().await.is_none() });
    let got: Vec<_> = timeout(LIMIT, server.by_ref().collect::<Vec<_>>())
        .await
        .unwrap();
    assert!(
        timeout(LIMIT, client_task).await.unwrap().unwrap(),
        "the client's stream ends after the close"
    );
    let got: Vec<Message> = got.into_iter().map(Result::unwrap).collect();
    assert_eq!(
        got,
        vec![Message::binary(vec![1, 2]), Message::text("via sink")]
    );
    assert_eq!(server.close_info().unwrap().code, CloseCode::NORMAL);
}

#[tokio::test]
async fn a_protocol_violation_fails_with_its_close_code() {
    let (a, b) = duplex(1024);
    let mut server = WebSocket::from_raw(
        b,
        Role::Server,
        WebSocketConfig::default(),
        Default::default(),
    );
    let mut raw = a;
    raw.write_all(&[0x81, 0x01, b'x']).await.unwrap();
    let peer = tokio::spawn(async move {
        let mut reply = Vec::new();
        raw.read_to_end(&mut reply).await.unwrap();
        reply
    });
    let error = timeout(LIMIT, server.recv()).await.unwrap().unwrap_err();
    assert!(
        matches!(&error, Error::Protocol(e) if e.close_code() == CloseCode::PROTOCOL_ERROR),
        "{error}"
    );
    let reply = timeout(LIMIT, peer).await.unwrap().unwrap();
    assert_eq!(
        &reply[..4],
        &[0x88, reply[1], 0x03, 0xEA],
        "close frame with 1002, then EOF"
    );
    assert_eq!(
        server.recv().await.unwrap(),
        None,
        "afterwards the socket reads as closed"
    );
}

#[tokio::test]
async fn dropping_an_open_socket_sends_1001() {
    let (client, mut server) = pair();
    drop(client);
    assert_eq!(timeout(LIMIT, server.recv()).await.unwrap().unwrap(), None);
    assert_eq!(server.close_info().unwrap().code, CloseCode::GOING_AWAY);
}

#[tokio::test]
async fn eof_without_close_is_an_abnormal_closure() {
    let (a, b) = duplex(1024);
    let mut server = WebSocket::from_raw(
        b,
        Role::Server,
        WebSocketConfig::default(),
        Default::default(),
    );
    drop(a);
    assert!(matches!(
        timeout(LIMIT, server.recv()).await.unwrap(),
        Err(Error::AbnormalClosure)
    ));
    assert_eq!(server.close_info().unwrap().code, CloseCode::ABNORMAL);
}

#[tokio::test]
async fn keep_alive_pings_a_quiet_peer_and_gives_up_on_a_silent_one() {
    let keep_alive = sockway::KeepAlive {
        interval: Duration::from_millis(100),
        timeout: Duration::from_millis(150),
    };
    let (a, b) = duplex(1024);
    let config = WebSocketConfig::default().keep_alive(Some(keep_alive));
    let mut server = WebSocket::from_raw(b, Role::Server, config, Default::default());
    let started = tokio::time::Instant::now();
    let error = timeout(LIMIT, server.recv()).await.unwrap().unwrap_err();
    assert!(matches!(error, Error::KeepAliveTimeout(_)), "{error}");
    assert!(started.elapsed() >= Duration::from_millis(250));
    let mut raw = a;
    let mut seen = [0u8; 2];
    raw.read_exact(&mut seen).await.unwrap();
    assert_eq!(seen, [0x89, 0x00], "an empty ping went out first");
}

#[tokio::test]
async fn compressed_sockets_exchange_messages_and_honour_the_opt_out() {
    let params = sockway::DeflateParams {
        local_max_window_bits: 15,
        local_no_context_takeover: false,
        remote_no_context_takeover: false,
        local_compression_level: 1,
    };
    let (a, b) = duplex(64 * 1024);
    let config = WebSocketConfig::default();
    let mut client = WebSocket::from_negotiated(
        a,
        Role::Client,
        config.clone(),
        Default::default(),
        Some(params),
    );
    let mut server =
        WebSocket::from_negotiated(b, Role::Server, config, Default::default(), Some(params));
    assert_eq!(client.compression(), Some(params));
    let text = "compress me, compress me, compress me ".repeat(50);
    let echo = tokio::spawn(async move {
        while let Some(message) = server.recv().await.unwrap() {
            server.send(message).await.unwrap();
        }
        server.stats()
    });
    for i in 0..200 {
        let compression = if i % 2 == 0 {
            sockway::Compression::Allowed
        } else {
            sockway::Compression::Disabled
        };
        client
            .send_with(Message::text(text.clone()), compression)
            .await
            .unwrap();
        assert_eq!(
            client.recv().await.unwrap(),
            Some(Message::text(text.clone()))
        );
    }
    let sent = client.stats().bytes_sent;
    client.close(CloseCode::NORMAL, "").await.unwrap();
    let server_stats = timeout(LIMIT, echo).await.unwrap().unwrap();
    assert!(
        sent < 200 * text.len() as u64 * 6 / 10,
        "half the messages compress: {sent} bytes on the wire"
    );
    assert_eq!(server_stats.messages_received, 200);
}
