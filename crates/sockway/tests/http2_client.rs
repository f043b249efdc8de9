//! sockway's client over HTTP/2 (RFC 8441) against sockway's server: the version chosen by
//! ALPN and SETTINGS, one shared connection for many sockets, compression, fallbacks to
//! HTTP/1.1, and the forced versions.

mod http2_support;
mod server_support;

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use http::Version;
use http2_support::*;
use server_support::{not_found, TestServer};
use sockway::client::{ClientBuilder, ClientError, ErrorStatus, HttpVersion};
use sockway::server::{
    AcceptOptions, Layer, Server, ServerOptions, ServerWebSocket, Service, UpgradeInfo,
    WebSocketLayer,
};
use sockway::{DeflateConfig, Message};
use tokio::net::TcpListener;

/// The peers (one per TCP connection) whose sockets the server accepted.
type Peers = Arc<Mutex<Vec<(Option<SocketAddr>, Version)>>>;

/// An echo server on `/ws` recording each socket's peer address and HTTP version.
async fn echo_server(
    options: AcceptOptions,
    server: ServerOptions,
    tls: bool,
) -> (TestServer, Peers) {
    let peers = Peers::default();
    let seen = peers.clone();
    let app = WebSocketLayer::new(move |mut socket: ServerWebSocket, info: UpgradeInfo| {
        seen.lock()
            .unwrap()
            .push((info.peer_addr(), info.http_version()));
        async move {
            while let Ok(Some(message)) = socket.recv().await {
                if socket.send(message).await.is_err() {
                    break;
                }
            }
        }
    })
    .path("/ws")
    .options(options)
    .layer(not_found());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let mut runner = Server::new(server.handle_signals(false));
    if tls {
        runner = runner.tls(self_signed());
    }
    let handle = runner.shutdown_handle();
    let task = tokio::spawn(runner.serve(listener, app));
    (TestServer { addr, handle, task }, peers)
}

fn wss(server: &TestServer) -> ClientBuilder {
    ClientBuilder::new(format!("wss://localhost:{}/ws", server.addr.port()))
        .resolve_to(vec![server.addr])
        .danger_accept_invalid_certificates()
}

async fn echo_once(socket: &mut sockway::WebSocket<sockway::client::ClientStream>, text: &str) {
    within("send", socket.send(Message::text(text.to_owned())))
        .await
        .unwrap();
    assert_eq!(
        within("echo", socket.recv()).await.unwrap(),
        Some(Message::text(text.to_owned()))
    );
}

#[tokio::test]
async fn a_hundred_sockets_share_one_http2_connection() {
    let (server, peers) =
        echo_server(AcceptOptions::default(), ServerOptions::default(), true).await;
    let builder = wss(&server);
    let connects: Vec<_> = (0..100).map(|_| tokio::spawn(builder.connect())).collect();
    let mut sockets = Vec::new();
    for connect in connects {
        let (socket, info) = within("connect", connect).await.unwrap().unwrap();
        assert_eq!(info.http_version, Version::HTTP_2);
        assert_eq!(info.status, 200);
        assert!(info.secure && !info.peer_certificates.is_empty());
        sockets.push(socket);
    }
    let echoes: Vec<_> = sockets
        .into_iter()
        .enumerate()
        .map(|(i, mut socket)| {
            tokio::spawn(async move {
                echo_once(&mut socket, &format!("socket {i}")).await;
                socket
            })
        })
        .collect();
    for echo in echoes {
        within("echo", echo).await.unwrap();
    }
    let peers = peers.lock().unwrap().clone();
    assert_eq!(peers.len(), 100);
    assert!(peers.iter().all(|(_, v)| *v == Version::HTTP_2));
    let connections: HashSet<_> = peers.iter().map(|(peer, _)| *peer).collect();
    assert_eq!(
        connections.len(),
        1,
        "one TCP connection carried all 100 sockets"
    );
    assert_eq!(builder.pool().http2_connections(), 1);
}

