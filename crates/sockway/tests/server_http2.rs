//! The same route serves HTTP/1.1 upgrades and HTTP/2 extended CONNECT (RFC 8441) when the
//! runner has HTTP/2 switched on; the application code does not change.

mod server_support;

use bytes::Bytes;
use http::{Method, Request, StatusCode, Version};
use http_body_util::Empty;
use hyper_util::rt::{TokioExecutor, TokioIo};
use server_support::*;
use sockway::server::{Layer, ServerOptions, ServerWebSocket, UpgradeInfo, WebSocketLayer};
use sockway::{CloseCode, Message, Role, WebSocket, WebSocketConfig};
use tokio::sync::mpsc;

/// Opens a WebSocket over HTTP/2 (prior knowledge) with an extended CONNECT.
async fn open_h2(server: &TestServer, path: &str) -> WebSocket<TokioIo<hyper::upgrade::Upgraded>> {
    let tcp = server.connect().await;
    let (mut sender, connection) = hyper::client::conn::http2::Builder::new(TokioExecutor::new())
        .handshake::<_, Empty<Bytes>>(TokioIo::new(tcp))
        .await
        .expect("h2 handshake");
    tokio::spawn(connection);
    // The server's SETTINGS (with ENABLE_CONNECT_PROTOCOL) must arrive before an extended
    // CONNECT may be sent; retry briefly until they have.
    let response = within("extended CONNECT", async {
        loop {
            sender.ready().await.expect("h2 ready");
            let request = Request::builder()
                .method(Method::CONNECT)
                .version(Version::HTTP_2)
                .uri(format!("http://{}{path}", server.addr))
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
        .expect("upgraded stream");
    WebSocket::from_raw(
        TokioIo::new(upgraded),
        Role::Client,
        WebSocketConfig::default(),
        Default::default(),
    )
}

#[tokio::test]
async fn one_route_serves_http1_upgrades_and_http2_extended_connect() {
    let (versions_tx, mut versions) = mpsc::unbounded_channel();
    let app = WebSocketLayer::new(move |mut socket: ServerWebSocket, info: UpgradeInfo| {
        let versions = versions_tx.clone();
        async move {
            let _ = versions.send(info.http_version());
            while let Ok(Some(message)) = socket.recv().await {
                if socket.send(message).await.is_err() {
                    break;
                }
            }
        }
    })
    .path("/ws")
    .layer(not_found());
    let server = TestServer::start(ServerOptions::default().http2(true), app).await;

    let mut h2 = open_h2(&server, "/ws").await;
    assert_eq!(
        within("version", versions.recv()).await,
        Some(Version::HTTP_2)
    );
    within("send", h2.send(Message::text("over h2")))
        .await
        .unwrap();
    assert_eq!(
        within("recv", h2.recv()).await.unwrap(),
        Some(Message::text("over h2"))
    );

    let mut h1 = open_client(&server, "/ws").await;
    assert_eq!(
        within("version", versions.recv()).await,
        Some(Version::HTTP_11)
    );
    within("send", h1.send(Message::text("over h1")))
        .await
        .unwrap();
    assert_eq!(
        within("recv", h1.recv()).await.unwrap(),
        Some(Message::text("over h1"))
    );

    // Shutdown reaches the HTTP/2 socket too.
    server.handle.shutdown();
    assert_eq!(within("close", h2.recv()).await.unwrap(), None);
    assert_eq!(h2.close_info().unwrap().code, CloseCode::GOING_AWAY);
    assert_eq!(within("close", h1.recv()).await.unwrap(), None);
    assert_eq!(h1.close_info().unwrap().code, CloseCode::GOING_AWAY);
    drop((h1, h2));
    within("serve returns", server.task).await.unwrap();
}
