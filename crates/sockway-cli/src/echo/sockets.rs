//! Which HTTP version each open WebSocket arrived over, so the test page can show it
//! (`GET /info?socket=ID`) while the echo itself stays a pure echo. The page tags its socket
//! with a random `socket=ID` query parameter; the handler records the version under that ID
//! while the socket is open. Bounded: IDs are short tokens, and at most [`MAX_TRACKED`]
//! sockets are remembered (others simply are not shown).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use http::Version;

/// Most sockets remembered at once.
pub const MAX_TRACKED: usize = 10_000;
/// Longest socket ID accepted.
const MAX_ID: usize = 64;

/// Open sockets by the ID their page gave them.
#[derive(Debug, Clone, Default)]
pub struct Sockets {
    versions: Arc<Mutex<HashMap<String, Version>>>,
}

/// The `socket` parameter of a query string, if it is a valid ID (1 to 64 letters, digits,
/// `-` or `_`).
pub fn socket_id(query: Option<&str>) -> Option<&str> {
    query?
        .split('&')
        .find_map(|pair| pair.strip_prefix("socket="))
        .filter(|id| {
            (1..=MAX_ID).contains(&id.len())
                && id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

impl Sockets {
    /// Records that socket `id` arrived over `version`; returns whether it was recorded.
    pub fn open(&self, id: &str, version: Version) -> bool {
        let mut versions = self.versions.lock().unwrap_or_else(PoisonError::into_inner);
        if versions.len() >= MAX_TRACKED && !versions.contains_key(id) {
            return false;
        }
        versions.insert(id.to_owned(), version);
        true
    }

    /// Forgets socket `id`.
    pub fn close(&self, id: &str) {
        let mut versions = self.versions.lock().unwrap_or_else(PoisonError::into_inner);
        versions.remove(id);
    }

    /// The version socket `id` arrived over, while it is open.
    pub fn version(&self, id: &str) -> Option<Version> {
        let versions = self.versions.lock().unwrap_or_else(PoisonError::into_inner);
        versions.get(id).copied()
    }
}

/// `HTTP/1.1` or `HTTP/2`, as the page shows it.
pub fn version_name(version: Version) -> &'static str {
    match version {
        Version::HTTP_09 => "HTTP/0.9",
        Version::HTTP_10 => "HTTP/1.0",
        Version::HTTP_11 => "HTTP/1.1",
        Version::HTTP_2 => "HTTP/2",
        Version::HTTP_3 => "HTTP/3",
        _ => "unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_validated_and_bounded() {
        assert_eq!(socket_id(Some("socket=abc-1_2")), Some("abc-1_2"));
        assert_eq!(socket_id(Some("x=1&socket=z")), Some("z"));
        assert_eq!(socket_id(Some("socket=")), None);
        assert_eq!(socket_id(Some("socket=a\"b")), None);
        assert_eq!(socket_id(Some(&format!("socket={}", "a".repeat(65)))), None);
        assert_eq!(socket_id(None), None);
        let sockets = Sockets::default();
        assert!(sockets.open("a", Version::HTTP_2));
        assert_eq!(sockets.version("a"), Some(Version::HTTP_2));
        sockets.close("a");
        assert_eq!(sockets.version("a"), None);
    }
}
