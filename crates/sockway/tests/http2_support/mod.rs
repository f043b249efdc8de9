//! Helpers for the `http2_*` tests: a raw HTTP/2 client on the `h2` crate (to send exactly
//! the extended CONNECTs, resets and flow-control patterns a test needs), a stream adapter so
//! a client-role [`WebSocket`] can run over one of its streams, and a throwaway TLS identity.
#![allow(dead_code)]

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use bytes::{Buf, Bytes};
use h2::client::SendRequest;
use h2::{RecvStream, SendStream};
use http::{HeaderMap, Method, Request, Response, Version};
use sockway::server::ServerTls;
use sockway::{DeflateParams, Role, WebSocket, WebSocketConfig};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// The longest any single step may take before it counts as a hang.
pub const STEP: Duration = Duration::from_secs(10);

/// Awaits `future`, failing the test if it takes longer than [`STEP`].
pub async fn within<F: std::future::Future>(what: &str, future: F) -> F::Output {
    tokio::time::timeout(STEP, future)
        .await
        .unwrap_or_else(|_| panic!("timed out: {what}"))
}

/// An HTTP/2 connection with prior knowledge (h2c) to `addr`, driven in a task, returned
/// once the server's SETTINGS have arrived (a PING round trip after the preface).
pub async fn h2c(addr: SocketAddr) -> SendRequest<Bytes> {
    let tcp = within("connect", TcpStream::connect(addr)).await.unwrap();
    handshake(tcp).await
}

/// The HTTP/2 handshake on any transport; see [`h2c`].
pub async fn handshake<T>(io: T) -> SendRequest<Bytes>
where
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (send, mut connection) = within("h2 handshake", h2::client::handshake(io))
        .await
        .expect("h2 handshake");
    let mut ping = connection.ping_pong().expect("ping_pong");
    let pong = async {
        tokio::select! {
            result = &mut connection => panic!("connection ended early: {result:?}"),
            pong = ping.ping(h2::Ping::opaque()) => pong.expect("pong"),
        }
    };
    within("settings", pong).await;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    send
}

/// Sends an extended CONNECT (RFC 8441) for `path` with `:protocol` (if any) and `headers`,
/// and returns the response and the request's send half.
pub async fn connect(
    send: &SendRequest<Bytes>,
    authority: &str,
    path: &str,
    protocol: Option<&'static str>,
    headers: &[(&str, &str)],
) -> (Response<RecvStream>, SendStream<Bytes>) {
    let mut request = Request::builder()
        .method(Method::CONNECT)
        .version(Version::HTTP_2)
        .uri(format!("http://{authority}{path}"));
    if let Some(protocol) = protocol {
        request = request.extension(h2::ext::Protocol::from_static(protocol));
    }
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let request = request.body(()).unwrap();
    let mut send = within("ready", send.clone().ready()).await.expect("ready");
    let (response, stream) = send.send_request(request, false).expect("send request");
    let response = within("response", response).await.expect("response");
    (response, stream)
}

/// Opens a WebSocket on `path` with `sec-websocket-version: 13` and `headers`, asserting 200.
pub async fn open_socket(
    send: &SendRequest<Bytes>,
    authority: &str,
    path: &str,
    headers: &[(&str, &str)],
    compression: Option<DeflateParams>,
) -> (WebSocket<H2Io>, HeaderMap) {
    let mut all = vec![("sec-websocket-version", "13")];
    all.extend_from_slice(headers);
    let (response, stream) = connect(send, authority, path, Some("websocket"), &all).await;
    assert_eq!(response.status(), 200, "{response:?}");
    let (parts, recv) = response.into_parts();
    let io = H2Io::new(stream, recv);
    let socket = WebSocket::from_negotiated(
        io,
        Role::Client,
        WebSocketConfig::default().max_message_size(32 << 20),
        Default::default(),
        compression,
    );
    (socket, parts.headers)
}

/// Sends a plain GET on the connection and returns its status and body.
pub async fn get(send: &SendRequest<Bytes>, authority: &str, path: &str) -> (u16, String) {
    let request = Request::builder()
        .method(Method::GET)
        .version(Version::HTTP_2)
        .uri(format!("http://{authority}{path}"))
        .body(())
        .unwrap();
    let mut send = within("ready", send.clone().ready()).await.expect("ready");
    let (response, _) = send.send_request(request, true).expect("send request");
    let response = within("response", response).await.expect("response");
    let status = response.status().as_u16();
    let body = read_body(response.into_body()).await;
    (status, String::from_utf8_lossy(&body).into_owned())
}

