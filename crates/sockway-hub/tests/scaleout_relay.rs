//! No sticky sessions for Server-Sent Events and long polling: three hub servers sharing one
//! Redis, and one connection whose HTTP requests each land on another server. The transport
//! runs where its first request (the event stream, the first poll) landed; every `POST`,
//! poll and `DELETE` that reaches another server is relayed to it through the backplane, and
//! the client sees the answers it would get from one server. A holder that does not answer
//! in time is a clear 503, an answer over the relay's size limit a clear 502.

mod http_support;
mod scaleout_support;

use std::time::Duration;

use http_support::{read_until, request, send_request};
use scaleout_support::{fleet, negotiate, HubServer, RedisServer, WAIT};
use sockway_hub::backplane::{RedisOptions, ScaleOutOptions};
use sockway_hub::token::TokenKey;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const HANDSHAKE: &[u8] = b"{\"protocol\":\"json\",\"version\":1}\x1e";
const WHO_AM_I: &[u8] =
    b"{\"type\":1,\"invocationId\":\"1\",\"target\":\"WhoAmI\",\"arguments\":[]}\x1e";

fn options() -> RedisOptions {
    RedisOptions::new("redis://unused/")
}

async fn call(
    server: &HubServer,
    method: &str,
    token: &str,
    body: &[u8],
) -> http_support::HttpResponse {
    request(server.addr, method, &format!("/hub?id={token}"), &[], body).await
}

/// Polls until the answer carries data (a poll may end empty when the one before it is still
/// being answered), bounded by [`WAIT`].
async fn poll_data(server: &HubServer, token: &str) -> Vec<u8> {
    let wait = async {
        loop {
            let poll = call(server, "GET", token, b"").await;
            assert_eq!(
                poll.status,
                200,
                "{:?}",
                String::from_utf8_lossy(&poll.body)
            );
            if !poll.body.is_empty() {
                return poll.body;
            }
        }
    };
    tokio::time::timeout(WAIT, wait)
        .await
        .expect("a poll brought data in time")
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    String::from_utf8_lossy(haystack).contains(needle)
}

