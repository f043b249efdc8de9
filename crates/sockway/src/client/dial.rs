//! Dialing: one connect call's context ([`Attempt`]: settings, target, deadline), then
//! resolving the host, racing its addresses (RFC 8305 Happy Eyeballs) and running TLS with
//! ALPN (RFC 7301) for `wss://`. What comes out is a [`Transport`], ready for the HTTP/1.1
//! ([`super::h1`]) or HTTP/2 ([`super::h2`]) handshake.

use std::future::Future;
use std::net::SocketAddr;

use tokio::time::Instant;

use super::error::{ClientError, Phase};
use super::handshake::RequestOptions;
use super::happy_eyeballs::{self, SocketOptions};
use super::info::ConnectionInfo;
use super::settings::{request_headers, Settings};
use super::transport::ClientStream;
use super::url::Target;
use crate::WebSocket;

/// A connected socket and what is known about it.
pub(crate) type Connected = (WebSocket<ClientStream>, ConnectionInfo);

/// Which protocols ALPN offers on a `wss://` connection (RFC 7301 section 3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Alpn {
    /// `http/1.1` only.
    Http1,
    /// `h2` only.
    Http2,
    /// `h2`, then `http/1.1`.
    Both,
}

impl Alpn {
    /// The identifiers to offer, in order of preference.
    #[cfg(feature = "tls")]
    pub(crate) fn protocols(self) -> &'static [&'static [u8]] {
        match self {
            Alpn::Http1 => &[b"http/1.1"],
            Alpn::Http2 => &[b"h2"],
            Alpn::Both => &[b"h2", b"http/1.1"],
        }
    }
}

/// One connect call: its settings, target and deadline.
pub(crate) struct Attempt<'a> {
    pub settings: &'a Settings,
    pub target: &'a Target,
    pub started: Instant,
    pub deadline: Instant,
}

impl Attempt<'_> {
    /// Runs `step` until the connect deadline, reporting `phase` if it passes.
    pub(crate) async fn bounded<T>(
        &self,
        phase: Phase,
        step: impl Future<Output = Result<T, ClientError>>,
    ) -> Result<T, ClientError> {
        tokio::time::timeout_at(self.deadline, step)
            .await
            .map_err(|_| ClientError::Timeout {
                phase,
                after: self.settings.connect_timeout,
            })?
    }

    /// What the handshake request carries besides its fixed headers.
    pub(crate) fn request_options(&self) -> RequestOptions {
        let settings = self.settings;
        RequestOptions {
            subprotocols: settings.subprotocols.clone(),
            origin: settings.origin.clone(),
            headers: request_headers(settings, self.target.userinfo.as_ref()),
            max_response_head: settings.max_response_head,
            max_response_headers: settings.max_response_headers,
            compression: settings.compression,
        }
    }
}

/// A transport connection, ready for an HTTP handshake.
pub(crate) struct Transport {
    pub stream: ClientStream,
    pub local_addr: SocketAddr,
    pub remote_addr: SocketAddr,
    /// How many addresses were raced.
    pub addresses: usize,
}

/// Resolves, races the addresses and runs TLS (offering `alpn`) for `wss://`.
pub(crate) async fn open_transport(
    attempt: &Attempt<'_>,
    alpn: Alpn,
) -> Result<Transport, ClientError> {
    let (settings, target) = (attempt.settings, attempt.target);
    let addrs = match target.ip {
        Some(ip) => vec![SocketAddr::new(ip, target.port)],
        None => {
            let found = attempt
                .bounded(Phase::Resolve, async {
                    settings
                        .resolver
                        .0
                        .resolve(&target.host, target.port)
                        .await
                        .map_err(|e| ClientError::HostNotFound {
                            host: target.host.clone(),
                            detail: e.to_string(),
                        })
                })
                .await?;
            if found.is_empty() {
                return Err(ClientError::HostNotFound {
                    host: target.host.clone(),
                    detail: "no addresses".into(),
                });
            }
            found
        }
    };
    let addrs = happy_eyeballs::interleave(&addrs, settings.max_addresses);
    let options = SocketOptions {
        nodelay: settings.nodelay,
        send_buffer: settings.send_buffer,
        recv_buffer: settings.recv_buffer,
        local_address: settings.local_address,
    };
    let tcp = attempt
        .bounded(
            Phase::Connect,
            happy_eyeballs::race(&addrs, settings.attempt_delay, options),
        )
        .await?;
    let local_addr = tcp.local_addr().map_err(ClientError::Io)?;
    let remote_addr = tcp.peer_addr().map_err(ClientError::from_io)?;
    let stream = if target.secure {
        secure(attempt, tcp, alpn).await?
    } else {
        ClientStream::Plain(tcp)
    };
    Ok(Transport {
        stream,
        local_addr,
        remote_addr,
        addresses: addrs.len(),
    })
}

#[cfg(feature = "tls")]
async fn secure(
    attempt: &Attempt<'_>,
    tcp: tokio::net::TcpStream,
    alpn: Alpn,
) -> Result<ClientStream, ClientError> {
    let config = attempt.settings.tls.client_config(alpn.protocols())?;
    let tls = attempt
        .bounded(
            Phase::Tls,
            super::tls::connect(config, &attempt.target.host, tcp, alpn == Alpn::Http2),
        )
        .await?;
    Ok(ClientStream::Tls(Box::new(tls)))
}

#[cfg(not(feature = "tls"))]
async fn secure(
    _attempt: &Attempt<'_>,
    _tcp: tokio::net::TcpStream,
    _alpn: Alpn,
) -> Result<ClientStream, ClientError> {
    Err(ClientError::InvalidSetting(
        "wss:// needs sockway's `tls` feature, which this build lacks".into(),
    ))
}
