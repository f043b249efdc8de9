//! Accepting WebSockets through the tower layer over real loopback sockets: the handshake
//! checks (origins, subprotocols, method and version), what falls through to the app, and
//! the per-route limits.

mod server_support;

use std::time::Duration;

use bytes::BytesMut;
use http::{Method, Request, Version};
use server_support::*;
use sockway::server::{
    is_websocket_request, AcceptOptions, Layer, PendingWebSocket, ServerOptions, ServerWebSocket,
    UpgradeInfo, WebSocketLayer,
};
use sockway::Message;
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;

/// Echoes whole messages until the peer closes.
async fn echo(mut socket: ServerWebSocket, _info: UpgradeInfo) {
    while let Ok(Some(message)) = socket.recv().await {
        if socket.send(message).await.is_err() {
            break;
        }
    }
}

async fn echo_server(options: AcceptOptions) -> TestServer {
    let app = WebSocketLayer::new(echo)
        .path("/ws")
        .options(options)
        .layer(not_found());
    TestServer::start(ServerOptions::default(), app).await
}

#[test]
fn accepted_sockets_can_move_to_any_task() {
    fn assert_send<T: Send + 'static>() {}
    assert_send::<ServerWebSocket>();
    assert_send::<PendingWebSocket>();
    assert_send::<UpgradeInfo>();
}

#[test]
fn websocket_requests_are_recognised_by_their_upgrade_marks_not_the_method() {
    let upgrade = Request::get("/ws")
        .header("upgrade", "WebSocket")
        .body(())
        .unwrap();
    assert!(is_websocket_request(&upgrade));
    let plain = Request::get("/ws").body(()).unwrap();
    assert!(!is_websocket_request(&plain));
    // A broken attempt still counts, so that `accept` can say what is wrong with it.
    let post = Request::post("/ws")
        .header("upgrade", "websocket")
        .body(())
        .unwrap();
    assert!(is_websocket_request(&post));
    let connect = Request::builder()
        .method(Method::CONNECT)
        .version(Version::HTTP_2)
        .extension(hyper::ext::Protocol::from_static("websocket"))
        .body(())
        .unwrap();
    assert!(is_websocket_request(&connect));
    let plain_connect = Request::builder()
        .method(Method::CONNECT)
        .version(Version::HTTP_2)
        .body(())
        .unwrap();
    assert!(!is_websocket_request(&plain_connect));
}

#[tokio::test]
async fn allowed_origins_admit_listed_and_absent_origins_and_refuse_others_with_403() {
    let server =
        echo_server(AcceptOptions::default().allowed_origins(["https://App.example"])).await;

    // Listed (scheme, host and port match ignoring case and the default port).
    let (mut stream, mut buf) =
        open_raw(&server, "/ws", &[("Origin", "https://app.EXAMPLE:443")]).await;
    write_frame(&mut stream, 0x1, b"hi", true).await;
    let frame = within("echo", read_frame(&mut stream, &mut buf))
        .await
        .unwrap();
    assert_eq!(frame.payload, b"hi");

    // Absent: a non-browser client.
    open_raw(&server, "/ws", &[]).await;

    // Another origin, and the same host over another scheme or port.
    for origin in [
        "https://evil.example",
        "http://app.example",
        "https://app.example:8443",
    ] {
        let response = request(&server, &handshake("/ws", &[("Origin", origin)])).await;
        assert_eq!(response.status, 403, "{origin}");
        assert!(response.body.contains("not allowed"), "{}", response.body);
        assert!(response.body.contains(origin), "{}", response.body);
    }
}

#[tokio::test]
async fn the_default_allows_every_origin() {
    let server = echo_server(AcceptOptions::default()).await;
    open_raw(&server, "/ws", &[("Origin", "https://anyone.example")]).await;
}

#[tokio::test]
async fn plain_requests_fall_through_and_broken_handshakes_are_told_why() {
    let server = echo_server(AcceptOptions::default()).await;

    let plain = request(&server, "GET /ws HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert_eq!(
        plain.status, 404,
        "the inner service answers plain requests"
    );
    assert_eq!(plain.body, "no such page\n");

    let no_key = "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                  Sec-WebSocket-Version: 13\r\n\r\n";
    let response = request(&server, no_key).await;
    assert_eq!(response.status, 400);
    assert!(
        response.body.contains("Sec-WebSocket-Key"),
        "{}",
        response.body
    );

    let post = handshake("/ws", &[]).replacen("GET", "POST", 1);
    let response = request(&server, &post).await;
    assert_eq!(response.status, 405);
    assert_eq!(response.header("allow"), Some("GET"));
    assert!(!response.body.is_empty());

    let old = handshake("/ws", &[]).replace("Version: 13", "Version: 8");
    let response = request(&server, &old).await;
    assert_eq!(response.status, 426);
    assert_eq!(response.header("sec-websocket-version"), Some("13"));
    assert!(!response.body.is_empty());

    // WebSocket requests on other paths are not the layer's.
    let elsewhere = request(&server, &handshake("/other", &[])).await;
    assert_eq!(elsewhere.status, 404);
}

