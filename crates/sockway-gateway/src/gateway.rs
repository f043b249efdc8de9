//! The running gateway: binds the listeners and the admin socket, runs the probes, swaps
//! configurations on reload (draining backends that left), and shuts down cleanly.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use tokio::sync::watch;

use crate::config::{self, GatewayConfig};
use crate::drain::{drain_backend, CloseOrder};
use crate::error::GatewayError;
use crate::handover::{admin_key, front_key, Inherited};
use crate::health_view::BackendHealth;
use crate::listener::{self, Front};
use crate::probe::ProbeSet;
use crate::state::{Runtime, Shared};

/// A running gateway. Cheap to clone; all clones control the same gateway.
#[derive(Debug, Clone)]
pub struct Gateway {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    shared: Arc<Shared>,
    path: Option<PathBuf>,
    fronts: Mutex<HashMap<SocketAddr, Front>>,
    probes: Mutex<ProbeSet>,
    shutdown: watch::Sender<bool>,
    admin: Option<SocketAddr>,
    /// A duplicate of the admin socket, for a hand-over.
    #[cfg(unix)]
    admin_socket: Mutex<Option<(String, std::os::fd::OwnedFd)>>,
    reload_lock: tokio::sync::Mutex<()>,
}

impl Gateway {
    /// Loads `path` and starts; see [`Gateway::start`].
    pub async fn start_file(path: &Path) -> Result<Gateway, GatewayError> {
        let config = config::load(path)?;
        Self::start(config, Some(path.to_owned())).await
    }

    /// Starts a gateway for a configuration that passed [`config::validate()`]: binds every
    /// listener (failing if one cannot be bound) and the admin listener, and starts probing.
    /// `path` is the file later reloads read.
    pub async fn start(
        config: GatewayConfig,
        path: Option<PathBuf>,
    ) -> Result<Gateway, GatewayError> {
        Self::start_inherited(config, path, &mut Inherited::default()).await
    }

    /// Like [`Gateway::start`], but listening on the sockets of `inherited` (handed over by
    /// a running gateway, see [`crate::handover`]) where their keys match, binding the rest.
    pub async fn start_inherited(
        config: GatewayConfig,
        path: Option<PathBuf>,
        inherited: &mut Inherited,
    ) -> Result<Gateway, GatewayError> {
        let issues = config::validate(&config);
        if !issues.is_empty() {
            return Err(config::ConfigError::Invalid(issues).into());
        }
        let admin_address = config.admin.as_ref().map(|a| a.address);
        let runtime = Runtime::build(config, None, 1)?;
        let fronts_wanted = runtime.fronts();
        let max_body = runtime.limits.probe_max_body_bytes;
        let shared = Shared::new(runtime);
        let probes = ProbeSet::start(
            shared.current().upstreams.values(),
            max_body,
            &shared.sessions,
        );
        if !inherited.is_empty() {
            // Taking over from a running gateway: both processes accept from the same
            // sockets, so this one starts accepting only once it knows which backends are
            // up; otherwise its first requests would get 502 while the old one serves fine.
            first_probes(&shared).await;
        }
        let (shutdown, shutdown_rx) = watch::channel(false);
        let mut fronts = HashMap::new();
        for address in fronts_wanted {
            let socket = match inherited.take(&front_key(address)) {
                Some(socket) => socket,
                None => listener::bind(address).await?,
            };
            let front =
                listener::start(shared.clone(), socket, address.port(), shutdown_rx.clone())?;
            tracing::info!(address = %front.local_addr, "listening");
            fronts.insert(address, front);
        }
        #[cfg(unix)]
        let mut admin_socket = None;
        let admin = match admin_address {
            Some(address) => {
                let socket = match inherited.take(&admin_key(address)) {
                    Some(socket) => socket,
                    None => tokio::net::TcpListener::bind(address)
                        .await
                        .map_err(|source| GatewayError::AdminListen { address, source })?,
                };
                #[cfg(unix)]
                {
                    use std::os::fd::AsFd;
                    admin_socket = socket
                        .as_fd()
                        .try_clone_to_owned()
                        .ok()
                        .map(|fd| (admin_key(address), fd));
                }
                let addr = crate::admin::start(shared.clone(), socket, shutdown_rx.clone());
                tracing::info!(address = %addr, "admin listener (/metrics, /healthz)");
                Some(addr)
            }
            None => None,
        };
        Ok(Gateway {
            inner: Arc::new(Inner {
                shared,
                path,
                fronts: Mutex::new(fronts),
                probes: Mutex::new(probes),
                shutdown,
                admin,
                #[cfg(unix)]
                admin_socket: Mutex::new(admin_socket),
                reload_lock: tokio::sync::Mutex::new(()),
            }),
        })
    }