/// Asserts that `response` is a refusal with `status` whose text says `reason`.
fn assert_refused(response: &http_support::HttpResponse, status: u16, reason: &str) {
    let body = String::from_utf8_lossy(&response.body);
    assert_eq!(response.status, status, "{body}");
    assert!(body.contains(reason), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_polling_requests_reach_the_server_holding_the_connection() {
    let redis = RedisServer::start().await;
    let servers = fleet(&redis, 3, options()).await;
    let (id, token) = negotiate(&servers[0]).await;

    let first = call(&servers[1], "GET", &token, b"").await;
    assert_eq!(first.status, 200);
    assert!(first.body.is_empty());
    assert_eq!(
        call(&servers[2], "POST", &token, HANDSHAKE).await.status,
        200
    );
    assert_eq!(poll_data(&servers[0], &token).await, b"{}\x1e");

    assert_eq!(
        call(&servers[0], "POST", &token, WHO_AM_I).await.status,
        200
    );
    let completion = poll_data(&servers[2], &token).await;
    assert!(contains(&completion, "\"invocationId\":\"1\""));
    assert!(contains(&completion, &format!("\"result\":\"{id}\"")));

    let relayed = servers[0].manager.relay_stats();
    assert!(relayed.answered >= 2, "{relayed:?}");
    assert_eq!(relayed.failed, 0);
    assert!(servers[1].manager.relay_stats().served >= 4);
    let metrics = servers[0].manager.render_prometheus();
    assert!(metrics.contains("sockway_hub_relay_answered_total"));
    assert!(metrics.contains("sockway_hub_backplane_published_total"));

    assert_eq!(call(&servers[2], "DELETE", &token, b"").await.status, 202);
    let late = call(&servers[0], "GET", &token, b"").await;
    assert_eq!(
        late.status, 404,
        "a poll after DELETE must not start it again"
    );
    let on_holder = call(&servers[1], "POST", &token, WHO_AM_I).await;
    assert_eq!(
        on_holder.status, 404,
        "the server it ended on answers itself"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_event_stream_runs_where_it_landed_and_posts_elsewhere_are_relayed_to_it() {
    let redis = RedisServer::start().await;
    let servers = fleet(&redis, 3, options()).await;
    let (id, token) = negotiate(&servers[0]).await;

    let mut stream = send_request(
        servers[1].addr,
        "GET",
        &format!("/hub?id={token}"),
        &[("Accept", "text/event-stream")],
        b"",
    )
    .await;
    let mut seen = Vec::new();
    read_until(&mut stream, &mut seen, b":\r\n").await;
    assert!(contains(&seen, "text/event-stream"));

    assert_eq!(
        call(&servers[2], "POST", &token, HANDSHAKE).await.status,
        200
    );
    read_until(&mut stream, &mut seen, b"data: {}\x1e\r\n\r\n").await;
    assert_eq!(
        call(&servers[0], "POST", &token, WHO_AM_I).await.status,
        200
    );
    read_until(
        &mut stream,
        &mut seen,
        format!("\"result\":\"{id}\"").as_bytes(),
    )
    .await;

    let unknown = call(&servers[2], "POST", "not-a-token", WHO_AM_I).await;
    assert_eq!(unknown.status, 404);
    drop(stream);
}

/// Subscribes a bare Redis connection to `channel`, so a publish there reaches a subscriber
/// that never answers.
async fn silent_subscriber(redis: &RedisServer, channel: &str) -> tokio::net::TcpStream {
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", redis.port))
        .await
        .expect("Redis accepts");
    let command = format!(
        "*2\r\n$9\r\nSUBSCRIBE\r\n${}\r\n{channel}\r\n",
        channel.len()
    );
    stream.write_all(command.as_bytes()).await.unwrap();
    let mut seen = Vec::new();
    let confirmed = async {
        while !contains(&seen, channel) {
            let mut buf = [0u8; 512];
            let n = stream.read(&mut buf).await.unwrap();
            assert!(n > 0, "Redis closed the subscription");
            seen.extend_from_slice(&buf[..n]);
        }
    };
    tokio::time::timeout(WAIT, confirmed)
        .await
        .expect("Redis confirmed the subscription");
    stream
}

/// One server with `scale`, a connection negotiated on it but not started, and a silent
/// subscriber on the connection's channel posing as the server holding it.
async fn silently_held(
    redis: &RedisServer,
    scale: ScaleOutOptions,
) -> (HubServer, String, tokio::net::TcpStream) {
    let server = HubServer::start_with(&redis.url(), &TokenKey::random(), options(), scale).await;
    server.connected().await;
    let (id, token) = negotiate(&server).await;
    let silent = silent_subscriber(redis, &format!("sockway-hub:connection:{id}")).await;
    (server, token, silent)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_holder_that_does_not_answer_in_time_is_a_clear_503() {
    let redis = RedisServer::start().await;
    let scale = ScaleOutOptions {
        relay_timeout: Duration::from_millis(300),
        ..ScaleOutOptions::default()
    };
    let (server, token, _silent) = silently_held(&redis, scale).await;

    let post = call(&server, "POST", &token, HANDSHAKE).await;
    assert_refused(&post, 503, "no answer from the server holding it");
    let relayed = server.manager.relay_stats();
    assert_eq!((relayed.forwarded, relayed.failed), (1, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_over_the_relay_limit_is_a_clear_502() {
    let redis = RedisServer::start().await;
    let key = TokenKey::random();
    let tight = ScaleOutOptions {
        max_relayed_bytes: 8,
        ..ScaleOutOptions::default()
    };
    let holder = HubServer::start_with(&redis.url(), &key, options(), tight).await;
    let other = HubServer::start(&redis.url(), &key, options()).await;
    holder.connected().await;
    other.connected().await;
    let (_, token) = negotiate(&holder).await;
    assert_eq!(call(&holder, "GET", &token, b"").await.status, 200);
    assert_eq!(call(&other, "POST", &token, HANDSHAKE).await.status, 200);
    assert_eq!(poll_data(&holder, &token).await, b"{}\x1e");

    assert_eq!(call(&other, "POST", &token, WHO_AM_I).await.status, 200);
    let poll = call(&other, "GET", &token, b"").await;
    assert_refused(&poll, 502, "over the relay limit of 8 bytes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relayed_poll_ends_with_503_once_its_holder_is_gone() {
    let redis = RedisServer::start().await;
    let scale = ScaleOutOptions {
        relay_probe_interval: Duration::from_millis(100),
        ..ScaleOutOptions::default()
    };
    let (server, token, silent) = silently_held(&redis, scale).await;

    let addr = server.addr;
    let target = format!("/hub?id={token}");
    let poll = tokio::spawn(async move { request(addr, "GET", &target, &[], b"").await });
    let relayed = async {
        while server.manager.relay_stats().forwarded == 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(WAIT, relayed)
        .await
        .expect("the poll was relayed in time");
    drop(silent);

    let poll = tokio::time::timeout(WAIT, poll)
        .await
        .expect("the poll ended well before the poll timeout")
        .expect("the poll task");
    assert_refused(&poll, 503, "the server holding it is gone");
}
