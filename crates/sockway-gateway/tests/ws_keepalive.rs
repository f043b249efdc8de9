//! `webSocketKeepAlive` over real sockets: a quiet session whose sides answer the gateway's
//! pings outlives `requestTimeout`, the pongs to those pings are not relayed, and a side that
//! does not answer is closed with 1001.

mod support;

use std::time::Duration;

use bytes::BytesMut;
use serde_json::json;
use sockway_proto::frame::{FrameHeader, OpCode, MAX_HEADER_LEN};
use sockway_proto::mask::apply_mask;
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A WebSocket client that sees every frame: the stream after the 101, and bytes read ahead.
struct Raw {
    stream: TcpStream,
    buf: BytesMut,
}

impl Raw {
    async fn connect(port: u16) -> Raw {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        let request = format!(
            "GET /ws HTTP/1.1\r\nHost: localhost:{port}\r\nUpgrade: websocket\r\n\
             Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
             Sec-WebSocket-Version: 13\r\n\r\n"
        );
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut buf = BytesMut::new();
        let end = bounded("101", async {
            loop {
                if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                    break i + 4;
                }
                assert!(stream.read_buf(&mut buf).await.unwrap() > 0, "closed early");
            }
        })
        .await;
        assert!(buf.starts_with(b"HTTP/1.1 101"));
        let buf = buf.split_off(end);
        Raw { stream, buf }
    }

    /// The next frame's opcode and payload; `None` at EOF.
    async fn frame(&mut self) -> Option<(OpCode, Vec<u8>)> {
        loop {
            if let Ok(Some((h, n))) = FrameHeader::parse(&self.buf) {
                let total = n + h.payload_len as usize;
                if self.buf.len() >= total {
                    let frame = self.buf.split_to(total);
                    return Some((h.opcode, frame[n..].to_vec()));
                }
            }
            if self.stream.read_buf(&mut self.buf).await.ok()? == 0 {
                return None;
            }
        }
    }

    /// Sends a masked frame, as a client must (RFC 6455 section 5.3).
    async fn send(&mut self, opcode: OpCode, payload: &[u8]) {
        let key = [0x11, 0x22, 0x33, 0x44];
        let header = FrameHeader {
            fin: true,
            rsv: 0,
            opcode,
            mask: Some(key),
            payload_len: payload.len() as u64,
        };
        let mut head = [0u8; MAX_HEADER_LEN];
        let n = header.encode(&mut head);
        let mut frame = head[..n].to_vec();
        let mut body = payload.to_vec();
        apply_mask(&mut body, key, 0);
        frame.extend_from_slice(&body);
        self.stream.write_all(&frame).await.unwrap();
    }
}

#[tokio::test]
async fn a_quiet_session_that_answers_pings_outlives_the_request_timeout() {
    let backend = Backend::start("b").await;
    let port = free_port();
    let settings = json!({"requestTimeout": 2});
    let gateway = start_gateway(&basic_config(port, &[&backend], settings, None)).await;
    wait_healthy(&gateway, 1).await;
    let mut client = Raw::connect(port).await;

    // Quiet for two and a half times the request timeout; the client answers every ping, the
    // backend (a sockway server) does so by itself.
    let mut pings = 0;
    let quiet = tokio::time::sleep(Duration::from_secs(5));
    tokio::pin!(quiet);
    loop {
        let frame = tokio::select! {
            frame = client.frame() => frame,
            () = &mut quiet => break,
        };
        match frame {
            Some((OpCode::Ping, payload)) => {
                pings += 1;
                client.send(OpCode::Pong, &payload).await;
            }
            other => panic!("only pings may reach a quiet client, got {other:?}"),
        }
    }
    assert!(pings >= 2, "{pings} pings");
    client.send(OpCode::Text, b"still here").await;
    let echo = bounded("echo", async {
        loop {
            match client.frame().await {
                Some((OpCode::Ping, payload)) => client.send(OpCode::Pong, &payload).await,
                other => return other,
            }
        }
    })
    .await;
    assert_eq!(echo, Some((OpCode::Text, b"still here".to_vec())));
    assert_eq!(gateway.sessions(), 1);
    gateway.shutdown().await;
}

#[tokio::test]
async fn a_side_that_does_not_answer_is_closed_with_1001() {
    let backend = Backend::start("b").await;
    let port = free_port();
    let settings = json!({"requestTimeout": 2});
    let gateway = start_gateway(&basic_config(port, &[&backend], settings, None)).await;
    wait_healthy(&gateway, 1).await;
    let mut client = Raw::connect(port).await;

    // The client reads but never answers.
    let first = bounded("ping", client.frame()).await;
    assert!(matches!(first, Some((OpCode::Ping, _))), "{first:?}");
    let (opcode, payload) = bounded("close", client.frame()).await.unwrap();
    assert_eq!(opcode, OpCode::Close);
    assert_eq!(payload[..2], 1001u16.to_be_bytes());
    assert_eq!(&payload[2..], b"ping unanswered");
    bounded("session gone", async {
        while gateway.sessions() > 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    gateway.shutdown().await;
}
