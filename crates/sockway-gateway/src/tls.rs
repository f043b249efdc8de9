//! TLS on both sides, with rustls and `sockway::crypto_provider`: listener certificates
//! chosen by SNI among the listeners that share a port (multi-site; an unknown name is refused
//! unless a listener without host names catches it), and client configurations for `Https`
//! backends that trust either the settings' `trustedRootCertificate` or the web PKI roots.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use rustls::client::ClientConfig;
use rustls::server::{ClientHello, ResolvesServerCert, ServerConfig};
use rustls::sign::CertifiedKey;
use rustls::RootCertStore;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio_rustls::{TlsAcceptor, TlsConnector};

use crate::config::HttpListener;
use crate::routing::wildcard_matches;

/// Loads a PEM certificate chain and key into a signing key.
pub fn load_certified_key(cert_file: &str, key_file: &str) -> Result<CertifiedKey, String> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert_file)
        .map_err(|e| format!("{cert_file}: {e}"))?
        .collect::<Result<_, _>>()
        .map_err(|e| format!("{cert_file}: {e}"))?;
    if certs.is_empty() {
        return Err(format!("{cert_file}: no certificate in the file"));
    }
    let key = PrivateKeyDer::from_pem_file(key_file).map_err(|e| format!("{key_file}: {e}"))?;
    CertifiedKey::from_der(certs, key, &sockway::crypto_provider())
        .map_err(|e| format!("{key_file}: {e}"))
}

/// Picks a listener's certificate by SNI: exact host name, then the longest `*.domain` that
/// matches one label ([`crate::routing::wildcard_matches`]), then the listener without host
/// names (the catch-all). Without a catch-all, a client whose SNI matches no listener (or
/// that sends none) gets no certificate: rustls then fails the handshake with an alert,
/// instead of serving some other site's certificate, which would tell the client about that
/// site and lead it to send its request to the wrong listener.
#[derive(Debug)]
struct SniResolver {
    exact: HashMap<String, Arc<CertifiedKey>>,
    wildcard: Vec<(String, Arc<CertifiedKey>)>,
    catch_all: Option<Arc<CertifiedKey>>,
}

impl ResolvesServerCert for SniResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let Some(name) = hello.server_name().map(str::to_ascii_lowercase) else {
            return self.catch_all.clone();
        };
        let name = name.trim_end_matches('.');
        if let Some(key) = self.exact.get(name) {
            return Some(key.clone());
        }
        self.wildcard
            .iter()
            .filter(|(suffix, _)| wildcard_matches(suffix, name))
            .max_by_key(|(suffix, _)| suffix.len())
            .map(|(_, key)| key.clone())
            .or_else(|| self.catch_all.clone())
    }
}

/// The TLS acceptor for the `Https` listeners sharing one port (ALPN `h2`, `http/1.1`).
pub fn acceptor(listeners: &[&HttpListener]) -> Result<TlsAcceptor, String> {
    let mut exact = HashMap::new();
    let mut wildcard = Vec::new();
    let mut catch_all = None;
    for listener in listeners {
        let (Some(cert), Some(key)) = (&listener.certificate_file, &listener.key_file) else {
            return Err(format!("listener {:?} has no certificate", listener.name));
        };
        let key = Arc::new(load_certified_key(cert, key)?);
        if listener.host_names.is_empty() {
            catch_all = Some(key.clone());
        }
        for host in &listener.host_names {
            let host = host.to_ascii_lowercase();
            match host.strip_prefix('*') {
                Some(suffix) => wildcard.push((suffix.to_owned(), key.clone())),
                None => {
                    exact.insert(host, key.clone());
                }
            }
        }
    }
    if listeners.is_empty() {
        return Err("no Https listener".to_owned());
    }
    let mut config = ServerConfig::builder_with_provider(sockway::crypto_provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(SniResolver {
            exact,
            wildcard,
            catch_all,
        }));
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    // The relay's io_uring loops take TLS 1.3 sessions over from rustls after the upgrade
    // (proxy/tls13_records.rs): they need the keys, and the secrets for key updates.
    #[cfg(target_os = "linux")]
    {
        config.enable_secret_extraction = true;
        config.key_log = crate::proxy::tls13_secrets::secret_log();
    }
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// A connector for `Https` backends: trusts the PEM roots in `trusted_root`, or the web PKI
/// roots when `None`. ALPN `http/1.1` (the gateway speaks HTTP/1.1 to backends).
pub fn connector(trusted_root: Option<&str>) -> Result<TlsConnector, String> {
    let mut roots = RootCertStore::empty();
    match trusted_root {
        Some(file) => {
            let certs = CertificateDer::pem_file_iter(file).map_err(|e| format!("{file}: {e}"))?;
            let mut added = 0;
            for cert in certs {
                let cert = cert.map_err(|e| format!("{file}: {e}"))?;
                roots.add(cert).map_err(|e| format!("{file}: {e}"))?;
                added += 1;
            }
            if added == 0 {
                return Err(format!("{file}: no certificate in the file"));
            }
        }
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    let mut config = ClientConfig::builder_with_provider(sockway::crypto_provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsConnector::from(Arc::new(config)))
}

/// The web PKI connector, built once (for `Https` probes on `Http` settings).
pub fn default_connector() -> Result<TlsConnector, String> {
    static DEFAULT: OnceLock<Result<TlsConnector, String>> = OnceLock::new();
    DEFAULT.get_or_init(|| connector(None)).clone()
}

/// The server name to verify for `host` (a DNS name or an IP literal).
pub fn server_name(host: &str) -> Result<ServerName<'static>, String> {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    ServerName::try_from(host.to_owned()).map_err(|e| format!("{host:?}: {e}"))
}
