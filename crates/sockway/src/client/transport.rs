//! [`ClientStream`]: the transport under a client WebSocket, plain TCP for `ws://`, TLS for
//! `wss://`, or a stream of a shared HTTP/2 connection (RFC 8441), as one type so that every
//! client socket has the same type.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use super::h2::stream::Http2Stream;

/// A client connection's transport: TCP, TLS over TCP, or an HTTP/2 stream.
#[derive(Debug)]
#[non_exhaustive]
pub enum ClientStream {
    /// `ws://` over HTTP/1.1: plain TCP.
    Plain(TcpStream),
    /// `wss://` over HTTP/1.1: TLS (rustls) over TCP.
    #[cfg(feature = "tls")]
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
    /// Either scheme over HTTP/2: an extended CONNECT stream (RFC 8441) of a connection that
    /// other sockets to the same origin may share.
    Http2(Http2Stream),
}

impl ClientStream {
    /// The TCP connection underneath, when this socket has one to itself (`None` over
    /// HTTP/2, where the connection is shared and owned by the pool).
    pub fn tcp(&self) -> Option<&TcpStream> {
        match self {
            Self::Plain(tcp) => Some(tcp),
            #[cfg(feature = "tls")]
            Self::Tls(tls) => Some(tls.get_ref().0),
            Self::Http2(_) => None,
        }
    }

    /// The protocol ALPN agreed on in the TLS handshake (RFC 7301), if any.
    pub(crate) fn alpn_protocol(&self) -> Option<Vec<u8>> {
        match self {
            #[cfg(feature = "tls")]
            Self::Tls(tls) => tls.get_ref().1.alpn_protocol().map(<[u8]>::to_vec),
            _ => None,
        }
    }

    /// The server's certificate chain (DER, end entity first); empty over plain TCP.
    pub fn peer_certificates(&self) -> Vec<Vec<u8>> {
        match self {
            Self::Plain(_) => Vec::new(),
            Self::Http2(stream) => stream.peer_certificates(),
            #[cfg(feature = "tls")]
            Self::Tls(tls) => tls
                .get_ref()
                .1
                .peer_certificates()
                .map(|chain| chain.iter().map(|c| c.as_ref().to_vec()).collect())
                .unwrap_or_default(),
        }
    }
}

macro_rules! delegate {
    ($self:ident, $s:ident => $e:expr) => {
        match $self.get_mut() {
            ClientStream::Plain($s) => {
                let $s = Pin::new($s);
                $e
            }
            #[cfg(feature = "tls")]
            ClientStream::Tls($s) => {
                let $s = Pin::new(&mut **$s);
                $e
            }
            ClientStream::Http2($s) => {
                let $s = Pin::new($s);
                $e
            }
        }
    };
}

impl AsyncRead for ClientStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        delegate!(self, s => s.poll_read(cx, buf))
    }
}

impl AsyncWrite for ClientStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        delegate!(self, s => s.poll_write(cx, buf))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        delegate!(self, s => s.poll_flush(cx))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        delegate!(self, s => s.poll_shutdown(cx))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        delegate!(self, s => s.poll_write_vectored(cx, bufs))
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Self::Plain(s) => s.is_write_vectored(),
            #[cfg(feature = "tls")]
            Self::Tls(s) => s.is_write_vectored(),
            Self::Http2(s) => s.is_write_vectored(),
        }
    }
}
