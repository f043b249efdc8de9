//! Live backend state: each (pool, settings) pair used by a rule is an [`Upstream`] with its
//! [`Backend`]s. A backend carries its health (unhealthy until its first good probe), the
//! count of open requests and sessions (for least connections) and its counters (for
//! `/metrics`). Backends that survive a reload keep this state: the new configuration
//! reuses the same `Arc<Backend>`.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use crate::balance::{self, BackendView};
use crate::config::{
    BackendHttpSettings, GatewayConfig, LoadBalancing, Probe, ProbeMatch, ProbeProtocol, Protocol,
    StatusRange, Switch,
};
use crate::outlier::PassiveHealth;
use crate::routing::UpstreamKey;

/// What identifies a backend across reloads.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BackendKey {
    /// Pool and settings.
    pub upstream: UpstreamKey,
    /// Host (FQDN or IP).
    pub host: String,
    /// Port.
    pub port: u16,
    /// Protocol to it.
    pub protocol: Protocol,
}

/// What a backend *is*, whatever the configuration calls it: address, port and protocol. A
/// reload that renames its pool or settings keeps the same server, with its sessions, health
/// and counters.
pub type Identity = (String, u16, Protocol);

impl BackendKey {
    /// The server this key points at.
    pub fn identity(&self) -> Identity {
        (self.host.clone(), self.port, self.protocol)
    }
}

/// The last probe of a backend, for the backend-health view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeReport {
    /// Whether it passed.
    pub ok: bool,
    /// Why it failed (empty when it passed).
    pub reason: String,
    /// When it ended.
    pub at: SystemTime,
}

/// Counters of one backend, for `/metrics`.
#[derive(Debug, Default)]
pub struct BackendStats {
    /// Ordinary requests forwarded.
    pub requests: AtomicU64,
    /// WebSocket handshakes the backend accepted (101).
    pub handshakes_ok: AtomicU64,
    /// WebSocket handshakes that failed (refused, error, timeout).
    pub handshakes_failed: AtomicU64,
    /// Bytes relayed to the backend in WebSocket sessions.
    pub bytes_to_backend: AtomicU64,
    /// Bytes relayed from the backend in WebSocket sessions.
    pub bytes_from_backend: AtomicU64,
    /// Connect failures, timeouts and broken responses.
    pub errors: AtomicU64,
    /// Good probes.
    pub probes_ok: AtomicU64,
    /// Failed probes.
    pub probes_failed: AtomicU64,
    /// WebSocket sessions open now.
    pub sessions: AtomicUsize,
    /// Ordinary requests sent on a reused (kept-alive) connection.
    pub reused: AtomicU64,
}

/// One backend server of an upstream.
#[derive(Debug)]
pub struct Backend {
    /// Its identity.
    pub key: BackendKey,
    /// Stable id: the affinity cookie's value and the `backend` metrics label.
    pub id: String,
    healthy: AtomicBool,
    failures: AtomicU32,
    active: AtomicUsize,
    /// Counters.
    pub stats: BackendStats,
    /// What real traffic says (outlier ejection).
    pub passive: PassiveHealth,
    last_probe: Mutex<Option<ProbeReport>>,
}

impl Backend {
    /// A backend, unhealthy until its first good probe.
    pub fn new(key: BackendKey) -> Self {
        let id = backend_id(&key);
        Self {
            key,
            id,
            healthy: AtomicBool::new(false),
            failures: AtomicU32::new(0),
            active: AtomicUsize::new(0),
            stats: BackendStats::default(),
            passive: PassiveHealth::default(),
            last_probe: Mutex::new(None),
        }
    }

    /// Whether new requests may go to it: healthy by its probes and not ejected by
    /// outlier detection.
    pub fn in_rotation(&self) -> bool {
        self.is_healthy() && !self.passive.is_ejected()
    }

    /// Keeps the outcome of the latest probe for the backend-health view.
    pub fn note_probe(&self, result: &Result<(), String>) {
        let report = ProbeReport {
            ok: result.is_ok(),
            reason: result.as_ref().err().cloned().unwrap_or_default(),
            at: SystemTime::now(),
        };
        if let Ok(mut slot) = self.last_probe.lock() {
            *slot = Some(report);
        }
    }

    /// The latest probe's outcome, if any probe has ended yet.
    pub fn last_probe(&self) -> Option<ProbeReport> {
        self.last_probe.lock().ok()?.clone()
    }

    /// `host:port`, for connecting and for logs.
    pub fn authority(&self) -> String {
        if self.key.host.contains(':') {
            format!("[{}]:{}", self.key.host, self.key.port)
        } else {
            format!("{}:{}", self.key.host, self.key.port)
        }
    }

