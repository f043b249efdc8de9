//! TLS for `wss://` (RFC 6455 section 3 and 4.1 item 2 of the client requirements: the TLS
//! handshake precedes the opening handshake, with SNI set to the host), on rustls with the ring
//! provider. Roots: Mozilla's (webpki-roots) by default, optionally the system's, plus CA files
//! (PEM); an optional client certificate; and, for testing only, a loudly named switch that
//! accepts any server certificate.

use std::hash::{Hash, Hasher};
use std::path::PathBuf;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

use super::error::ClientError;

/// How the server's certificate is checked, and which certificate this client presents.
#[derive(Debug, Clone)]
pub(crate) struct TlsSettings {
    /// Trust Mozilla's root CAs (webpki-roots); default on.
    pub webpki_roots: bool,
    /// Trust the operating system's root CAs; default off.
    pub native_roots: bool,
    /// Extra CA certificates (PEM files).
    pub ca_files: Vec<PathBuf>,
    /// Extra CA certificates (PEM text).
    pub ca_pems: Vec<Vec<u8>>,
    /// A client certificate chain and its private key (PEM files), for mutual TLS.
    pub client_identity: Option<(PathBuf, PathBuf)>,
    /// Accept any server certificate (testing only).
    pub accept_invalid_certificates: bool,
    /// A complete rustls configuration that replaces all of the above.
    pub custom: Option<Arc<ClientConfig>>,
}

impl Default for TlsSettings {
    fn default() -> Self {
        Self {
            webpki_roots: true,
            native_roots: false,
            ca_files: Vec::new(),
            ca_pems: Vec::new(),
            client_identity: None,
            accept_invalid_certificates: false,
            custom: None,
        }
    }
}

fn setting_error(what: impl std::fmt::Display) -> ClientError {
    ClientError::InvalidSetting(what.to_string())
}

impl TlsSettings {
    /// Builds the rustls configuration offering `alpn` (RFC 7301), in order of preference.
    /// A custom configuration is used as given, with its ALPN list replaced.
    pub(crate) fn client_config(&self, alpn: &[&[u8]]) -> Result<Arc<ClientConfig>, ClientError> {
        let alpn: Vec<Vec<u8>> = alpn.iter().map(|p| p.to_vec()).collect();
        if let Some(custom) = &self.custom {
            if custom.alpn_protocols == alpn {
                return Ok(custom.clone());
            }
            let mut config = (**custom).clone();
            config.alpn_protocols = alpn;
            return Ok(Arc::new(config));
        }
        let provider = crate::crypto_provider();
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(setting_error)?;
        let builder = if self.accept_invalid_certificates {
            tracing::warn!(
                "TLS certificate verification is DISABLED (danger_accept_invalid_certificates): \
                 the connection is open to man-in-the-middle attacks; use only for testing"
            );
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate(
                    provider.signature_verification_algorithms,
                )))
        } else {
            builder.with_root_certificates(self.roots()?)
        };
        let mut config = match &self.client_identity {
            Some((cert_file, key_file)) => {
                let chain = CertificateDer::pem_file_iter(cert_file)
                    .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
                    .map_err(|e| {
                        setting_error(format!("client certificate {}: {e}", cert_file.display()))
                    })?;
                let key = PrivateKeyDer::from_pem_file(key_file).map_err(|e| {
                    setting_error(format!("client key {}: {e}", key_file.display()))
                })?;
                builder
                    .with_client_auth_cert(chain, key)
                    .map_err(|e| setting_error(format!("client certificate: {e}")))?
            }
            None => builder.with_no_client_auth(),
        };
        config.alpn_protocols = alpn;
        Ok(Arc::new(config))
    }

    /// Feeds what decides whether two connections are interchangeable (trust, client
    /// certificate, verification) to `hasher`, for the HTTP/2 pool's key.
    pub(crate) fn identity(&self, hasher: &mut impl Hasher) {
        self.webpki_roots.hash(hasher);
        self.native_roots.hash(hasher);
        self.ca_files.hash(hasher);
        self.ca_pems.hash(hasher);
        self.client_identity.hash(hasher);
        self.accept_invalid_certificates.hash(hasher);
        self.custom
            .as_ref()
            .map(|config| Arc::as_ptr(config) as usize)
            .hash(hasher);
    }

    fn roots(&self) -> Result<RootCertStore, ClientError> {
        let mut roots = RootCertStore::empty();
        if self.webpki_roots {
            roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        }
        if self.native_roots {
            let found = rustls_native_certs::load_native_certs();
            for error in &found.errors {
                tracing::warn!(%error, "while loading the system's root certificates");
            }
            let (added, ignored) = roots.add_parsable_certificates(found.certs);
            tracing::debug!(added, ignored, "system root certificates");
        }
        for file in &self.ca_files {
            let certs = CertificateDer::pem_file_iter(file)
                .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
                .map_err(|e| setting_error(format!("CA file {}: {e}", file.display())))?;
            self.add_cas(&mut roots, certs, &file.display().to_string())?;
        }
        for pem in &self.ca_pems {
            let certs = CertificateDer::pem_slice_iter(pem)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| setting_error(format!("CA certificate: {e}")))?;
            self.add_cas(&mut roots, certs, "PEM text")?;
        }
        Ok(roots)
    }

    fn add_cas(
        &self,
        roots: &mut RootCertStore,
        certs: Vec<CertificateDer<'static>>,
        source: &str,
    ) -> Result<(), ClientError> {
        if certs.is_empty() {
            return Err(setting_error(format!(
                "no PEM certificate found in {source}"
            )));
        }
        for cert in certs {
            roots
                .add(cert)
                .map_err(|e| setting_error(format!("CA certificate in {source}: {e}")))?;
        }
        Ok(())
    }
}

