//! WebSockets (`TransportProtocols.md`, "WebSockets (Full Duplex)"), over HTTP/1.1 upgrades
//! and HTTP/2 extended CONNECT (RFC 8441) alike.
//!
//! - No `id`: negotiation was skipped, a fresh connection starts (503 when the server is full
//!   or shutting down).
//! - An `id` this server does not hold: 404 (unless it adopts tokens signed by a sibling,
//!   [`HttpOptions::adopt_signed_tokens`](crate::HttpOptions::adopt_signed_tokens), and no
//!   server has started that connection yet, as [`crate::claims`] records). One whose socket
//!   is open: 409. One that used another transport: 400, as ASP.NET Core answers.
//! - Frames go out as text or binary messages, as the hub's transfer format says.
//! - A client that closes with a close frame ends the connection. With stateful reconnect a
//!   socket lost without one leaves the connection waiting for the reconnect grace period;
//!   a new socket with the same token takes over: the frames queued for the lost socket are
//!   dropped, the hub is told [`Inbound::Reconnected`] and replays what is unacknowledged.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use futures_util::FutureExt as _;
use http::{Request, Response, StatusCode};
use http_body_util::BodyExt as _;
use sockway::proto::message::TextBytes;
use sockway::server::{Handshake, PendingWebSocket, ServerWebSocket};
use sockway::{CloseCode, Message};

use super::{connection_info, lookup, not_offered, refusal, request_token, text, HubBody, Unknown};
use crate::channel::{Sender, TrySendError};
use crate::connections::{Connection, Release, StoreRefusal};
use crate::link::{CloseSignal, ConnectionInfo, Inbound, Outbound, OutboundLease, TransportKind};
use crate::negotiate::new_identity;
use crate::protocol::TransferFormat;
use crate::runtime::{Session, Stop, Ticker};
use crate::service::HubShared;
use crate::token;

/// Answers a WebSocket request on the hub's path.
pub(crate) async fn start<B>(
    shared: &Arc<HubShared>,
    mut request: Request<B>,
    user: Option<String>,
) -> Response<HubBody> {
    if !shared.offers(TransportKind::WebSockets) {
        return not_offered(TransportKind::WebSockets);
    }
    let fresh = request_token(request.uri()).is_none();
    let connection = if fresh {
        let options = &shared.options;
        let (id, token) = new_identity(&options.token_key, 1, false, options.token_lifetime);
        match shared.store.create(token, id, false) {
            Ok(connection) => connection,
            Err(refused) => return text(StatusCode::SERVICE_UNAVAILABLE, refused.reason()),
        }
    } else {
        match lookup(shared, request.uri()) {
            Ok(connection) => {
                if connection.transport().is_none() && !first_start(shared, &connection).await {
                    shared.store.remove(&connection);
                    return Unknown::NotHeld.response();
                }
                connection
            }
            Err(unknown) => match adopt(shared, request.uri()).await {
                Adoption::Adopted(connection) => connection,
                Adoption::Refused => return unknown.response(),
                Adoption::Unconfirmed(reason) => {
                    return text(StatusCode::SERVICE_UNAVAILABLE, reason)
                }
            },
        }
    };
    // A malformed handshake is refused before it can displace a socket in use.
    let handshake = match Handshake::from_request(&mut request) {
        Ok(handshake) => handshake,
        Err(rejection) => {
            if fresh {
                shared.store.remove(&connection);
            }
            return boxed(rejection.into_response());
        }
    };
    let number = match connection.try_attach(TransportKind::WebSockets) {
        Ok(number) => number,
        Err(refused) => return refusal(refused),
    };
    // The socket settings come from the service's one shared copy, not from `options`.
    let with_cors;
    let options = if shared.options.cors.enabled() {
        with_cors = shared
            .options
            .websocket
            .clone()
            .allowed_origins(shared.options.cors.websocket_origins(&request));
        &with_cors
    } else {
        &shared.options.websocket
    };
    match handshake.accept_with_config(options, shared.socket_config.clone()) {
        Ok((response, pending)) => {
            let info = Box::new(connection_info(
                &connection,
                TransportKind::WebSockets,
                user,
                &request,
            ));
            tokio::spawn(run(shared.clone(), connection, number, info, pending));
            boxed(response)
        }
        Err(rejection) => {
            if fresh {
                shared.store.remove(&connection);
            } else {
                // A stateful connection may have lost its socket to this attempt: the client
                // gets the reconnect grace period to try again.
                connection.detach(number, connection.stateful);
            }
            boxed(rejection.into_response())
        }
    }
}

