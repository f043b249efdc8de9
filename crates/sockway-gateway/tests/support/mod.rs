//! Test support: in-process backends (HTTP + WebSocket echo built on `sockway::server::accept`)
//! on loopback port 0, a raw WebSocket client, raw HTTP exchanges, and gateway configs.
#![allow(dead_code)]

pub mod pki;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use sockway::server::{accept, AcceptOptions};
use sockway::{Message, Role, WebSocket, WebSocketConfig};
use sockway_gateway::config::{self, Format};
use sockway_gateway::Gateway;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

/// Every wait in these tests is bounded by this.
pub const LIMIT: Duration = Duration::from_secs(10);

/// Runs `f` with the [`LIMIT`].
pub async fn bounded<F: std::future::Future>(what: &str, f: F) -> F::Output {
    match tokio::time::timeout(LIMIT, f).await {
        Ok(v) => v,
        Err(_) => panic!("timed out: {what}"),
    }
}

/// A backend server: `/` answers `200 healthy <name>`, `/headers` lists request headers,
/// WebSocket requests on any path are echoed (text `whoami` answers the name).
pub struct Backend {
    pub name: String,
    pub addr: SocketAddr,
    pub requests: Arc<AtomicUsize>,
    server: Option<tokio::task::JoinHandle<()>>,
    killed: tokio::sync::watch::Sender<bool>,
}

impl Backend {
    pub async fn start(name: &str) -> Backend {
        Self::start_with(name, true).await
    }

    /// `http_health`: whether `/` answers 200 (else 503).
    pub async fn start_with(name: &str, http_health: bool) -> Backend {
        Self::start_full(name, http_health, None).await
    }

    /// A backend behind TLS.
    pub async fn start_tls(name: &str, tls: tokio_rustls::TlsAcceptor) -> Backend {
        Self::start_full(name, true, Some(tls)).await
    }

    async fn start_full(
        name: &str,
        http_health: bool,
        tls: Option<tokio_rustls::TlsAcceptor>,
    ) -> Backend {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let requests = Arc::new(AtomicUsize::new(0));
        let counter = requests.clone();
        let label = name.to_owned();
        let (killed, killed_rx) = tokio::sync::watch::channel(false);
        let server = tokio::spawn(async move {
            let mut conns = JoinSet::new();
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let name = label.clone();
                let counter = counter.clone();
                let killed = killed_rx.clone();
                let tls = tls.clone();
                conns.spawn(async move {
                    let service = service_fn(move |req| {
                        handle(
                            name.clone(),
                            counter.clone(),
                            http_health,
                            killed.clone(),
                            req,
                        )
                    });
                    let builder = hyper::server::conn::http1::Builder::new();
                    match tls {
                        None => {
                            let _ = builder
                                .serve_connection(TokioIo::new(stream), service)
                                .with_upgrades()
                                .await;
                        }
                        Some(tls) => {
                            let Ok(stream) = tls.accept(stream).await else {
                                return;
                            };
                            let _ = builder
                                .serve_connection(TokioIo::new(stream), service)
                                .with_upgrades()
                                .await;
                        }
                    }
                });
            }
        });
        Backend {
            name: name.to_owned(),
            addr,
            requests,
            server: Some(server),
            killed,
        }
    }

    /// Kills the server and every connection and session it has (sockets are dropped,
    /// without close frames).
    pub fn kill(&mut self) {
        self.killed.send_replace(true);
        if let Some(server) = self.server.take() {
            server.abort();
        }
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        self.kill();
    }
}

async fn handle(
    name: String,
    counter: Arc<AtomicUsize>,
    http_health: bool,
    mut killed: tokio::sync::watch::Receiver<bool>,
    mut req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    if sockway::server::is_websocket_request(&req) {
        let seen = headers_text(&req);
        return Ok(
            match accept(&mut req, &AcceptOptions::default().subprotocols(["chat"])) {
                Ok((response, pending)) => {
                    tokio::spawn(async move {
                        let Ok(mut socket) = pending.await else {
                            return;
                        };
                        loop {
                            let message = tokio::select! {
                                m = socket.recv() => m,
                                _ = killed.wait_for(|k| *k) => {
                                    // Gone: the socket is dropped with the task.
                                    return;
                                }
                            };
                            let Ok(Some(message)) = message else { break };
                            let reply = match &message {
                                Message::Text(t) if t.as_str() == "whoami" => {
                                    Message::text(name.clone())
                                }
                                Message::Text(t) if t.as_str() == "headers" => {
                                    Message::text(seen.clone())
                                }
                                _ => message,
                            };
                            if socket.send(reply).await.is_err() {
                                break;
                            }
                        }
                    });
                    response
                }
                Err(rejection) => {
                    let (parts, body) = rejection.into_response().into_parts();
                    Response::from_parts(parts, body)
                }
            },
        );
    }
    counter.fetch_add(1, Ordering::SeqCst);
    let path = req.uri().path().to_owned();
    let text = headers_text(&req);
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let (status, text) = match path.as_str() {
        "/" if http_health => (StatusCode::OK, format!("healthy {name}\n")),
        "/" => (StatusCode::SERVICE_UNAVAILABLE, "not ready\n".to_owned()),
        "/headers" => (StatusCode::OK, format!("backend={name}\n{text}")),
        "/echo" => (
            StatusCode::OK,
            format!("backend={name}\nbody={}\n", String::from_utf8_lossy(&body)),
        ),
        _ => (StatusCode::OK, format!("backend={name}\npath={path}\n")),
    };
    let mut response = Response::new(Full::new(Bytes::from(text)));
    *response.status_mut() = status;
    Ok(response)
}

