//! Long polling (`TransportProtocols.md`, "Long Polling"), as ASP.NET Core runs it.
//!
//! - The first poll starts the hub and answers 200 with no body at once.
//! - A later poll waits for frames: what is queued by then goes out together (200,
//!   `application/octet-stream`), up to `HttpOptions::max_poll_bytes`; after the poll
//!   timeout (90 s) it answers 200 with no body.
//! - A new poll while one waits ends the waiting one with 204.
//! - Once the hub has closed the connection and every frame is out, the next poll gets 204 and
//!   the connection is gone.
//! - `DELETE ?id=` answers 202, ends the waiting poll with 204 and removes the connection; on
//!   a connection of another transport it gets 400.

use bytes::BytesMut;
use http::{Request, Response, StatusCode, Uri};

use super::{connection_info, full, lookup, no_cache, not_offered, refusal, text, HubBody};
use crate::connections::Connection;
use crate::link::TransportKind;
use crate::service::HubShared;

/// Answers a poll (`GET` that is neither a WebSocket nor an event stream).
pub(crate) async fn poll<B>(
    shared: &HubShared,
    request: Request<B>,
    user: Option<String>,
) -> Response<HubBody> {
    let mut response = poll_inner(shared, request, user).await;
    no_cache(response.headers_mut());
    response
}

async fn poll_inner<B>(
    shared: &HubShared,
    request: Request<B>,
    user: Option<String>,
) -> Response<HubBody> {
    let connection = match lookup(shared, request.uri()) {
        Ok(connection) => connection,
        Err(unknown) => return unknown.response(),
    };
    if !shared.offers(TransportKind::LongPolling) {
        return not_offered(TransportKind::LongPolling);
    }
    let number = match connection.try_attach(TransportKind::LongPolling) {
        Ok(number) => number,
        Err(refused) => return refusal(refused),
    };
    // Marks the poll over however it ends, the client going away included, so that the
    // disconnect timeout counts from then.
    let _attached = Attached {
        connection: &connection,
        number,
    };
    let info = connection_info(&connection, TransportKind::LongPolling, user, &request);
    if shared.start(&connection, info) {
        return full(StatusCode::OK, "application/octet-stream", "");
    }
    let outcome = {
        // The poll this one replaces lets go of the queue as soon as it sees the new number.
        let taken = tokio::select! {
            guard = connection.outbound.lease() => Some(guard),
            () = connection.ended() => None,
            () = connection.superseded(number) => None,
        };
        match taken {
            None => Outcome::Superseded,
            Some(mut outbound) => {
                tokio::select! {
                    biased;
                    () = connection.ended() => Outcome::Superseded,
                    () = connection.superseded(number) => Outcome::Superseded,
                    frame = outbound.recv() => match frame {
                        None => Outcome::HubClosed,
                        Some(first) => {
                            let mut body = BytesMut::from(&first[..]);
                            while body.len() < shared.options.max_poll_bytes {
                                let Some(next) = outbound.try_recv() else {
                                    break;
                                };
                                body.extend_from_slice(&next);
                            }
                            Outcome::Data(body.freeze())
                        }
                    },
                    () = tokio::time::sleep(shared.options.poll_timeout) => Outcome::TimedOut,
                }
            }
        }
    };
    match outcome {
        Outcome::Data(body) => full(StatusCode::OK, "application/octet-stream", body),
        Outcome::TimedOut => full(StatusCode::OK, "text/plain", ""),
        Outcome::Superseded => text(StatusCode::NO_CONTENT, ""),
        Outcome::HubClosed => {
            shared.store.remove(&connection);
            text(StatusCode::NO_CONTENT, "")
        }
    }
}

struct Attached<'a> {
    connection: &'a Connection,
    number: u64,
}

impl Drop for Attached<'_> {
    fn drop(&mut self) {
        self.connection.detach(self.number, false);
    }
}

enum Outcome {
    Data(bytes::Bytes),
    TimedOut,
    Superseded,
    HubClosed,
}

/// Answers `DELETE ?id=`.
pub(crate) fn delete(shared: &HubShared, uri: &Uri) -> Response<HubBody> {
    let connection = match lookup(shared, uri) {
        Ok(connection) => connection,
        Err(unknown) => return unknown.response(),
    };
    if connection.transport() != Some(TransportKind::LongPolling) {
        return text(
            StatusCode::BAD_REQUEST,
            "Cannot terminate this connection using the DELETE endpoint.",
        );
    }
    shared.store.remove(&connection);
    text(StatusCode::ACCEPTED, "")
}
