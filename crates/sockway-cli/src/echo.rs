//! `sockway echo`: the sample app of ASP.NET Core's WebSockets documentation. `/` serves a test
//! page (URL box, Connect, Send, Close Socket, connection state, the HTTP version of the socket,
//! Communication Log); a WebSocket on `/ws` is echoed frame by frame, preserving message
//! boundaries (or a whole message at a time, with `--whole-messages`); a plain request on `/ws`
//! gets 400; `/info` tells, as JSON, the HTTP version of that request and, given `?socket=ID`,
//! of the page's open socket. It runs on the
//! [`sockway::server::Server`] runner: connection limits, and a graceful shutdown on Ctrl-C that
//! closes open sockets with 1001.
//!
//! HTTP versions: HTTP/1.1 and HTTP/2 on one port, WebSockets over both (RFC 8441 extended
//! CONNECT for HTTP/2). With TLS (`--tls-cert`/`--tls-key` or `--tls-self-signed`) ALPN
//! picks the version per connection, so browsers get HTTP/2; in plain text a client that
//! opens with the HTTP/2 preface (prior knowledge, h2c) gets HTTP/2, everyone else
//! HTTP/1.1. The preface is spotted in the first bytes the server reads anyway, so HTTP/1.1
//! pays nothing for it. `--http1-only` turns HTTP/2 off.

mod event_loop;
mod sockets;
mod tls;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{ALLOW, CACHE_CONTROL, CONTENT_TYPE};
use http::{HeaderValue, Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use sockway::server::{
    service_fn, AcceptOptions, Body, Layer, OriginPolicy, Server, ServerOptions, ServerTls,
    ServerWebSocket, StopSignals, TlsInfo, UpgradeInfo, WebSocketLayer,
};
use sockway::Error;
use tokio::net::TcpListener;

use sockets::{socket_id, version_name, Sockets};

/// The test page, served at `/`; self-contained (no external resources).
const PAGE: &str = include_str!("../assets/echo.html");

/// Flags of `sockway echo`.
#[derive(Debug, clap::Args)]
pub struct EchoArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:5000")]
    listen: SocketAddr,
    /// An origin allowed to open a WebSocket, as scheme://host or scheme://host:port
    /// (repeatable). Without any, every origin is allowed; with some, browsers from other
    /// origins get 403.
    #[arg(long = "allowed-origin", value_name = "ORIGIN")]
    allowed_origins: Vec<String>,
    /// Seconds a socket may be quiet before the server pings it; 0 turns keep-alive off.
    #[arg(long, value_name = "SECS", default_value = "120", value_parser = parse_secs)]
    keep_alive_interval: Duration,
    /// Seconds after a ping to wait for anything from the peer before closing the socket.
    #[arg(long, value_name = "SECS", default_value = "30", value_parser = parse_secs)]
    keep_alive_timeout: Duration,
    /// Largest message accepted, in bytes (close 1009 beyond it).
    #[arg(long, value_name = "BYTES", default_value_t = sockway::proto::config::DEFAULT_MAX_MESSAGE_SIZE)]
    max_message_size: usize,
    /// How many bytes each read from a socket may bring in.
    #[arg(long, value_name = "BYTES", default_value_t = 4096)]
    receive_buffer_size: usize,
    /// Seconds a client has to send its request head (slower ones are dropped).
    #[arg(long, value_name = "SECS", default_value = "10", value_parser = parse_secs)]
    handshake_timeout: Duration,
    /// Most connections open at once; more get 503.
    #[arg(long, value_name = "N", default_value_t = 10_000)]
    max_connections: usize,
    /// Largest request head in bytes; larger ones get 431.
    #[arg(long, value_name = "BYTES", default_value_t = 32 * 1024)]
    max_header_bytes: usize,
    /// Seconds to wait on Ctrl-C for open sockets to finish closing.
    #[arg(long, value_name = "SECS", default_value = "10", value_parser = parse_secs)]
    drain_timeout: Duration,
    /// Accept permessage-deflate (RFC 7692) when the client offers it. Off by default:
    /// compression over TLS can leak secrets through message sizes (CRIME/BREACH).
    #[arg(long)]
    compression: bool,
    /// With --compression: the largest LZ77 window the server compresses with (8-15).
    #[arg(long, value_name = "BITS", default_value_t = 15, value_parser = clap::value_parser!(u8).range(8..=15))]
    server_max_window_bits: u8,
    /// With --compression: reset the server's compressor after every message.
    #[arg(long)]
    server_no_context_takeover: bool,
    /// With --compression: ask clients to reset their compressor after every message too, so
    /// that the server's inflater holds nothing between messages (RFC 7692 section 7.1.1.2).
    #[arg(long)]
    client_no_context_takeover: bool,
    /// With --compression: zlib level, 0 (stored) to 9 (smallest, slowest); 1 is fastest.
    #[arg(long, value_name = "LEVEL", default_value_t = 1, value_parser = clap::value_parser!(u8).range(0..=9))]
    compression_level: u8,
    /// Serve HTTPS/WSS with this certificate chain (PEM, end entity first); needs --tls-key.
    #[arg(
        long,
        value_name = "FILE",
        requires = "tls_key",
        conflicts_with = "tls_self_signed"
    )]
    tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert (PEM: PKCS#8, PKCS#1 or SEC1).
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Serve HTTPS/WSS with a throwaway self-signed certificate for localhost, 127.0.0.1 and
    /// ::1 (browsers will warn; its SHA-256 fingerprint is logged at startup).
    #[arg(long)]
    tls_self_signed: bool,
    /// Serve HTTP/1.1 only: no HTTP/2 through ALPN, no HTTP/2 prior knowledge (h2c).
    #[arg(long)]
    http1_only: bool,
    /// Echo on the event-loop server (callbacks on worker threads, no task per connection):
    /// every WebSocket request on any path, whole messages, over TLS with the --tls-* flags;
    /// no page or HTTP/2.
    #[arg(long)]
    event_loop: bool,
    /// Echo each message once it is whole, as one frame, instead of frame by frame (the
    /// event loop always does). A test driver that does work for every frame it receives
    /// (Autobahn's, behind a gateway whose relay is what is under test) then spends its time
    /// on the cases, not on the framing.
    #[arg(long)]
    whole_messages: bool,
}

