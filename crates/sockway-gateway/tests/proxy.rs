//! The gateway over real loopback sockets: WebSocket relay, forwarding headers, framing
//! refusals, path rules, affinity, least connections and the admin listener.

mod support;

use serde_json::json;
use sockway::CloseCode;
use sockway_gateway::config::Format;
use support::*;

#[tokio::test]
async fn websocket_and_http_pass_through_with_forwarding_headers() {
    let backend = Backend::start("b1").await;
    let port = free_port();
    let gateway = start_gateway(&basic_config(port, &[&backend], json!({}), None)).await;
    wait_healthy(&gateway, 1).await;

    let (mut ws, head) = bounded("connect", ws_connect(port, "/chat", ""))
        .await
        .unwrap();
    let lower = head.to_ascii_lowercase();
    assert!(
        lower.contains("upgrade: websocket") && lower.contains("connection: upgrade"),
        "{head}"
    );
    assert!(lower.contains("sec-websocket-protocol: chat"), "{head}");
    assert_eq!(ask(&mut ws, "hello").await, "hello");
    assert_eq!(ask(&mut ws, "whoami").await, "b1");
    let seen = ask(&mut ws, "headers").await;
    assert!(seen.contains("x-forwarded-for=127.0.0.1"), "{seen}");
    assert!(seen.contains(&format!("x-forwarded-port={port}")), "{seen}");
    assert!(seen.contains("x-forwarded-proto=http"), "{seen}");
    assert!(
        seen.contains(&format!("x-original-host=localhost:{port}")),
        "{seen}"
    );
    assert!(seen.contains("origin=http://localhost"), "{seen}");
    assert!(
        seen.contains("sec-websocket-key=dGhlIHNhbXBsZSBub25jZQ=="),
        "{seen}"
    );
    // A large binary message crosses the relay intact.
    let big: Vec<u8> = (0..200_000u32).map(|i| i as u8).collect();
    bounded("big echo", async {
        ws.send_binary(&big).await.unwrap();
        match ws.recv().await.unwrap() {
            Some(sockway::Message::Binary(b)) => assert_eq!(&b[..], &big[..]),
            other => panic!("{other:?}"),
        }
    })
    .await;
    let info = bounded("close", ws.close(CloseCode::NORMAL, "bye"))
        .await
        .unwrap();
    assert_eq!(u16::from(info.code), 1000);

    let response = get(port, "/headers", "Connection: close, X-Drop-Me\r\nX-Drop-Me: 1\r\nKeep-Alive: 5\r\nX-Forwarded-For: 10.1.1.1\r\n").await;
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.contains("backend=b1"));
    // The client is not in `trustedProxies` (empty by default): its list is replaced.
    assert!(
        response.contains("x-forwarded-for=127.0.0.1\n"),
        "{response}"
    );
    assert!(
        !response.contains("x-drop-me"),
        "Connection-named headers are hop-by-hop: {response}"
    );
    assert!(!response.contains("keep-alive="), "{response}");
    gateway.shutdown().await;
}

#[tokio::test]
async fn ambiguous_framing_is_refused_with_400_and_never_forwarded() {
    let backend = Backend::start("b1").await;
    let port = free_port();
    let gateway = start_gateway(&basic_config(port, &[&backend], json!({}), None)).await;
    wait_healthy(&gateway, 1).await;
    let before = backend.requests.load(std::sync::atomic::Ordering::SeqCst);

    let smuggle = format!(
        "POST /echo HTTP/1.1\r\nHost: localhost:{port}\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n"
    );
    let response = raw_exchange(port, smuggle.as_bytes()).await;
    assert!(response.starts_with("HTTP/1.1 400"), "{response}");
    assert!(
        response.contains("both Content-Length and Transfer-Encoding"),
        "{response}"
    );
    assert!(!response.contains("smuggled"));

    let te_first = format!(
        "POST /echo HTTP/1.1\r\nHost: localhost:{port}\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n0\r\n\r\n"
    );
    let response = raw_exchange(port, te_first.as_bytes()).await;
    assert!(response.starts_with("HTTP/1.1 400"), "{response}");

    let conflicting = format!(
        "POST /echo HTTP/1.1\r\nHost: localhost:{port}\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd"
    );
    let response = raw_exchange(port, conflicting.as_bytes()).await;
    assert!(response.starts_with("HTTP/1.1 400"), "{response}");
    assert!(
        response.contains("conflicting Content-Length"),
        "{response}"
    );

    // Only the probes reached the backend; none of the refused requests did.
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let response = get(port, "/headers", "").await;
    assert!(response.contains("backend=b1"));
    let after = backend.requests.load(std::sync::atomic::Ordering::SeqCst);
    assert!(after > before, "the good request got through");

    // A well-formed chunked body is forwarded.
    let chunked = format!(
        "POST /echo HTTP/1.1\r\nHost: localhost:{port}\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
    );
    let response = raw_exchange(port, chunked.as_bytes()).await;
    assert!(response.contains("body=hello"), "{response}");
    let text = gateway.metrics_text();
    assert!(
        text.contains("sockway_gateway_refusals_total{reason=\"ambiguous_framing\"} 3"),
        "{text}"
    );
    gateway.shutdown().await;
}

