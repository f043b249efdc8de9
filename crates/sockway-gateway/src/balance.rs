//! Picking a backend, as pure logic: which backends are in the rotation (healthy ones, or the
//! first `minServers` when too few are healthy, as Azure's `minServers` does), cookie affinity
//! (the cookie names a backend; used while that backend is in the rotation, else the pick
//! falls back to the policy) and the policies themselves: round robin, and least connections
//! (fewest open requests plus WebSocket sessions, which suits long-lived sockets).

use crate::config::LoadBalancing;

/// What the balancer needs to know about one backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackendView<'a> {
    /// The backend's stable id (the affinity cookie's value).
    pub id: &'a str,
    /// Whether probes say it is healthy.
    pub healthy: bool,
    /// Open requests and sessions on it now.
    pub active: usize,
}

/// The result of a pick.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pick {
    /// Index into the backends given.
    pub index: usize,
    /// Whether the affinity cookie decided it (then no new cookie is needed).
    pub by_affinity: bool,
}

/// Indices of the backends in the rotation: the healthy ones; if fewer than `min_servers`
/// are healthy, the first `min_servers` backends count as healthy too.
pub fn rotation(backends: &[BackendView<'_>], min_servers: usize) -> Vec<usize> {
    let healthy = backends.iter().filter(|b| b.healthy).count();
    backends
        .iter()
        .enumerate()
        .filter(|(i, b)| b.healthy || (healthy < min_servers && *i < min_servers))
        .map(|(i, _)| i)
        .collect()
}

/// Picks a backend, or `None` when none is in the rotation. `cursor` is a counter the caller
/// increments per pick (round robin position, and the tie-breaker for least connections).
pub fn pick(
    policy: LoadBalancing,
    backends: &[BackendView<'_>],
    min_servers: usize,
    affinity: Option<&str>,
    cursor: usize,
) -> Option<Pick> {
    let rotation = rotation(backends, min_servers);
    if rotation.is_empty() {
        return None;
    }
    if let Some(id) = affinity {
        if let Some(&index) = rotation.iter().find(|&&i| backends[i].id == id) {
            return Some(Pick {
                index,
                by_affinity: true,
            });
        }
    }
    let n = rotation.len();
    let index = match policy {
        LoadBalancing::RoundRobin => rotation[cursor % n],
        LoadBalancing::LeastConnections => {
            // Start at the cursor so ties rotate instead of always hitting the first.
            (0..n)
                .map(|k| rotation[(cursor + k) % n])
                .min_by_key(|&i| backends[i].active)
                .unwrap_or(rotation[0])
        }
    };
    Some(Pick {
        index,
        by_affinity: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn views(spec: &[(&'static str, bool, usize)]) -> Vec<BackendView<'static>> {
        spec.iter()
            .map(|&(id, healthy, active)| BackendView {
                id,
                healthy,
                active,
            })
            .collect()
    }

    #[test]
    fn round_robin_cycles_over_healthy_backends_only() {
        let b = views(&[("a", true, 0), ("b", false, 0), ("c", true, 0)]);
        let picks: Vec<usize> = (0..4)
            .map(|c| {
                pick(LoadBalancing::RoundRobin, &b, 0, None, c)
                    .unwrap()
                    .index
            })
            .collect();
        assert_eq!(picks, [0, 2, 0, 2]);
    }

    #[test]
    fn no_healthy_backend_means_no_pick() {
        let b = views(&[("a", false, 0), ("b", false, 0)]);
        assert_eq!(pick(LoadBalancing::RoundRobin, &b, 0, None, 0), None);
        assert_eq!(pick(LoadBalancing::RoundRobin, &[], 0, None, 0), None);
    }

    #[test]
    fn min_servers_treats_the_first_backends_as_healthy() {
        let b = views(&[("a", false, 0), ("b", false, 0), ("c", false, 0)]);
        assert_eq!(rotation(&b, 2), [0, 1]);
        // Enough healthy ones: minServers changes nothing.
        let b = views(&[("a", false, 0), ("b", true, 0), ("c", true, 0)]);
        assert_eq!(rotation(&b, 2), [1, 2]);
        // One healthy of two required: the first two join it.
        let b = views(&[("a", false, 0), ("b", false, 0), ("c", true, 0)]);
        assert_eq!(rotation(&b, 2), [0, 1, 2]);
    }

    #[test]
    fn least_connections_prefers_the_least_loaded_and_rotates_ties() {
        let b = views(&[("a", true, 5), ("b", true, 1), ("c", true, 3)]);
        for cursor in 0..3 {
            let p = pick(LoadBalancing::LeastConnections, &b, 0, None, cursor).unwrap();
            assert_eq!(p.index, 1);
        }
        let b = views(&[("a", true, 2), ("b", true, 2)]);
        let first = pick(LoadBalancing::LeastConnections, &b, 0, None, 0).unwrap();
        let second = pick(LoadBalancing::LeastConnections, &b, 0, None, 1).unwrap();
        assert_ne!(first.index, second.index);
    }

    #[test]
    fn affinity_sticks_while_the_backend_is_healthy_and_falls_back_otherwise() {
        let b = views(&[("a", true, 0), ("b", true, 0)]);
        let p = pick(LoadBalancing::RoundRobin, &b, 0, Some("b"), 0).unwrap();
        assert_eq!(
            p,
            Pick {
                index: 1,
                by_affinity: true
            }
        );
        let b = views(&[("a", true, 0), ("b", false, 0)]);
        let p = pick(LoadBalancing::RoundRobin, &b, 0, Some("b"), 1).unwrap();
        assert_eq!(
            p,
            Pick {
                index: 0,
                by_affinity: false
            }
        );
        // An unknown cookie value is ignored.
        let p = pick(LoadBalancing::RoundRobin, &b, 0, Some("zzz"), 0).unwrap();
        assert!(!p.by_affinity);
    }
}
