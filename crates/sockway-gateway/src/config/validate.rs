//! Validation of a parsed configuration: every broken rule and every dangling reference is
//! reported with the exact path of the offending field (e.g.
//! `requestRoutingRules[1].backendAddressPool: no pool named "poolX" (known: pool1, pool2)`),
//! and all of them are collected, not just the first.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;

pub use super::issue::Issue;
use super::schema::*;
use super::values::Seconds;

/// Shortest duration accepted where fractions are allowed (probe interval and timeout,
/// request timeout), seconds.
pub const MIN_SECONDS: f64 = 0.05;
/// Longest request timeout and probe interval/timeout, seconds (Azure's 86400).
pub const MAX_SECONDS: f64 = 86_400.0;

/// Checks every rule; an empty list means the configuration is valid.
pub fn validate(config: &GatewayConfig) -> Vec<Issue> {
    let mut v = Validator::default();
    v.names(config);
    v.listeners(config);
    v.pools(config);
    v.settings(config);
    v.rules(config);
    v.path_maps(config);
    v.probes(config);
    v.limits(&config.limits);
    v.admin(config);
    v.access_log(&config.access_log);
    let mut issues = v.issues;
    issues.extend(super::validate_features::validate(config));
    issues
}

#[derive(Default)]
struct Validator {
    issues: Vec<Issue>,
}

fn known(names: &[&str]) -> String {
    if names.is_empty() {
        "none defined".to_owned()
    } else {
        format!("known: {}", names.join(", "))
    }
}

fn names_of<T>(items: &[T], name: impl Fn(&T) -> &str) -> Vec<&str> {
    items.iter().map(name).collect()
}

impl Validator {
    fn push(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.issues.push(Issue::new(path, message));
    }

    fn reference(&mut self, path: String, what: &str, name: &str, all: &[&str]) {
        if !all.contains(&name) {
            self.push(path, format!("no {what} named {name:?} ({})", known(all)));
        }
    }

    fn seconds(&mut self, path: String, value: Seconds, min: f64, max: f64) {
        let value = value.as_f64();
        if !(value >= min && value <= max) {
            self.push(path, format!("{value} is out of range {min}-{max} seconds"));
        }
    }

    fn port(&mut self, path: String, port: u16) {
        if port == 0 {
            self.push(path, "port must be 1-65535");
        }
    }

    fn file(&mut self, path: String, file: &str) {
        if let Err(e) = std::fs::metadata(file) {
            self.push(path, format!("cannot read {file:?}: {e}"));
        }
    }

    fn names(&mut self, c: &GatewayConfig) {
        let section = |this: &mut Self, key: &str, names: Vec<&str>| {
            let mut seen = HashMap::new();
            for (i, name) in names.iter().enumerate() {
                let path = format!("{key}[{i}].name");
                if !valid_name(name) {
                    this.push(
                        path.clone(),
                        format!(
                            "{name:?} is not a valid name (1-80 of letters, digits, '.', '_', '-')"
                        ),
                    );
                }
                if let Some(first) = seen.insert(*name, i) {
                    this.push(
                        path,
                        format!("duplicate name {name:?} (also {key}[{first}])"),
                    );
                }
            }
        };
        section(
            self,
            "httpListeners",
            names_of(&c.http_listeners, |x| &x.name),
        );
        section(
            self,
            "backendAddressPools",
            names_of(&c.backend_address_pools, |x| &x.name),
        );
        section(
            self,
            "backendHttpSettingsCollection",
            names_of(&c.backend_http_settings_collection, |x| &x.name),
        );
        section(
            self,
            "requestRoutingRules",
            names_of(&c.request_routing_rules, |x| &x.name),
        );
        section(self, "urlPathMaps", names_of(&c.url_path_maps, |x| &x.name));
        section(self, "probes", names_of(&c.probes, |x| &x.name));
    }

