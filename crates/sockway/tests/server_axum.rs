//! The axum extractor (feature `axum`) on an axum `Router` served by the runner: echo,
//! refusals as responses with a body, per-route options, and HTTP/2 on an `any` route.
#![cfg(feature = "axum")]

mod server_support;

use axum::response::IntoResponse;
use axum::routing::any;
use axum::{Extension, Router};
use bytes::Bytes;
use http::{Method, Request, StatusCode, Version};
use http_body_util::Empty;
use hyper_util::rt::{TokioExecutor, TokioIo};
use server_support::*;
use sockway::server::axum::WebSocketUpgrade;
use sockway::server::{AcceptOptions, ServerOptions};
use sockway::{Message, Role, WebSocket, WebSocketConfig};

async fn echo(ws: WebSocketUpgrade) -> impl IntoResponse {
    ws.on_upgrade(|mut socket| async move {
        while let Ok(Some(message)) = socket.recv().await {
            if socket.send(message).await.is_err() {
                break;
            }
        }
    })
}

async fn chat(ws: WebSocketUpgrade) -> impl IntoResponse {
    let origin_ok = ws.info().origin().is_none();
    ws.protocols(["chat"])
        .allowed_origins(["https://chat.example"])
        .on_upgrade(move |mut socket| async move {
            let _ = socket
                .send(Message::text(format!("no origin: {origin_ok}")))
                .await;
        })
}

async fn app_server() -> TestServer {
    let app = Router::new()
        .route("/ws", any(echo))
        .route("/chat", any(chat))
        .layer(Extension(
            AcceptOptions::default().allowed_origins(["https://app.example"]),
        ));
    TestServer::start(ServerOptions::default().http2(true), app).await
}

#[tokio::test]
async fn the_extractor_accepts_and_echoes() {
    let server = app_server().await;
    let mut client = open_client(&server, "/ws").await;
    within("send", client.send(Message::text("via axum")))
        .await
        .unwrap();
    assert_eq!(
        within("recv", client.recv()).await.unwrap(),
        Some(Message::text("via axum"))
    );
}

#[tokio::test]
async fn refusals_are_responses_with_a_body() {
    let server = app_server().await;
    let plain = request(&server, "GET /ws HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert_eq!(plain.status, 400);
    assert!(!plain.body.is_empty());

    // Options from the `Extension` apply...
    let refused = request(
        &server,
        &handshake("/ws", &[("Origin", "https://evil.example")]),
    )
    .await;
    assert_eq!(refused.status, 403);
    assert!(refused.body.contains("not allowed"), "{}", refused.body);
    open_raw(&server, "/ws", &[("Origin", "https://app.example")]).await;

    // ...and a handler can override them.
    let refused = request(
        &server,
        &handshake("/chat", &[("Origin", "https://app.example")]),
    )
    .await;
    assert_eq!(refused.status, 403);
    let mut stream = server.connect().await;
    let offer = handshake(
        "/chat",
        &[
            ("Origin", "https://chat.example"),
            ("Sec-WebSocket-Protocol", "chat"),
        ],
    );
    tokio::io::AsyncWriteExt::write_all(&mut stream, offer.as_bytes())
        .await
        .unwrap();
    let mut buf = bytes::BytesMut::new();
    let response = read_response(&mut stream, &mut buf).await;
    assert_eq!(response.status, 101);
    assert_eq!(response.header("sec-websocket-protocol"), Some("chat"));
    let frame = within("frame", read_frame(&mut stream, &mut buf))
        .await
        .unwrap();
    assert_eq!(frame.payload, b"no origin: false");
}

#[tokio::test]
async fn an_any_route_also_takes_http2_extended_connect() {
    let server = app_server().await;
    let tcp = server.connect().await;
    let (mut sender, connection) = hyper::client::conn::http2::Builder::new(TokioExecutor::new())
        .handshake::<_, Empty<Bytes>>(TokioIo::new(tcp))
        .await
        .expect("h2 handshake");
    tokio::spawn(connection);
    let response = within("extended CONNECT", async {
        loop {
            sender.ready().await.expect("ready");
            let request = Request::builder()
                .method(Method::CONNECT)
                .version(Version::HTTP_2)
                .uri(format!("http://{}/ws", server.addr))
                .header("sec-websocket-version", "13")
                .extension(hyper::ext::Protocol::from_static("websocket"))
                .body(Empty::new())
                .unwrap();
            match sender.send_request(request).await {
                Ok(response) => break response,
                Err(_) => tokio::time::sleep(std::time::Duration::from_millis(10)).await,
            }
        }
    })
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let upgraded = within("upgrade", hyper::upgrade::on(response))
        .await
        .unwrap();
    let mut socket = WebSocket::from_raw(
        TokioIo::new(upgraded),
        Role::Client,
        WebSocketConfig::default(),
        Default::default(),
    );
    within("send", socket.send(Message::text("h2 via axum")))
        .await
        .unwrap();
    assert_eq!(
        within("recv", socket.recv()).await.unwrap(),
        Some(Message::text("h2 via axum"))
    );
}
