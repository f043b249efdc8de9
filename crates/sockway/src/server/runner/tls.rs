//! TLS for the [`super::Server`] runner (rustls): the certificate, the ALPN list (RFC 7301)
//! that lets each client pick HTTP/2 (`h2`, RFC 9113 section 3.2) or HTTP/1.1, and the accept
//! step that tells the connection code which one was chosen.

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::ServerConfig;
use tokio_rustls::TlsAcceptor;

use crate::server::info::TlsInfo;

/// The ALPN identifier of HTTP/2 over TLS (RFC 9113 section 3.2, RFC 7301 section 6).
pub(super) const ALPN_H2: &[u8] = b"h2";
/// The ALPN identifier of HTTP/1.1 (RFC 7301 section 6).
pub(super) const ALPN_HTTP11: &[u8] = b"http/1.1";

/// Why a TLS configuration could not be built: an unreadable or empty PEM file, a key that
/// does not match the certificate, ... The message names the file and the cause.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("TLS configuration: {0}")]
pub struct TlsConfigError(String);

/// The server's TLS identity and settings, for [`super::Server::tls`]: `https://` pages and
/// `wss://` WebSockets on the same port.
///
/// The runner sets the ALPN list itself (RFC 7301): `h2, http/1.1` when
/// [`super::ServerOptions::http2`] is on, else `http/1.1`, and serves each connection with the
/// protocol the client chose (HTTP/1.1 when it chose none, as RFC 9113 section 3.2 requires
/// `h2` to be negotiated).
#[derive(Clone)]
pub struct ServerTls {
    config: Arc<ServerConfig>,
    chain: Vec<CertificateDer<'static>>,
}

impl fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerTls")
            .field("certificates", &self.chain.len())
            .finish_non_exhaustive()
    }
}

impl ServerTls {
    /// A certificate chain (end entity first) and its private key (PKCS#8, PKCS#1 or SEC1),
    /// both PEM text, with rustls' safe defaults (TLS 1.2 and 1.3, ring).
    pub fn from_pem(cert_chain: &[u8], key: &[u8]) -> Result<Self, TlsConfigError> {
        let chain = CertificateDer::pem_slice_iter(cert_chain)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| TlsConfigError(format!("certificate chain: {e}")))?;
        let key = PrivateKeyDer::from_pem_slice(key)
            .map_err(|e| TlsConfigError(format!("private key: {e}")))?;
        Self::from_der(chain, key)
    }

    /// Like [`ServerTls::from_pem`], reading the two PEM files.
    pub fn from_pem_files(
        cert_chain: impl AsRef<Path>,
        key: impl AsRef<Path>,
    ) -> Result<Self, TlsConfigError> {
        let (cert_path, key_path) = (cert_chain.as_ref(), key.as_ref());
        let read = |path: &Path| {
            std::fs::read(path).map_err(|e| TlsConfigError(format!("{}: {e}", path.display())))
        };
        let (chain, key) = (read(cert_path)?, read(key_path)?);
        Self::from_pem(&chain, &key).map_err(|TlsConfigError(e)| {
            TlsConfigError(format!(
                "{e} (from {} and {})",
                cert_path.display(),
                key_path.display()
            ))
        })
    }

    /// A certificate chain (DER, end entity first) and its private key.
    pub fn from_der(
        chain: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
    ) -> Result<Self, TlsConfigError> {
        if chain.is_empty() {
            return Err(TlsConfigError("no certificate found".into()));
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsConfigError(e.to_string()))?
            .with_no_client_auth()
            .with_single_cert(chain.clone(), key)
            .map_err(|e| TlsConfigError(format!("certificate and key: {e}")))?;
        Ok(Self {
            config: Arc::new(config),
            chain,
        })
    }

    /// A complete rustls configuration (client authentication, session resumption, a
    /// certificate resolver, ...). Its ALPN list is replaced as described on [`ServerTls`].
    pub fn from_config(config: Arc<ServerConfig>) -> Self {
        Self {
            config,
            chain: Vec::new(),
        }
    }

    /// The certificate chain given (DER, end entity first), e.g. to print its fingerprint;
    /// empty for [`ServerTls::from_config`].
    pub fn certificate_chain(&self) -> &[CertificateDer<'static>] {
        &self.chain
    }

    /// The acceptor with the ALPN list for the protocols served.
    pub(super) fn acceptor(&self, http2: bool) -> TlsAcceptor {
        let mut config = (*self.config).clone();
        config.alpn_protocols = if http2 {
            vec![ALPN_H2.to_vec(), ALPN_HTTP11.to_vec()]
        } else {
            vec![ALPN_HTTP11.to_vec()]
        };
        TlsAcceptor::from(Arc::new(config))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_pem_is_reported_not_panicked_on() {
        let e = ServerTls::from_pem(b"", b"").unwrap_err();
        assert!(e.to_string().contains("TLS configuration"), "{e}");
        let e = ServerTls::from_pem(b"not pem", b"not pem").unwrap_err();
        assert!(!e.to_string().is_empty());
        let e =
            ServerTls::from_pem_files("/nonexistent/cert.pem", "/nonexistent/key.pem").unwrap_err();
        assert!(e.to_string().contains("/nonexistent/cert.pem"), "{e}");
    }
}
