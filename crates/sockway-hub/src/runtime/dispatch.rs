//! Invocations from the client: finding the method, binding its arguments and streams,
//! running it within the connection's parallel-invocation limit, and sending its
//! `Completion` or its stream (ASP.NET Core's `DefaultHubDispatcher`).

use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex};

use futures_util::{FutureExt, StreamExt};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::calls::{Running, RunningMap};
use super::{Connection, End};
use crate::args::RawStream;
use crate::clients::InvokeRule;
use crate::method::{ItemStream, Method, UnaryFuture};
use crate::protocol::{Completion, HubMessage, Invocation, Outcome, Payload, StreamItem, Value};
use crate::sink::ConnectionSink;

/// What an invocation turned into once bound.
enum Bound {
    Unary(UnaryFuture),
    Stream(ItemStream),
}

impl Connection {
    /// Dispatches an `Invocation` (`streaming` false) or a `StreamInvocation`.
    pub(super) async fn invoke(
        &mut self,
        invocation: Invocation<Value>,
        streaming: bool,
    ) -> Result<(), End> {
        let Invocation {
            invocation_id,
            target,
            arguments,
            stream_ids,
        } = invocation;
        let Some(entry) = self.hub.method(&target).cloned() else {
            let error = format!(
                "Failed to invoke '{target}' due to an error on the server. HubException: \
                 Method does not exist."
            );
            return self.fail(invocation_id, error).await;
        };
        let kind_error = match (&entry.method, streaming) {
            (Method::Unary(_), true) => Some(format!(
                "The client attempted to invoke the non-streaming '{target}' method with a \
                 streaming invocation."
            )),
            (Method::Stream(_), false) => Some(format!(
                "The client attempted to invoke the streaming '{target}' method with a \
                 non-streaming invocation."
            )),
            _ => None,
        };
        if let Some(error) = kind_error {
            return self.fail(invocation_id, error).await;
        }
        if stream_ids.len() != entry.streams {
            let error = format!(
                "An unexpected error occurred invoking '{target}' on the server. HubException: \
                 Client sent {} stream(s), Hub method expects {}.",
                stream_ids.len(),
                entry.streams
            );
            return self.fail(invocation_id, error).await;
        }
        let is_stream = streaming || entry.streams > 0;
        if is_stream {
            if let Some(error) = self.stream_refusal(invocation_id.as_deref(), streaming) {
                return self.fail(invocation_id, error).await;
            }
        }
        let receivers = self.open_uploads(&stream_ids);
        let slot = Arc::new(Mutex::new(None));
        let token = CancellationToken::new();
        let context = self.context(InvokeRule::ReleaseSlot(slot.clone()), Some(token.clone()));
        let bound = match &entry.method {
            Method::Unary(call) => call(context, arguments, receivers).map(Bound::Unary),
            Method::Stream(call) => call(context, arguments, receivers).map(Bound::Stream),
        };
        let bound = match bound {
            Ok(bound) => bound,
            Err(failure) => {
                for id in &stream_ids {
                    self.uploads.remove(id);
                }
                let error = format!(
                    "Failed to invoke '{target}' due to an error on the server. \
                     InvalidDataException: {}",
                    failure.0
                );
                return self.fail(invocation_id, error).await;
            }
        };
        let sink = self.sink.clone();
        match bound {
            Bound::Unary(future) => {
                if !is_stream {
                    let slots = self.calls().slots.clone();
                    let permit = self
                        .while_ticking(slots.acquire_owned())
                        .await?
                        .map_err(|_| End::Closed)?;
                    if let Ok(mut slot) = slot.lock() {
                        *slot = Some(permit);
                    }
                }
                let registered = invocation_id
                    .as_ref()
                    .is_some_and(|id| self.register(id, &token, false));
                let running = self.calls().running.clone();
                tokio::spawn(async move {
                    let outcome = AssertUnwindSafe(future).catch_unwind().await;
                    slot.lock().map(|mut slot| slot.take()).ok();
                    let Some(invocation_id) = invocation_id else {
                        return;
                    };
                    if registered {
                        finished(&running, &invocation_id);
                    }
                    let outcome = match outcome {
                        Ok(Ok(Some(result))) => Outcome::Result(result),
                        Ok(Ok(None)) => Outcome::Void,
                        Ok(Err(error)) => Outcome::Error(format!(
                            "An unexpected error occurred invoking '{target}' on the server. \
                             HubException: {error}"
                        )),
                        Err(_) => Outcome::Error(format!(
                            "An unexpected error occurred invoking '{target}' on the server."
                        )),
                    };
                    let completion = HubMessage::Completion(Completion {
                        invocation_id,
                        outcome,
                    });
                    let _ = sink.send_own(&completion).await;
                });
            }
            Bound::Stream(stream) => {
                let invocation_id = invocation_id.unwrap_or_default();
                self.register(&invocation_id, &token, true);
                let running = self.calls().running.clone();
                tokio::spawn(async move {
                    let outcome = pump(&sink, &invocation_id, stream, &token).await;
                    finished(&running, &invocation_id);
                    let completion = HubMessage::Completion(Completion {
                        invocation_id,
                        outcome,
                    });
                    let _ = sink.send_own(&completion).await;
                });
            }
        }
        Ok(())
    }