/// The permessage-deflate terms `args` ask for, if any (both servers take the same).
fn compression(args: &EchoArgs) -> Option<sockway::DeflateConfig> {
    args.compression.then_some(sockway::DeflateConfig {
        server_max_window_bits: args.server_max_window_bits,
        server_no_context_takeover: args.server_no_context_takeover,
        client_no_context_takeover: args.client_no_context_takeover,
        compression_level: args.compression_level,
        ..Default::default()
    })
}

/// The TLS identity `args` ask for (both servers take the same).
fn identity(args: &EchoArgs) -> Result<Option<ServerTls>, Box<dyn std::error::Error>> {
    Ok(match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(tls::from_files(cert, key)?),
        _ if args.tls_self_signed => Some(tls::self_signed(args.listen.ip())?),
        _ => None,
    })
}

/// Logs the certificate's fingerprint, after the listening address, for a user to compare
/// with what the browser shows.
fn announce(tls: &ServerTls, args: &EchoArgs) {
    let sha256 = tls::fingerprint(tls).unwrap_or_else(|| "unknown".into());
    tracing::info!(%sha256, self_signed = args.tls_self_signed, "TLS certificate");
}

/// Parses a non-negative number of seconds, fractions allowed (`0.2`).
fn parse_secs(text: &str) -> Result<Duration, String> {
    let secs: f64 = text
        .trim()
        .parse()
        .map_err(|_| format!("{text:?} is not a number of seconds"))?;
    Duration::try_from_secs_f64(secs).map_err(|_| format!("{text:?} is not a valid duration"))
}

