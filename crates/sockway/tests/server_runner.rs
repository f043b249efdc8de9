//! The `Server` runner over loopback: graceful shutdown (1001 to open sockets, drain
//! deadline), the connection limit (503), the header limits (431) and the handshake timeout
//! (slowloris).

mod server_support;

use std::time::{Duration, Instant};

use bytes::BytesMut;
use server_support::*;
use sockway::server::{
    AcceptOptions, Layer, ServerOptions, ServerWebSocket, UpgradeInfo, WebSocketLayer,
};
use tokio::io::AsyncWriteExt;

async fn echo(mut socket: ServerWebSocket, _info: UpgradeInfo) {
    while let Ok(Some(message)) = socket.recv().await {
        if socket.send(message).await.is_err() {
            break;
        }
    }
}

async fn echo_server(options: ServerOptions) -> TestServer {
    let app = WebSocketLayer::new(echo)
        .path("/ws")
        .options(AcceptOptions::default())
        .layer(not_found());
    TestServer::start(options, app).await
}

#[tokio::test]
async fn shutdown_closes_open_sockets_with_1001_and_then_returns() {
    let server = echo_server(ServerOptions::default()).await;
    let (mut first, mut first_buf) = open_raw(&server, "/ws", &[]).await;
    let (mut second, mut second_buf) = open_raw(&server, "/ws", &[]).await;
    // An idle keep-alive HTTP connection too.
    let mut idle = server.connect().await;
    idle.write_all(b"GET /page HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    assert_eq!(
        read_response(&mut idle, &mut BytesMut::new()).await.status,
        404
    );

    server.handle.shutdown();
    for (stream, buf) in [(&mut first, &mut first_buf), (&mut second, &mut second_buf)] {
        let close = within("close frame", read_frame(stream, buf))
            .await
            .expect("close frame");
        assert_eq!(close.close_code(), Some(1001), "{close:?}");
        assert_eq!(close.close_reason(), "server shutting down");
        // Reply as a client should; the server then closes the TCP connection.
        write_frame(stream, 0x8, &close.payload[..2], true).await;
        within("EOF", wait_for_eof(stream)).await;
        // Our FIN ends the server's wait for it (RFC 6455 section 7.1.1).
        stream.shutdown().await.unwrap();
    }
    within("idle connection closed", wait_for_eof(&mut idle)).await;
    within("serve returns", server.task).await.unwrap();
    // The listener is gone.
    assert!(tokio::net::TcpStream::connect(server.addr).await.is_err());
}

#[tokio::test]
async fn sockets_use_the_tcp_stream_itself_and_get_bytes_read_with_the_head() {
    let app = WebSocketLayer::new(echo_reporting_transport).layer(not_found());
    let server = TestServer::start(ServerOptions::default(), app).await;
    let mut socket = open_with_first_message(server.connect().await, "/ws", "direct?").await;
    let reply = within("reply", socket.recv()).await.unwrap();
    assert_eq!(reply, Some(sockway::Message::text("direct=true")));
    within("send", socket.send(sockway::Message::text("after")))
        .await
        .unwrap();
    let echo = within("echo", socket.recv()).await.unwrap();
    assert_eq!(echo, Some(sockway::Message::text("after")));
}

#[tokio::test]
async fn shutdown_stops_waiting_at_the_drain_deadline() {
    let server =
        echo_server(ServerOptions::default().drain_timeout(Duration::from_millis(300))).await;
    // A peer that never answers the close frame.
    let (_stream, _buf) = open_raw(&server, "/ws", &[]).await;
    let started = Instant::now();
    server.handle.shutdown();
    within("serve returns", server.task).await.unwrap();
    let waited = started.elapsed();
    assert!(waited >= Duration::from_millis(250), "{waited:?}");
    assert!(waited < Duration::from_secs(3), "{waited:?}");
}