/// Reads a response body to its end (bounded by the test: bodies here are small).
pub async fn read_body(mut body: RecvStream) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(chunk) = within("body", body.data()).await {
        let chunk = chunk.expect("body chunk");
        let _ = body.flow_control().release_capacity(chunk.len());
        out.extend_from_slice(&chunk);
    }
    out
}

/// One HTTP/2 stream as `AsyncRead + AsyncWrite`, honouring flow control both ways.
pub struct H2Io {
    pub send: SendStream<Bytes>,
    recv: RecvStream,
    buffered: Bytes,
}

impl H2Io {
    pub fn new(send: SendStream<Bytes>, recv: RecvStream) -> Self {
        Self {
            send,
            recv,
            buffered: Bytes::new(),
        }
    }
}

fn io_error(error: h2::Error) -> io::Error {
    io::Error::new(io::ErrorKind::ConnectionReset, error)
}

impl AsyncRead for H2Io {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        while self.buffered.is_empty() {
            match ready!(self.recv.poll_data(cx)) {
                None => return Poll::Ready(Ok(())),
                Some(Ok(data)) => self.buffered = data,
                Some(Err(e)) => return Poll::Ready(Err(io_error(e))),
            }
        }
        let n = self.buffered.len().min(buf.remaining());
        buf.put_slice(&self.buffered[..n]);
        self.buffered.advance(n);
        let _ = self.recv.flow_control().release_capacity(n);
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for H2Io {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        loop {
            let capacity = self.send.capacity();
            if capacity > 0 {
                let n = capacity.min(buf.len());
                self.send
                    .send_data(Bytes::copy_from_slice(&buf[..n]), false)
                    .map_err(io_error)?;
                return Poll::Ready(Ok(n));
            }
            self.send.reserve_capacity(buf.len().min(64 * 1024));
            match ready!(self.send.poll_capacity(cx)) {
                Some(Ok(_)) => {}
                Some(Err(e)) => return Poll::Ready(Err(io_error(e))),
                None => return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into())),
            }
        }
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let _ = self.send.send_data(Bytes::new(), true);
        Poll::Ready(Ok(()))
    }
}

/// A self-signed certificate for `localhost` and `127.0.0.1` as the runner's TLS identity.
pub fn self_signed() -> ServerTls {
    let certified =
        rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    ServerTls::from_pem(
        certified.cert.pem().as_bytes(),
        certified.signing_key.serialize_pem().as_bytes(),
    )
    .unwrap()
}

/// A TLS client configuration that accepts any certificate and offers `alpn`.
pub fn insecure_client_config(alpn: &[&[u8]]) -> std::sync::Arc<rustls::ClientConfig> {
    #[derive(Debug)]
    struct AcceptAny(rustls::crypto::WebPkiSupportedAlgorithms);
    impl rustls::client::danger::ServerCertVerifier for AcceptAny {
        fn verify_server_cert(
            &self,
            _: &rustls::pki_types::CertificateDer<'_>,
            _: &[rustls::pki_types::CertificateDer<'_>],
            _: &rustls::pki_types::ServerName<'_>,
            _: &[u8],
            _: rustls::pki_types::UnixTime,
        ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
            Ok(rustls::client::danger::ServerCertVerified::assertion())
        }
        fn verify_tls12_signature(
            &self,
            message: &[u8],
            cert: &rustls::pki_types::CertificateDer<'_>,
            dss: &rustls::DigitallySignedStruct,
        ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
            rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0)
        }
        fn verify_tls13_signature(
            &self,
            message: &[u8],
            cert: &rustls::pki_types::CertificateDer<'_>,
            dss: &rustls::DigitallySignedStruct,
        ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
            rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0)
        }
        fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
            self.0.supported_schemes()
        }
    }
    let provider = rustls::crypto::aws_lc_rs::default_provider();
    let algorithms = provider.signature_verification_algorithms;
    let mut config = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(provider))
        .with_safe_default_protocol_versions()
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(std::sync::Arc::new(AcceptAny(algorithms)))
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    std::sync::Arc::new(config)
}

/// A TLS connection to `addr` offering `alpn`; returns the stream and the protocol chosen.
pub async fn tls_connect(
    addr: SocketAddr,
    alpn: &[&[u8]],
) -> (tokio_rustls::client::TlsStream<TcpStream>, Option<Vec<u8>>) {
    let tcp = within("connect", TcpStream::connect(addr)).await.unwrap();
    let connector = tokio_rustls::TlsConnector::from(insecure_client_config(alpn));
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let tls = within("tls", connector.connect(name, tcp)).await.unwrap();
    let alpn = tls.get_ref().1.alpn_protocol().map(<[u8]>::to_vec);
    (tls, alpn)
}
