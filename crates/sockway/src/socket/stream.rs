//! `futures` [`Stream`] of received messages and [`Sink`] of messages to send, for the whole
//! socket and for its halves. The stream ends after a clean close; an error is yielded once.

use std::pin::Pin;
use std::task::{Context, Poll};

use futures_core::Stream;
use futures_sink::Sink;
use sockway_proto::{CloseCode, ConnectionState, Message};
use tokio::io::{AsyncRead, AsyncWrite};

use super::ops::EngineAccess;
use super::{WebSocket, WebSocketReader, WebSocketWriter};
use crate::error::Error;

fn into_item(result: Result<Option<Message>, Error>) -> Option<Result<Message, Error>> {
    result.transpose()
}

impl<S: AsyncRead + AsyncWrite + Unpin> Stream for WebSocket<S> {
    type Item = Result<Message, Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut().poll_recv(cx).map(into_item)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Stream for WebSocketReader<S> {
    type Item = Result<Message, Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut().poll_recv(cx).map(into_item)
    }
}

fn poll_ready<S, A>(access: &mut A, cx: &mut Context<'_>) -> Poll<Result<(), Error>>
where
    S: AsyncRead + AsyncWrite + Unpin,
    A: EngineAccess<S>,
{
    access.with_engine(cx, |engine, cx| engine.poll_send_ready(cx))
}

fn start_send<S, A>(access: &mut A, message: Message) -> Result<(), Error>
where
    S: AsyncRead + AsyncWrite + Unpin,
    A: EngineAccess<S>,
{
    access.engine(|engine| {
        engine.conn.send(&message)?;
        engine.stats.messages_sent += 1;
        Ok(())
    })
}

fn poll_flush<S, A>(access: &mut A, cx: &mut Context<'_>) -> Poll<Result<(), Error>>
where
    S: AsyncRead + AsyncWrite + Unpin,
    A: EngineAccess<S>,
{
    access.with_engine(cx, |engine, cx| engine.poll_flush(cx))
}

/// Closing the sink sends close 1000 (if nothing was sent yet) and flushes; the peer's reply
/// arrives on the receiving side.
fn poll_close<S, A>(access: &mut A, cx: &mut Context<'_>) -> Poll<Result<(), Error>>
where
    S: AsyncRead + AsyncWrite + Unpin,
    A: EngineAccess<S>,
{
    access.with_engine(cx, |engine, cx| {
        if engine.conn.state() == ConnectionState::Open {
            engine.conn.close(CloseCode::NORMAL, "")?;
        }
        engine.poll_flush(cx)
    })
}

macro_rules! impl_sink {
    ($ty:ident) => {
        impl<S: AsyncRead + AsyncWrite + Unpin> Sink<Message> for $ty<S> {
            type Error = Error;

            fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
                poll_ready(self.get_mut(), cx)
            }

            fn start_send(self: Pin<&mut Self>, message: Message) -> Result<(), Error> {
                start_send(self.get_mut(), message)
            }

            fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
                poll_flush(self.get_mut(), cx)
            }

            fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
                poll_close(self.get_mut(), cx)
            }
        }
    };
}

impl_sink!(WebSocket);
impl_sink!(WebSocketWriter);