    /// Whether probes say it is healthy.
    pub fn is_healthy(&self) -> bool {
        self.healthy.load(Ordering::Acquire)
    }

    /// Open requests and sessions.
    pub fn active(&self) -> usize {
        self.active.load(Ordering::Acquire)
    }

    /// Records a probe result; returns the health afterwards. Healthy after one good probe;
    /// unhealthy after `threshold` consecutive bad ones.
    pub fn record_probe(&self, ok: bool, threshold: u32) -> bool {
        if ok {
            self.stats.probes_ok.fetch_add(1, Ordering::Relaxed);
            self.failures.store(0, Ordering::Release);
            self.healthy.store(true, Ordering::Release);
        } else {
            self.stats.probes_failed.fetch_add(1, Ordering::Relaxed);
            let failures = self
                .failures
                .fetch_add(1, Ordering::AcqRel)
                .saturating_add(1);
            if failures >= threshold {
                self.healthy.store(false, Ordering::Release);
            }
        }
        self.is_healthy()
    }

    /// Counts a request or session as open until the guard drops.
    pub fn begin(self: &Arc<Self>) -> ActiveGuard {
        self.active.fetch_add(1, Ordering::AcqRel);
        ActiveGuard(self.clone())
    }
}

/// Keeps a backend's open count raised while alive.
#[derive(Debug)]
pub struct ActiveGuard(Arc<Backend>);

impl ActiveGuard {
    /// The backend.
    pub fn backend(&self) -> &Arc<Backend> {
        &self.0
    }
}

impl Drop for ActiveGuard {
    fn drop(&mut self) {
        self.0.active.fetch_sub(1, Ordering::AcqRel);
    }
}

/// FNV-1a of the key's identity (address, port, protocol; not the pool's or settings'
/// names), as 16 hex digits: short, stable across restarts, reloads and renames, so an
/// affinity cookie stays good when a pool is renamed.
fn backend_id(key: &BackendKey) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let text = format!("{}\0{}\0{:?}", key.host, key.port, key.protocol);
    for b in text.bytes() {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{hash:016x}")
}

/// Which `Host` the gateway sends to backends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostPolicy {
    /// The client's own `Host`.
    Client,
    /// A fixed name (`hostName`).
    Fixed(String),
    /// The backend's address (`pickHostNameFromBackendAddress`).
    BackendAddress,
}

/// Backend settings, resolved.
#[derive(Clone)]
pub struct Settings {
    /// The settings' name.
    pub name: String,
    /// Protocol to backends.
    pub protocol: Protocol,
    /// Bound on the response head; idle limit of WebSocket sessions.
    pub request_timeout: Duration,
    /// The affinity cookie's name, when affinity is on.
    pub affinity_cookie: Option<String>,
    /// Drain timeout, when draining is on.
    pub drain: Option<Duration>,
    /// `Host` to send.
    pub host: HostPolicy,
    /// TLS to backends (for `Https`).
    pub tls: Option<tokio_rustls::TlsConnector>,
    /// Keep-alive pings on WebSocket sessions (`webSocketKeepAlive`).
    pub websocket_keep_alive: bool,
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("name", &self.name)
            .field("protocol", &self.protocol)
            .field("request_timeout", &self.request_timeout)
            .field("affinity_cookie", &self.affinity_cookie)
            .field("drain", &self.drain)
            .field("host", &self.host)
            .field("tls", &self.tls.is_some())
            .field("websocket_keep_alive", &self.websocket_keep_alive)
            .finish()
    }
}

/// A probe, resolved for one upstream.
#[derive(Debug, Clone)]
pub struct ProbeSpec {
    /// How to probe.
    pub protocol: ProbeProtocol,
    /// `Host` to send (`None`: the backend's address).
    pub host: Option<String>,
    /// Path.
    pub path: String,
    /// Port (`None`: the backend's).
    pub port: Option<u16>,
    /// Between probes.
    pub interval: Duration,
    /// Per probe.
    pub timeout: Duration,
    /// Failures before unhealthy.
    pub unhealthy_threshold: u32,
    /// Healthy statuses.
    pub statuses: Vec<StatusRange>,
    /// Required body substring.
    pub body: Option<String>,
    /// See [`balance::rotation`].
    pub min_servers: usize,
}

/// A (pool, settings) pair with its backends.
#[derive(Debug)]
pub struct Upstream {
    /// Which pair.
    pub key: UpstreamKey,
    /// The settings.
    pub settings: Settings,
    /// The balancing policy.
    pub policy: LoadBalancing,
    /// The probe.
    pub probe: ProbeSpec,
    /// The backends, in configuration order.
    pub backends: Vec<Arc<Backend>>,
    cursor: AtomicUsize,
}

