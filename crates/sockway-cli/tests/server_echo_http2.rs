//! `sockway echo` over TLS and HTTP/2: the self-signed certificate and its logged
//! fingerprint, PEM files, ALPN choosing HTTP/2 for sockway's client (several sockets on one
//! connection, each logged with `http=HTTP/2.0`), `--http1-only`, h2c prior knowledge, and
//! the `/info` endpoint the page uses to show a socket's HTTP version; the event loop's echo
//! over TLS with the same flags.

mod echo_support;

use std::time::Duration;

use echo_support::{start_echo, EchoProcess, STEP};
use http::Version;
use sockway::client::{ClientBuilder, HttpVersion};
use sockway::Message;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn wss(server: &EchoProcess, path: &str) -> ClientBuilder {
    ClientBuilder::new(format!("wss://localhost:{}{path}", server.addr.port()))
        .resolve_to(vec![server.addr])
        .danger_accept_invalid_certificates()
        .connect_timeout(STEP)
}

async fn echo_once(
    socket: &mut sockway::WebSocket<sockway::client::ClientStream>,
    text: &'static str,
) {
    tokio::time::timeout(STEP, async {
        socket.send(Message::text(text)).await.unwrap();
        assert_eq!(socket.recv().await.unwrap(), Some(Message::text(text)));
    })
    .await
    .expect("echo timed out");
}

/// The SHA-256 fingerprint of DER bytes, in the form the server logs.
fn fingerprint(der: &[u8]) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, der);
    digest
        .as_ref()
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// A plain HTTP/1.1 GET; returns the whole response text.
async fn get(server: &EchoProcess, path: &str) -> String {
    let mut tcp = TcpStream::connect(server.addr).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(STEP, tcp.read_to_end(&mut out))
        .await
        .expect("response timed out")
        .unwrap();
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test]
async fn self_signed_tls_serves_websockets_over_http2() {
    let mut server = start_echo(&["--tls-self-signed"]).await;
    let logged = server.wait_for_log("TLS certificate").await;
    let builder = wss(&server, "/ws");
    let mut sockets = Vec::new();
    for _ in 0..3 {
        let (socket, info) = builder.connect().await.unwrap();
        assert_eq!(info.http_version, Version::HTTP_2);
        let sha256 = fingerprint(&info.peer_certificates[0]);
        assert!(logged.contains(&format!("sha256={sha256}")), "{logged}");
        sockets.push(socket);
    }
    for socket in &mut sockets {
        echo_once(socket, "over HTTP/2").await;
    }
    assert_eq!(builder.pool().http2_connections(), 1);
    let mut peers = std::collections::HashSet::new();
    for _ in 0..3 {
        let opened = server.wait_for_log("WebSocket opened").await;
        assert!(opened.contains("http=HTTP/2.0"), "{opened}");
        let peer = opened.split("peer=").nth(1).unwrap().split(' ').next();
        peers.insert(peer.unwrap().to_owned());
    }
    assert_eq!(
        peers.len(),
        1,
        "the three sockets shared one TCP connection"
    );
}

