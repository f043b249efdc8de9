//! The server side of WebSockets over HTTP/2 (RFC 8441), driven by a raw HTTP/2 client (the
//! `h2` crate) so each test controls exactly what goes on the wire: the SETTINGS, good and
//! bad extended CONNECTs, the accept options over HTTP/2, multiplexing with ordinary
//! requests, flow control with large messages, and a reset stream.

mod http2_support;
mod server_support;

use std::time::Duration;

use bytes::Bytes;
use http2_support::*;
use server_support::{not_found, TestServer};
use sockway::proto::deflate;
use sockway::proto::handshake::parse_extensions;
use sockway::server::{
    AcceptOptions, Layer, ServerOptions, ServerWebSocket, UpgradeInfo, WebSocketLayer,
};
use sockway::{DeflateConfig, Message};
use tokio::io::AsyncReadExt;
use tokio::sync::mpsc;

/// What an echo handler reports about each socket it served.
#[derive(Debug)]
enum Event {
    Opened(Box<UpgradeInfo>),
    Ended(Result<(), String>),
}

/// Echoes whole messages on `/ws` with `options`, reporting each socket's start and end.
async fn echo_server(
    options: AcceptOptions,
    server: ServerOptions,
) -> (TestServer, mpsc::UnboundedReceiver<Event>) {
    let (events_tx, events) = mpsc::unbounded_channel();
    let app = WebSocketLayer::new(move |mut socket: ServerWebSocket, info: UpgradeInfo| {
        let events = events_tx.clone();
        async move {
            let _ = events.send(Event::Opened(Box::new(info)));
            let ended = loop {
                match socket.recv().await {
                    Ok(Some(message)) => {
                        if let Err(e) = socket.send(message).await {
                            break Err(e.to_string());
                        }
                    }
                    Ok(None) => break Ok(()),
                    Err(e) => break Err(e.to_string()),
                }
            };
            let _ = events.send(Event::Ended(ended));
        }
    })
    .path("/ws")
    .options(options)
    .layer(not_found());
    (TestServer::start(server, app).await, events)
}

async fn opened(events: &mut mpsc::UnboundedReceiver<Event>) -> UpgradeInfo {
    match within("socket opens", events.recv()).await {
        Some(Event::Opened(info)) => *info,
        other => panic!("expected an opened socket, got {other:?}"),
    }
}

#[tokio::test]
async fn extended_connect_is_advertised_and_accepted_with_200() {
    let (server, mut events) =
        echo_server(AcceptOptions::default(), ServerOptions::default()).await;
    let send = h2c(server.addr).await;
    assert!(
        send.is_extended_connect_protocol_enabled(),
        "SETTINGS_ENABLE_CONNECT_PROTOCOL = 1 (RFC 8441 section 3)"
    );
    let authority = server.addr.to_string();
    let (mut socket, headers) = open_socket(&send, &authority, "/ws", &[], None).await;
    // No HTTP/1.1 upgrade headers in a 200 to extended CONNECT (RFC 8441 section 5).
    for name in ["sec-websocket-accept", "upgrade", "connection"] {
        assert!(!headers.contains_key(name), "{name} in {headers:?}");
    }
    let info = opened(&mut events).await;
    assert_eq!(info.http_version(), http::Version::HTTP_2);
    assert_eq!(info.uri().path(), "/ws");
    within("send", socket.send(Message::text("over h2")))
        .await
        .unwrap();
    assert_eq!(
        within("echo", socket.recv()).await.unwrap(),
        Some(Message::text("over h2"))
    );
    within("close", socket.close(sockway::CloseCode::NORMAL, "done"))
        .await
        .unwrap();
    assert!(matches!(
        within("ended", events.recv()).await,
        Some(Event::Ended(Ok(())))
    ));
}