    fn listeners(&mut self, c: &GatewayConfig) {
        if c.http_listeners.is_empty() {
            self.push("httpListeners", "at least one listener is needed");
        }
        // port -> (first index, bind, protocol, catch-all index, host names)
        let mut by_port: HashMap<u16, (usize, IpAddr, Protocol, Option<usize>)> = HashMap::new();
        let mut hosts: HashMap<(u16, String), usize> = HashMap::new();
        for (i, l) in c.http_listeners.iter().enumerate() {
            let p = |f: &str| format!("httpListeners[{i}].{f}");
            self.port(p("port"), l.port);
            match l.protocol {
                Protocol::Https => {
                    for (field, file) in [
                        ("certificateFile", &l.certificate_file),
                        ("keyFile", &l.key_file),
                    ] {
                        match file {
                            Some(file) => self.file(p(field), file),
                            None => self.push(p(field), "an Https listener needs a PEM file here"),
                        }
                    }
                }
                Protocol::Http => {
                    if l.certificate_file.is_some() || l.key_file.is_some() {
                        self.push(
                            p("protocol"),
                            "certificateFile/keyFile are set but the protocol is Http; use Https",
                        );
                    }
                }
            }
            for (j, host) in l.host_names.iter().enumerate() {
                if !valid_host_pattern(host) {
                    self.push(
                        p(&format!("hostNames[{j}]")),
                        format!("{host:?} is not a host name or *.domain pattern"),
                    );
                }
                let key = (l.port, host.to_ascii_lowercase());
                if let Some(first) = hosts.insert(key, i) {
                    self.push(
                        p(&format!("hostNames[{j}]")),
                        format!(
                            "host name {host:?} on port {} is also served by httpListeners[{first}]",
                            l.port
                        ),
                    );
                }
            }
            let catch_all = l.host_names.is_empty().then_some(i);
            match by_port.get_mut(&l.port) {
                None => {
                    by_port.insert(l.port, (i, l.bind_address, l.protocol, catch_all));
                }
                Some((first, bind, protocol, other_catch_all)) => {
                    if *bind != l.bind_address || *protocol != l.protocol {
                        self.push(
                            p("port"),
                            format!(
                                "port {} is also used by httpListeners[{first}] with another \
                                 bindAddress or protocol; listeners sharing a port must match",
                                l.port
                            ),
                        );
                    }
                    match (catch_all, *other_catch_all) {
                        (Some(_), Some(other)) => self.push(
                            p("port"),
                            format!(
                                "duplicate listener port {}: httpListeners[{other}] also listens \
                                 there without hostNames (give one of them hostNames)",
                                l.port
                            ),
                        ),
                        (Some(_), None) => *other_catch_all = catch_all,
                        _ => {}
                    }
                }
            }
        }
    }

    fn pools(&mut self, c: &GatewayConfig) {
        for (i, pool) in c.backend_address_pools.iter().enumerate() {
            for (j, a) in pool.backend_addresses.iter().enumerate() {
                let p = |f: &str| format!("backendAddressPools[{i}].backendAddresses[{j}]{f}");
                match (&a.fqdn, &a.ip_address) {
                    (Some(_), Some(_)) => self.push(p(""), "set fqdn or ipAddress, not both"),
                    (None, None) => self.push(p(""), "needs fqdn or ipAddress"),
                    (Some(fqdn), None) => {
                        if !valid_host(fqdn) {
                            self.push(p(".fqdn"), format!("{fqdn:?} is not a DNS name"));
                        }
                    }
                    (None, Some(_)) => {}
                }
                if let Some(port) = a.port {
                    self.port(p(".port"), port);
                }
            }
        }
    }

