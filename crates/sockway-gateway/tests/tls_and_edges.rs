//! HTTPS listeners and HTTPS backends (rcgen certificates), and a backend that vanishes
//! mid-session without a close frame.

mod support;

use std::time::Duration;

use bytes::BytesMut;
use rustls::pki_types::ServerName;
use serde_json::json;
use sockway::{Message, Role, WebSocket, WebSocketConfig};
use sockway_gateway::config::HttpListener;
use support::pki::*;
use support::*;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[tokio::test]
async fn https_listener_to_https_backend_carries_websockets() {
    let pki = pki("both");
    let listener_spec = HttpListener {
        name: "backend".into(),
        protocol: sockway_gateway::config::Protocol::Https,
        port: 1,
        bind_address: std::net::Ipv4Addr::LOCALHOST.into(),
        certificate_file: Some(pki.cert.display().to_string()),
        key_file: Some(pki.key.display().to_string()),
        host_names: vec![],
        custom_error_configurations: vec![],
    };
    let acceptor = sockway_gateway::tls::acceptor(&[&listener_spec]).unwrap();
    let backend = Backend::start_tls("secure", acceptor).await;
    let port = free_port();
    let doc = json!({
        "httpListeners": [{"name": "tls", "protocol": "Https", "port": port, "bindAddress": "127.0.0.1",
            "certificateFile": pki.cert, "keyFile": pki.key, "hostNames": ["localhost"]}],
        "backendAddressPools": [{"name": "pool", "backendAddresses": [{"ipAddress": "127.0.0.1", "port": backend.port()}]}],
        "backendHttpSettingsCollection": [{"name": "s", "port": 1, "protocol": "Https", "hostName": "localhost",
            "trustedRootCertificate": pki.ca, "probe": "p"}],
        "probes": [{"name": "p", "protocol": "Https", "path": "/", "interval": 0.1, "timeout": 2,
            "pickHostNameFromBackendHttpSettings": true}],
        "requestRoutingRules": [{"name": "r", "httpListener": "tls", "backendAddressPool": "pool", "backendHttpSettings": "s"}],
        "limits": {"shutdownTimeout": 0.2, "closeGrace": 0.5}
    });
    let gateway = start_gateway(&doc).await;
    wait_healthy(&gateway, 1).await;

    let tcp = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let mut tls = client_tls(&pki.ca)
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .expect("the listener's certificate verifies for localhost");
    let request = "GET /ws HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                   Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
    tls.write_all(request.as_bytes()).await.unwrap();
    let (head, leftover) = read_head(&mut tls).await;
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    let mut ws = WebSocket::from_raw(tls, Role::Client, WebSocketConfig::default(), leftover);
    bounded("echo over TLS both ways", async {
        ws.send_text("headers").await.unwrap();
        match ws.recv().await.unwrap() {
            Some(Message::Text(t)) => {
                assert!(
                    t.as_str().contains("x-forwarded-proto=https"),
                    "{}",
                    t.as_str()
                );
                assert!(t.as_str().contains("host=localhost"), "{}", t.as_str());
            }
            other => panic!("{other:?}"),
        }
    })
    .await;
    drop(ws);
    gateway.shutdown().await;
}

/// Reads a response head (at most [`bounded`]'s wait): the head as text, and the bytes that
/// came after it.
async fn read_head<S: AsyncRead + Unpin>(io: &mut S) -> (String, BytesMut) {
    let mut buf = BytesMut::new();
    let end = bounded("101 over TLS", async {
        loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            assert!(io.read_buf(&mut buf).await.unwrap() > 0, "closed early");
        }
    })
    .await;
    let rest = buf.split_off(end);
    (String::from_utf8_lossy(&buf).into_owned(), rest)
}