#[tokio::test]
async fn a_full_connection_makes_the_pool_open_another() {
    let server = ServerOptions::default().http2_max_streams(4);
    let (server, peers) = echo_server(AcceptOptions::default(), server, true).await;
    let builder = wss(&server);
    let mut sockets = Vec::new();
    for _ in 0..10 {
        let (socket, info) = within("connect", builder.connect()).await.unwrap();
        assert_eq!(info.http_version, Version::HTTP_2);
        sockets.push(socket);
    }
    for (i, socket) in sockets.iter_mut().enumerate() {
        echo_once(socket, &format!("socket {i}")).await;
    }
    let connections: HashSet<_> = peers.lock().unwrap().iter().map(|(p, _)| *p).collect();
    assert_eq!(connections.len(), 3, "4 + 4 + 2 sockets");
    assert_eq!(builder.pool().http2_connections(), 3);
    // A closed socket frees its slot: the next one reuses a connection.
    sockets.truncate(9);
    let (mut socket, _) = within("connect", builder.connect()).await.unwrap();
    echo_once(&mut socket, "reused slot").await;
    assert_eq!(builder.pool().http2_connections(), 3);
}

#[tokio::test]
async fn compression_works_over_http2() {
    let options = AcceptOptions::default().compression(Some(DeflateConfig::default()));
    let (server, _) = echo_server(options, ServerOptions::default(), true).await;
    let (mut socket, info) = wss(&server)
        .compression(Some(DeflateConfig::default()))
        .connect()
        .await
        .unwrap();
    assert_eq!(info.http_version, Version::HTTP_2);
    assert!(socket.compression().is_some(), "permessage-deflate agreed");
    assert_eq!(info.extensions[0].name, "permessage-deflate");
    let text = "squeeze me ".repeat(2000);
    echo_once(&mut socket, &text).await;
    assert!(socket.stats().bytes_received < text.len() as u64 / 4);
}

#[tokio::test]
async fn subprotocols_origins_and_refusals_over_http2() {
    let options = AcceptOptions::default()
        .subprotocols(["chat"])
        .allowed_origins(["https://good.example"]);
    let (server, _) = echo_server(options, ServerOptions::default(), true).await;
    let builder = wss(&server).subprotocol("superchat").subprotocol("chat");
    let refused = builder
        .clone()
        .origin("https://evil.example")
        .connect()
        .await
        .unwrap_err();
    assert!(
        matches!(&refused, ClientError::Rejected { status, .. } if *status == 403),
        "{refused}"
    );
    let (mut socket, info) = builder
        .clone()
        .origin("https://good.example")
        .connect()
        .await
        .unwrap();
    assert_eq!(info.http_version, Version::HTTP_2);
    assert_eq!(info.subprotocol.as_deref(), Some("chat"));
    echo_once(&mut socket, "after a refusal on the same connection").await;
    assert_eq!(builder.pool().http2_connections(), 1);
}

#[tokio::test]
async fn dropping_a_socket_closes_only_its_stream() {
    let (server, _) = echo_server(AcceptOptions::default(), ServerOptions::default(), true).await;
    let builder = wss(&server);
    let (mut kept, _) = builder.connect().await.unwrap();
    let (dropped, _) = builder.connect().await.unwrap();
    drop(dropped);
    echo_once(&mut kept, "still echoing").await;
    let (mut again, _) = builder.connect().await.unwrap();
    echo_once(&mut again, "new stream, same connection").await;
    assert_eq!(builder.pool().http2_connections(), 1);
}

#[tokio::test]
async fn auto_falls_back_to_http1_when_the_server_offers_no_h2() {
    let (server, peers) = echo_server(
        AcceptOptions::default(),
        ServerOptions::default().http2(false),
        true,
    )
    .await;
    let builder = wss(&server);
    for _ in 0..2 {
        let (mut socket, info) = builder.connect().await.unwrap();
        assert_eq!(info.http_version, Version::HTTP_11);
        assert_eq!(info.status, 101);
        echo_once(&mut socket, "over HTTP/1.1").await;
    }
    assert_eq!(peers.lock().unwrap().len(), 2);
    let error = builder
        .clone()
        .http_version(HttpVersion::Http2Only)
        .connect()
        .await
        .unwrap_err();
    assert_eq!(error.status(), ErrorStatus::Http2Unavailable, "{error}");
}

