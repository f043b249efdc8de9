//! Helpers for the client integration tests: a minimal in-test WebSocket server over loopback
//! (hand-written handshake, so tests can also answer wrongly on purpose), an echo loop, black
//! hole addresses, and memory readings.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::Duration;

use bytes::BytesMut;
use http::{HeaderMap, HeaderName, HeaderValue};
use sockway::{Role, WebSocket, WebSocketConfig};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};

/// A bound on every test step, so a bug fails the test instead of hanging it.
pub const STEP: Duration = Duration::from_secs(10);

/// The client's upgrade request as the server saw it.
#[derive(Debug, Clone)]
pub struct Request {
    pub target: String,
    pub headers: HeaderMap,
}

/// Reads the request head (the client sends nothing after it before the answer).
pub async fn read_request<S: AsyncRead + Unpin>(io: &mut S) -> Request {
    let mut buf = BytesMut::with_capacity(4096);
    loop {
        let n = io.read_buf(&mut buf).await.expect("read request");
        assert!(n > 0, "client closed before sending its request");
        let mut slots = [httparse::EMPTY_HEADER; 64];
        let mut request = httparse::Request::new(&mut slots);
        if let httparse::Status::Complete(_) = request.parse(&buf).expect("valid request") {
            let mut headers = HeaderMap::new();
            for h in request.headers.iter() {
                headers.append(
                    HeaderName::from_bytes(h.name.as_bytes()).unwrap(),
                    HeaderValue::from_bytes(h.value).unwrap(),
                );
            }
            return Request {
                target: request.path.unwrap_or_default().to_owned(),
                headers,
            };
        }
    }
}

/// The 101 response for `request`, with `extra` header lines (each ending in CRLF).
pub fn accept_response(request: &Request, extra: &str) -> String {
    let key = request.headers["sec-websocket-key"].as_bytes();
    format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: {}\r\n{extra}\r\n",
        sockway::proto::handshake::accept_key(key)
    )
}

/// Accepts the handshake on `io` (answering with `extra` headers) and returns the server
/// socket with the request.
pub async fn accept<S: AsyncRead + AsyncWrite + Unpin>(
    mut io: S,
    extra: &str,
) -> (WebSocket<S>, Request) {
    let request = read_request(&mut io).await;
    io.write_all(accept_response(&request, extra).as_bytes())
        .await
        .unwrap();
    let config = WebSocketConfig::default().max_message_size(64 << 20);
    let ws = WebSocket::from_raw(io, Role::Server, config, BytesMut::new());
    (ws, request)
}

/// Echoes frame by frame until the client closes.
pub async fn echo<S: AsyncRead + AsyncWrite + Unpin>(mut ws: WebSocket<S>) {
    while let Ok(Some(fragment)) = ws.recv_fragment().await {
        if ws
            .send_fragment(fragment.kind, &fragment.data, fragment.end_of_message)
            .await
            .is_err()
        {
            return;
        }
    }
}

/// A loopback echo server for as many connections as come; returns its address.
pub async fn echo_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (ws, _) = accept(tcp, "").await;
                echo(ws).await;
            });
        }
    });
    addr
}

/// A one-connection server: runs `handler` on the accepted TCP stream.
pub async fn serve_once<F, Fut>(handler: F) -> SocketAddr
where
    F: FnOnce(TcpStream) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        if let Ok((tcp, _)) = listener.accept().await {
            handler(tcp).await;
        }
    });
    addr
}

/// An address that never answers a connection attempt: a listener with a full backlog that
/// never accepts, so the kernel drops further SYNs. Keep the returned guard alive.
pub struct BlackHole {
    pub addr: SocketAddr,
    _listener: TcpListener,
    _fillers: Vec<TcpStream>,
}

pub async fn black_hole() -> BlackHole {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let listener = socket.listen(1).unwrap();
    let addr = listener.local_addr().unwrap();
    let mut fillers = Vec::new();
    // Fill the accept queue until a connect no longer completes quickly.
    for _ in 0..16 {
        match tokio::time::timeout(Duration::from_millis(200), TcpStream::connect(addr)).await {
            Ok(Ok(stream)) => fillers.push(stream),
            _ => break,
        }
    }
    BlackHole {
        addr,
        _listener: listener,
        _fillers: fillers,
    }
}

/// A value from /proc/self/status in KiB (`VmRSS`, `VmHWM`), if readable.
pub fn proc_status_kib(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// How many file descriptors this process has open.
pub fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count())
}

#[cfg(feature = "tls")]
pub mod tls;
