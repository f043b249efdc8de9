//! Binding an invocation's arguments to a hub method's typed parameters, and a client's
//! upload streams to [`ClientStream`]s.
//!
//! Parameters are a tuple; each element is either a value bound from the invocation's
//! `arguments` by position, or a [`ClientStream`] bound from its `streamIds` by position (the
//! reference binder's rule: stream parameters are not counted among the arguments).

use std::marker::PhantomData;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_core::Stream;
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::sync::mpsc;

use crate::protocol::{Payload, Value};
use crate::HubError;

/// One item of a client-to-server stream as the connection delivers it: a value, or the
/// error the client completed the stream with.
pub(crate) type StreamEvent = Result<Value, String>;

/// The receiving end of one client-to-server stream, before it is typed.
pub(crate) type RawStream = mpsc::Receiver<StreamEvent>;

/// A stream the client uploads to a hub method (`streamIds`, `HubProtocol.md` "Upload
/// streaming"): each `StreamItem` bound to `T`, ending when the client completes it. An item
/// that does not bind, or a completion with an error, is yielded as an `Err`. Holds at most
/// `stream_buffer_capacity` items; the connection stops reading while it is full.
pub struct ClientStream<T> {
    items: RawStream,
    done: bool,
    item: PhantomData<fn() -> T>,
}

impl<T> std::fmt::Debug for ClientStream<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientStream")
            .field("done", &self.done)
            .finish()
    }
}

impl<T: DeserializeOwned> Stream for ClientStream<T> {
    type Item = Result<T, HubError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.done {
            return Poll::Ready(None);
        }
        match self.items.poll_recv(cx) {
            Poll::Ready(Some(Ok(value))) => {
                Poll::Ready(Some(value.bind::<T>().map_err(|error| {
                    HubError::new(format!("Error binding a stream item: {error}"))
                })))
            }
            Poll::Ready(Some(Err(error))) => {
                self.done = true;
                Poll::Ready(Some(Err(HubError::new(error))))
            }
            Poll::Ready(None) => {
                self.done = true;
                Poll::Ready(None)
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

/// Why an invocation's arguments could not be bound; the text follows the reference's
/// `InvalidDataException` messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BindFailure(pub String);

/// One parameter of a hub method: a value (any `DeserializeOwned`) or a [`ClientStream`].
pub trait Argument: Sized + Send + 'static {
    /// Whether the parameter is bound from a stream id rather than from an argument.
    const IS_STREAM: bool;

    /// Binds a value argument.
    fn from_value(value: Value) -> Result<Self, String>;

    /// Binds a stream argument.
    #[doc(hidden)]
    fn from_stream(stream: RawStream) -> Option<Self>;
}

impl<T: DeserializeOwned + Send + 'static> Argument for T {
    const IS_STREAM: bool = false;

    fn from_value(value: Value) -> Result<Self, String> {
        value.bind::<T>().map_err(|error| error.0)
    }

    fn from_stream(_: RawStream) -> Option<Self> {
        None
    }
}

impl<T: DeserializeOwned + Send + 'static> Argument for ClientStream<T> {
    const IS_STREAM: bool = true;

    fn from_value(_: Value) -> Result<Self, String> {
        Err("a stream parameter takes a stream id, not an argument".into())
    }

    fn from_stream(items: RawStream) -> Option<Self> {
        Some(ClientStream {
            items,
            done: false,
            item: PhantomData,
        })
    }
}

/// The parameters of a hub method: `()` or a tuple of [`Argument`]s, bound by position.
pub trait Arguments: Sized + Send + 'static {
    /// How many arguments the invocation must carry.
    const VALUES: usize;
    /// How many stream ids the invocation must carry.
    const STREAMS: usize;

    /// Binds exactly [`VALUES`](Self::VALUES) values and [`STREAMS`](Self::STREAMS) streams.
    fn bind(values: Vec<Value>, streams: Vec<RawStream>) -> Result<Self, BindFailure>;
}

/// Checks the counts, then binds element by element.
pub(crate) struct Binder {
    values: std::vec::IntoIter<Value>,
    streams: std::vec::IntoIter<RawStream>,
    position: usize,
}

impl Binder {
    fn new(
        values: Vec<Value>,
        streams: Vec<RawStream>,
        expected_values: usize,
        expected_streams: usize,
    ) -> Result<Self, BindFailure> {
        if values.len() != expected_values {
            return Err(BindFailure(format!(
                "Invocation provides {} argument(s) but target expects {}.",
                values.len(),
                expected_values
            )));
        }
        if streams.len() != expected_streams {
            return Err(BindFailure(format!(
                "Client sent {} stream(s), Hub method expects {}.",
                streams.len(),
                expected_streams
            )));
        }
        Ok(Binder {
            values: values.into_iter(),
            streams: streams.into_iter(),
            position: 0,
        })
    }

    fn next<A: Argument>(&mut self) -> Result<A, BindFailure> {
        if A::IS_STREAM {
            let stream = self.streams.next().and_then(A::from_stream);
            return stream.ok_or_else(|| BindFailure("missing stream".into()));
        }
        self.position += 1;
        let value = self
            .values
            .next()
            .ok_or_else(|| BindFailure("missing argument".into()))?;
        A::from_value(value).map_err(|error| {
            BindFailure(format!(
                "Error binding arguments. Make sure that the types of the provided values match \
                 the types of the hub method being invoked. Argument {}: {error}",
                self.position
            ))
        })
    }
}

impl Arguments for () {
    const VALUES: usize = 0;
    const STREAMS: usize = 0;

    fn bind(values: Vec<Value>, streams: Vec<RawStream>) -> Result<Self, BindFailure> {
        Binder::new(values, streams, 0, 0).map(|_| ())
    }
}

macro_rules! tuple_arguments {
    ($($name:ident),+) => {
        impl<$($name: Argument),+> Arguments for ($($name,)+) {
            const VALUES: usize = 0 $(+ (!$name::IS_STREAM) as usize)+;
            const STREAMS: usize = 0 $(+ $name::IS_STREAM as usize)+;

            fn bind(values: Vec<Value>, streams: Vec<RawStream>) -> Result<Self, BindFailure> {
                let mut binder = Binder::new(values, streams, Self::VALUES, Self::STREAMS)?;
                Ok(($(binder.next::<$name>()?,)+))
            }
        }

        impl<$($name: Serialize + Send + Sync + 'static),+> IntoArguments for ($($name,)+) {
            #[allow(non_snake_case)]
            fn into_arguments(self) -> Vec<Payload> {
                let ($($name,)+) = self;
                vec![$(Payload::new($name)),+]
            }
        }
    };
}

/// What a hub sends as a client method's arguments: `()` or a tuple of `Serialize` values, in
/// order (`send("ReceiveMessage", (user, message))`), or a prepared `Vec<Payload>`.
pub trait IntoArguments {
    /// The arguments, in order.
    fn into_arguments(self) -> Vec<Payload>;
}

impl IntoArguments for () {
    fn into_arguments(self) -> Vec<Payload> {
        Vec::new()
    }
}

impl IntoArguments for Vec<Payload> {
    fn into_arguments(self) -> Vec<Payload> {
        self
    }
}

tuple_arguments!(A1);
tuple_arguments!(A1, A2);
tuple_arguments!(A1, A2, A3);
tuple_arguments!(A1, A2, A3, A4);
tuple_arguments!(A1, A2, A3, A4, A5);
tuple_arguments!(A1, A2, A3, A4, A5, A6);
tuple_arguments!(A1, A2, A3, A4, A5, A6, A7);
tuple_arguments!(A1, A2, A3, A4, A5, A6, A7, A8);