impl Upstream {
    /// Picks a backend for a request carrying affinity cookie value `affinity`. Returns the
    /// backend and whether the cookie chose it.
    pub fn pick(&self, affinity: Option<&str>) -> Option<(Arc<Backend>, bool)> {
        self.pick_among(affinity, &[])
    }

    /// Picks a backend other than those in `tried` (the retry after a connection could not
    /// be opened); no affinity, since the cookie's backend was tried first.
    pub fn pick_other(&self, tried: &[Arc<Backend>]) -> Option<Arc<Backend>> {
        self.pick_among(None, tried).map(|(b, _)| b)
    }

    fn pick_among(
        &self,
        affinity: Option<&str>,
        tried: &[Arc<Backend>],
    ) -> Option<(Arc<Backend>, bool)> {
        let candidates: Vec<&Arc<Backend>> = self
            .backends
            .iter()
            .filter(|b| !tried.iter().any(|t| Arc::ptr_eq(t, b)))
            .collect();
        let views: Vec<BackendView<'_>> = candidates
            .iter()
            .map(|b| BackendView {
                id: &b.id,
                healthy: b.in_rotation(),
                active: b.active(),
            })
            .collect();
        let cursor = self.cursor.fetch_add(1, Ordering::Relaxed);
        let affinity = affinity.filter(|_| self.settings.affinity_cookie.is_some());
        let pick = balance::pick(
            self.policy,
            &views,
            self.probe.min_servers,
            affinity,
            cursor,
        )?;
        Some((candidates[pick.index].clone(), pick.by_affinity))
    }
}

/// The backend keys of upstreams `keys` in `config` (unknown names are skipped).
fn backend_keys(config: &GatewayConfig, keys: &[UpstreamKey]) -> HashSet<BackendKey> {
    let mut out = HashSet::new();
    for key in keys {
        let pool = config
            .backend_address_pools
            .iter()
            .find(|p| p.name == key.pool);
        let settings = config
            .backend_http_settings_collection
            .iter()
            .find(|s| s.name == key.settings);
        let (Some(pool), Some(s)) = (pool, settings) else {
            continue;
        };
        out.extend(pool.backend_addresses.iter().map(|a| BackendKey {
            upstream: key.clone(),
            host: a.host(),
            port: a.port.unwrap_or(s.port),
            protocol: s.protocol,
        }));
    }
    out
}

/// Backends of the previous generation that the new one can take over: by exact key first,
/// then by identity ([`BackendKey::identity`]) for a backend whose pool or settings was
/// renamed, each old backend going to one new place at most.
struct Reuse<'a> {
    previous: &'a HashMap<BackendKey, Arc<Backend>>,
    wanted: HashSet<BackendKey>,
    taken: HashSet<*const Backend>,
}

impl Reuse<'_> {
    fn take(&mut self, key: &BackendKey) -> Option<Arc<Backend>> {
        if let Some(b) = self.previous.get(key) {
            return Some(b.clone());
        }
        let identity = key.identity();
        let mut renamed: Vec<&Arc<Backend>> = self
            .previous
            .values()
            .filter(|b| b.key.identity() == identity && !self.wanted.contains(&b.key))
            .filter(|b| !self.taken.contains(&Arc::as_ptr(b)))
            .collect();
        renamed.sort_by(|a, b| a.key.upstream.cmp(&b.key.upstream));
        let found = (*renamed.first()?).clone();
        self.taken.insert(Arc::as_ptr(&found));
        Some(found)
    }
}

