//! The event-loop server (`sockway::event_loop`) over real loopback sockets: echo of every
//! size with many clients, what the handler is told, the handshake refusals and limits,
//! protocol violations, keep-alive, backpressure without loss, and graceful shutdown.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::BytesMut;
use sockway::event_loop::{
    Conn, ConnId, EventLoopOptions, EventLoopServer, Handler, OpenRequest, RunningServer,
    SendRefused, Sender,
};
use sockway::{CloseCode, KeepAlive, Message, Role, WebSocket, WebSocketConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;

/// A bound on every step, so a bug fails the test instead of hanging it.
const STEP: Duration = Duration::from_secs(10);

/// Echoes messages and records what it is told.
#[derive(Clone, Default)]
struct Recorder {
    log: Arc<Mutex<Vec<String>>>,
}

impl Recorder {
    fn lines(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }

    /// Waits until a line starting with `prefix` is logged.
    async fn wait_for(&self, prefix: &str) -> String {
        for _ in 0..1000 {
            if let Some(line) = self.lines().into_iter().find(|l| l.starts_with(prefix)) {
                return line;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("never logged {prefix:?}: {:?}", self.lines());
    }
}

impl Handler for Recorder {
    type Session = String;

    fn open(&mut self, _conn: &mut Conn<'_>, request: &OpenRequest<'_>) -> String {
        let line = format!(
            "open {} origin={:?} protocol={:?} secure={} sni={:?}",
            request.path, request.origin, request.subprotocol, request.secure, request.server_name
        );
        let thread = std::thread::current().name().unwrap_or("?").to_owned();
        let mut log = self.log.lock().unwrap();
        log.push(line);
        log.push(format!("thread {} {thread}", request.path));
        request.path.to_owned()
    }

    fn message(&mut self, conn: &mut Conn<'_>, _path: &mut String, message: Message) {
        if message.as_bytes() == b"close please" {
            conn.close(CloseCode::from(4001), "asked to").unwrap();
            return;
        }
        conn.send(&message).unwrap();
    }

    fn close(&mut self, path: String, code: CloseCode) {
        let line = format!("close {path} {}", u16::from(code));
        self.log.lock().unwrap().push(line);
    }
}

fn start(options: EventLoopOptions) -> (RunningServer, Recorder) {
    let recorder = Recorder::default();
    let server = EventLoopServer::new(recorder.clone(), options.threads(2))
        .bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .unwrap();
    (server, recorder)
}

/// Stops the server and waits for it. It blocks the test's thread, so every client must be
/// dropped (or closed) first: a client that cannot answer the server's close frame would
/// hold the drain for the close timeout.
fn stop(server: RunningServer) {
    server.stop();
    server.join().unwrap();
}

/// Sends an upgrade request with `extra` header lines; returns the stream and the response
/// head.
async fn handshake(addr: SocketAddr, path: &str, extra: &str) -> (TcpStream, String) {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n"
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let head = read_head(&mut stream).await;
    (stream, head)
}

/// Reads a response head byte by byte (so nothing after it is consumed).
async fn read_head(stream: &mut TcpStream) -> String {
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let byte = timeout(STEP, stream.read_u8()).await.unwrap().unwrap();
        head.push(byte);
    }
    String::from_utf8(head).unwrap()
}

/// A client WebSocket on a fresh connection to `path`.
async fn client(addr: SocketAddr, path: &str) -> WebSocket<TcpStream> {
    let (stream, head) = handshake(addr, path, "").await;
    assert!(head.starts_with("HTTP/1.1 101 "), "{head}");
    let config = WebSocketConfig::default().max_message_size(64 << 20);
    WebSocket::from_raw(stream, Role::Client, config, BytesMut::new())
}

/// A masked client frame (RFC 6455 section 5.2) with the zero mask key.
fn frame(first: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![first];
    match payload.len() {
        n if n < 126 => out.push(0x80 | n as u8),
        n if n < 65536 => {
            out.push(0x80 | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(0x80 | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(&[0, 0, 0, 0]);
    out.extend_from_slice(payload);
    out
}

/// Reads frames until a close frame; returns its status code (or `None` if there was none
/// before the end of the stream).
async fn read_close_code(stream: &mut TcpStream) -> Option<u16> {
    let mut all = Vec::new();
    timeout(STEP, stream.read_to_end(&mut all))
        .await
        .unwrap()
        .ok()?;
    let mut at = 0;
    while at + 2 <= all.len() {
        let opcode = all[at] & 0x0f;
        let len = (all[at + 1] & 0x7f) as usize;
        assert!(len < 126, "only short frames expected");
        if opcode == 0x8 {
            return (len >= 2).then(|| u16::from_be_bytes([all[at + 2], all[at + 3]]));
        }
        at += 2 + len;
    }
    None
}

#[tokio::test]
async fn echoes_every_size_to_many_clients_at_once() {
    let (server, _) = start(EventLoopOptions::default());
    let addr = server.local_addr();
    let mut tasks = Vec::new();
    for c in 0..20 {
        tasks.push(tokio::spawn(async move {
            let mut ws = client(addr, "/echo").await;
            for i in 0..30 {
                let message = Message::text(format!("client {c} message {i} ✓"));
                ws.send(message.clone()).await.unwrap();
                assert_eq!(ws.recv().await.unwrap(), Some(message));
            }
            for size in [0, 125, 126, 65_535, 65_536, 200_000, 3 << 20] {
                let message = Message::binary(vec![(size % 251) as u8; size]);
                ws.send(message.clone()).await.unwrap();
                assert_eq!(ws.recv().await.unwrap(), Some(message));
            }
            ws.close(CloseCode::NORMAL, "").await.unwrap();
        }));
    }
    for task in tasks {
        timeout(STEP * 3, task).await.unwrap().unwrap();
    }
    stop(server);
}

#[tokio::test]
async fn tells_the_handler_the_request_and_the_close_code() {
    let options = EventLoopOptions::default().subprotocols(["chat", "b"]);
    let (server, recorder) = start(options);
    let addr = server.local_addr();
    let (stream, head) = handshake(
        addr,
        "/room?id=7",
        "Origin: https://a.example\r\nSec-WebSocket-Protocol: b, chat\r\n",
    )
    .await;
    assert!(head.contains("sec-websocket-protocol: chat\r\n"), "{head}");
    let mut ws = WebSocket::from_raw(stream, Role::Client, Default::default(), BytesMut::new());
    let opened = recorder.wait_for("open /room").await;
    assert_eq!(
        opened,
        "open /room?id=7 origin=Some(\"https://a.example\") protocol=Some(\"chat\") secure=false \
         sni=None"
    );
    ws.close(CloseCode::from(4000), "bye").await.unwrap();
    assert_eq!(
        recorder.wait_for("close /room").await,
        "close /room?id=7 4000"
    );

    // TCP closed without a close frame: 1006 (RFC 6455 section 7.1.5).
    let (stream, _) = handshake(addr, "/dropped", "").await;
    recorder.wait_for("open /dropped").await;
    drop(stream);
    assert_eq!(
        recorder.wait_for("close /dropped").await,
        "close /dropped 1006"
    );

    // The handler starts the close; the client's reply ends it with the client's echo of
    // the code.
    let mut ws = client(addr, "/server-closes").await;
    ws.send(Message::text("close please")).await.unwrap();
    assert_eq!(ws.recv().await.unwrap(), None);
    assert_eq!(ws.close_info().unwrap().code, CloseCode::from(4001));
    assert_eq!(
        recorder.wait_for("close /server-closes").await,
        "close /server-closes 4001"
    );
    stop(server);
}

#[tokio::test]
async fn refuses_bad_handshakes_with_their_status() {
    let options = EventLoopOptions::default()
        .max_header_bytes(1024)
        .handshake_timeout(Duration::from_millis(300))
        .allowed_origins(["https://ok.example"]);
    let (server, _) = start(options);
    let addr = server.local_addr();

    let mut plain = TcpStream::connect(addr).await.unwrap();
    plain
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    assert!(read_head(&mut plain).await.starts_with("HTTP/1.1 400 "));

    let (_, head) = handshake(addr, "/", "Origin: https://evil.example\r\n").await;
    assert!(head.starts_with("HTTP/1.1 403 "), "{head}");

    let (_, head) = handshake(addr, "/", &format!("X-Big: {}\r\n", "a".repeat(2000))).await;
    assert!(head.starts_with("HTTP/1.1 431 "), "{head}");

    let mut slow = TcpStream::connect(addr).await.unwrap();
    slow.write_all(b"GET / HTTP/1.1\r\n").await.unwrap();
    let head = read_head(&mut slow).await;
    assert!(head.starts_with("HTTP/1.1 408 "), "{head}");
    stop(server);
}

#[tokio::test]
async fn answers_503_beyond_the_connection_limit() {
    let (server, _) = start(EventLoopOptions::default().max_connections(1));
    let addr = server.local_addr();
    let mut first = client(addr, "/").await;
    let mut second = TcpStream::connect(addr).await.unwrap();
    let head = read_head(&mut second).await;
    assert!(head.starts_with("HTTP/1.1 503 "), "{head}");
    assert_eq!(server.connections(), 1);
    first.send(Message::text("still here")).await.unwrap();
    assert_eq!(
        first.recv().await.unwrap(),
        Some(Message::text("still here"))
    );
    drop((first, second));
    stop(server);
}

#[tokio::test]
async fn deals_connections_evenly_to_the_worker_threads() {
    let (server, recorder) = start(EventLoopOptions::default());
    let mut clients = Vec::new();
    for i in 0..10 {
        clients.push(client(server.local_addr(), &format!("/spread{i}")).await);
        recorder.wait_for(&format!("thread /spread{i} ")).await;
    }
    let lines = recorder.lines();
    let on = |thread: &str| lines.iter().filter(|l| l.ends_with(thread)).count();
    assert_eq!(
        (on(" sockway-loop-0"), on(" sockway-loop-1")),
        (5, 5),
        "{lines:?}"
    );
    drop(clients);
    stop(server);
}

#[tokio::test]
async fn a_listener_per_worker_serves_one_port_from_every_thread() {
    let recorder = Recorder::default();
    let server = EventLoopServer::new(recorder.clone(), EventLoopOptions::default().threads(2))
        .bind_per_worker(SocketAddr::from(([127, 0, 0, 1], 0)))
        .unwrap();
    let mut clients = Vec::new();
    for i in 0..40 {
        let mut ws = client(server.local_addr(), &format!("/own{i}")).await;
        let message = Message::text(format!("hello {i}"));
        ws.send(message.clone()).await.unwrap();
        assert_eq!(
            timeout(STEP, ws.recv()).await.unwrap().unwrap(),
            Some(message)
        );
        recorder.wait_for(&format!("thread /own{i} ")).await;
        clients.push(ws);
    }
    let lines = recorder.lines();
    let on = |thread: &str| lines.iter().filter(|l| l.ends_with(thread)).count();
    // The kernel spreads connections by a hash of their addresses: 40 ephemeral ports all
    // landing on one listener would happen once in 2^39 runs.
    let spread = (on(" sockway-loop-0"), on(" sockway-loop-1"));
    assert!(
        spread.0 > 0 && spread.1 > 0 && spread.0 + spread.1 == 40,
        "{spread:?}"
    );
    drop(clients);
    stop(server);
}

#[test]
fn start_per_worker_refuses_no_listener() {
    let error = EventLoopServer::new(Recorder::default(), EventLoopOptions::default())
        .start_per_worker(Vec::new())
        .unwrap_err();
    assert_eq!(error.kind(), std::io::ErrorKind::InvalidInput);
}

#[tokio::test]
async fn fails_violations_with_the_rfc_close_codes() {
    let config = WebSocketConfig::default().max_message_size(1000);
    let (server, _) = start(EventLoopOptions::default().websocket(config));
    let addr = server.local_addr();
    let cases: [(Vec<u8>, u16); 4] = [
        (frame(0x81, &[0xff, 0xfe]), 1007),
        (frame(0x82, &[0; 1001]), 1009),
        (frame(0x83, b"x"), 1002),
        // Unmasked: a client must mask every frame (section 5.1).
        (vec![0x81, 0x01, b'x'], 1002),
    ];
    for (bytes, code) in cases {
        let (mut stream, _) = handshake(addr, "/", "").await;
        stream.write_all(&bytes).await.unwrap();
        assert_eq!(read_close_code(&mut stream).await, Some(code));
    }
    stop(server);
}

#[tokio::test]
async fn reassembles_frames_that_arrive_a_byte_at_a_time() {
    let (server, _) = start(EventLoopOptions::default());
    let (mut stream, _) = handshake(server.local_addr(), "/", "").await;
    let mut bytes = frame(0x01, b"split ");
    bytes.extend(frame(0x80, b"message"));
    for byte in bytes {
        stream.write_all(&[byte]).await.unwrap();
        stream.flush().await.unwrap();
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let mut echo = [0u8; 15];
    timeout(STEP, stream.read_exact(&mut echo))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&echo, b"\x81\x0dsplit message");
    drop(stream);
    stop(server);
}

#[tokio::test]
async fn pings_a_quiet_peer_and_drops_one_that_never_answers() {
    let keep_alive = KeepAlive {
        interval: Duration::from_millis(100),
        timeout: Duration::from_millis(200),
    };
    let config = WebSocketConfig::default().keep_alive(Some(keep_alive));
    let (server, recorder) = start(EventLoopOptions::default().websocket(config));
    let (mut stream, _) = handshake(server.local_addr(), "/mute", "").await;
    let mut ping = [0u8; 2];
    timeout(STEP, stream.read_exact(&mut ping))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(ping, [0x89, 0x00], "an empty ping");
    assert_eq!(read_close_code(&mut stream).await, Some(1001));
    assert_eq!(recorder.wait_for("close /mute").await, "close /mute 1006");
    drop(stream);
    stop(server);
}

#[tokio::test]
async fn backpressure_holds_a_peer_that_does_not_read_and_loses_nothing() {
    let config = WebSocketConfig::default()
        .max_message_size(2 << 20)
        .write_buffer_limit(256 * 1024);
    let (server, _) = start(EventLoopOptions::default().websocket(config));
    let ws = client(server.local_addr(), "/").await;
    let (mut reader, mut writer) = ws.split();
    let count = 24usize;
    let sending = tokio::spawn(async move {
        for i in 0..count {
            let message = Message::binary(vec![i as u8; 1 << 20]);
            writer.send(message).await.unwrap();
        }
        writer
    });
    // Let the server fill its output and stop reading before anything is read here.
    tokio::time::sleep(Duration::from_millis(300)).await;
    for i in 0..count {
        let message = timeout(STEP, reader.recv())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!(message, Message::binary(vec![i as u8; 1 << 20]));
    }
    let writer = timeout(STEP, sending).await.unwrap().unwrap();
    drop((reader, writer));
    stop(server);
}

#[tokio::test]
async fn shutdown_closes_every_connection_with_1001_and_returns() {
    let (server, recorder) = start(EventLoopOptions::default());
    let addr = server.local_addr();
    let mut clients = Vec::new();
    for i in 0..10 {
        clients.push(client(addr, &format!("/c{i}")).await);
    }
    server.stop();
    for ws in &mut clients {
        assert_eq!(timeout(STEP, ws.recv()).await.unwrap().unwrap(), None);
        assert_eq!(ws.close_info().unwrap().code, CloseCode::GOING_AWAY);
    }
    tokio::task::spawn_blocking(move || server.join())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        recorder
            .lines()
            .iter()
            .filter(|l| l.starts_with("close "))
            .count(),
        10
    );
    assert!(TcpStream::connect(addr).await.is_err(), "still listening");
}

/// Relays every message to every open connection, on whichever worker it is.
#[derive(Clone, Default)]
struct Room {
    members: Arc<Mutex<Vec<ConnId>>>,
    sender: Option<Sender>,
}

impl Handler for Room {
    type Session = ConnId;

    fn open(&mut self, conn: &mut Conn<'_>, _request: &OpenRequest<'_>) -> ConnId {
        self.sender.get_or_insert_with(|| conn.sender());
        self.members.lock().unwrap().push(conn.id());
        conn.id()
    }

    fn message(&mut self, _conn: &mut Conn<'_>, _id: &mut ConnId, message: Message) {
        let sender = self.sender.as_ref().unwrap();
        for member in self.members.lock().unwrap().iter() {
            sender.send(*member, message.clone()).unwrap();
        }
    }

    fn close(&mut self, id: ConnId, _code: CloseCode) {
        self.members.lock().unwrap().retain(|member| *member != id);
    }
}

#[tokio::test]
async fn senders_reach_connections_on_every_worker_and_never_a_closed_one() {
    let room = Room::default();
    let members = Arc::clone(&room.members);
    let server = EventLoopServer::new(room, EventLoopOptions::default().threads(2))
        .bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .unwrap();
    let mut clients = Vec::new();
    for _ in 0..4 {
        clients.push(client(server.local_addr(), "/room").await);
    }
    while members.lock().unwrap().len() < 4 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    clients[0].send(Message::text("hello, room")).await.unwrap();
    for ws in &mut clients {
        let got = timeout(STEP, ws.recv()).await.unwrap().unwrap();
        assert_eq!(got, Some(Message::text("hello, room")));
    }

    // From a thread of the application's own, to one connection.
    let first = members.lock().unwrap()[0];
    let sender = server.sender();
    std::thread::spawn(move || sender.send(first, Message::binary(&b"just you"[..])))
        .join()
        .unwrap()
        .unwrap();
    let got = timeout(STEP, clients[0].recv()).await.unwrap().unwrap();
    assert_eq!(got, Some(Message::binary(&b"just you"[..])));

    // A closed connection's id reaches nobody, even once its slot is reused.
    let mut last = clients.pop().unwrap();
    let gone = *members.lock().unwrap().last().unwrap();
    last.close(CloseCode::NORMAL, "").await.unwrap();
    while members.lock().unwrap().len() > 3 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let mut newcomer = client(server.local_addr(), "/room").await;
    server.sender().send(gone, Message::text("stale")).unwrap();
    server
        .sender()
        .close(first, CloseCode::from(4002), "bye")
        .unwrap();
    assert_eq!(
        timeout(STEP, clients[0].recv()).await.unwrap().unwrap(),
        None
    );
    assert_eq!(clients[0].close_info().unwrap().code, CloseCode::from(4002));
    clients[1].send(Message::text("after")).await.unwrap();
    assert_eq!(
        timeout(STEP, newcomer.recv()).await.unwrap().unwrap(),
        Some(Message::text("after")),
        "the newcomer got the stale message first"
    );

    let sender = server.sender();
    drop((clients, newcomer));
    stop(server);
    assert_eq!(
        sender.send(first, Message::text("late")),
        Err(SendRefused::Stopped)
    );
}

/// Reads one unmasked server frame: (opcode, payload).
async fn read_frame_from<R: AsyncReadExt + Unpin>(stream: &mut R) -> (u8, Vec<u8>) {
    let mut head = [0u8; 2];
    stream.read_exact(&mut head).await.unwrap();
    let len = match head[1] & 0x7f {
        126 => u64::from(stream.read_u16().await.unwrap()),
        127 => stream.read_u64().await.unwrap(),
        n => u64::from(n),
    };
    let mut payload = vec![0u8; len as usize];
    stream.read_exact(&mut payload).await.unwrap();
    (head[0] & 0x0f, payload)
}

#[tokio::test]
async fn a_ping_flood_from_a_peer_that_never_reads_does_not_stop_the_server_reading() {
    const PINGS: usize = 100_000;
    let (server, _) = start(EventLoopOptions::default());
    let (stream, _) = handshake(server.local_addr(), "/pings", "").await;
    let (mut reader, mut writer) = stream.into_split();
    let payload = |seq: usize| {
        let mut payload = (seq as u64).to_be_bytes().to_vec();
        payload.resize(125, b'.');
        payload
    };
    // 12.7 MB of pings, then a text, all written before anything is read: the server must
    // keep reading (its pongs are coalesced, RFC 6455 section 5.5.3), or this would block.
    timeout(STEP * 3, async {
        for batch in 0..PINGS / 1000 {
            let mut bytes = Vec::with_capacity(1000 * 131);
            for i in 0..1000 {
                bytes.extend(frame(0x89, &payload(batch * 1000 + i)));
            }
            writer.write_all(&bytes).await.unwrap();
        }
        writer.write_all(&frame(0x81, b"done")).await.unwrap();
    })
    .await
    .expect("the server stopped reading");
    let (mut pongs, mut done, mut last_pong) = (0, false, false);
    timeout(STEP * 3, async {
        while !(done && last_pong) {
            match read_frame_from(&mut reader).await {
                (0xA, data) => {
                    pongs += 1;
                    last_pong |= data == payload(PINGS - 1);
                }
                (0x1, data) => {
                    assert_eq!(data, b"done");
                    done = true;
                }
                (opcode, _) => panic!("unexpected opcode {opcode}"),
            }
        }
    })
    .await
    .expect("the echo and the last pong");
    eprintln!("{PINGS} pings, {pongs} pongs");
    assert!(
        pongs < PINGS,
        "pongs were coalesced while the output was backed up"
    );
    drop((reader, writer));
    stop(server);
}

/// A peer whose last bytes and end of stream arrive together (one readiness event, a short
/// read) is still seen to have gone: the server reads on to the end of stream instead of
/// taking the short read for "nothing more", and forgets the connection at once rather than
/// at the next keep-alive ping (here none).
#[tokio::test]
async fn a_peer_that_sends_its_last_bytes_and_leaves_is_forgotten_at_once() {
    let options = EventLoopOptions::default()
        .websocket(WebSocketConfig::for_server().keep_alive(None))
        .threads(1);
    let (server, recorder) = start(options);
    for _ in 0..20 {
        let (mut stream, head) = handshake(server.local_addr(), "/gone", "").await;
        assert!(head.starts_with("HTTP/1.1 101 "), "{head}");
        // Half of a masked frame's header, and the end of the stream right behind it.
        stream.write_all(&[0x82, 0xfe]).await.unwrap();
        stream.shutdown().await.unwrap();
        drop(stream);
    }
    let gone = timeout(STEP, async {
        while server.connections() != 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    assert!(gone.is_ok(), "{} connections left", server.connections());
    let closes = recorder
        .log
        .lock()
        .unwrap()
        .iter()
        .filter(|line| line.starts_with("close /gone"))
        .count();
    assert_eq!(closes, 20);
    stop(server);
}
