//! Child processes for the suites (the `sockway` binary, third-party peers): spawned with
//! `kill_on_drop`, stdin piped so peers that watch it exit with the test, and every wait
//! bounded.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::net::TcpStream;
use tokio::process::{Child, Command};
use tokio::time::Instant;

/// A child process that is killed when this is dropped. Its stdin stays open (piped) as long
/// as the guard lives.
#[derive(Debug)]
pub struct ChildGuard {
    child: Child,
    what: String,
}

impl ChildGuard {
    /// Spawns `command` with stdin piped, stdout and stderr appended to `log`, and
    /// `kill_on_drop`.
    pub fn spawn(mut command: Command, what: &str, log: &Path) -> Result<Self, String> {
        let out = std::fs::File::create(log).map_err(|e| format!("{}: {e}", log.display()))?;
        let err = out.try_clone().map_err(|e| e.to_string())?;
        command
            .stdin(Stdio::piped())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err))
            .kill_on_drop(true);
        let child = command
            .spawn()
            .map_err(|e| format!("cannot start {what}: {e}"))?;
        Ok(Self {
            child,
            what: what.to_owned(),
        })
    }

    /// Fails if the process has exited.
    pub fn check_running(&mut self) -> Result<(), String> {
        match self.child.try_wait() {
            Ok(None) => Ok(()),
            Ok(Some(status)) => Err(format!("{} exited early: {status}", self.what)),
            Err(e) => Err(format!("{}: {e}", self.what)),
        }
    }
}

/// An unused loopback port (it could be taken between this call and its use; fine on a test
/// machine, and the caller's wait for the port fails clearly if so).
pub fn free_port() -> std::io::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

/// Waits until `addr` accepts TCP connections, failing if `child` exits or `within` passes.
pub async fn wait_for_port(
    addr: SocketAddr,
    child: &mut ChildGuard,
    within: Duration,
) -> Result<(), String> {
    let deadline = Instant::now() + within;
    loop {
        if TcpStream::connect(addr).await.is_ok() {
            return Ok(());
        }
        child.check_running()?;
        if Instant::now() >= deadline {
            return Err(format!(
                "{} did not listen on {addr} within {within:?}",
                child.what
            ));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until `path` holds a port number (written by a peer server), failing if `child`
/// exits or `within` passes.
pub async fn wait_for_port_file(
    path: &Path,
    child: &mut ChildGuard,
    within: Duration,
) -> Result<u16, String> {
    let deadline = Instant::now() + within;
    loop {
        if let Ok(text) = std::fs::read_to_string(path) {
            if let Ok(port) = text.trim().parse() {
                return Ok(port);
            }
        }
        child.check_running()?;
        if Instant::now() >= deadline {
            return Err(format!(
                "{} wrote no port to {} within {within:?}",
                child.what,
                path.display()
            ));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Starts `bin echo` on a free loopback port with the given message limit, logging to `log`,
/// and waits until it listens.
pub async fn start_sockway_echo(
    bin: &Path,
    max_message_size: usize,
    log: &Path,
) -> Result<(ChildGuard, SocketAddr), String> {
    let port = free_port().map_err(|e| e.to_string())?;
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut command = Command::new(bin);
    command
        .arg("echo")
        .arg("--listen")
        .arg(addr.to_string())
        .arg("--max-message-size")
        .arg(max_message_size.to_string())
        .env("RUST_LOG", "warn");
    let mut child = ChildGuard::spawn(command, "sockway echo", log)?;
    wait_for_port(addr, &mut child, Duration::from_secs(10)).await?;
    Ok((child, addr))
}

/// Runs `command` to completion with stdin closed, within `within` (killed otherwise), and
/// returns its exit success and combined stdout and stderr.
pub async fn run_bounded(mut command: Command, within: Duration) -> Result<(bool, String), String> {
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let child = command.spawn().map_err(|e| format!("cannot start: {e}"))?;
    match tokio::time::timeout(within, child.wait_with_output()).await {
        Err(_) => Err(format!("did not finish within {within:?} (killed)")),
        Ok(Err(e)) => Err(e.to_string()),
        Ok(Ok(output)) => {
            let mut text = String::from_utf8_lossy(&output.stdout).into_owned();
            text.push_str(&String::from_utf8_lossy(&output.stderr));
            Ok((output.status.success(), text))
        }
    }
}

/// The workspace root: the nearest ancestor of this package's directory whose `Cargo.toml`
/// declares `[workspace]`.
pub fn workspace_root() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest
        .ancestors()
        .find(|dir| {
            std::fs::read_to_string(dir.join("Cargo.toml"))
                .is_ok_and(|toml| toml.lines().any(|l| l.trim() == "[workspace]"))
        })
        .unwrap_or(&manifest)
        .to_path_buf()
}

/// Cargo's target directory: `CARGO_TARGET_DIR` if set, else `<workspace root>/target`.
pub fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => {
            let dir = PathBuf::from(dir);
            if dir.is_absolute() {
                dir
            } else {
                workspace_root().join(dir)
            }
        }
        _ => workspace_root().join("target"),
    }
}
