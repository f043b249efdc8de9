//! WebSockets over HTTP/2 (RFC 8441) for the client: open (or reuse) an HTTP/2 connection to
//! the origin, check that the server allows extended CONNECT, and open each socket as a
//! stream with `CONNECT` + `:protocol = websocket`.
//!
//! - [`pool`]: the per-origin connections and the task that drives each one.
//! - [`stream`]: a stream as `AsyncRead + AsyncWrite`, with HTTP/2 flow control.

pub(crate) mod pool;
pub(crate) mod stream;

use bytes::{Bytes, BytesMut};
use h2::client::{Connection, SendRequest};
use http::header::{HeaderName, HeaderValue, USER_AGENT};
use http::{Method, Request, Version};
use sockway_proto::deflate::{self, DeflateParams};
use sockway_proto::handshake::{self, Negotiated, RequestHeaders, RequestKind, ResponseError};
use sockway_proto::Role;

use super::dial::{open_transport, Alpn, Attempt, Connected, Transport};
use super::error::{ClientError, Phase};
use super::handshake::RequestOptions;
use super::info::ConnectionInfo;
use super::transport::ClientStream;
use super::version::HttpVersion;
use crate::WebSocket;
use pool::{ConnectionFacts, PoolKey, PooledConnection, StreamLease};
use stream::Http2Stream;

/// Per-stream receive window (RFC 9113 section 6.9.2): how much the server may send one
/// socket before the application reads it.
const STREAM_WINDOW: u32 = 1024 * 1024;
/// Connection receive window, a multiple of the stream window so that a few sockets the
/// application does not read cannot stall the others (each holds at most its stream window).
const CONNECTION_WINDOW: u32 = 16 * STREAM_WINDOW;

/// Header fields HTTP/2 forbids (RFC 9113 section 8.2.2); dropped from the application's extra
/// headers rather than sending a malformed request.
const CONNECTION_SPECIFIC: [&str; 5] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "upgrade",
];

/// What [`connect`] came to.
pub(crate) enum Http2Outcome {
    /// The socket is open on an HTTP/2 stream.
    Connected(Connected),
    /// With [`HttpVersion::Auto`], the origin has no WebSockets over HTTP/2: the caller
    /// should use the HTTP/1.1 upgrade, on this transport when one was opened (its ALPN chose
    /// `http/1.1`), else on a new connection.
    UseHttp1(Option<Transport>),
}

/// Connects over HTTP/2 when it can: on a pooled connection to the origin with room, else
/// on a new one. With [`HttpVersion::Auto`] an origin without WebSockets over HTTP/2 is
/// reported as [`Http2Outcome::UseHttp1`]; this module never speaks HTTP/1.1 itself.
pub(crate) async fn connect(attempt: &Attempt<'_>) -> Result<Http2Outcome, ClientError> {
    let settings = attempt.settings;
    let pool = &settings.pool;
    let key = PoolKey::new(attempt.target, settings.tls_digest());
    let auto = settings.http_version == HttpVersion::Auto;

    if let Some(connected) = on_pooled(attempt, &key).await? {
        return Ok(Http2Outcome::Connected(connected));
    }
    if auto && pool.refused(&key) {
        return Ok(Http2Outcome::UseHttp1(None));
    }
    // One connection opens at a time per origin; the others then share it.
    let opening = pool.opening_lock(&key);
    let guard = attempt
        .bounded(Phase::Connect, async { Ok(opening.lock().await) })
        .await?;
    if let Some(connected) = on_pooled(attempt, &key).await? {
        return Ok(Http2Outcome::Connected(connected));
    }
    if auto && pool.refused(&key) {
        drop(guard);
        return Ok(Http2Outcome::UseHttp1(None));
    }

    let transport = open_transport(attempt, if auto { Alpn::Both } else { Alpn::Http2 }).await?;
    if attempt.target.secure && transport.stream.alpn_protocol().as_deref() != Some(b"h2") {
        if auto {
            pool.remember_refusal(&key);
            drop(guard);
            return Ok(Http2Outcome::UseHttp1(Some(transport)));
        }
        return Err(ClientError::Http2Unavailable(
            "the server did not choose HTTP/2 (h2) through ALPN".into(),
        ));
    }
    let Transport {
        stream,
        local_addr,
        remote_addr,
        addresses,
    } = transport;
    let facts = ConnectionFacts {
        id: 0,
        local_addr,
        remote_addr,
        addresses,
        peer_certificates: stream.peer_certificates(),
    };
    let (send, connection) = attempt
        .bounded(Phase::Handshake, handshake(stream, attempt))
        .await?;
    if !send.is_extended_connect_protocol_enabled() {
        drop((send, connection));
        if auto {
            pool.remember_refusal(&key);
            drop(guard);
            tracing::debug!(url = %settings.url, "no WebSockets over HTTP/2 here; using HTTP/1.1");
            return Ok(Http2Outcome::UseHttp1(None));
        }
        return Err(ClientError::Http2Unavailable(
            "the server speaks HTTP/2 but does not allow WebSockets over it (no \
             SETTINGS_ENABLE_CONNECT_PROTOCOL, RFC 8441 section 3)"
                .into(),
        ));
    }
    let pooled = pool.insert(&key, send, connection, facts);
    drop(guard);
    let lease = pooled.try_lease().ok_or_else(|| {
        ClientError::Http2Unavailable(
            "the server allows no concurrent streams on a new HTTP/2 connection".into(),
        )
    })?;
    match open_socket(attempt, &pooled, lease).await {
        Ok(connected) => Ok(Http2Outcome::Connected(connected)),
        Err(OpenError::Connection(error)) => {
            pooled.retire();
            Err(error)
        }
        Err(OpenError::Stream(error)) => Err(error),
    }
}

