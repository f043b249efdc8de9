//! The error a hub method returns to its caller.

use std::fmt;

/// An error a hub method (or a hook) reports to the client, like ASP.NET Core's
/// `HubException`: its message is sent in the `Completion` (`An unexpected error occurred
/// invoking 'X' on the server. HubException: <message>`). Failures that are not a `HubError`
/// (a panic) send only the reference's generic text, so no server detail leaks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HubError {
    message: String,
}

impl HubError {
    /// An error with `message`, sent to the client.
    pub fn new(message: impl Into<String>) -> Self {
        HubError {
            message: message.into(),
        }
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for HubError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for HubError {}

impl From<String> for HubError {
    fn from(message: String) -> Self {
        HubError::new(message)
    }
}

impl From<&str> for HubError {
    fn from(message: &str) -> Self {
        HubError::new(message)
    }
}
