//! Long-lived sockets owned by a background task: the `TaskCompletionSource` pattern of ASP.NET
//! Core's WebSockets documentation.
//!
//! Each accept handler hands its socket to one broadcaster task together with a `oneshot`
//! sender, then awaits the receiver (no thread blocks). The broadcaster owns every socket,
//! relays each text message to all of them, sends a tick every few seconds on its own, and
//! fires a socket's `oneshot` when that socket is finished, which lets its handler return.
//!
//! ```text
//! cargo run -p sockway --example broadcaster [ADDR]      # default 127.0.0.1:9002
//! ```
//!
//! Connect two clients to `ws://ADDR/ws` and type into one. Ctrl-C closes every socket with
//! 1001 and exits.

use std::collections::HashMap;
use std::time::Duration;

use http::{Response, StatusCode};
use sockway::server::{
    service_fn, Body, Layer, Server, ServerOptions, ServerStream, ServerWebSocket, ShutdownHandle,
    UpgradeInfo, WebSocketLayer,
};
use sockway::{Message, WebSocketWriter};
use tokio::sync::{mpsc, oneshot};

/// A socket handed over to the broadcaster, and the signal to fire when it is done.
struct Handover {
    socket: ServerWebSocket,
    done: oneshot::Sender<()>,
}

/// What the per-socket reader tasks tell the broadcaster.
enum Event {
    Message(u64, Message),
    Finished(u64),
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let address = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:9002".to_owned());
    let server = Server::new(ServerOptions::default());
    let (handover_tx, handover_rx) = mpsc::channel::<Handover>(64);
    tokio::spawn(broadcaster(handover_rx, server.shutdown_handle()));

    let app = WebSocketLayer::new(move |socket: ServerWebSocket, info: UpgradeInfo| {
        let handover = handover_tx.clone();
        async move {
            let (done, finished) = oneshot::channel();
            if handover.send(Handover { socket, done }).await.is_err() {
                return; // the broadcaster has stopped; dropping the socket closes it (1001)
            }
            // Keep this handler (and the connection's bookkeeping) alive until the
            // broadcaster is done with the socket.
            let _ = finished.await;
            println!("{:?}: finished", info.peer_addr());
        }
    })
    .path("/ws")
    .layer(service_fn(|_request| async {
        let mut response = Response::new(Body::from("connect a WebSocket to /ws\n"));
        *response.status_mut() = StatusCode::NOT_FOUND;
        response
    }));

    let listener = tokio::net::TcpListener::bind(&address).await?;
    println!("broadcasting on ws://{}/ws", listener.local_addr()?);
    server.serve(listener, app).await;
    Ok(())
}

/// Owns every socket: writers here, readers in small tasks that report back.
async fn broadcaster(mut arrivals: mpsc::Receiver<Handover>, shutdown: ShutdownHandle) {
    let mut writers: HashMap<u64, (WebSocketWriter<ServerStream>, oneshot::Sender<()>)> =
        HashMap::new();
    let (events_tx, mut events) = mpsc::unbounded_channel::<Event>();
    let mut next_id = 0u64;
    let mut tick = tokio::time::interval(Duration::from_secs(5));
    let stop = shutdown.wait();
    tokio::pin!(stop);
    loop {
        tokio::select! {
            Some(Handover { socket, done }) = arrivals.recv() => {
                let id = next_id;
                next_id += 1;
                let (mut reader, writer) = socket.split();
                let events = events_tx.clone();
                tokio::spawn(async move {
                    // Receiving also answers pings and the close handshake (including the
                    // server's 1001 on shutdown).
                    while let Ok(Some(message)) = reader.recv().await {
                        let _ = events.send(Event::Message(id, message));
                    }
                    let _ = events.send(Event::Finished(id));
                });
                writers.insert(id, (writer, done));
                broadcast(&mut writers, Message::text(format!("#{id} joined"))).await;
            }
            Some(event) = events.recv() => match event {
                Event::Message(id, Message::Text(text)) => {
                    let line = format!("#{id}: {}", text.as_str());
                    broadcast(&mut writers, Message::text(line)).await;
                }
                Event::Message(..) => {}
                Event::Finished(id) => {
                    if let Some((_, done)) = writers.remove(&id) {
                        let _ = done.send(()); // TrySetResult: the handler may return now
                    }
                    broadcast(&mut writers, Message::text(format!("#{id} left"))).await;
                }
            },
            _ = tick.tick() => {
                let line = format!("tick: {} connected", writers.len());
                broadcast(&mut writers, Message::text(line)).await;
            }
            () = &mut stop => break,
        }
    }
}

/// Sends `message` to every socket; a socket that cannot take it is dropped (its reader
/// task then reports it finished).
async fn broadcast(
    writers: &mut HashMap<u64, (WebSocketWriter<ServerStream>, oneshot::Sender<()>)>,
    message: Message,
) {
    let mut failed = Vec::new();
    for (id, (writer, _)) in writers.iter_mut() {
        let sent = tokio::time::timeout(Duration::from_secs(5), writer.send(message.clone())).await;
        if !matches!(sent, Ok(Ok(()))) {
            failed.push(*id);
        }
    }
    for id in failed {
        if let Some((_, done)) = writers.remove(&id) {
            let _ = done.send(());
        }
    }
}