/// Builds the upstreams `keys` of a validated configuration, reusing backends of `previous`
/// with the same key, or the same identity when only names changed (so sessions, health and
/// counters survive a reload that renames a pool or settings). Keys naming no pool or
/// settings are skipped (validation refuses them before a configuration gets here); the only
/// error is `tls`'s, for settings whose TLS files cannot be used.
pub fn build_upstreams<E>(
    config: &GatewayConfig,
    keys: &[UpstreamKey],
    previous: &HashMap<BackendKey, Arc<Backend>>,
    tls: &mut dyn FnMut(&BackendHttpSettings) -> Result<tokio_rustls::TlsConnector, E>,
) -> Result<HashMap<UpstreamKey, Arc<Upstream>>, E> {
    let mut reuse = Reuse {
        previous,
        wanted: backend_keys(config, keys),
        taken: HashSet::new(),
    };
    let mut out = HashMap::new();
    for key in keys {
        let pool = config
            .backend_address_pools
            .iter()
            .find(|p| p.name == key.pool);
        let settings = config
            .backend_http_settings_collection
            .iter()
            .find(|s| s.name == key.settings);
        let (Some(pool), Some(s)) = (pool, settings) else {
            continue;
        };
        let settings = Settings {
            name: s.name.clone(),
            protocol: s.protocol,
            request_timeout: s.request_timeout.duration(),
            affinity_cookie: (s.cookie_based_affinity == Switch::Enabled)
                .then(|| s.affinity_cookie_name.clone()),
            drain: s
                .connection_draining
                .as_ref()
                .filter(|d| d.enabled)
                .map(|d| d.drain_timeout_in_sec.duration()),
            host: match (&s.host_name, s.pick_host_name_from_backend_address) {
                (Some(h), _) => HostPolicy::Fixed(h.clone()),
                (None, true) => HostPolicy::BackendAddress,
                (None, false) => HostPolicy::Client,
            },
            tls: match s.protocol {
                Protocol::Https => Some(tls(s)?),
                Protocol::Http => None,
            },
            websocket_keep_alive: s.web_socket_keep_alive,
        };
        let probe = probe_spec(config, s);
        let backends = pool
            .backend_addresses
            .iter()
            .map(|a| {
                let bkey = BackendKey {
                    upstream: key.clone(),
                    host: a.host(),
                    port: a.port.unwrap_or(s.port),
                    protocol: s.protocol,
                };
                reuse
                    .take(&bkey)
                    .unwrap_or_else(|| Arc::new(Backend::new(bkey)))
            })
            .collect();
        let upstream = Upstream {
            key: key.clone(),
            settings,
            policy: s.load_balancing.or(pool.load_balancing).unwrap_or_default(),
            probe,
            backends,
            cursor: AtomicUsize::new(0),
        };
        out.insert(key.clone(), Arc::new(upstream));
    }
    Ok(out)
}

/// The settings' probe, or the default one: `GET /` on the backend's port with the
/// settings' protocol, Azure's intervals and status range.
fn probe_spec(config: &GatewayConfig, s: &BackendHttpSettings) -> ProbeSpec {
    let default_probe;
    let probe: &Probe = match s
        .probe
        .as_ref()
        .and_then(|name| config.probes.iter().find(|p| &p.name == name))
    {
        Some(p) => p,
        None => {
            default_probe = Probe {
                name: "default".into(),
                protocol: match s.protocol {
                    Protocol::Http => ProbeProtocol::Http,
                    Protocol::Https => ProbeProtocol::Https,
                },
                host: None,
                path: crate::config::defaults::probe_path(),
                port: None,
                interval: crate::config::defaults::probe_interval(),
                timeout: crate::config::defaults::probe_timeout(),
                unhealthy_threshold: crate::config::defaults::unhealthy_threshold(),
                match_: ProbeMatch::default(),
                min_servers: 0,
                pick_host_name_from_backend_http_settings: true,
            };
            &default_probe
        }
    };
    let host = probe.host.clone().or_else(|| {
        if probe.pick_host_name_from_backend_http_settings {
            s.host_name.clone()
        } else {
            None
        }
    });
    ProbeSpec {
        protocol: probe.protocol,
        host,
        path: probe.path.clone(),
        port: probe.port,
        interval: probe.interval.duration(),
        timeout: probe.timeout.duration(),
        unhealthy_threshold: probe.unhealthy_threshold.max(1),
        statuses: probe.match_.status_codes.clone(),
        body: probe.match_.body.clone(),
        min_servers: probe.min_servers as usize,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn backend() -> Backend {
        Backend::new(BackendKey {
            upstream: UpstreamKey {
                pool: "p".into(),
                settings: "s".into(),
            },
            host: "127.0.0.1".into(),
            port: 80,
            protocol: Protocol::Http,
        })
    }

    #[test]
    fn unhealthy_until_first_good_probe_then_after_threshold_failures() {
        let b = backend();
        assert!(!b.is_healthy());
        assert!(!b.record_probe(false, 3));
        assert!(b.record_probe(true, 3));
        assert!(b.record_probe(false, 3));
        assert!(b.record_probe(false, 3));
        assert!(!b.record_probe(false, 3));
        assert!(b.record_probe(true, 3));
    }

    #[test]
    fn ids_are_stable_and_distinct() {
        let a = backend();
        let b = backend();
        assert_eq!(a.id, b.id);
        let mut key = a.key.clone();
        key.port = 81;
        assert_ne!(Backend::new(key).id, a.id);
    }

    #[test]
    fn active_guard_counts() {
        let b = Arc::new(backend());
        let g1 = b.begin();
        let g2 = b.begin();
        assert_eq!(b.active(), 2);
        drop(g1);
        drop(g2);
        assert_eq!(b.active(), 0);
    }
}
