//! The echo page in a real browser: headless Chromium, driven by playwright-core
//! (`tests/peers/browser_echo.js`), loads `/`, connects, sees the HTTP version the socket
//! arrived over, sends, sees the echo, closes and sees code 1000 in the Communication Log.
//! Over plain HTTP the socket is an HTTP/1.1 upgrade; over TLS (a self-signed certificate,
//! ignored by this Chromium run) ALPN gives HTTP/2 and Chromium opens the socket as an
//! extended CONNECT (RFC 8441) on the page's connection. The screenshots land in
//! `target/browser/`.
//!
//! Needs the peers installed (`scripts/install-peers.sh`: Chromium and playwright-core) and
//! `SOCKWAY_PEERS_NODE_DIR` pointing at `tests/peers` (`scripts/test-all.sh` sets it); without
//! that variable the tests say so and pass.

mod echo_support;

use echo_support::{peers_dir, run_browser_page, screenshot_path, start_echo};

/// Runs the page in Chromium against `sockway echo ARGS` and checks what the page and the
/// server saw: the socket's HTTP version (`page_http` on the page, `log_http` in the log).
async fn browser_run(args: &[&str], screenshot: &str, page_http: &str, log_http: &str) {
    browser_run_with(args, &[], screenshot, page_http, log_http).await;
}

/// Like [`browser_run`], passing `node_args` to the driver; returns the driver's output and
/// the server's "WebSocket closed" log line (empty when the test was skipped).
async fn browser_run_with(
    args: &[&str],
    node_args: &[&str],
    screenshot: &str,
    page_http: &str,
    log_http: &str,
) -> (String, String) {
    let Some(peers) = peers_dir() else {
        return (String::new(), String::new());
    };
    let mut server = start_echo(args).await;
    let scheme = if args.contains(&"--tls-self-signed") {
        "https"
    } else {
        "http"
    };
    let page = format!("{scheme}://{}/", server.addr);
    let screenshot = screenshot_path(screenshot);
    let stdout = run_browser_page(&peers, &page, &screenshot, node_args, page_http).await;

    // The server logged the socket's life: one line at open, one at close, with the code,
    // both with the HTTP version the socket arrived over.
    let opened = server.wait_for_log("WebSocket opened").await;
    assert!(opened.contains(&format!("http={log_http}")), "{opened}");
    let closed = server.wait_for_log("WebSocket closed").await;
    assert!(closed.contains("code=1000"), "{closed}");
    assert!(closed.contains("duration="), "{closed}");
    assert!(closed.contains(&format!("http={log_http}")), "{closed}");
    (stdout, closed)
}

/// The number after `name=` in a log line.
fn logged_number(line: &str, name: &str) -> u64 {
    line.split(&format!("{name}="))
        .nth(1)
        .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no {name}= in {line}"))
}

#[tokio::test]
async fn chromium_negotiates_compression_and_traffic_is_compressed_both_ways() {
    let (stdout, closed) = browser_run_with(
        &["--compression"],
        &["--compressible"],
        "echo-deflate.png",
        "HTTP/1.1",
        "HTTP/1.1",
    )
    .await;
    if stdout.is_empty() {
        return;
    }
    assert!(
        stdout.contains("extensions: permessage-deflate"),
        "the page reports the negotiated Sec-WebSocket-Extensions:\n{stdout}"
    );
    let payload = logged_number(&closed, "payload");
    let wire_in = logged_number(&closed, "wire_in");
    let wire_out = logged_number(&closed, "wire_out");
    assert!(payload > 15_000, "{closed}");
    assert!(
        wire_in < payload / 2,
        "Chromium compressed what it sent: {closed}"
    );
    assert!(
        wire_out < payload / 2,
        "the server compressed what it sent: {closed}"
    );
}

/// Chromium, on the async server's page, connects to the event-loop echo instead
/// (`--ws-url`): it offers permessage-deflate as every browser does, the event loop agrees,
/// and a large compressible text comes back whole. With `tls`, the page is `https://` and the
/// socket `wss://` (both with throwaway certificates this Chromium run ignores).
async fn chromium_compresses_with_the_event_loop(tls: bool, screenshot: &str) {
    let Some(peers) = peers_dir() else {
        return;
    };
    let tls_flag: &[&str] = if tls { &["--tls-self-signed"] } else { &[] };
    let page_server = start_echo(tls_flag).await;
    let mut loop_args = vec!["--event-loop", "--compression"];
    loop_args.extend_from_slice(tls_flag);
    let mut event_loop = start_echo(&loop_args).await;
    let (page, ws_url) = if tls {
        let ws_url = format!("wss://localhost:{}/", event_loop.addr.port());
        (format!("https://{}/", page_server.addr), ws_url)
    } else {
        let ws_url = format!("ws://{}/", event_loop.addr);
        (format!("http://{}/", page_server.addr), ws_url)
    };
    let screenshot = screenshot_path(screenshot);
    let node_args = ["--compressible", "--ws-url", ws_url.as_str()];
    let stdout = run_browser_page(&peers, &page, &screenshot, &node_args, "other server").await;
    assert!(
        stdout.contains("extensions: permessage-deflate"),
        "the page reports the negotiated Sec-WebSocket-Extensions:\n{stdout}"
    );
    assert!(
        stdout.contains(&format!("connected to {ws_url}")),
        "{stdout}"
    );
    assert!(
        event_loop.child.try_wait().unwrap().is_none(),
        "the event loop is still up"
    );
}

#[tokio::test]
async fn chromium_compresses_with_the_event_loop_server() {
    chromium_compresses_with_the_event_loop(false, "echo-event-loop-deflate.png").await;
}

#[tokio::test]
async fn chromium_connects_over_wss_to_the_event_loop_server() {
    chromium_compresses_with_the_event_loop(true, "echo-event-loop-wss.png").await;
}

#[tokio::test]
async fn the_echo_page_works_in_headless_chromium() {
    browser_run(&[], "echo.png", "HTTP/1.1", "HTTP/1.1").await;
}

#[tokio::test]
async fn chromium_opens_wss_over_http2_with_extended_connect() {
    browser_run(&["--tls-self-signed"], "echo-h2.png", "HTTP/2", "HTTP/2.0").await;
}
