//! The cryptography behind every TLS session sockway makes or accepts: one rustls
//! [`CryptoProvider`], aws-lc-rs (rustls' default), shared by the client, both servers and
//! the gateway, so that all of them offer the same cipher suites and key exchanges.
//!
//! aws-lc-rs rather than ring for two reasons. Its AES-GCM uses 512-bit vector registers
//! (VAES with AVX-512) where the CPU has them, as OpenSSL 3 does, where ring's stops at 256
//! bits: sealing a 16 KiB record with AES-256-GCM took 1.02 µs against ring's 1.6 µs on an
//! Intel Xeon model 207, and the gateway's CPU per message over a TLS front at 16 KiB
//! fell to 0.92× (`benches/gateway_ab.sh ... --tls`). And it brings the hybrid post-quantum
//! key exchange X25519MLKEM768 (draft-ietf-tls-ecdhe-mlkem), which sockway prefers, as
//! browsers do (rustls' `prefer-post-quantum`); a client also sends an X25519 key share, so
//! servers without it still answer in one round trip.

use std::sync::{Arc, OnceLock};

use rustls::crypto::CryptoProvider;

/// The rustls crypto provider of sockway's TLS (aws-lc-rs with rustls' default cipher
/// suites and key exchange groups, X25519MLKEM768 first), built once per process. Pass it to
/// `rustls::ServerConfig::builder_with_provider` or `rustls::ClientConfig::builder_with_provider`
/// to make a configuration that negotiates what sockway's own do.
pub fn crypto_provider() -> Arc<CryptoProvider> {
    static PROVIDER: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    PROVIDER
        .get_or_init(|| Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
        .clone()
}
