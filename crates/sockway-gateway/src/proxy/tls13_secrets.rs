//! The TLS 1.3 application traffic secrets of the gateway's client sessions, from their
//! handshake until the relay takes the session over or the socket closes.
//!
//! rustls hands over a finished session's keys and sequence numbers
//! (`dangerous_extract_secrets`) but not the secrets they came from, which a key update
//! needs (RFC 8446 section 7.2). It does tell its key log each session's secrets, named by
//! the ClientHello's random, so the listeners' configurations log them here, and the
//! client's socket, which read that random ([`RecordScan`](super::record_scan::RecordScan)),
//! takes its entry or drops it. A secret is used only once it derives exactly the keys
//! rustls extracted ([`TrafficKeys::new`](super::tls13_keys::TrafficKeys::new)): two
//! sessions that claim one random cannot get each other's.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use rustls::KeyLog;

use super::tls13_keys::Secret;

/// Sessions whose secrets are kept at most: beyond that new sessions' secrets are not
/// kept, and those sessions stay on rustls' buffered path when relayed.
const MAX_SESSIONS: usize = 1 << 16;
/// rustls' labels for the client's and the server's first application traffic secrets.
const CLIENT: &str = "CLIENT_TRAFFIC_SECRET_0";
const SERVER: &str = "SERVER_TRAFFIC_SECRET_0";

/// The secrets logged so far, by client random.
#[derive(Debug, Default)]
pub struct SecretLog {
    sessions: Mutex<HashMap<[u8; 32], Pair>>,
}

/// One session's two secrets.
#[derive(Debug, Default)]
pub(super) struct Pair {
    /// The client's secret (what the relay receives is protected with it).
    pub(super) client: Option<Secret>,
    /// The server's.
    pub(super) server: Option<Secret>,
}

/// The process's log, shared by every listener's configuration.
pub fn secret_log() -> Arc<SecretLog> {
    static LOG: OnceLock<Arc<SecretLog>> = OnceLock::new();
    Arc::clone(LOG.get_or_init(Arc::default))
}

impl SecretLog {
    /// Takes the secrets of the session with `random` out of the log.
    pub(super) fn take(&self, random: &[u8; 32]) -> Option<Pair> {
        self.lock().remove(random)
    }

    /// Drops the secrets of the session with `random`, if any.
    pub(super) fn forget(&self, random: &[u8; 32]) {
        self.lock().remove(random);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], Pair>> {
        self.sessions.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl KeyLog for SecretLog {
    fn will_log(&self, label: &str) -> bool {
        label == CLIENT || label == SERVER
    }

    fn log(&self, label: &str, client_random: &[u8], secret: &[u8]) {
        let Ok(random) = <[u8; 32]>::try_from(client_random) else {
            return;
        };
        let mut sessions = self.lock();
        if sessions.len() >= MAX_SESSIONS && !sessions.contains_key(&random) {
            return;
        }
        let pair = sessions.entry(random).or_default();
        let secret = Some(Secret::new(secret));
        match label {
            CLIENT => pair.client = secret,
            SERVER => pair.server = secret,
            _ => {}
        }
    }
}
