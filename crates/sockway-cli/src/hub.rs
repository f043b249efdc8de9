//! `sockway hub`: the sample chat hub. `/` serves a chat page (user, message, Send, the list
//! of messages, like the SignalR tutorial's page) that loads the official SignalR JavaScript
//! client and talks to the hub at `/chatHub` (`sockway_hub::sample::chat_hub`: the methods
//! of the ASP.NET Core SignalR docs' samples) over WebSockets, Server-Sent Events or long
//! polling, JSON or MessagePack.
//!
//! The client script comes from cdnjs by default; `--signalr-js FILE` serves a local copy
//! (the npm package's `dist/browser/signalr.js`) at `/js/signalr.js` instead, for machines
//! without Internet access. It runs on the [`sockway::server::Server`] runner (HTTP/1.1 and
//! HTTP/2 on one port) and stops gracefully on Ctrl-C or SIGTERM.
//!
//! With `--redis URL` it is one server of a fleet (`docs/hub-scaleout.md`): sends, groups and
//! client results go through Redis, and the requests of Server-Sent Events and long polling
//! that land on another server are relayed to the one holding their connection;
//! `--metrics-listen ADDR` serves the fleet counters ([`metrics`]).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use http::header::{ALLOW, CACHE_CONTROL, CONTENT_TYPE};
use http::{HeaderValue, Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use sockway::server::{service_fn, Body, Server, ServerOptions, StopSignals};
use sockway_hub::backplane::{
    RedisBackplane, RedisClaims, RedisOptions, ScaleOutLifetimeManager, ScaleOutOptions,
};
use sockway_hub::sample::{chat_hub, chat_hub_builder};
use sockway_hub::token::TokenKey;
use sockway_hub::{HttpOptions, HubOptions, HubService};
use tokio::net::TcpListener;

mod metrics;

/// The chat page; `{{SIGNALR_JS}}` becomes the client script's URL.
const PAGE: &str = include_str!("hub/index.html");

/// Where the page loads the client from by default (the version the SignalR tutorial of
/// ASP.NET Core 8 uses).
const CDN_SIGNALR_JS: &str =
    "https://cdnjs.cloudflare.com/ajax/libs/microsoft-signalr/8.0.7/signalr.min.js";

/// Where a local copy given with `--signalr-js` is served.
const LOCAL_SIGNALR_JS: &str = "/js/signalr.js";

/// The largest client script `--signalr-js` accepts (the npm bundle is about 0.5 MB).
const MAX_SCRIPT_BYTES: u64 = 16 * 1024 * 1024;

/// Flags of `sockway hub`.
#[derive(Debug, clap::Args)]
pub struct HubArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:5000")]
    listen: SocketAddr,
    /// Serve this copy of the SignalR JavaScript client (e.g. the npm package's
    /// dist/browser/signalr.js) at /js/signalr.js and load it from there instead of the CDN.
    #[arg(long, value_name = "FILE")]
    signalr_js: Option<PathBuf>,
    /// Run as one server of a fleet: sends, groups and client results go through the Redis
    /// server at this URL (e.g. redis://127.0.0.1:6379/), so the clients of every server that
    /// uses it reach each other. The server starts even while Redis is down, and says so.
    #[arg(long, value_name = "URL")]
    redis: Option<String>,
    /// Sign connection tokens with the secret in this file (at least 32 bytes) and accept a
    /// WebSocket whose token another server of the fleet signed with it, so clients that
    /// negotiate need no sticky sessions. Without it each server has a random key of its own.
    #[arg(long, value_name = "FILE")]
    token_secret_file: Option<PathBuf>,
    /// With --redis: serve this server's backplane and relay counters at /metrics (Prometheus
    /// text format) and /healthz on this address, for loopback clients only (e.g.
    /// 127.0.0.1:9101).
    #[arg(long, value_name = "ADDR", requires = "redis")]
    metrics_listen: Option<SocketAddr>,
}

/// The shortest token secret `--token-secret-file` accepts: as long as an HMAC-SHA256 key.
const MIN_SECRET_BYTES: usize = 32;

/// The longest token secret file read.
const MAX_SECRET_BYTES: u64 = 4096;

/// What the pages next to the hub serve.
#[derive(Clone)]
struct Pages {
    page: Bytes,
    script: Option<Bytes>,
}