#[tokio::test]
async fn path_rules_send_requests_and_sockets_to_their_pools() {
    let chat = Backend::start("chat").await;
    let api = Backend::start("api").await;
    let other = Backend::start("other").await;
    let port = free_port();
    let pool = |name: &str, b: &Backend| json!({"name": name, "backendAddresses": [{"ipAddress": "127.0.0.1", "port": b.port()}]});
    let doc = json!({
        "httpListeners": [{"name": "web", "port": port, "bindAddress": "127.0.0.1"}],
        "backendAddressPools": [pool("chatPool", &chat), pool("apiPool", &api), pool("otherPool", &other)],
        "backendHttpSettingsCollection": [{"name": "s", "port": 1, "probe": "fast"}],
        "probes": [{"name": "fast", "interval": 0.1, "timeout": 1}],
        "urlPathMaps": [{"name": "map", "defaultBackendAddressPool": "otherPool", "defaultBackendHttpSettings": "s",
            "pathRules": [
                {"name": "chat", "paths": ["/chat/*"], "backendAddressPool": "chatPool", "backendHttpSettings": "s"},
                {"name": "api", "paths": ["/api", "/api/*"], "backendAddressPool": "apiPool", "backendHttpSettings": "s"}
            ]}],
        "requestRoutingRules": [{"name": "r", "ruleType": "PathBasedRouting", "httpListener": "web", "urlPathMap": "map"}],
        "limits": {"shutdownTimeout": 0.3, "closeGrace": 0.5}
    });
    let gateway = start_gateway(&doc).await;
    wait_healthy(&gateway, 3).await;
    let (mut ws, _) = ws_connect(port, "/chat/room1", "").await.unwrap();
    assert_eq!(ask(&mut ws, "whoami").await, "chat");
    let (mut ws2, _) = ws_connect(port, "/elsewhere", "").await.unwrap();
    assert_eq!(ask(&mut ws2, "whoami").await, "other");
    assert!(get(port, "/api", "").await.contains("backend=api"));
    assert!(get(port, "/API/v1?x=1", "").await.contains("backend=api"));
    assert!(get(port, "/apix", "").await.contains("backend=other"));
    gateway.shutdown().await;
}

