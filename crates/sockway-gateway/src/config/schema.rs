//! The configuration model, in the shape of Azure Application Gateway's ARM template (its
//! backend pools, backend HTTP settings and routing rules):
//! `httpListeners`, `backendAddressPools`, `backendHttpSettingsCollection`,
//! `requestRoutingRules`, `urlPathMaps` and `probes`, plus sockway's own `loadBalancing`,
//! `limits` and `admin`.
//!
//! Field names are the template's (camelCase). Before these types see a document,
//! the loader's normalize pass lifts ARM's `properties` objects into their element, lower-cases the
//! first letter of keys (`RuleType` → `ruleType`) and turns `{"id": ".../pools/name"}`
//! references into plain names, so an excerpt of such a template loads as is.
//!
//! Values with a grammar are typed ([`super::values`]) and parsed as the document is read.
//! Durations are seconds and may be fractional (`0.2`); Azure only takes whole seconds, but
//! short intervals make tests fast. Every field not marked required has a default from
//! [`super::defaults`].

use std::net::{IpAddr, SocketAddr};

use serde::{Deserialize, Serialize};

use super::defaults;
pub use super::features::*;
use super::values::{Cidr, PathPattern, Seconds, StatusRange};

/// The whole gateway configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GatewayConfig {
    /// Front-end listeners: where clients connect (HTTP or HTTPS; both carry WebSockets, as
    /// in Application Gateway, which has no setting to turn WebSocket support off).
    #[serde(default)]
    pub http_listeners: Vec<HttpListener>,
    /// Groups of backend servers.
    #[serde(default)]
    pub backend_address_pools: Vec<BackendAddressPool>,
    /// How to talk to backends: port, protocol, timeout, affinity, draining, probe.
    #[serde(default)]
    pub backend_http_settings_collection: Vec<BackendHttpSettings>,
    /// Which listener sends requests to which pool with which settings.
    #[serde(default)]
    pub request_routing_rules: Vec<RequestRoutingRule>,
    /// Path maps for `PathBasedRouting` rules.
    #[serde(default)]
    pub url_path_maps: Vec<UrlPathMap>,
    /// Custom health probes, referenced from backend settings.
    #[serde(default)]
    pub probes: Vec<Probe>,
    /// Resource limits of the gateway itself.
    #[serde(default)]
    pub limits: Limits,
    /// The admin listener serving `/metrics`; absent means no admin listener.
    #[serde(default)]
    pub admin: Option<Admin>,
    /// Peers (CIDRs or single addresses) whose forwarding headers are believed and extended;
    /// everyone else's are replaced (`forwarding.rs`). Default empty: nobody.
    #[serde(default)]
    pub trusted_proxies: Vec<Cidr>,
    /// What the access log records.
    #[serde(default)]
    pub access_log: AccessLog,
    /// Redirects, used by routing rules.
    #[serde(default)]
    pub redirect_configurations: Vec<RedirectConfiguration>,
    /// Header rewrites, used by routing rules.
    #[serde(default)]
    pub rewrite_rule_sets: Vec<RewriteRuleSet>,
    /// Custom error pages of every listener (a listener's own take precedence).
    #[serde(default)]
    pub custom_error_configurations: Vec<CustomErrorConfiguration>,
}

/// The access log's settings (`access_log.rs`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AccessLog {
    /// Query parameters whose values are written as `REDACTED` (names compared ignoring ASCII
    /// case): credentials that ride in URLs, like OAuth 2.0's `code` (RFC 6749 section 4.1.2)
    /// and `access_token` (RFC 6750 section 2.3, which browsers' WebSocket clients need since
    /// they cannot set headers). Default `access_token`, `token`, `code`.
    #[serde(default = "defaults::redact_query_parameters")]
    pub redact_query_parameters: Vec<String>,
}

impl Default for AccessLog {
    fn default() -> Self {
        Self {
            redact_query_parameters: defaults::redact_query_parameters(),
        }
    }
}

