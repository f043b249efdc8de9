//! `POST {hub}?id=`: the client-to-server half of Server-Sent Events and long polling
//! (`TransportProtocols.md`, "HTTP Post"). The whole body is read, up to the receive limit,
//! and handed to the hub as one [`Inbound::Data`]; 200 when it is delivered. 400 without an
//! `id`, 404 for a connection that has ended, 405 on a WebSocket connection (ASP.NET Core's
//! "POST requests are not allowed for WebSocket connections."), 409 while another POST on the
//! same connection is being read, 413 for a body over the limit, 408 for one that does not
//! arrive within the POST timeout.

use std::sync::atomic::Ordering;

use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt as _, LengthLimitError, Limited};

use super::{lookup, text, BoxError, HubBody};
use crate::link::{Inbound, TransportKind};
use crate::service::HubShared;

/// Clears the "a POST is being read" mark however the request ends.
struct Posting<'a>(&'a std::sync::atomic::AtomicBool);

impl Drop for Posting<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

/// Answers a POST to the hub's path.
pub(crate) async fn send<B>(shared: &HubShared, request: Request<B>) -> Response<HubBody>
where
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    let connection = match lookup(shared, request.uri()) {
        Ok(connection) => connection,
        Err(unknown) => return unknown.response(),
    };
    if connection.transport() == Some(TransportKind::WebSockets) {
        return text(
            StatusCode::METHOD_NOT_ALLOWED,
            "POST requests are not allowed for WebSocket connections.",
        );
    }
    if connection
        .posting
        .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
        .is_err()
    {
        return text(
            StatusCode::CONFLICT,
            "another POST on this connection is still being read",
        );
    }
    let _posting = Posting(&connection.posting);
    let limit = shared.options.max_receive_size;
    let read = tokio::time::timeout(
        shared.options.post_timeout,
        Limited::new(request.into_body(), limit).collect(),
    );
    let body = tokio::select! {
        body = read => match body {
            Ok(body) => body,
            Err(_) => return text(
                StatusCode::REQUEST_TIMEOUT,
                "the request body did not arrive in time",
            ),
        },
        () = connection.ended() => return gone(),
    };
    let data = match body {
        Ok(collected) => collected.to_bytes(),
        Err(error) if error.is::<LengthLimitError>() => {
            return text(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("the body is over the limit of {limit} bytes"),
            )
        }
        Err(_) => {
            return text(
                StatusCode::BAD_REQUEST,
                "the request body could not be read",
            )
        }
    };
    let Some(inbound) = connection.inbound() else {
        return gone();
    };
    let delivered = tokio::select! {
        sent = inbound.send(Inbound::Data(data)) => sent.is_ok(),
        () = connection.ended() => false,
    };
    if delivered {
        text(StatusCode::OK, "")
    } else {
        gone()
    }
}

fn gone() -> Response<HubBody> {
    text(StatusCode::NOT_FOUND, "No Connection with that ID")
}