/// A client that chose HTTP/1.1 by ALPN: the relay reads its TLS stream directly (taken out
/// of hyper's upgrade), and a frame sent right behind the upgrade request, which the
/// listener read ahead, still comes first.
#[tokio::test]
async fn an_alpn_http1_client_is_relayed_over_its_own_tls_stream() {
    let pki = pki("alpn-h1");
    let backend = Backend::start("plain").await;
    let port = free_port();
    let doc = json!({
        "httpListeners": [{"name": "tls", "protocol": "Https", "port": port, "bindAddress": "127.0.0.1",
            "certificateFile": pki.cert, "keyFile": pki.key}],
        "backendAddressPools": [{"name": "pool", "backendAddresses": [{"ipAddress": "127.0.0.1", "port": backend.port()}]}],
        "backendHttpSettingsCollection": [{"name": "s", "port": 1, "protocol": "Http", "probe": "p"}],
        "probes": [{"name": "p", "path": "/", "interval": 0.1, "timeout": 2}],
        "requestRoutingRules": [{"name": "r", "httpListener": "tls", "backendAddressPool": "pool", "backendHttpSettings": "s"}],
        "limits": {"shutdownTimeout": 0.2, "closeGrace": 0.5}
    });
    let gateway = start_gateway(&doc).await;
    wait_healthy(&gateway, 1).await;

    let tcp = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let mut tls = client_tls_offering(&pki.ca, &[b"http/1.1"])
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .unwrap();
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"http/1.1"[..]));
    let mut request = b"GET /ws HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                   Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        .to_vec();
    // A masked text frame "whoami" (RFC 6455 section 5.3), in the same write as the request.
    let mask = [1u8, 2, 3, 4];
    request.extend_from_slice(&[0x81, 0x86]);
    request.extend_from_slice(&mask);
    request.extend(b"whoami".iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    tls.write_all(&request).await.unwrap();
    let (head, leftover) = read_head(&mut tls).await;
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    let mut ws = WebSocket::from_raw(tls, Role::Client, WebSocketConfig::default(), leftover);
    bounded("echoes over the TLS front", async {
        match ws.recv().await.unwrap() {
            Some(Message::Text(t)) => assert_eq!(t.as_str(), "plain"),
            other => panic!("{other:?}"),
        }
        for size in [1usize, 200, 70_000, 1 << 20] {
            let payload: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
            ws.send(Message::binary(payload.clone())).await.unwrap();
            match ws.recv().await.unwrap() {
                Some(Message::Binary(b)) => assert!(b[..] == payload[..], "{size} bytes changed"),
                other => panic!("{other:?}"),
            }
        }
        let info = ws.close(sockway::CloseCode::NORMAL, "done").await.unwrap();
        assert_eq!(u16::from(info.code), 1000, "the backend's close came back");
    })
    .await;
    gateway.shutdown().await;
}

/// A backend that completes the handshake by hand and then drops the TCP connection when
/// told to, without a close frame (like a crashed process).
async fn vanishing_backend() -> (u16, tokio::sync::watch::Sender<bool>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (vanish, vanish_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                continue;
            };
            let mut vanish = vanish_rx.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 1024];
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                let head = String::from_utf8_lossy(&buf).to_ascii_lowercase();
                let Some(key) = head
                    .lines()
                    .find_map(|l| l.strip_prefix("sec-websocket-key:"))
                else {
                    let _ = stream.write_all(b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\nconnection: close\r\n\r\n").await;
                    return;
                };
                // The key is case-sensitive: take it from the original bytes.
                let original = String::from_utf8_lossy(&buf).into_owned();
                let key = original
                    .lines()
                    .find(|l| l.to_ascii_lowercase().starts_with("sec-websocket-key:"))
                    .map(|l| l.split_once(':').unwrap().1.trim().to_owned())
                    .unwrap_or_else(|| key.trim().to_owned());
                let accept = sockway::proto::handshake::accept_key(key.as_bytes());
                let response = format!("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n");
                let _ = stream.write_all(response.as_bytes()).await;
                let _ = vanish.wait_for(|v| *v).await;
                drop(stream);
            });
        }
    });
    (port, vanish)
}

