//! `idle URL N SECS`: N JSON clients complete the handshake and one `Echo` with a 20-byte
//! argument (so buffers a first read allocates are counted, as `benches/idle_memory.sh`
//! does), print `ready`, then idle for SECS, each sending a hub `Ping` every 10 s so the
//! server's 30 s client timeout does not end them.

use std::time::Duration;

use futures_util::{stream, StreamExt as _, TryStreamExt as _};
use sockway_hub::protocol::{HubMessage, Payload, Protocol};

use crate::client::HubClient;
use crate::BoxError;

const CONNECT_CONCURRENCY: usize = 128;

/// Opens the clients, reports `ready`, and holds them for `hold`.
pub async fn run(url: &str, n: usize, hold: Duration) -> Result<(), BoxError> {
    let clients: Vec<HubClient> = stream::iter(0..n)
        .map(|_| async {
            let mut client = HubClient::connect(url, Protocol::Json).await?;
            client
                .invoke(
                    Some("1"),
                    "Echo",
                    vec![Payload::new("twenty bytes of text")],
                )
                .await?;
            loop {
                match client.next().await? {
                    Some(HubMessage::Completion(_)) => return Ok::<_, BoxError>(client),
                    Some(_) => continue,
                    None => return Err("closed before the Echo completed".into()),
                }
            }
        })
        .buffer_unordered(CONNECT_CONCURRENCY)
        .try_collect()
        .await?;
    println!("ready {}", clients.len());
    let tasks: Vec<_> = clients
        .into_iter()
        .map(|mut client| {
            tokio::spawn(async move {
                let mut ping = tokio::time::interval(Duration::from_secs(10));
                loop {
                    tokio::select! {
                        _ = ping.tick() => if client.ping().await.is_err() { return },
                        message = client.next() => if !matches!(message, Ok(Some(_))) { return },
                    }
                }
            })
        })
        .collect();
    tokio::time::sleep(hold).await;
    for task in &tasks {
        task.abort();
    }
    println!("done");
    Ok(())
}
