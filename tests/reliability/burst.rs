//! A burst of connection attempts against the [`sockway::server::Server`] runner limited to
//! 100 connections: every attempt ends with a WebSocket (101), a 503 with `Retry-After`, or a
//! refusal by the OS (connect failed or timed out: counted); the runner also closes, without
//! an answer, connections beyond its bound on refusals in progress (counted separately). None
//! waits longer than the handshake timeout for its answer, and afterwards the server serves a
//! normal client.
//!
//! Default 2000 attempts, 500 in flight at once; `SOCKWAY_BURST_ATTEMPTS` for more (10 000).

use std::time::{Duration, Instant};

use sockway::client::ClientBuilder;
use sockway::server::WebSocketLayer;
use sockway::server::{AcceptOptions, Layer, ServerOptions, ServerWebSocket, UpgradeInfo};
use sockway::{CloseCode, Message};
use sockway_tests::http1;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::support::{env_usize, exclusive, not_found, within, Runner};

/// The runner's connection limit.
const MAX_CONNECTIONS: usize = 100;
/// The runner's handshake timeout.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(2);
/// Attempts in flight at once.
const IN_FLIGHT: usize = 500;
/// How long an accepted WebSocket is kept open before the client drops it.
const HOLD: Duration = Duration::from_millis(100);

/// How one attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    /// 101: a WebSocket.
    WebSocket,
    /// 503 with `Retry-After`.
    Full,
    /// The OS refused or did not complete the TCP connect.
    OsRefused,
    /// The server closed (or reset) the connection without an answer.
    ClosedUnanswered,
    /// No answer within the handshake timeout plus a margin: a hang.
    Hung,
    /// Anything else (another status, a 503 without `Retry-After`, ...).
    Unexpected(String),
}

async fn hold(mut socket: ServerWebSocket, _info: UpgradeInfo) {
    while let Ok(Some(message)) = socket.recv().await {
        if socket.send(message).await.is_err() {
            break;
        }
    }
}

/// One attempt: connect, send a handshake, read the answer's head.
async fn attempt(addr: std::net::SocketAddr) -> (Outcome, Duration) {
    let connect = tokio::time::timeout(Duration::from_secs(3), TcpStream::connect(addr)).await;
    let mut stream = match connect {
        Ok(Ok(stream)) => stream,
        Ok(Err(_)) | Err(_) => return (Outcome::OsRefused, Duration::ZERO),
    };
    let started = Instant::now();
    let key = http1::new_key();
    let request = http1::request(&addr.to_string(), "/ws", &key, &[]);
    if stream.write_all(request.as_bytes()).await.is_err() {
        return (Outcome::ClosedUnanswered, started.elapsed());
    }
    let limit = HANDSHAKE_TIMEOUT + Duration::from_secs(2);
    let mut head = Vec::new();
    let mut chunk = [0u8; 1024];
    let read = tokio::time::timeout(limit, async {
        loop {
            if let Some(end) = head.windows(4).position(|w| w == b"\r\n\r\n") {
                return Some(String::from_utf8_lossy(&head[..end]).into_owned());
            }
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return None,
                Ok(n) => head.extend_from_slice(&chunk[..n]),
            }
        }
    })
    .await;
    let took = started.elapsed();
    let outcome = match read {
        Err(_) => Outcome::Hung,
        Ok(None) => Outcome::ClosedUnanswered,
        Ok(Some(head)) => {
            let lower = head.to_ascii_lowercase();
            if head.starts_with("HTTP/1.1 101") {
                tokio::time::sleep(HOLD).await;
                Outcome::WebSocket
            } else if head.starts_with("HTTP/1.1 503") && lower.contains("\r\nretry-after:") {
                Outcome::Full
            } else {
                Outcome::Unexpected(head)
            }
        }
    };
    (outcome, took)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_burst_gets_websockets_or_503_and_the_server_survives() {
    let _alone = exclusive().await;
    let attempts = env_usize("SOCKWAY_BURST_ATTEMPTS", 2000);
    let app = WebSocketLayer::new(hold)
        .path("/ws")
        .options(AcceptOptions::default())
        .layer(not_found());
    let options = ServerOptions::default()
        .max_connections(MAX_CONNECTIONS)
        .handshake_timeout(HANDSHAKE_TIMEOUT);
    let server = Runner::start(options, None, app).await;

    let started = Instant::now();
    let gate = std::sync::Arc::new(Semaphore::new(IN_FLIGHT));
    let mut tasks = JoinSet::new();
    for _ in 0..attempts {
        let permit = gate.clone().acquire_owned().await.expect("gate");
        let addr = server.addr;
        tasks.spawn(async move {
            let result = attempt(addr).await;
            drop(permit);
            result
        });
    }
    let (mut websockets, mut full, mut os_refused, mut unanswered) = (0, 0, 0, 0);
    let mut failures = Vec::new();
    let mut slowest = Duration::ZERO;
    while let Some(joined) =
        within("burst attempts", Duration::from_secs(60), tasks.join_next()).await
    {
        let (outcome, took) = joined.expect("attempt task");
        slowest = slowest.max(took);
        match outcome {
            Outcome::WebSocket => websockets += 1,
            Outcome::Full => full += 1,
            Outcome::OsRefused => os_refused += 1,
            Outcome::ClosedUnanswered => unanswered += 1,
            other => failures.push(other),
        }
    }
    let elapsed = started.elapsed();
    eprintln!(
        "burst: {attempts} attempts ({IN_FLIGHT} in flight) against max_connections \
         {MAX_CONNECTIONS} in {elapsed:.1?}: {websockets} WebSockets, {full} × 503, \
         {os_refused} refused by the OS, {unanswered} closed unanswered, {} other; slowest \
         answer {slowest:.1?}",
        failures.len()
    );
    assert!(failures.is_empty(), "{failures:?}");
    assert_eq!(websockets + full + os_refused + unanswered, attempts);
    assert!(
        websockets >= 1 && full >= 1,
        "the limit was reached and served"
    );
    assert!(
        slowest < HANDSHAKE_TIMEOUT + Duration::from_secs(1),
        "an answer took {slowest:?}"
    );

    // The server is still there, and serves a normal client once the burst has passed.
    assert!(server.is_running());
    let (mut client, _info) = within("connect after the burst", Duration::from_secs(10), async {
        loop {
            match ClientBuilder::new(server.url("/ws")).connect().await {
                Ok(connected) => break connected,
                // Slots free up as the burst's sockets finish closing.
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    })
    .await;
    client
        .send(Message::text("after the storm"))
        .await
        .expect("send");
    let echo = within("echo", Duration::from_secs(5), client.recv()).await;
    assert_eq!(echo.expect("recv"), Some(Message::text("after the storm")));
    let closed = within(
        "close",
        Duration::from_secs(5),
        client.close(CloseCode::NORMAL, "done"),
    )
    .await
    .expect("close");
    assert_eq!(closed.code, CloseCode::NORMAL);
}