#[tokio::test]
async fn auto_falls_back_when_http2_lacks_extended_connect() {
    // A TLS server speaking HTTP/2 without SETTINGS_ENABLE_CONNECT_PROTOCOL (and HTTP/1.1).
    let app = WebSocketLayer::new(|mut socket: ServerWebSocket, _: UpgradeInfo| async move {
        while let Ok(Some(message)) = socket.recv().await {
            if socket.send(message).await.is_err() {
                break;
            }
        }
    })
    .path("/ws")
    .layer(sockway::server::service_fn(
        |_: http::Request<hyper::body::Incoming>| async {
            http::Response::new(sockway::server::Body::from("not found"))
        },
    ));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let mut tls = (*insecure_server_config()).clone();
    tls.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls));
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (acceptor, app) = (acceptor.clone(), app.clone());
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let builder = hyper_util::server::conn::auto::Builder::new(
                    hyper_util::rt::TokioExecutor::new(),
                );
                let service = hyper::service::service_fn(move |request| {
                    let mut app = app.clone();
                    async move {
                        std::future::poll_fn(|cx| Service::poll_ready(&mut app, cx)).await?;
                        app.call(request).await
                    }
                });
                let _ = builder
                    .serve_connection_with_upgrades(hyper_util::rt::TokioIo::new(tls), service)
                    .await;
            });
        }
    });
    let builder = ClientBuilder::new(format!("wss://localhost:{}/ws", addr.port()))
        .resolve_to(vec![addr])
        .danger_accept_invalid_certificates();
    let (mut socket, info) = builder.connect().await.unwrap();
    assert_eq!(info.http_version, Version::HTTP_11);
    echo_once(&mut socket, "fell back").await;
    let error = builder
        .clone()
        .http_version(HttpVersion::Http2Only)
        .connection_pool(Default::default())
        .connect()
        .await
        .unwrap_err();
    assert!(matches!(error, ClientError::Http2Unavailable(_)), "{error}");
    assert!(error
        .to_string()
        .contains("SETTINGS_ENABLE_CONNECT_PROTOCOL"));
}

#[tokio::test]
async fn forced_versions_over_tls_and_plain_tcp() {
    let (server, _) = echo_server(AcceptOptions::default(), ServerOptions::default(), true).await;
    let (mut socket, info) = wss(&server)
        .http_version(HttpVersion::Http1Only)
        .connect()
        .await
        .unwrap();
    assert_eq!(info.http_version, Version::HTTP_11);
    echo_once(&mut socket, "forced HTTP/1.1").await;

    let (plain, peers) =
        echo_server(AcceptOptions::default(), ServerOptions::default(), false).await;
    let url = format!("ws://{}/ws", plain.addr);
    let (mut socket, info) = ClientBuilder::new(&url).connect().await.unwrap();
    assert_eq!(
        info.http_version,
        Version::HTTP_11,
        "ws:// defaults to HTTP/1.1"
    );
    echo_once(&mut socket, "plain HTTP/1.1").await;
    let builder = ClientBuilder::new(&url).http_version(HttpVersion::Http2Only);
    let (mut a, info) = builder.connect().await.unwrap();
    assert_eq!(
        info.http_version,
        Version::HTTP_2,
        "h2c with prior knowledge"
    );
    let (mut b, _) = builder.connect().await.unwrap();
    echo_once(&mut a, "h2c a").await;
    echo_once(&mut b, "h2c b").await;
    let peers = peers.lock().unwrap().clone();
    assert_eq!(peers.len(), 3);
    assert_eq!(peers[1].0, peers[2].0, "the h2c sockets share a connection");

    // h2c against a server with HTTP/2 off: a clear error, not a hang.
    let (http1, _) = echo_server(
        AcceptOptions::default(),
        ServerOptions::default().http2(false),
        false,
    )
    .await;
    let error = ClientBuilder::new(format!("ws://{}/ws", http1.addr))
        .http_version(HttpVersion::Http2Only)
        .connect()
        .await
        .unwrap_err();
    assert_eq!(error.status(), ErrorStatus::Http2Unavailable, "{error}");
}

/// A rustls server configuration with a fresh self-signed certificate.
fn insecure_server_config() -> Arc<rustls::ServerConfig> {
    let certified =
        rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(certified.signing_key.serialize_der().into());
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    Arc::new(
        rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![certified.cert.der().clone()], key)
            .unwrap(),
    )
}
