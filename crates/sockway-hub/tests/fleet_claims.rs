//! `HttpOptions::connection_claims` with `RedisClaims` (a real `redis-server`): a token signed
//! with the fleet's key is adopted by another server only while no server has started its
//! connection, so a (stateful) reconnect after the server holding it died gets 404 and the
//! client starts over; with Redis unreachable such a token gets 503.

mod scaleout_support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use scaleout_support::{RedisServer, WAIT};
use sockway::server::{Server, ServerOptions, ShutdownHandle};
use sockway_hub::backplane::RedisClaims;
use sockway_hub::sample::chat_hub;
use sockway_hub::token::TokenKey;
use sockway_hub::{HttpOptions, HubService};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A chat hub at `/hub` adopting tokens signed with `key`, claiming starts in Redis at `url`.
struct Hub {
    addr: SocketAddr,
    stop: ShutdownHandle,
}

impl Drop for Hub {
    fn drop(&mut self) {
        self.stop.shutdown();
    }
}

async fn hub(key: &TokenKey, url: &str) -> Hub {
    let claims = RedisClaims::new(url, "claims-test", Duration::from_secs(2)).expect("a URL");
    let http = HttpOptions::default()
        .token_key(key.clone())
        .adopt_signed_tokens(true)
        .connection_claims(Arc::new(claims));
    let service = HubService::new("/hub", chat_hub(), http);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = Server::new(ServerOptions::default().handle_signals(false));
    let stop = server.shutdown_handle();
    tokio::spawn(server.serve(listener, service));
    Hub { addr, stop }
}

/// Sends `request` on a new connection and returns the response head (and keeps the
/// connection open, for a WebSocket that was accepted).
async fn exchange(addr: SocketAddr, request: String) -> (String, String, tokio::net::TcpStream) {
    let run = async {
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut data = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            let read = stream.read(&mut chunk).await.unwrap();
            assert!(read > 0, "the server closed before answering");
            data.extend_from_slice(&chunk[..read]);
            if let Some(end) = data.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&data[..end]).into_owned();
                let rest = String::from_utf8_lossy(&data[end + 4..]).into_owned();
                return (head, rest, stream);
            }
        }
    };
    tokio::time::timeout(WAIT, run)
        .await
        .expect("an answer in time")
}

/// Negotiates on `hub` and returns the connection token.
async fn negotiate(hub: &Hub) -> String {
    let request = format!(
        "POST /hub/negotiate?negotiateVersion=1 HTTP/1.1\r\nHost: {}\r\nContent-Length: 0\r\n\r\n",
        hub.addr
    );
    let (head, mut body, mut stream) = exchange(hub.addr, request).await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    while !body.contains('}') {
        let mut chunk = [0u8; 4096];
        let read = stream.read(&mut chunk).await.unwrap();
        body.push_str(&String::from_utf8_lossy(&chunk[..read]));
    }
    let json = &body[body.find('{').unwrap()..=body.rfind('}').unwrap()];
    let value: serde_json::Value = serde_json::from_str(json).unwrap();
    value["connectionToken"].as_str().unwrap().to_owned()
}

/// Opens a WebSocket for `token` on `hub`: the status code, and the socket.
async fn open(hub: &Hub, token: &str) -> (u16, tokio::net::TcpStream) {
    let request = format!(
        "GET /hub?id={token} HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
        hub.addr
    );
    let (head, _, stream) = exchange(hub.addr, request).await;
    let status = head[9..12].parse().expect("a status code");
    (status, stream)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_starts_on_one_server_only() {
    let redis = RedisServer::start().await;
    let key = TokenKey::random();
    let (a, b, c) = (
        hub(&key, &redis.url()).await,
        hub(&key, &redis.url()).await,
        hub(&key, &redis.url()).await,
    );

    let negotiated_on_a = negotiate(&a).await;
    let (adopted, _socket) = open(&b, &negotiated_on_a).await;
    assert_eq!(adopted, 101, "not started anywhere yet: adopted");
    assert_eq!(open(&c, &negotiated_on_a).await.0, 404, "started on b");
    assert_eq!(
        open(&a, &negotiated_on_a).await.0,
        404,
        "a's pending copy is stale"
    );

    let started_on_a = negotiate(&a).await;
    let (started, _socket) = open(&a, &started_on_a).await;
    assert_eq!(started, 101);
    assert_eq!(open(&b, &started_on_a).await.0, 404, "started on a");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_redis_a_foreign_token_is_503_and_an_own_one_starts() {
    let mut redis = RedisServer::start().await;
    let key = TokenKey::random();
    let (a, b) = (hub(&key, &redis.url()).await, hub(&key, &redis.url()).await);
    let token = negotiate(&a).await;
    let own = negotiate(&a).await;
    redis.kill();
    assert_eq!(open(&b, &token).await.0, 503);
    assert_eq!(open(&a, &own).await.0, 101);
}
