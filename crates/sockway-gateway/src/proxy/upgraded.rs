//! The two ends of an upgraded WebSocket connection, ready for the relay.
//!
//! hyper hands an upgrade over as `Upgraded`, a boxed stream that replays what hyper had
//! read ahead and then reads through every layer the connection was served with. For the
//! common case, plain TCP on both sides, the relay does not need any of them: the sockets
//! are taken back out (`Upgraded::downcast`, then the framing guard's
//! [`HeadGuard::into_upgraded`](crate::guard::HeadGuard::into_upgraded)) and split into
//! owned halves, which read and write without a lock. The bytes already read from a side
//! (hyper's read-ahead, then the guard's) are kept as that side's [`Side::prefix`]: the relay
//! sends them on before anything else, so nothing is lost or reordered.
//!
//! Anything else (TLS on either side, an HTTP/2 extended CONNECT stream, a guard still
//! following a request body) keeps its layers, behind `tokio::io::split`.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf, ReadHalf, WriteHalf};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;

use super::backend::BackendIo;
use crate::guard::HeadGuard;

/// The IO type the plain-TCP listener serves HTTP/1 on (see [`crate::listener`]).
pub type FrontIo = TokioIo<HeadGuard<TcpStream>>;

/// Any stream the relay can fall back to.
pub trait Stream: AsyncRead + AsyncWrite + Send + Unpin {}

impl<T: AsyncRead + AsyncWrite + Send + Unpin> Stream for T {}

/// The reading half of one end.
pub enum ReadSide {
    /// A plain TCP socket's own half.
    Tcp(OwnedReadHalf),
    /// Any other stream.
    Other(ReadHalf<Box<dyn Stream>>),
}

/// The writing half of one end.
pub enum WriteSide {
    /// A plain TCP socket's own half.
    Tcp(OwnedWriteHalf),
    /// Any other stream.
    Other(WriteHalf<Box<dyn Stream>>),
}

/// One end of a relayed connection.
pub struct Side {
    /// Where this end's bytes are read.
    pub read: ReadSide,
    /// Where bytes for this end are written.
    pub write: WriteSide,
    /// Bytes this end already sent that were read before the relay started.
    pub prefix: Bytes,
}

impl Side {
    /// A plain TCP socket.
    pub fn tcp(stream: TcpStream, prefix: Bytes) -> Self {
        let (read, write) = stream.into_split();
        Self {
            read: ReadSide::Tcp(read),
            write: WriteSide::Tcp(write),
            prefix,
        }
    }

    /// Any other stream.
    pub fn other(stream: Box<dyn Stream>, prefix: Bytes) -> Self {
        let (read, write) = tokio::io::split(stream);
        Self {
            read: ReadSide::Other(read),
            write: WriteSide::Other(write),
            prefix,
        }
    }

    /// The client's end of an upgrade served by the gateway's listener.
    pub fn client(upgraded: Upgraded) -> Self {
        match upgraded.downcast::<FrontIo>() {
            Ok(parts) => match parts.io.into_inner().into_upgraded() {
                Ok((tcp, rest)) => Self::tcp(tcp, join(parts.read_buf, &rest)),
                Err(guard) => Self::other(Box::new(guard), parts.read_buf),
            },
            Err(upgraded) => Self::other(Box::new(TokioIo::new(upgraded)), Bytes::new()),
        }
    }

    /// The backend's end of an upgrade made on a [`BackendIo`] connection.
    pub fn backend(upgraded: Upgraded) -> Self {
        match upgraded.downcast::<TokioIo<BackendIo>>() {
            Ok(parts) => match parts.io.into_inner() {
                BackendIo::Plain(tcp) => Self::tcp(tcp, parts.read_buf),
                tls => Self::other(Box::new(tls), parts.read_buf),
            },
            Err(upgraded) => Self::other(Box::new(TokioIo::new(upgraded)), Bytes::new()),
        }
    }
}

/// `first` followed by `rest`.
fn join(first: Bytes, rest: &[u8]) -> Bytes {
    if rest.is_empty() {
        return first;
    }
    let mut all = BytesMut::with_capacity(first.len() + rest.len());
    all.extend_from_slice(&first);
    all.extend_from_slice(rest);
    all.freeze()
}

impl AsyncRead for ReadSide {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            ReadSide::Tcp(s) => Pin::new(s).poll_read(cx, buf),
            ReadSide::Other(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for WriteSide {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            WriteSide::Tcp(s) => Pin::new(s).poll_write(cx, buf),
            WriteSide::Other(s) => Pin::new(s).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            WriteSide::Tcp(s) => Pin::new(s).poll_flush(cx),
            WriteSide::Other(s) => Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            WriteSide::Tcp(s) => Pin::new(s).poll_shutdown(cx),
            WriteSide::Other(s) => Pin::new(s).poll_shutdown(cx),
        }
    }
}
