//! Long polling with POST: the 200 / 204 / 202 sequences of the reference server, batching,
//! the poll timeout, DELETE, the hub closing, and idle connections being removed.

mod http_support;

use std::time::Duration;

use http_support::{read_response, request, send_request, Event, TestServer, LIMIT};
use sockway_hub::link::TransportKind;
use sockway_hub::HttpOptions;

async fn poll(server: &TestServer, token: &str) -> http_support::HttpResponse {
    request(server.addr, "GET", &format!("/hub?id={token}"), &[], b"").await
}

async fn post(server: &TestServer, token: &str, body: &[u8]) -> u16 {
    request(server.addr, "POST", &format!("/hub?id={token}"), &[], body)
        .await
        .status
}

#[tokio::test]
async fn the_first_poll_returns_at_once_and_later_ones_bring_data() {
    let mut server = TestServer::start(HttpOptions::default()).await;
    let (id, token) = server.connection("").await;
    let first = poll(&server, &token).await;
    assert_eq!(first.status, 200);
    assert!(first.body.is_empty());
    assert_eq!(first.header("cache-control"), Some("no-cache, no-store"));
    let info = server.started().await;
    assert_eq!(info.connection_id, id);
    assert_eq!(info.transport, TransportKind::LongPolling);
    assert_eq!(post(&server, &token, b"hello").await, 200);
    let second = poll(&server, &token).await;
    assert_eq!(second.status, 200);
    assert_eq!(second.body, b"hello");
    assert_eq!(
        second.header("content-type"),
        Some("application/octet-stream")
    );
}

#[tokio::test]
async fn frames_queued_between_polls_come_back_together() {
    let mut server = TestServer::start(HttpOptions::default()).await;
    let (_, token) = server.connection("").await;
    assert_eq!(poll(&server, &token).await.status, 200);
    assert_eq!(post(&server, &token, b"burst").await, 200);
    loop {
        if let Event::Queued = server.event().await {
            break;
        }
    }
    let batch = poll(&server, &token).await;
    assert_eq!(batch.status, 200);
    assert_eq!(batch.body, b"123");
}

#[tokio::test]
async fn a_poll_with_nothing_to_send_ends_with_200_after_the_poll_timeout() {
    let server =
        TestServer::start(HttpOptions::default().poll_timeout(Duration::from_millis(200))).await;
    let (_, token) = server.connection("").await;
    assert_eq!(poll(&server, &token).await.status, 200);
    let idle = poll(&server, &token).await;
    assert_eq!(idle.status, 200);
    assert!(idle.body.is_empty());
}