/// `Http` or `Https`: the protocol of a listener or of the connection to a backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
pub enum Protocol {
    /// Plain HTTP/1.1 (and HTTP/2 with prior knowledge on listeners).
    #[default]
    Http,
    /// HTTP over TLS (ALPN `h2` or `http/1.1` on listeners).
    Https,
}

impl Protocol {
    /// The URI scheme, as `X-Forwarded-Proto` wants it.
    pub fn scheme(self) -> &'static str {
        match self {
            Protocol::Http => "http",
            Protocol::Https => "https",
        }
    }
}

/// A front-end listener (`httpListeners[]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpListener {
    /// Unique name, referenced by routing rules.
    pub name: String,
    /// `Http` or `Https`; default `Http`.
    #[serde(default)]
    pub protocol: Protocol,
    /// TCP port (required), such as 80 or 443.
    pub port: u16,
    /// Address to bind; default `0.0.0.0`.
    #[serde(default = "defaults::bind_address")]
    pub bind_address: IpAddr,
    /// PEM certificate chain for `Https`.
    #[serde(default)]
    pub certificate_file: Option<String>,
    /// PEM private key for `Https`.
    #[serde(default)]
    pub key_file: Option<String>,
    /// Host names this listener answers (multi-site): exact names or `*.example.com`. Empty
    /// means every host (a basic listener). Listeners may share a port when their host names
    /// differ; on HTTPS the certificate is chosen by SNI among them.
    #[serde(default)]
    pub host_names: Vec<String>,
    /// This listener's custom error pages.
    #[serde(default)]
    pub custom_error_configurations: Vec<CustomErrorConfiguration>,
}

/// One backend server address (`backendAddresses[]`): `fqdn` or `ipAddress`, not both.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BackendAddress {
    /// A DNS name.
    #[serde(default)]
    pub fqdn: Option<String>,
    /// An IPv4 or IPv6 address.
    #[serde(default)]
    pub ip_address: Option<IpAddr>,
    /// Port for this server; default the backend settings' port.
    #[serde(default)]
    pub port: Option<u16>,
}

impl BackendAddress {
    /// The host part: the FQDN or the IP address (whichever is set).
    pub fn host(&self) -> String {
        match (&self.fqdn, self.ip_address) {
            (Some(fqdn), _) => fqdn.clone(),
            (None, Some(ip)) => ip.to_string(),
            (None, None) => String::new(),
        }
    }
}

/// A backend pool (`backendAddressPools[]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BackendAddressPool {
    /// Unique name.
    pub name: String,
    /// The servers.
    #[serde(default)]
    pub backend_addresses: Vec<BackendAddress>,
    /// How a server is picked; backend settings may override it. Default `RoundRobin`.
    #[serde(default)]
    pub load_balancing: Option<LoadBalancing>,
}

/// How a backend is picked among the healthy ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum LoadBalancing {
    /// Each in turn.
    #[default]
    RoundRobin,
    /// The one with the fewest open requests and WebSocket sessions: right for long-lived
    /// sockets, where round robin piles sessions on a server that already has many.
    LeastConnections,
}

/// `Enabled` or `Disabled`, as the template spells switches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum Switch {
    /// On.
    Enabled,
    /// Off.
    #[default]
    Disabled,
}

/// Connection draining: a backend that leaves the configuration keeps its open sessions for
/// up to `drainTimeoutInSec`; then each gets a WebSocket close 1001.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConnectionDraining {
    /// Whether draining applies; when off, removed backends' sessions close at once.
    #[serde(default)]
    pub enabled: bool,
    /// Seconds, 1-3600 (Azure's range). Default 30.
    #[serde(default = "defaults::drain_timeout")]
    pub drain_timeout_in_sec: Seconds,
}

