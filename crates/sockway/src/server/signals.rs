//! [`StopSignals`]: Ctrl-C and SIGTERM, the two ways a process is asked to stop, registered
//! the moment they are created.
//!
//! `tokio::signal::ctrl_c()` only installs its handler when its future is first polled. A
//! server that announces itself (or accepts its first connection) before that poll can be
//! stopped in between by the default action of the signal: killed on the spot, so open
//! WebSockets get no close frame. Creating the listeners up front closes that window: a
//! signal that arrives before anyone waits is kept and seen by the next [`StopSignals::recv`].

/// Ctrl-C (SIGINT) and, on Unix, SIGTERM, installed when created.
///
/// ```no_run
/// # async fn run() {
/// let mut stop = sockway::server::StopSignals::install();
/// // ... start serving, announce the address ...
/// stop.recv().await; // first Ctrl-C or SIGTERM: shut down gracefully
/// # }
/// ```
#[derive(Debug)]
pub struct StopSignals {
    #[cfg(unix)]
    interrupt: Option<tokio::signal::unix::Signal>,
    #[cfg(unix)]
    terminate: Option<tokio::signal::unix::Signal>,
}

impl StopSignals {
    /// Installs the handlers now. Must be called inside a Tokio runtime with its signal
    /// driver enabled (`#[tokio::main]` has it). A signal whose handler cannot be installed
    /// is logged and left out; with none, [`StopSignals::recv`] never returns.
    pub fn install() -> Self {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            let listen = |kind: SignalKind, name: &str| match signal(kind) {
                Ok(listener) => Some(listener),
                Err(error) => {
                    tracing::warn!(%error, signal = name, "cannot listen for the signal");
                    None
                }
            };
            Self {
                interrupt: listen(SignalKind::interrupt(), "SIGINT"),
                terminate: listen(SignalKind::terminate(), "SIGTERM"),
            }
        }
        #[cfg(not(unix))]
        {
            Self {}
        }
    }

    /// Waits for the next Ctrl-C or SIGTERM, including one that arrived since the previous
    /// call (or since [`StopSignals::install`]).
    pub async fn recv(&mut self) {
        #[cfg(unix)]
        {
            let interrupt = next(self.interrupt.as_mut());
            let terminate = next(self.terminate.as_mut());
            tokio::select! {
                () = interrupt => {}
                () = terminate => {}
            }
        }
        #[cfg(not(unix))]
        {
            if tokio::signal::ctrl_c().await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    }
}

/// The next delivery of `signal`; never, if it is not listened for (or its stream ended).
#[cfg(unix)]
async fn next(signal: Option<&mut tokio::signal::unix::Signal>) {
    if let Some(signal) = signal {
        if signal.recv().await.is_some() {
            return;
        }
    }
    std::future::pending().await
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn a_signal_sent_before_waiting_is_not_lost() {
        let mut stop = StopSignals::install();
        // SIGTERM to ourselves before anyone polls: the default action would end the test
        // process, so reaching the next line shows the handler was already in place.
        let pid = std::process::id().to_string();
        let sent = std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill");
        assert!(sent.success());
        tokio::time::timeout(Duration::from_secs(10), stop.recv())
            .await
            .expect("the SIGTERM sent before recv was seen");
    }
}
