//! Reloading: on SIGHUP, and when the configuration file's modification time or size changes
//! (checked every `limits.reloadPollInterval`, default 1 s; polling needs no extra
//! dependency and works on every file system). A reload that fails leaves the running
//! configuration in place and logs every error.

use std::future::Future;
use std::path::Path;
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

/// Watches the gateway's configuration file and `hangup` until the task is dropped/aborted.
/// The file is compared with its state when `watch` is called.
pub fn watch(gateway: Gateway, mut hangup: Hangup) -> impl Future<Output = ()> + Send {
    let path = gateway.config_path().map(Path::to_owned);
    let mut last = path.as_deref().and_then(stamp);
    async move {
        let Some(path) = path else {
            return;
        };
        loop {
            // Read the interval each time: a reload may change it.
            let interval = gateway.poll_interval();
            let by_signal = tokio::select! {
                _ = tokio::time::sleep(interval) => false,
                () = hangup.recv() => true,
            };
            let now = stamp(&path);
            if !by_signal && (now == last || now.is_none()) {
                continue;
            }
            last = now;
            let why = if by_signal { "SIGHUP" } else { "file changed" };
            match gateway.reload().await {
                Ok(()) => {
                    tracing::info!(%why, generation = gateway.generation(), "reloaded {}", path.display())
                }
                Err(e) => {
                    tracing::error!(%why, "reload failed, keeping the running configuration: {e}")
                }
            }
        }
    }
}
