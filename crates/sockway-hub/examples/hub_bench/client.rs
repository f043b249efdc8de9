//! A bare hub client: a WebSocket without negotiation (`TransportProtocols.md`: no `id`),
//! the handshake, and records written and read with the crate's own codec.

use bytes::BytesMut;
use futures_util::{stream, StreamExt as _, TryStreamExt as _};
use sockway::client::{ClientBuilder, MessageWebSocket};
use sockway::Message;
use sockway_hub::protocol::{
    HandshakeRequest, HandshakeResponse, Incoming, Invocation, Outcome, Outgoing, Payload,
    Protocol, Value,
};
use tokio_util::sync::CancellationToken;

use crate::BoxError;

/// Connections opened at once while setting up.
const CONNECT_CONCURRENCY: usize = 64;

/// The receive limit of the client's parser, as the server's default (32 KiB).
const MAX_MESSAGE: usize = 32 * 1024;

/// One connection to the hub.
pub struct HubClient {
    pub socket: MessageWebSocket,
    pub protocol: Protocol,
    buffer: BytesMut,
}

impl HubClient {
    /// Opens a socket to `url` and completes the handshake for `protocol`.
    pub async fn connect(url: &str, protocol: Protocol) -> Result<Self, BoxError> {
        let mut socket = ClientBuilder::new(url).connect_message().await?;
        let mut handshake = Vec::new();
        HandshakeRequest::new(protocol).write(&mut handshake);
        socket.send_text(std::str::from_utf8(&handshake)?).await?;
        let mut buffer = BytesMut::new();
        loop {
            let message = socket.recv().await?.ok_or("closed during the handshake")?;
            buffer.extend_from_slice(&message.into_bytes());
            if let Some(response) = HandshakeResponse::parse(&mut buffer, MAX_MESSAGE)? {
                if let Some(error) = response.error {
                    return Err(error.into());
                }
                break;
            }
        }
        Ok(Self {
            socket,
            protocol,
            buffer,
        })
    }

    /// Sends `target(arguments)`, with an invocation id when `id` is given.
    pub async fn invoke(
        &mut self,
        id: Option<&str>,
        target: &str,
        arguments: Vec<Payload>,
    ) -> Result<(), BoxError> {
        let message = Outgoing::Invocation(Invocation {
            invocation_id: id.map(str::to_owned),
            target: target.to_owned(),
            arguments,
            stream_ids: Vec::new(),
        });
        let mut out = Vec::new();
        self.protocol.write(&message, &mut out)?;
        let message = match self.protocol {
            Protocol::Json => Message::text(String::from_utf8(out)?),
            Protocol::MessagePack => Message::binary(out),
        };
        self.socket.send(message).await?;
        Ok(())
    }

    /// Sends a `Ping` hub message (keeps the server's client timeout from firing).
    pub async fn ping(&mut self) -> Result<(), BoxError> {
        let mut out = Vec::new();
        self.protocol.write(&Outgoing::Ping, &mut out)?;
        let message = match self.protocol {
            Protocol::Json => Message::text(String::from_utf8(out)?),
            Protocol::MessagePack => Message::binary(out),
        };
        self.socket.send(message).await?;
        Ok(())
    }

    /// The next hub message, or `None` when the socket closed.
    pub async fn next(&mut self) -> Result<Option<Incoming>, BoxError> {
        loop {
            if let Some(message) = self.protocol.parse(&mut self.buffer, MAX_MESSAGE)? {
                return Ok(Some(message));
            }
            match self.socket.recv().await? {
                Some(message) => self.buffer.extend_from_slice(&message.into_bytes()),
                None => return Ok(None),
            }
        }
    }

    /// Invokes `target(arguments)` and waits for its `Completion` (other messages that
    /// arrive meanwhile are dropped); an error completion is an error.
    pub async fn call(&mut self, target: &str, arguments: Vec<Payload>) -> Result<(), BoxError> {
        self.invoke(Some("setup"), target, arguments).await?;
        loop {
            match self.next().await? {
                Some(Incoming::Completion(completion)) => {
                    return match completion.outcome {
                        Outcome::Error(error) => Err(format!("{target}: {error}").into()),
                        _ => Ok(()),
                    };
                }
                Some(_) => {}
                None => return Err(format!("closed during {target}").into()),
            }
        }
    }
}

impl HubClient {
    /// The last argument of the next invocation the hub sends (where the bench modes put the
    /// send time); `None` once `stop` is cancelled or the socket ends.
    pub async fn next_stamp(&mut self, stop: &CancellationToken) -> Option<Value> {
        loop {
            let message = tokio::select! {
                () = stop.cancelled() => return None,
                message = self.next() => message,
            };
            match message {
                Ok(Some(Incoming::Invocation(mut invocation))) => {
                    if let Some(last) = invocation.arguments.pop() {
                        return Some(last);
                    }
                }
                Ok(Some(_)) => {}
                Ok(None) | Err(_) => return None,
            }
        }
    }
}

/// Opens `n` clients spread round-robin over `urls` (the first to the first URL), each in
/// `group` when one is given (`Join`, the bench server's quiet join).
pub async fn connect_spread(
    urls: &[String],
    n: usize,
    protocol: Protocol,
    group: Option<&str>,
) -> Result<Vec<HubClient>, BoxError> {
    stream::iter(0..n)
        .map(|i| {
            let url = urls[i % urls.len()].clone();
            async move {
                let mut client = HubClient::connect(&url, protocol).await?;
                if let Some(group) = group {
                    client
                        .call("Join", vec![Payload::new(group.to_owned())])
                        .await?;
                }
                Ok::<_, BoxError>(client)
            }
        })
        .buffer_unordered(CONNECT_CONCURRENCY)
        .try_collect()
        .await
}

/// The comma-separated URLs of `list` (at least one).
pub fn urls(list: &str) -> Result<Vec<String>, BoxError> {
    let urls: Vec<String> = list
        .split(',')
        .filter(|url| !url.is_empty())
        .map(str::to_owned)
        .collect();
    if urls.is_empty() {
        return Err("no URL given".into());
    }
    Ok(urls)
}
