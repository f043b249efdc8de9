//! Reloading: on SIGHUP, and when the configuration file's modification time or size changes
//! (checked every `limits.reloadPollInterval`, default 1 s; polling needs no extra
//! dependency and works on every file system). A reload that fails leaves the running
//! configuration in place and logs every error.

use std::path::Path;
use std::time::SystemTime;

use crate::gateway::Gateway;

fn stamp(path: &Path) -> Option<(SystemTime, u64)> {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.modified().ok()?, meta.len()))
}

/// Watches the gateway's configuration file and SIGHUP until the task is dropped/aborted.
pub async fn watch(gateway: Gateway) {
    let Some(path) = gateway.config_path().map(Path::to_owned) else {
        return;
    };
    #[cfg(unix)]
    let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
    let mut last = stamp(&path);
    loop {
        // Read the interval each time: a reload may change it.
        let interval = gateway.poll_interval();
        #[cfg(unix)]
        let signalled = async {
            match hup.as_mut() {
                Some(s) => {
                    s.recv().await;
                }
                None => std::future::pending().await,
            }
        };
        #[cfg(not(unix))]
        let signalled = std::future::pending::<()>();
        let by_signal = tokio::select! {
            _ = tokio::time::sleep(interval) => false,
            _ = signalled => true,
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
