//! Runs the `sockway` binary under test (`sockway echo` on a free loopback port, or
//! `sockway gateway`), collecting its log lines, and drives the echo page in headless
//! Chromium (`tests/peers/browser_echo.js`).
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::mpsc::UnboundedReceiver;

/// The longest any single step may take before it counts as a hang.
pub const STEP: Duration = Duration::from_secs(10);

/// The longest a whole browser run may take.
pub const BROWSER_RUN: Duration = Duration::from_secs(120);

/// A running `sockway echo`; killed when dropped.
pub struct EchoProcess {
    pub child: Child,
    pub addr: SocketAddr,
    /// The server's log lines, collected in the background.
    pub log: UnboundedReceiver<String>,
}

/// Starts `sockway ARGS...` with `RUST_LOG=info`; its stderr lines (colour codes removed)
/// arrive on the returned channel. The process is killed when the child is dropped.
pub fn spawn_logged(args: &[&str]) -> (Child, UnboundedReceiver<String>) {
    spawn_logged_at(args, "info")
}

/// [`spawn_logged`] with `RUST_LOG` set to `filter`.
pub fn spawn_logged_at(args: &[&str], filter: &str) -> (Child, UnboundedReceiver<String>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_sockway"))
        .args(args)
        .env("RUST_LOG", filter)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn sockway");
    let stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut lines = BufReader::new(stderr).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            let _ = tx.send(strip_ansi(&line));
        }
    });
    (child, rx)
}

/// Waits (at most [`STEP`]) for a line of `log` containing `needle`.
pub async fn wait_for_line(log: &mut UnboundedReceiver<String>, needle: &str) -> String {
    let mut lines = lines_until(log, needle).await;
    lines.pop().expect("the line found")
}

/// Waits (at most [`STEP`] for each line) until a gateway's log has said that it listens on
/// `port` and that `backends` backends are healthy, in whichever order: its first probes
/// run while its listeners are being bound, so a backend can be healthy before it listens.
pub async fn wait_gateway_ready(log: &mut UnboundedReceiver<String>, port: u16, backends: usize) {
    let listening = format!("listening address=127.0.0.1:{port}");
    let (mut listens, mut healthy) = (false, 0);
    while !listens || healthy < backends {
        let line = tokio::time::timeout(STEP, log.recv())
            .await
            .unwrap_or_else(|_| {
                panic!("gateway not ready: listening {listens}, {healthy} of {backends} healthy")
            })
            .expect("the gateway's log ended before it was ready");
        listens |= line.contains(&listening);
        healthy += usize::from(line.contains("backend is healthy"));
    }
}

/// Reads `log` until (at most [`STEP`]) a line containing `needle`; returns every line read,
/// that one last.
pub async fn lines_until(log: &mut UnboundedReceiver<String>, needle: &str) -> Vec<String> {
    let mut lines = Vec::new();
    let found = tokio::time::timeout(STEP, async {
        loop {
            let line = log
                .recv()
                .await
                .unwrap_or_else(|| panic!("the log ended before a line with {needle:?}"));
            let last = line.contains(needle);
            lines.push(line);
            if last {
                break;
            }
        }
    })
    .await;
    assert!(found.is_ok(), "no log line with {needle:?} in {lines:#?}");
    lines
}

/// Starts `sockway echo --listen 127.0.0.1:0 ARGS...` and waits for its "listening" line
/// (`page=http://...` or, with TLS, `page=https://...`; with `--event-loop`,
/// `websocket=ws://...` or `websocket=wss://...`).
pub async fn start_echo(args: &[&str]) -> EchoProcess {
    let mut all = vec!["echo", "--listen", "127.0.0.1:0"];
    all.extend_from_slice(args);
    let (child, mut rx) = spawn_logged(&all);
    let addr = tokio::time::timeout(STEP, async {
        loop {
            let line = rx
                .recv()
                .await
                .expect("sockway echo exited before listening");
            // The async server announces its page; the event loop, which has none, its
            // WebSocket URL.
            let page = line
                .split("page=https://")
                .nth(1)
                .or_else(|| line.split("page=http://").nth(1))
                .or_else(|| line.split("websocket=ws://").nth(1))
                .or_else(|| line.split("websocket=wss://").nth(1));
            if let Some(rest) = page {
                let addr = rest.split('/').next().unwrap_or_default();
                break addr.parse::<SocketAddr>().expect("listening address");
            }
        }
    })
    .await
    .expect("sockway echo did not start");
    EchoProcess {
        child,
        addr,
        log: rx,
    }
}

impl EchoProcess {
    /// Waits for a log line containing `needle`.
    pub async fn wait_for_log(&mut self, needle: &str) -> String {
        wait_for_line(&mut self.log, needle).await
    }
}

/// `tests/peers`, from `SOCKWAY_PEERS_NODE_DIR`; `None` (after saying the test is skipped)
/// when the variable is not set.
pub fn peers_dir() -> Option<PathBuf> {
    match std::env::var_os("SOCKWAY_PEERS_NODE_DIR") {
        Some(dir) => Some(PathBuf::from(dir)),
        None => {
            println!("skipped: SOCKWAY_PEERS_NODE_DIR is not set (run scripts/test-all.sh, or set it to tests/peers after scripts/install-peers.sh)");
            None
        }
    }
}

/// Where a browser screenshot named `name` goes (`target/browser/`).
pub fn screenshot_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../target/browser")
        .join(name)
}

/// Runs `browser_echo.js PAGE SCREENSHOT NODE_ARGS...` from `peers` (at most
/// [`BROWSER_RUN`]) and checks what every run must show: the driver succeeded, the socket
/// arrived over `page_http` (as the page reports it), the message came back, the socket
/// closed with 1000, the screenshot exists. Returns the driver's output.
pub async fn run_browser_page(
    peers: &Path,
    page: &str,
    screenshot: &Path,
    node_args: &[&str],
    page_http: &str,
) -> String {
    let run = Command::new("node")
        .arg(peers.join("browser_echo.js"))
        .arg(page)
        .arg(screenshot)
        .args(node_args)
        .current_dir(peers)
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(BROWSER_RUN, run)
        .await
        .expect("the browser run timed out")
        .expect("run node");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "browser_echo.js failed\n--- stdout\n{stdout}\n--- stderr\n{stderr}"
    );
    assert!(
        stdout.contains(&format!(
            r#"{{"kind":"http-version","data":"{page_http}"}}"#
        )),
        "{stdout}"
    );
    assert!(
        stdout.contains(r#"{"kind":"receive","data":"Hello from Chromium"#),
        "{stdout}"
    );
    assert!(
        stdout.contains(r#"{"kind":"close","data":"code 1000"#),
        "{stdout}"
    );
    assert!(
        screenshot.exists(),
        "no screenshot at {}",
        screenshot.display()
    );
    stdout.into_owned()
}

/// Removes terminal colour codes (also used by the hub tests' `hub_support`).
pub fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}
