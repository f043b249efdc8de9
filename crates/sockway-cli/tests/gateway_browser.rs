//! Chromium over HTTP/2 through the gateway to an HTTP/1.1 backend (issue #7, item 10),
//! and over HTTP/1.1, where the gateway's io_uring relay protects the TLS 1.3 session's
//! records itself after rustls' handshake (relay change 17): BoringSSL as the peer.
//!
//! `sockway gateway` runs an HTTPS listener for one host name (certificate chosen by SNI,
//! ALPN `h2`) in front of one `sockway echo` served over plain HTTP/1.1. Headless Chromium
//! (`tests/peers/browser_echo.js`, with the host name mapped to 127.0.0.1) loads the echo
//! page through the gateway over HTTP/2, so its WebSocket goes over the same connection as
//! an extended CONNECT (RFC 8441); the gateway turns it into an HTTP/1.1 upgrade. The test
//! checks each side: the gateway's access log records the page and the socket as HTTP/2
//! with close 1000 from both ends, the backend logs an HTTP/1.1 WebSocket from the page's
//! origin, and the page (which asks the backend) reports HTTP/1.1.
//!
//! Needs the peers, like `server_browser.rs`: without `SOCKWAY_PEERS_NODE_DIR` it says so
//! and passes.

mod echo_support;

use std::path::PathBuf;

use echo_support::{
    lines_until, peers_dir, run_browser_page, screenshot_path, spawn_logged_at, start_echo,
    wait_gateway_ready, EchoProcess,
};
use tokio::process::Child;
use tokio::sync::mpsc::UnboundedReceiver;

/// The site's name: Chromium resolves it to 127.0.0.1 and sends it as SNI.
const HOST: &str = "gateway.sockway.test";

/// A temporary directory, removed when dropped.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A port that was free a moment ago (the gateway's listener needs a fixed number).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// The gateway's configuration: an HTTPS listener for [`HOST`] on `port` (certificate and
/// key in `dir`), everything routed to the echo on `backend`, probed on `/`.
fn gateway_config(dir: &std::path::Path, port: u16, backend: u16) -> String {
    let cert = dir.join("cert.pem");
    let key = dir.join("key.pem");
    format!(
        r#"{{
  "httpListeners": [{{"name": "site", "protocol": "Https", "port": {port},
    "bindAddress": "127.0.0.1", "hostNames": ["{HOST}"],
    "certificateFile": "{cert}", "keyFile": "{key}"}}],
  "backendAddressPools": [{{"name": "echo",
    "backendAddresses": [{{"ipAddress": "127.0.0.1", "port": {backend}}}]}}],
  "backendHttpSettingsCollection": [{{"name": "plain", "port": {backend},
    "protocol": "Http", "requestTimeout": 30, "probe": "page"}}],
  "probes": [{{"name": "page", "path": "/", "interval": 0.2, "timeout": 2,
    "unhealthyThreshold": 2}}],
  "requestRoutingRules": [{{"name": "all", "ruleType": "Basic", "httpListener": "site",
    "backendAddressPool": "echo", "backendHttpSettings": "plain"}}],
  "limits": {{"closeGrace": 1, "shutdownTimeout": 1}}
}}"#,
        cert = cert.display(),
        key = key.display(),
    )
}

/// The gateway serving [`HOST`] over HTTPS in front of an echo that lets only the page's
/// origin in, and what the test needs of them.
struct Site {
    _dir: TempDir,
    origin: String,
    backend: EchoProcess,
    _gateway: Child,
    log: UnboundedReceiver<String>,
}

/// Starts the site in a directory named after `name`, the gateway logging at `filter`.
async fn site(name: &str, filter: &str) -> Site {
    let dir = TempDir(std::env::temp_dir().join(format!(
        "sockway-gateway-browser-{name}-{}",
        std::process::id()
    )));
    std::fs::create_dir_all(&dir.0).expect("temp dir");
    let certified = rcgen::generate_simple_self_signed(vec![HOST.to_owned()]).expect("cert");
    std::fs::write(dir.0.join("cert.pem"), certified.cert.pem()).expect("write cert");
    std::fs::write(dir.0.join("key.pem"), certified.signing_key.serialize_pem()).expect("key");

    let port = free_port();
    let origin = format!("https://{HOST}:{port}");
    // The backend only lets the page's origin in: the gateway must pass `Origin` on.
    let backend = start_echo(&["--allowed-origin", &origin]).await;
    let config = dir.0.join("gateway.json");
    std::fs::write(&config, gateway_config(&dir.0, port, backend.addr.port())).expect("config");
    let config = config.to_str().expect("UTF-8 path");
    let (gateway, mut log) = spawn_logged_at(&["gateway", "--config", config], filter);
    wait_gateway_ready(&mut log, port, 1).await;
    Site {
        _dir: dir,
        origin,
        backend,
        _gateway: gateway,
        log,
    }
}

