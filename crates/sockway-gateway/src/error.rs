//! Why a gateway could not start, reload or run: one typed error for every step of its life,
//! each saying what failed and where.

use std::net::SocketAddr;

use crate::config::ConfigError;

/// Why starting, reloading or running the gateway failed. On a reload, what runs stays.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// The configuration could not be read, or it breaks rules (every problem listed).
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A listening socket could not be opened (a port in use, an address not on this host).
    #[error("cannot listen on {address}: {source}")]
    Listen {
        /// The address.
        address: SocketAddr,
        /// The cause.
        source: std::io::Error,
    },
    /// The admin listener's socket could not be opened.
    #[error("cannot listen on admin address {address}: {source}")]
    AdminListen {
        /// The address.
        address: SocketAddr,
        /// The cause.
        source: std::io::Error,
    },
    /// A listening socket could not say its own address.
    #[error("cannot read the local address of a listening socket: {0}")]
    LocalAddress(std::io::Error),
    /// A certificate, key or trusted-root file could not be used.
    #[error("{place}: {reason}")]
    Tls {
        /// Which listener port or backend settings.
        place: String,
        /// What is wrong with its files.
        reason: String,
    },
    /// A custom error page file could not be read.
    #[error("custom error page {file}: {source}")]
    ErrorPage {
        /// The file.
        file: String,
        /// The cause.
        source: std::io::Error,
    },
    /// [`crate::Gateway::reload`] on a gateway started without a file.
    #[error("the gateway was not started from a file")]
    NoFile,
    /// A lock of the gateway was poisoned by a panic elsewhere.
    #[error("the gateway's state is unusable after a panic")]
    Poisoned,
}
