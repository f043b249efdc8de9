//! Runs the `sockway echo` binary under test on a free loopback port.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// The longest any single step may take before it counts as a hang.
pub const STEP: Duration = Duration::from_secs(10);

/// A running `sockway echo`; killed when dropped.
pub struct EchoProcess {
    pub child: Child,
    pub addr: SocketAddr,
    /// The server's log lines, collected in the background.
    pub log: tokio::sync::mpsc::UnboundedReceiver<String>,
}

/// Starts `sockway echo --listen 127.0.0.1:0 ARGS...` and waits for its "listening" line
/// (`page=http://...` or, with TLS, `page=https://...`).
pub async fn start_echo(args: &[&str]) -> EchoProcess {
    let mut child = Command::new(env!("CARGO_BIN_EXE_sockway"))
        .args(["echo", "--listen", "127.0.0.1:0"])
        .args(args)
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn sockway echo");
    let stderr = child.stderr.take().expect("stderr");
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut lines = BufReader::new(stderr).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            let _ = tx.send(strip_ansi(&line));
        }
    });
    let addr = tokio::time::timeout(STEP, async {
        loop {
            let line = rx
                .recv()
                .await
                .expect("sockway echo exited before listening");
            let page = line
                .split("page=https://")
                .nth(1)
                .or_else(|| line.split("page=http://").nth(1));
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
        tokio::time::timeout(STEP, async {
            loop {
                let line = self.log.recv().await.expect("log ended");
                if line.contains(needle) {
                    break line;
                }
            }
        })
        .await
        .unwrap_or_else(|_| panic!("no log line with {needle:?}"))
    }
}

/// Removes terminal colour codes.
fn strip_ansi(line: &str) -> String {
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