    /// Records a running call under its id so `CancelInvocation` reaches it; a unary call
    /// whose id is already taken is not recorded (returns false).
    fn register(&mut self, invocation_id: &str, token: &CancellationToken, stream: bool) -> bool {
        let Ok(mut running) = self.calls().running.lock() else {
            return false;
        };
        if !stream && running.contains_key(invocation_id) {
            return false;
        }
        let token = token.clone();
        running.insert(invocation_id.to_owned(), Running { token, stream });
        true
    }

    /// Opens a channel for each stream id the client announced.
    fn open_uploads(&mut self, stream_ids: &[String]) -> Vec<RawStream> {
        let capacity = self.hub.inner.options.stream_buffer_capacity.max(1);
        stream_ids
            .iter()
            .map(|id| {
                let (sender, receiver) = mpsc::channel(capacity);
                self.uploads.insert(id.clone(), sender);
                receiver
            })
            .collect()
    }

    /// Why a stream invocation or a call with upload streams cannot start: its id is in use
    /// by a running stream (the reference's text), or the client has as many streams open as
    /// `maximum_streams_per_client` allows.
    fn stream_refusal(&mut self, invocation_id: Option<&str>, streaming: bool) -> Option<String> {
        self.uploads.retain(|_, sender| !sender.is_closed());
        let open_uploads = self.uploads.len();
        let limit = self.hub.inner.options.maximum_streams_per_client;
        let running = self.calls().running.lock().ok()?;
        let in_use = |id: &&str| running.get(*id).is_some_and(|call| call.stream);
        if let Some(id) = invocation_id.filter(|id| streaming && in_use(id)) {
            return Some(format!("Invocation ID '{id}' is already in use."));
        }
        let streams = running.values().filter(|call| call.stream).count();
        let open = streams + open_uploads;
        (open >= limit).then(|| {
            format!("Too many streams: this connection already has {open} open (the limit).")
        })
    }

    /// Sends a `Completion` with `error` for an invocation that could not run (nothing for a
    /// non-blocking one).
    async fn fail(&mut self, invocation_id: Option<String>, error: String) -> Result<(), End> {
        tracing::debug!(connection = %self.info.connection_id, %error, "invocation refused");
        let Some(invocation_id) = invocation_id else {
            return Ok(());
        };
        let completion = HubMessage::Completion(Completion {
            invocation_id,
            outcome: Outcome::Error(error),
        });
        let sink = self.sink.clone();
        self.while_ticking(async move { sink.send_own(&completion).await })
            .await?
            .map_err(|_| End::Closed)
    }

    /// A `StreamItem` of a client-to-server stream: handed to the method, waiting while its
    /// buffer is full. Items for streams that are not open are ignored, as in the reference.
    pub(super) async fn upload_item(&mut self, stream_id: String, item: Value) -> Result<(), End> {
        let Some(sender) = self.uploads.get(&stream_id).cloned() else {
            return Ok(());
        };
        let sent = self
            .while_ticking(async move { sender.send(Ok(item)).await })
            .await?;
        if sent.is_err() {
            self.uploads.remove(&stream_id);
        }
        Ok(())
    }

    /// A `Completion` from the client: the end of one of its upload streams, or the answer to
    /// a client-result invocation.
    pub(super) async fn completion(&mut self, completion: Completion<Value>) -> Result<(), End> {
        if let Some(sender) = self.uploads.remove(&completion.invocation_id) {
            if let Outcome::Error(error) = completion.outcome {
                let _ = self
                    .while_ticking(async move { sender.send(Err(error)).await })
                    .await?;
            }
            return Ok(());
        }
        let lifetime = self.hub.inner.lifetime.clone();
        let answered = lifetime
            .set_client_result(self.info.connection_id.clone(), completion)
            .await;
        if !answered {
            tracing::debug!(connection = %self.info.connection_id, "unexpected completion ignored");
        }
        Ok(())
    }
}

/// Sends a stream's items until it ends, fails, is cancelled or the connection ends; returns
/// how the `Completion` must end it.
async fn pump(
    sink: &ConnectionSink,
    invocation_id: &str,
    mut stream: ItemStream,
    token: &CancellationToken,
) -> Outcome<Payload> {
    loop {
        let next = tokio::select! {
            () = token.cancelled() => return Outcome::Void,
            () = sink.closed() => return Outcome::Void,
            next = AssertUnwindSafe(stream.next()).catch_unwind() => next,
        };
        let item = match next {
            Ok(Some(Ok(item))) => item,
            Ok(None) => return Outcome::Void,
            Ok(Some(Err(error))) => {
                return Outcome::Error(format!(
                    "An error occurred on the server while streaming results. HubException: \
                     {error}"
                ))
            }
            Err(_) => {
                return Outcome::Error(
                    "An error occurred on the server while streaming results.".into(),
                )
            }
        };
        let message = HubMessage::StreamItem(StreamItem {
            invocation_id: invocation_id.to_owned(),
            item,
        });
        if sink.send_own(&message).await.is_err() {
            return Outcome::Void;
        }
    }
}

/// Forgets the call `invocation_id` ended; the map's memory goes with its last call, so an
/// idle connection holds none (docs/benchmarks/hub.md, "Idle memory").
fn finished(running: &RunningMap, invocation_id: &str) {
    if let Ok(mut running) = running.lock() {
        running.remove(invocation_id);
        if running.is_empty() {
            *running = Default::default();
        }
    }
}