#[tokio::test]
async fn chromium_over_http2_through_the_gateway_reaches_an_http1_backend() {
    let Some(peers) = peers_dir() else {
        return;
    };
    // Bound whole: the gateway and the directory live as long as the test.
    let mut site = site("h2", "info").await;
    let (origin, backend, log) = (site.origin.clone(), &mut site.backend, &mut site.log);

    // The page reports the HTTP version the backend saw the socket arrive over.
    let page = format!("{origin}/");
    let screenshot = screenshot_path("gateway-h2.png");
    run_browser_page(
        &peers,
        &page,
        &screenshot,
        &["--map-host", HOST],
        "HTTP/1.1",
    )
    .await;

    // The gateway: the page and the socket came over HTTP/2, the socket as an extended
    // CONNECT answered 200; the session ended with 1000 from both sides, not by the gateway.
    let lines = lines_until(log, "websocket session").await;
    let access: Vec<&String> = lines
        .iter()
        .filter(|l| l.contains("sockway_gateway::access"))
        .collect();
    let page_line = access
        .iter()
        .find(|l| l.contains("method=GET target_uri=/ "))
        .unwrap_or_else(|| panic!("no access line for the page in {access:#?}"));
    assert!(page_line.contains("http=HTTP/2"), "{page_line}");
    assert!(page_line.contains("status=200"), "{page_line}");
    let connect = access
        .iter()
        .find(|l| l.contains("method=CONNECT target_uri=/ws"))
        .unwrap_or_else(|| panic!("no extended CONNECT in {access:#?}"));
    assert!(connect.contains("http=HTTP/2"), "{connect}");
    assert!(connect.contains("status=200"), "{connect}");
    let session = lines.last().expect("the session line");
    let backend_addr = format!("backend={}", backend.addr);
    for needle in [
        "http=HTTP/2",
        "target_uri=/ws",
        "listener=site",
        backend_addr.as_str(),
        "client_close=1000",
        "backend_close=1000",
        r#"ended_by_gateway="-""#,
    ] {
        assert!(session.contains(needle), "{needle} in {session}");
    }

    backend_saw_the_page_close(backend, &origin).await;
}

/// The backend had an HTTP/1.1 upgrade from the page's origin, closed with 1000.
async fn backend_saw_the_page_close(backend: &mut EchoProcess, origin: &str) {
    let opened = backend.wait_for_log("WebSocket opened").await;
    assert!(opened.contains("http=HTTP/1.1"), "{opened}");
    assert!(
        opened.contains(&format!(r#"origin="{origin}""#)),
        "{opened}"
    );
    let closed = backend.wait_for_log("WebSocket closed").await;
    assert!(closed.contains("code=1000"), "{closed}");
}

#[tokio::test]
async fn chromium_over_http1_tls_through_the_gateway_is_relayed_as_records() {
    let Some(peers) = peers_dir() else {
        return;
    };
    let filter = "info,sockway_gateway::proxy::relay=debug";
    let mut site = site("h1", filter).await;
    let (origin, backend, log) = (site.origin.clone(), &mut site.backend, &mut site.log);
    let page = format!("{origin}/");
    let screenshot = screenshot_path("gateway-h1-tls.png");
    let args = ["--map-host", HOST, "--http1"];
    run_browser_page(&peers, &page, &screenshot, &args, "HTTP/1.1").await;

    // The socket's session went on as records on the ring, and ended with 1000 both ways.
    let lines = lines_until(log, "websocket session").await;
    assert!(
        lines
            .iter()
            .any(|l| l.contains("a TLS 1.3 session goes on as records")),
        "the relay took the session over: {lines:#?}"
    );
    let session = lines.last().expect("the session line");
    for needle in [
        "http=HTTP/1.1",
        "target_uri=/ws",
        "client_close=1000",
        "backend_close=1000",
        r#"ended_by_gateway="-""#,
    ] {
        assert!(session.contains(needle), "{needle} in {session}");
    }
    backend_saw_the_page_close(backend, &origin).await;
}
