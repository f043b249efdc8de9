//! The hub's side of one connection (ASP.NET Core's `HubConnectionHandler` and
//! `HubConnectionContext`): the handshake, then the message loop with its timers, limits and
//! stateful reconnect, until the client leaves or the hub ends the connection.

mod calls;
mod dispatch;
mod handshake;

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use futures_util::future::BoxFuture;
use tokio_util::sync::CancellationToken;

use crate::channel::{Receiver, Waker};
use crate::clients::InvokeRule;
use crate::link::{
    ConnectionHandler, ConnectionInfo, Inbound, LinkedConnection, Outbound, TransportKind,
};
use crate::protocol::{HubMessage, Incoming, Protocol, ProtocolError};
use crate::replay::Receive;
use crate::serialized::is_trackable;
use crate::sink::ConnectionSink;
use crate::{Hub, HubContext};

use calls::{Calls, Uploads};
use handshake::Handshake;

impl ConnectionHandler for Hub {
    /// The connection's whole life: the handshake, then the message loop. An async block, not
    /// an async fn: an async fn keeps its arguments twice for its whole life, and the block
    /// keeps only what it captures (the queues, not a moved-from `ConnectionInfo`); what the
    /// handshake leaves (its buffer) is not kept beside the connection's state either.
    fn run(&self, connection: LinkedConnection) -> BoxFuture<'static, ()> {
        let LinkedConnection {
            info,
            mut inbound,
            outbound,
        } = connection;
        let hub = self.clone();
        let info = Arc::new(info);
        Box::pin(async move {
            let mut connection = {
                let mut buffer = BytesMut::new();
                match agree(&hub, &info, &mut inbound, &outbound, &mut buffer).await {
                    Some((protocol, version)) => {
                        let waker = inbound.waker();
                        Connection::new(hub, info, outbound, waker, (protocol, version), buffer)
                    }
                    None => {
                        outbound.close();
                        return;
                    }
                }
            };
            connection.run(&mut inbound).await;
        })
    }
}

/// Why the message loop ended.
enum End {
    /// The client left (its transport is gone, or it sent `Close`): nothing more to send.
    Left,
    /// The server closes the connection with this error.
    Error(String),
    /// The client sent nothing for the client timeout: the server closes the connection with
    /// [`CLIENT_TIMEOUT_ERROR`] and lets the client reconnect, as ASP.NET Core does.
    TimedOut,
    /// The sink was closed (a slow client, a send that found the transport gone).
    Closed,
}

/// The `Close` error for a client that sent nothing for the client timeout: ASP.NET Core's
/// `HubConnectionContext.CheckClientTimeout` records an `OperationCanceledException` with this
/// text and aborts allowing reconnect, and `HubConnectionHandler.SendCloseAsync` sends
/// "Connection closed with an error." with the exception (its detailed form, as the hub's other
/// `Close` errors) and `allowReconnect: true`.
pub(crate) const CLIENT_TIMEOUT_ERROR: &str = "Connection closed with an error. \
    OperationCanceledException: Client hasn't sent a message/ping within the configured \
    ClientTimeoutInterval.";

/// The first hub protocol version with `Ack` and `Sequence`: a client that asks for an older
/// one gets no stateful reconnect even when negotiate allowed it, as in ASP.NET Core 8.
const STATEFUL_RECONNECT_VERSION: i64 = 2;

/// Reads the handshake (within `handshake_timeout`) and answers it with the protocol and the
/// version agreed; `None` when the connection must end.
async fn agree(
    hub: &Hub,
    info: &ConnectionInfo,
    inbound: &mut Receiver<Inbound>,
    outbound: &Outbound,
    buffer: &mut BytesMut,
) -> Option<(Protocol, i64)> {
    let options = &hub.inner.options;
    let limit = options.maximum_receive_message_size;
    let deadline = tokio::time::Instant::now() + options.handshake_timeout;
    loop {
        match handshake::read(buffer, limit, info.transport) {
            Handshake::Incomplete => {}
            Handshake::Agreed(protocol, version) => {
                outbound.set_transfer_format(protocol.transfer_format());
                let response = Bytes::from(handshake::response(None));
                return outbound
                    .try_send(response)
                    .ok()
                    .map(|()| (protocol, version));
            }
            Handshake::Refused(error) => {
                tracing::debug!(connection = %info.connection_id, %error, "handshake refused");
                let _ = outbound.try_send(Bytes::from(handshake::response(Some(&error))));
                return None;
            }
        }
        match tokio::time::timeout_at(deadline, inbound.recv()).await {
            Ok(Some(Inbound::Data(data))) => buffer.extend_from_slice(&data),
            Ok(Some(Inbound::Reconnected)) => {}
            Ok(None) => return None,
            Err(_) => {
                tracing::debug!(connection = %info.connection_id, "handshake timed out");
                return None;
            }
        }
    }
}

