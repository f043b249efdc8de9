//! The client role: a sockway client connects to a test server listening on loopback and runs a
//! small application, an echo, so that the test server can see what the client received: either
//! every whole message back as one message ([`ClientApi::Messages`]), or every piece received into
//! a small buffer back as a fragment ([`ClientApi::Buffer`], the `ReceiveAsync` loop of ASP.NET
//! Core's WebSockets sample). The application's own view of the end (clean close with a status, or
//! failure with a close code) is checked too.

use std::net::SocketAddr;

use sockway::{MessageKind, ReceivedKind, WebSocketConfig};
use sockway_tests::client;
use tokio::task::JoinHandle;

use crate::script::AppEnd;

/// Which receive API the client application uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientApi {
    /// `recv` / `send`: whole messages.
    Messages,
    /// `receive` into a buffer of this many bytes / `send_fragment`.
    Buffer(usize),
}

/// How the client application ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppResult {
    /// `recv` returned `None`: the close handshake completed; the status the application got.
    Clean(u16),
    /// `recv` failed; the error's close code and text.
    Failed(u16, String),
    /// The connection could not be set up.
    Setup(String),
}

/// A client under test, running in its own task (aborted when dropped).
#[derive(Debug)]
pub struct ClientApp {
    task: Option<JoinHandle<AppResult>>,
}

impl ClientApp {
    /// Starts a client that connects to `addr` with `config` and echoes with `api`.
    pub fn start(addr: SocketAddr, config: WebSocketConfig, api: ClientApi) -> Self {
        let task = tokio::spawn(async move {
            let mut socket = match client::connect(addr, "/ws", config).await {
                Ok(socket) => socket,
                Err(e) => return AppResult::Setup(e),
            };
            match api {
                ClientApi::Messages => echo_messages(&mut socket).await,
                ClientApi::Buffer(size) => echo_buffer(&mut socket, size).await,
            }
        });
        Self { task: Some(task) }
    }

    /// Waits (bounded by the caller) for the application to end and checks it against what
    /// the script requires.
    pub async fn check(&mut self, want: &AppEnd) -> Result<(), String> {
        let task = self.task.take().ok_or("client already checked")?;
        let got = task.await.map_err(|e| format!("client task failed: {e}"))?;
        match (want, &got) {
            (AppEnd::Clean(w), AppResult::Clean(g)) if w == g => Ok(()),
            (AppEnd::Failed(w), AppResult::Failed(g, _)) if w == g => Ok(()),
            _ => Err(format!(
                "client application expected to end {want:?}, ended {got:?}"
            )),
        }
    }
}

impl ClientApp {
    /// Waits for the application to end and checks that connecting failed; returns the error.
    pub async fn check_setup_failed(&mut self) -> Result<String, String> {
        let task = self.task.take().ok_or("client already checked")?;
        match task.await.map_err(|e| format!("client task failed: {e}"))? {
            AppResult::Setup(error) => Ok(error),
            other => Err(format!(
                "the client accepted the handshake and ended {other:?}"
            )),
        }
    }
}

impl Drop for ClientApp {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

async fn echo_messages(socket: &mut client::ClientSocket) -> AppResult {
    loop {
        match socket.recv().await {
            Ok(Some(message)) => {
                // A failed send shows up in the next receive as well.
                let _ = socket.send(message).await;
            }
            Ok(None) => {
                let code = socket.close_info().map_or(1006, |info| info.code.0);
                return AppResult::Clean(code);
            }
            Err(e) => return AppResult::Failed(e.close_code().0, e.to_string()),
        }
    }
}

async fn echo_buffer(socket: &mut client::ClientSocket, size: usize) -> AppResult {
    let mut buf = vec![0; size.max(1)];
    loop {
        match socket.receive(&mut buf).await {
            Ok(result) => {
                let kind = match result.kind {
                    ReceivedKind::Text => MessageKind::Text,
                    ReceivedKind::Binary => MessageKind::Binary,
                    ReceivedKind::Close(info) => return AppResult::Clean(info.code.0),
                };
                let _ = socket
                    .send_fragment(kind, &buf[..result.count], result.end_of_message)
                    .await;
            }
            Err(e) => return AppResult::Failed(e.close_code().0, e.to_string()),
        }
    }
}