/// Backend HTTP settings (`backendHttpSettingsCollection[]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BackendHttpSettings {
    /// Unique name.
    pub name: String,
    /// Backend port (required); a backend address may override it.
    pub port: u16,
    /// `Http` or `Https` to the backend; default `Http`.
    #[serde(default)]
    pub protocol: Protocol,
    /// Seconds, 1-86400 (fractions allowed), default 20 (Azure's default). It bounds the wait
    /// for the backend's response head and is also the idle limit of a relayed WebSocket
    /// session, as Application Gateway applies its request timeout to WebSocket sessions too.
    #[serde(default = "defaults::request_timeout")]
    pub request_timeout: Seconds,
    /// Whether the gateway pings a relayed WebSocket's quiet side before `requestTimeout`
    /// ends the session, closing it only if it does not answer; default on. Without it a
    /// quiet socket is closed after `requestTimeout` (20 s by default), while ASP.NET Core
    /// pings every 2 minutes by default and browsers never do.
    #[serde(default = "defaults::web_socket_keep_alive")]
    pub web_socket_keep_alive: bool,
    /// Cookie-based affinity; default `Disabled`.
    #[serde(default)]
    pub cookie_based_affinity: Switch,
    /// The affinity cookie's name; default `ApplicationGatewayAffinity`.
    #[serde(default = "defaults::affinity_cookie_name")]
    pub affinity_cookie_name: String,
    /// Connection draining; default off.
    #[serde(default)]
    pub connection_draining: Option<ConnectionDraining>,
    /// Name of a custom probe; default a `GET /` probe with these settings' protocol and port.
    #[serde(default)]
    pub probe: Option<String>,
    /// Send the backend's own address as `Host` (for app services that want their name).
    #[serde(default)]
    pub pick_host_name_from_backend_address: bool,
    /// A fixed `Host` for backend requests (overrides the client's).
    #[serde(default)]
    pub host_name: Option<String>,
    /// PEM file of root certificates trusted for `Https` backends; default the web PKI roots.
    #[serde(default)]
    pub trusted_root_certificate: Option<String>,
    /// Overrides the pool's `loadBalancing`.
    #[serde(default)]
    pub load_balancing: Option<LoadBalancing>,
}

/// `Basic` (listener → pool + settings) or `PathBasedRouting` (listener → path map).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum RuleType {
    /// Every request of the listener goes to one pool with one settings.
    #[default]
    Basic,
    /// The request path picks a path rule of a `urlPathMap`.
    PathBasedRouting,
}

/// A request routing rule (`requestRoutingRules[]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RequestRoutingRule {
    /// Unique name.
    pub name: String,
    /// `Basic` or `PathBasedRouting`; default `Basic`.
    #[serde(default)]
    pub rule_type: RuleType,
    /// The listener this rule serves (each listener has exactly one rule).
    pub http_listener: String,
    /// Pool, for `Basic`.
    #[serde(default)]
    pub backend_address_pool: Option<String>,
    /// Settings, for `Basic`.
    #[serde(default)]
    pub backend_http_settings: Option<String>,
    /// Path map, for `PathBasedRouting`.
    #[serde(default)]
    pub url_path_map: Option<String>,
    /// 1-20000, unique; informative (a listener has one rule).
    #[serde(default)]
    pub priority: Option<u32>,
    /// Redirect instead of forwarding (a `Basic` rule with it needs no pool or settings).
    #[serde(default)]
    pub redirect_configuration: Option<String>,
    /// Header rewrites for the requests of this rule.
    #[serde(default)]
    pub rewrite_rule_set: Option<String>,
}

/// A URL path map (`urlPathMaps[]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UrlPathMap {
    /// Unique name.
    pub name: String,
    /// Pool for paths no rule matches.
    pub default_backend_address_pool: String,
    /// Settings for paths no rule matches.
    pub default_backend_http_settings: String,
    /// The path rules.
    #[serde(default)]
    pub path_rules: Vec<PathRule>,
}

/// One path rule of a path map.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PathRule {
    /// Unique within the map.
    pub name: String,
    /// Patterns: exact (`/api`) or prefix ending in `/*` (`/chat/*`).
    pub paths: Vec<PathPattern>,
    /// Pool for matching requests.
    pub backend_address_pool: String,
    /// Settings for matching requests.
    pub backend_http_settings: String,
}