/// What became of a token this server did not issue.
pub(crate) enum Adoption {
    Adopted(Arc<Connection>),
    /// Not adoptable: adoption is off, the token is forged or expired, or the connection has
    /// already started on some server (404, as for any unknown id).
    Refused,
    /// The fleet's record of started connections could not be reached (503).
    Unconfirmed(String),
}

/// With [`HttpOptions::adopt_signed_tokens`](crate::HttpOptions::adopt_signed_tokens), the
/// connection a valid, unexpired token names, started here although another server issued it,
/// provided no server has started it before (when
/// [`HttpOptions::connection_claims`](crate::HttpOptions::connection_claims) is set).
pub(crate) async fn adopt(shared: &HubShared, uri: &http::Uri) -> Adoption {
    if !shared.options.adopt_signed_tokens {
        return Adoption::Refused;
    }
    let Some(token) = request_token(uri) else {
        return Adoption::Refused;
    };
    let Some(claims) = token::verify(&shared.options.token_key, &token) else {
        return Adoption::Refused;
    };
    let Ok(remaining) = claims.expires.duration_since(SystemTime::now()) else {
        return Adoption::Refused;
    };
    let id = claims.public_id(&token);
    if let Some(record) = &shared.options.connection_claims {
        match record.claim(&id, remaining).await {
            Ok(true) => {}
            Ok(false) => {
                tracing::debug!(connection_id = %id, "not adopted: it started on another server");
                return Adoption::Refused;
            }
            Err(reason) => return Adoption::Unconfirmed(reason),
        }
    }
    match shared
        .store
        .create(token.clone(), id, claims.stateful_reconnect)
    {
        Ok(connection) => {
            tracing::debug!(connection_id = %connection.id, "adopted a connection negotiated elsewhere");
            Adoption::Adopted(connection)
        }
        // Another request adopted it a moment ago.
        Err(StoreRefusal::Exists) => shared
            .store
            .get(&token)
            .map_or(Adoption::Refused, Adoption::Adopted),
        Err(_) => Adoption::Refused,
    }
}

/// Whether a connection this server negotiated may start here: it may unless the fleet's
/// record says another server started it (adopting the token), in which case the socket
/// is a reconnect after that server died and this pending connection is stale. When the
/// record cannot be reached it may (this server issued the token).
async fn first_start(shared: &HubShared, connection: &Connection) -> bool {
    let Some(record) = &shared.options.connection_claims else {
        return true;
    };
    match record
        .claim(&connection.id, shared.options.token_lifetime)
        .await
    {
        Ok(first) => first,
        Err(reason) => {
            tracing::debug!(connection_id = %connection.id, %reason, "starting unrecorded");
            true
        }
    }
}

fn boxed(response: Response<sockway::server::Body>) -> Response<HubBody> {
    response.map(|body| body.map_err(|never| match never {}).boxed_unsync())
}

/// How a socket ended.
#[derive(Clone, Copy)]
enum End {
    /// The client closed with a close frame, or the connection was removed.
    Closed,
    /// The hub closed the connection.
    HubClosed,
    /// The socket broke without a close frame: stateful reconnect may follow.
    Lost,
    /// A newer socket took over the connection (stateful reconnect).
    Replaced,
    /// The hub closed the connection and the client did not take what was left within the
    /// close timeout: the socket is dropped without a close handshake.
    Abandoned,
}