/// Opens the socket on a pooled connection, if one has room; a connection that turns out
/// to be gone (closed, `GOAWAY`) is retired and the next one tried.
async fn on_pooled(attempt: &Attempt<'_>, key: &PoolKey) -> Result<Option<Connected>, ClientError> {
    while let Some((pooled, lease)) = attempt.settings.pool.checkout(key) {
        match open_socket(attempt, &pooled, lease).await {
            Ok(connected) => return Ok(Some(connected)),
            Err(OpenError::Connection(error)) => {
                tracing::debug!(%error, "pooled HTTP/2 connection is gone; trying another");
                pooled.retire();
            }
            Err(OpenError::Stream(error)) => return Err(error),
        }
    }
    Ok(None)
}

/// The HTTP/2 connection preface and SETTINGS exchange (RFC 9113 section 3.4) on `stream`.
/// Returns once the server's SETTINGS have been processed: a PING is sent right after the
/// preface, and the server's SETTINGS frame must precede its PONG, so when the PONG arrives
/// `SETTINGS_ENABLE_CONNECT_PROTOCOL` is known.
async fn handshake(
    stream: ClientStream,
    attempt: &Attempt<'_>,
) -> Result<(SendRequest<Bytes>, Connection<ClientStream, Bytes>), ClientError> {
    let max_header_list = u32::try_from(attempt.settings.max_response_head).unwrap_or(u32::MAX);
    let (send, mut connection) = h2::client::Builder::new()
        .initial_window_size(STREAM_WINDOW)
        .initial_connection_window_size(CONNECTION_WINDOW)
        .max_header_list_size(max_header_list)
        .enable_push(false)
        .handshake::<_, Bytes>(stream)
        .await
        .map_err(connection_error)?;
    let mut ping_pong = connection
        .ping_pong()
        .ok_or_else(|| ClientError::Http2Unavailable("HTTP/2 PING is unavailable".into()))?;
    tokio::select! {
        result = &mut connection => {
            let detail = match result {
                Ok(()) => "the server closed the connection".to_owned(),
                Err(error) => error.to_string(),
            };
            return Err(ClientError::Http2Unavailable(format!(
                "the server did not answer the HTTP/2 preface ({detail})"
            )));
        }
        pong = ping_pong.ping(h2::Ping::opaque()) => {
            pong.map_err(|e| ClientError::Http2Unavailable(format!(
                "the server did not answer the HTTP/2 preface ({e})"
            )))?;
        }
    }
    Ok((send, connection))
}

fn connection_error(error: h2::Error) -> ClientError {
    if error.is_io() {
        if let Some(io) = error.into_io() {
            return ClientError::from_io(io);
        }
        return ClientError::Reset(std::io::ErrorKind::ConnectionReset.into());
    }
    ClientError::InvalidResponse(format!("HTTP/2: {error}"))
}

/// Why a socket could not be opened on a connection.
enum OpenError {
    /// The connection is unusable; the request never reached the application (safe to retry
    /// on another connection, RFC 9113 section 8.7).
    Connection(ClientError),
    /// The server answered, or the stream failed: report it.
    Stream(ClientError),
}

