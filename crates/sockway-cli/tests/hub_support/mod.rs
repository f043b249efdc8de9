//! Runs `sockway hub` (the sample chat hub: page at `/`, hub at `/chatHub`) on a free
//! loopback port, and the SignalR client peers of `tests/peers` against it: the official
//! JavaScript client under Node (`signalr_client.js`), the Python clients (`signalr_py.py`)
//! and headless Chromium on the chat page (`hub_browser.js`). Each peer prints one JSON line
//! per scenario (`{"scenario": ..., "ok": true|false, ...}`); [`assert_scenarios`] checks that
//! every expected one is there and passed, and on failure shows the peer's output and the
//! server's log.
//!
//! The binary is `SOCKWAY_BIN` when set (`scripts/test-all.sh` points it at the release
//! build), else the one cargo built for these tests.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::mpsc::UnboundedReceiver;

/// How long the server may take to say where it listens (a loaded CI machine).
pub const START: Duration = Duration::from_secs(30);

/// The longest one peer run (all its scenarios) may take before it counts as a hang.
pub const PEER_RUN: Duration = Duration::from_secs(240);

/// How many of the server's last log lines a failure shows.
const LOG_TAIL: usize = 60;

/// A running `sockway hub`; killed when dropped.
pub struct HubProcess {
    child: Child,
    /// Where it listens.
    pub addr: SocketAddr,
    log: UnboundedReceiver<String>,
    history: Vec<String>,
}

impl HubProcess {
    /// The sample hub's URL, as the clients are given it.
    pub fn hub_url(&self) -> String {
        format!("http://{}/chatHub", self.addr)
    }

    /// The chat page.
    pub fn page_url(&self) -> String {
        format!("http://{}/", self.addr)
    }

    /// The server's last log lines (everything logged so far is kept).
    pub fn log_tail(&mut self) -> String {
        while let Ok(line) = self.log.try_recv() {
            self.history.push(line);
        }
        let start = self.history.len().saturating_sub(LOG_TAIL);
        self.history[start..].join("\n")
    }

    /// Whether the server is still running (a crash is a finding of its own).
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id().expect("the server is running")
    }

    /// Waits (at most [`PEER_RUN`]) for the server to exit; returns whether it succeeded and
    /// everything it logged.
    pub async fn wait_exit(&mut self) -> (bool, String) {
        let status = tokio::time::timeout(PEER_RUN, self.child.wait())
            .await
            .unwrap_or_else(|_| panic!("sockway hub still runs after {PEER_RUN:?}"))
            .expect("wait for sockway hub");
        while let Some(line) = self.log.recv().await {
            self.history.push(line);
        }
        (status.success(), self.history.join("\n"))
    }
}

/// The binary under test.
fn sockway_bin() -> PathBuf {
    match std::env::var_os("SOCKWAY_BIN").filter(|bin| !bin.is_empty()) {
        Some(bin) => PathBuf::from(bin),
        None => PathBuf::from(env!("CARGO_BIN_EXE_sockway")),
    }
}

/// The official client's browser bundle in the npm package: the page loads it from the
/// server (`--signalr-js`), as the tests may not reach a CDN.
pub fn signalr_js(peers: &Path) -> PathBuf {
    peers.join("node_modules/@microsoft/signalr/dist/browser/signalr.js")
}

/// Starts `sockway hub --listen 127.0.0.1:0 --signalr-js <npm bundle>` with `RUST_LOG=info`
/// and waits for the log line that names its `http://` address.
pub async fn start_hub(peers: &Path) -> HubProcess {
    start_hub_with(peers, &[]).await
}

