//! `sockway echo`: the seeds' sample app. `/` serves a test page (URL box, Connect, Send,
//! Close Socket, connection state, Communication Log); a WebSocket on `/ws` is echoed frame
//! by frame, preserving message boundaries; a plain request on `/ws` gets 400. It runs on the
//! [`sockway::server::Server`] runner: connection limits, and a graceful shutdown on Ctrl-C
//! that closes open sockets with 1001.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{ALLOW, CACHE_CONTROL, CONTENT_TYPE};
use http::{HeaderValue, Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use sockway::server::{
    service_fn, AcceptOptions, Body, Layer, OriginPolicy, Server, ServerOptions, ServerWebSocket,
    UpgradeInfo, WebSocketLayer,
};
use sockway::Error;
use tokio::net::TcpListener;

/// The test page, served at `/`; self-contained (no external resources).
const PAGE: &str = include_str!("../assets/echo.html");

/// Flags of `sockway echo`.
#[derive(Debug, clap::Args)]
pub struct EchoArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:5000")]
    listen: SocketAddr,
    /// An origin allowed to open a WebSocket, as scheme://host[:port] (repeatable). Without
    /// any, every origin is allowed; with some, browsers from other origins get 403.
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
    let origins = OriginPolicy::try_list(&args.allowed_origins)?;
    let mut accept = AcceptOptions::default()
        .keep_alive_interval(Some(args.keep_alive_interval))
        .keep_alive_timeout(args.keep_alive_timeout)
        .max_message_size(args.max_message_size)
        .receive_buffer_size(args.receive_buffer_size)
        .compression(args.compression.then_some(sockway::DeflateConfig {
            server_max_window_bits: args.server_max_window_bits,
            server_no_context_takeover: args.server_no_context_takeover,
            ..Default::default()
        }));
    accept.origins = origins;
    let server = ServerOptions::default()
        .handshake_timeout(args.handshake_timeout)
        .max_connections(args.max_connections)
        .max_header_bytes(args.max_header_bytes)
        .drain_timeout(args.drain_timeout);

    let listener = TcpListener::bind(args.listen).await?;
    let address = listener.local_addr()?;
    tracing::info!(
        page = %format!("http://{address}/"),
        websocket = %format!("ws://{address}/ws"),
        "echo server listening"
    );
    let app = WebSocketLayer::new(echo)
        .path("/ws")
        .options(accept)
        .layer(service_fn(pages));
    Server::new(server).serve(listener, app).await;
    tracing::info!("echo server stopped");
    Ok(())
}

/// Everything that is not a WebSocket on `/ws`.
async fn pages(request: Request<Incoming>) -> Response<Body> {
    match request.uri().path() {
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

fn text(status: StatusCode, body: &'static str) -> Response<Body> {
    let mut response = Response::new(Body::new(Bytes::from_static(body.as_bytes())));
    *response.status_mut() = status;
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

/// Echoes every frame back as it arrives, keeping message boundaries, and logs one line when
/// the socket opens and one when it ends.
async fn echo(mut socket: ServerWebSocket, info: UpgradeInfo) {
    let started = Instant::now();
    let peer = info
        .peer_addr
        .map_or_else(|| "unknown".to_owned(), |a| a.to_string());
    let http = format!("{:?}", info.http_version);
    tracing::info!(%peer, %http, origin = info.origin.as_deref().unwrap_or("-"), "WebSocket opened");
    let result = echo_frames(&mut socket).await;
    let duration = format!("{:.3}s", started.elapsed().as_secs_f64());
    match (result, socket.close_info()) {
        (Err(error), _) => tracing::info!(
            %peer, %http, %duration, code = %error.close_code(), %error,
            "WebSocket failed"
        ),
        (Ok(()), Some(close)) => tracing::info!(
            %peer, %http, %duration, code = %close.code, reason = %close.reason,
            by = if close.initiated_locally { "server" } else { "client" },
            "WebSocket closed"
        ),
        (Ok(()), None) => tracing::info!(%peer, %http, %duration, "WebSocket closed"),
    }
}

async fn echo_frames(socket: &mut ServerWebSocket) -> Result<(), Error> {
    while let Some(piece) = socket.recv_fragment().await? {
        let sent = socket
            .send_fragment(piece.kind, &piece.data, piece.end_of_message)
            .await;
        match sent {
            Ok(()) => {}
            // The server is closing (shutdown): stop echoing but finish the close handshake.
            Err(Error::Send(_)) if socket.state() != sockway::proto::ConnectionState::Open => {}
            Err(error) => return Err(error),
        }
    }
    Ok(())
}