#[tokio::test]
async fn bad_extended_connects_get_the_right_status() {
    let (server, _events) = echo_server(AcceptOptions::default(), ServerOptions::default()).await;
    let send = h2c(server.addr).await;
    let authority = server.addr.to_string();

    // Missing or unsupported version: 400 with `sec-websocket-version: 13` (426 would need
    // `Upgrade`, which HTTP/2 forbids; RFC 6455 section 4.4, RFC 9113 section 8.2.2).
    for headers in [vec![], vec![("sec-websocket-version", "8")]] {
        let (response, _) = connect(&send, &authority, "/ws", Some("websocket"), &headers).await;
        assert_eq!(response.status(), 400, "{headers:?}");
        assert_eq!(response.headers()["sec-websocket-version"], "13");
        let body = read_body(response.into_body()).await;
        assert!(
            String::from_utf8_lossy(&body).contains("version 13"),
            "{body:?}"
        );
    }

    // Another `:protocol` on the WebSocket endpoint: 400 saying what is wrong.
    let version = [("sec-websocket-version", "13")];
    let (response, _) = connect(&send, &authority, "/ws", Some("connect-udp"), &version).await;
    assert_eq!(response.status(), 400);
    let body = read_body(response.into_body()).await;
    assert!(
        String::from_utf8_lossy(&body).contains(":protocol"),
        "{body:?}"
    );

    // A GET over HTTP/2 on the endpoint is no WebSocket request: it falls through.
    assert_eq!(get(&send, &authority, "/ws").await.0, 404);

    // A plain CONNECT (a tunnel request, no `:protocol`) has no path: it falls through to the
    // application, which here answers 404 (the echo app answers 405).
    let mut request = http::Request::builder()
        .method(http::Method::CONNECT)
        .uri(authority.as_str())
        .body(())
        .unwrap();
    *request.version_mut() = http::Version::HTTP_2;
    let mut sender = within("ready", send.clone().ready()).await.unwrap();
    let (response, _stream) = sender.send_request(request, false).unwrap();
    let response = within("plain CONNECT", response).await.unwrap();
    assert_eq!(response.status(), 404);

    // The connection survived every refusal.
    let (mut socket, _) = open_socket(&send, &authority, "/ws", &[], None).await;
    within("send", socket.send(Message::text("still here")))
        .await
        .unwrap();
    assert_eq!(
        within("echo", socket.recv()).await.unwrap(),
        Some(Message::text("still here"))
    );
}

#[tokio::test]
async fn origins_subprotocols_and_compression_apply_over_http2() {
    let options = AcceptOptions::default()
        .allowed_origins(["https://good.example"])
        .subprotocols(["superchat", "chat"])
        .compression(Some(DeflateConfig::default()));
    let (server, mut events) = echo_server(options, ServerOptions::default()).await;
    let send = h2c(server.addr).await;
    let authority = server.addr.to_string();

    let bad_origin = [
        ("sec-websocket-version", "13"),
        ("origin", "https://evil.example"),
    ];
    let (response, _) = connect(&send, &authority, "/ws", Some("websocket"), &bad_origin).await;
    assert_eq!(response.status(), 403);

    let offer = deflate::client_offer(&DeflateConfig::default()).to_header_value();
    let headers = [
        ("origin", "https://good.example"),
        ("sec-websocket-protocol", "chat, superchat"),
        ("sec-websocket-extensions", offer.as_str()),
    ];
    let (response, stream) = connect(
        &send,
        &authority,
        "/ws",
        Some("websocket"),
        &[&[("sec-websocket-version", "13")][..], &headers[..]].concat(),
    )
    .await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["sec-websocket-protocol"], "superchat");
    let accepted = parse_extensions(response.headers()).unwrap();
    let params = deflate::confirm_response(&accepted, &DeflateConfig::default())
        .unwrap()
        .expect("permessage-deflate agreed over HTTP/2");
    let info = opened(&mut events).await;
    assert_eq!(info.subprotocol(), Some("superchat"));
    assert!(info.compression().is_some());

    let io = H2Io::new(stream, response.into_body());
    let mut socket = sockway::WebSocket::from_negotiated(
        io,
        sockway::Role::Client,
        Default::default(),
        Default::default(),
        Some(params),
    );
    let text = "compressible ".repeat(1000);
    within("send", socket.send(Message::text(text.clone())))
        .await
        .unwrap();
    assert_eq!(
        within("echo", socket.recv()).await.unwrap(),
        Some(Message::text(text.clone()))
    );
    let stats = socket.stats();
    assert!(
        stats.bytes_received < text.len() as u64 / 4,
        "the echo came back compressed: {stats:?}"
    );
}

