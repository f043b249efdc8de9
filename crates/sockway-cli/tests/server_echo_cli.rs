//! `sockway echo` probed from outside as a user (or a checker) would: the page, 400 on a plain
//! GET to /ws, origins (allowed, refused, absent), the 431/503/slowloris limits, a silent peer
//! closed by keep-alive, Ctrl-C closing open sockets with 1001, and the echo's framing (frame
//! by frame, or whole messages).

mod echo_support;

use std::time::{Duration, Instant};

use echo_support::{start_echo, EchoProcess, STEP};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const KEY_HEADERS: &str = "Upgrade: websocket\r\nConnection: Upgrade\r\n\
                           Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n";

fn handshake(extra: &str) -> String {
    format!("GET /ws HTTP/1.1\r\nHost: localhost\r\n{KEY_HEADERS}{extra}\r\n")
}

/// Sends `request` on a new connection; returns the status and everything read until the
/// response head (and a short body) is in.
async fn exchange(server: &EchoProcess, request: &str) -> (u16, String, TcpStream) {
    let mut stream = TcpStream::connect(server.addr).await.expect("connect");
    stream.write_all(request.as_bytes()).await.expect("write");
    let (status, text) = read_head(&mut stream).await;
    (status, text, stream)
}

/// Reads until the end of a response head plus whatever body came with it.
async fn read_head(stream: &mut TcpStream) -> (u16, String) {
    let mut buf = Vec::new();
    tokio::time::timeout(STEP, async {
        let mut chunk = [0u8; 4096];
        loop {
            let n = stream.read(&mut chunk).await.expect("read");
            assert!(
                n > 0,
                "closed without a response: {:?}",
                String::from_utf8_lossy(&buf)
            );
            buf.extend_from_slice(&chunk[..n]);
            let text = String::from_utf8_lossy(&buf);
            if let Some((head, body)) = text.split_once("\r\n\r\n") {
                let length = head
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("content-length:")
                            .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                    })
                    .unwrap_or(0);
                if body.len() >= length {
                    break;
                }
            }
        }
    })
    .await
    .expect("response timed out");
    let text = String::from_utf8_lossy(&buf).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status");
    (status, text)
}

/// Reads one unmasked server frame: (opcode, payload); `None` at EOF.
async fn read_frame(stream: &mut TcpStream) -> Option<(u8, Vec<u8>)> {
    let mut head = [0u8; 2];
    stream.read_exact(&mut head).await.ok()?;
    let len = match head[1] & 0x7f {
        126 => stream.read_u16().await.ok()? as usize,
        127 => stream.read_u64().await.ok()? as usize,
        n => n as usize,
    };
    let mut payload = vec![0u8; len];
    stream.read_exact(&mut payload).await.ok()?;
    Some((head[0] & 0x0f, payload))
}

async fn expect_eof(stream: &mut TcpStream) {
    let mut sink = [0u8; 1024];
    tokio::time::timeout(STEP, async {
        while let Ok(n) = stream.read(&mut sink).await {
            if n == 0 {
                break;
            }
        }
    })
    .await
    .expect("the server kept the connection open");
}

