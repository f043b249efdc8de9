//! Shared by the `http_*` tests: a hub service with an echo handler on a loopback server, and
//! a minimal HTTP/1.1 client over a `TcpStream`, so every status and byte the server writes
//! can be checked as sent.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use futures_util::future::BoxFuture;
use sockway::server::{Server, ServerOptions, ShutdownHandle};
use sockway_hub::link::{ConnectionHandler, ConnectionInfo, Inbound, LinkedConnection};
use sockway_hub::protocol::TransferFormat;
use sockway_hub::{HttpOptions, HubService};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

/// Every wait in these tests is bounded by this; a hang fails the test instead.
pub const LIMIT: Duration = Duration::from_secs(20);

/// What the echo handler reports.
#[derive(Debug)]
pub enum Event {
    /// A connection reached the hub.
    Started(Box<ConnectionInfo>),
    /// A burst of frames is queued.
    Queued,
    /// The inbound channel of this connection id closed: the client is gone.
    Gone(String),
}

/// A stand-in for the hub: echoes every `Inbound::Data`; `close` closes the connection,
/// `panic` panics, `binary` switches to binary frames, `burst` queues `1`, `2`, `3` at once; a reconnect is
/// answered with `reconnected`.
pub struct Echo(pub mpsc::UnboundedSender<Event>);

impl ConnectionHandler for Echo {
    fn run(&self, connection: LinkedConnection) -> BoxFuture<'static, ()> {
        let events = self.0.clone();
        Box::pin(async move {
            let LinkedConnection {
                info,
                mut inbound,
                outbound,
            } = connection;
            let id = info.connection_id.clone();
            let _ = events.send(Event::Started(Box::new(info)));
            while let Some(event) = inbound.recv().await {
                match event {
                    Inbound::Reconnected => {
                        let _ = outbound.try_send(Bytes::from_static(b"reconnected"));
                    }
                    Inbound::Data(data) => match &data[..] {
                        b"close" => {
                            outbound.close();
                            return;
                        }
                        b"binary" => outbound.set_transfer_format(TransferFormat::Binary),
                        b"panic" => panic!("the stand-in hub was asked to panic"),
                        b"burst" => {
                            for frame in [&b"1"[..], b"2", b"3"] {
                                let _ = outbound.try_send(Bytes::from_static(frame));
                            }
                            let _ = events.send(Event::Queued);
                        }
                        _ => {
                            let _ = outbound.try_send(data);
                        }
                    },
                }
            }
            let _ = events.send(Event::Gone(id));
        })
    }
}

/// A hub at `/hub` on a loopback server; stops when dropped.
pub struct TestServer {
    pub addr: SocketAddr,
    pub events: mpsc::UnboundedReceiver<Event>,
    /// The hub service being served (to call `close_all`).
    pub hub: HubService,
    /// Starts the runner's graceful shutdown (the hub ends its connections on it).
    pub stop: ShutdownHandle,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.stop.shutdown();
    }
}

impl TestServer {
    /// Serves `/hub` with `options`; other paths get 404.
    pub async fn start(options: HttpOptions) -> Self {
        let (tx, events) = mpsc::unbounded_channel();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = Server::new(
            ServerOptions::default()
                .handle_signals(false)
                .drain_timeout(Duration::from_secs(1)),
        );
        let stop = server.shutdown_handle();
        let hub = HubService::new("/hub", Echo(tx), options).close_on(&stop);
        tokio::spawn(server.serve(listener, hub.clone()));
        Self {
            addr,
            events,
            hub,
            stop,
        }
    }

    /// The next event, or a failure after [`LIMIT`].
    pub async fn event(&mut self) -> Event {
        tokio::time::timeout(LIMIT, self.events.recv())
            .await
            .expect("no event from the hub in time")
            .expect("the hub's event channel closed")
    }

    /// Waits for the hub to see connection `id` gone.
    pub async fn gone(&mut self, id: &str) {
        loop {
            if let Event::Gone(gone) = self.event().await {
                if gone == id {
                    return;
                }
            }
        }
    }

    /// Waits for the next connection to reach the hub.
    pub async fn started(&mut self) -> ConnectionInfo {
        loop {
            if let Event::Started(info) = self.event().await {
                return *info;
            }
        }
    }

    /// `POST /hub/negotiate?{query}`: the JSON answer.
    pub async fn negotiate(&self, query: &str) -> serde_json::Value {
        let response = request(
            self.addr,
            "POST",
            &format!("/hub/negotiate?{query}"),
            &[],
            b"",
        )
        .await;
        assert_eq!(response.status, 200, "{response:?}");
        serde_json::from_slice(&response.body).unwrap()
    }