    fn settings(&mut self, c: &GatewayConfig) {
        let probes = names_of(&c.probes, |x| &x.name);
        for (i, s) in c.backend_http_settings_collection.iter().enumerate() {
            let p = |f: &str| format!("backendHttpSettingsCollection[{i}].{f}");
            self.port(p("port"), s.port);
            self.seconds(
                p("requestTimeout"),
                s.request_timeout,
                MIN_SECONDS,
                MAX_SECONDS,
            );
            if !valid_name(&s.affinity_cookie_name) {
                self.push(
                    p("affinityCookieName"),
                    format!("{:?} is not a valid cookie name", s.affinity_cookie_name),
                );
            }
            if let Some(d) = &s.connection_draining {
                self.seconds(
                    p("connectionDraining.drainTimeoutInSec"),
                    d.drain_timeout_in_sec,
                    1.0,
                    3600.0,
                );
            }
            if let Some(probe) = &s.probe {
                self.reference(p("probe"), "probe", probe, &probes);
            }
            if let Some(host) = &s.host_name {
                if !valid_host(host) {
                    self.push(p("hostName"), format!("{host:?} is not a host name"));
                }
                if s.pick_host_name_from_backend_address {
                    self.push(
                        p("hostName"),
                        "set hostName or pickHostNameFromBackendAddress, not both",
                    );
                }
            }
            if let Some(file) = &s.trusted_root_certificate {
                if s.protocol == Protocol::Http {
                    self.push(p("trustedRootCertificate"), "only used with protocol Https");
                }
                self.file(p("trustedRootCertificate"), file);
            }
        }
    }

    fn rules(&mut self, c: &GatewayConfig) {
        let listeners = names_of(&c.http_listeners, |x| &x.name);
        let pools = names_of(&c.backend_address_pools, |x| &x.name);
        let settings = names_of(&c.backend_http_settings_collection, |x| &x.name);
        let maps = names_of(&c.url_path_maps, |x| &x.name);
        let mut used: HashMap<&str, usize> = HashMap::new();
        let mut priorities: HashMap<u32, usize> = HashMap::new();
        for (i, r) in c.request_routing_rules.iter().enumerate() {
            let p = |f: &str| format!("requestRoutingRules[{i}].{f}");
            self.reference(p("httpListener"), "listener", &r.http_listener, &listeners);
            if let Some(first) = used.insert(&r.http_listener, i) {
                self.push(
                    p("httpListener"),
                    format!(
                        "listener {:?} already has a rule (requestRoutingRules[{first}]); a \
                         listener takes one rule",
                        r.http_listener
                    ),
                );
            }
            match r.rule_type {
                // A redirecting rule forwards nothing (validate_features checks its target).
                RuleType::Basic if r.redirect_configuration.is_some() => {}
                RuleType::Basic => {
                    match &r.backend_address_pool {
                        Some(x) => self.reference(p("backendAddressPool"), "pool", x, &pools),
                        None => self.push(p("backendAddressPool"), "a Basic rule needs a pool"),
                    }
                    match &r.backend_http_settings {
                        Some(x) => self.reference(
                            p("backendHttpSettings"),
                            "backend settings",
                            x,
                            &settings,
                        ),
                        None => self.push(
                            p("backendHttpSettings"),
                            "a Basic rule needs backend settings",
                        ),
                    }
                    if r.url_path_map.is_some() {
                        self.push(
                            p("urlPathMap"),
                            "only PathBasedRouting rules take a path map",
                        );
                    }
                }
                RuleType::PathBasedRouting => {
                    match &r.url_path_map {
                        Some(x) => self.reference(p("urlPathMap"), "path map", x, &maps),
                        None => self.push(
                            p("urlPathMap"),
                            "a PathBasedRouting rule needs a urlPathMap",
                        ),
                    }
                    if r.backend_address_pool.is_some() || r.backend_http_settings.is_some() {
                        self.push(
                            p("ruleType"),
                            "a PathBasedRouting rule takes its pools and settings from the path \
                             map; remove backendAddressPool/backendHttpSettings",
                        );
                    }
                }
            }
            if let Some(priority) = r.priority {
                if !(1..=20_000).contains(&priority) {
                    self.push(p("priority"), format!("{priority} is out of range 1-20000"));
                } else if let Some(first) = priorities.insert(priority, i) {
                    self.push(
                        p("priority"),
                        format!("priority {priority} is also used by requestRoutingRules[{first}]"),
                    );
                }
            }
        }
        for (i, l) in c.http_listeners.iter().enumerate() {
            if !used.contains_key(l.name.as_str()) {
                self.push(
                    format!("httpListeners[{i}]"),
                    format!("no routing rule uses listener {:?}", l.name),
                );
            }
        }
    }

