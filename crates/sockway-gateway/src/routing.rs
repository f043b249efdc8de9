//! Routing, as pure logic: which listener a request reached (by port and `Host`, for
//! multi-site listeners), which rule that listener has, and for path-based rules which path
//! rule matches.
//!
//! Path patterns follow the Azure URL path map: a pattern is exact (`/api`) or a prefix
//! ending in `/*` (`/chat/*` matches `/chat/` and everything under it). Matching ignores the
//! query and ASCII case (Azure's path rules are case-insensitive). An exact pattern beats a
//! prefix; among prefixes the longest wins; on a tie the rule listed first wins. No match
//! means the map's default pool and settings.

use std::collections::HashMap;

use crate::config::{GatewayConfig, PathPattern, RuleType};

/// A (pool, settings) pair: the unit that has backends, health and balancing state.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UpstreamKey {
    /// The backend pool's name.
    pub pool: String,
    /// The backend settings' name.
    pub settings: String,
}

/// One path rule, compiled.
#[derive(Debug, Clone)]
pub struct CompiledPathRule {
    /// The rule's name.
    pub name: String,
    /// Its patterns.
    pub patterns: Vec<PathPattern>,
    /// Where it sends requests.
    pub upstream: UpstreamKey,
}

/// What a listener's rule does.
#[derive(Debug, Clone)]
pub enum Target {
    /// Everything to one upstream.
    Basic(UpstreamKey),
    /// By path.
    PathMap {
        /// The path rules, in the order listed.
        rules: Vec<CompiledPathRule>,
        /// Where unmatched paths go.
        default: UpstreamKey,
    },
}

/// A listener with its rule.
#[derive(Debug, Clone)]
pub struct ListenerRoute {
    /// The listener's name.
    pub name: String,
    /// Host names (lower-case; `*.x` patterns kept as written); empty means any host.
    pub host_names: Vec<String>,
    /// The rule's name.
    pub rule: String,
    /// What the rule does.
    pub target: Target,
    /// The rule's `redirectConfiguration`: it answers with a redirect instead of forwarding.
    pub redirect: Option<String>,
    /// The rule's `rewriteRuleSet`.
    pub rewrite: Option<String>,
}

/// The route a request takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteMatch<'a> {
    /// The listener's name.
    pub listener: &'a str,
    /// The rule's name.
    pub rule: &'a str,
    /// The path rule's name, for path-based rules that matched one.
    pub path_rule: Option<&'a str>,
    /// Where the request goes.
    pub upstream: &'a UpstreamKey,
}

/// All listeners, by port.
#[derive(Debug, Clone, Default)]
pub struct RouteTable {
    ports: HashMap<u16, Vec<ListenerRoute>>,
}

impl RouteTable {
    /// Compiles the routes of a validated configuration.
    pub fn build(config: &GatewayConfig) -> RouteTable {
        let mut ports: HashMap<u16, Vec<ListenerRoute>> = HashMap::new();
        for rule in &config.request_routing_rules {
            let Some(listener) = config
                .http_listeners
                .iter()
                .find(|l| l.name == rule.http_listener)
            else {
                continue;
            };
            let target = match rule.rule_type {
                RuleType::Basic => Target::Basic(UpstreamKey {
                    pool: rule.backend_address_pool.clone().unwrap_or_default(),
                    settings: rule.backend_http_settings.clone().unwrap_or_default(),
                }),
                RuleType::PathBasedRouting => {
                    let Some(map) = config
                        .url_path_maps
                        .iter()
                        .find(|m| Some(&m.name) == rule.url_path_map.as_ref())
                    else {
                        continue;
                    };
                    Target::PathMap {
                        rules: map
                            .path_rules
                            .iter()
                            .map(|r| CompiledPathRule {
                                name: r.name.clone(),
                                patterns: r.paths.clone(),
                                upstream: UpstreamKey {
                                    pool: r.backend_address_pool.clone(),
                                    settings: r.backend_http_settings.clone(),
                                },
                            })
                            .collect(),
                        default: UpstreamKey {
                            pool: map.default_backend_address_pool.clone(),
                            settings: map.default_backend_http_settings.clone(),
                        },
                    }
                }
            };
            ports.entry(listener.port).or_default().push(ListenerRoute {
                name: listener.name.clone(),
                host_names: listener
                    .host_names
                    .iter()
                    .map(|h| h.to_ascii_lowercase())
                    .collect(),
                rule: rule.name.clone(),
                target,
                redirect: rule.redirect_configuration.clone(),
                rewrite: rule.rewrite_rule_set.clone(),
            });
        }
        RouteTable { ports }
    }