/// [`start_hub`] with more flags (`--redis URL`, for one server of a fleet).
pub async fn start_hub_with(peers: &Path, extra: &[String]) -> HubProcess {
    let bundle = signalr_js(peers);
    assert!(
        bundle.exists(),
        "{} is missing: run scripts/install-peers.sh",
        bundle.display()
    );
    let mut child = Command::new(sockway_bin())
        .args(["hub", "--listen", "127.0.0.1:0", "--signalr-js"])
        .arg(&bundle)
        .args(extra)
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn sockway hub");
    let stderr = child.stderr.take().expect("stderr");
    let (tx, mut log) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut lines = BufReader::new(stderr).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            let _ = tx.send(crate::echo_support::strip_ansi(&line));
        }
    });
    let mut history = Vec::new();
    let addr = tokio::time::timeout(START, async {
        loop {
            let Some(line) = log.recv().await else {
                panic!(
                    "sockway hub exited before listening:\n{}",
                    history.join("\n")
                );
            };
            let addr = listening_addr(&line);
            history.push(line);
            if let Some(addr) = addr {
                break addr;
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("sockway hub did not say where it listens within {START:?}"));
    HubProcess {
        child,
        addr,
        log,
        history,
    }
}

/// The `host:port` after the first `http://` in a log line, if it parses.
fn listening_addr(line: &str) -> Option<SocketAddr> {
    let rest = line.split("http://").nth(1)?;
    let end = rest
        .find(|c: char| c == '/' || c.is_whitespace() || c == '"')
        .unwrap_or(rest.len());
    rest[..end].parse().ok()
}

/// What a peer run printed, and its per-scenario result lines.
pub struct PeerRun {
    pub success: bool,
    pub stdout: String,
    pub stderr: String,
    pub results: Vec<serde_json::Value>,
}

/// Runs `program ARGS...` in `cwd` (at most [`PEER_RUN`]) and parses its result lines.
pub async fn run_peer(program: &Path, args: &[String], cwd: &Path) -> PeerRun {
    run_peer_with(program, args, cwd, &[]).await
}

/// [`run_peer`] with extra environment variables.
pub async fn run_peer_with(
    program: &Path,
    args: &[String],
    cwd: &Path,
    env: &[(&str, String)],
) -> PeerRun {
    let run = Command::new(program)
        .args(args)
        .envs(env.iter().map(|(name, value)| (name, value)))
        .current_dir(cwd)
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(PEER_RUN, run)
        .await
        .unwrap_or_else(|_| {
            panic!(
                "{} {args:?} ran longer than {PEER_RUN:?}",
                program.display()
            )
        })
        .unwrap_or_else(|e| panic!("run {}: {e}", program.display()));
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    let results = stdout
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|value| value.get("scenario").is_some())
        .collect();
    PeerRun {
        success: output.status.success(),
        stdout,
        stderr,
        results,
    }
}

/// Runs `node tests/peers/<script> ARGS...`.
pub async fn run_node(peers: &Path, script: &str, args: &[String]) -> PeerRun {
    let mut all = vec![peers.join(script).display().to_string()];
    all.extend_from_slice(args);
    run_peer(Path::new("node"), &all, peers).await
}

/// Asserts that `run` has a passing result line for every scenario in `expected` (and no
/// failing line at all); the panic shows every failure, the peer's stderr and the server's
/// log. Returns the result lines by scenario name.
pub fn assert_scenarios(
    run: &PeerRun,
    expected: &[&str],
    hub: &mut HubProcess,
) -> Vec<(String, serde_json::Value)> {
    let mut problems = Vec::new();
    for name in expected {
        match run.results.iter().find(|r| r["scenario"] == *name) {
            None => problems.push(format!("{name}: no result line")),
            Some(result) if result["ok"] != true => problems.push(format!("{name}: {result}")),
            Some(_) => {}
        }
    }
    for result in &run.results {
        if result["ok"] != true && !expected.iter().any(|name| result["scenario"] == *name) {
            problems.push(format!("unexpected failure: {result}"));
        }
    }
    if !run.success && problems.is_empty() {
        problems.push("the peer exited with a failure status".into());
    }
    if !problems.is_empty() {
        let running = hub.is_running();
        panic!(
            "{} problem(s):\n{}\n--- peer stdout\n{}\n--- peer stderr (end)\n{}\n--- server log \
             (end; still running: {running})\n{}",
            problems.len(),
            problems.join("\n"),
            run.stdout,
            tail(&run.stderr, 80),
            hub.log_tail()
        );
    }
    run.results
        .iter()
        .map(|r| {
            (
                r["scenario"].as_str().unwrap_or_default().to_owned(),
                r.clone(),
            )
        })
        .collect()
}

/// The last `n` lines of `text`.
fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}
