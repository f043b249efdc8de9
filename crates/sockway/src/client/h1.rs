//! The HTTP/1.1 upgrade (RFC 6455 section 4.1) of a client connection, on a dialed
//! [`Transport`]. A sibling of [`super::h2`]: the connector chooses between them.

use http::Version;
use sockway_proto::Role;

use super::dial::{open_transport, Alpn, Attempt, Connected, Transport};
use super::error::Phase;
use super::handshake;
use super::info::ConnectionInfo;
use super::ClientError;
use crate::WebSocket;

/// The HTTP/1.1 upgrade (RFC 6455 section 4.1) on `transport`, or on a new connection that
/// offers only `http/1.1` through ALPN.
pub(crate) async fn connect(
    attempt: &Attempt<'_>,
    transport: Option<Transport>,
) -> Result<Connected, ClientError> {
    let settings = attempt.settings;
    let transport = match transport {
        Some(transport) => transport,
        None => open_transport(attempt, Alpn::Http1).await?,
    };
    let Transport {
        mut stream,
        local_addr,
        remote_addr,
        addresses,
    } = transport;
    let request = attempt.request_options();
    let (head, negotiated, compression, leftover) = attempt
        .bounded(
            Phase::Handshake,
            handshake::run(&mut stream, attempt.target, &request),
        )
        .await?;
    let info = ConnectionInfo {
        url: settings.url.clone(),
        local_addr,
        remote_addr,
        addresses,
        subprotocol: negotiated.subprotocol,
        extensions: negotiated.extensions,
        status: head.status,
        headers: head.headers,
        secure: attempt.target.secure,
        peer_certificates: stream.peer_certificates(),
        connect_duration: attempt.started.elapsed(),
        http_version: Version::HTTP_11,
    };
    tracing::debug!(url = %info.url, remote = %remote_addr, http = "HTTP/1.1", elapsed = ?info.connect_duration, "connected");
    let socket = WebSocket::from_negotiated(
        stream,
        Role::Client,
        settings.websocket.clone(),
        leftover,
        compression,
    );
    Ok((socket, info))
}