#[tokio::test]
async fn pem_files_and_http1_only() {
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let dir = std::env::temp_dir().join(format!("sockway-echo-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert, certified.cert.pem()).unwrap();
    std::fs::write(&key, certified.signing_key.serialize_pem()).unwrap();
    let (cert, key) = (cert.to_str().unwrap(), key.to_str().unwrap());

    let mut server = start_echo(&["--tls-cert", cert, "--tls-key", key, "--http1-only"]).await;
    let logged = server.wait_for_log("TLS certificate").await;
    assert!(
        logged.contains(&fingerprint(certified.cert.der())),
        "{logged}"
    );
    let (mut socket, info) = wss(&server, "/ws").connect().await.unwrap();
    assert_eq!(info.http_version, Version::HTTP_11, "no h2 in ALPN");
    echo_once(&mut socket, "over HTTP/1.1").await;
    let opened = server.wait_for_log("WebSocket opened").await;
    assert!(opened.contains("http=HTTP/1.1"), "{opened}");
    let _ = std::fs::remove_dir_all(&dir);

    // A key that is not there: the command fails and says which file.
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_sockway"))
        .args(["echo", "--listen", "127.0.0.1:0"])
        .args([
            "--tls-cert",
            "/nonexistent/c.pem",
            "--tls-key",
            "/nonexistent/k.pem",
        ])
        .output();
    let output = tokio::time::timeout(STEP, output).await.unwrap().unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("/nonexistent/c.pem"), "{stderr}");
}

#[tokio::test]
async fn plaintext_h2c_and_the_info_endpoint() {
    let mut server = start_echo(&[]).await;
    let info = get(&server, "/info").await;
    assert!(info.contains("application/json"), "{info}");
    assert!(
        info.ends_with(r#"{"http":"HTTP/1.1","tls":false,"alpn":null,"socket":null}"#),
        "{info}"
    );

    // ws:// with HTTP/2 forced: prior knowledge (h2c), served because HTTP/2 is on.
    let url = format!("ws://{}/ws?socket=h2c-socket", server.addr);
    let (mut socket, connected) = ClientBuilder::new(&url)
        .http_version(HttpVersion::Http2Only)
        .connect()
        .await
        .unwrap();
    assert_eq!(connected.http_version, Version::HTTP_2);
    echo_once(&mut socket, "h2c").await;
    let opened = server.wait_for_log("WebSocket opened").await;
    assert!(opened.contains("http=HTTP/2.0"), "{opened}");
    let info = get(&server, "/info?socket=h2c-socket").await;
    assert!(
        info.contains(r#""socket":{"id":"h2c-socket","http":"HTTP/2"}"#),
        "{info}"
    );
    drop(socket);
    // Once the socket is gone, the server forgets it.
    tokio::time::timeout(STEP, async {
        while get(&server, "/info?socket=h2c-socket")
            .await
            .contains(r#""id":"h2c-socket""#)
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the closed socket is forgotten");
}

#[tokio::test]
async fn refusals_over_http2() {
    type Empty = http_body_util::Empty<bytes::Bytes>;
    let server = start_echo(&[]).await;
    let tcp = TcpStream::connect(server.addr).await.unwrap();
    let (mut sender, connection) =
        hyper::client::conn::http2::Builder::new(hyper_util::rt::TokioExecutor::new())
            .handshake::<_, Empty>(hyper_util::rt::TokioIo::new(tcp))
            .await
            .unwrap();
    tokio::spawn(connection);
    let authority = server.addr.to_string();

    // A plain CONNECT (a tunnel request): this server is no proxy.
    let request = http::Request::builder()
        .method(http::Method::CONNECT)
        .version(Version::HTTP_2)
        .uri(authority.as_str())
        .body(Empty::new())
        .unwrap();
    sender.ready().await.unwrap();
    let response = tokio::time::timeout(STEP, sender.send_request(request))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(response.status(), 405);
    assert_eq!(response.headers()["allow"], "GET, HEAD");

    // An extended CONNECT without Sec-WebSocket-Version: 400 naming version 13. It may only be
    // sent once the server's SETTINGS (with ENABLE_CONNECT_PROTOCOL) are in; retry until then.
    let response = tokio::time::timeout(STEP, async {
        loop {
            sender.ready().await.unwrap();
            let request = http::Request::builder()
                .method(http::Method::CONNECT)
                .version(Version::HTTP_2)
                .uri(format!("http://{authority}/ws"))
                .extension(hyper::ext::Protocol::from_static("websocket"))
                .body(Empty::new())
                .unwrap();
            match sender.send_request(request).await {
                Ok(response) => break response,
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            }
        }
    })
    .await
    .expect("extended CONNECT answered");
    assert_eq!(response.status(), 400);
    assert_eq!(response.headers()["sec-websocket-version"], "13");
}

#[tokio::test]
async fn the_event_loop_echo_serves_wss_with_the_same_flags() {
    let mut server = start_echo(&["--event-loop", "--tls-self-signed", "--compression"]).await;
    let logged = server.wait_for_log("TLS certificate").await;
    let (mut socket, info) = wss(&server, "/any/path")
        .compression(Some(sockway::DeflateConfig::default()))
        .connect()
        .await
        .unwrap();
    assert_eq!(info.http_version, Version::HTTP_11);
    let sha256 = fingerprint(&info.peer_certificates[0]);
    assert!(logged.contains(&format!("sha256={sha256}")), "{logged}");
    assert!(socket.compression().is_some());
    echo_once(&mut socket, "over TLS on the event loop").await;
    let big = Message::binary(vec![0xa5u8; 1 << 20]);
    socket.send(big.clone()).await.unwrap();
    let echoed = tokio::time::timeout(STEP, socket.recv()).await.unwrap();
    assert_eq!(echoed.unwrap(), Some(big));
}
