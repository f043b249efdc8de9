//! Connection slots: what a client connection (or a WebSocket session on an HTTP/2
//! connection) holds while it is open, counted against `limits.maxConnections` per bound
//! address and `limits.maxConnectionsPerClient` per client address.
//!
//! On HTTP/1.1 a WebSocket session is its connection, so the connection's slot covers it.
//! On HTTP/2 many sessions share one connection (extended CONNECT, RFC 8441 section 4), so
//! each session takes a slot of its own ([`ConnectionSlot::another`]): a client cannot open
//! `http2MaxStreams` sessions for the price of one connection.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// The client connections open on one bound address, WebSocket sessions included, counted
/// against `limits.maxConnections`.
#[derive(Debug, Default)]
pub struct OpenConnections(AtomicUsize);

impl OpenConnections {
    fn try_take(&self, max: usize) -> bool {
        self.0
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max).then_some(n + 1)
            })
            .is_ok()
    }

    fn release(&self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Connections open per client address, gateway-wide. An address has an entry only while it
/// has a connection open, so the map is bounded by the open connections.
#[derive(Debug, Default)]
pub struct PerClient(Mutex<HashMap<IpAddr, usize>>);

impl PerClient {
    /// Connections open from `ip` now.
    #[cfg(test)]
    pub fn count(&self, ip: IpAddr) -> usize {
        self.0
            .lock()
            .map(|m| m.get(&ip).copied().unwrap_or(0))
            .unwrap_or(0)
    }

    fn try_take(&self, ip: IpAddr, max: usize) -> bool {
        let Ok(mut map) = self.0.lock() else {
            return true;
        };
        let n = map.entry(ip).or_insert(0);
        if *n >= max {
            if *n == 0 {
                map.remove(&ip);
            }
            return false;
        }
        *n += 1;
        true
    }

    fn release(&self, ip: IpAddr) {
        if let Ok(mut map) = self.0.lock() {
            if let Some(n) = map.get_mut(&ip) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    map.remove(&ip);
                }
            }
        }
    }
}

/// Which limit refused a slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Full {
    /// `limits.maxConnections` of the bound address.
    Address,
    /// `limits.maxConnectionsPerClient` of the client's address.
    Client,
}

impl Full {
    /// The `_refusals_total` reason.
    pub fn reason(self) -> &'static str {
        match self {
            Full::Address => "too_many_connections",
            Full::Client => "too_many_client_connections",
        }
    }

    /// The text of the 503 a client gets.
    pub fn message(self) -> &'static str {
        match self {
            Full::Address => "the gateway has too many open connections; try again later",
            Full::Client => {
                "too many open connections from your address (limits.maxConnectionsPerClient)"
            }
        }
    }
}

/// The limits a slot is taken under.
#[derive(Debug, Clone, Copy)]
pub struct SlotLimits {
    /// `limits.maxConnections`.
    pub per_address: usize,
    /// `limits.maxConnectionsPerClient`; `None` for an exempt (trusted proxy) peer.
    pub per_client: Option<usize>,
}

/// One connection's (or HTTP/2 session's) place under the limits, given back when dropped.
#[derive(Debug)]
pub struct ConnectionSlot {
    open: Arc<OpenConnections>,
    client: Option<(Arc<PerClient>, IpAddr)>,
}

impl ConnectionSlot {
    /// A slot for a connection from `ip`, if both limits allow one. After a reload lowers a
    /// limit, what is open stays; new connections wait until enough have ended.
    pub fn take(
        open: &Arc<OpenConnections>,
        clients: &Arc<PerClient>,
        ip: IpAddr,
        limits: SlotLimits,
    ) -> Result<ConnectionSlot, Full> {
        if !open.try_take(limits.per_address) {
            return Err(Full::Address);
        }
        let client = match limits.per_client {
            None => None,
            Some(max) if clients.try_take(ip, max) => Some((clients.clone(), ip)),
            Some(_) => {
                open.release();
                return Err(Full::Client);
            }
        };
        Ok(ConnectionSlot {
            open: open.clone(),
            client,
        })
    }

    /// One more slot from the same bound address and client, for a WebSocket session on an
    /// HTTP/2 connection.
    pub fn another(&self, limits: SlotLimits) -> Result<ConnectionSlot, Full> {
        let limits = SlotLimits {
            per_client: self.client.as_ref().and(limits.per_client),
            ..limits
        };
        match &self.client {
            Some((clients, ip)) => ConnectionSlot::take(&self.open, clients, *ip, limits),
            None => ConnectionSlot::take(
                &self.open,
                &Arc::default(),
                IpAddr::from([0, 0, 0, 0]),
                limits,
            ),
        }
    }
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        self.open.release();
        if let Some((clients, ip)) = &self.client {
            clients.release(*ip);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const IP: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

    fn limits(per_address: usize, per_client: Option<usize>) -> SlotLimits {
        SlotLimits {
            per_address,
            per_client,
        }
    }

    #[test]
    fn per_client_limit_refuses_and_gives_back() {
        let open = Arc::new(OpenConnections::default());
        let clients = Arc::new(PerClient::default());
        let a = ConnectionSlot::take(&open, &clients, IP, limits(10, Some(2))).unwrap();
        let b = a.another(limits(10, Some(2))).unwrap();
        assert_eq!(
            ConnectionSlot::take(&open, &clients, IP, limits(10, Some(2))).unwrap_err(),
            Full::Client
        );
        let other = IpAddr::from([10, 0, 0, 1]);
        let c = ConnectionSlot::take(&open, &clients, other, limits(10, Some(2))).unwrap();
        drop((a, b, c));
        assert_eq!(clients.count(IP), 0);
        assert!(clients.0.lock().unwrap().is_empty(), "no entry left behind");
        assert_eq!(open.0.load(Ordering::Acquire), 0);
    }

    #[test]
    fn address_limit_counts_http2_sessions_and_exempt_peers() {
        let open = Arc::new(OpenConnections::default());
        let clients = Arc::new(PerClient::default());
        let conn = ConnectionSlot::take(&open, &clients, IP, limits(2, None)).unwrap();
        let session = conn.another(limits(2, Some(1))).unwrap();
        assert_eq!(conn.another(limits(2, Some(1))).unwrap_err(), Full::Address);
        assert_eq!(clients.count(IP), 0, "an exempt peer is not counted");
        drop(session);
        assert!(conn.another(limits(2, None)).is_ok());
    }
}
