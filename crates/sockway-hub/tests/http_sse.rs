//! Server-Sent Events with POST: the preamble and event framing, the refusals (400, 404,
//! 409, 413), and the end of the stream from either side.

mod http_support;

use http_support::{read_until, request, send_request, TestServer, LIMIT};
use sockway_hub::link::TransportKind;
use sockway_hub::HttpOptions;
use tokio::io::AsyncReadExt;

const SSE: (&str, &str) = ("Accept", "text/event-stream");

#[tokio::test]
async fn events_carry_each_line_of_a_frame_and_posts_carry_data_in() {
    let mut server = TestServer::start(HttpOptions::default()).await;
    let (id, token) = server.connection("").await;
    let mut stream =
        send_request(server.addr, "GET", &format!("/hub?id={token}"), &[SSE], b"").await;
    let mut seen = Vec::new();
    read_until(&mut stream, &mut seen, b":\r\n").await;
    let head = String::from_utf8_lossy(&seen).to_lowercase();
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert!(head.contains("content-type: text/event-stream"), "{head}");
    assert!(head.contains("cache-control: no-cache"), "{head}");
    let info = server.started().await;
    assert_eq!(info.connection_id, id);
    assert_eq!(info.transport, TransportKind::ServerSentEvents);

    let post = request(
        server.addr,
        "POST",
        &format!("/hub?id={token}"),
        &[],
        b"one\r\ntwo\nthree",
    )
    .await;
    assert_eq!(post.status, 200);
    read_until(
        &mut stream,
        &mut seen,
        b"data: one\r\ndata: two\r\ndata: three\r\n\r\n",
    )
    .await;
    let post = request(
        server.addr,
        "POST",
        &format!("/hub?id={token}"),
        &[],
        b"{}\x1e",
    )
    .await;
    assert_eq!(post.status, 200);
    read_until(&mut stream, &mut seen, b"data: {}\x1e\r\n\r\n").await;
}

#[tokio::test]
async fn requests_without_an_id_or_for_an_unknown_one_are_refused() {
    let server = TestServer::start(HttpOptions::default()).await;
    let no_id = request(server.addr, "GET", "/hub", &[SSE], b"").await;
    assert_eq!(no_id.status, 400);
    assert_eq!(no_id.body, b"Connection ID required");
    let unknown = request(server.addr, "GET", "/hub?id=unknown", &[SSE], b"").await;
    assert_eq!(unknown.status, 404);
    let post = request(server.addr, "POST", "/hub", &[], b"x").await;
    assert_eq!(post.status, 400);
    let post = request(server.addr, "POST", "/hub?id=unknown", &[], b"x").await;
    assert_eq!(post.status, 404);
}

#[tokio::test]
async fn a_second_event_stream_gets_409_and_a_delete_400() {
    let server = TestServer::start(HttpOptions::default()).await;
    let (_, token) = server.connection("").await;
    let mut stream =
        send_request(server.addr, "GET", &format!("/hub?id={token}"), &[SSE], b"").await;
    let mut seen = Vec::new();
    read_until(&mut stream, &mut seen, b":\r\n").await;
    let second = request(server.addr, "GET", &format!("/hub?id={token}"), &[SSE], b"").await;
    assert_eq!(second.status, 409);
    let delete = request(server.addr, "DELETE", &format!("/hub?id={token}"), &[], b"").await;
    assert_eq!(delete.status, 400);
    let poll = request(server.addr, "GET", &format!("/hub?id={token}"), &[], b"").await;
    assert_eq!(poll.status, 400, "no switching to long polling");
}

#[tokio::test]
async fn a_post_while_another_is_read_gets_409() {
    let server = TestServer::start(HttpOptions::default()).await;
    let (_, token) = server.connection("").await;
    let target = format!("/hub?id={token}");
    // A POST that announces 10 bytes and sends 2 stays in progress.
    let _slow = send_request(
        server.addr,
        "POST",
        &target,
        &[("Content-Length", "10")],
        b"ab",
    )
    .await;
    let conflict = async {
        loop {
            let second = request(server.addr, "POST", &target, &[], b"x").await;
            if second.status == 409 {
                return;
            }
            assert_eq!(second.status, 200, "{second:?}");
        }
    };
    tokio::time::timeout(LIMIT, conflict).await.expect("no 409");
}

#[tokio::test]
async fn a_post_over_the_limit_gets_413() {
    let server = TestServer::start(HttpOptions::default().max_receive_size(8)).await;
    let (_, token) = server.connection("").await;
    let post = request(
        server.addr,
        "POST",
        &format!("/hub?id={token}"),
        &[],
        &[b'x'; 9],
    )
    .await;
    assert_eq!(post.status, 413);
    let post = request(
        server.addr,
        "POST",
        &format!("/hub?id={token}"),
        &[],
        &[b'x'; 8],
    )
    .await;
    assert_eq!(post.status, 200);
}

#[tokio::test]
async fn the_hub_closing_ends_the_stream_and_the_connection() {
    let server = TestServer::start(HttpOptions::default()).await;
    let (_, token) = server.connection("").await;
    let mut stream =
        send_request(server.addr, "GET", &format!("/hub?id={token}"), &[SSE], b"").await;
    let mut seen = Vec::new();
    read_until(&mut stream, &mut seen, b":\r\n").await;
    let post = request(
        server.addr,
        "POST",
        &format!("/hub?id={token}"),
        &[],
        b"close",
    )
    .await;
    assert_eq!(post.status, 200);
    // The body ends (last chunk) and the server closes the connection.
    let rest = tokio::time::timeout(LIMIT, stream.read_to_end(&mut seen)).await;
    assert!(rest.is_ok(), "the stream did not end");
    assert!(seen.ends_with(b"0\r\n\r\n"), "{seen:?}");
    let post = request(server.addr, "POST", &format!("/hub?id={token}"), &[], b"x").await;
    assert_eq!(post.status, 404);
}

#[tokio::test]
async fn a_client_that_goes_away_ends_the_connection() {
    let mut server = TestServer::start(HttpOptions::default()).await;
    let (id, token) = server.connection("").await;
    let mut stream =
        send_request(server.addr, "GET", &format!("/hub?id={token}"), &[SSE], b"").await;
    let mut seen = Vec::new();
    read_until(&mut stream, &mut seen, b":\r\n").await;
    server.started().await;
    drop(stream);
    // The server notices when it next writes or reads the socket; a frame makes it write.
    let _ = request(
        server.addr,
        "POST",
        &format!("/hub?id={token}"),
        &[],
        b"ping",
    )
    .await;
    server.gone(&id).await;
}

#[tokio::test]
async fn a_post_body_that_does_not_arrive_in_time_gets_408_and_frees_the_slot() {
    let options = HttpOptions::default().post_timeout(std::time::Duration::from_millis(200));
    let server = TestServer::start(options).await;
    let (_, token) = server.connection("").await;
    let target = format!("/hub?id={token}");
    let slow = send_request(
        server.addr,
        "POST",
        &target,
        &[("Content-Length", "10")],
        b"ab",
    )
    .await;
    assert_eq!(http_support::read_response(slow).await.status, 408);
    let next = request(server.addr, "POST", &target, &[], b"x").await;
    assert_eq!(next.status, 200);
}