#[tokio::test]
async fn the_page_the_endpoint_and_origins() {
    let server = start_echo(&["--allowed-origin", "http://good.example:8080"]).await;

    let (status, text, _) = exchange(&server, "GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert_eq!(status, 200);
    assert!(text.contains("text/html"), "{text}");
    for needle in [
        "Connect",
        "Send",
        "Close Socket",
        "Communication Log",
        "id=\"state\"",
    ] {
        assert!(text.contains(needle), "page lacks {needle}");
    }
    assert!(
        !text.contains("src=\"http"),
        "the page loads nothing external"
    );

    let (status, text, _) = exchange(&server, "GET /ws HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert_eq!(status, 400);
    assert!(text.contains("only accepts WebSocket requests"), "{text}");

    let (status, _, _) =
        exchange(&server, &handshake("Origin: HTTP://GOOD.example:8080\r\n")).await;
    assert_eq!(status, 101, "allowed origin");
    let (status, _, _) = exchange(&server, &handshake("")).await;
    assert_eq!(status, 101, "absent origin");
    let (status, text, _) = exchange(&server, &handshake("Origin: http://evil.example\r\n")).await;
    assert_eq!(status, 403, "{text}");
    assert!(
        text.contains("http://evil.example is not allowed"),
        "{text}"
    );
}

/// `--compression` and its takeover flags reach the handshake of both servers: a browser's
/// offer is answered with permessage-deflate and both resets (RFC 7692 section 7.1.1).
#[tokio::test]
async fn compression_flags_are_agreed_by_both_servers() {
    let flags = [
        "--compression",
        "--server-no-context-takeover",
        "--client-no-context-takeover",
    ];
    for event_loop in [false, true] {
        let mut args = flags.to_vec();
        if event_loop {
            args.push("--event-loop");
        }
        let server = start_echo(&args).await;
        let offer =
            handshake("Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n");
        let (status, head, _stream) = exchange(&server, &offer).await;
        assert_eq!(status, 101, "{head}");
        let agreed = head
            .lines()
            .find(|l| {
                l.to_ascii_lowercase()
                    .starts_with("sec-websocket-extensions:")
            })
            .unwrap_or_else(|| panic!("no extension agreed (event loop: {event_loop}): {head}"));
        for part in [
            "permessage-deflate",
            "server_no_context_takeover",
            "client_no_context_takeover",
        ] {
            assert!(agreed.contains(part), "{agreed} (event loop: {event_loop})");
        }
    }
}

#[tokio::test]
async fn a_silent_peer_is_closed_within_interval_plus_timeout() {
    let mut server = start_echo(&[
        "--keep-alive-interval",
        "0.2",
        "--keep-alive-timeout",
        "0.3",
    ])
    .await;
    let (status, _, mut stream) = exchange(&server, &handshake("")).await;
    assert_eq!(status, 101);
    let opened = Instant::now();
    let (opcode, _) = tokio::time::timeout(STEP, read_frame(&mut stream))
        .await
        .expect("ping timed out")
        .expect("a ping");
    assert_eq!(opcode, 0x9);
    expect_eof(&mut stream).await;
    let closed_after = opened.elapsed();
    // The server's timers started when it sent the 101, a little before `opened`.
    assert!(
        closed_after >= Duration::from_millis(300),
        "{closed_after:?}"
    );
    assert!(closed_after < Duration::from_secs(3), "{closed_after:?}");
    let line = server.wait_for_log("WebSocket failed").await;
    assert!(line.contains("keep-alive timeout"), "{line}");
}

#[tokio::test]
async fn limits_answer_431_408_and_503() {
    let server = start_echo(&[
        "--max-header-bytes",
        "2048",
        "--handshake-timeout",
        "0.3",
        "--max-connections",
        "2",
    ])
    .await;

    let big = format!("X-Big: {}\r\n", "a".repeat(4096));
    let (status, text, _) = exchange(&server, &handshake(&big)).await;
    assert_eq!(status, 431, "{text}");
    assert!(text.contains("2048 bytes"), "{text}");

    let mut slow = TcpStream::connect(server.addr).await.unwrap();
    slow.write_all(b"GET /ws HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let started = Instant::now();
    let (status, _) = read_head(&mut slow).await;
    assert_eq!(status, 408);
    expect_eof(&mut slow).await;
    assert!(started.elapsed() < Duration::from_secs(3));
    drop(slow);

    // Fill both slots (the refused connections above may take a moment to be let go).
    let mut held = Vec::new();
    let deadline = Instant::now() + STEP;
    while held.len() < 2 {
        let (status, text, stream) = exchange(&server, &handshake("")).await;
        match status {
            101 => held.push(stream),
            503 if Instant::now() < deadline => tokio::time::sleep(Duration::from_millis(20)).await,
            _ => panic!("{text}"),
        }
    }
    let (status, text, _) = exchange(&server, &handshake("")).await;
    assert_eq!(status, 503, "{text}");
    assert!(
        text.to_ascii_lowercase().contains("retry-after: 5"),
        "{text}"
    );
}

#[cfg(unix)]
#[tokio::test]
async fn ctrl_c_closes_open_sockets_with_1001_and_exits() {
    ctrl_c_closes_and_exits(&[]).await;
}

/// A text message sent in two fragments comes back in the same two frames by default, and as
/// one frame with `--whole-messages`.
#[tokio::test]
async fn the_echo_keeps_the_framing_or_answers_whole_messages() {
    // "he" then a continuation "llo", masked with 1, 2, 3, 4.
    let first = [0x01, 0x82, 1, 2, 3, 4, b'h' ^ 1, b'e' ^ 2];
    let rest = [0x80, 0x83, 1, 2, 3, 4, b'l' ^ 1, b'l' ^ 2, b'o' ^ 3];
    for (args, expected) in [
        (&[][..], vec![(0x1, b"he".to_vec()), (0x0, b"llo".to_vec())]),
        (&["--whole-messages"][..], vec![(0x1, b"hello".to_vec())]),
    ] {
        let server = start_echo(args).await;
        let (status, _, mut stream) = exchange(&server, &handshake("")).await;
        assert_eq!(status, 101);
        stream.write_all(&first).await.unwrap();
        stream.write_all(&rest).await.unwrap();
        let mut frames = Vec::new();
        for _ in 0..expected.len() {
            let frame = tokio::time::timeout(STEP, read_frame(&mut stream))
                .await
                .expect("echo timed out")
                .expect("a frame");
            frames.push(frame);
        }
        assert_eq!(frames, expected, "sockway echo {args:?}");
    }
}

/// The same on one thread (`--worker-threads 1`: a current-thread runtime), echoing first.
#[cfg(unix)]
#[tokio::test]
async fn one_worker_thread_echoes_and_shuts_down_the_same() {
    ctrl_c_closes_and_exits(&["--worker-threads", "1"]).await;
}

#[cfg(unix)]
async fn ctrl_c_closes_and_exits(args: &[&str]) {
    let mut server = start_echo(args).await;
    let (status, _, mut stream) = exchange(&server, &handshake("")).await;
    assert_eq!(status, 101);
    // A masked text frame "hi" comes back unmasked.
    stream
        .write_all(&[0x81, 0x82, 1, 2, 3, 4, b'h' ^ 1, b'i' ^ 2])
        .await
        .unwrap();
    let echoed = tokio::time::timeout(STEP, read_frame(&mut stream))
        .await
        .expect("echo timed out");
    assert_eq!(echoed, Some((0x1, b"hi".to_vec())));
    let pid = server.child.id().expect("pid");
    let kill = std::process::Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status()
        .expect("kill");
    assert!(kill.success());
    let (opcode, payload) = tokio::time::timeout(STEP, read_frame(&mut stream))
        .await
        .expect("close timed out")
        .expect("a close frame");
    assert_eq!(opcode, 0x8);
    assert_eq!(u16::from_be_bytes([payload[0], payload[1]]), 1001);
    // Answer the close (masked, as a client must), then the server exits cleanly.
    let mut reply = vec![0x88, 0x82, 1, 2, 3, 4];
    reply.extend(payload[..2].iter().zip([1u8, 2]).map(|(b, m)| b ^ m));
    stream.write_all(&reply).await.unwrap();
    drop(stream);
    let exit = tokio::time::timeout(STEP, server.child.wait())
        .await
        .expect("sockway echo did not exit")
        .expect("wait");
    assert!(exit.success(), "{exit:?}");
    server.wait_for_log("code=1001").await;
}
