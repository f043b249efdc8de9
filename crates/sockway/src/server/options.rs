//! What [`super::accept`] checks and how the accepted socket is configured.

use std::time::Duration;

use super::origin::OriginPolicy;
use crate::config::{KeepAlive, WebSocketConfig};

/// Per-route acceptance settings, with the seeds' defaults (ASP.NET Core `WebSocketOptions`).
#[derive(Debug, Clone)]
pub struct AcceptOptions {
    /// Settings of the accepted socket. Defaults: 4 KiB receive buffer (`ReceiveBufferSize`),
    /// 16 MiB max message, keep-alive ping every 2 minutes (`KeepAliveInterval`) and give up
    /// 30 s after an unanswered ping (`KeepAliveTimeout`).
    pub socket: WebSocketConfig,
    /// Which `Origin` values may connect (`AllowedOrigins`); default any.
    pub origins: OriginPolicy,
    /// Subprotocols this route speaks, in order of preference (RFC 6455 section 4.2.2 item 5.4):
    /// the first one the client also offered is chosen. Empty: none is chosen.
    pub subprotocols: Vec<String>,
}

impl Default for AcceptOptions {
    fn default() -> Self {
        Self {
            socket: WebSocketConfig::default().keep_alive(Some(KeepAlive::default())),
            origins: OriginPolicy::Any,
            subprotocols: Vec::new(),
        }
    }
}

impl AcceptOptions {
    /// Sets the keep-alive ping interval; `None` turns keep-alive off.
    pub fn keep_alive_interval(mut self, interval: Option<Duration>) -> Self {
        self.socket.keep_alive = interval.map(|interval| KeepAlive {
            interval,
            timeout: self
                .socket
                .keep_alive
                .map_or(KeepAlive::default().timeout, |k| k.timeout),
        });
        self
    }

    /// Sets how long after an unanswered keep-alive ping the connection is given up.
    pub fn keep_alive_timeout(mut self, timeout: Duration) -> Self {
        if let Some(keep_alive) = &mut self.socket.keep_alive {
            keep_alive.timeout = timeout;
        }
        self
    }

    /// Sets the receive buffer growth step (`ReceiveBufferSize`).
    pub fn receive_buffer_size(mut self, bytes: usize) -> Self {
        self.socket = self.socket.read_buffer_size(bytes);
        self
    }

    /// Sets the largest message accepted (1009 beyond it).
    pub fn max_message_size(mut self, bytes: usize) -> Self {
        self.socket = self.socket.max_message_size(bytes);
        self
    }

    /// Allows only these origins (`AllowedOrigins`); an empty list allows any.
    pub fn allowed_origins<I, S>(mut self, origins: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        self.origins = OriginPolicy::list(origins);
        self
    }

    /// Sets the subprotocols this route speaks, in order of preference.
    pub fn subprotocols<I, S>(mut self, names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.subprotocols = names.into_iter().map(Into::into).collect();
        self
    }
}
