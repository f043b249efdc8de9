//! Telling an HTTP/1 client from an HTTP/2 one on a plain TCP connection, or on a TLS one
//! whose client named no protocol by ALPN, by looking at its first bytes without taking
//! them.
//!
//! An HTTP/2 client without TLS starts with the connection preface (RFC 9113 section 3.4,
//! "prior knowledge"); anything that differs from the preface in the bytes received so far is
//! HTTP/1. The listener serves such a connection with hyper's HTTP/1 server directly, so
//! that after a WebSocket upgrade the relay can take the socket back out (see
//! [`crate::proxy::upgraded`]); when the first bytes cannot tell yet, it keeps hyper-util's
//! automatic server, which waits for the whole preface.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use sockway_proto::handshake::H2_PREFACE as PREFACE;
use tokio::io::{AsyncRead, ReadBuf};
use tokio::net::TcpStream;

use crate::proxy::upgraded::FrontTls;

/// What the first bytes of a connection say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Preface {
    /// Not the HTTP/2 preface: HTTP/1.
    Http1,
    /// The preface, part of it, nothing yet, or an error: let the automatic server decide.
    Unknown,
}

/// Waits for the client's first bytes and classifies them (nothing is consumed).
pub async fn sniff(stream: &TcpStream) -> Preface {
    let mut buf = [0u8; 24];
    match stream.peek(&mut buf).await {
        Ok(n) => classify(&buf[..n.min(buf.len())]),
        Err(_) => Preface::Unknown,
    }
}

/// Waits for the first plaintext a TLS client sends and classifies it. The plaintext stays in
/// the session's rustls connection for hyper to read; records are read from the socket only
/// until the first one with plaintext.
pub async fn sniff_tls(stream: &mut FrontTls) -> Preface {
    std::future::poll_fn(|cx| poll_sniff_tls(stream, cx)).await
}

fn poll_sniff_tls(stream: &mut FrontTls, cx: &mut Context<'_>) -> Poll<Preface> {
    let (socket, conn) = stream.get_mut();
    loop {
        let first = match conn.reader().into_first_chunk() {
            Ok(first) => first,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => &[][..],
            Err(_) => return Poll::Ready(Preface::Unknown),
        };
        // The first record's plaintext decides; where it cannot (a part of the preface), the
        // automatic server does.
        let seen = first.len().min(PREFACE.len());
        let class = classify(&first[..seen]);
        if class == Preface::Http1 || seen > 0 {
            return Poll::Ready(class);
        }
        let mut socket = PollReader {
            io: &mut *socket,
            cx,
        };
        match conn.read_tls(&mut socket) {
            Ok(0) => return Poll::Ready(Preface::Unknown),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Poll::Pending,
            Err(_) => return Poll::Ready(Preface::Unknown),
        }
        // An error stays in the connection for hyper's first read to report.
        if conn.process_new_packets().is_err() {
            return Poll::Ready(Preface::Unknown);
        }
    }
}

/// An async reader read as a blocking one: `WouldBlock` where it would wait (its waker is
/// left with `cx`).
struct PollReader<'a, 'b, R> {
    io: &'a mut R,
    cx: &'a mut Context<'b>,
}

impl<R: AsyncRead + Unpin> io::Read for PollReader<'_, '_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut read = ReadBuf::new(buf);
        match Pin::new(&mut *self.io).poll_read(self.cx, &mut read) {
            Poll::Ready(Ok(())) => Ok(read.filled().len()),
            Poll::Ready(Err(e)) => Err(e),
            Poll::Pending => Err(io::ErrorKind::WouldBlock.into()),
        }
    }
}

/// Classifies the first bytes received.
pub fn classify(first: &[u8]) -> Preface {
    if !first.is_empty() && !PREFACE.starts_with(first) {
        Preface::Http1
    } else {
        Preface::Unknown
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http1_methods_are_told_apart_early() {
        assert_eq!(classify(b"GET / HTTP/1.1\r\n"), Preface::Http1);
        assert_eq!(classify(b"G"), Preface::Http1);
        assert_eq!(classify(b"POST"), Preface::Http1);
        assert_eq!(classify(b"PUT / HTTP/1.1"), Preface::Http1);
        assert_eq!(classify(b"\r\nGET"), Preface::Http1);
    }

    #[cfg(target_os = "linux")]
    /// A TLS session over loopback in which the client sent `first`: what the sniff says,
    /// and what the server's stream then reads (the same bytes).
    async fn sniffed_over_tls(first: &'static [u8]) -> (Preface, Vec<u8>) {
        use std::sync::Arc;
        use tokio::io::{AsyncReadExt, AsyncWriteExt};

        use crate::proxy::front_socket::FrontSocket;
        use crate::proxy::tls_test_support::localhost;

        let (cert, key, roots) = localhost();
        let server = rustls::ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(vec![cert], key)
            .unwrap();
        let client = rustls::ClientConfig::builder()
            .with_root_certificates(roots)
            .with_no_client_auth();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let client = tokio::spawn(async move {
            let tcp = TcpStream::connect(addr).await.unwrap();
            let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
            let connector = tokio_rustls::TlsConnector::from(Arc::new(client));
            let mut tls = connector.connect(name, tcp).await.unwrap();
            tls.write_all(first).await.unwrap();
            tls.flush().await.unwrap();
            tls
        });
        let (tcp, _) = listener.accept().await.unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(server));
        let mut stream = acceptor.accept(FrontSocket::new(tcp)).await.unwrap();
        let class = sniff_tls(&mut stream).await;
        let mut read = vec![0u8; first.len()];
        stream.read_exact(&mut read).await.unwrap();
        drop(client.await.unwrap());
        (class, read)
    }

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn a_tls_client_without_alpn_is_told_apart_and_its_bytes_stay() {
        let request = b"GET /ws HTTP/1.1\r\nHost: localhost\r\n\r\n";
        assert_eq!(
            sniffed_over_tls(request).await,
            (Preface::Http1, request.to_vec())
        );
        assert_eq!(
            sniffed_over_tls(PREFACE).await,
            (Preface::Unknown, PREFACE.to_vec())
        );
    }

    #[test]
    fn the_preface_or_part_of_it_is_left_to_the_automatic_server() {
        assert_eq!(classify(PREFACE), Preface::Unknown);
        assert_eq!(classify(b"PRI * HTTP/2"), Preface::Unknown);
        assert_eq!(classify(b"P"), Preface::Unknown);
        assert_eq!(classify(b""), Preface::Unknown);
    }
}