    /// The addresses bound for the listeners.
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        self.inner
            .fronts
            .lock()
            .map(|f| f.values().map(|f| f.local_addr).collect())
            .unwrap_or_default()
    }

    /// Duplicates of the listening sockets with their hand-over keys (fronts, then admin),
    /// for a new process taking over ([`crate::handover`]).
    #[cfg(unix)]
    pub fn handover_sockets(&self) -> Vec<(String, std::os::fd::OwnedFd)> {
        let mut out = Vec::new();
        if let Ok(fronts) = self.inner.fronts.lock() {
            for (address, front) in fronts.iter() {
                let socket = front.socket.lock().ok();
                let fd = socket.as_ref().and_then(|s| s.as_ref()?.try_clone().ok());
                if let Some(fd) = fd {
                    out.push((front_key(*address), fd));
                }
            }
        }
        let admin = self.inner.admin_socket.lock().ok();
        if let Some((key, fd)) = admin
            .as_ref()
            .and_then(|s| s.as_ref())
            .and_then(|(key, fd)| Some((key.clone(), fd.try_clone().ok()?)))
        {
            out.push((key, fd));
        }
        out
    }

    /// The admin listener's address, if configured.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.inner.admin
    }

    /// The configuration file, if the gateway was started from one.
    pub fn config_path(&self) -> Option<&Path> {
        self.inner.path.as_deref()
    }

    /// The current configuration generation (1, then +1 per successful reload).
    pub fn generation(&self) -> u64 {
        self.inner.shared.current().generation
    }

    /// How often the configuration file is checked for changes.
    pub fn poll_interval(&self) -> std::time::Duration {
        self.inner.shared.current().limits.reload_poll_interval
    }

    /// Open WebSocket sessions.
    pub fn sessions(&self) -> usize {
        self.inner.shared.sessions.count()
    }

    /// The `/metrics` text.
    pub fn metrics_text(&self) -> String {
        let shared = &self.inner.shared;
        let runtime = shared.current();
        let idle = |b: &crate::pool::Backend| shared.connections.idle(&b.id) as u64;
        shared
            .metrics
            .render(runtime.upstreams.values(), self.sessions(), &idle)
    }

    /// Every backend's health, sorted by pool, settings and address.
    pub fn health(&self) -> Vec<BackendHealth> {
        crate::health_view::collect(&self.inner.shared.current())
    }

    /// The certificate, key and trusted-root files the running configuration reads, which
    /// [`crate::reload::watch`] watches: a renewed certificate is served without a reload.
    pub fn tls_files(&self) -> Vec<PathBuf> {
        let runtime = self.inner.shared.current();
        let config = &runtime.config;
        let listeners = config
            .http_listeners
            .iter()
            .flat_map(|l| [l.certificate_file.as_ref(), l.key_file.as_ref()]);
        let roots = config
            .backend_http_settings_collection
            .iter()
            .map(|s| s.trusted_root_certificate.as_ref());
        let mut files: Vec<PathBuf> = listeners
            .chain(roots)
            .flatten()
            .map(PathBuf::from)
            .collect();
        files.sort();
        files.dedup();
        files
    }

    /// Applies the running configuration again, which reads its certificate, key and root
    /// files anew (see [`Gateway::apply`]; on an error, such as a key that does not match its
    /// certificate yet, what runs stays).
    pub async fn reload_tls(&self) -> Result<(), GatewayError> {
        let config = self.inner.shared.current().config.clone();
        self.apply(config).await
    }

    /// Re-reads the configuration file and applies it (see [`Gateway::apply`]).
    pub async fn reload(&self) -> Result<(), GatewayError> {
        let Some(path) = self.inner.path.clone() else {
            return Err(GatewayError::NoFile);
        };
        match config::load(&path) {
            Ok(config) => self.apply(config).await,
            Err(e) => {
                self.inner
                    .shared
                    .metrics
                    .reloads_failed
                    .fetch_add(1, Ordering::Relaxed);
                Err(e.into())
            }
        }
    }

    /// Applies a new configuration without dropping anything that keeps working: new
    /// requests use it at once; open sessions keep running; listeners that stay keep their
    /// sockets; backends that stay keep their health and counts; backends that left are
    /// drained (their sessions close with 1001 after the drain timeout, or at once without
    /// draining). On any error (invalid configuration, certificate, port in use) the old
    /// configuration stays.
    pub async fn apply(&self, config: GatewayConfig) -> Result<(), GatewayError> {
        let _serial = self.inner.reload_lock.lock().await;
        let result = self.apply_locked(config).await;
        let counter = match &result {
            Ok(()) => &self.inner.shared.metrics.reloads_ok,
            Err(_) => &self.inner.shared.metrics.reloads_failed,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        result
    }

    async fn apply_locked(&self, config: GatewayConfig) -> Result<(), GatewayError> {
        let issues = config::validate(&config);
        if !issues.is_empty() {
            return Err(config::ConfigError::Invalid(issues).into());
        }
        let shared = &self.inner.shared;
        let old = shared.current();
        let runtime = Runtime::build(config, Some(&old), old.generation + 1)?;
        let wanted = runtime.fronts();
        let have: Vec<SocketAddr> = self
            .inner
            .fronts
            .lock()
            .map(|f| f.keys().cloned().collect())
            .unwrap_or_default();
        let mut new_sockets = Vec::new();
        for key in wanted.iter().filter(|k| !have.contains(k)) {
            new_sockets.push((*key, listener::bind(*key).await?));
        }
        let max_body = runtime.limits.probe_max_body_bytes;
        // A backend is removed when no backend with its address, port and protocol is left:
        // renaming its pool or settings keeps its sessions.
        let new_identities: std::collections::HashSet<_> =
            runtime.backends().map(|b| b.key.identity()).collect();
        let generation = runtime.generation;
        shared.swap(runtime);
        let current = shared.current();
        {
            let mut fronts = self
                .inner
                .fronts
                .lock()
                .map_err(|_| GatewayError::Poisoned)?;
            for (key, socket) in new_sockets {
                let front = listener::start(
                    shared.clone(),
                    socket,
                    key.port(),
                    self.inner.shutdown.subscribe(),
                )?;
                tracing::info!(address = %front.local_addr, "listening");
                fronts.insert(key, front);
            }
            fronts.retain(|key, front| {
                let keep = wanted.contains(key);
                if !keep {
                    tracing::info!(address = %front.local_addr, "listener removed");
                    front.stop();
                }
                keep
            });
        }
        for upstream in old.upstreams.values() {
            for backend in &upstream.backends {
                if !new_identities.contains(&backend.key.identity()) {
                    tracing::info!(
                        backend = %backend.authority(), pool = %upstream.key.pool,
                        drain = ?upstream.settings.drain, "backend removed: draining"
                    );
                    drain_backend(
                        shared.sessions.clone(),
                        backend.id.clone(),
                        upstream.settings.drain,
                    );
                }
            }
        }
        let probes = ProbeSet::start(current.upstreams.values(), max_body, &shared.sessions);
        if let Ok(mut slot) = self.inner.probes.lock() {
            *slot = probes;
        }
        tracing::info!(generation, "configuration applied");
        Ok(())
    }

    /// Stops accepting on every listener; open connections go on (a hand-over: the new
    /// process accepts on the same sockets).
    pub fn stop_accepting(&self) {
        if let Ok(fronts) = self.inner.fronts.lock() {
            for front in fronts.values() {
                front.stop();
            }
        }
    }

    /// Shuts down: stops accepting, lets HTTP connections finish, waits up to the shutdown
    /// timeout for WebSocket sessions to end, then closes the rest with 1001 (going away)
    /// and waits for their close to complete.
    pub async fn shutdown(&self) {
        let limits = self.inner.shared.current().limits.clone();
        if let Ok(fronts) = self.inner.fronts.lock() {
            for front in fronts.values() {
                front.stop();
            }
        }
        self.inner.shutdown.send_replace(true);
        #[cfg(unix)]
        if let Ok(mut admin) = self.inner.admin_socket.lock() {
            admin.take();
        }
        if let Ok(mut probes) = self.inner.probes.lock() {
            *probes = ProbeSet::default();
        }
        let sessions = &self.inner.shared.sessions;
        if !sessions.wait_empty(limits.shutdown_timeout).await {
            let n = sessions.close(
                None,
                CloseOrder {
                    code: 1001,
                    reason: "gateway shutting down",
                },
            );
            tracing::info!(sessions = n, "closing WebSocket sessions with 1001");
            sessions.wait_empty(limits.close_grace * 3).await;
        }
    }
}

/// Waits until every backend has been probed once (bounded by the longest probe timeout),
/// so that a gateway taking over from another serves from its first request instead of
/// answering 502 while its backends still count as unhealthy.
async fn first_probes(shared: &Shared) {
    let runtime = shared.current();
    let limit = runtime
        .upstreams
        .values()
        .map(|u| u.probe.timeout)
        .max()
        .unwrap_or_default();
    let deadline = tokio::time::Instant::now() + limit;
    while tokio::time::Instant::now() < deadline
        && runtime.backends().any(|b| b.last_probe().is_none())
    {
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}