#[tokio::test]
async fn the_first_supported_subprotocol_in_server_order_is_chosen() {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let app = WebSocketLayer::new(move |_socket: ServerWebSocket, info: UpgradeInfo| {
        let tx = tx.clone();
        async move {
            let _ = tx.send(info);
        }
    })
    .options(AcceptOptions::default().subprotocols(["chat", "superchat"]))
    .layer(not_found());
    let server = TestServer::start(ServerOptions::default(), app).await;

    let mut stream = server.connect().await;
    let offer = handshake(
        "/chat?room=1",
        &[("Sec-WebSocket-Protocol", "superchat, chat")],
    );
    stream.write_all(offer.as_bytes()).await.unwrap();
    let response = read_response(&mut stream, &mut BytesMut::new()).await;
    assert_eq!(response.status, 101);
    assert_eq!(response.header("sec-websocket-protocol"), Some("chat"));

    let info = within("handler", rx.recv()).await.unwrap();
    assert_eq!(info.subprotocol(), Some("chat"));
    assert_eq!(info.offered_subprotocols(), ["superchat", "chat"]);
    assert_eq!(info.uri().path(), "/chat");
    assert_eq!(info.uri().query(), Some("room=1"));
    assert_eq!(info.http_version(), Version::HTTP_11);
    assert_eq!(info.peer_addr(), Some(stream.local_addr().unwrap()));

    // No common subprotocol: the socket opens without one.
    let (mut stream, _) = open_raw(&server, "/", &[("Sec-WebSocket-Protocol", "mqtt")]).await;
    let info = within("handler", rx.recv()).await.unwrap();
    assert_eq!(info.subprotocol(), None);
    stream.shutdown().await.unwrap();
}

#[tokio::test]
async fn messages_over_the_size_limit_close_the_socket_with_1009() {
    let server = echo_server(AcceptOptions::default().max_message_size(1024)).await;
    let (mut stream, mut buf) = open_raw(&server, "/ws", &[]).await;
    write_frame(&mut stream, 0x2, &[7; 1024], true).await;
    let echoed = within("echo", read_frame(&mut stream, &mut buf))
        .await
        .unwrap();
    assert_eq!(echoed.payload.len(), 1024);
    write_frame(&mut stream, 0x2, &[7; 1025], true).await;
    let close = within("close", read_frame(&mut stream, &mut buf))
        .await
        .unwrap();
    assert_eq!(close.close_code(), Some(1009), "{close:?}");
}

#[tokio::test]
async fn the_receive_buffer_size_reaches_the_socket() {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let app = WebSocketLayer::new(move |socket: ServerWebSocket, _info: UpgradeInfo| {
        let tx = tx.clone();
        async move {
            let _ = tx.send(socket.config().clone());
        }
    })
    .options(
        AcceptOptions::default()
            .receive_buffer_size(16 * 1024)
            .keep_alive_interval(Some(Duration::from_secs(7)))
            .keep_alive_timeout(Duration::from_secs(3)),
    )
    .layer(not_found());
    let server = TestServer::start(ServerOptions::default(), app).await;
    let _client = open_client(&server, "/ws").await;
    let config = within("handler", rx.recv()).await.unwrap();
    assert_eq!(config.read_buffer_size, 16 * 1024);
    let keep_alive = config.keep_alive.expect("keep-alive on");
    assert_eq!(keep_alive.interval, Duration::from_secs(7));
    assert_eq!(keep_alive.timeout, Duration::from_secs(3));
}

#[test]
fn accept_options_default_to_asp_net_core_values() {
    let options = AcceptOptions::default();
    let keep_alive = options.socket.keep_alive.expect("keep-alive on by default");
    assert_eq!(keep_alive.interval, Duration::from_secs(120));
    assert_eq!(keep_alive.timeout, Duration::from_secs(30));
    assert_eq!(options.socket.read_buffer_size, 4 * 1024);
    assert!(options.origins.allows(Some("https://anyone.example")));
    assert!(options.subprotocols.is_empty());
    assert!(AcceptOptions::default()
        .keep_alive_interval(Some(Duration::ZERO))
        .socket
        .keep_alive
        .is_none());
}

#[tokio::test]
async fn a_client_role_socket_round_trips_through_the_layer() {
    let server = echo_server(AcceptOptions::default()).await;
    let mut client = open_client(&server, "/ws").await;
    within("send", client.send(Message::text("héllo")))
        .await
        .unwrap();
    let echoed = within("recv", client.recv()).await.unwrap().unwrap();
    assert_eq!(echoed, Message::text("héllo"));
    let info = within("close", client.close(sockway::CloseCode::NORMAL, "bye"))
        .await
        .unwrap();
    assert_eq!(info.code, sockway::CloseCode::NORMAL);
}