/// `Http`, `Https` or `WebSocket`: how a probe checks a backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum ProbeProtocol {
    /// `GET path` over HTTP.
    #[default]
    Http,
    /// `GET path` over TLS.
    Https,
    /// A real WebSocket opening handshake (101 with the right accept), then close 1000.
    WebSocket,
}

/// What a good probe answer looks like.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProbeMatch {
    /// Status codes or ranges (`"200-399"`, `"204"`); default `["200-399"]`.
    #[serde(default = "defaults::status_codes")]
    pub status_codes: Vec<StatusRange>,
    /// A substring the body must contain (the first `limits.probeMaxBodyBytes` are read).
    #[serde(default)]
    pub body: Option<String>,
}

impl Default for ProbeMatch {
    fn default() -> Self {
        Self {
            status_codes: defaults::status_codes(),
            body: None,
        }
    }
}

/// A custom health probe (`probes[]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Probe {
    /// Unique name, referenced by backend settings.
    pub name: String,
    /// `Http`, `Https` or `WebSocket`; default `Http`.
    #[serde(default)]
    pub protocol: ProbeProtocol,
    /// `Host` to send; default the settings' host name, else the backend's address.
    #[serde(default)]
    pub host: Option<String>,
    /// Path to request; default `/`.
    #[serde(default = "defaults::probe_path")]
    pub path: String,
    /// Port to probe; default the backend's port.
    #[serde(default)]
    pub port: Option<u16>,
    /// Seconds between probes; default 30.
    #[serde(default = "defaults::probe_interval")]
    pub interval: Seconds,
    /// Seconds a probe may take; default 30.
    #[serde(default = "defaults::probe_timeout")]
    pub timeout: Seconds,
    /// Consecutive failures that take a backend out; default 3.
    #[serde(default = "defaults::unhealthy_threshold")]
    pub unhealthy_threshold: u32,
    /// Healthy answer; default status 200-399, any body.
    #[serde(default, rename = "match")]
    pub match_: ProbeMatch,
    /// If fewer backends are healthy than this, the first `minServers` count as healthy.
    #[serde(default)]
    pub min_servers: u32,
    /// Use the backend settings' host name as `Host`.
    #[serde(default)]
    pub pick_host_name_from_backend_http_settings: bool,
}

