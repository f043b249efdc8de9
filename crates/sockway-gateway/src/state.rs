//! One configuration generation made live ([`Runtime`]: routes, upstreams with their
//! backends, TLS acceptors, limits) and what outlives generations ([`Shared`]: the current
//! runtime, the session registry, the metrics). Requests read the runtime current when they
//! arrive; a reload swaps it, so only new requests see the new configuration while relayed
//! sessions keep running.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio_rustls::TlsAcceptor;

use crate::config::{GatewayConfig, HttpListener, Protocol};
use crate::drain::Sessions;
use crate::error::GatewayError;
use crate::forwarding::TrustedProxies;
use crate::metrics::Metrics;
use crate::pool::{build_upstreams, Backend, BackendKey, Upstream};
use crate::proxy::body::BackendBody;
use crate::proxy::error_pages::ErrorPages;
use crate::proxy::keepalive::{ConnectionCache, KeepAlive};
use crate::routing::{RouteTable, UpstreamKey};
use crate::slots::SlotLimits;
use crate::tls;

/// Limits, as durations.
#[derive(Debug, Clone)]
pub struct RuntimeLimits {
    /// Per bound address.
    pub max_connections: usize,
    /// Request head bytes.
    pub max_header_bytes: usize,
    /// Time to send a request head.
    pub header_read_timeout: Duration,
    /// Request body bytes.
    pub max_request_body_bytes: u64,
    /// Relay buffer per direction.
    pub relay_buffer_bytes: usize,
    /// Relay plain TCP sessions on io_uring.
    pub relay_io_uring: bool,
    /// Probe body bytes read.
    pub probe_max_body_bytes: usize,
    /// Grace to finish closing.
    pub close_grace: Duration,
    /// Wait on shutdown.
    pub shutdown_timeout: Duration,
    /// HTTP/2 streams per connection.
    pub http2_max_streams: u32,
    /// Configuration file poll interval.
    pub reload_poll_interval: Duration,
    /// Reuse of idle backend connections.
    pub backend_keep_alive: KeepAlive,
    /// Connections per client address.
    pub max_connections_per_client: usize,
    /// Backends tried when connections cannot be opened.
    pub backend_connect_attempts: u32,
    /// Outlier ejection (`None`: off).
    pub outlier: Option<crate::outlier::Outlier>,
}

/// A live configuration generation.
pub struct Runtime {
    /// Counts reloads; 1 for the first configuration.
    pub generation: u64,
    /// The configuration it came from.
    pub config: GatewayConfig,
    /// Listeners and rules.
    pub routes: RouteTable,
    /// Upstreams by (pool, settings).
    pub upstreams: HashMap<UpstreamKey, Arc<Upstream>>,
    /// TLS acceptors by port, for `Https` listeners.
    pub acceptors: HashMap<u16, TlsAcceptor>,
    /// Limits.
    pub limits: RuntimeLimits,
    /// Peers whose forwarding headers are believed (`trustedProxies`).
    pub trusted_proxies: TrustedProxies,
    /// Custom error pages, read from their files.
    pub error_pages: ErrorPages,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("generation", &self.generation)
            .field("routes", &self.routes)
            .field("upstreams", &self.upstreams)
            .field("tls_ports", &self.acceptors.keys().collect::<Vec<_>>())
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

impl Runtime {
    /// Makes a validated configuration live, reusing backends of `previous` that keep their
    /// identity. Fails on an unusable certificate or key file.
    pub fn build(
        config: GatewayConfig,
        previous: Option<&Runtime>,
        generation: u64,
    ) -> Result<Runtime, GatewayError> {
        let routes = RouteTable::build(&config);
        let old: HashMap<BackendKey, Arc<Backend>> = previous
            .map(|p| p.backends().map(|b| (b.key.clone(), b.clone())).collect())
            .unwrap_or_default();
        let upstreams = build_upstreams(&config, &routes.upstreams(), &old, &mut |s| {
            tls::connector(s.trusted_root_certificate.as_deref()).map_err(|reason| {
                GatewayError::Tls {
                    place: format!("backendHttpSettings {:?}", s.name),
                    reason,
                }
            })
        })?;
        let mut by_port: HashMap<u16, Vec<&HttpListener>> = HashMap::new();
        for l in config
            .http_listeners
            .iter()
            .filter(|l| l.protocol == Protocol::Https)
        {
            by_port.entry(l.port).or_default().push(l);
        }
        let mut acceptors = HashMap::new();
        for (port, listeners) in by_port {
            let acceptor = tls::acceptor(&listeners).map_err(|reason| GatewayError::Tls {
                place: format!("port {port}"),
                reason,
            })?;
            acceptors.insert(port, acceptor);
        }
        let l = &config.limits;
        let limits = RuntimeLimits {
            max_connections: l.max_connections,
            max_header_bytes: l.max_header_bytes,
            header_read_timeout: l.header_read_timeout.duration(),
            max_request_body_bytes: l.max_request_body_bytes,
            relay_buffer_bytes: l.relay_buffer_bytes,
            relay_io_uring: l.relay_io_uring,
            probe_max_body_bytes: l.probe_max_body_bytes,
            close_grace: l.close_grace.duration(),
            shutdown_timeout: l.shutdown_timeout.duration(),
            http2_max_streams: l.http2_max_streams,
            reload_poll_interval: l.reload_poll_interval.duration(),
            backend_keep_alive: KeepAlive {
                idle: l.backend_keep_alive.duration(),
                max_idle: l.backend_max_idle,
            },
            max_connections_per_client: l.max_connections_per_client,
            backend_connect_attempts: l.backend_connect_attempts,
            outlier: (l.outlier_consecutive_failures > 0).then(|| crate::outlier::Outlier {
                failures: l.outlier_consecutive_failures,
                ejection: l.outlier_ejection_time.duration(),
            }),
        };
        let error_pages = ErrorPages::load(&config)?;
        Ok(Runtime {
            error_pages,
            generation,
            trusted_proxies: TrustedProxies::new(&config.trusted_proxies),
            config,
            routes,
            upstreams,
            acceptors,
            limits,
        })
    }

