//! The TCP socket under a client's TLS stream, which the io_uring relay can borrow.
//!
//! The relay's io_uring loops (`relay_uring.rs`) take a TLS session over with its rustls
//! connection inside the `tokio_rustls` stream, and give it back to tokio's tasks when the
//! session needs the slower path (a close order, the end of a side). `tokio_rustls` builds
//! its stream only from a handshake, never from a socket and a connection, so the stream
//! stays whole and its socket is taken out of tokio's reactor underneath it ([`park`]) and
//! put back ([`unpark`]). Encrypted bytes the loop had not finished writing when it gave the
//! session back go out first ([`leave_unsent`]): the TLS record stream cannot skip them.
//!
//!
//! On Linux the socket also follows the client's TLS records as they are read
//! ([`RecordScan`]): the relay takes a TLS 1.3 session from rustls only at a record
//! boundary, with the secrets its key log recorded under the ClientHello's random
//! (`tls13_secrets.rs`), which the socket drops when it closes.
//!
//! [`park`]: FrontSocket::park
//! [`unpark`]: FrontSocket::unpark
//! [`leave_unsent`]: FrontSocket::leave_unsent

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

#[cfg(target_os = "linux")]
use super::record_scan::RecordScan;

/// Where the socket is.
#[derive(Debug)]
enum Place {
    /// In tokio's reactor: the stream reads and writes through it.
    Tokio(TcpStream),
    /// Lent to an io_uring loop (blocking mode; the loop waits, not the caller).
    #[cfg(target_os = "linux")]
    Parked(std::net::TcpStream),
    /// Lost while moving between the two (the runtime refused it back).
    Gone,
}

/// A client's TCP socket under its TLS stream (see the module's documentation).
#[derive(Debug)]
pub struct FrontSocket {
    place: Place,
    /// Encrypted bytes to write before any other.
    unsent: Vec<u8>,
    /// The client's records so far.
    #[cfg(target_os = "linux")]
    scan: RecordScan,
}

impl FrontSocket {
    /// The accepted socket, in tokio's reactor.
    pub fn new(tcp: TcpStream) -> Self {
        Self {
            place: Place::Tokio(tcp),
            unsent: Vec::new(),
            #[cfg(target_os = "linux")]
            scan: RecordScan::default(),
        }
    }

    /// Whether what was read from the client ends at the end of a TLS record.
    #[cfg(target_os = "linux")]
    pub(super) fn at_record_boundary(&self) -> bool {
        self.scan.at_boundary()
    }

    /// The random of the client's ClientHello, once read.
    #[cfg(target_os = "linux")]
    pub(super) fn client_random(&self) -> Option<[u8; 32]> {
        self.scan.client_random()
    }

    /// Takes the socket out of tokio's reactor for an io_uring loop: its descriptor, or
    /// `None` if tokio could not let go of it (the socket is then lost).
    #[cfg(target_os = "linux")]
    pub(super) fn park(&mut self) -> Option<std::os::fd::RawFd> {
        use std::os::fd::AsRawFd;
        let Place::Tokio(tcp) = std::mem::replace(&mut self.place, Place::Gone) else {
            return None;
        };
        let std = tcp.into_std().ok()?;
        std.set_nonblocking(false).ok()?;
        let fd = std.as_raw_fd();
        self.place = Place::Parked(std);
        Some(fd)
    }

    /// Puts a parked socket back into `runtime`'s reactor; false if the runtime cannot take
    /// it (it is shutting down), and the socket is closed.
    #[cfg(target_os = "linux")]
    pub(super) fn unpark(&mut self, runtime: &tokio::runtime::Handle) -> bool {
        let Place::Parked(std) = std::mem::replace(&mut self.place, Place::Gone) else {
            return false;
        };
        let _entered = runtime.enter();
        if std.set_nonblocking(true).is_err() {
            return false;
        }
        match TcpStream::from_std(std) {
            Ok(tcp) => {
                self.place = Place::Tokio(tcp);
                true
            }
            Err(_) => false,
        }
    }