    fn path_maps(&mut self, c: &GatewayConfig) {
        let pools = names_of(&c.backend_address_pools, |x| &x.name);
        let settings = names_of(&c.backend_http_settings_collection, |x| &x.name);
        for (i, m) in c.url_path_maps.iter().enumerate() {
            let p = |f: &str| format!("urlPathMaps[{i}].{f}");
            self.reference(
                p("defaultBackendAddressPool"),
                "pool",
                &m.default_backend_address_pool,
                &pools,
            );
            self.reference(
                p("defaultBackendHttpSettings"),
                "backend settings",
                &m.default_backend_http_settings,
                &settings,
            );
            let mut rule_names = HashSet::new();
            let mut paths: HashMap<String, usize> = HashMap::new();
            for (j, r) in m.path_rules.iter().enumerate() {
                let p = |f: &str| format!("urlPathMaps[{i}].pathRules[{j}].{f}");
                if !rule_names.insert(r.name.as_str()) {
                    self.push(p("name"), format!("duplicate path rule name {:?}", r.name));
                }
                self.reference(
                    p("backendAddressPool"),
                    "pool",
                    &r.backend_address_pool,
                    &pools,
                );
                self.reference(
                    p("backendHttpSettings"),
                    "backend settings",
                    &r.backend_http_settings,
                    &settings,
                );
                if r.paths.is_empty() {
                    self.push(p("paths"), "a path rule needs at least one path");
                }
                for (k, path) in r.paths.iter().enumerate() {
                    let text = path.as_str();
                    if let Some(first) = paths.insert(text.to_ascii_lowercase(), j) {
                        self.push(
                            p(&format!("paths[{k}]")),
                            format!("path {text:?} is also in pathRules[{first}]"),
                        );
                    }
                }
            }
        }
    }

    fn probes(&mut self, c: &GatewayConfig) {
        for (i, probe) in c.probes.iter().enumerate() {
            let p = |f: &str| format!("probes[{i}].{f}");
            if !probe.path.starts_with('/') || probe.path.bytes().any(|b| b <= b' ' || b == 0x7f) {
                self.push(
                    p("path"),
                    format!("{:?} must start with '/' and have no spaces", probe.path),
                );
            }
            self.seconds(p("interval"), probe.interval, MIN_SECONDS, MAX_SECONDS);
            self.seconds(p("timeout"), probe.timeout, MIN_SECONDS, MAX_SECONDS);
            if !(1..=20).contains(&probe.unhealthy_threshold) {
                self.push(
                    p("unhealthyThreshold"),
                    format!("{} is out of range 1-20", probe.unhealthy_threshold),
                );
            }
            if let Some(host) = &probe.host {
                if !valid_host(host) {
                    self.push(p("host"), format!("{host:?} is not a host name"));
                }
            }
            if let Some(port) = probe.port {
                self.port(p("port"), port);
            }
            if probe.match_.status_codes.is_empty() {
                self.push(p("match.statusCodes"), "list at least one status or range");
            }
            if probe.match_.body.as_deref() == Some("") {
                self.push(
                    p("match.body"),
                    "an empty body match matches everything; remove it",
                );
            }
        }
    }