    /// Negotiates version 1 and returns (connectionId, connectionToken).
    pub async fn connection(&self, query: &str) -> (String, String) {
        let answer = self.negotiate(&format!("negotiateVersion=1{query}")).await;
        (
            answer["connectionId"].as_str().unwrap().to_owned(),
            answer["connectionToken"].as_str().unwrap().to_owned(),
        )
    }
}

/// A response as read off the wire.
#[derive(Debug)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// The first value of header `name`.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }
}

/// Writes a request (with `Connection: close`) and returns the open stream.
pub async fn send_request(
    addr: SocketAddr,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> TcpStream {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let mut head = format!("{method} {target} HTTP/1.1\r\nHost: {addr}\r\n");
    if !headers
        .iter()
        .any(|(name, _)| name.eq_ignore_ascii_case("connection"))
    {
        head.push_str("Connection: close\r\n");
    }
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    if !headers
        .iter()
        .any(|(name, _)| name.eq_ignore_ascii_case("content-length"))
    {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(body).await.unwrap();
    stream
}

/// Sends a request and reads the whole response (bounded by [`LIMIT`]).
pub async fn request(
    addr: SocketAddr,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> HttpResponse {
    let stream = send_request(addr, method, target, headers, body).await;
    read_response(stream).await
}

/// Reads a response to its end (the server closes after it).
pub async fn read_response(mut stream: TcpStream) -> HttpResponse {
    let mut raw = Vec::new();
    tokio::time::timeout(LIMIT, stream.read_to_end(&mut raw))
        .await
        .expect("no complete response in time")
        .unwrap();
    parse(&raw)
}

/// Reads a response to its end, or `None` if the connection broke before a whole head came.
pub async fn try_read_response(mut stream: TcpStream) -> Option<HttpResponse> {
    let mut raw = Vec::new();
    tokio::time::timeout(LIMIT, stream.read_to_end(&mut raw))
        .await
        .expect("the connection neither answered nor closed in time")
        .ok()?;
    find(&raw, b"\r\n\r\n").map(|_| parse(&raw))
}

/// Splits a raw response into status, headers and (de-chunked) body.
pub fn parse(raw: &[u8]) -> HttpResponse {
    let end = find(raw, b"\r\n\r\n").expect("a complete response head");
    let head = std::str::from_utf8(&raw[..end]).unwrap();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_owned(), value.trim().to_owned()))
        .collect();
    let rest = &raw[end + 4..];
    let chunked = headers.iter().any(|(name, value)| {
        name.eq_ignore_ascii_case("transfer-encoding") && value.contains("chunked")
    });
    let body = if chunked {
        dechunk(rest)
    } else {
        rest.to_vec()
    };
    HttpResponse {
        status,
        headers,
        body,
    }
}

fn dechunk(mut raw: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    while let Some(line_end) = find(raw, b"\r\n") {
        let size = usize::from_str_radix(std::str::from_utf8(&raw[..line_end]).unwrap().trim(), 16)
            .unwrap();
        raw = &raw[line_end + 2..];
        if size == 0 || raw.len() < size {
            break;
        }
        body.extend_from_slice(&raw[..size]);
        raw = &raw[(size + 2).min(raw.len())..];
    }
    body
}

/// Where `needle` first occurs in `haystack`.
pub fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

/// Reads from `stream` into `seen` until `needle` appears in it (bounded by [`LIMIT`]).
pub async fn read_until(stream: &mut TcpStream, seen: &mut Vec<u8>, needle: &[u8]) {
    let wait = async {
        while find(seen, needle).is_none() {
            let mut buf = [0u8; 4096];
            let n = stream.read(&mut buf).await.unwrap();
            assert!(n > 0, "the stream ended before {needle:?}: {seen:?}");
            seen.extend_from_slice(&buf[..n]);
        }
    };
    tokio::time::timeout(LIMIT, wait)
        .await
        .unwrap_or_else(|_| panic!("{needle:?} did not arrive; got {seen:?}"));
}

/// A WebSocket URL for the hub.
pub fn ws_url(addr: SocketAddr, query: &str) -> String {
    format!("ws://{addr}/hub{query}")
}

/// Opens a WebSocket with a hand-written handshake on a bare TCP stream, so a test can drop
/// the connection without a close frame.
pub async fn raw_websocket(addr: SocketAddr, query: &str) -> TcpStream {
    let mut stream = send_request(
        addr,
        "GET",
        &format!("/hub{query}"),
        &[
            ("Upgrade", "websocket"),
            ("Connection", "Upgrade"),
            ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
            ("Sec-WebSocket-Version", "13"),
            ("Content-Length", "0"),
        ],
        b"",
    )
    .await;
    let mut seen = Vec::new();
    read_until(&mut stream, &mut seen, b"\r\n\r\n").await;
    assert!(seen.starts_with(b"HTTP/1.1 101"), "{seen:?}");
    stream
}
