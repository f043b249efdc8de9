//! `wss://` on the event-loop server (`EventLoopOptions::tls`), with sockway's client trusting
//! a CA made at test time: echoes small and large (many TLS records, output the socket takes
//! in pieces), compression over TLS, publishes, ALPN limited to `http/1.1`, a client that is
//! no TLS client, one that vanishes mid-message, and shutdown's 1001 over TLS.

#![cfg(all(feature = "client", feature = "tls"))]

mod client_support;
mod event_loop_support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use client_support::tls::{pki, Pki};
use sockway::client::{ClientBuilder, ClientStream};
use sockway::event_loop::{EventLoopOptions, EventLoopServer, RunningServer, ServerTls};
use sockway::{CloseCode, DeflateConfig, Message, WebSocket, WebSocketConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;

use event_loop_support::{echo, stop, EchoAndPublish, STEP};

fn start(pki: &Pki, options: EventLoopOptions) -> RunningServer {
    let tls = ServerTls::from_pem_files(&pki.server_cert_file, &pki.server_key_file).unwrap();
    let options = options
        .threads(2)
        .tls(tls)
        .websocket(WebSocketConfig::for_server().max_message_size(8 << 20));
    EventLoopServer::new(EchoAndPublish, options)
        .bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .unwrap()
}

async fn connect(server: &RunningServer, pki: &Pki, compression: bool) -> WebSocket<ClientStream> {
    connect_as("localhost", server.local_addr(), pki, compression).await
}

/// A `wss://` client of `name` (its SNI and the certificate name checked against the test
/// CA), connecting to `addr`.
async fn connect_as(
    name: &str,
    addr: SocketAddr,
    pki: &Pki,
    compression: bool,
) -> WebSocket<ClientStream> {
    let url = format!("wss://{name}:{}/", addr.port());
    let connect = ClientBuilder::new(url)
        .webpki_roots(false)
        .ca_file(&pki.ca_file)
        .resolve_to(vec![addr])
        .compression(compression.then(DeflateConfig::default))
        .connect();
    let (socket, _) = timeout(STEP, connect).await.unwrap().unwrap();
    socket
}

/// Waits until the server counts `open` connections (it notices a vanished client on its
/// next read).
async fn wait_for_connections(server: &RunningServer, open: usize) {
    let waited = timeout(STEP, async {
        while server.connections() != open {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    assert!(waited.is_ok(), "{} open, not {open}", server.connections());
}

#[tokio::test]
async fn echoes_small_and_large_messages_over_tls() {
    let pki = pki(&["localhost"]);
    let server = start(&pki, EventLoopOptions::default());
    let mut socket = connect(&server, &pki, false).await;
    for size in [0, 1, 125, 126, 16_000, 16_384, 100_000] {
        echo(&mut socket, Message::text("é".repeat(size / 2))).await;
        echo(&mut socket, Message::binary(vec![size as u8; size])).await;
    }
    // Several MiB: far more than one write's TLS records, so the socket takes the answer in
    // pieces and the rest waits in the WebSocket's output.
    let big: Vec<u8> = (0..5 << 20)
        .map(|i: u32| (i * 7 + i / 4096) as u8)
        .collect();
    echo(&mut socket, Message::binary(big)).await;
    let closed = timeout(STEP, socket.close(CloseCode::NORMAL, "bye"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(closed.code, CloseCode::NORMAL, "{closed:?}");
    wait_for_connections(&server, 0).await;
    stop(server);
}

#[tokio::test]
async fn many_clients_at_once_each_get_their_own_answers() {
    let pki = Arc::new(pki(&["localhost"]));
    let server = Arc::new(start(&pki, EventLoopOptions::default()));
    let mut clients = Vec::new();
    for client in 0..40 {
        let (server, pki) = (Arc::clone(&server), Arc::clone(&pki));
        clients.push(tokio::spawn(async move {
            let mut socket = connect(&server, &pki, false).await;
            for round in 0..20 {
                let text = format!("client {client} round {round} ").repeat(round * 50);
                echo(&mut socket, Message::text(text)).await;
            }
            socket.close(CloseCode::NORMAL, "").await.unwrap();
        }));
    }
    for client in clients {
        timeout(STEP * 3, client).await.unwrap().unwrap();
    }
    wait_for_connections(&server, 0).await;
    let Ok(server) = Arc::try_unwrap(server) else {
        panic!("the clients still hold the server");
    };
    stop(server);
}

#[tokio::test]
async fn compresses_and_publishes_over_tls() {
    let pki = pki(&["localhost"]);
    let config = DeflateConfig {
        server_no_context_takeover: true,
        ..DeflateConfig::default()
    };
    let server = start(&pki, EventLoopOptions::default().compression(Some(config)));
    let mut compressing = connect(&server, &pki, true).await;
    let mut plain = connect(&server, &pki, false).await;
    assert!(compressing.compression().is_some());
    echo(&mut compressing, Message::text("abc".repeat(10_000))).await;
    let news = Message::text(format!("publish {}", "news ".repeat(1_000)));
    compressing.send(news.clone()).await.unwrap();
    for socket in [&mut compressing, &mut plain] {
        let got = timeout(STEP, socket.recv()).await.unwrap().unwrap();
        assert_eq!(got, Some(news.clone()));
    }
    // Shutdown's close frame arrives through TLS: 1001, going away (RFC 6455 section 7.4.1),
    // and the clients' answers let the workers end.
    let stopping = tokio::task::spawn_blocking(move || stop(server));
    for socket in [&mut compressing, &mut plain] {
        let end = timeout(STEP, socket.recv()).await.unwrap();
        assert!(matches!(end, Ok(None)), "{end:?}");
        let close = socket.close_info().map(|info| info.code);
        assert_eq!(close, Some(CloseCode::GOING_AWAY));
    }
    timeout(STEP, stopping).await.unwrap().unwrap();
}

/// A TLS connection to the server that offers `h2` before `http/1.1` in ALPN.
async fn raw_tls(server: &RunningServer, pki: &Pki) -> tokio_rustls::client::TlsStream<TcpStream> {
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    let ca = std::fs::read(&pki.ca_file).unwrap();
    for cert in rustls::pki_types::CertificateDer::pem_slice_iter(&ca) {
        roots.add(cert.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = TcpStream::connect(server.local_addr()).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    timeout(STEP, connector.connect(name, tcp))
        .await
        .unwrap()
        .unwrap()
}

/// A WebSocket opening request (RFC 6455 section 4.1).
const UPGRADE: &str = "GET / HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n\
    Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
    Sec-WebSocket-Version: 13\r\n\r\n";

#[tokio::test]
async fn alpn_offers_only_http_1_1() {
    let pki = pki(&["localhost"]);
    let server = start(&pki, EventLoopOptions::default());
    let tls = raw_tls(&server, &pki).await;
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"http/1.1"[..]));
    drop(tls);
    wait_for_connections(&server, 0).await;
    stop(server);
}

#[tokio::test]
async fn a_client_that_speaks_no_tls_is_closed_without_an_answer() {
    let pki = pki(&["localhost"]);
    let server = start(&pki, EventLoopOptions::default());
    let mut tcp = TcpStream::connect(server.local_addr()).await.unwrap();
    tcp.write_all(UPGRADE.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    let read = timeout(STEP, tcp.read_to_end(&mut answer)).await.unwrap();
    // Whatever came back (at most rustls' alert, RFC 8446 section 6.2), it is no HTTP.
    assert!(!answer.starts_with(b"HTTP"), "{answer:?} {read:?}");
    wait_for_connections(&server, 0).await;
    stop(server);
}

#[tokio::test]
async fn a_client_that_vanishes_mid_message_is_forgotten() {
    let pki = pki(&["localhost"]);
    let server = start(&pki, EventLoopOptions::default());
    let mut tls = raw_tls(&server, &pki).await;
    tls.write_all(UPGRADE.as_bytes()).await.unwrap();
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0u8];
        timeout(STEP, tls.read_exact(&mut byte))
            .await
            .unwrap()
            .unwrap();
        head.push(byte[0]);
    }
    assert!(head.starts_with(b"HTTP/1.1 101"), "{head:?}");
    // Half of a masked frame's header, then the socket goes without a close_notify.
    tls.write_all(&[0x82, 0xfe]).await.unwrap();
    tls.flush().await.unwrap();
    drop(tls);
    wait_for_connections(&server, 0).await;
    stop(server);
}

/// Many TLS handshakes at once on one worker make long loop turns, in which a connection
/// accepted late in a turn used to be stamped with a clock reading later than the one its
/// turn's deadline check used, read as a handshake that timed out long ago, and closed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_handshakes_is_answered_whole() {
    let pki = Arc::new(pki(&["localhost"]));
    let tls = ServerTls::from_pem_files(&pki.server_cert_file, &pki.server_key_file).unwrap();
    // A short close timeout makes the worker check deadlines every 10 ms, during the burst.
    let websocket = WebSocketConfig::for_server().close_timeout(Duration::from_millis(40));
    let options = EventLoopOptions::default()
        .threads(1)
        .tls(tls)
        .websocket(websocket);
    let server = EventLoopServer::new(EchoAndPublish, options)
        .bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .unwrap();
    let server = Arc::new(server);
    let mut clients = Vec::new();
    for client in 0..150 {
        let (server, pki) = (Arc::clone(&server), Arc::clone(&pki));
        clients.push(tokio::spawn(async move {
            let mut socket = connect(&server, &pki, false).await;
            echo(&mut socket, Message::text(format!("client {client}"))).await;
            socket
        }));
    }
    let mut sockets = Vec::new();
    for client in clients {
        sockets.push(timeout(STEP * 3, client).await.unwrap().unwrap());
    }
    drop(sockets);
    wait_for_connections(&server, 0).await;
    let Ok(server) = Arc::try_unwrap(server) else {
        panic!("the clients still hold the server");
    };
    stop(server);
}

#[tokio::test]
async fn a_request_that_is_no_websocket_handshake_is_refused_over_tls() {
    let pki = pki(&["localhost"]);
    let server = start(&pki, EventLoopOptions::default());
    let mut tls = raw_tls(&server, &pki).await;
    tls.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    let mut answer = Vec::new();
    // The refusal, then the server's close_notify and end of stream.
    timeout(STEP, tls.read_to_end(&mut answer))
        .await
        .unwrap()
        .unwrap();
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 4"), "{answer}");
    // The server keeps the socket until this side's end of stream (or its close timeout).
    drop(tls);
    wait_for_connections(&server, 0).await;
    stop(server);
}

/// Forwards connections on a new loopback port to `server`, the client's bytes one at a time
/// (each its own TCP segment), the server's as they come; returns the port's address.
async fn trickle_to(server: SocketAddr) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let Ok(upstream) = TcpStream::connect(server).await else {
                return;
            };
            let _ = (client.set_nodelay(true), upstream.set_nodelay(true));
            let (mut client_read, mut client_write) = client.into_split();
            let (mut upstream_read, mut upstream_write) = upstream.into_split();
            tokio::spawn(async move {
                let mut byte = [0u8; 1];
                while let Ok(1) = client_read.read(&mut byte).await {
                    if upstream_write.write_all(&byte).await.is_err() {
                        break;
                    }
                    tokio::task::yield_now().await;
                }
                let _ = upstream_write.shutdown().await;
            });
            tokio::spawn(async move {
                let _ = tokio::io::copy(&mut upstream_read, &mut client_write).await;
                let _ = client_write.shutdown().await;
            });
        }
    });
    addr
}

