//! The backend-health view: every pool, settings and backend with its state, open work and
//! last probe, as [`crate::Gateway::health`] returns it and the admin listener serves it at
//! `GET /backend-health` in the shape of Application Gateway's backend health API
//! (`backendAddressPools[].backendHttpSettingsCollection[].servers[]` with `address`,
//! `health` and `healthProbeLog`), plus sockway's own fields.

use std::time::{Duration, UNIX_EPOCH};

use serde_json::{json, Value};

use crate::pool::ProbeReport;
use crate::state::Runtime;

/// Health of one backend of one (pool, settings) pair.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackendHealth {
    /// Pool name.
    pub pool: String,
    /// Settings name.
    pub settings: String,
    /// `host:port`.
    pub backend: String,
    /// The backend's id (its affinity cookie value).
    pub id: String,
    /// In the rotation by its probes.
    pub healthy: bool,
    /// Azure's server health values where they apply: `Unknown` (no probe has ended yet),
    /// `Up`, `Down`; and `Ejected` (its probe passes, but real traffic failed too often in a
    /// row: out of the rotation for a while, see `outlier.rs`).
    pub state: &'static str,
    /// Open requests and sessions.
    pub active: usize,
    /// Open WebSocket sessions.
    pub sessions: usize,
    /// How long it stays ejected, if it is.
    pub ejected_for: Option<Duration>,
    /// The latest probe, if one has ended.
    pub last_probe: Option<ProbeReport>,
}

/// Every backend's health in `runtime`, sorted by pool, settings and address.
pub fn collect(runtime: &Runtime) -> Vec<BackendHealth> {
    let mut out: Vec<BackendHealth> = runtime
        .upstreams
        .values()
        .flat_map(|u| {
            u.backends.iter().map(|b| {
                let last_probe = b.last_probe();
                let ejected_for = b.passive.ejected_for();
                let state = match (&last_probe, b.is_healthy(), ejected_for) {
                    (None, false, _) => "Unknown",
                    (_, false, _) => "Down",
                    (_, true, Some(_)) => "Ejected",
                    (_, true, None) => "Up",
                };
                BackendHealth {
                    pool: u.key.pool.clone(),
                    settings: u.key.settings.clone(),
                    backend: b.authority(),
                    id: b.id.clone(),
                    healthy: b.is_healthy(),
                    state,
                    active: b.active(),
                    sessions: b.stats.sessions.load(std::sync::atomic::Ordering::Relaxed),
                    ejected_for,
                    last_probe,
                }
            })
        })
        .collect();
    out.sort_by(|a, b| (&a.pool, &a.settings, &a.backend).cmp(&(&b.pool, &b.settings, &b.backend)));
    out
}

/// The JSON document of `GET /backend-health`.
pub fn to_json(health: &[BackendHealth]) -> Value {
    let mut pools: Vec<Value> = Vec::new();
    for (i, h) in health.iter().enumerate() {
        let new_pool = i == 0 || health[i - 1].pool != h.pool;
        if new_pool {
            pools.push(json!({
                "backendAddressPool": {"name": h.pool},
                "backendHttpSettingsCollection": [],
            }));
        }
        let Some(settings_list) = pools
            .last_mut()
            .and_then(|p| p["backendHttpSettingsCollection"].as_array_mut())
        else {
            continue;
        };
        if new_pool || health[i - 1].settings != h.settings {
            settings_list.push(json!({
                "backendHttpSettings": {"name": h.settings},
                "servers": [],
            }));
        }
        if let Some(servers) = settings_list
            .last_mut()
            .and_then(|s| s["servers"].as_array_mut())
        {
            servers.push(server(h));
        }
    }
    json!({ "backendAddressPools": pools })
}

fn server(h: &BackendHealth) -> Value {
    let log = match (&h.last_probe, h.ejected_for) {
        (_, Some(d)) if h.healthy => format!(
            "Ejected: failed too often in a row under real traffic; back in {:.0} s",
            d.as_secs_f64().ceil()
        ),
        (None, _) => "Unknown: no probe has ended yet".to_owned(),
        (Some(p), _) if p.ok => "Success: the probe passed".to_owned(),
        (Some(p), _) => format!("Failure: {}", p.reason),
    };
    let last_probe = h.last_probe.as_ref().map(|p| {
        json!({
            "ok": p.ok,
            "reason": p.reason,
            "at": p.at.duration_since(UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0),
        })
    });
    json!({
        "address": h.backend,
        "id": h.id,
        "health": h.state,
        "healthProbeLog": log,
        "inRotation": h.healthy && h.ejected_for.is_none(),
        "activeRequestsAndSessions": h.active,
        "sessions": h.sessions,
        "ejectedForSeconds": h.ejected_for.map(|d| d.as_secs_f64()),
        "lastProbe": last_probe,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(pool: &str, settings: &str, backend: &str, state: &'static str) -> BackendHealth {
        BackendHealth {
            pool: pool.into(),
            settings: settings.into(),
            backend: backend.into(),
            id: "0".into(),
            healthy: state == "Up",
            state,
            active: 0,
            sessions: 0,
            ejected_for: None,
            last_probe: (state != "Unknown").then(|| ProbeReport {
                ok: state == "Up",
                reason: if state == "Up" {
                    String::new()
                } else {
                    "status 503".into()
                },
                at: UNIX_EPOCH,
            }),
        }
    }

    #[test]
    fn groups_servers_by_pool_and_settings_like_azure() {
        let doc = to_json(&[
            entry("p1", "s1", "a:1", "Up"),
            entry("p1", "s1", "b:1", "Down"),
            entry("p1", "s2", "a:1", "Unknown"),
            entry("p2", "s1", "c:1", "Up"),
        ]);
        let pools = doc["backendAddressPools"].as_array().unwrap();
        assert_eq!(pools.len(), 2);
        assert_eq!(pools[0]["backendAddressPool"]["name"], "p1");
        let settings = pools[0]["backendHttpSettingsCollection"]
            .as_array()
            .unwrap();
        assert_eq!(settings.len(), 2);
        let servers = settings[0]["servers"].as_array().unwrap();
        assert_eq!(servers.len(), 2);
        assert_eq!(servers[1]["health"], "Down");
        assert_eq!(servers[1]["healthProbeLog"], "Failure: status 503");
        assert_eq!(servers[1]["lastProbe"]["ok"], false);
        assert_eq!(settings[1]["servers"][0]["health"], "Unknown");
        assert!(settings[1]["servers"][0]["lastProbe"].is_null());
    }
}