    /// The parked socket's descriptor.
    #[cfg(target_os = "linux")]
    pub(super) fn parked_fd(&self) -> Option<std::os::fd::RawFd> {
        use std::os::fd::AsRawFd;
        match &self.place {
            Place::Parked(std) => Some(std.as_raw_fd()),
            _ => None,
        }
    }

    /// Encrypted bytes the io_uring loop did not finish writing: they go out before
    /// anything written after.
    #[cfg(target_os = "linux")]
    pub(super) fn leave_unsent(&mut self, bytes: &[u8]) {
        self.unsent.extend_from_slice(bytes);
    }

    /// Sends what is left unsent, then `last`, on the parked socket as far as it takes them
    /// at once: the last words (a TLS alert) before the socket is closed.
    #[cfg(target_os = "linux")]
    pub(super) fn send_last(&mut self, last: &[u8]) {
        use nix::sys::socket::{send, MsgFlags};
        use std::os::fd::AsRawFd;
        let Place::Parked(std) = &self.place else {
            return;
        };
        self.unsent.extend_from_slice(last);
        let flags = MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_NOSIGNAL;
        let _ = send(std.as_raw_fd(), &self.unsent, flags);
        self.unsent.clear();
    }

    fn tcp(&mut self) -> io::Result<&mut TcpStream> {
        match &mut self.place {
            Place::Tokio(tcp) => Ok(tcp),
            _ => Err(io::ErrorKind::NotConnected.into()),
        }
    }

    /// Writes what is left unsent; ready once none is.
    fn poll_unsent(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while !self.unsent.is_empty() {
            let Self { place, unsent, .. } = self;
            let Place::Tokio(tcp) = place else {
                return Poll::Ready(Err(io::ErrorKind::NotConnected.into()));
            };
            match std::task::ready!(Pin::new(tcp).poll_write(cx, unsent))? {
                0 => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                n => {
                    unsent.drain(..n);
                }
            }
        }
        Poll::Ready(Ok(()))
    }
}

impl AsyncRead for FrontSocket {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        #[cfg(target_os = "linux")]
        let before = buf.filled().len();
        std::task::ready!(Pin::new(this.tcp()?).poll_read(cx, buf))?;
        #[cfg(target_os = "linux")]
        this.scan.feed(&buf.filled()[before..]);
        Poll::Ready(Ok(()))
    }
}

#[cfg(target_os = "linux")]
impl Drop for FrontSocket {
    fn drop(&mut self) {
        if let Some(random) = self.scan.client_random() {
            super::tls13_secrets::secret_log().forget(&random);
        }
    }
}

impl AsyncWrite for FrontSocket {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        std::task::ready!(this.poll_unsent(cx))?;
        Pin::new(this.tcp()?).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        std::task::ready!(this.poll_unsent(cx))?;
        Pin::new(this.tcp()?).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        std::task::ready!(this.poll_unsent(cx))?;
        Pin::new(this.tcp()?).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        std::task::ready!(this.poll_unsent(cx))?;
        Pin::new(this.tcp()?).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    async fn pair() -> (FrontSocket, TcpStream) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let peer = TcpStream::connect(listener.local_addr().unwrap());
        let (peer, accepted) = tokio::join!(peer, listener.accept());
        (FrontSocket::new(accepted.unwrap().0), peer.unwrap())
    }

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn bytes_left_unsent_go_out_before_later_ones_once_unparked() {
        let (mut front, mut peer) = pair().await;
        assert!(front.park().is_some());
        assert!(front.parked_fd().is_some());
        front.leave_unsent(b"first ");
        assert!(front.unpark(&tokio::runtime::Handle::current()));
        front.write_all(b"second").await.unwrap();
        front.flush().await.unwrap();
        let mut got = [0u8; 12];
        peer.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"first second");
        peer.write_all(b"back").await.unwrap();
        let mut back = [0u8; 4];
        front.read_exact(&mut back).await.unwrap();
        assert_eq!(&back, b"back");
    }

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn a_parked_socket_neither_reads_nor_writes() {
        let (mut front, _peer) = pair().await;
        front.park().unwrap();
        assert!(front.write_all(b"x").await.is_err());
        let mut one = [0u8; 1];
        assert!(front.read(&mut one).await.is_err());
    }
}
