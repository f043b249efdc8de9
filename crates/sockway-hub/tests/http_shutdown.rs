//! Ending every connection when the server stops (ASP.NET Core's `CloseConnections` on
//! application stopping): event streams end, waiting polls get 204, sockets close, and no
//! new connection is taken.

mod http_support;

use std::time::Duration;

use http_support::{
    read_until, request, send_request, try_read_response, ws_url, TestServer, LIMIT,
};
use sockway::client::{ClientBuilder, ClientError};
use sockway_hub::HttpOptions;
use tokio::io::AsyncReadExt;

#[tokio::test]
async fn shutdown_ends_event_streams() {
    let mut server = TestServer::start(HttpOptions::default()).await;
    let (id, token) = server.connection("").await;
    let mut stream = send_request(
        server.addr,
        "GET",
        &format!("/hub?id={token}"),
        &[("Accept", "text/event-stream")],
        b"",
    )
    .await;
    let mut seen = Vec::new();
    read_until(&mut stream, &mut seen, b":\r\n").await;
    server.stop.shutdown();
    let ended = tokio::time::timeout(LIMIT, stream.read_to_end(&mut seen)).await;
    assert!(ended.is_ok(), "the event stream did not end");
    assert!(
        seen.ends_with(b"0\r\n\r\n"),
        "the stream ended cleanly: {seen:?}"
    );
    server.gone(&id).await;
}

#[tokio::test]
async fn shutdown_answers_a_waiting_poll_with_204() {
    // The poll must have reached the server before the shutdown; if it had not (a very
    // loaded machine), the run proves nothing and is tried again with a new server.
    for _ in 0..5 {
        let mut server = TestServer::start(HttpOptions::default()).await;
        let (id, token) = server.connection("").await;
        let first = request(server.addr, "GET", &format!("/hub?id={token}"), &[], b"").await;
        assert_eq!(first.status, 200);
        let waiting = send_request(server.addr, "GET", &format!("/hub?id={token}"), &[], b"").await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        server.stop.shutdown();
        if let Some(answered) = try_read_response(waiting).await {
            if answered.status != 404 {
                assert_eq!(answered.status, 204);
                server.gone(&id).await;
                return;
            }
        }
    }
    panic!("the poll never reached the server before the shutdown");
}

#[tokio::test]
async fn after_close_all_no_connection_is_taken() {
    let server = TestServer::start(HttpOptions::default()).await;
    server.hub.close_all();
    let answer = server.negotiate("negotiateVersion=1").await;
    assert_eq!(answer["error"], "The server is shutting down.");
    let socket = ClientBuilder::new(ws_url(server.addr, "")).connect_message();
    match tokio::time::timeout(LIMIT, socket).await.unwrap() {
        Err(ClientError::Rejected { status, .. }) => assert_eq!(status.as_u16(), 503),
        other => panic!("expected 503, got {:?}", other.err()),
    }
}
