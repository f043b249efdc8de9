//! Server-Sent Events (`TransportProtocols.md`, "Server-Sent Events"; the WHATWG HTML event
//! stream format), as ASP.NET Core writes them.
//!
//! The response is `text/event-stream`, uncached and not compressed; it opens with a comment
//! line `:\r\n` (ASP.NET Core writes it so that browsers fire `open` at once), then carries
//! each frame as one unnamed event: a `data: ` line per line of the frame (a `\r` before a
//! `\n` dropped), then a blank line. The stream ends when the hub closes the connection; when
//! the client goes away the connection is removed and the hub sees its inbound channel close.

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use futures_util::stream;
use http::header::{CACHE_CONTROL, CONTENT_ENCODING, PRAGMA};
use http::{HeaderValue, Request, Response, StatusCode};
use http_body_util::{BodyExt as _, StreamBody};
use hyper::body::Frame;

use super::{connection_info, lookup, not_offered, refusal, BoxError, HubBody};
use crate::connections::{Connection, ConnectionStore};
use crate::link::{OutboundLease, TransportKind};
use crate::service::HubShared;

/// Writes `frame` as one event.
pub(crate) fn write_event(frame: &[u8], out: &mut BytesMut) {
    if frame.is_empty() {
        out.extend_from_slice(b"\r\n");
        return;
    }
    for line in frame.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        out.extend_from_slice(b"data: ");
        out.extend_from_slice(line);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
}

/// Removes the connection when the event stream is dropped: the client went away or the hub
/// closed the connection.
struct Attached {
    connection: Arc<Connection>,
    store: ConnectionStore,
    number: u64,
}

impl Drop for Attached {
    fn drop(&mut self) {
        self.connection.detach(self.number, false);
        self.store.remove(&self.connection);
    }
}

struct Stream {
    attached: Attached,
    outbound: Option<OutboundLease>,
    preamble: bool,
}

/// Answers a `GET` with `Accept: text/event-stream`.
pub(crate) fn start<B>(
    shared: &HubShared,
    request: Request<B>,
    user: Option<String>,
) -> Response<HubBody> {
    let connection = match lookup(shared, request.uri()) {
        Ok(connection) => connection,
        Err(unknown) => return unknown.response(),
    };
    if !shared.offers(TransportKind::ServerSentEvents) {
        return not_offered(TransportKind::ServerSentEvents);
    }
    let number = match connection.try_attach(TransportKind::ServerSentEvents) {
        Ok(number) => number,
        Err(refused) => return refusal(refused),
    };
    let info = connection_info(&connection, TransportKind::ServerSentEvents, user, &request);
    shared.start(&connection, info);
    let state = Stream {
        attached: Attached {
            connection,
            store: shared.store.clone(),
            number,
        },
        outbound: None,
        preamble: true,
    };
    let events = stream::unfold(state, next_chunk);
    let body = StreamBody::new(events).boxed_unsync();
    let mut response = Response::new(body);
    *response.status_mut() = StatusCode::OK;
    let headers = response.headers_mut();
    headers.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache,no-store"));
    headers.insert(PRAGMA, HeaderValue::from_static("no-cache"));
    headers.insert(CONTENT_ENCODING, HeaderValue::from_static("identity"));
    response
}

type Chunk = Result<Frame<Bytes>, BoxError>;

async fn next_chunk(mut state: Stream) -> Option<(Chunk, Stream)> {
    if state.preamble {
        state.preamble = false;
        return Some((Ok(Frame::data(Bytes::from_static(b":\r\n"))), state));
    }
    let connection = state.attached.connection.clone();
    let outbound = match state.outbound.as_mut() {
        Some(outbound) => outbound,
        None => {
            let guard = tokio::select! {
                guard = connection.outbound.lease() => guard,
                () = connection.ended() => return None,
            };
            state.outbound.insert(guard)
        }
    };
    let first = tokio::select! {
        frame = outbound.recv() => frame?,
        () = connection.ended() => return None,
    };
    let mut chunk = BytesMut::new();
    write_event(&first, &mut chunk);
    while let Some(next) = outbound.try_recv() {
        write_event(&next, &mut chunk);
    }
    Some((Ok(Frame::data(chunk.freeze())), state))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(frame: &[u8]) -> Vec<u8> {
        let mut out = BytesMut::new();
        write_event(frame, &mut out);
        out.to_vec()
    }

    #[test]
    fn each_line_becomes_a_data_line_and_a_blank_line_ends_the_event() {
        assert_eq!(event(b"{}\x1e"), b"data: {}\x1e\r\n\r\n");
        assert_eq!(
            event(b"a\r\nb\nc"),
            b"data: a\r\ndata: b\r\ndata: c\r\n\r\n"
        );
        assert_eq!(event(b"a\n"), b"data: a\r\ndata: \r\n\r\n");
        assert_eq!(event(b""), b"\r\n");
    }
}