    /// Every upstream some route uses.
    pub fn upstreams(&self) -> Vec<UpstreamKey> {
        let mut all: Vec<UpstreamKey> = Vec::new();
        for route in self.ports.values().flatten() {
            if route.redirect.is_some() {
                continue;
            }
            match &route.target {
                Target::Basic(u) => all.push(u.clone()),
                Target::PathMap { rules, default } => {
                    all.push(default.clone());
                    all.extend(rules.iter().map(|r| r.upstream.clone()));
                }
            }
        }
        all.sort();
        all.dedup();
        all
    }

    /// The listener on `port` for `host` (the request's host without port): an exact host
    /// name first, then the most specific `*.domain` pattern ([`wildcard_matches`]), then the
    /// listener without host names. `None` when the port has no listener for that host.
    pub fn listener(&self, port: u16, host: Option<&str>) -> Option<&ListenerRoute> {
        let routes = self.ports.get(&port)?;
        let host = host.map(|h| h.trim_end_matches('.').to_ascii_lowercase());
        if let Some(host) = host.as_deref() {
            if let Some(route) = routes
                .iter()
                .find(|r| r.host_names.iter().any(|h| h == host))
            {
                return Some(route);
            }
            let wildcard = routes
                .iter()
                .flat_map(|r| r.host_names.iter().map(move |h| (r, h)))
                .filter_map(|(r, h)| {
                    let suffix = h.strip_prefix('*')?;
                    wildcard_matches(suffix, host).then_some((r, suffix.len()))
                })
                .max_by_key(|(_, len)| *len);
            if let Some((route, _)) = wildcard {
                return Some(route);
            }
        }
        routes.iter().find(|r| r.host_names.is_empty())
    }
}

/// Whether `host` (lower-case) matches a `*` pattern whose rest is `suffix` (`.example.com`):
/// the `*` stands for exactly one label, as for certificates (RFC 6125 section 6.4.3, RFC 9525
/// section 6.3), so `*.example.com` matches `a.example.com` but neither `example.com` nor
/// `a.b.example.com`.
pub fn wildcard_matches(suffix: &str, host: &str) -> bool {
    host.strip_suffix(suffix)
        .is_some_and(|label| !label.is_empty() && !label.contains('.'))
}

impl ListenerRoute {
    /// The route for `path` (the request path, without query).
    pub fn route<'a>(&'a self, path: &str) -> RouteMatch<'a> {
        let (path_rule, upstream) = match &self.target {
            Target::Basic(u) => (None, u),
            Target::PathMap { rules, default } => {
                let lower = path.to_ascii_lowercase();
                let mut best: Option<(&CompiledPathRule, (u8, usize))> = None;
                for rule in rules {
                    for pattern in &rule.patterns {
                        if pattern.matches(&lower)
                            && best.is_none_or(|(_, rank)| pattern.rank() > rank)
                        {
                            best = Some((rule, pattern.rank()));
                        }
                    }
                }
                match best {
                    Some((rule, _)) => (Some(rule.name.as_str()), &rule.upstream),
                    None => (None, default),
                }
            }
        };
        RouteMatch {
            listener: &self.name,
            rule: &self.rule,
            path_rule,
            upstream,
        }
    }
}

#[cfg(test)]
#[path = "routing_tests.rs"]
mod tests;