/// Runs the `on_connected` hook; its error ends the connection.
async fn connected(hub: &Hub, connection: &Connection) -> Result<(), String> {
    let Some(hook) = &hub.inner.on_connected else {
        return Ok(());
    };
    hook(connection.context(InvokeRule::Forbidden, None))
        .await
        .map_err(|error| format!("Connection closed with an error. HubException: {error}"))
}

/// The state of one connection's message loop.
pub(crate) struct Connection {
    hub: Hub,
    sink: Arc<ConnectionSink>,
    info: Arc<ConnectionInfo>,
    protocol: Protocol,
    /// Received bytes not yet parsed into messages.
    buffer: BytesMut,
    /// The invocation slots, running calls and items, while a call or context uses them
    /// ([`calls`](Self::calls)); behind a lock so that [`context`](Self::context) can make
    /// them from a shared borrow (the hooks run with one). The connection's end needs no
    /// token of its own: a call's context sees it as its sink closing
    /// ([`HubContext::cancelled`]).
    calls: Mutex<Option<Box<Calls>>>,
    /// Client-to-server streams by stream id.
    uploads: Uploads,
    last_received: Instant,
    /// Whether the client timeout runs: from the client's first `Ping`, as the reference's
    /// `StartClientTimeout`, so a client that never pings (the JavaScript client over long
    /// polling, whose poll cycle is its keep-alive) is not timed out; the transport's
    /// disconnect timeout ends it when it is gone.
    timeout_armed: bool,
    last_ack: Instant,
}

impl Connection {
    /// The connection's state once the handshake agreed on `protocol` at `version`.
    fn new(
        hub: Hub,
        info: Arc<ConnectionInfo>,
        outbound: Outbound,
        wake_loop: Waker<Inbound>,
        (protocol, version): (Protocol, i64),
        buffer: BytesMut,
    ) -> Self {
        let options = &hub.inner.options;
        let replay_limit = (info.stateful_reconnect && version >= STATEFUL_RECONNECT_VERSION)
            .then_some(options.stateful_reconnect_buffer_size);
        let sink = Arc::new(ConnectionSink::new(
            info.clone(),
            protocol,
            outbound,
            Some(wake_loop),
            replay_limit,
        ));
        Connection {
            hub,
            sink,
            info,
            protocol,
            buffer,
            calls: Mutex::new(None),
            uploads: Uploads::default(),
            last_received: Instant::now(),
            timeout_armed: false,
            last_ack: Instant::now(),
        }
    }

    /// Tells the routing layer and the hooks, runs the message loop, and ends the
    /// connection the way the loop says.
    async fn run(&mut self, inbound: &mut Receiver<Inbound>) {
        self.hub
            .inner
            .lifetime
            .on_connected(self.sink.clone())
            .await;
        let end = match connected(&self.hub, self).await {
            Err(error) => End::Error(error),
            Ok(()) => self.serve(inbound).await,
        };
        let error = match end {
            End::Left => {
                self.sink.abort();
                None
            }
            End::Error(error) => {
                self.sink.close_with_error(&error);
                Some(error)
            }
            End::TimedOut => {
                self.sink.close_allowing_reconnect(CLIENT_TIMEOUT_ERROR);
                Some(CLIENT_TIMEOUT_ERROR.to_owned())
            }
            End::Closed => None,
        };
        self.stop();
        let id = self.info.connection_id.clone();
        self.hub.inner.lifetime.on_disconnected(id).await;
        if let Some(hook) = &self.hub.inner.on_disconnected {
            let context = self.context(InvokeRule::Free, None);
            hook(context, error).await;
        }
    }

