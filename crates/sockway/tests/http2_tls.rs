//! The runner over TLS: ALPN (RFC 7301) picks HTTP/2 (`h2`, RFC 9113 section 3.2) or
//! HTTP/1.1 per connection, pages and WebSockets share the port, and handlers see what TLS
//! negotiated.

mod http2_support;
mod server_support;

use bytes::BytesMut;
use http::{Request, Response};
use http2_support::*;
use hyper::body::Incoming;
use server_support::{handshake as upgrade_request, TestServer};
use sockway::server::{service_fn, Body, Layer, ServerOptions, TlsInfo, WebSocketLayer};
use sockway::Message;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// Echo on `/ws`; any other request is answered with its HTTP version and ALPN protocol.
async fn tls_server(options: ServerOptions) -> TestServer {
    let app = WebSocketLayer::new(server_support::echo_reporting_transport)
        .path("/ws")
        .layer(service_fn(|request: Request<Incoming>| async move {
            let alpn = request.extensions().get::<TlsInfo>().map(|tls| {
                String::from_utf8_lossy(tls.alpn.as_deref().unwrap_or(b"none")).into_owned()
            });
            Response::new(Body::from(format!(
                "{:?} {}",
                request.version(),
                alpn.unwrap_or_else(|| "plain".into())
            )))
        }));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = sockway::server::Server::new(options.handle_signals(false)).tls(self_signed());
    let handle = server.shutdown_handle();
    let task = tokio::spawn(server.serve(listener, app));
    TestServer { addr, handle, task }
}

/// A WebSocket upgrade over HTTP/1.1 on `tls`, returning the response's status line.
async fn http1_upgrade<S>(mut tls: S) -> String
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    tls.write_all(upgrade_request("/ws", &[]).as_bytes())
        .await
        .unwrap();
    let mut buf = BytesMut::new();
    within("response", async {
        while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
            assert!(tls.read_buf(&mut buf).await.unwrap() > 0, "closed");
        }
    })
    .await;
    String::from_utf8_lossy(&buf)
        .lines()
        .next()
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test]
async fn alpn_chooses_http2_or_http1_per_connection() {
    let server = tls_server(ServerOptions::default()).await;

    // `h2` offered: HTTP/2, with extended CONNECT, and handlers see ALPN `h2`.
    let (tls, alpn) = tls_connect(server.addr, &[b"h2", b"http/1.1"]).await;
    assert_eq!(alpn.as_deref(), Some(&b"h2"[..]));
    let send = handshake(tls).await;
    assert!(send.is_extended_connect_protocol_enabled());
    assert_eq!(get(&send, "localhost", "/").await.1, "HTTP/2.0 h2");
    let (mut socket, _) = open_socket(&send, "localhost", "/ws", &[], None).await;
    within("send", socket.send(Message::text("wss over h2")))
        .await
        .unwrap();
    assert_eq!(
        within("echo", socket.recv()).await.unwrap(),
        Some(Message::text("wss over h2"))
    );

    // `http/1.1` only, or no ALPN at all: HTTP/1.1 and the 101 upgrade.
    let (tls, alpn) = tls_connect(server.addr, &[b"http/1.1"]).await;
    assert_eq!(alpn.as_deref(), Some(&b"http/1.1"[..]));
    assert!(http1_upgrade(tls).await.starts_with("HTTP/1.1 101"));
    let (tls, alpn) = tls_connect(server.addr, &[]).await;
    assert_eq!(alpn, None);
    assert!(http1_upgrade(tls).await.starts_with("HTTP/1.1 101"));
}

#[tokio::test]
async fn http1_sockets_over_tls_use_the_tls_stream_itself() {
    let server = tls_server(ServerOptions::default()).await;
    let (tls, _) = tls_connect(server.addr, &[b"http/1.1"]).await;
    let mut socket = server_support::open_with_first_message(tls, "/ws", "direct?").await;
    let reply = within("reply", socket.recv()).await.unwrap();
    assert_eq!(reply, Some(Message::text("direct=true")));
    // Over HTTP/2 the socket is a stream of the connection: hyper's `Upgraded` it stays.
    let (tls, _) = tls_connect(server.addr, &[b"h2"]).await;
    let send = handshake(tls).await;
    let (mut socket, _) = open_socket(&send, "localhost", "/ws", &[], None).await;
    within("send", socket.send(Message::text("direct?")))
        .await
        .unwrap();
    let reply = within("reply", socket.recv()).await.unwrap();
    assert_eq!(reply, Some(Message::text("direct=false")));
}

#[tokio::test]
async fn without_http2_alpn_offers_only_http1() {
    let server = tls_server(ServerOptions::default().http2(false)).await;
    let (tls, alpn) = tls_connect(server.addr, &[b"h2", b"http/1.1"]).await;
    assert_eq!(alpn.as_deref(), Some(&b"http/1.1"[..]));
    assert!(http1_upgrade(tls).await.starts_with("HTTP/1.1 101"));
}

#[tokio::test]
async fn plaintext_http2_is_prior_knowledge_only_when_enabled() {
    let server = tls_server(ServerOptions::default()).await;
    drop(server);
    // Plain TCP, HTTP/2 on (the default): the preface is recognised.
    let app = service_fn(|request: Request<Incoming>| async move {
        Response::new(Body::from(format!("{:?}", request.version())))
    });
    let server = TestServer::start(ServerOptions::default(), app).await;
    let send = h2c(server.addr).await;
    assert_eq!(get(&send, "localhost", "/").await.1, "HTTP/2.0");

    // HTTP/2 off: the preface is not served (hyper's HTTP/1.1 parser refuses it).
    let app = service_fn(|_: Request<Incoming>| async move { Response::new(Body::from("x")) });
    let server = TestServer::start(ServerOptions::default().http2(false), app).await;
    let tcp = server.connect().await;
    let refused = async {
        let (send, connection) = h2::client::handshake(tcp).await?;
        tokio::spawn(connection);
        let request = Request::get("http://localhost/").body(()).unwrap();
        let (response, _) = send.ready().await?.send_request(request, true)?;
        response.await
    };
    assert!(within("refused", refused).await.is_err());
}

#[tokio::test]
async fn a_client_silent_after_choosing_h2_is_dropped_at_the_handshake_timeout() {
    let options = ServerOptions::default().handshake_timeout(std::time::Duration::from_millis(200));
    let server = tls_server(options).await;
    let (mut tls, alpn) = tls_connect(server.addr, &[b"h2"]).await;
    assert_eq!(alpn.as_deref(), Some(&b"h2"[..]));
    // No connection preface: the server closes instead of waiting forever.
    let mut sink = Vec::new();
    // EOF or a reset, within the step: either way the server let go.
    let _ = within("closed", tls.read_to_end(&mut sink)).await;
}