#[tokio::test]
async fn a_new_poll_ends_the_waiting_one_with_204() {
    let server = TestServer::start(HttpOptions::default()).await;
    let (_, token) = server.connection("").await;
    assert_eq!(poll(&server, &token).await.status, 200);
    let target = format!("/hub?id={token}");
    let older = send_request(server.addr, "GET", &target, &[], b"").await;
    // Give the first poll time to arrive; if the second one overtakes it anyway, the roles
    // swap, and the assertion below holds either way.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let newer = send_request(server.addr, "GET", &target, &[], b"").await;
    let older = tokio::spawn(read_response(older));
    let newer = tokio::spawn(read_response(newer));
    let first_done = tokio::time::timeout(LIMIT, async {
        loop {
            if older.is_finished() || newer.is_finished() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    assert!(first_done.is_ok(), "neither poll ended");
    assert_eq!(post(&server, &token, b"data").await, 200);
    let mut statuses = [older.await.unwrap().status, newer.await.unwrap().status];
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 204]);
}

#[tokio::test]
async fn delete_answers_202_ends_the_waiting_poll_with_204_and_the_connection() {
    let mut server = TestServer::start(HttpOptions::default()).await;
    let (id, token) = server.connection("").await;
    assert_eq!(poll(&server, &token).await.status, 200);
    let waiting = send_request(server.addr, "GET", &format!("/hub?id={token}"), &[], b"").await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let delete = request(server.addr, "DELETE", &format!("/hub?id={token}"), &[], b"").await;
    assert_eq!(delete.status, 202);
    let ended = read_response(waiting).await.status;
    // 404 only if the DELETE overtook the poll on its way in.
    assert!(ended == 204 || ended == 404, "{ended}");
    server.gone(&id).await;
    assert_eq!(poll(&server, &token).await.status, 404);
    assert_eq!(post(&server, &token, b"x").await, 404);
    let again = request(server.addr, "DELETE", &format!("/hub?id={token}"), &[], b"").await;
    assert_eq!(again.status, 404);
    let no_id = request(server.addr, "DELETE", "/hub", &[], b"").await;
    assert_eq!(no_id.status, 400);
}

#[tokio::test]
async fn after_the_hub_closes_the_next_poll_gets_204() {
    let server = TestServer::start(HttpOptions::default()).await;
    let (_, token) = server.connection("").await;
    assert_eq!(poll(&server, &token).await.status, 200);
    assert_eq!(post(&server, &token, b"close").await, 200);
    assert_eq!(poll(&server, &token).await.status, 204);
    assert_eq!(poll(&server, &token).await.status, 404);
}

#[tokio::test]
async fn polls_without_an_id_or_for_an_unknown_one_are_refused() {
    let server = TestServer::start(HttpOptions::default()).await;
    assert_eq!(
        request(server.addr, "GET", "/hub", &[], b"").await.status,
        400
    );
    assert_eq!(poll(&server, "unknown").await.status, 404);
}

#[tokio::test]
async fn a_client_that_stops_polling_is_removed_after_the_disconnect_timeout() {
    let options = HttpOptions::default().disconnect_timeout(Duration::from_millis(300));
    let mut server = TestServer::start(options).await;
    let (id, token) = server.connection("").await;
    assert_eq!(poll(&server, &token).await.status, 200);
    server.gone(&id).await;
    assert_eq!(poll(&server, &token).await.status, 404);
}

#[tokio::test]
async fn a_negotiated_connection_never_started_is_removed() {
    let options = HttpOptions::default().disconnect_timeout(Duration::from_millis(300));
    let server = TestServer::start(options).await;
    let (_, token) = server.connection("").await;
    let removed = async {
        loop {
            tokio::time::sleep(Duration::from_millis(100)).await;
            // A POST does not start the connection (only a transport does), and 404 is gone.
            if post(&server, &token, b"x").await == 404 {
                return;
            }
        }
    };
    tokio::time::timeout(LIMIT, removed)
        .await
        .expect("never removed");
}

#[tokio::test]
async fn transports_not_offered_get_404() {
    let options = HttpOptions::default().transports(&[TransportKind::WebSockets]);
    let server = TestServer::start(options).await;
    let answer = server.negotiate("negotiateVersion=1").await;
    assert_eq!(answer["availableTransports"].as_array().unwrap().len(), 1);
    let token = answer["connectionToken"].as_str().unwrap();
    let refused = poll(&server, token).await;
    assert_eq!(refused.status, 404);
    assert_eq!(
        refused.body,
        b"LongPolling transport not supported by this end point type"
    );
}

#[tokio::test]
async fn a_post_batching_many_hub_messages_is_not_held_to_the_hub_message_limit() {
    let server = TestServer::start(HttpOptions::default()).await;
    let (_, token) = server.connection("").await;
    assert_eq!(poll(&server, &token).await.status, 200);
    let batch = vec![b'y'; 64 * 1024];
    assert_eq!(post(&server, &token, &batch).await, 200);
    assert_eq!(poll(&server, &token).await.body, batch);
}

#[tokio::test]
async fn a_client_that_goes_away_mid_poll_is_removed_after_the_disconnect_timeout() {
    let options = HttpOptions::default()
        .disconnect_timeout(Duration::from_millis(300))
        .poll_timeout(Duration::from_secs(600));
    let mut server = TestServer::start(options).await;
    let (id, token) = server.connection("").await;
    assert_eq!(poll(&server, &token).await.status, 200);
    let waiting = send_request(server.addr, "GET", &format!("/hub?id={token}"), &[], b"").await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    drop(waiting);
    server.gone(&id).await;
}
