//! The message client over loopback: round trips, information, the event runner and the
//! closed notification, handshake failures, timeouts, and servers that break the protocol.

#![cfg(feature = "client")]

mod client_support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use client_support::*;
use sockway::client::{ClientBuilder, ClientError, ClosedBy, ErrorStatus, Phase};
use sockway::{CloseCode, Message, MessageKind};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::timeout;

fn url(addr: std::net::SocketAddr, path: &str) -> String {
    format!("ws://{addr}{path}")
}

#[tokio::test]
async fn round_trips_text_and_binary_and_reports_information() {
    let addr = echo_server().await;
    let mut socket = timeout(
        STEP,
        ClientBuilder::new(url(addr, "/echo")).connect_message(),
    )
    .await
    .unwrap()
    .unwrap();
    let info = socket.info().clone();
    assert_eq!(info.remote_addr, addr);
    assert!(info.local_addr.ip().is_loopback());
    assert_eq!(info.status, http::StatusCode::SWITCHING_PROTOCOLS);
    assert!(!info.secure && info.peer_certificates.is_empty());
    assert!(info.connect_duration < Duration::from_secs(5));

    socket.send_text("héllo").await.unwrap();
    assert_eq!(socket.recv().await.unwrap(), Some(Message::text("héllo")));
    socket.send_binary(&[0, 1, 2, 255]).await.unwrap();
    assert_eq!(
        socket.recv().await.unwrap(),
        Some(Message::binary(vec![0u8, 1, 2, 255]))
    );
    // The default type for send_bytes changes after connecting (the Windows Runtime's `MessageType` can too).
    assert_eq!(socket.message_type(), MessageKind::Binary);
    socket.send_bytes(b"raw").await.unwrap();
    assert!(matches!(
        socket.recv().await.unwrap(),
        Some(Message::Binary(_))
    ));
    socket.set_message_type(MessageKind::Text);
    socket.send_bytes(b"now text").await.unwrap();
    assert_eq!(
        socket.recv().await.unwrap(),
        Some(Message::text("now text"))
    );
    let e = socket.send_bytes(&[0xff, 0xfe]).await.unwrap_err();
    assert!(matches!(e, ClientError::Send(_)), "{e}");

    let stats = socket.stats();
    assert_eq!(stats.messages_sent, 4);
    assert_eq!(stats.messages_received, 4);
    assert!(stats.bytes_sent > 0 && stats.bytes_received > 0);

    let closed = timeout(STEP, socket.close(CloseCode::NORMAL, "done"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(closed.code, CloseCode::NORMAL);
    assert_eq!(closed.by, ClosedBy::Local);
    assert!(closed.is_normal());
}

#[tokio::test]
async fn request_carries_path_headers_origin_credentials_and_subprotocol() {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let addr = serve_once(|tcp| async move {
        let (mut ws, request) = accept(tcp, "Sec-WebSocket-Protocol: superchat\r\n").await;
        let _ = tx.send(request);
        let _ = ws.close(CloseCode::NORMAL, "").await;
    })
    .await;
    let socket = ClientBuilder::new(format!("ws://user:pa%20ss@{addr}/chat?room=1"))
        .subprotocol("chat")
        .subprotocol("superchat")
        .header("X-Api-Key", "k1")
        .origin("https://app.example")
        .connect_message();
    let socket = timeout(STEP, socket).await.unwrap().unwrap();
    assert_eq!(socket.info().subprotocol.as_deref(), Some("superchat"));
    let request = rx.await.unwrap();
    assert_eq!(request.target, "/chat?room=1");
    assert_eq!(request.headers["x-api-key"], "k1");
    assert_eq!(request.headers["origin"], "https://app.example");
    assert_eq!(request.headers["sec-websocket-protocol"], "chat, superchat");
    // "user:pa ss" in base64.
    assert_eq!(request.headers["authorization"], "Basic dXNlcjpwYSBzcw==");
    assert_eq!(request.headers["host"], addr.to_string().as_str());

    let (tx, rx) = tokio::sync::oneshot::channel();
    let addr = serve_once(|tcp| async move {
        let (_ws, request) = accept(tcp, "").await;
        let _ = tx.send(request);
    })
    .await;
    let _socket = timeout(
        STEP,
        ClientBuilder::new(url(addr, "/"))
            .bearer_auth("t0ken")
            .connect_message(),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(rx.await.unwrap().headers["authorization"], "Bearer t0ken");
}

#[tokio::test]
async fn runner_reports_messages_and_a_remote_close() {
    let addr = serve_once(|tcp| async move {
        let (mut ws, _) = accept(tcp, "").await;
        ws.send_text("one").await.unwrap();
        ws.send_binary(b"two").await.unwrap();
        let _ = ws.close(CloseCode(4000), "bye").await;
    })
    .await;
    let socket = ClientBuilder::new(url(addr, "/")).connect_message();
    let socket = timeout(STEP, socket).await.unwrap().unwrap();
    let received = Arc::new(Mutex::new(Vec::new()));
    let sink = received.clone();
    let mut closed = None;
    timeout(
        STEP,
        socket.run(|m| sink.lock().unwrap().push(m), |c| closed = Some(c)),
    )
    .await
    .unwrap();
    assert_eq!(
        *received.lock().unwrap(),
        vec![Message::text("one"), Message::binary(&b"two"[..])]
    );
    let closed = closed.expect("closed notification");
    assert_eq!(
        (closed.code, closed.reason.as_str()),
        (CloseCode(4000), "bye")
    );
    assert_eq!(closed.by, ClosedBy::Remote);
    assert!(closed.error.is_none());
}

#[tokio::test]
async fn split_sender_works_while_the_receiver_runs() {
    let addr = echo_server().await;
    let socket = ClientBuilder::new(url(addr, "/")).connect_message();
    let socket = timeout(STEP, socket).await.unwrap().unwrap();
    let (sender, receiver) = socket.split();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let (closed_tx, closed_rx) = tokio::sync::oneshot::channel();
    tokio::spawn(receiver.run(
        move |m| {
            let _ = tx.send(m);
        },
        move |c| {
            let _ = closed_tx.send(c);
        },
    ));
    sender.set_message_type(MessageKind::Text);
    sender.send_bytes(b"ping?").await.unwrap();
    let echoed = timeout(STEP, rx.recv()).await.unwrap().unwrap();
    assert_eq!(echoed, Message::text("ping?"));
    sender.close(CloseCode::NORMAL, "").await.unwrap();
    let closed = timeout(STEP, closed_rx).await.unwrap().unwrap();
    assert_eq!(closed.by, ClosedBy::Local);
    assert_eq!(closed.code, CloseCode::NORMAL);
}

#[tokio::test]
async fn server_dropping_its_socket_is_a_remote_going_away() {
    let addr = serve_once(|tcp| async move {
        let (ws, _) = accept(tcp, "").await;
        // Dropping an open socket sends close 1001 (RFC 6455 section 7.4.1).
        drop(ws);
    })
    .await;
    let socket = ClientBuilder::new(url(addr, "/")).connect_message();
    let socket = timeout(STEP, socket).await.unwrap().unwrap();
    let mut closed = None;
    timeout(STEP, socket.run(|_| {}, |c| closed = Some(c)))
        .await
        .unwrap();
    let closed = closed.unwrap();
    assert_eq!(closed.code, CloseCode::GOING_AWAY, "{closed:?}");
    assert_eq!(closed.by, ClosedBy::Remote);
    assert!(closed.is_normal());
}

#[tokio::test]
async fn tcp_close_without_close_frame_is_abnormal() {
    let addr = serve_once(|mut tcp| async move {
        let request = read_request(&mut tcp).await;
        tcp.write_all(accept_response(&request, "").as_bytes())
            .await
            .unwrap();
        // A text frame, then FIN without a close frame.
        tcp.write_all(b"\x81\x02hi").await.unwrap();
    })
    .await;
    let socket = ClientBuilder::new(url(addr, "/")).connect_message();
    let mut socket = timeout(STEP, socket).await.unwrap().unwrap();
    assert_eq!(socket.recv().await.unwrap(), Some(Message::text("hi")));
    let e = timeout(STEP, socket.recv()).await.unwrap().unwrap_err();
    assert!(matches!(e, ClientError::Abnormal), "{e}");
    assert_eq!(e.status(), ErrorStatus::ConnectionLost);
}

/// A server that writes raw bytes after the handshake; returns what the client then sent.
async fn raw_server(
    frames: &'static [u8],
) -> (
    std::net::SocketAddr,
    tokio::sync::oneshot::Receiver<Vec<u8>>,
) {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let addr = serve_once(move |mut tcp| async move {
        let request = read_request(&mut tcp).await;
        tcp.write_all(accept_response(&request, "").as_bytes())
            .await
            .unwrap();
        tcp.write_all(frames).await.unwrap();
        // Read until the client's close frame, then close TCP as a server does.
        let mut seen = Vec::new();
        let _ = timeout(STEP, async {
            let mut chunk = [0u8; 256];
            while close_code_sent(&seen).is_none() {
                match tcp.read(&mut chunk).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => seen.extend_from_slice(&chunk[..n]),
                }
            }
        })
        .await;
        let _ = tx.send(seen);
    })
    .await;
    (addr, rx)
}

/// The status code in the client's (masked) close frame.
fn close_code_sent(bytes: &[u8]) -> Option<u16> {
    if bytes.len() < 8 || bytes[0] != 0x88 {
        return None;
    }
    let mask = &bytes[2..6];
    Some(u16::from_be_bytes([bytes[6] ^ mask[0], bytes[7] ^ mask[1]]))
}

#[tokio::test]
async fn masked_frame_from_server_fails_with_1002() {
    // A masked text frame "hi" (RFC 6455 section 5.1: the client must close).
    let (addr, seen) = raw_server(b"\x81\x82\x01\x02\x03\x04\x69\x6b").await;
    let socket = ClientBuilder::new(url(addr, "/")).connect_message();
    let mut socket = timeout(STEP, socket).await.unwrap().unwrap();
    let e = timeout(STEP, socket.recv()).await.unwrap().unwrap_err();
    assert!(
        matches!(e, ClientError::Protocol { code, .. } if code == CloseCode::PROTOCOL_ERROR),
        "{e}"
    );
    drop(socket);
    let seen = timeout(STEP, seen).await.unwrap().unwrap();
    assert_eq!(close_code_sent(&seen), Some(1002));
}

#[tokio::test]
async fn invalid_utf8_and_reserved_bits_fail_the_connection() {
    let (addr, seen) = raw_server(b"\x81\x02\xc3\x28").await;
    let mut socket = ClientBuilder::new(url(addr, "/"))
        .connect_message()
        .await
        .unwrap();
    let e = timeout(STEP, socket.recv()).await.unwrap().unwrap_err();
    assert!(
        matches!(e, ClientError::Protocol { code, .. } if code == CloseCode::INVALID_PAYLOAD),
        "{e}"
    );
    drop(socket);
    assert_eq!(
        close_code_sent(&timeout(STEP, seen).await.unwrap().unwrap()),
        Some(1007)
    );

    let (addr, seen) = raw_server(b"\xc1\x00").await;
    let mut socket = ClientBuilder::new(url(addr, "/"))
        .connect_message()
        .await
        .unwrap();
    let mut closed = None;
    let e = timeout(STEP, socket.recv()).await.unwrap().unwrap_err();
    if let ClientError::Protocol { code, .. } = &e {
        closed = Some(*code);
    }
    assert_eq!(closed, Some(CloseCode::PROTOCOL_ERROR), "{e}");
    drop(socket);
    assert_eq!(
        close_code_sent(&timeout(STEP, seen).await.unwrap().unwrap()),
        Some(1002)
    );
}

#[tokio::test]
async fn oversized_message_fails_with_1009() {
    // A 64-bit length of 1 MiB against a 1 KiB limit: refused from the header alone.
    let (addr, seen) = raw_server(b"\x82\x7f\x00\x00\x00\x00\x00\x10\x00\x00").await;
    let mut socket = ClientBuilder::new(url(addr, "/"))
        .max_message_size(1024)
        .connect_message()
        .await
        .unwrap();
    let e = timeout(STEP, socket.recv()).await.unwrap().unwrap_err();
    assert!(
        matches!(e, ClientError::Protocol { code, .. } if code == CloseCode::MESSAGE_TOO_BIG),
        "{e}"
    );
    drop(socket);
    assert_eq!(
        close_code_sent(&timeout(STEP, seen).await.unwrap().unwrap()),
        Some(1009)
    );
}

#[tokio::test]
async fn rejected_handshake_has_status_and_headers() {
    let addr = serve_once(|mut tcp| async move {
        let _ = read_request(&mut tcp).await;
        tcp.write_all(
            b"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Bearer\r\nContent-Length: 0\r\n\r\n",
        )
        .await
        .unwrap();
    })
    .await;
    let e = timeout(STEP, ClientBuilder::new(url(addr, "/")).connect_message())
        .await
        .unwrap()
        .unwrap_err();
    match &e {
        ClientError::Rejected { status, headers } => {
            assert_eq!(status.as_u16(), 401);
            assert_eq!(headers["www-authenticate"], "Bearer");
        }
        other => panic!("expected a rejection, got {other}"),
    }
    assert!(e.is_connect_error());
    assert!(e.to_string().contains("401"));
}

#[tokio::test]
async fn bad_accept_unoffered_subprotocol_and_huge_head_are_invalid_responses() {
    let cases: [&'static [u8]; 3] = [
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: AAAAAAAAAAAAAAAAAAAAAAAAAAA=\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi",
        b"HTTP/1.1 101 Switching Protocols\r\nX-Padding: ",
    ];
    for (i, response) in cases.into_iter().enumerate() {
        let addr = serve_once(move |mut tcp| async move {
            let _ = read_request(&mut tcp).await;
            let _ = tcp.write_all(response).await;
            if i == 2 {
                // Pad the head past the client's limit.
                let _ = tcp.write_all(&[b'x'; 4096]).await;
            }
            let mut sink = Vec::new();
            let _ = timeout(STEP, tcp.read_to_end(&mut sink)).await;
        })
        .await;
        let e = timeout(
            STEP,
            ClientBuilder::new(url(addr, "/"))
                .max_response_head_size(1024)
                .connect_message(),
        )
        .await
        .unwrap()
        .unwrap_err();
        let expected = if i == 1 {
            ErrorStatus::Rejected
        } else {
            ErrorStatus::InvalidResponse
        };
        assert_eq!(e.status(), expected, "case {i}: {e}");
    }

    let addr = serve_once(|tcp| async move {
        let (_ws, _) = accept(tcp, "Sec-WebSocket-Protocol: other\r\n").await;
    })
    .await;
    let e = ClientBuilder::new(url(addr, "/"))
        .subprotocol("chat")
        .connect_message()
        .await
        .unwrap_err();
    assert!(matches!(e, ClientError::InvalidResponse(_)), "{e}");
}

#[tokio::test]
async fn invalid_urls_and_refused_connections() {
    for bad in [
        "http://127.0.0.1/",
        "ws://",
        "wss://host/#x",
        "127.0.0.1:80",
    ] {
        let e = ClientBuilder::new(bad).connect_message().await.unwrap_err();
        assert!(matches!(e, ClientError::InvalidUrl { .. }), "{bad}: {e}");
        assert!(
            e.to_string().contains("ws://"),
            "the message says what to use: {e}"
        );
    }
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let e = ClientBuilder::new(url(addr, "/"))
        .connect_message()
        .await
        .unwrap_err();
    assert!(matches!(e, ClientError::Refused { .. }), "{e}");

    let e = ClientBuilder::new("ws://no-such-host.invalid/")
        .resolver(|_: &str, _: u16| Ok(Vec::new()))
        .connect_message()
        .await
        .unwrap_err();
    assert!(matches!(e, ClientError::HostNotFound { .. }), "{e}");
}

#[tokio::test]
async fn handshake_timeout_names_its_phase() {
    // The server accepts TCP but never answers the upgrade request.
    let addr = serve_once(|tcp| async move {
        tokio::time::sleep(STEP).await;
        drop(tcp);
    })
    .await;
    let started = std::time::Instant::now();
    let e = ClientBuilder::new(url(addr, "/"))
        .connect_timeout(Duration::from_millis(300))
        .connect_message()
        .await
        .unwrap_err();
    assert!(
        matches!(
            e,
            ClientError::Timeout {
                phase: Phase::Handshake,
                ..
            }
        ),
        "{e}"
    );
    // The server holds the connection for STEP: the error came from the client's deadline.
    assert!(started.elapsed() < STEP, "{:?}", started.elapsed());
}

#[tokio::test]
async fn receive_timeout_is_reported() {
    let addr = serve_once(|tcp| async move {
        let (ws, _) = accept(tcp, "").await;
        tokio::time::sleep(STEP).await;
        drop(ws);
    })
    .await;
    let mut socket = ClientBuilder::new(url(addr, "/"))
        .receive_timeout(Some(Duration::from_millis(100)))
        .connect_message()
        .await
        .unwrap();
    let e = timeout(STEP, socket.recv()).await.unwrap().unwrap_err();
    assert!(
        matches!(
            e,
            ClientError::Timeout {
                phase: Phase::Receive,
                ..
            }
        ),
        "{e}"
    );
}

#[tokio::test]
async fn server_close_reply_is_waited_for_and_pings_are_answered() {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let addr = serve_once(|tcp| async move {
        let (mut ws, _) = accept(tcp, "").await;
        ws.ping(b"are you there").await.unwrap();
        // The pong is consumed by the server socket; the client's next message follows it.
        let message = ws.recv().await.unwrap();
        let _ = tx.send(message);
        let _ = ws.close(CloseCode::NORMAL, "").await;
    })
    .await;
    let mut socket = ClientBuilder::new(url(addr, "/"))
        .connect_message()
        .await
        .unwrap();
    socket.send_text("after ping").await.unwrap();
    assert!(timeout(STEP, socket.recv())
        .await
        .unwrap()
        .unwrap()
        .is_none());
    assert_eq!(rx.await.unwrap(), Some(Message::text("after ping")));
    let closed = socket.closed().unwrap();
    assert_eq!(closed.by, ClosedBy::Remote);
    assert_eq!(closed.code, CloseCode::NORMAL);
}

#[tokio::test]
async fn runner_reports_a_protocol_violation_as_a_local_close() {
    let (addr, _seen) = raw_server(b"\x81\x82\x01\x02\x03\x04\x69\x6b").await;
    let socket = ClientBuilder::new(url(addr, "/"))
        .connect_message()
        .await
        .unwrap();
    let mut closed = None;
    timeout(STEP, socket.run(|_| {}, |c| closed = Some(c)))
        .await
        .unwrap();
    let closed = closed.unwrap();
    assert_eq!(closed.code, CloseCode::PROTOCOL_ERROR);
    assert_eq!(closed.by, ClosedBy::Local);
    assert!(matches!(closed.error, Some(ClientError::Protocol { .. })));
    assert!(!closed.is_normal());
}
