//! Health probes. Each backend of each upstream is probed every `interval`, each probe bounded
//! by `timeout`: `Http`/`Https` send `GET path` and check the status against the healthy
//! ranges (default 200-399) and, if set, that the first `limits.probeMaxBodyBytes` of the
//! body contain a substring; `WebSocket` performs a real opening handshake (101 with the
//! right `Sec-WebSocket-Accept`, RFC 6455 section 4.1) and then closes with 1000.
//!
//! A backend is unhealthy until its first good probe, and leaves the rotation after
//! `unhealthyThreshold` consecutive failures; one good probe brings it back. As in Azure
//! Application Gateway, a backend that does not answer its HTTP/HTTPS probes leaves the pool;
//! the `WebSocket` type is sockway's addition, for backends that only speak WebSocket.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{
    CONNECTION, HOST, SEC_WEBSOCKET_KEY, SEC_WEBSOCKET_VERSION, UPGRADE, USER_AGENT,
};
use http::{Method, Request};
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use sockway_proto::handshake::{self, RequestKind};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::task::JoinHandle;

use crate::config::{ProbeProtocol, Protocol};
use crate::drain::{drain_unhealthy, Sessions};
use crate::pool::{Backend, Upstream};
use crate::proxy::backend;
use crate::proxy::boundary::{close_frame, FrameTracker};
use crate::tls;

/// The `User-Agent` of probes.
pub const PROBE_USER_AGENT: &str = "sockway-gateway-probe/1";

