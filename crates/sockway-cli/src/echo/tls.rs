//! The echo server's TLS identity: PEM files given with `--tls-cert`/`--tls-key`, or a
//! throwaway self-signed certificate (`--tls-self-signed`) for `localhost`, `127.0.0.1` and
//! `::1`. Either way the end-entity certificate's SHA-256 fingerprint is logged at startup,
//! so a user can compare it with what the browser shows before trusting the page.

use std::fmt::Write as _;
use std::net::IpAddr;
use std::path::Path;

use sockway::server::{ServerTls, TlsConfigError};

/// Loads the certificate chain and key from PEM files.
pub fn from_files(cert: &Path, key: &Path) -> Result<ServerTls, TlsConfigError> {
    ServerTls::from_pem_files(cert, key)
}

/// A fresh self-signed certificate for the loopback names and `listen_ip` (when it is a
/// specific address), valid only for this run.
pub fn self_signed(listen_ip: IpAddr) -> Result<ServerTls, Box<dyn std::error::Error>> {
    let mut names = vec![
        "localhost".to_owned(),
        "127.0.0.1".to_owned(),
        "::1".to_owned(),
    ];
    if !listen_ip.is_unspecified() && !names.contains(&listen_ip.to_string()) {
        names.push(listen_ip.to_string());
    }
    let certified = rcgen::generate_simple_self_signed(names)?;
    let tls = ServerTls::from_pem(
        certified.cert.pem().as_bytes(),
        certified.signing_key.serialize_pem().as_bytes(),
    )?;
    Ok(tls)
}

/// The SHA-256 fingerprint of the end-entity certificate, as colon-separated upper-case hex
/// (the form browsers show); `None` when the chain is unknown.
pub fn fingerprint(tls: &ServerTls) -> Option<String> {
    let leaf = tls.certificate_chain().first()?;
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, leaf.as_ref());
    let mut out = String::with_capacity(95);
    for (i, byte) in digest.as_ref().iter().enumerate() {
        if i > 0 {
            out.push(':');
        }
        let _ = write!(out, "{byte:02X}");
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn self_signed_certificates_have_a_fingerprint() {
        let tls = self_signed("0.0.0.0".parse().unwrap()).unwrap();
        let fp = fingerprint(&tls).unwrap();
        assert_eq!(fp.len(), 32 * 3 - 1);
        assert!(fp
            .split(':')
            .all(|b| b.len() == 2 && b.chars().all(|c| c.is_ascii_hexdigit())));
    }
}