/// Serves until Ctrl-C or SIGTERM, then closes open connections and returns.
pub async fn run(args: HubArgs) -> Result<(), Box<dyn std::error::Error>> {
    let script = match &args.signalr_js {
        Some(path) => Some(read_script(path).await?),
        None => None,
    };
    let source = if script.is_some() {
        LOCAL_SIGNALR_JS
    } else {
        CDN_SIGNALR_JS
    };
    let pages = Pages {
        page: Bytes::from(PAGE.replace("{{SIGNALR_JS}}", source)),
        script,
    };
    let mut options = HttpOptions::default().stateful_reconnect(true);
    let hub = match &args.redis {
        None => chat_hub(),
        Some(url) => {
            let manager = fleet_manager(url).await?;
            if let Some(address) = args.metrics_listen {
                let listener = TcpListener::bind(address)
                    .await
                    .map_err(|error| format!("--metrics-listen {address}: {error}"))?;
                let address = listener.local_addr()?;
                if !address.ip().is_loopback() {
                    tracing::warn!(%address, "the metrics listener answers loopback clients only");
                }
                // No URL here: the hub's own listening line is the one with `http://`.
                tracing::info!(metrics_listen = %address, "metrics at /metrics");
                tokio::spawn(metrics::serve(listener, manager.clone()));
            }
            // Server-Sent Events and long-polling requests that land on another server of
            // the fleet are handed to this one's connections, and back.
            options = options.relay(manager.clone());
            chat_hub_builder(HubOptions::default())
                .lifetime_manager(manager)
                .build()
        }
    };
    if let Some(path) = &args.token_secret_file {
        let secret = read_secret(path).await?;
        options = options
            .token_key(TokenKey::from_secret(&secret))
            .adopt_signed_tokens(true);
        if let Some(url) = &args.redis {
            // A stateful reconnect whose server died must not be adopted as a new connection.
            let redis = RedisOptions::new(url.as_str());
            let claims = RedisClaims::new(url, &redis.channel_prefix, redis.response_timeout)
                .map_err(|error| format!("--redis {url}: {error}"))?;
            options = options.connection_claims(Arc::new(claims));
        }
    }
    let server = Server::new(ServerOptions::default());
    // On Ctrl-C or SIGTERM every hub connection ends at once: sockets close, event streams
    // end, waiting polls get 204.
    let app = HubService::new("/chatHub", hub, options)
        .close_on(&server.shutdown_handle())
        .fallback(service_fn(move |request| {
            serve_page(request, pages.clone())
        }));

    // Before the address is announced, so a signal sent right after it is acted on.
    let stop_signals = StopSignals::install();
    let listener = TcpListener::bind(args.listen).await?;
    let address = listener.local_addr()?;
    tracing::info!(
        page = %format!("http://{address}/"),
        hub = %format!("http://{address}/chatHub"),
        signalr_js = source,
        "hub server listening"
    );
    server.signals(stop_signals).serve(listener, app).await;
    tracing::info!("hub server stopped");
    Ok(())
}

/// The routing layer of one server of a fleet sharing the Redis backplane at `url`.
async fn fleet_manager(
    url: &str,
) -> Result<Arc<ScaleOutLifetimeManager>, Box<dyn std::error::Error>> {
    let backplane = RedisBackplane::start(RedisOptions::new(url))
        .map_err(|error| format!("--redis {url}: {error}"))?;
    let manager =
        ScaleOutLifetimeManager::start(Arc::new(backplane), ScaleOutOptions::default()).await?;
    tracing::info!(
        redis = url,
        server = manager.server_id(),
        "hub scale-out through Redis"
    );
    Ok(manager)
}

/// The fleet's token secret, without a trailing newline.
async fn read_secret(path: &PathBuf) -> Result<Vec<u8>, Box<dyn std::error::Error>> {
    let shown = path.display();
    let size = tokio::fs::metadata(path)
        .await
        .map_err(|error| format!("--token-secret-file {shown}: {error}"))?
        .len();
    if size > MAX_SECRET_BYTES {
        return Err(format!(
            "--token-secret-file {shown}: {size} bytes is over the limit of {MAX_SECRET_BYTES}"
        )
        .into());
    }
    let mut secret = tokio::fs::read(path)
        .await
        .map_err(|error| format!("--token-secret-file {shown}: {error}"))?;
    while secret
        .last()
        .is_some_and(|byte| matches!(byte, b'\n' | b'\r'))
    {
        secret.pop();
    }
    if secret.len() < MIN_SECRET_BYTES {
        return Err(format!(
            "--token-secret-file {shown}: the secret has {} bytes, at least {MIN_SECRET_BYTES} \
             are needed",
            secret.len()
        )
        .into());
    }
    Ok(secret)
}

async fn read_script(path: &PathBuf) -> Result<Bytes, Box<dyn std::error::Error>> {
    let size = tokio::fs::metadata(path)
        .await
        .map_err(|error| format!("--signalr-js {}: {error}", path.display()))?
        .len();
    if size > MAX_SCRIPT_BYTES {
        return Err(format!(
            "--signalr-js {}: {size} bytes is over the limit of {MAX_SCRIPT_BYTES}",
            path.display()
        )
        .into());
    }
    let bytes = tokio::fs::read(path)
        .await
        .map_err(|error| format!("--signalr-js {}: {error}", path.display()))?;
    Ok(Bytes::from(bytes))
}

/// `/` and `/js/signalr.js`; 404 elsewhere.
async fn serve_page(request: Request<Incoming>, pages: Pages) -> Response<Body> {
    let path = request.uri().path();
    let body = match (path, &pages.script) {
        ("/", _) => Some((pages.page, "text/html; charset=utf-8")),
        (LOCAL_SIGNALR_JS, Some(script)) => {
            Some((script.clone(), "application/javascript; charset=utf-8"))
        }
        _ => None,
    };
    let Some((body, content_type)) = body else {
        return text(
            StatusCode::NOT_FOUND,
            "not found: the chat page is at /, the hub at /chatHub\n",
        );
    };
    if let Some(refusal) = refuse_unless_get(request.method()) {
        return refusal;
    }
    let mut response = Response::new(Body::new(body));
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

/// 405 with `Allow: GET, HEAD` for any other method (RFC 9110 section 15.5.6): the pages and
/// the metrics are read-only.
fn refuse_unless_get(method: &Method) -> Option<Response<Body>> {
    if matches!(*method, Method::GET | Method::HEAD) {
        return None;
    }
    let mut response = text(StatusCode::METHOD_NOT_ALLOWED, "only GET and HEAD\n");
    response
        .headers_mut()
        .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
    Some(response)
}

fn text(status: StatusCode, message: &'static str) -> Response<Body> {
    let mut response = Response::new(Body::new(Bytes::from_static(message.as_bytes())));
    *response.status_mut() = status;
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}
