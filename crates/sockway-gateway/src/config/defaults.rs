//! Default values of the configuration, one function per field so serde can use them.
//! The probe and backend defaults are Azure Application Gateway's (its health probe
//! overview): probe every 30 s, time out after 30 s, unhealthy after 3
//! consecutive failures, healthy on status 200-399, request timeout 20 s, affinity cookie
//! `ApplicationGatewayAffinity`.

use std::net::{IpAddr, Ipv4Addr};

use super::values::{Seconds, StatusRange};

/// Default bind address of a listener: every IPv4 interface.
pub fn bind_address() -> IpAddr {
    IpAddr::V4(Ipv4Addr::UNSPECIFIED)
}

/// Default request timeout, seconds (Azure's default).
pub fn request_timeout() -> Seconds {
    Seconds::from_secs(20)
}

/// Default connection draining timeout, seconds.
pub fn drain_timeout() -> Seconds {
    Seconds::from_secs(30)
}

/// The affinity cookie's name, as Azure names it.
pub const AFFINITY_COOKIE: &str = "ApplicationGatewayAffinity";

/// Default affinity cookie name ([`AFFINITY_COOKIE`]).
pub fn affinity_cookie_name() -> String {
    AFFINITY_COOKIE.to_owned()
}

/// Default healthy status range.
pub fn status_codes() -> Vec<StatusRange> {
    vec![StatusRange {
        low: 200,
        high: 399,
    }]
}

/// Default probe path.
pub fn probe_path() -> String {
    "/".to_owned()
}

/// Default probe interval, seconds.
pub fn probe_interval() -> Seconds {
    Seconds::from_secs(30)
}

/// Default probe timeout, seconds.
pub fn probe_timeout() -> Seconds {
    Seconds::from_secs(30)
}

/// Default consecutive failures before a backend is unhealthy.
pub fn unhealthy_threshold() -> u32 {
    3
}

/// Default most open client connections per bound address.
pub fn max_connections() -> usize {
    10_000
}

/// Default largest request head, bytes.
pub fn max_header_bytes() -> usize {
    64 * 1024
}

/// Default time to receive a request head, seconds.
pub fn header_read_timeout() -> Seconds {
    Seconds::from_secs(10)
}

/// Default largest request body, bytes (100 MiB).
pub fn max_request_body_bytes() -> u64 {
    100 * 1024 * 1024
}

/// Default relay buffer per direction, bytes.
pub fn relay_buffer_bytes() -> usize {
    16 * 1024
}

/// Upgraded sessions (plain TCP, or TLS from the client) are relayed on io_uring where the
/// kernel allows it.
pub fn relay_io_uring() -> bool {
    true
}

/// Default bytes of a probe body read for matching.
pub fn probe_max_body_bytes() -> usize {
    64 * 1024
}

/// Default grace for a closing session, seconds.
pub fn close_grace() -> Seconds {
    Seconds::from_secs(5)
}

/// Default wait for sessions on shutdown, seconds.
pub fn shutdown_timeout() -> Seconds {
    Seconds::from_secs(30)
}

/// Default HTTP/2 concurrent streams per connection.
pub fn http2_max_streams() -> u32 {
    100
}

/// Default interval between checks of the configuration file's mtime, seconds.
pub fn reload_poll_interval() -> Seconds {
    Seconds::from_secs(1)
}

/// Default idle time of a kept-alive backend connection, seconds.
pub fn backend_keep_alive() -> Seconds {
    Seconds::from_secs(4)
}

/// Default most idle connections kept per backend.
pub fn backend_max_idle() -> usize {
    32
}

/// Default query parameters redacted in the access log: OAuth 2.0's authorization `code`
/// (RFC 6749 section 4.1.2), `access_token` (RFC 6750 section 2.3) and the common `token`.
pub fn redact_query_parameters() -> Vec<String> {
    ["access_token", "token", "code"].map(String::from).to_vec()
}

/// Default of `webSocketKeepAlive`: on, so applications that ping less often than
/// `requestTimeout` (ASP.NET Core's default is every 2 minutes) keep their sockets.
pub fn web_socket_keep_alive() -> bool {
    true
}

/// Default most connections from one client address: enough for a busy NAT, few enough that
/// one address cannot take every slot of `maxConnections`.
pub fn max_connections_per_client() -> usize {
    1000
}

/// Default backends tried when connections cannot be opened.
pub fn backend_connect_attempts() -> u32 {
    3
}

/// Default consecutive failures before outlier ejection (Envoy's `consecutive_5xx` default).
pub fn outlier_consecutive_failures() -> u32 {
    5
}

/// Default ejection time, seconds (Envoy's `base_ejection_time` default).
pub fn outlier_ejection_time() -> Seconds {
    Seconds::from_secs(30)
}