/// Serves until Ctrl-C or SIGTERM, then closes open sockets and returns.
pub async fn run(args: EchoArgs) -> Result<(), Box<dyn std::error::Error>> {
    if args.event_loop {
        return event_loop::run(args).await;
    }
    let origins = OriginPolicy::try_list(&args.allowed_origins)?;
    let mut accept = AcceptOptions::default()
        .keep_alive_interval(Some(args.keep_alive_interval))
        .keep_alive_timeout(args.keep_alive_timeout)
        .max_message_size(args.max_message_size)
        .receive_buffer_size(args.receive_buffer_size)
        .compression(compression(&args));
    accept.origins = origins;
    let server = ServerOptions::default()
        .handshake_timeout(args.handshake_timeout)
        .max_connections(args.max_connections)
        .max_header_bytes(args.max_header_bytes)
        .drain_timeout(args.drain_timeout)
        .http2(!args.http1_only);
    let tls = identity(&args)?;

    // Before the address is announced, so a Ctrl-C or SIGTERM sent right after it closes
    // the open sockets instead of ending the process on the spot.
    let stop_signals = StopSignals::install();
    let listener = TcpListener::bind(args.listen).await?;
    let address = listener.local_addr()?;
    let scheme = if tls.is_some() {
        ("https", "wss")
    } else {
        ("http", "ws")
    };
    tracing::info!(
        page = %format!("{}://{address}/", scheme.0),
        websocket = %format!("{}://{address}/ws", scheme.1),
        http2 = !args.http1_only,
        "echo server listening"
    );
    let mut runner = Server::new(server).signals(stop_signals);
    if let Some(tls) = tls {
        announce(&tls, &args);
        runner = runner.tls(tls);
    }
    let sockets = Sockets::default();
    let registry = sockets.clone();
    let whole_messages = args.whole_messages;
    let app = WebSocketLayer::new(move |socket, info| {
        echo(socket, info, registry.clone(), whole_messages)
    })
    .path("/ws")
    .options(accept)
    .layer(service_fn(move |request| pages(request, sockets.clone())));
    runner.serve(listener, app).await;
    tracing::info!("echo server stopped");
    Ok(())
}

/// Everything that is not a WebSocket on `/ws`.
async fn pages(request: Request<Incoming>, sockets: Sockets) -> Response<Body> {
    if request.method() == Method::CONNECT {
        // A tunnel request (no `:protocol`), or extended CONNECT off `/ws`: this is no proxy.
        let mut response = text(
            StatusCode::METHOD_NOT_ALLOWED,
            "this server is no proxy: CONNECT is only for WebSockets on /ws (RFC 8441)\n",
        );
        response
            .headers_mut()
            .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
        return response;
    }
    match request.uri().path() {
        "/info" => info(&request, &sockets),
        "/" if matches!(*request.method(), Method::GET | Method::HEAD) => {
            let mut response = Response::new(Body::new(Bytes::from_static(PAGE.as_bytes())));
            let headers = response.headers_mut();
            headers.insert(
                CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            );
            headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
            response
        }
        "/" => {
            let mut response = text(
                StatusCode::METHOD_NOT_ALLOWED,
                "the page only answers GET and HEAD\n",
            );
            response
                .headers_mut()
                .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
            response
        }
        "/ws" => text(
            StatusCode::BAD_REQUEST,
            "/ws only accepts WebSocket requests (Upgrade: websocket); open / for the test page\n",
        ),
        _ => text(
            StatusCode::NOT_FOUND,
            "not found: the page is at /, the WebSocket echo at /ws\n",
        ),
    }
}

