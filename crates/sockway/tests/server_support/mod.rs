//! Helpers shared by the `server_*` integration tests: start a [`Server`] on a loopback port,
//! speak raw HTTP/1.1 and raw WebSocket frames to it, and bound every wait in time.
#![allow(dead_code)]

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::{Buf, BytesMut};
use http::{Request, Response, StatusCode};
use hyper::body::Incoming;
use sockway::server::{
    Body, HttpService, ResponseBody, Server, ServerOptions, ServerWebSocket, Service,
    ShutdownHandle, UpgradeInfo,
};
use sockway::{Message, Role, WebSocket, WebSocketConfig};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// The longest any single step of a test may take before it counts as a hang.
pub const STEP: Duration = Duration::from_secs(5);

/// Awaits `future`, failing the test if it takes longer than [`STEP`].
pub async fn within<F: Future>(what: &str, future: F) -> F::Output {
    tokio::time::timeout(STEP, future)
        .await
        .unwrap_or_else(|_| panic!("timed out: {what}"))
}

/// A server running on a loopback port.
pub struct TestServer {
    pub addr: SocketAddr,
    pub handle: ShutdownHandle,
    pub task: JoinHandle<()>,
}

impl TestServer {
    /// Starts `service` with `options` (signal handling off) on 127.0.0.1, any port.
    pub async fn start<S, B>(options: ServerOptions, service: S) -> Self
    where
        S: HttpService<B>,
        B: ResponseBody,
    {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("local addr");
        let server = Server::new(options.handle_signals(false));
        let handle = server.shutdown_handle();
        let task = tokio::spawn(server.serve(listener, service));
        Self { addr, handle, task }
    }

    /// Opens a TCP connection to the server.
    pub async fn connect(&self) -> TcpStream {
        within("connect", TcpStream::connect(self.addr))
            .await
            .expect("connect")
    }
}

/// A tower service answering every request 404 with a body, for layers to wrap.
pub fn not_found() -> impl Service<
    Request<Incoming>,
    Response = Response<Body>,
    Error = std::convert::Infallible,
    Future = impl Send,
> + Clone
       + Send
       + 'static {
    sockway::server::service_fn(|_request: Request<Incoming>| async {
        let mut response = Response::new(Body::from("no such page\n"));
        *response.status_mut() = StatusCode::NOT_FOUND;
        response
    })
}