    fn limits(&mut self, l: &Limits) {
        let p = |f: &str| format!("limits.{f}");
        if l.max_connections == 0 {
            self.push(p("maxConnections"), "must be at least 1");
        }
        if !(8192..=1 << 20).contains(&l.max_header_bytes) {
            self.push(p("maxHeaderBytes"), "must be 8192-1048576");
        }
        self.seconds(
            p("headerReadTimeout"),
            l.header_read_timeout,
            MIN_SECONDS,
            3600.0,
        );
        if l.max_request_body_bytes == 0 {
            self.push(p("maxRequestBodyBytes"), "must be at least 1");
        }
        if !(1024..=16 << 20).contains(&l.relay_buffer_bytes) {
            self.push(p("relayBufferBytes"), "must be 1024-16777216");
        }
        if !(1..=16 << 20).contains(&l.probe_max_body_bytes) {
            self.push(p("probeMaxBodyBytes"), "must be 1-16777216");
        }
        self.seconds(p("closeGrace"), l.close_grace, MIN_SECONDS, 3600.0);
        self.seconds(p("shutdownTimeout"), l.shutdown_timeout, 0.0, 86_400.0);
        if l.http2_max_streams == 0 {
            self.push(p("http2MaxStreams"), "must be at least 1");
        }
        self.seconds(p("backendKeepAlive"), l.backend_keep_alive, 0.0, 3600.0);
        if l.backend_max_idle > 10_000 {
            self.push(p("backendMaxIdle"), "must be 0-10000");
        }
        if l.max_connections_per_client == 0 {
            self.push(p("maxConnectionsPerClient"), "must be at least 1");
        }
        if !(1..=20).contains(&l.backend_connect_attempts) {
            self.push(p("backendConnectAttempts"), "must be 1-20");
        }
        if l.outlier_consecutive_failures > 1000 {
            self.push(p("outlierConsecutiveFailures"), "must be 0-1000");
        }
        self.seconds(
            p("outlierEjectionTime"),
            l.outlier_ejection_time,
            MIN_SECONDS,
            3600.0,
        );
        self.seconds(
            p("reloadPollInterval"),
            l.reload_poll_interval,
            MIN_SECONDS,
            3600.0,
        );
    }

    fn admin(&mut self, c: &GatewayConfig) {
        let Some(admin) = &c.admin else { return };
        let port = admin.address.port();
        if let Some(i) = c.http_listeners.iter().position(|l| l.port == port) {
            self.push(
                "admin.address",
                format!("port {port} is also httpListeners[{i}]'s port"),
            );
        }
        if let Some(token) = &admin.bearer_token {
            // RFC 6750 section 2.1's b64token, long enough not to be guessed.
            let b64token = token.trim_end_matches('=').bytes().all(|b| {
                b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/')
            });
            if !(16..=4096).contains(&token.len()) || !b64token {
                self.push(
                    "admin.bearerToken",
                    "must be 16-4096 characters of A-Z a-z 0-9 - . _ ~ + / (optionally ending in =)",
                );
            }
        }
    }

    fn access_log(&mut self, a: &AccessLog) {
        if a.redact_query_parameters.len() > 100 {
            self.push("accessLog.redactQueryParameters", "at most 100 names");
        }
        for (i, name) in a.redact_query_parameters.iter().enumerate() {
            if !(1..=256).contains(&name.len()) {
                self.push(
                    format!("accessLog.redactQueryParameters[{i}]"),
                    "must be 1-256 characters",
                );
            }
        }
    }
}

fn valid_name(name: &str) -> bool {
    (1..=80).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// A DNS name or an IP literal, without port.
pub(crate) fn valid_host(host: &str) -> bool {
    if host.parse::<IpAddr>().is_ok() {
        return true;
    }
    (1..=253).contains(&host.len())
        && host.split('.').all(|label| {
            (1..=63).contains(&label.len())
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

fn valid_host_pattern(host: &str) -> bool {
    match host.strip_prefix("*.") {
        Some(rest) => valid_host(rest) && rest.parse::<IpAddr>().is_err(),
        None => valid_host(host),
    }
}

#[cfg(test)]
#[path = "validate_tests.rs"]
mod tests;