/// Runs the socket once hyper hands it over. Not an `async fn`: an async fn keeps its
/// arguments twice for its whole life, and the pending socket (48 bytes) would stay in the
/// task of every connection (docs/benchmarks/hub.md, "Idle memory").
fn run(
    shared: Arc<HubShared>,
    connection: Arc<Connection>,
    number: u64,
    info: Box<ConnectionInfo>,
    pending: PendingWebSocket,
) -> impl Future<Output = ()> + Send {
    pending.then(move |socket| async move {
        let Ok(mut socket) = socket else {
            finish(&shared, &connection, number, End::Lost);
            return;
        };
        let mut link = Link {
            socket: &mut socket,
            connection: &connection,
            number,
            close_timeout: shared.options.close_timeout,
        };
        // The connection ends with this socket: the socket's loop runs the hub's.
        // A local moved whole into the conversation (not an `if let` on a temporary, which
        // the task would keep beside it for the connection's life).
        let inline = !connection.stateful && shared.handler.hub().is_some();
        let outbound = if inline {
            connection.take_outbound()
        } else {
            None
        };
        if outbound.is_some() {
            converse(&shared, &mut link, info, outbound).await;
            return;
        }
        // Unboxed in a block of its own, so the box is freed now rather than at the end of
        // the connection.
        let (hub, reconnect) = {
            let boxed = info;
            let info = *boxed;
            if connection.stateful {
                // The connection may outlive this socket: the hub runs in a task of its own.
                (None, !shared.start(&connection, info))
            } else {
                let hub = shared.hub_run(&connection, info);
                let reconnect = hub.is_none();
                (hub, reconnect)
            }
        };
        match hub {
            // Without stateful reconnect the connection ends with this socket, so the hub's
            // loop runs in this task beside it: one task per connection instead of two.
            Some(hub) => {
                futures_util::future::join(hub, carry(&shared, &mut link, reconnect)).await;
            }
            None => carry(&shared, &mut link, reconnect).await,
        }
    })
}

/// What the pump works with, behind one pointer: an async fn keeps each argument twice.
struct Link<'a> {
    socket: &'a mut ServerWebSocket,
    connection: &'a Arc<Connection>,
    number: u64,
    close_timeout: Duration,
}

/// Carries frames until the socket ends, then settles the connection and closes the socket.
async fn carry(shared: &HubShared, link: &mut Link<'_>, reconnect: bool) {
    let end = serve(link, reconnect).await;
    finish(shared, link.connection, link.number, end);
    if !matches!(end, End::Lost | End::Abandoned) {
        let _ = link.socket.close(CloseCode::NORMAL, "").await;
    }
}

/// Runs the hub's side of the connection in the socket's loop ([`Session`]), then settles
/// the connection and closes the socket.
fn converse<'a, 'b>(
    shared: &'a HubShared,
    link: &'a mut Link<'b>,
    info: Box<ConnectionInfo>,
    outbound: Option<Outbound>,
) -> impl Future<Output = ()> + Send + use<'a, 'b> {
    // The session is made here, before the future: an async fn would keep its arguments
    // (and the boxed info it no longer needs) beside the session for the connection's life.
    let mut session = outbound
        .zip(shared.handler.hub())
        .map(|(outbound, hub)| Session::new(hub, *info, outbound));
    async move {
        // A reference, so the session is kept once, where the future captured it.
        let Some(session) = session.as_mut() else {
            return;
        };
        let connection = link.connection;
        let end = 'talked: {
            // Taken in a `let` of its own, so the `Result` it came in is not kept while the
            // socket talks.
            let mut outbound = match take_outbound(connection, link.number).await {
                Ok(outbound) => outbound,
                Err(end) => {
                    stop_hub(shared, connection, session, Stop::LEFT);
                    break 'talked end;
                }
            };
            let end = talk(shared, link, &mut outbound, session).await;
            if session.is_open() {
                let stop = if outbound.is_closed() {
                    Stop::CLOSED
                } else {
                    Stop::LEFT
                };
                stop_hub(shared, connection, session, stop);
            }
            end
        };
        finish(shared, connection, link.number, end);
        if !matches!(end, End::Lost | End::Abandoned) {
            let _ = link.socket.close(CloseCode::NORMAL, "").await;
        }
    }
}

/// The connection's outbound queue, once a socket this one replaces has let go of it.
async fn take_outbound(connection: &Connection, number: u64) -> Result<OutboundLease, End> {
    tokio::select! {
        outbound = connection.outbound.lease() => Ok(outbound),
        release = connection.released(number) => Err(released(release)),
    }
}