    /// Every backend of every upstream.
    pub fn backends(&self) -> impl Iterator<Item = &Arc<Backend>> {
        self.upstreams.values().flat_map(|u| u.backends.iter())
    }

    /// Bound addresses (`bindAddress:port`), each once.
    pub fn fronts(&self) -> Vec<SocketAddr> {
        let mut fronts: Vec<SocketAddr> = self
            .config
            .http_listeners
            .iter()
            .map(|l| SocketAddr::new(l.bind_address, l.port))
            .collect();
        fronts.sort();
        fronts.dedup();
        fronts
    }

    /// The connection limits for a client at `ip`: per bound address, and per client
    /// unless `ip` is a trusted proxy (it carries many clients).
    pub fn slot_limits(&self, ip: std::net::IpAddr) -> SlotLimits {
        SlotLimits {
            per_address: self.limits.max_connections,
            per_client: (!self.trusted_proxies.trusts(ip))
                .then_some(self.limits.max_connections_per_client),
        }
    }

    /// The protocol of the listeners on `port`.
    pub fn protocol(&self, port: u16) -> Option<Protocol> {
        self.config
            .http_listeners
            .iter()
            .find(|l| l.port == port)
            .map(|l| l.protocol)
    }
}

/// What every generation shares.
#[derive(Debug)]
pub struct Shared {
    runtime: RwLock<Arc<Runtime>>,
    /// Open sessions.
    pub sessions: Arc<Sessions>,
    /// Counters.
    pub metrics: Metrics,
    /// Connections open per client address (`limits.maxConnectionsPerClient`).
    pub clients: Arc<crate::slots::PerClient>,
    /// Idle connections to backends, kept for the next ordinary request.
    pub connections: ConnectionCache<BackendBody>,
}

impl Shared {
    /// Shared state starting with `runtime`.
    pub fn new(runtime: Runtime) -> Arc<Self> {
        Arc::new(Self {
            runtime: RwLock::new(Arc::new(runtime)),
            sessions: Arc::new(Sessions::default()),
            metrics: Metrics::default(),
            clients: Arc::default(),
            connections: ConnectionCache::default(),
        })
    }

    /// The current generation.
    pub fn current(&self) -> Arc<Runtime> {
        match self.runtime.read() {
            Ok(r) => r.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Installs a new generation; returns the previous one. Idle connections to backends
    /// the new generation does not have are dropped.
    pub fn swap(&self, runtime: Runtime) -> Arc<Runtime> {
        self.connections
            .retain(|id| runtime.backends().any(|b| b.id == id));
        let mut slot = match self.runtime.write() {
            Ok(w) => w,
            Err(poisoned) => poisoned.into_inner(),
        };
        std::mem::replace(&mut *slot, Arc::new(runtime))
    }
}