/// Sends the extended CONNECT on `pooled` and checks the answer (RFC 8441 section 5).
async fn open_socket(
    attempt: &Attempt<'_>,
    pooled: &PooledConnection,
    lease: StreamLease,
) -> Result<Connected, OpenError> {
    let settings = attempt.settings;
    let options = attempt.request_options();
    let request = build_request(attempt, &options).map_err(OpenError::Stream)?;
    let send = attempt
        .bounded(Phase::Handshake, async {
            pooled.sender().ready().await.map_err(connection_error)
        })
        .await
        .map_err(OpenError::Connection)?;
    let mut send = send;
    let (response, send_stream) = send
        .send_request(request, false)
        .map_err(|e| OpenError::Connection(connection_error(e)))?;
    let response = attempt
        .bounded(Phase::Handshake, async {
            response.await.map_err(|e| {
                if e.is_go_away() || e.reason() == Some(h2::Reason::REFUSED_STREAM) {
                    ClientError::Reset(std::io::Error::new(std::io::ErrorKind::ConnectionReset, e))
                } else {
                    connection_error(e)
                }
            })
        })
        .await
        .map_err(|e| match e {
            ClientError::Reset(_) => OpenError::Connection(e),
            other => OpenError::Stream(other),
        })?;
    let (head, recv) = response.into_parts();
    let (negotiated, compression) =
        check_response(&head.status, &head.headers, &options).map_err(OpenError::Stream)?;
    let stream = Http2Stream::new(send_stream, recv, lease);
    let facts = stream.facts().clone();
    let info = ConnectionInfo {
        url: settings.url.clone(),
        local_addr: facts.local_addr,
        remote_addr: facts.remote_addr,
        addresses: facts.addresses,
        subprotocol: negotiated.subprotocol,
        extensions: negotiated.extensions,
        status: head.status,
        headers: head.headers,
        secure: attempt.target.secure,
        peer_certificates: facts.peer_certificates.clone(),
        connect_duration: attempt.started.elapsed(),
        http_version: Version::HTTP_2,
    };
    tracing::debug!(url = %info.url, remote = %info.remote_addr, http = "HTTP/2", connection = facts.id, elapsed = ?info.connect_duration, "connected");
    let socket = WebSocket::from_negotiated(
        ClientStream::Http2(stream),
        Role::Client,
        settings.websocket.clone(),
        BytesMut::new(),
        compression,
    );
    Ok((socket, info))
}

/// The extended CONNECT request (RFC 8441 section 5): `:method = CONNECT`,
/// `:protocol = websocket`, `:scheme`, `:authority` and `:path` from the URL, and the
/// WebSocket header fields (version 13, subprotocols, extensions, origin) plus the
/// application's headers.
fn build_request(
    attempt: &Attempt<'_>,
    options: &RequestOptions,
) -> Result<Request<()>, ClientError> {
    let target = attempt.target;
    let mut fields =
        RequestHeaders::extended_connect().subprotocols(options.subprotocols.iter().cloned());
    if let Some(origin) = &options.origin {
        fields = fields.origin(origin.clone());
    }
    if let Some(config) = &options.compression {
        fields = fields.extensions(deflate::client_offer(config).to_header_value());
    }
    let fixed = fields
        .build()
        .map_err(|e| ClientError::InvalidSetting(e.to_string()))?;
    let scheme = if target.secure { "https" } else { "http" };
    let authority = handshake::host_header_value(&target.host, target.explicit_port, target.secure);
    let uri = format!("{scheme}://{authority}{}", target.resource);
    let mut request = Request::builder()
        .method(Method::CONNECT)
        .version(Version::HTTP_2)
        .uri(uri)
        .extension(h2::ext::Protocol::from_static(
            handshake::WEBSOCKET_PROTOCOL,
        ))
        .body(())
        .map_err(|e| ClientError::InvalidSetting(format!("request target: {e}")))?;
    let headers = request.headers_mut();
    for (name, value) in fixed.iter() {
        headers.append(name.clone(), value.clone());
    }
    for (name, value) in options.headers.iter() {
        if !is_connection_specific(name) {
            headers.append(name.clone(), value.clone());
        }
    }
    if !headers.contains_key(USER_AGENT) {
        headers.insert(USER_AGENT, HeaderValue::from_static("sockway"));
    }
    Ok(request)
}

fn is_connection_specific(name: &HeaderName) -> bool {
    CONNECTION_SPECIFIC.contains(&name.as_str())
}

/// Checks the response to the extended CONNECT: a 2xx (RFC 8441 section 5), an offered
/// subprotocol, offered extensions, and a valid permessage-deflate answer.
fn check_response(
    status: &http::StatusCode,
    headers: &http::HeaderMap,
    options: &RequestOptions,
) -> Result<(Negotiated, Option<DeflateParams>), ClientError> {
    let offered: &[&str] = if options.compression.is_some() {
        &[deflate::EXTENSION_NAME]
    } else {
        &[]
    };
    let negotiated = handshake::validate_response(
        RequestKind::ExtendedConnect,
        *status,
        headers,
        "",
        &options.subprotocols,
        offered,
    )
    .map_err(|e| match e {
        ResponseError::Rejected { status } => ClientError::Rejected {
            status,
            headers: Box::new(headers.clone()),
        },
        other => ClientError::InvalidResponse(other.to_string()),
    })?;
    let compression = match &options.compression {
        Some(config) => deflate::confirm_response(&negotiated.extensions, config)
            .map_err(|e| ClientError::InvalidResponse(format!("permessage-deflate: {e}")))?,
        None => None,
    };
    Ok((negotiated, compression))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_specific_headers_are_dropped() {
        for name in CONNECTION_SPECIFIC {
            assert!(is_connection_specific(&HeaderName::from_static(name)));
        }
        assert!(!is_connection_specific(&HeaderName::from_static("cookie")));
    }
}