/// Runs the TLS handshake over `tcp`, with SNI (and certificate name check) for `host`.
/// `h2_only` says that ALPN offered only `h2`, so a server that accepts none of the offered
/// protocols (RFC 7301 section 3.2, `no_application_protocol`) has no HTTP/2.
pub(crate) async fn connect(
    config: Arc<ClientConfig>,
    host: &str,
    tcp: TcpStream,
    h2_only: bool,
) -> Result<TlsStream<TcpStream>, ClientError> {
    let name = ServerName::try_from(host.to_owned())
        .map_err(|_| setting_error(format!("{host:?} is not a valid TLS server name")))?;
    TlsConnector::from(config)
        .connect(name, tcp)
        .await
        .map_err(|e| map_tls_error(e, h2_only))
}

/// Sorts TLS failures: certificate problems (with rustls' reason) apart from the rest.
fn map_tls_error(error: std::io::Error, h2_only: bool) -> ClientError {
    let inner = error
        .get_ref()
        .and_then(|e| e.downcast_ref::<rustls::Error>());
    match inner {
        Some(rustls::Error::AlertReceived(rustls::AlertDescription::NoApplicationProtocol))
            if h2_only =>
        {
            ClientError::Http2Unavailable(
                "the server refused h2 through ALPN (no_application_protocol)".into(),
            )
        }
        Some(
            e @ (rustls::Error::InvalidCertificate(_)
            | rustls::Error::NoCertificatesPresented
            | rustls::Error::InvalidCertRevocationList(_)),
        ) => ClientError::Certificate {
            reason: e.to_string(),
        },
        Some(e) => ClientError::Tls(e.to_string()),
        None => match error.kind() {
            std::io::ErrorKind::UnexpectedEof => {
                ClientError::Tls("the server closed the connection during the TLS handshake".into())
            }
            _ => ClientError::from_io(error),
        },
    }
}

/// The verifier behind `danger_accept_invalid_certificates`: any chain and name pass, but the
/// handshake signatures are still checked against the presented certificate.
#[derive(Debug)]
struct AcceptAnyCertificate(WebPkiSupportedAlgorithms);

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_schemes()
    }
}
