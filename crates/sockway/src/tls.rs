//! A server's TLS identity (rustls): the certificate chain and key, or a whole rustls
//! configuration, shared by the async `sockway::server::Server` and the event loop, which each
//! set the ALPN list (RFC 7301) for the protocols they serve.

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::ServerConfig;

/// The ALPN identifier of HTTP/2 over TLS (RFC 9113 section 3.2, RFC 7301 section 6).
#[cfg(feature = "server")]
pub(crate) const ALPN_H2: &[u8] = b"h2";
/// The ALPN identifier of HTTP/1.1 (RFC 7301 section 6).
pub(crate) const ALPN_HTTP11: &[u8] = b"http/1.1";

/// Why a TLS configuration could not be built: an unreadable or empty PEM file, a key that
/// does not match the certificate, ... The message names the file and the cause.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("TLS configuration: {0}")]
pub struct TlsConfigError(String);

/// A server's TLS identity and settings: `https://` pages and `wss://` WebSockets on the
/// same port.
///
/// Each server sets the ALPN list itself (RFC 7301). The async runner
/// (`sockway::server::Server::tls`) offers `h2, http/1.1` when its `http2` option is on, else
/// `http/1.1`, and serves each connection with the protocol the client chose (HTTP/1.1 when it
/// chose none, as RFC 9113 section 3.2 requires `h2` to be negotiated); the event loop
/// (`EventLoopOptions::tls`) speaks HTTP/1.1 only and offers `http/1.1`.
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
    /// both PEM text, with rustls' safe defaults (TLS 1.2 and 1.3, [`crate::crypto_provider`]).
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
        let config = ServerConfig::builder_with_provider(crate::crypto_provider())
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

    /// This configuration with `alpn` as its ALPN list (RFC 7301 section 3.1), most
    /// preferred first.
    pub(crate) fn config_with_alpn(&self, alpn: &[&[u8]]) -> Arc<ServerConfig> {
        let mut config = (*self.config).clone();
        config.alpn_protocols = alpn.iter().map(|name| name.to_vec()).collect();
        Arc::new(config)
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