fn headers_text<B>(req: &Request<B>) -> String {
    let mut out = String::new();
    for (k, v) in req.headers() {
        out.push_str(&format!("{}={}\n", k, v.to_str().unwrap_or("?")));
    }
    out
}

/// A port that was free a moment ago (the gateway's listeners need a fixed port number).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A gateway config: one listener on `port` to one pool of `backends` with `settings_extra`
/// merged into the settings and `probe` (if any) as its probe.
pub fn basic_config(
    port: u16,
    backends: &[&Backend],
    settings_extra: serde_json::Value,
    probe: Option<serde_json::Value>,
) -> serde_json::Value {
    let addresses: Vec<serde_json::Value> = backends
        .iter()
        .map(|b| serde_json::json!({"ipAddress": "127.0.0.1", "port": b.port()}))
        .collect();
    let mut settings = serde_json::json!({"name": "settings", "port": 1, "requestTimeout": 5});
    if let serde_json::Value::Object(extra) = settings_extra {
        settings.as_object_mut().unwrap().extend(extra);
    }
    let probe = probe.unwrap_or_else(|| serde_json::json!({"name": "fast", "path": "/", "interval": 0.1, "timeout": 1, "unhealthyThreshold": 2}));
    settings["probe"] = probe["name"].clone();
    serde_json::json!({
        "httpListeners": [{"name": "web", "port": port, "bindAddress": "127.0.0.1"}],
        "backendAddressPools": [{"name": "pool", "backendAddresses": addresses}],
        "backendHttpSettingsCollection": [settings],
        "probes": [probe],
        "requestRoutingRules": [{"name": "rule", "ruleType": "Basic", "httpListener": "web",
            "backendAddressPool": "pool", "backendHttpSettings": "settings"}],
        "limits": {"closeGrace": 0.5, "shutdownTimeout": 0.3}
    })
}

/// Starts a gateway and waits until every backend that `expect_healthy` names is healthy.
pub async fn start_gateway(doc: &serde_json::Value) -> Gateway {
    let config = config::from_str(&doc.to_string(), Format::Json).expect("valid config");
    Gateway::start(config, None).await.expect("gateway starts")
}

/// Waits until `n` backends are healthy.
pub async fn wait_healthy(gateway: &Gateway, n: usize) {
    bounded("backends healthy", async {
        while gateway.health().iter().filter(|h| h.healthy).count() < n {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
}

pub type Client = WebSocket<TcpStream>;

/// Opens a WebSocket through `port` with a hand-written handshake; returns the socket and the
/// response head.
pub async fn ws_connect(port: u16, path: &str, extra: &str) -> Result<(Client, String), String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))
        .await
        .map_err(|e| e.to_string())?;
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: localhost:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
         Origin: http://localhost\r\nSec-WebSocket-Protocol: chat, superchat\r\n{extra}\r\n"
    );
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    let mut buf = BytesMut::new();
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = stream.read_buf(&mut buf).await.map_err(|e| e.to_string())?;
        if n == 0 || buf.len() > 64 * 1024 {
            return Err(format!(
                "no response head: {:?}",
                String::from_utf8_lossy(&buf)
            ));
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    if !head.starts_with("HTTP/1.1 101") {
        let mut rest = buf[head_end..].to_vec();
        let _ =
            tokio::time::timeout(Duration::from_millis(500), stream.read_to_end(&mut rest)).await;
        return Err(format!("{head}{}", String::from_utf8_lossy(&rest)));
    }
    assert!(
        head.to_ascii_lowercase()
            .contains("sec-websocket-accept: s3pplmbitxaq9kygzzhzrbk+xoo="),
        "accept for the client's key: {head}"
    );
    let leftover = buf.split_off(head_end);
    Ok((
        WebSocket::from_raw(stream, Role::Client, WebSocketConfig::default(), leftover),
        head,
    ))
}

/// Sends text and returns the text answer.
pub async fn ask(ws: &mut Client, text: &str) -> String {
    bounded("websocket answer", async {
        ws.send_text(text).await.expect("send");
        match ws.recv().await.expect("recv") {
            Some(Message::Text(t)) => t.as_str().to_owned(),
            other => panic!("unexpected {other:?}"),
        }
    })
    .await
}

/// Sends raw bytes and reads the whole response (the request should close the connection).
pub async fn raw_exchange(port: u16, request: &[u8]) -> String {
    bounded("raw exchange", async {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        stream.write_all(request).await.unwrap();
        let mut out = Vec::new();
        let _ = stream.read_to_end(&mut out).await;
        String::from_utf8_lossy(&out).into_owned()
    })
    .await
}

/// `GET path` with `Connection: close` and extra header lines; returns the whole response.
pub async fn get(port: u16, path: &str, extra: &str) -> String {
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: localhost:{port}\r\nConnection: close\r\n{extra}\r\n"
    );
    raw_exchange(port, request.as_bytes()).await
}