    fn tick(&self) -> std::time::Duration {
        let stateful = self.sink.replay_state().is_some();
        self.hub.inner.options.tick(stateful)
    }

    /// A context for a call or hook: `cancellation` is the call's own (`None` for a hook,
    /// which the connection's end alone cancels).
    pub(crate) fn context(
        &self,
        rule: InvokeRule,
        cancellation: Option<CancellationToken>,
    ) -> HubContext {
        let items = {
            let mut calls = self.calls.lock().unwrap_or_else(PoisonError::into_inner);
            let parallel = self.parallel_invocations();
            let calls = calls.get_or_insert_with(|| Box::new(Calls::new(parallel)));
            calls.items.clone()
        };
        HubContext::new(
            self.sink.clone(),
            self.info.clone(),
            items,
            self.hub.inner.lifetime.clone(),
            rule,
            self.hub.inner.options.client_result_timeout,
            cancellation,
        )
    }

    /// The message loop. Message handling is boxed so that the loop's own future, which every
    /// idle connection holds, stays small (1.2 KB instead of 2.6 KB for the whole task).
    async fn serve(&mut self, inbound: &mut Receiver<Inbound>) -> End {
        if let Err(end) = Box::pin(self.process()).await {
            return end;
        }
        let mut tick = tokio::time::interval(self.tick());
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let sink = self.sink.clone();
            tokio::select! {
                // One wait for both: the sink wakes it when it closes.
                event = inbound.recv_unless(|| sink.is_closed()) => match event {
                    None if sink.is_closed() => return End::Closed,
                    None => return End::Left,
                    Some(Inbound::Data(data)) => {
                        self.last_received = Instant::now();
                        self.buffer.extend_from_slice(&data);
                        if let Err(end) = Box::pin(self.process()).await {
                            return end;
                        }
                    }
                    Some(Inbound::Reconnected) => {
                        self.last_received = Instant::now();
                        if self.sink.reconnected().is_err() {
                            return End::Closed;
                        }
                    }
                },
                _ = tick.tick() => {
                    if let Err(end) = self.housekeeping(true) {
                        return end;
                    }
                }
            }
        }
    }

    /// Handles every complete message in the buffer.
    async fn process(&mut self) -> Result<(), End> {
        let limit = self.hub.inner.options.maximum_receive_message_size;
        loop {
            let message = match self.protocol.parse(&mut self.buffer, limit) {
                Ok(Some(message)) => message,
                Ok(None) => {
                    if self.buffer.is_empty() {
                        // An idle connection keeps no read buffer.
                        self.buffer = BytesMut::new();
                    }
                    self.release_calls();
                    return Ok(());
                }
                Err(error) => return Err(End::Error(protocol_error(&error))),
            };
            if let Some(mut replay) = self.sink.replay_state() {
                let sequence = matches!(message, HubMessage::Sequence { .. });
                if replay.receive(is_trackable(&message), sequence) == Receive::Ignore {
                    continue;
                }
            }
            self.handle(message).await?;
        }
    }

    async fn handle(&mut self, message: Incoming) -> Result<(), End> {
        match message {
            HubMessage::Invocation(invocation) => self.invoke(invocation, false).await,
            HubMessage::StreamInvocation(invocation) => self.invoke(invocation, true).await,
            HubMessage::StreamItem(item) => self.upload_item(item.invocation_id, item.item).await,
            HubMessage::Completion(completion) => self.completion(completion).await,
            HubMessage::CancelInvocation { invocation_id } => {
                let calls = self.calls.get_mut().unwrap_or_else(PoisonError::into_inner);
                if let Some(running) = calls.as_ref().and_then(|calls| calls.running.lock().ok()) {
                    if let Some(call) = running.get(&invocation_id) {
                        call.token.cancel();
                    }
                }
                Ok(())
            }
            HubMessage::Ping => {
                self.timeout_armed = true;
                Ok(())
            }
            HubMessage::Close(_) => Err(End::Left),
            HubMessage::Ack { sequence_id } => {
                self.sink.ack(sequence_id);
                Ok(())
            }
            HubMessage::Sequence { sequence_id } => match self.sink.replay_state() {
                Some(mut replay) => replay.sequence(sequence_id).map_err(|error| {
                    End::Error(format!("Connection closed with an error. {error}"))
                }),
                None => Ok(()),
            },
        }
    }

    /// The timers: keep-alive `Ping`, client timeout, stateful reconnect's `Ack` and the
    /// flush of replayed messages waiting for room. `check_timeout` is off while the loop
    /// itself is not reading (waiting for an invocation slot or a full upload stream).
    fn housekeeping(&mut self, check_timeout: bool) -> Result<(), End> {
        let options = &self.hub.inner.options;
        let timeout = options.client_timeout_interval;
        let timed_out = self.timeout_armed && self.last_received.elapsed() >= timeout;
        if check_timeout && timed_out {
            return Err(End::TimedOut);
        }
        if !check_timeout {
            self.last_received = Instant::now();
        }
        self.uploads.retain(|_, sender| !sender.is_closed());
        if self.sink.replay_state().is_some() {
            if self.last_ack.elapsed() >= options.ack_interval {
                self.last_ack = Instant::now();
                let due = self
                    .sink
                    .replay_state()
                    .and_then(|mut replay| replay.ack_due());
                if let Some(sequence_id) = due {
                    self.control(HubMessage::Ack { sequence_id })?;
                }
            }
            self.sink.flush().map_err(|_| End::Closed)?;
        }
        // Long polling keeps itself alive (the reference's `HasInherentKeepAlive`): a ping
        // would only end every pending poll early.
        let inherent = self.info.transport == TransportKind::LongPolling;
        let keep_alive = options.keep_alive_interval.as_millis() as u64;
        if !inherent && self.sink.idle_for(keep_alive) {
            self.control(HubMessage::Ping)?;
        }
        Ok(())
    }

    fn control(&self, message: crate::protocol::Outgoing) -> Result<(), End> {
        match self.sink.send_control(&message) {
            Ok(()) => Ok(()),
            Err(crate::sink::SendError::Encode(error)) => Err(End::Error(error)),
            Err(crate::sink::SendError::Closed) => Err(End::Closed),
        }
    }

    /// Awaits `future` while the timers keep running (the loop is not reading meanwhile).
    async fn while_ticking<F: std::future::Future>(&mut self, future: F) -> Result<F::Output, End> {
        let mut future = std::pin::pin!(future);
        let mut tick = tokio::time::interval(self.tick());
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let sink = self.sink.clone();
        loop {
            tokio::select! {
                output = &mut future => return Ok(output),
                () = sink.closed() => return Err(End::Closed),
                _ = tick.tick() => self.housekeeping(false)?,
            }
        }
    }

    /// The calls' state, made on first use.
    fn calls(&mut self) -> &mut Calls {
        let parallel = self.parallel_invocations();
        let calls = self.calls.get_mut().unwrap_or_else(PoisonError::into_inner);
        calls.get_or_insert_with(|| Box::new(Calls::new(parallel)))
    }

    /// How many invocations of the connection may run at once (the reference's
    /// `MaximumParallelInvocationsPerClient`).
    fn parallel_invocations(&self) -> usize {
        self.hub
            .inner
            .options
            .maximum_parallel_invocations_per_client
    }

    /// Drops the calls' state when nothing uses it, so an idle connection keeps none.
    fn release_calls(&mut self) {
        let calls = self.calls.get_mut().unwrap_or_else(PoisonError::into_inner);
        if calls.as_ref().is_some_and(|calls| calls.unused()) {
            *calls = None;
        }
    }

    /// Cancels the connection's calls and streams when it is gone: the uploads end, and
    /// every context's [`cancelled`](HubContext::cancelled) resolves as the sink is closed
    /// (it is already, but for a connection whose transport closed it).
    fn stop(&mut self) {
        self.uploads.clear();
        self.sink.abort();
    }
}

/// The `Close` error for bytes that are not a valid message (the reference closes with
/// "Connection closed with an error." and the exception).
fn protocol_error(error: &ProtocolError) -> String {
    format!("Connection closed with an error. InvalidDataException: {error}")
}
