//! Reloading: on SIGHUP, and when the modification time or size of the configuration file or
//! of a certificate, key or trusted-root file it names changes (checked every
//! `limits.reloadPollInterval`, default 1 s; polling needs no extra dependency and works on
//! every file system). A reload that fails leaves the running
//! configuration in place and logs every error.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use crate::gateway::Gateway;

fn stamp(path: &Path) -> Option<(SystemTime, u64)> {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.modified().ok()?, meta.len()))
}

/// SIGHUP, listened for from the moment it is installed: its default action ends the
/// process, so it is installed before the gateway opens its listeners, and a SIGHUP sent
/// at any point after that asks for a reload.
#[derive(Debug)]
pub struct Hangup {
    #[cfg(unix)]
    signal: Option<tokio::signal::unix::Signal>,
}

impl Hangup {
    /// Installs the handler now (inside a Tokio runtime with its signal driver). If it
    /// cannot be installed, reloads still follow the file.
    pub fn install() -> Self {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            let signal = signal(SignalKind::hangup())
                .map_err(|error| tracing::warn!(%error, "cannot listen for SIGHUP"))
                .ok();
            Self { signal }
        }
        #[cfg(not(unix))]
        {
            Self {}
        }
    }

    /// The next SIGHUP (or one received since the last call); never without a handler.
    async fn recv(&mut self) {
        #[cfg(unix)]
        if let Some(signal) = self.signal.as_mut() {
            if signal.recv().await.is_some() {
                return;
            }
        }
        std::future::pending().await
    }
}

/// The stamps of `files`, in order (`None` for one that cannot be read).
fn stamps(files: &[PathBuf]) -> Vec<Option<(SystemTime, u64)>> {
    files.iter().map(|f| stamp(f)).collect()
}

/// What the TLS files looked like: their paths (the configuration names them) and stamps.
fn tls_state(gateway: &Gateway) -> (Vec<PathBuf>, Vec<Option<(SystemTime, u64)>>) {
    let files = gateway.tls_files();
    let now = stamps(&files);
    (files, now)
}

/// Watches the gateway's configuration file, its certificate, key and trusted-root files
/// ([`Gateway::tls_files`]) and `hangup` until the task is dropped/aborted. The files are
/// compared with their state when `watch` is called. A changed configuration file (or
/// SIGHUP) reloads it; changed TLS files alone apply the running configuration again
/// ([`Gateway::reload_tls`]), so renewed certificates are served by new connections while open
/// ones keep theirs. This works for a gateway started without a file too.
pub fn watch(gateway: Gateway, mut hangup: Hangup) -> impl Future<Output = ()> + Send {
    let path = gateway.config_path().map(Path::to_owned);
    let mut last = path.as_deref().and_then(stamp);
    let mut last_tls = tls_state(&gateway);
    async move {
        loop {
            // Read the interval each time: a reload may change it.
            let interval = gateway.poll_interval();
            let by_signal = tokio::select! {
                _ = tokio::time::sleep(interval) => false,
                () = hangup.recv() => true,
            };
            let now = path.as_deref().and_then(stamp);
            let file_changed = path.is_some() && now.is_some() && now != last;
            let tls_changed = stamps(&last_tls.0) != last_tls.1;
            if !by_signal && !file_changed && !tls_changed {
                continue;
            }
            last = now;
            let (why, result) = match &path {
                Some(_) if by_signal => ("SIGHUP", gateway.reload().await),
                Some(_) if file_changed => ("file changed", gateway.reload().await),
                _ if tls_changed => ("certificate files changed", gateway.reload_tls().await),
                _ => continue,
            };
            // After the reload: the configuration may now name other files.
            last_tls = tls_state(&gateway);
            let shown = path.as_deref().map(|p| p.display().to_string());
            let shown = shown.as_deref().unwrap_or("the configuration");
            match result {
                Ok(()) => {
                    tracing::info!(%why, generation = gateway.generation(), "reloaded {shown}")
                }
                Err(e) => {
                    tracing::error!(%why, "reload failed, keeping the running configuration: {e}")
                }
            }
        }
    }
}
