//! Mounting the hub in an axum `Router` next to other routes (feature `axum`): negotiate,
//! long polling and a WebSocket through the router.

#![cfg(feature = "axum")]

mod http_support;

use axum::routing::get;
use axum::Router;
use http_support::{request, ws_url, Echo, LIMIT};
use sockway::server::{Server, ServerOptions};
use sockway::Message;
use sockway_hub::{HttpOptions, HubService};

#[tokio::test]
async fn the_hub_serves_its_routes_inside_a_router() {
    let (events, _events) = tokio::sync::mpsc::unbounded_channel();
    let hub = HubService::new("/hub", Echo(events), HttpOptions::default());
    let app = Router::new()
        .route("/", get(|| async { "the page" }))
        .route_service("/hub", hub.clone())
        .route_service("/hub/negotiate", hub);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = Server::new(ServerOptions::default().handle_signals(false));
    let stop = server.shutdown_handle();
    tokio::spawn(server.serve(listener, app));

    assert_eq!(request(addr, "GET", "/", &[], b"").await.body, b"the page");
    let negotiate = request(addr, "POST", "/hub/negotiate?negotiateVersion=1", &[], b"").await;
    assert_eq!(negotiate.status, 200);
    let answer: serde_json::Value = serde_json::from_slice(&negotiate.body).unwrap();
    let token = answer["connectionToken"].as_str().unwrap();
    let poll = request(addr, "GET", &format!("/hub?id={token}"), &[], b"").await;
    assert_eq!(poll.status, 200);
    let post = request(addr, "POST", &format!("/hub?id={token}"), &[], b"via axum").await;
    assert_eq!(post.status, 200);
    let poll = request(addr, "GET", &format!("/hub?id={token}"), &[], b"").await;
    assert_eq!(poll.body, b"via axum");

    let connect = sockway::client::ClientBuilder::new(ws_url(addr, "")).connect_message();
    let mut socket = tokio::time::timeout(LIMIT, connect).await.unwrap().unwrap();
    socket.send_text("socket").await.unwrap();
    let echoed = tokio::time::timeout(LIMIT, socket.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(echoed, Some(Message::text("socket")));
    stop.shutdown();
}