#[tokio::test]
async fn a_backend_vanishing_mid_session_gets_the_client_a_1001() {
    let (backend_port, vanish) = vanishing_backend().await;
    let port = free_port();
    let doc = json!({
        "httpListeners": [{"name": "web", "port": port, "bindAddress": "127.0.0.1"}],
        "backendAddressPools": [{"name": "pool", "backendAddresses": [{"ipAddress": "127.0.0.1", "port": backend_port}]}],
        "backendHttpSettingsCollection": [{"name": "s", "port": 1, "probe": "p"}],
        // It fails HTTP probes; minServers keeps it in the rotation.
        "probes": [{"name": "p", "interval": 0.5, "timeout": 1, "minServers": 1}],
        "requestRoutingRules": [{"name": "r", "httpListener": "web", "backendAddressPool": "pool", "backendHttpSettings": "s"}],
        "limits": {"shutdownTimeout": 0.2, "closeGrace": 0.5}
    });
    let gateway = start_gateway(&doc).await;
    let (mut ws, _) = bounded("connect", ws_connect(port, "/", "")).await.unwrap();
    assert_eq!(gateway.sessions(), 1);
    vanish.send_replace(true);
    bounded("close frame from the gateway", async {
        while let Ok(Some(_)) = ws.recv().await {}
    })
    .await;
    let info = ws.close_info().expect("closed");
    assert_eq!(u16::from(info.code), 1001, "{info:?}");
    assert_eq!(info.reason, "backend went away");
    bounded("session gone", async {
        while gateway.sessions() > 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    gateway.shutdown().await;
}

#[tokio::test]
async fn http2_extended_connect_is_relayed_to_an_http1_backend() {
    use http_body_util::{BodyExt, Empty};
    use hyper_util::rt::{TokioExecutor, TokioIo};

    let backend = Backend::start("h1").await;
    let port = free_port();
    let gateway = start_gateway(&basic_config(port, &[&backend], json!({}), None)).await;
    wait_healthy(&gateway, 1).await;

    let tcp = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let (mut sender, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tcp))
            .await
            .unwrap();
    tokio::spawn(conn);
    // An ordinary request first: it also lets the server's SETTINGS (with
    // SETTINGS_ENABLE_CONNECT_PROTOCOL, RFC 8441 section 3) arrive.
    let plain = http::Request::builder()
        .uri(format!("http://localhost:{port}/headers"))
        .version(http::Version::HTTP_2)
        .body(Empty::<bytes::Bytes>::new())
        .unwrap();
    let response = bounded("h2 GET", sender.send_request(plain)).await.unwrap();
    assert_eq!(response.status(), 200);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert!(String::from_utf8_lossy(&body).contains("backend=h1"));

    let mut connect = http::Request::builder()
        .method(http::Method::CONNECT)
        .uri(format!("http://localhost:{port}/ws"))
        .version(http::Version::HTTP_2)
        .header("sec-websocket-version", "13")
        .header("sec-websocket-protocol", "chat")
        .body(Empty::<bytes::Bytes>::new())
        .unwrap();
    connect
        .extensions_mut()
        .insert(hyper::ext::Protocol::from_static("websocket"));
    let mut response = bounded("extended CONNECT", sender.send_request(connect))
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "RFC 8441: 200, not 101");
    assert_eq!(response.headers()["sec-websocket-protocol"], "chat");
    assert!(response.headers().get("sec-websocket-accept").is_none());
    let upgraded = bounded("stream", hyper::upgrade::on(&mut response))
        .await
        .unwrap();
    let mut ws = WebSocket::from_raw(
        TokioIo::new(upgraded),
        Role::Client,
        WebSocketConfig::default(),
        BytesMut::new(),
    );
    bounded("echo over h2", async {
        ws.send_text("whoami").await.unwrap();
        match ws.recv().await.unwrap() {
            Some(Message::Text(t)) => assert_eq!(t.as_str(), "h1"),
            other => panic!("{other:?}"),
        }
    })
    .await;
    drop(ws);
    gateway.shutdown().await;
}

#[tokio::test]
async fn multi_site_https_listeners_pick_certificates_by_sni_and_routes_by_host() {
    let a_pki = pki_for("site-a", &["a.localhost"]);
    let b_pki = pki_for("site-b", &["b.localhost"]);
    let a = Backend::start("site-a").await;
    let b = Backend::start("site-b").await;
    let port = free_port();
    let pool = |name: &str, backend: &Backend| json!({"name": name, "backendAddresses": [{"ipAddress": "127.0.0.1", "port": backend.port()}]});
    let listener = |name: &str, host: &str, pki: &Pki| {
        json!({"name": name, "protocol": "Https", "port": port,
        "bindAddress": "127.0.0.1", "hostNames": [host], "certificateFile": pki.cert, "keyFile": pki.key})
    };
    let doc = json!({
        "httpListeners": [listener("a", "a.localhost", &a_pki), listener("b", "b.localhost", &b_pki)],
        "backendAddressPools": [pool("pa", &a), pool("pb", &b)],
        "backendHttpSettingsCollection": [{"name": "s", "port": 1, "probe": "p"}],
        "probes": [{"name": "p", "interval": 0.1, "timeout": 1}],
        "requestRoutingRules": [
            {"name": "ra", "httpListener": "a", "backendAddressPool": "pa", "backendHttpSettings": "s"},
            {"name": "rb", "httpListener": "b", "backendAddressPool": "pb", "backendHttpSettings": "s"}
        ],
        "limits": {"shutdownTimeout": 0.2, "closeGrace": 0.5}
    });
    let gateway = start_gateway(&doc).await;
    wait_healthy(&gateway, 2).await;
    for (host, pki, expected) in [
        ("a.localhost", &a_pki, "site-a"),
        ("b.localhost", &b_pki, "site-b"),
    ] {
        let tcp = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        // Only the certificate for `host` verifies: this proves the SNI choice.
        let mut tls = client_tls(&pki.ca)
            .connect(ServerName::try_from(host.to_owned()).unwrap(), tcp)
            .await
            .unwrap_or_else(|e| panic!("{host}: {e}"));
        let request = format!("GET /x HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
        tls.write_all(request.as_bytes()).await.unwrap();
        let mut out = Vec::new();
        let _ = bounded("response", tls.read_to_end(&mut out)).await;
        let text = String::from_utf8_lossy(&out);
        assert!(
            text.contains(&format!("backend={expected}")),
            "{host}: {text}"
        );
    }
    gateway.shutdown().await;
}