#[tokio::test]
async fn cookie_affinity_sticks_and_falls_back_when_the_backend_dies() {
    let a = Backend::start("a").await;
    let b = Backend::start("b").await;
    let port = free_port();
    let gateway = start_gateway(&basic_config(
        port,
        &[&a, &b],
        json!({"cookieBasedAffinity": "Enabled"}),
        None,
    ))
    .await;
    wait_healthy(&gateway, 2).await;
    let first = get(port, "/x", "").await;
    let cookie_line = first
        .lines()
        .find(|l| {
            l.to_ascii_lowercase()
                .starts_with("set-cookie: applicationgatewayaffinity=")
        })
        .unwrap_or_else(|| panic!("affinity cookie set: {first}"))
        .to_owned();
    let value = cookie_line
        .split_once('=')
        .unwrap()
        .1
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let chosen = if first.contains("backend=a") {
        "a"
    } else {
        "b"
    };
    for _ in 0..4 {
        let r = get(
            port,
            "/x",
            &format!("Cookie: ApplicationGatewayAffinity={value}\r\n"),
        )
        .await;
        assert!(r.contains(&format!("backend={chosen}")), "sticky: {r}");
        assert!(
            !r.to_ascii_lowercase().contains("set-cookie"),
            "no new cookie needed: {r}"
        );
    }
    // WebSockets honour the cookie too.
    let (mut ws, _) = ws_connect(
        port,
        "/ws",
        &format!("Cookie: ApplicationGatewayAffinity={value}\r\n"),
    )
    .await
    .unwrap();
    assert_eq!(ask(&mut ws, "whoami").await, chosen);
    drop(ws);
    let (mut dying, survivor) = if chosen == "a" { (a, "b") } else { (b, "a") };
    dying.kill();
    let r = bounded("fallback", async {
        loop {
            let r = get(
                port,
                "/x",
                &format!("Cookie: ApplicationGatewayAffinity={value}\r\n"),
            )
            .await;
            if r.contains(&format!("backend={survivor}")) {
                break r;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    })
    .await;
    assert!(
        r.to_ascii_lowercase()
            .contains("set-cookie: applicationgatewayaffinity="),
        "a new cookie for the new backend: {r}"
    );
    gateway.shutdown().await;
}

#[tokio::test]
async fn least_connections_spreads_long_lived_sessions() {
    let a = Backend::start("a").await;
    let b = Backend::start("b").await;
    let port = free_port();
    let gateway = start_gateway(&basic_config(
        port,
        &[&a, &b],
        json!({"loadBalancing": "LeastConnections"}),
        None,
    ))
    .await;
    wait_healthy(&gateway, 2).await;
    let (mut s1, _) = ws_connect(port, "/", "").await.unwrap();
    let n1 = ask(&mut s1, "whoami").await;
    let (mut s2, _) = ws_connect(port, "/", "").await.unwrap();
    let n2 = ask(&mut s2, "whoami").await;
    assert_ne!(n1, n2, "the second session goes to the idle backend");
    let (mut s3, _) = ws_connect(port, "/", "").await.unwrap();
    let n3 = ask(&mut s3, "whoami").await;
    // Close the sessions on n3's backend: the next session must go there.
    let (mut keep, mut gone) = if n1 == n3 { (s2, s1) } else { (s1, s2) };
    bounded("close", gone.close(CloseCode::NORMAL, ""))
        .await
        .unwrap();
    bounded("close", s3.close(CloseCode::NORMAL, ""))
        .await
        .unwrap();
    bounded("sessions end", async {
        while gateway.sessions() > 1 {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    })
    .await;
    let (mut s4, _) = ws_connect(port, "/", "").await.unwrap();
    assert_eq!(ask(&mut s4, "whoami").await, n3);
    assert_ne!(ask(&mut keep, "whoami").await, n3);
    gateway.shutdown().await;
}

#[tokio::test]
async fn refusals_have_statuses_and_bodies_and_metrics_are_served() {
    let backend = Backend::start("b1").await;
    let port = free_port();
    let admin_port = free_port();
    let mut doc = basic_config(port, &[&backend], json!({}), None);
    doc["admin"] = json!({"address": format!("127.0.0.1:{admin_port}")});
    doc["httpListeners"][0]["hostNames"] = json!(["localhost"]);
    doc["limits"]["maxRequestBodyBytes"] = json!(10);
    let gateway = start_gateway(&doc).await;
    wait_healthy(&gateway, 1).await;

    let r = get(port, "/", "").await;
    assert!(r.starts_with("HTTP/1.1 200"), "{r}");
    let r = raw_exchange(
        port,
        format!("GET / HTTP/1.1\r\nHost: other.example:{port}\r\nConnection: close\r\n\r\n")
            .as_bytes(),
    )
    .await;
    assert!(
        r.starts_with("HTTP/1.1 404") && r.contains("no listener"),
        "{r}"
    );
    let r = raw_exchange(port, b"POST /echo HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Length: 11\r\n\r\nhello world").await;
    assert!(
        r.starts_with("HTTP/1.1 413") && r.contains("larger than"),
        "{r}"
    );
    let r = raw_exchange(port, b"GET /ws HTTP/1.1\r\nHost: localhost\r\nConnection: close, Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\r\n").await;
    assert!(
        r.starts_with("HTTP/1.1 400") && r.contains("WebSocket handshake refused"),
        "{r}"
    );
    let (mut ws, _) = ws_connect(port, "/", "").await.unwrap();
    assert_eq!(ask(&mut ws, "abc").await, "abc");

    let metrics = get(admin_port, "/metrics", "").await;
    assert!(metrics.starts_with("HTTP/1.1 200"), "{metrics}");
    assert!(metrics.contains("sockway_gateway_sessions 1"), "{metrics}");
    assert!(
        metrics.contains("sockway_gateway_backend_healthy{pool=\"pool\",settings=\"settings\""),
        "{metrics}"
    );
    assert!(
        metrics.contains("sockway_gateway_backend_handshakes_total{"),
        "{metrics}"
    );
    assert!(
        metrics.contains("sockway_gateway_responses_total{listener=\"web\",status=\"101\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("sockway_gateway_refusals_total{reason=\"no_listener\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("sockway_gateway_refusals_total{reason=\"body_too_large\"} 1"),
        "{metrics}"
    );

    // No healthy backend: 502 with a body.
    drop(ws);
    drop(backend);
    let r = bounded("502", async {
        loop {
            let r = get(port, "/", "").await;
            if r.contains("no healthy backend") {
                break r;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    })
    .await;
    assert!(r.contains("no healthy backend in pool \"pool\""), "{r}");
    gateway.shutdown().await;
}

#[test]
fn the_example_configurations_are_valid() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/gateway");
    for file in ["gateway.json", "gateway.toml"] {
        let config = sockway_gateway::config::load(&dir.join(file))
            .unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(config.http_listeners[0].port, 8080, "{file}");
        let ports: Vec<u16> = config.backend_address_pools[0]
            .backend_addresses
            .iter()
            .filter_map(|a| a.port)
            .collect();
        assert_eq!(ports, [5001, 5002], "{file}");
    }
}

#[tokio::test]
async fn sessions_count_against_max_connections_and_bytes_show_live() {
    let backend = Backend::start("b1").await;
    let port = free_port();
    let mut doc = basic_config(port, &[&backend], json!({}), None);
    doc["limits"]["maxConnections"] = json!(1);
    let gateway = start_gateway(&doc).await;
    wait_healthy(&gateway, 1).await;
    let (mut ws, _) = ws_connect(port, "/", "").await.unwrap();
    assert_eq!(ask(&mut ws, "12345").await, "12345");
    let r = get(port, "/", "").await;
    assert!(
        r.starts_with("HTTP/1.1 503") && r.contains("too many open connections"),
        "{r}"
    );
    let metrics = gateway.metrics_text();
    let sent = metrics
        .lines()
        .find(|l| l.starts_with("sockway_gateway_backend_sent_bytes_total{"))
        .unwrap();
    assert!(
        !sent.ends_with(" 0"),
        "bytes are counted while the session runs: {sent}"
    );
    // A reload raises the limit of the running listener; lowering it again keeps what is open.
    for (max, status) in [(2, "HTTP/1.1 200"), (1, "HTTP/1.1 503")] {
        doc["limits"]["maxConnections"] = json!(max);
        let config = sockway_gateway::config::from_str(&doc.to_string(), Format::Json).unwrap();
        gateway.apply(config).await.unwrap();
        let r = get(port, "/", "").await;
        assert!(r.starts_with(status), "maxConnections {max}: {r}");
    }
    assert_eq!(ask(&mut ws, "still open").await, "still open");
    bounded("close", ws.close(CloseCode::NORMAL, ""))
        .await
        .unwrap();
    bounded("slot freed", async {
        loop {
            if get(port, "/", "").await.starts_with("HTTP/1.1 200") {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    })
    .await;
    gateway.shutdown().await;
}

/// A frame sent in the same write as the handshake reaches the backend first: the relay
/// passes on what was read with the request head before it reads the socket itself.
#[tokio::test]
async fn a_frame_sent_with_the_handshake_is_relayed_first() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let backend = Backend::start("b1").await;
    let port = free_port();
    let gateway = start_gateway(&basic_config(port, &[&backend], json!({}), None)).await;
    wait_healthy(&gateway, 1).await;

    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let mut bytes = format!(
        "GET /chat HTTP/1.1\r\nHost: localhost:{port}\r\nUpgrade: websocket\r\n\
         Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
         Sec-WebSocket-Version: 13\r\n\r\n"
    )
    .into_bytes();
    // A masked text frame "early" (RFC 6455 section 5.2), then a masked "later".
    for word in [&b"early"[..], b"later"] {
        let key = [1u8, 2, 3, 4];
        bytes.extend_from_slice(&[0x81, 0x80 | word.len() as u8]);
        bytes.extend_from_slice(&key);
        bytes.extend(word.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
    }
    stream.write_all(&bytes).await.unwrap();
    let mut buf = bytes::BytesMut::new();
    let head_end = bounded("101", async {
        loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            let n = stream.read_buf(&mut buf).await.unwrap();
            assert!(n > 0, "{:?}", String::from_utf8_lossy(&buf));
        }
    })
    .await;
    assert!(buf.starts_with(b"HTTP/1.1 101"), "{buf:?}");
    let leftover = buf.split_off(head_end);
    let mut ws = sockway::WebSocket::from_raw(
        stream,
        sockway::Role::Client,
        sockway::WebSocketConfig::default(),
        leftover,
    );
    for expected in ["early", "later"] {
        let got = bounded("echo", ws.recv()).await.unwrap();
        match got {
            Some(sockway::Message::Text(t)) => assert_eq!(t.as_str(), expected),
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(ask(&mut ws, "after").await, "after");
    gateway.shutdown().await;
}