/// TLS records that reach the server a byte at a time: every read is short, every record
/// arrives in pieces across many readiness events, and nothing is lost or waits for an event
/// that does not come.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_that_arrive_a_byte_at_a_time_are_read_whole() {
    let pki = pki(&["localhost"]);
    let server = start(&pki, EventLoopOptions::default());
    let trickle = trickle_to(server.local_addr()).await;
    let mut socket = connect_as("localhost", trickle, &pki, false).await;
    for size in [0, 1, 125, 126, 2_000, 20_000] {
        echo(&mut socket, Message::binary(vec![size as u8; size])).await;
    }
    let closed = timeout(STEP, socket.close(CloseCode::NORMAL, ""))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(closed.code, CloseCode::NORMAL);
    drop(socket);
    wait_for_connections(&server, 0).await;
    stop(server);
}

/// Tells each client, as its first message, what `OpenRequest` said about its TLS.
#[derive(Clone)]
struct TellsTls;

impl sockway::event_loop::Handler for TellsTls {
    type Session = ();

    fn open(
        &mut self,
        conn: &mut sockway::event_loop::Conn<'_>,
        request: &sockway::event_loop::OpenRequest<'_>,
    ) {
        let told = format!("secure={} sni={:?}", request.secure, request.server_name);
        conn.send(&Message::text(told)).unwrap();
    }

    fn message(&mut self, _conn: &mut sockway::event_loop::Conn<'_>, _: &mut (), _: Message) {}
}

#[tokio::test]
async fn the_handler_learns_the_connection_is_secure_and_the_name_asked_for() {
    let pki = pki(&["localhost", "chat.example"]);
    let tls = ServerTls::from_pem_files(&pki.server_cert_file, &pki.server_key_file).unwrap();
    let server = EventLoopServer::new(TellsTls, EventLoopOptions::default().threads(1).tls(tls))
        .bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .unwrap();
    for name in ["localhost", "chat.example"] {
        let mut socket = connect_as(name, server.local_addr(), &pki, false).await;
        let told = timeout(STEP, socket.recv()).await.unwrap().unwrap();
        let expected = format!("secure=true sni=Some({name:?})");
        assert_eq!(told, Some(Message::text(expected)));
    }
    server.stop();
    let _ = tokio::task::spawn_blocking(move || server.join()).await;
}
