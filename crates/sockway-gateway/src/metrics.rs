//! `/metrics` in the Prometheus text exposition format (version 0.0.4), served on the admin
//! listener: per backend the open sessions and requests, handshakes, bytes both ways, errors,
//! probe results and health; gateway-wide the responses by listener and status, refusals by
//! reason and reloads.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::pool::{Backend, Upstream};

/// Gateway-wide counters (per-backend ones live in [`crate::pool::BackendStats`]).
#[derive(Debug, Default)]
pub struct Metrics {
    responses: Mutex<BTreeMap<(String, u16), u64>>,
    refusals: Mutex<BTreeMap<&'static str, u64>>,
    /// Successful reloads.
    pub reloads_ok: AtomicU64,
    /// Reloads refused (invalid configuration, unusable certificate, port in use).
    pub reloads_failed: AtomicU64,
    /// WebSocket sessions closed by the idle limit or for an unanswered keep-alive ping.
    pub idle_closes: AtomicU64,
}

impl Metrics {
    /// Counts a response with `status` on `listener` (the listener set is bounded by the
    /// configuration and statuses by 100-999, so the map stays small).
    pub fn response(&self, listener: &str, status: u16) {
        if let Ok(mut map) = self.responses.lock() {
            *map.entry((listener.to_owned(), status)).or_default() += 1;
        }
    }

    /// Counts a refusal by a fixed reason label.
    pub fn refusal(&self, reason: &'static str) {
        if let Ok(mut map) = self.refusals.lock() {
            *map.entry(reason).or_default() += 1;
        }
    }