/// Probe tasks of one configuration generation; dropping the set stops them.
#[derive(Debug, Default)]
pub struct ProbeSet {
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for ProbeSet {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl ProbeSet {
    /// Starts probing every backend of `upstreams` (the first probe runs at once).
    pub fn start<'a>(
        upstreams: impl IntoIterator<Item = &'a Arc<Upstream>>,
        max_body: usize,
        sessions: &Arc<Sessions>,
    ) -> Self {
        let mut tasks = Vec::new();
        for upstream in upstreams {
            for backend in &upstream.backends {
                let upstream = upstream.clone();
                let backend = backend.clone();
                let sessions = sessions.clone();
                tasks.push(tokio::spawn(async move {
                    probe_loop(upstream, backend, max_body, sessions).await;
                }));
            }
        }
        ProbeSet { tasks }
    }
}

async fn probe_loop(
    upstream: Arc<Upstream>,
    backend: Arc<Backend>,
    max_body: usize,
    sessions: Arc<Sessions>,
) {
    let spec = &upstream.probe;
    let mut ticker = tokio::time::interval(spec.interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let before = backend.is_healthy();
        let result =
            match tokio::time::timeout(spec.timeout, probe_once(&upstream, &backend, max_body))
                .await
            {
                Ok(result) => result,
                Err(_) => Err(format!("no answer within {:?}", spec.timeout)),
            };
        backend.note_probe(&result);
        let after = backend.record_probe(result.is_ok(), spec.unhealthy_threshold);
        if before && !after {
            if let Some(drain) = upstream.settings.drain {
                drain_unhealthy(sessions.clone(), backend.clone(), drain);
            }
        }
        match (&result, before, after) {
            (Ok(()), false, true) => tracing::info!(
                backend = %backend.authority(), pool = %upstream.key.pool,
                settings = %upstream.key.settings, "backend is healthy"
            ),
            (Err(why), true, false) => tracing::warn!(
                backend = %backend.authority(), pool = %upstream.key.pool,
                settings = %upstream.key.settings, reason = %why,
                "backend is unhealthy: it leaves the rotation"
            ),
            (Err(why), _, _) => {
                tracing::debug!(backend = %backend.authority(), reason = %why, "probe failed")
            }
            _ => {}
        }
    }
}

/// Runs one probe of `backend`; `Err` says why it failed.
pub async fn probe_once(
    upstream: &Upstream,
    backend: &Backend,
    max_body: usize,
) -> Result<(), String> {
    let spec = &upstream.probe;
    let port = spec.port.unwrap_or(backend.key.port);
    let host = spec
        .host
        .clone()
        .unwrap_or_else(|| backend.key.host.clone());
    let authority = if backend.key.host.contains(':') {
        format!("[{}]:{port}", backend.key.host)
    } else {
        format!("{}:{port}", backend.key.host)
    };
    let secure = match spec.protocol {
        ProbeProtocol::Https => true,
        ProbeProtocol::Http => false,
        ProbeProtocol::WebSocket => upstream.settings.protocol == Protocol::Https,
    };
    let connector = if secure {
        Some(match &upstream.settings.tls {
            Some(c) => c.clone(),
            None => tls::default_connector()?,
        })
    } else {
        None
    };
    let host_header = handshake::host_header_value(&host, Some(port), secure);
    let io = backend::connect(&authority, connector.as_ref(), &host).await?;
    let mut sender = backend::handshake::<Empty<Bytes>>(io).await?;
    let mut request = Request::builder()
        .method(Method::GET)
        .uri(spec.path.as_str())
        .header(HOST, host_header)
        .header(USER_AGENT, PROBE_USER_AGENT);
    let key = handshake::generate_key();
    if spec.protocol == ProbeProtocol::WebSocket {
        request = request
            .header(UPGRADE, "websocket")
            .header(CONNECTION, "Upgrade")
            .header(SEC_WEBSOCKET_KEY, key.as_str())
            .header(SEC_WEBSOCKET_VERSION, handshake::WEBSOCKET_VERSION);
    } else {
        request = request.header(CONNECTION, "close");
    }
    let request = request
        .body(Empty::new())
        .map_err(|e| format!("probe request: {e}"))?;
    let mut response = sender
        .send_request(request)
        .await
        .map_err(|e| format!("probe request: {e}"))?;
    let status = response.status();
    if spec.protocol == ProbeProtocol::WebSocket {
        handshake::validate_response(
            RequestKind::Upgrade,
            status,
            response.headers(),
            &key,
            &[],
            &[],
        )
        .map_err(|e| format!("WebSocket handshake: {e}"))?;
        let upgraded = hyper::upgrade::on(&mut response)
            .await
            .map_err(|e| format!("WebSocket upgrade: {e}"))?;
        close_politely(TokioIo::new(upgraded)).await;
        return Ok(());
    }
    if !spec.statuses.iter().any(|r| r.contains(status)) {
        return Err(format!("status {status} is not a healthy status"));
    }
    if let Some(needle) = &spec.body {
        let body = read_prefix(response.into_body(), max_body).await?;
        if !contains(&body, needle.as_bytes()) {
            return Err(format!(
                "the body's first {} bytes do not contain {needle:?}",
                body.len()
            ));
        }
    }
    Ok(())
}

/// Sends close 1000 and waits (bounded by the probe timeout) for the backend's close frame.
async fn close_politely<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(mut io: S) {
    if io
        .write_all(&close_frame(1000, "probe", true))
        .await
        .is_err()
    {
        return;
    }
    let _ = io.flush().await;
    let mut tracker = FrameTracker::new();
    let mut buf = [0u8; 512];
    // A close reply, if any, comes after at most a few frames; stop after 64 KiB regardless.
    let mut budget = 64 * 1024usize;
    while budget > 0 && !tracker.close_seen() {
        match io.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                tracker.feed(&buf[..n]);
                budget = budget.saturating_sub(n);
            }
        }
    }
    let _ = tokio::time::timeout(Duration::from_millis(200), io.shutdown()).await;
}

async fn read_prefix(mut body: hyper::body::Incoming, max: usize) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    while out.len() < max {
        match body.frame().await {
            None => break,
            Some(Err(e)) => return Err(format!("probe body: {e}")),
            Some(Ok(frame)) => {
                if let Some(data) = frame.data_ref() {
                    let take = data.len().min(max - out.len());
                    out.extend_from_slice(&data[..take]);
                }
            }
        }
    }
    Ok(out)
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || haystack.windows(needle.len()).any(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn substring_search() {
        assert!(contains(b"hello healthy world", b"healthy"));
        assert!(!contains(b"hello", b"healthy"));
    }
}
