//! `HttpOptions::max_poll_bytes`: a poll carries queued frames up to the bound (at least
//! one), and the rest waits, in order, for the next poll.

mod http_support;

use http_support::{request, Event, TestServer};
use sockway_hub::HttpOptions;

#[tokio::test]
async fn a_poll_stops_at_the_byte_bound_and_the_next_one_takes_the_rest() {
    let mut server = TestServer::start(HttpOptions::default().max_poll_bytes(2)).await;
    let (_, token) = server.connection("").await;
    let target = format!("/hub?id={token}");
    assert_eq!(
        request(server.addr, "GET", &target, &[], b"").await.status,
        200
    );
    let post = request(server.addr, "POST", &target, &[], b"burst").await;
    assert_eq!(post.status, 200);
    loop {
        if let Event::Queued = server.event().await {
            break;
        }
    }
    let first = request(server.addr, "GET", &target, &[], b"").await;
    assert_eq!(first.status, 200);
    assert_eq!(first.body, b"12");
    let second = request(server.addr, "GET", &target, &[], b"").await;
    assert_eq!(second.status, 200);
    assert_eq!(second.body, b"3");
}