#[tokio::test]
async fn connections_beyond_the_limit_get_503_with_retry_after_and_a_body() {
    let options = ServerOptions::default()
        .max_connections(1)
        .retry_after(Duration::from_secs(7));
    let server = echo_server(options).await;
    let (mut held, _) = open_raw(&server, "/ws", &[]).await;

    let refused = request(&server, &handshake("/ws", &[])).await;
    assert_eq!(refused.status, 503);
    assert_eq!(refused.header("retry-after"), Some("7"));
    assert!(
        refused.body.contains("limit of 1 open connection"),
        "{}",
        refused.body
    );

    // Once the WebSocket is gone, its slot is free again.
    held.shutdown().await.unwrap();
    within("EOF", wait_for_eof(&mut held)).await;
    drop(held);
    let deadline = Instant::now() + STEP;
    loop {
        let response = request(&server, &handshake("/ws", &[])).await;
        if response.status == 101 {
            break;
        }
        assert_eq!(response.status, 503);
        assert!(Instant::now() < deadline, "the slot was never released");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn oversized_request_heads_get_431_with_a_body() {
    let server = echo_server(ServerOptions::default().max_header_bytes(2048)).await;
    let big = "a".repeat(4096);
    let response = request(&server, &handshake("/ws", &[("X-Big", &big)])).await;
    assert_eq!(response.status, 431);
    assert!(response.body.contains("2048 bytes"), "{}", response.body);

    let many: Vec<(String, String)> = (0..120).map(|i| (format!("X-{i}"), "1".into())).collect();
    let many: Vec<(&str, &str)> = many.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
    let response = request(&server, &handshake("/ws", &many)).await;
    assert_eq!(response.status, 431);
    assert!(response.body.contains("header fields"), "{}", response.body);

    // Just under the limit is fine.
    let fits = "a".repeat(1500);
    open_raw(&server, "/ws", &[("X-Fits", &fits)]).await;
}

#[tokio::test]
async fn an_oversized_head_later_on_a_kept_alive_connection_gets_431_too() {
    let server = echo_server(ServerOptions::default().max_header_bytes(2048)).await;
    let mut stream = server.connect().await;
    let mut buf = BytesMut::new();
    stream
        .write_all(b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    assert_eq!(read_response(&mut stream, &mut buf).await.status, 404);
    let big = "b".repeat(64 * 1024);
    let second = format!("GET /b HTTP/1.1\r\nHost: x\r\nX-Big: {big}\r\n\r\n");
    // The server may stop reading (and close) before all of it is written.
    let _ = stream.write_all(second.as_bytes()).await;
    assert_eq!(read_response(&mut stream, &mut buf).await.status, 431);
}

#[tokio::test]
async fn a_client_that_never_finishes_its_handshake_is_dropped_after_the_timeout() {
    let server =
        echo_server(ServerOptions::default().handshake_timeout(Duration::from_millis(300))).await;

    // Slowloris: a partial request line, then nothing.
    let mut slow = server.connect().await;
    slow.write_all(b"GET /ws HTT").await.unwrap();
    let started = Instant::now();
    let response = read_response(&mut slow, &mut BytesMut::new()).await;
    assert_eq!(response.status, 408);
    assert!(!response.body.is_empty());
    within("EOF", wait_for_eof(&mut slow)).await;
    let waited = started.elapsed();
    // The server's clock started at accept, a little before ours: a loose lower bound.
    assert!(waited >= Duration::from_millis(150), "{waited:?}");
    assert!(waited < Duration::from_secs(3), "{waited:?}");

    // A connection that sends nothing at all is closed without a response.
    let mut silent = server.connect().await;
    let started = Instant::now();
    let mut buf = BytesMut::new();
    let got = within(
        "silent close",
        tokio::io::AsyncReadExt::read_buf(&mut silent, &mut buf),
    )
    .await;
    assert!(matches!(got, Ok(0) | Err(_)), "{got:?} {buf:?}");
    assert!(started.elapsed() < Duration::from_secs(3));

    // Trickling header lines does not extend the deadline.
    let mut trickle = server.connect().await;
    let started = Instant::now();
    trickle.write_all(b"GET /ws HTTP/1.1\r\n").await.unwrap();
    for i in 0..20 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        if trickle
            .write_all(format!("X-{i}: 1\r\n").as_bytes())
            .await
            .is_err()
        {
            break;
        }
    }
    within("EOF", wait_for_eof(&mut trickle)).await;
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[test]
fn server_options_have_documented_defaults() {
    let options = ServerOptions::default();
    assert_eq!(options.limits.handshake_timeout, Duration::from_secs(10));
    assert_eq!(options.limits.max_connections, 10_000);
    assert_eq!(options.limits.max_header_bytes, 32 * 1024);
    assert_eq!(options.limits.max_headers, 100);
    assert_eq!(options.limits.drain_timeout, Duration::from_secs(10));
    assert_eq!(options.retry_after, Duration::from_secs(5));
    assert!(options.http2);
    assert_eq!(options.http2_max_streams, 200);
    assert!(options.handle_signals);
}