/// The socket's loop with the hub's in it: reads a message and hands it to the hub, writes
/// what the hub queued, and ticks the hub's timers, until the socket or the connection ends.
/// Once the hub's side has ended, the loop only writes what is left (the hub's `Close`).
async fn talk(
    shared: &HubShared,
    link: &mut Link<'_>,
    outbound: &mut OutboundLease,
    session: &mut Session,
) -> End {
    let connection = link.connection;
    let ticker = match shared.handler.hub() {
        Some(hub) => Ticker::for_current_runtime(Session::tick_period(hub)),
        None => None,
    };
    // Made once per tick, not per turn of the loop: every turn would otherwise register in
    // and leave the ticker's list of waiters, one lock shared by every connection of the
    // runtime, for each frame written.
    let mut next_tick = std::pin::pin!(tick(ticker.as_deref()));
    // Made once, as the tick: a wait made anew each turn would join and leave the
    // connection's list of waiters for every frame.
    let mut release = std::pin::pin!(connection.released(link.number));
    loop {
        let open = session.is_open();
        let ticking = open && ticker.is_some();
        tokio::select! {
            release = &mut release => return released(release),
            frame = outbound.recv() => {
                if open && outbound.is_closed() {
                    stop_hub(shared, connection, session, Stop::CLOSED);
                }
                let Some(frame) = frame else {
                    return End::HubClosed;
                };
                // Boxed, as every cold state: the idle future keeps only the loop's waits.
                if let Err(end) = Box::pin(write(link, outbound, frame)).await {
                    return end;
                }
            }
            received = link.socket.recv() => match received {
                Ok(Some(message)) => {
                    if !open {
                        continue;
                    }
                    let work = session.received(message.into_bytes());
                    match Box::pin(busy(link, outbound, work)).await {
                        Ok(Ok(())) => {}
                        Ok(Err(stop)) => stop_hub(shared, connection, session, stop),
                        Err(end) => return end,
                    }
                }
                Ok(None) => return End::Closed,
                Err(_) => return End::Lost,
            },
            () = &mut next_tick, if ticking => {
                next_tick.set(tick(ticker.as_deref()));
                if let Err(stop) = session.tick() {
                    stop_hub(shared, connection, session, stop);
                }
            }
        }
    }
}

/// The next tick of `ticker` (never without one).
async fn tick(ticker: Option<&Ticker>) {
    match ticker {
        Some(ticker) => ticker.tick().await,
        None => std::future::pending().await,
    }
}

/// Awaits the hub's handling of a message while writing what it queues meanwhile (it may
/// wait for a reply that needs those frames delivered); the socket is not read until it
/// is done.
async fn busy<F: Future>(
    link: &mut Link<'_>,
    outbound: &mut OutboundLease,
    work: F,
) -> Result<F::Output, End> {
    let mut work = std::pin::pin!(work);
    loop {
        tokio::select! {
            biased;
            output = &mut work => return Ok(output),
            release = link.connection.released(link.number) => return Err(released(release)),
            frame = outbound.recv() => {
                let Some(frame) = frame else {
                    return Err(End::HubClosed);
                };
                write(link, outbound, frame).await?;
            }
        }
    }
}

/// Writes `frame` and what else is queued, giving up as [`write_or_give_up`] does.
async fn write(link: &mut Link<'_>, outbound: &mut OutboundLease, frame: Bytes) -> Result<(), End> {
    let signal = outbound.close_signal();
    let close_timeout = link.close_timeout;
    write_or_give_up(
        link.socket,
        outbound,
        frame,
        &signal,
        link.connection,
        close_timeout,
    )
    .await
}

/// Ends the session's hub side for `stop`, and runs what is left of it (the routing layer,
/// the `on_disconnected` hook) in a task beside the socket's last writes; the store hears
/// that the hub is done once it has run.
fn stop_hub(shared: &HubShared, connection: &Arc<Connection>, session: &mut Session, stop: Stop) {
    let store = shared.store.clone();
    let Some(rest) = session.end(stop) else {
        store.hub_finished(connection);
        return;
    };
    let connection = connection.clone();
    tokio::spawn(async move {
        if AssertUnwindSafe(rest).catch_unwind().await.is_err() {
            tracing::error!(connection_id = %connection.id, "the hub's disconnect hook panicked");
        }
        store.hub_finished(&connection);
    });
}

/// Why [`Connection::released`] ended a socket.
fn released(release: Release) -> End {
    match release {
        Release::Removed => End::Closed,
        Release::Superseded => End::Replaced,
    }
}

/// Takes the connection's queue (once a socket this one replaces has let go of it), tells
/// the hub of a reconnect, and pumps.
async fn serve(link: &mut Link<'_>, reconnect: bool) -> End {
    let connection = link.connection;
    let mut outbound = tokio::select! {
        outbound = connection.outbound.lease() => outbound,
        release = connection.released(link.number) => return released(release),
    };
    let Some(inbound) = connection.inbound() else {
        return End::Closed;
    };
    if reconnect {
        outbound.clear();
        let told = tokio::select! {
            sent = inbound.send(Inbound::Reconnected) => sent.is_ok(),
            () = connection.ended() => false,
        };
        if !told {
            return End::Closed;
        }
    }
    pump(link, &mut outbound, &inbound).await
}