/// An HTTP/1.1 WebSocket handshake request for `path` with extra header lines.
pub fn handshake(path: &str, extra: &[(&str, &str)]) -> String {
    let mut request = format!(
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n\
         Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
         Sec-WebSocket-Version: 13\r\n"
    );
    for (name, value) in extra {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    request
}

/// A response as read off the wire.
#[derive(Debug)]
pub struct RawResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl RawResponse {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Reads one response head and (by `Content-Length`) its body; bytes after it stay in `buf`.
/// A 101 response has no body.
pub async fn read_response(stream: &mut TcpStream, buf: &mut BytesMut) -> RawResponse {
    within("response", async {
        let end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            let n = stream.read_buf(buf).await.expect("read response");
            assert!(n > 0, "connection closed before a response head: {buf:?}");
        };
        let head = String::from_utf8(buf[..end].to_vec()).expect("ASCII head");
        buf.advance(end);
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap_or_default();
        let status: u16 = status_line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
            .collect();
        let mut response = RawResponse {
            status,
            headers,
            body: String::new(),
        };
        let length: usize = response
            .header("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        while buf.len() < length {
            let n = stream.read_buf(buf).await.expect("read body");
            assert!(n > 0, "connection closed inside a body");
        }
        response.body = String::from_utf8_lossy(&buf[..length]).into_owned();
        buf.advance(length);
        response
    })
    .await
}

/// Sends `request` on a new connection and reads the response.
pub async fn request(server: &TestServer, request: &str) -> RawResponse {
    let mut stream = server.connect().await;
    stream.write_all(request.as_bytes()).await.expect("write");
    read_response(&mut stream, &mut BytesMut::new()).await
}

/// Opens a WebSocket with a raw handshake; returns the stream (and bytes already read past
/// the 101) after asserting the 101.
pub async fn open_raw(
    server: &TestServer,
    path: &str,
    extra: &[(&str, &str)],
) -> (TcpStream, BytesMut) {
    let mut stream = server.connect().await;
    stream
        .write_all(handshake(path, extra).as_bytes())
        .await
        .expect("write handshake");
    let mut buf = BytesMut::new();
    let response = read_response(&mut stream, &mut buf).await;
    assert_eq!(response.status, 101, "handshake refused: {response:?}");
    (stream, buf)
}

/// Opens a WebSocket and wraps it in a client-role [`WebSocket`] (which masks and answers
/// pings while receiving).
pub async fn open_client(server: &TestServer, path: &str) -> WebSocket<TcpStream> {
    let (stream, leftover) = open_raw(server, path, &[]).await;
    WebSocket::from_raw(stream, Role::Client, WebSocketConfig::default(), leftover)
}

/// One frame as read off the wire (server frames are unmasked).
#[derive(Debug, PartialEq, Eq)]
pub struct RawFrame {
    pub fin: bool,
    pub opcode: u8,
    pub payload: Vec<u8>,
}

impl RawFrame {
    /// The close code of a close frame.
    pub fn close_code(&self) -> Option<u16> {
        (self.opcode == 0x8 && self.payload.len() >= 2)
            .then(|| u16::from_be_bytes([self.payload[0], self.payload[1]]))
    }

    /// The close reason of a close frame.
    pub fn close_reason(&self) -> String {
        String::from_utf8_lossy(self.payload.get(2..).unwrap_or_default()).into_owned()
    }
}

/// Reads the next frame, or `None` at EOF.
pub async fn read_frame(stream: &mut TcpStream, buf: &mut BytesMut) -> Option<RawFrame> {
    loop {
        if buf.len() >= 2 {
            let fin = buf[0] & 0x80 != 0;
            let opcode = buf[0] & 0x0f;
            let (len, header) = match buf[1] & 0x7f {
                126 if buf.len() >= 4 => (u16::from_be_bytes([buf[2], buf[3]]) as usize, 4),
                127 if buf.len() >= 10 => {
                    let mut b = [0u8; 8];
                    b.copy_from_slice(&buf[2..10]);
                    (u64::from_be_bytes(b) as usize, 10)
                }
                126 | 127 => (usize::MAX, 0),
                n => (n as usize, 2),
            };
            if len != usize::MAX && buf.len() >= header + len {
                buf.advance(header);
                let payload = buf.split_to(len).to_vec();
                return Some(RawFrame {
                    fin,
                    opcode,
                    payload,
                });
            }
        }
        match stream.read_buf(buf).await {
            Ok(0) | Err(_) => return None,
            Ok(_) => {}
        }
    }
}

/// Writes one masked client frame.
pub async fn write_frame(stream: &mut TcpStream, opcode: u8, payload: &[u8], fin: bool) {
    let mut frame = vec![if fin { 0x80 } else { 0 } | opcode];
    let mask = [0x37, 0xfa, 0x21, 0x3d];
    match payload.len() {
        n if n < 126 => frame.push(0x80 | n as u8),
        n if n <= 0xffff => {
            frame.push(0x80 | 126);
            frame.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            frame.push(0x80 | 127);
            frame.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    frame.extend_from_slice(&mask);
    frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    stream.write_all(&frame).await.expect("write frame");
}

/// Waits until the server closes the connection (EOF or reset), discarding what arrives.
pub async fn wait_for_eof(stream: &mut TcpStream) {
    let mut sink = [0u8; 1024];
    while let Ok(n) = stream.read(&mut sink).await {
        if n == 0 {
            break;
        }
    }
}

/// Echoes every message, except that the text `direct?` is answered with `direct=true` or
/// `direct=false`: whether the socket reads and writes the connection's own stream
/// (`ServerStream::is_direct`) rather than hyper's `Upgraded`.
pub async fn echo_reporting_transport(mut socket: ServerWebSocket, _info: UpgradeInfo) {
    while let Ok(Some(message)) = socket.recv().await {
        let reply = if message == Message::text("direct?") {
            Message::text(format!("direct={}", socket.get_ref().is_direct()))
        } else {
            message
        };
        if socket.send(reply).await.is_err() {
            break;
        }
    }
}

/// Opens a WebSocket on `path` over `io`, sending the text message `first` in the same write
/// as the request head (so that it reaches the server with the head), and returns the
/// client-role socket after asserting the 101.
pub async fn open_with_first_message<S>(mut io: S, path: &str, first: &str) -> WebSocket<S>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut frames =
        sockway::proto::Connection::new(Role::Client, WebSocketConfig::default().protocol);
    frames
        .send(&Message::text(first.to_owned()))
        .expect("queue a frame");
    let mut bytes = handshake(path, &[]).into_bytes();
    bytes.extend_from_slice(frames.output());
    io.write_all(&bytes).await.expect("write handshake");
    let mut buf = BytesMut::new();
    within("101", async {
        loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                assert!(buf.starts_with(b"HTTP/1.1 101"), "refused: {buf:?}");
                buf.advance(i + 4);
                return;
            }
            assert!(io.read_buf(&mut buf).await.expect("read") > 0, "closed");
        }
    })
    .await;
    WebSocket::from_raw(io, Role::Client, WebSocketConfig::default(), buf)
}
