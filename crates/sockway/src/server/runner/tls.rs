//! TLS for the [`super::Server`] runner (rustls): the ALPN list (RFC 7301) that lets each
//! client pick HTTP/2 (`h2`, RFC 9113 section 3.2) or HTTP/1.1, and the accept step that tells
//! the connection code which one was chosen. The identity itself is [`ServerTls`].

use tokio_rustls::TlsAcceptor;

use crate::server::info::TlsInfo;
pub(super) use crate::tls::ALPN_H2;
use crate::tls::ALPN_HTTP11;
pub use crate::tls::{ServerTls, TlsConfigError};

impl ServerTls {
    /// The acceptor with the ALPN list for the protocols served.
    pub(super) fn acceptor(&self, http2: bool) -> TlsAcceptor {
        let alpn: &[&[u8]] = if http2 {
            &[ALPN_H2, ALPN_HTTP11]
        } else {
            &[ALPN_HTTP11]
        };
        TlsAcceptor::from(self.config_with_alpn(alpn))
    }
}

/// What the handshake of `stream` negotiated.
pub(super) fn negotiated<T>(stream: &tokio_rustls::server::TlsStream<T>) -> TlsInfo {
    let connection = stream.get_ref().1;
    TlsInfo {
        alpn: connection.alpn_protocol().map(<[u8]>::to_vec),
        server_name: connection.server_name().map(str::to_owned),
    }
}