/// Carries frames both ways until one side ends.
async fn pump(link: &mut Link<'_>, outbound: &mut OutboundLease, inbound: &Sender<Inbound>) -> End {
    let connection = link.connection;
    let signal = outbound.close_signal();
    // Made once, not per frame (see `talk`).
    let mut release = std::pin::pin!(connection.released(link.number));
    loop {
        tokio::select! {
            release = &mut release => return released(release),
            frame = outbound.recv() => {
                let Some(frame) = frame else {
                    return End::HubClosed;
                };
                // Boxed: the write's state would otherwise double the room every idle
                // connection's task keeps for this loop (docs/benchmarks/hub.md, "Idle memory").
                let close_timeout = link.close_timeout;
                let write = write_or_give_up(link.socket, outbound, frame, &signal, connection, close_timeout);
                if let Err(end) = Box::pin(write).await {
                    return end;
                }
            }
            received = link.socket.recv() => match received {
                Ok(Some(message)) => {
                    let data = Inbound::Data(message.into_bytes());
                    let sent = match inbound.try_send(data) {
                        Ok(()) => true,
                        Err(TrySendError::Closed(_)) => false,
                        // The hub is behind: wait for room (boxed, as the write above).
                        Err(TrySendError::Full(data)) => Box::pin(async {
                            tokio::select! {
                                sent = inbound.send(data) => sent.is_ok(),
                                () = connection.ended() => false,
                            }
                        })
                        .await,
                    };
                    if !sent {
                        return End::Closed;
                    }
                }
                Ok(None) => return End::Closed,
                Err(_) => return End::Lost,
            },
        }
    }
}

/// Writes `frame` and what else is queued ([`write_batch`]). A client that stopped reading
/// blocks the write; once the hub has closed the connection (its queue filled up) or it was
/// removed, the write gets `close_timeout` more, then the socket is dropped.
async fn write_or_give_up(
    socket: &mut ServerWebSocket,
    outbound: &mut OutboundLease,
    frame: Bytes,
    signal: &CloseSignal,
    connection: &Connection,
    close_timeout: Duration,
) -> Result<(), End> {
    let gave_up = async {
        tokio::select! {
            () = signal.closed() => {}
            () = connection.ended() => {}
        }
        tokio::time::sleep(close_timeout).await;
    };
    tokio::select! {
        written = write_batch(socket, outbound, frame) => written,
        () = gave_up => Err(End::Abandoned),
    }
}

/// The most frames queued together before one flush: a burst (a broadcast, a stream) goes
/// out in few writes, and a long one still reaches the client in steps.
const BATCH: usize = 64;

/// Queues `first` and whatever else the hub has queued (up to [`BATCH`] frames), each as
/// one message of the current transfer format, then flushes them in one write.
async fn write_batch(
    socket: &mut ServerWebSocket,
    outbound: &mut OutboundLease,
    first: Bytes,
) -> Result<(), End> {
    let mut next = Some(first);
    let mut queued = 0;
    while let Some(frame) = next.take() {
        let message = match outbound.transfer_format() {
            TransferFormat::Binary => Message::binary(frame),
            TransferFormat::Text => match TextBytes::try_from_bytes(frame) {
                Ok(text) => Message::Text(text),
                Err(_) => {
                    tracing::warn!("the hub queued a text frame that is not UTF-8");
                    return Err(End::HubClosed);
                }
            },
        };
        socket.feed(message).await.map_err(|_| End::Lost)?;
        queued += 1;
        if queued < BATCH {
            next = outbound.try_recv();
        }
    }
    socket.flush().await.map_err(|_| End::Lost)
}

/// Keeps a stateful connection whose socket was lost; ends every other one, unless a newer
/// socket has taken it over.
fn finish(shared: &HubShared, connection: &Connection, number: u64, end: End) {
    let keep = matches!(end, End::Lost) && connection.stateful && !connection.hub_done();
    let latest = connection.detach(number, keep);
    if latest && !keep && !matches!(end, End::Replaced) {
        shared.store.remove(connection);
    }
}
