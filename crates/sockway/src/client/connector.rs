//! The connect sequence: parse the URL, resolve, race addresses (RFC 8305), TLS for `wss://`,
//! then the HTTP/1.1 upgrade (RFC 6455 section 4.1), all under one connect deadline, each step
//! reporting its own phase when the deadline passes.

use std::future::Future;

use sockway_proto::Role;
use tokio::time::Instant;

use super::builder::{request_headers, Settings};
use super::error::{ClientError, Phase};
use super::handshake::{self, RequestOptions};
use super::happy_eyeballs::{self, SocketOptions};
use super::info::ConnectionInfo;
use super::transport::ClientStream;
use super::url::Target;
use crate::WebSocket;

/// Connects with `settings`; dropping the future drops every socket it opened.
pub(crate) async fn connect(
    settings: &Settings,
) -> Result<(WebSocket<ClientStream>, ConnectionInfo), ClientError> {
    match &settings.cancel {
        Some(token) => tokio::select! {
            biased;
            () = token.cancelled() => Err(ClientError::Cancelled),
            result = connect_inner(settings) => result,
        },
        None => connect_inner(settings).await,
    }
}

async fn connect_inner(
    settings: &Settings,
) -> Result<(WebSocket<ClientStream>, ConnectionInfo), ClientError> {
    let started = Instant::now();
    let deadline = started + settings.connect_timeout;
    let target = Target::parse(&settings.url)?;

    let addrs = match target.ip {
        Some(ip) => vec![std::net::SocketAddr::new(ip, target.port)],
        None => {
            let found = bounded(deadline, settings, Phase::Resolve, async {
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
    };
    let tcp = bounded(
        deadline,
        settings,
        Phase::Connect,
        happy_eyeballs::race(&addrs, settings.attempt_delay, options),
    )
    .await?;
    let local_addr = tcp.local_addr().map_err(ClientError::Io)?;
    let remote_addr = tcp.peer_addr().map_err(ClientError::from_io)?;

    let mut stream = if target.secure {
        secure(settings, &target, tcp, deadline).await?
    } else {
        ClientStream::Plain(tcp)
    };

    let request = RequestOptions {
        subprotocols: settings.subprotocols.clone(),
        origin: settings.origin.clone(),
        headers: request_headers(settings, target.userinfo.as_ref()),
        max_response_head: settings.max_response_head,
        max_response_headers: settings.max_response_headers,
        compression: settings.compression,
    };
    let (head, negotiated, compression, leftover) = bounded(
        deadline,
        settings,
        Phase::Handshake,
        handshake::run(&mut stream, &target, &request),
    )
    .await?;

    let info = ConnectionInfo {
        url: settings.url.clone(),
        local_addr,
        remote_addr,
        addresses: addrs.len(),
        subprotocol: negotiated.subprotocol,
        extensions: negotiated.extensions,
        status: head.status,
        headers: head.headers,
        secure: target.secure,
        peer_certificates: stream.peer_certificates(),
        connect_duration: started.elapsed(),
    };
    tracing::debug!(url = %info.url, remote = %remote_addr, elapsed = ?info.connect_duration, "connected");
    let socket = WebSocket::from_negotiated(
        stream,
        Role::Client,
        settings.websocket.clone(),
        leftover,
        compression,
    );
    Ok((socket, info))
}

/// Runs `step` until the connect deadline, reporting `phase` if it passes.
async fn bounded<T>(
    deadline: Instant,
    settings: &Settings,
    phase: Phase,
    step: impl Future<Output = Result<T, ClientError>>,
) -> Result<T, ClientError> {
    tokio::time::timeout_at(deadline, step)
        .await
        .map_err(|_| ClientError::Timeout {
            phase,
            after: settings.connect_timeout,
        })?
}

#[cfg(feature = "tls")]
async fn secure(
    settings: &Settings,
    target: &Target,
    tcp: tokio::net::TcpStream,
    deadline: Instant,
) -> Result<ClientStream, ClientError> {
    let config = settings.tls.client_config()?;
    let tls = bounded(
        deadline,
        settings,
        Phase::Tls,
        super::tls::connect(config, &target.host, tcp),
    )
    .await?;
    Ok(ClientStream::Tls(Box::new(tls)))
}

#[cfg(not(feature = "tls"))]
async fn secure(
    _settings: &Settings,
    _target: &Target,
    _tcp: tokio::net::TcpStream,
    _deadline: Instant,
) -> Result<ClientStream, ClientError> {
    Err(ClientError::InvalidSetting(
        "wss:// needs sockway's `tls` feature, which this build lacks".into(),
    ))
}