/// `GET /info[?socket=ID]`: the HTTP version and TLS facts of this request and, for a socket
/// the page opened with `?socket=ID`, the HTTP version that socket arrived over (`null` when
/// it is not open), as JSON.
fn info(request: &Request<Incoming>, sockets: &Sockets) -> Response<Body> {
    let tls = request.extensions().get::<TlsInfo>();
    let alpn = tls
        .and_then(|tls| tls.alpn.as_deref())
        .map(|alpn| String::from_utf8_lossy(alpn).into_owned())
        .filter(|alpn| {
            alpn.bytes()
                .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\')
        });
    let socket = socket_id(request.uri().query()).and_then(|id| {
        sockets
            .version(id)
            .map(|version| format!(r#"{{"id":"{id}","http":"{}"}}"#, version_name(version)))
    });
    let body = format!(
        r#"{{"http":"{}","tls":{},"alpn":{},"socket":{}}}"#,
        version_name(request.version()),
        tls.is_some(),
        alpn.map_or_else(|| "null".to_owned(), |a| format!(r#""{a}""#)),
        socket.as_deref().unwrap_or("null"),
    );
    let mut response = Response::new(Body::new(Bytes::from(body)));
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn text(status: StatusCode, body: &'static str) -> Response<Body> {
    let mut response = Response::new(Body::new(Bytes::from_static(body.as_bytes())));
    *response.status_mut() = status;
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

/// Echoes every frame back as it arrives, keeping message boundaries (or each message once
/// whole, with `whole_messages`), and logs one line when the socket opens and one when it
/// ends, each with the HTTP version it arrived over (`http=HTTP/1.1` or `http=HTTP/2.0`).
async fn echo(
    mut socket: ServerWebSocket,
    info: UpgradeInfo,
    sockets: Sockets,
    whole_messages: bool,
) {
    let started = Instant::now();
    let peer = info
        .peer_addr()
        .map_or_else(|| "unknown".to_owned(), |a| a.to_string());
    let http = format!("{:?}", info.http_version());
    let compression = if info.compression().is_some() {
        "permessage-deflate"
    } else {
        "off"
    };
    tracing::info!(%peer, %http, origin = info.origin().unwrap_or("-"), %compression, "WebSocket opened");
    let id = socket_id(info.uri().query()).filter(|id| sockets.open(id, info.http_version()));
    let mut payload = 0u64;
    let result = if whole_messages {
        echo_messages(&mut socket, &mut payload).await
    } else {
        echo_frames(&mut socket, &mut payload).await
    };
    let stats = socket.stats();
    // Payload echoed versus bytes on the wire each way: with compression the wire carries less.
    let traffic = format!(
        "payload={payload} wire_in={} wire_out={}",
        stats.bytes_received, stats.bytes_sent
    );
    if let Some(id) = id {
        sockets.close(id);
    }
    let duration = format!("{:.3}s", started.elapsed().as_secs_f64());
    match (result, socket.close_info()) {
        (Err(error), _) => tracing::info!(
            %peer, %http, %duration, code = %error.close_code(), %error, %traffic,
            "WebSocket failed"
        ),
        (Ok(()), Some(close)) => tracing::info!(
            %peer, %http, %duration, code = %close.code, reason = %close.reason,
            by = if close.initiated_locally { "server" } else { "client" }, %traffic,
            "WebSocket closed"
        ),
        (Ok(()), None) => tracing::info!(%peer, %http, %duration, %traffic, "WebSocket closed"),
    }
}

/// Echoes frames until the socket closes, adding the payload bytes echoed to `payload`.
async fn echo_frames(socket: &mut ServerWebSocket, payload: &mut u64) -> Result<(), Error> {
    while let Some(piece) = socket.recv_fragment().await? {
        *payload += piece.data.len() as u64;
        let sent = socket
            .send_fragment(piece.kind, &piece.data, piece.end_of_message)
            .await;
        echoed(socket, sent)?;
    }
    Ok(())
}

/// Echoes whole messages until the socket closes, adding the payload bytes echoed to `payload`.
async fn echo_messages(socket: &mut ServerWebSocket, payload: &mut u64) -> Result<(), Error> {
    while let Some(message) = socket.recv().await? {
        *payload += message.len() as u64;
        let sent = socket.send(message).await;
        echoed(socket, sent)?;
    }
    Ok(())
}

/// What a failed echo means: once the server is closing (shutdown), stop echoing but finish
/// the close handshake; anything else ends the socket.
fn echoed(socket: &ServerWebSocket, sent: Result<(), Error>) -> Result<(), Error> {
    match sent {
        Err(Error::Send(_)) if socket.state() != sockway::proto::ConnectionState::Open => Ok(()),
        other => other,
    }
}