/// Limits of the gateway; every one has a default.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Limits {
    /// Most client connections open at once per bound address; more get 503. Default 10000.
    #[serde(default = "defaults::max_connections")]
    pub max_connections: usize,
    /// Largest request head (request line + headers) in bytes; larger gets 431. Default 64 KiB.
    #[serde(default = "defaults::max_header_bytes")]
    pub max_header_bytes: usize,
    /// Seconds a client has to send a request head; default 10.
    #[serde(default = "defaults::header_read_timeout")]
    pub header_read_timeout: Seconds,
    /// Largest request body in bytes; a larger `Content-Length` gets 413, a longer chunked
    /// body is cut. Default 100 MiB.
    #[serde(default = "defaults::max_request_body_bytes")]
    pub max_request_body_bytes: u64,
    /// Buffer per direction of a relayed WebSocket session; default 16 KiB.
    #[serde(default = "defaults::relay_buffer_bytes")]
    pub relay_buffer_bytes: usize,
    /// Relay upgraded WebSocket sessions on io_uring (Linux 6.1 or later; plain TCP to the
    /// backend, plain TCP or the listener's TLS from the client): one ring per worker thread
    /// submits every read and write of a loop turn in one system call. On by default: on a quiet machine it cost 0.85-0.97× nginx's CPU per relayed
    /// message where the epoll relay cost 1.01-1.07×, and kept 0.43× nginx's memory per idle
    /// session at 9,900 sessions (docs/benchmarks/gateway-2.md, relay changes 11-12). Where the kernel refuses
    /// io_uring (before Linux 6.1, or a seccomp filter that blocks it) the relay falls back
    /// to epoll and logs a warning; `false` keeps every session on epoll.
    #[serde(default = "defaults::relay_io_uring")]
    pub relay_io_uring: bool,
    /// Bytes of a probe answer's body that are read and matched; default 64 KiB.
    #[serde(default = "defaults::probe_max_body_bytes")]
    pub probe_max_body_bytes: usize,
    /// Seconds a relayed session gets to finish after one side ended or the gateway sent its
    /// close frames; default 5.
    #[serde(default = "defaults::close_grace")]
    pub close_grace: Seconds,
    /// Seconds the gateway waits on shutdown for sessions to end before closing them with
    /// 1001; default 30.
    #[serde(default = "defaults::shutdown_timeout")]
    pub shutdown_timeout: Seconds,
    /// Most concurrent HTTP/2 streams per client connection; default 100.
    #[serde(default = "defaults::http2_max_streams")]
    pub http2_max_streams: u32,
    /// Seconds between checks of the configuration file's modification time; default 1.
    #[serde(default = "defaults::reload_poll_interval")]
    pub reload_poll_interval: Seconds,
    /// Seconds an idle connection to a backend is kept for the next ordinary request; 0 opens
    /// a connection per request. Default 4: below the keep-alive timeouts of common servers
    /// (Node's 5 s), so that a backend rarely closes one just as it is reused.
    #[serde(default = "defaults::backend_keep_alive")]
    pub backend_keep_alive: Seconds,
    /// Most idle connections kept per backend; default 32.
    #[serde(default = "defaults::backend_max_idle")]
    pub backend_max_idle: usize,
    /// Most connections open at once from one client address, across every listener (an
    /// HTTP/2 connection's WebSocket sessions count too); more get 503. Peers listed in
    /// `trustedProxies` are exempt (they carry many clients). Default 1000.
    #[serde(default = "defaults::max_connections_per_client")]
    pub max_connections_per_client: usize,
    /// Backends tried for one request when a connection cannot be opened (before any byte of
    /// the request was sent); default 3, like nginx's `proxy_next_upstream` on `error`.
    #[serde(default = "defaults::backend_connect_attempts")]
    pub backend_connect_attempts: u32,
    /// Consecutive connect failures or 5xx answers after which a backend leaves the rotation
    /// for `outlierEjectionTime` without waiting for its probe (outlier ejection, as Envoy's
    /// `consecutive_5xx`, whose default is 5); 0 turns it off. Default 5.
    #[serde(default = "defaults::outlier_consecutive_failures")]
    pub outlier_consecutive_failures: u32,
    /// Seconds an ejected backend stays out of the rotation; default 30 (Envoy's
    /// `base_ejection_time`).
    #[serde(default = "defaults::outlier_ejection_time")]
    pub outlier_ejection_time: Seconds,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_connections: defaults::max_connections(),
            max_header_bytes: defaults::max_header_bytes(),
            header_read_timeout: defaults::header_read_timeout(),
            max_request_body_bytes: defaults::max_request_body_bytes(),
            relay_buffer_bytes: defaults::relay_buffer_bytes(),
            relay_io_uring: defaults::relay_io_uring(),
            probe_max_body_bytes: defaults::probe_max_body_bytes(),
            close_grace: defaults::close_grace(),
            shutdown_timeout: defaults::shutdown_timeout(),
            http2_max_streams: defaults::http2_max_streams(),
            reload_poll_interval: defaults::reload_poll_interval(),
            backend_keep_alive: defaults::backend_keep_alive(),
            backend_max_idle: defaults::backend_max_idle(),
            max_connections_per_client: defaults::max_connections_per_client(),
            backend_connect_attempts: defaults::backend_connect_attempts(),
            outlier_consecutive_failures: defaults::outlier_consecutive_failures(),
            outlier_ejection_time: defaults::outlier_ejection_time(),
        }
    }
}

/// The admin listener: `GET /metrics` (Prometheus text format) and `GET /healthz`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Admin {
    /// `host:port` to bind, e.g. `127.0.0.1:9090`. Keep it off public interfaces.
    pub address: SocketAddr,
    /// A secret every request must present as `Authorization: Bearer <token>` (RFC 6750
    /// section 2.1). Without it only loopback peers are answered, wherever it is bound.
    #[serde(default)]
    pub bearer_token: Option<String>,
}
