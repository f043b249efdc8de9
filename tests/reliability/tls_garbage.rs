//! Garbage on a TLS port of the [`sockway::server::Server`] runner (TLS through
//! [`sockway::server::Server::tls`], a throwaway rcgen certificate): plain HTTP, random
//! bytes, and a TLS record header announcing more than a record may hold are refused by
//! closing the connection at once (never an HTTP answer, never a wait for the handshake
//! timeout); a TLS ClientHello that stops half way is dropped at the handshake timeout; many
//! such connections at once change nothing; and a good `wss://` client is served afterwards.

use std::time::{Duration, Instant};

use sockway::client::ClientBuilder;
use sockway::server::WebSocketLayer;
use sockway::server::{AcceptOptions, Layer, ServerOptions, ServerWebSocket, UpgradeInfo};
use sockway::{CloseCode, Message};
use sockway_tests::payload;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::task::JoinSet;

use crate::support::{not_found, self_signed, shared, within, Runner};

/// The runner's handshake timeout here (TLS handshake included).
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(2);
/// What counts as "at once" for garbage: well under the handshake timeout.
const PROMPT: Duration = Duration::from_secs(1);

async fn echo(mut socket: ServerWebSocket, _info: UpgradeInfo) {
    while let Ok(Some(message)) = socket.recv().await {
        if socket.send(message).await.is_err() {
            break;
        }
    }
}

/// Sends `bytes` on a new connection and reads until the server closes it; returns what came
/// back and how long the close took.
async fn throw(server: &Runner, bytes: &[u8]) -> (Vec<u8>, Duration) {
    let mut stream = server.connect().await;
    let started = Instant::now();
    // The server may close before all of it is written.
    let _ = stream.write_all(bytes).await;
    let mut back = Vec::new();
    let mut chunk = [0u8; 4096];
    within(
        "the server closing the connection",
        Duration::from_secs(10),
        async {
            loop {
                match stream.read(&mut chunk).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => back.extend_from_slice(&chunk[..n]),
                }
            }
        },
    )
    .await;
    (back, started.elapsed())
}

/// Random bytes that do not start like a TLS handshake record.
fn noise() -> Vec<u8> {
    let mut bytes = payload::bytes(4096, 0x7a7a);
    bytes[0] = 0x47; // 'G'
    bytes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_on_a_tls_port_is_closed_at_once_and_good_clients_are_served() {
    let _shared = shared().await;
    let (tls, cert_pem) = self_signed();
    let app = WebSocketLayer::new(echo)
        .path("/ws")
        .options(AcceptOptions::default())
        .layer(not_found());
    let options = ServerOptions::default().handshake_timeout(HANDSHAKE_TIMEOUT);
    let server = Runner::start(options, Some(tls), app).await;

    let plain_http = format!(
        "GET /ws HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
        server.addr
    );
    // A handshake record header claiming 65535 bytes (more than TLS allows), then noise.
    let mut oversized_record = vec![0x16, 0x03, 0x01, 0xff, 0xff];
    oversized_record.extend(payload::bytes(512, 9));
    let cases: [(&str, Vec<u8>); 3] = [
        ("plain HTTP", plain_http.into_bytes()),
        ("random bytes", noise()),
        ("oversized TLS record", oversized_record),
    ];
    for (what, bytes) in &cases {
        let (back, took) = throw(&server, bytes).await;
        eprintln!(
            "TLS port, {what}: closed after {took:?}, {} bytes back",
            back.len()
        );
        assert!(took < PROMPT, "{what}: closed only after {took:?}");
        assert!(
            !back.starts_with(b"HTTP/"),
            "{what}: no HTTP answer on a TLS port: {:?}",
            String::from_utf8_lossy(&back)
        );
        // At most a TLS alert record (content type 21) comes back.
        assert!(back.is_empty() || back[0] == 0x15, "{what}: {back:?}");
    }

    // A ClientHello that stops after its record header: dropped at the handshake timeout.
    let (_, took) = throw(&server, &[0x16, 0x03, 0x01, 0x02, 0x00, 0x01]).await;
    eprintln!("TLS port, stalled ClientHello: closed after {took:?}");
    assert!(
        took >= HANDSHAKE_TIMEOUT - Duration::from_millis(300),
        "{took:?}"
    );
    assert!(
        took < HANDSHAKE_TIMEOUT + Duration::from_secs(2),
        "{took:?}"
    );

    // Many at once.
    let mut many = JoinSet::new();
    for i in 0..60 {
        let bytes = cases[i % cases.len()].1.clone();
        let addr = server.addr;
        many.spawn(async move {
            let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
            let started = Instant::now();
            let _ = stream.write_all(&bytes).await;
            let mut sink = Vec::new();
            let _ = stream.read_to_end(&mut sink).await;
            started.elapsed()
        });
    }
    while let Some(took) = within("garbage burst", Duration::from_secs(10), many.join_next()).await
    {
        let took = took.expect("task");
        assert!(took < HANDSHAKE_TIMEOUT, "{took:?}");
    }

    // A good client is served as before.
    let url = format!("wss://127.0.0.1:{}/ws", server.addr.port());
    let (mut client, _info) = within(
        "wss connect",
        Duration::from_secs(10),
        ClientBuilder::new(url).ca_pem(cert_pem).connect(),
    )
    .await
    .expect("a good client connects");
    client
        .send(Message::text("still here?"))
        .await
        .expect("send");
    let echo = within("echo", Duration::from_secs(5), client.recv())
        .await
        .expect("recv");
    assert_eq!(echo, Some(Message::text("still here?")));
    let closed = within(
        "close",
        Duration::from_secs(5),
        client.close(CloseCode::NORMAL, "done"),
    )
    .await
    .expect("close");
    assert_eq!(closed.code, CloseCode::NORMAL);
    assert!(server.is_running());
}