    /// Renders every metric; `idle` says how many kept-alive connections wait on a backend
    /// (the proxy's connection cache holds them).
    pub fn render<'a>(
        &self,
        upstreams: impl IntoIterator<Item = &'a Arc<Upstream>>,
        sessions: usize,
        idle: &dyn Fn(&Backend) -> u64,
    ) -> String {
        let mut out = String::new();
        fn family(out: &mut String, name: &str, kind: &str, help: &str) -> String {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
            name.to_owned()
        }
        let mut lines: Vec<String> = Vec::new();
        let upstreams: Vec<&Arc<Upstream>> = upstreams.into_iter().collect();
        type Getter<'g> = &'g dyn Fn(&Backend) -> u64;
        let per_backend: [(&str, &str, &str, Getter); 15] = [
            (
                "sockway_gateway_backend_healthy",
                "gauge",
                "1 if the backend is in the rotation by its probes.",
                &|b: &Backend| u64::from(b.is_healthy()),
            ),
            (
                "sockway_gateway_backend_ejected",
                "gauge",
                "1 while outlier ejection keeps the backend out of the rotation.",
                &|b: &Backend| u64::from(b.passive.is_ejected()),
            ),
            (
                "sockway_gateway_backend_ejections_total",
                "counter",
                "Times the backend was ejected for failing in a row under real traffic.",
                &|b: &Backend| b.passive.ejections(),
            ),
            (
                "sockway_gateway_backend_active",
                "gauge",
                "Open requests and WebSocket sessions on the backend.",
                &|b: &Backend| b.active() as u64,
            ),
            (
                "sockway_gateway_backend_sessions",
                "gauge",
                "Open WebSocket sessions on the backend.",
                &|b: &Backend| b.stats.sessions.load(Ordering::Relaxed) as u64,
            ),
            (
                "sockway_gateway_backend_requests_total",
                "counter",
                "Ordinary requests forwarded to the backend.",
                &|b: &Backend| b.stats.requests.load(Ordering::Relaxed),
            ),
            (
                "sockway_gateway_backend_reused_connections_total",
                "counter",
                "Ordinary requests sent on a kept-alive connection.",
                &|b: &Backend| b.stats.reused.load(Ordering::Relaxed),
            ),
            (
                "sockway_gateway_backend_idle_connections",
                "gauge",
                "Kept-alive connections to the backend waiting for a request.",
                idle,
            ),
            (
                "sockway_gateway_backend_handshakes_total",
                "counter",
                "WebSocket handshakes the backend accepted.",
                &|b: &Backend| b.stats.handshakes_ok.load(Ordering::Relaxed),
            ),
            (
                "sockway_gateway_backend_handshake_failures_total",
                "counter",
                "WebSocket handshakes that failed at the backend.",
                &|b: &Backend| b.stats.handshakes_failed.load(Ordering::Relaxed),
            ),
            (
                "sockway_gateway_backend_sent_bytes_total",
                "counter",
                "WebSocket bytes relayed to the backend.",
                &|b: &Backend| b.stats.bytes_to_backend.load(Ordering::Relaxed),
            ),
            (
                "sockway_gateway_backend_received_bytes_total",
                "counter",
                "WebSocket bytes relayed from the backend.",
                &|b: &Backend| b.stats.bytes_from_backend.load(Ordering::Relaxed),
            ),
            (
                "sockway_gateway_backend_errors_total",
                "counter",
                "Connect failures, timeouts and broken responses.",
                &|b: &Backend| b.stats.errors.load(Ordering::Relaxed),
            ),
            (
                "sockway_gateway_probe_success_total",
                "counter",
                "Good health probes.",
                &|b: &Backend| b.stats.probes_ok.load(Ordering::Relaxed),
            ),
            (
                "sockway_gateway_probe_failure_total",
                "counter",
                "Failed health probes.",
                &|b: &Backend| b.stats.probes_failed.load(Ordering::Relaxed),
            ),
        ];
        for (name, kind, help, get) in per_backend {
            lines.clear();
            let name = family(&mut out, name, kind, help);
            for u in &upstreams {
                for b in &u.backends {
                    lines.push(format!(
                        "{name}{{pool=\"{}\",settings=\"{}\",backend=\"{}\"}} {}",
                        escape(&u.key.pool),
                        escape(&u.key.settings),
                        escape(&b.authority()),
                        get(b)
                    ));
                }
            }
            for line in &lines {
                let _ = writeln!(out, "{line}");
            }
        }
        let name = family(
            &mut out,
            "sockway_gateway_sessions",
            "gauge",
            "Open WebSocket sessions through the gateway.",
        );
        let _ = writeln!(out, "{name} {sessions}");
        let name = family(
            &mut out,
            "sockway_gateway_responses_total",
            "counter",
            "Responses sent to clients, by listener and status.",
        );
        if let Ok(map) = self.responses.lock() {
            for ((listener, status), n) in map.iter() {
                let _ = writeln!(
                    out,
                    "{name}{{listener=\"{}\",status=\"{status}\"}} {n}",
                    escape(listener)
                );
            }
        }
        let name = family(
            &mut out,
            "sockway_gateway_refusals_total",
            "counter",
            "Requests the gateway refused itself, by reason.",
        );
        if let Ok(map) = self.refusals.lock() {
            for (reason, n) in map.iter() {
                let _ = writeln!(out, "{name}{{reason=\"{reason}\"}} {n}");
            }
        }
        let name = family(
            &mut out,
            "sockway_gateway_idle_closes_total",
            "counter",
            "WebSocket sessions closed after requestTimeout without traffic or for an unanswered keep-alive ping.",
        );
        let _ = writeln!(out, "{name} {}", self.idle_closes.load(Ordering::Relaxed));
        let name = family(
            &mut out,
            "sockway_gateway_reloads_total",
            "counter",
            "Configuration reloads, by result.",
        );
        let _ = writeln!(
            out,
            "{name}{{result=\"ok\"}} {}\n{name}{{result=\"failed\"}} {}",
            self.reloads_ok.load(Ordering::Relaxed),
            self.reloads_failed.load(Ordering::Relaxed)
        );
        out
    }
}

/// Escapes a label value (backslash, quote, newline).
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_with_escaped_labels() {
        let m = Metrics::default();
        m.response("web\"1", 200);
        m.response("web\"1", 200);
        m.refusal("ambiguous_length");
        let text = m.render([], 3, &|_| 0);
        assert!(
            text.contains(
                "sockway_gateway_responses_total{listener=\"web\\\"1\",status=\"200\"} 2"
            ),
            "{text}"
        );
        assert!(text.contains("sockway_gateway_refusals_total{reason=\"ambiguous_length\"} 1"));
        assert!(text.contains("sockway_gateway_sessions 3"));
        assert!(text.contains("# TYPE sockway_gateway_backend_healthy gauge"));
    }
}
