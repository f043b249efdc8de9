//! A raw WebSocket hub client that can stop reading its socket: a slow subscriber. It speaks
//! just enough RFC 6455 (masked text frames out, unmasked frames in) and the JSON hub protocol
//! (records ending in 0x1E) to join a group; its receive buffer is made small so the server's
//! writes back up soon after it stops reading.

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// Every single wait is bounded by this.
const WAIT: Duration = Duration::from_secs(20);

/// The receive buffer asked for (the kernel doubles it).
const RECEIVE_BUFFER: u32 = 4096;

/// The largest frame this client accepts.
const MAX_FRAME: u64 = 1 << 20;

/// A connected client past the hub handshake.
pub struct SlowClient {
    stream: TcpStream,
    /// Bytes read but not parsed yet.
    buffer: Vec<u8>,
}

impl SlowClient {
    /// Connects to `path` on `addr` (negotiation skipped), JSON protocol.
    pub async fn connect(addr: SocketAddr, path: &str) -> Self {
        let socket = TcpSocket::new_v4().expect("a socket");
        socket
            .set_recv_buffer_size(RECEIVE_BUFFER)
            .expect("a small receive buffer");
        let stream = within(socket.connect(addr), "connect")
            .await
            .expect("connects");
        let mut client = SlowClient {
            stream,
            buffer: Vec::new(),
        };
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        );
        client.write(request.as_bytes()).await;
        let head = client.read_head().await;
        assert!(head.starts_with("HTTP/1.1 101"), "{head}");
        client
            .send_text("{\"protocol\":\"json\",\"version\":1}\u{1e}")
            .await;
        let records = client.next_records().await;
        assert_eq!(records.first(), Some(&serde_json::json!({})), "handshake");
        client
    }

    /// Invokes `AddToGroup(group)` and reads until the group's welcome arrives, so the client
    /// is a member before it stops reading.
    pub async fn join(&mut self, group: &str) {
        let invocation =
            serde_json::json!({"type": 1, "target": "AddToGroup", "arguments": [group]});
        self.send_text(&format!("{invocation}\u{1e}")).await;
        let joined = format!("has joined the group {group}.");
        loop {
            let records = self.next_records().await;
            let welcomed = records.iter().any(|record| {
                record["target"] == "Send"
                    && record["arguments"][0]
                        .as_str()
                        .is_some_and(|text| text.ends_with(&joined))
            });
            if welcomed {
                return;
            }
        }
    }

    /// Reads again, everything up to the server's close frame (bounded by `limit` in all), and
    /// returns the hub records received.
    pub async fn read_to_close(&mut self, limit: Duration) -> Vec<Value> {
        let mut records = Vec::new();
        let all = async {
            loop {
                let (opcode, payload) = self.next_frame().await;
                match opcode {
                    0x8 => return,
                    0x0..=0x2 => records.extend(parse_records(&payload)),
                    _ => {}
                }
            }
        };
        tokio::time::timeout(limit, all)
            .await
            .expect("the server closed the socket in time");
        records
    }

    /// The records of the next text or binary frame.
    async fn next_records(&mut self) -> Vec<Value> {
        loop {
            let (opcode, payload) = self.next_frame().await;
            assert_ne!(opcode, 0x8, "the server closed the socket");
            if opcode <= 0x2 {
                return parse_records(&payload);
            }
        }
    }

    /// The next frame: its opcode and (unmasked) payload.
    async fn next_frame(&mut self) -> (u8, Vec<u8>) {
        self.fill(2).await;
        let opcode = self.buffer[0] & 0x0f;
        let short = u64::from(self.buffer[1] & 0x7f);
        let (header, length) = match short {
            126 => {
                self.fill(4).await;
                (
                    4,
                    u64::from(u16::from_be_bytes([self.buffer[2], self.buffer[3]])),
                )
            }
            127 => {
                self.fill(10).await;
                let mut bytes = [0u8; 8];
                bytes.copy_from_slice(&self.buffer[2..10]);
                (10, u64::from_be_bytes(bytes))
            }
            length => (2, length),
        };
        assert!(length <= MAX_FRAME, "a frame of {length} bytes");
        let end = header + length as usize;
        self.fill(end).await;
        let payload = self.buffer[header..end].to_vec();
        self.buffer.drain(..end);
        (opcode, payload)
    }

    /// Reads until at least `size` bytes are buffered.
    async fn fill(&mut self, size: usize) {
        while self.buffer.len() < size {
            let mut chunk = [0u8; 16 * 1024];
            let read = within(self.stream.read(&mut chunk), "read")
                .await
                .expect("the socket reads");
            assert!(read > 0, "the server closed the connection mid-frame");
            self.buffer.extend_from_slice(&chunk[..read]);
        }
    }

    /// Reads the HTTP response head, keeping what follows it.
    async fn read_head(&mut self) -> String {
        loop {
            if let Some(end) = self.buffer.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&self.buffer[..end]).into_owned();
                self.buffer.drain(..end + 4);
                return head;
            }
            let size = self.buffer.len() + 1;
            self.fill(size).await;
        }
    }

    /// Sends `text` as one masked text frame (RFC 6455 section 5.3: clients mask).
    async fn send_text(&mut self, text: &str) {
        let mask = [0x5a, 0x13, 0xc7, 0x2e];
        let payload = text.as_bytes();
        let mut frame = vec![0x81];
        match payload.len() {
            length @ 0..=125 => frame.push(0x80 | length as u8),
            length @ 126..=0xffff => {
                frame.push(0x80 | 126);
                frame.extend_from_slice(&(length as u16).to_be_bytes());
            }
            length => {
                frame.push(0x80 | 127);
                frame.extend_from_slice(&(length as u64).to_be_bytes());
            }
        }
        frame.extend_from_slice(&mask);
        frame.extend(
            payload
                .iter()
                .enumerate()
                .map(|(i, byte)| byte ^ mask[i % 4]),
        );
        self.write(&frame).await;
    }

    async fn write(&mut self, bytes: &[u8]) {
        within(self.stream.write_all(bytes), "write")
            .await
            .expect("the socket writes");
    }
}

/// The JSON records of one message (each ends with 0x1E).
fn parse_records(payload: &[u8]) -> Vec<Value> {
    payload
        .split(|&byte| byte == 0x1e)
        .filter(|record| !record.is_empty())
        .map(|record| serde_json::from_slice(record).expect("a JSON record"))
        .collect()
}

/// `future`, failing the test after [`WAIT`].
async fn within<T>(future: impl std::future::Future<Output = T>, what: &str) -> T {
    tokio::time::timeout(WAIT, future)
        .await
        .unwrap_or_else(|_| panic!("{what}: nothing within {WAIT:?}"))
}
