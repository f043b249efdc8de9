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
//! A client's TLS stream served over HTTP/1 is taken out the same way, and read and written
//! behind `tokio::io::split` without hyper's layers. Anything else (TLS to the backend, an
//! HTTP/2 extended CONNECT stream, a guard still following a request body) keeps its layers,
//! behind `tokio::io::split`.

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
use super::front_socket::FrontSocket;
use crate::guard::HeadGuard;

/// The IO type the plain-TCP listener serves HTTP/1 on (see [`crate::listener`]).
pub type FrontIo = TokioIo<HeadGuard<TcpStream>>;

/// The IO type the TLS listener serves HTTP/1 on when the client chose it by ALPN.
pub type FrontTlsIo = TokioIo<HeadGuard<FrontTls>>;

/// A client's TLS stream, over a socket the io_uring relay can borrow.
pub type FrontTls = tokio_rustls::server::TlsStream<FrontSocket>;

/// Any stream the relay can fall back to (`Any`, so that the io_uring relay can tell a
/// client's [`FrontTls`] among them).
pub trait Stream: AsyncRead + AsyncWrite + Send + Unpin + std::any::Any {}

impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> Stream for T {}

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

    /// The client's end of an upgrade served by the gateway's listener. Over TLS the relay
    /// reads the TLS stream itself, without hyper's and the guard's layers around it.
    pub fn client(upgraded: Upgraded) -> Self {
        let upgraded = match upgraded.downcast::<FrontIo>() {
            Ok(parts) => {
                return match parts.io.into_inner().into_upgraded() {
                    Ok((tcp, rest)) => Self::tcp(tcp, join(parts.read_buf, &rest)),
                    Err(guard) => Self::other(Box::new(guard), parts.read_buf),
                }
            }
            Err(upgraded) => upgraded,
        };
        match upgraded.downcast::<FrontTlsIo>() {
            Ok(parts) => match parts.io.into_inner().into_upgraded() {
                Ok((tls, rest)) => Self::other(Box::new(tls), join(parts.read_buf, &rest)),
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

impl ReadSide {
    /// Reads into `buf` what the source has, as `poll_read` does, with fewer steps on a
    /// plain TCP socket (Linux): one `recvfrom(2)` as a raw system call if tokio last saw the
    /// socket readable, and a wait for readiness, which leaves the waker, only when it is
    /// not. A read that fills less than `buf` drained the socket, so it marks the socket not
    /// readable, as tokio's `poll_read` does (no `EAGAIN` call per message); `drained` says
    /// the caller's last read was such a one, so this one starts with the wait.
    pub fn poll_read_now(
        &mut self,
        cx: &mut Context<'_>,
        buf: &mut [u8],
        drained: bool,
    ) -> Poll<io::Result<usize>> {
        #[cfg(target_os = "linux")]
        if let ReadSide::Tcp(half) = self {
            let tcp: &TcpStream = half.as_ref();
            // A unit of the task's coop budget per read, as `poll_read` takes, so that a
            // source that never runs dry still lets the thread's other tasks run: taken by
            // the wait for readiness, or here when there is none.
            let coop = match drained {
                true => {
                    std::task::ready!(tcp.poll_read_ready(cx))?;
                    None
                }
                false => Some(std::task::ready!(tokio::task::coop::poll_proceed(cx))),
            };
            loop {
                let mut short = 0;
                // A short read is reported as `WouldBlock` to `try_io`, which then clears
                // the readiness it saw before the call (and only that).
                let read = tcp.try_io(tokio::io::Interest::READABLE, || {
                    let n = recv(tcp, buf)?;
                    if n > 0 && n < buf.len() {
                        short = n;
                        return Err(io::ErrorKind::WouldBlock.into());
                    }
                    Ok(n)
                });
                if short > 0 {
                    coop.iter().for_each(|c| c.made_progress());
                    return Poll::Ready(Ok(short));
                }
                match read {
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        std::task::ready!(tcp.poll_read_ready(cx))?;
                    }
                    done => {
                        coop.iter().for_each(|c| c.made_progress());
                        return Poll::Ready(done);
                    }
                }
            }
        }
        let _ = drained;
        let mut read = ReadBuf::new(buf);
        std::task::ready!(Pin::new(self).poll_read(cx, &mut read))?;
        Poll::Ready(Ok(read.filled().len()))
    }
}

impl WriteSide {
    /// Writes what a plain TCP socket takes now, without waiting and without a waker: one
    /// `sendto(2)` if tokio last saw the socket writable. `None` when that is not known to
    /// succeed (another stream, a platform other than Linux, or the socket was full: tokio
    /// then marks it not writable, and the caller waits with `poll_write`, which does not
    /// try the send again first). The copy loop's usual write of what it just read, where a
    /// `poll_write` would also take a coop budget unit and go through glibc's `send`, whose
    /// cancellation point costs as much again as the rest of the call's user-space path.
    pub fn try_write_now(&self, bytes: &[u8]) -> Option<io::Result<usize>> {
        #[cfg(target_os = "linux")]
        if let WriteSide::Tcp(half) = self {
            let tcp: &TcpStream = half.as_ref();
            return match tcp.try_io(tokio::io::Interest::WRITABLE, || send(tcp, bytes)) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => None,
                written => Some(written),
            };
        }
        let _ = bytes;
        None
    }
}

/// `recvfrom(2)` on `tcp` into `buf`, as a raw system call: glibc's `recv` wrapper adds a
/// thread-cancellation point the relay never needs.
#[cfg(target_os = "linux")]
fn recv(tcp: &TcpStream, buf: &mut [u8]) -> io::Result<usize> {
    use std::os::fd::AsRawFd;
    let (fd, ptr, len) = (tcp.as_raw_fd(), buf.as_mut_ptr(), buf.len());
    // SAFETY: `buf` is valid for writes of `len` bytes for the whole call; the descriptor
    // belongs to `tcp`, which outlives the call; no address is asked for.
    retried(|| unsafe { libc::syscall(libc::SYS_recvfrom, fd, ptr, len, 0, 0usize, 0usize) })
}

/// `sendto(2)` on `tcp` with `MSG_NOSIGNAL` (a peer that has gone must not raise SIGPIPE),
/// as a raw system call, for the same reason as [`recv`].
#[cfg(target_os = "linux")]
fn send(tcp: &TcpStream, bytes: &[u8]) -> io::Result<usize> {
    use std::os::fd::AsRawFd;
    let (fd, ptr, len) = (tcp.as_raw_fd(), bytes.as_ptr(), bytes.len());
    let flags = libc::MSG_NOSIGNAL;
    // SAFETY: `bytes` is valid for reads of `len` bytes for the whole call; the descriptor
    // belongs to `tcp`, which outlives the call; no address is passed.
    retried(|| unsafe { libc::syscall(libc::SYS_sendto, fd, ptr, len, flags, 0usize, 0usize) })
}

/// Runs a system call until a signal does not interrupt it: its result as a byte count,
/// or the error it set.
#[cfg(target_os = "linux")]
fn retried(mut call: impl FnMut() -> libc::c_long) -> io::Result<usize> {
    loop {
        if let Ok(n) = usize::try_from(call()) {
            return Ok(n);
        }
        let error = io::Error::last_os_error();
        if error.kind() != io::ErrorKind::Interrupted {
            return Err(error);
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
