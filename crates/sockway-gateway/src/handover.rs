//! Zero-downtime upgrade by socket hand-over. A gateway started from a file listens on a
//! Unix socket next to it (`<config>.upgrade.sock`). A second `sockway gateway` started with
//! the same file connects there first and is sent the running one's listening sockets
//! (`SCM_RIGHTS`, unix(7)): both processes then hold the same sockets, with one accept queue,
//! so no connection attempt is refused while they change hands. The new process starts
//! accepting on them and says `ready`; the old one stops accepting, answers `done`, and shuts
//! down as on SIGTERM: its WebSocket sessions go on until they end or `shutdownTimeout`
//! closes them with 1001. Then the new process listens on the Unix socket in its turn.
//!
//! The messages are one line of text each; the first answer is a JSON list of the sockets'
//! keys (`bindAddress:port`, or `admin <address>`) carrying their descriptors. The socket is created
//! with the directory's permissions, so only who may change the configuration may take over.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

#[cfg(unix)]
#[path = "handover_unix.rs"]
mod unix;
#[cfg(unix)]
pub use unix::{listen, serve, take_over, Taken};

/// The hand-over socket of a configuration file.
pub fn socket_path(config: &Path) -> PathBuf {
    let mut name = config.as_os_str().to_owned();
    name.push(".upgrade.sock");
    PathBuf::from(name)
}

/// The key of a front's socket (`ip:port`, IPv6 without brackets, as earlier versions
/// wrote it, so that they can hand over to this one).
pub fn front_key(address: SocketAddr) -> String {
    format!("{}:{}", address.ip(), address.port())
}

/// The key of the admin socket bound to `address`: a new configuration with another admin
/// address binds its own.
pub fn admin_key(address: SocketAddr) -> String {
    format!("admin {address}")
}

/// Listening sockets taken over from a running gateway, by key.
#[derive(Debug, Default)]
pub struct Inherited {
    pub(crate) sockets: HashMap<String, std::net::TcpListener>,
}

impl Inherited {
    /// The socket for `key`, ready for Tokio, if one was handed over.
    pub fn take(&mut self, key: &str) -> Option<tokio::net::TcpListener> {
        let socket = self.sockets.remove(key)?;
        socket.set_nonblocking(true).ok()?;
        tokio::net::TcpListener::from_std(socket).ok()
    }

    /// How many sockets were handed over and not taken yet.
    pub fn len(&self) -> usize {
        self.sockets.len()
    }

    /// Whether none is left.
    pub fn is_empty(&self) -> bool {
        self.sockets.is_empty()
    }
}
