//! Trying the next backend when one refuses the connection, and telling passive health
//! ([`crate::outlier`]) what each exchange said.
//!
//! Only a failure to open the connection (refused, unreachable, TLS failed) is retried: then
//! not one byte of the request has been written, so sending it elsewhere cannot repeat a
//! non-idempotent request (RFC 9110 section 9.2.2 leaves retrying sent requests to the
//! client). Each backend is tried at most once, at most `limits.backendConnectAttempts` in
//! all, like nginx's `proxy_next_upstream error` with `proxy_next_upstream_tries`.

use std::sync::Arc;

use super::Forward;
use crate::pool::{Backend, HostPolicy, Settings};

/// The backends tried so far for one request.
pub(crate) struct Retry {
    tried: Vec<Arc<Backend>>,
    max: usize,
}

impl Retry {
    /// Starts with the backend `fwd` has picked.
    pub fn new(fwd: &Forward) -> Self {
        Self {
            tried: vec![fwd.active.backend().clone()],
            max: fwd.runtime.limits.backend_connect_attempts.max(1) as usize,
        }
    }

    /// After the current backend refused the connection (`why`): counts that against it and,
    /// if attempts remain and another backend is in the rotation, moves `fwd` to it (its open
    /// count, the access log's backend, the affinity cookie) and returns it.
    pub fn next(&mut self, fwd: &mut Forward, why: &str) -> Option<Arc<Backend>> {
        let failed = fwd.active.backend().clone();
        passive(fwd, &failed, false);
        if self.tried.len() >= self.max {
            return None;
        }
        let next = fwd.upstream.pick_other(&self.tried)?;
        tracing::warn!(
            backend = %failed.authority(), next = %next.authority(), error = %why,
            "backend refused the connection: trying the next one"
        );
        fwd.shared.metrics.refusal("backend_retried");
        self.tried.push(next.clone());
        fwd.active = next.begin();
        fwd.record.backend = next.authority();
        if let Some(name) = &fwd.upstream.settings.affinity_cookie {
            fwd.set_cookie = Some((name.clone(), next.id.clone()));
        }
        Some(next)
    }
}

/// Tells `backend`'s passive health what an exchange said (`ok`: an answer below 500), and
/// logs an ejection.
pub(crate) fn passive(fwd: &Forward, backend: &Backend, ok: bool) {
    let outlier = fwd.runtime.limits.outlier;
    if backend.passive.record(ok, outlier) {
        let ejection = outlier.map(|o| o.ejection).unwrap_or_default();
        tracing::warn!(
            backend = %backend.authority(), pool = %fwd.upstream.key.pool, ?ejection,
            "backend failed too often in a row: it leaves the rotation (outlier ejection)"
        );
    }
}

/// The TLS server name for `backend`: the settings' fixed host name, else its address.
pub(crate) fn sni(settings: &Settings, backend: &Backend) -> String {
    match &settings.host {
        HostPolicy::Fixed(name) => name.clone(),
        _ => backend.key.host.clone(),
    }
}
