//! Hub methods as stored in a hub: typed async functions behind one untyped signature that
//! binds the invocation's values and streams, runs the function and yields what to send.

use std::any::TypeId;
use std::future::Future;
use std::sync::Arc;

use futures_core::Stream;
use futures_util::future::BoxFuture;
use futures_util::stream::BoxStream;
use futures_util::{FutureExt, StreamExt};
use serde::Serialize;

use crate::args::{Arguments, BindFailure, RawStream};
use crate::protocol::{Payload, Value};
use crate::{HubContext, HubError};

/// What a non-streaming hub method returns: `()` (a `Completion` without a result) or
/// `Result<T, HubError>` (the result, or an error sent to the caller; `Ok(())` also completes
/// without a result, like a C# `Task` method).
pub trait MethodResult: Send + 'static {
    /// The `Completion`'s result, if any, or the error.
    fn into_outcome(self) -> Result<Option<Payload>, HubError>;
}

impl MethodResult for () {
    fn into_outcome(self) -> Result<Option<Payload>, HubError> {
        Ok(None)
    }
}

impl<T: Serialize + Send + Sync + 'static> MethodResult for Result<T, HubError> {
    fn into_outcome(self) -> Result<Option<Payload>, HubError> {
        let value = self?;
        if TypeId::of::<T>() == TypeId::of::<()>() {
            return Ok(None);
        }
        Ok(Some(Payload::new(value)))
    }
}

/// One item a streaming hub method yields: `Result<T, HubError>`; an error ends the stream
/// with a `Completion` carrying it.
pub trait StreamResult: Send + 'static {
    /// The item, or the error that ends the stream.
    fn into_item(self) -> Result<Payload, HubError>;
}

impl<T: Serialize + Send + Sync + 'static> StreamResult for Result<T, HubError> {
    fn into_item(self) -> Result<Payload, HubError> {
        self.map(Payload::new)
    }
}

pub(crate) type UnaryFuture = BoxFuture<'static, Result<Option<Payload>, HubError>>;
pub(crate) type ItemStream = BoxStream<'static, Result<Payload, HubError>>;
type UnaryFn = dyn Fn(HubContext, Vec<Value>, Vec<RawStream>) -> Result<UnaryFuture, BindFailure>
    + Send
    + Sync;
type StreamFn =
    dyn Fn(HubContext, Vec<Value>, Vec<RawStream>) -> Result<ItemStream, BindFailure> + Send + Sync;

/// A registered method: one that completes with a result, or one that streams.
#[derive(Clone)]
pub(crate) enum Method {
    Unary(Arc<UnaryFn>),
    Stream(Arc<StreamFn>),
}

/// A method under the name it was registered with.
#[derive(Clone)]
pub(crate) struct MethodEntry {
    /// The name as registered (names match case-insensitively).
    pub(crate) name: String,
    pub(crate) method: Method,
    /// How many client-to-server streams it takes.
    pub(crate) streams: usize,
}

pub(crate) fn unary<A, F, Fut, R>(name: &str, function: F) -> MethodEntry
where
    A: Arguments,
    F: Fn(HubContext, A) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = R> + Send + 'static,
    R: MethodResult,
{
    let call = move |context: HubContext, values: Vec<Value>, streams: Vec<RawStream>| {
        let arguments = A::bind(values, streams)?;
        Ok(function(context, arguments)
            .map(MethodResult::into_outcome)
            .boxed())
    };
    MethodEntry {
        name: name.to_owned(),
        method: Method::Unary(Arc::new(call)),
        streams: A::STREAMS,
    }
}

pub(crate) fn streaming<A, F, S>(name: &str, function: F) -> MethodEntry
where
    A: Arguments,
    F: Fn(HubContext, A) -> S + Send + Sync + 'static,
    S: Stream + Send + 'static,
    S::Item: StreamResult,
{
    let call = move |context: HubContext, values: Vec<Value>, streams: Vec<RawStream>| {
        let arguments = A::bind(values, streams)?;
        Ok(function(context, arguments)
            .map(StreamResult::into_item)
            .boxed())
    };
    MethodEntry {
        name: name.to_owned(),
        method: Method::Stream(Arc::new(call)),
        streams: A::STREAMS,
    }
}