#[tokio::test]
async fn keep_alive_pings_reach_http2_sockets() {
    let options = AcceptOptions::default()
        .keep_alive_interval(Some(Duration::from_millis(200)))
        .keep_alive_timeout(Duration::from_millis(300));
    let (server, mut events) = echo_server(options, ServerOptions::default()).await;
    let send = h2c(server.addr).await;
    let authority = server.addr.to_string();
    let version = [("sec-websocket-version", "13")];
    let (response, stream) = connect(&send, &authority, "/ws", Some("websocket"), &version).await;
    assert_eq!(response.status(), 200);
    let mut io = H2Io::new(stream, response.into_body());
    opened(&mut events).await;
    // Say nothing: the server pings (opcode 0x9, RFC 6455 section 5.5.2), then gives up on
    // the silent peer and ends the socket.
    let mut first = [0u8; 2];
    within("ping", io.read_exact(&mut first)).await.unwrap();
    assert_eq!(first[0], 0x89, "a FIN ping frame");
    match within("keep-alive timeout", events.recv()).await {
        Some(Event::Ended(Err(e))) => {
            assert!(e.contains("keep-alive") || e.contains("pong"), "{e}")
        }
        other => panic!("expected the socket to fail on keep-alive, got {other:?}"),
    }
}

#[tokio::test]
async fn sockets_and_plain_requests_are_multiplexed_on_one_connection() {
    let (server, mut events) =
        echo_server(AcceptOptions::default(), ServerOptions::default()).await;
    let send = h2c(server.addr).await;
    let authority = server.addr.to_string();
    let mut sockets = Vec::new();
    for i in 0..20 {
        let (socket, _) = open_socket(&send, &authority, "/ws", &[], None).await;
        sockets.push(socket);
        if i % 5 == 0 {
            assert_eq!(get(&send, &authority, "/page").await.0, 404);
        }
    }
    let mut peers = std::collections::HashSet::new();
    for _ in 0..20 {
        peers.insert(opened(&mut events).await.peer_addr());
    }
    assert_eq!(
        peers.len(),
        1,
        "every socket came over the same TCP connection"
    );
    for (i, socket) in sockets.iter_mut().enumerate() {
        within("send", socket.send(Message::text(format!("socket {i}"))))
            .await
            .unwrap();
    }
    for (i, socket) in sockets.iter_mut().enumerate() {
        assert_eq!(
            within("echo", socket.recv()).await.unwrap(),
            Some(Message::text(format!("socket {i}")))
        );
    }
}

#[tokio::test]
async fn large_messages_on_several_streams_respect_flow_control() {
    const SIZE: usize = 8 << 20;
    let options = AcceptOptions::default().max_message_size(16 << 20);
    let (server, _events) = echo_server(options, ServerOptions::default()).await;
    let send = h2c(server.addr).await;
    let authority = server.addr.to_string();
    let mut tasks = Vec::new();
    for i in 0..4u8 {
        let (socket, _) = open_socket(&send, &authority, "/ws", &[], None).await;
        tasks.push(tokio::spawn(async move {
            let payload: Bytes = (0..SIZE).map(|j| (j as u8).wrapping_mul(31) ^ i).collect();
            let (mut reader, mut writer) = socket.split();
            let expected = payload.clone();
            let write = tokio::spawn(async move {
                writer.send(Message::Binary(payload)).await.unwrap();
                writer
            });
            let echoed = reader.recv().await.unwrap().expect("echo");
            assert_eq!(echoed, Message::Binary(expected), "stream {i}");
            write.await.unwrap();
        }));
    }
    for task in tasks {
        tokio::time::timeout(Duration::from_secs(60), task)
            .await
            .expect("8 MiB echoes on 4 streams finished")
            .unwrap();
    }
}

#[tokio::test]
async fn a_reset_stream_closes_only_its_socket() {
    let (server, mut events) =
        echo_server(AcceptOptions::default(), ServerOptions::default()).await;
    let send = h2c(server.addr).await;
    let authority = server.addr.to_string();
    let (mut first, _) = open_socket(&send, &authority, "/ws", &[], None).await;
    let version = [("sec-websocket-version", "13")];
    let (response, mut doomed) =
        connect(&send, &authority, "/ws", Some("websocket"), &version).await;
    assert_eq!(response.status(), 200);
    let (mut third, _) = open_socket(&send, &authority, "/ws", &[], None).await;
    for _ in 0..3 {
        opened(&mut events).await;
    }
    // RST_STREAM (CANCEL) on the second stream only (RFC 9113 section 6.4).
    doomed.send_reset(h2::Reason::CANCEL);
    match within("reset socket ends", events.recv()).await {
        Some(Event::Ended(_)) => {}
        other => panic!("expected the reset socket to end, got {other:?}"),
    }
    for (name, socket) in [("first", &mut first), ("third", &mut third)] {
        within("send", socket.send(Message::text(name)))
            .await
            .unwrap();
        assert_eq!(
            within("echo", socket.recv()).await.unwrap(),
            Some(Message::text(name))
        );
    }
    assert!(events.try_recv().is_err(), "no other socket ended");
}
