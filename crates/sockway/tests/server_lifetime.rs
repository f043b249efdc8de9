//! How long an accepted socket lives: as long as its owner keeps it (including a background task
//! that signals completion, the `TaskCompletionSource` pattern of ASP.NET Core's WebSockets
//! documentation), closed with 1001 when dropped open, and closed by keep-alive when the peer goes
//! silent.

mod server_support;

use std::time::{Duration, Instant};

use server_support::*;
use sockway::server::{
    AcceptOptions, Layer, ServerOptions, ServerWebSocket, UpgradeInfo, WebSocketLayer,
};
use sockway::{Error, Message};
use tokio::sync::{mpsc, oneshot};

#[tokio::test]
async fn dropping_an_open_socket_closes_it_with_1001() {
    let app = WebSocketLayer::new(|socket: ServerWebSocket, _info: UpgradeInfo| async move {
        drop(socket);
    })
    .layer(not_found());
    let server = TestServer::start(ServerOptions::default(), app).await;
    let (mut stream, mut buf) = open_raw(&server, "/ws", &[]).await;
    let frame = within("close frame", read_frame(&mut stream, &mut buf))
        .await
        .expect("a close frame before EOF");
    assert_eq!(frame.close_code(), Some(1001), "{frame:?}");
    within("EOF", wait_for_eof(&mut stream)).await;
}

/// A socket handed to the broadcaster, with the signal to fire when it is done.
type Handover = (ServerWebSocket, oneshot::Sender<()>);

/// Owns every socket; relays each message to all of them; fires a socket's completion signal
/// when it closes.
async fn broadcaster(mut arrivals: mpsc::Receiver<Handover>) {
    type Writer = sockway::WebSocketWriter<sockway::server::ServerStream>;
    let mut sockets: Vec<Option<(Writer, oneshot::Sender<()>)>> = Vec::new();
    let (relay_tx, mut relay_rx) = mpsc::unbounded_channel::<(usize, Option<Message>)>();
    loop {
        tokio::select! {
            Some((socket, done)) = arrivals.recv() => {
                let (mut reader, writer) = socket.split();
                let index = sockets.len();
                let relay = relay_tx.clone();
                tokio::spawn(async move {
                    while let Ok(Some(message)) = reader.recv().await {
                        let _ = relay.send((index, Some(message)));
                    }
                    let _ = relay.send((index, None));
                });
                sockets.push(Some((writer, done)));
            }
            Some((index, message)) = relay_rx.recv() => match message {
                Some(message) => {
                    for (writer, _) in sockets.iter_mut().flatten() {
                        let _ = writer.send(message.clone()).await;
                    }
                }
                None => {
                    if let Some((_, done)) = sockets[index].take() {
                        let _ = done.send(());
                    }
                }
            },
            else => break,
        }
    }
}

/// Receives until `text` arrives (broadcasts from others may come first).
async fn recv_until(client: &mut sockway::WebSocket<tokio::net::TcpStream>, text: &str) {
    loop {
        let message = within("recv", client.recv()).await.unwrap();
        if message == Some(Message::text(text.to_owned())) {
            return;
        }
        assert!(message.is_some(), "closed before {text:?} arrived");
    }
}

#[tokio::test]
async fn a_background_task_can_own_sockets_and_signal_when_each_is_done() {
    let (arrivals_tx, arrivals_rx) = mpsc::channel::<Handover>(16);
    tokio::spawn(broadcaster(arrivals_rx));
    let (finished_tx, mut finished_rx) = mpsc::unbounded_channel::<String>();
    let app = WebSocketLayer::new(move |socket: ServerWebSocket, info: UpgradeInfo| {
        let arrivals = arrivals_tx.clone();
        let finished = finished_tx.clone();
        async move {
            // Hand the socket over and wait (without blocking a thread) until the
            // broadcaster says it is finished with it.
            let (done_tx, done_rx) = oneshot::channel();
            if arrivals.send((socket, done_tx)).await.is_ok() {
                let _ = done_rx.await;
            }
            let _ = finished.send(info.uri().path().to_owned());
        }
    })
    .layer(not_found());
    let server = TestServer::start(ServerOptions::default(), app).await;

    let mut alice = open_client(&server, "/alice").await;
    let mut bob = open_client(&server, "/bob").await;
    // Wait until both sockets reached the broadcaster: a message from each comes back.
    for (client, text) in [(&mut alice, "alice here"), (&mut bob, "bob here")] {
        within("send", client.send(Message::text(text)))
            .await
            .unwrap();
        recv_until(client, text).await;
    }
    // A message from one reaches both.
    within("send", alice.send(Message::text("hello all")))
        .await
        .unwrap();
    recv_until(&mut alice, "hello all").await;
    recv_until(&mut bob, "hello all").await;
    // Closing one fires its completion signal; its accept handler returns.
    within("close", alice.close(sockway::CloseCode::NORMAL, "done"))
        .await
        .unwrap();
    assert_eq!(
        within("finished", finished_rx.recv()).await.unwrap(),
        "/alice"
    );
    // The other socket is still served.
    within("send", bob.send(Message::text("still here")))
        .await
        .unwrap();
    recv_until(&mut bob, "still here").await;
    drop(bob);
    assert_eq!(
        within("finished", finished_rx.recv()).await.unwrap(),
        "/bob"
    );
}

/// Starts a server that runs `recv` once on each accepted socket and reports how it ended
/// and after how long.
async fn recv_reporter(
    options: AcceptOptions,
) -> (
    TestServer,
    mpsc::UnboundedReceiver<(Result<Option<Message>, Error>, Duration)>,
) {
    let (tx, rx) = mpsc::unbounded_channel();
    let app = WebSocketLayer::new(move |mut socket: ServerWebSocket, _info: UpgradeInfo| {
        let tx = tx.clone();
        async move {
            let started = Instant::now();
            let result = socket.recv().await;
            let _ = tx.send((result, started.elapsed()));
        }
    })
    .options(options)
    .layer(not_found());
    (TestServer::start(ServerOptions::default(), app).await, rx)
}

#[tokio::test]
async fn a_peer_that_never_answers_pings_is_closed_within_interval_plus_timeout() {
    let options = AcceptOptions::default()
        .keep_alive_interval(Some(Duration::from_millis(200)))
        .keep_alive_timeout(Duration::from_millis(300));
    let (server, mut results) = recv_reporter(options).await;
    let (mut stream, mut buf) = open_raw(&server, "/ws", &[]).await;
    let opened = Instant::now();

    // The peer reads what the server sends but never answers.
    let ping = within("ping", read_frame(&mut stream, &mut buf))
        .await
        .expect("a ping");
    assert_eq!(ping.opcode, 0x9, "keep-alive sends a ping: {ping:?}");
    let (result, waited) = within("keep-alive verdict", results.recv()).await.unwrap();
    assert!(
        matches!(result, Err(Error::KeepAliveTimeout(_))),
        "the application is told why: {result:?}"
    );
    // Nothing may end it before interval + timeout (500 ms); CI-generous upper bound.
    assert!(
        waited >= Duration::from_millis(450),
        "closed too early: {waited:?}"
    );
    assert!(
        opened.elapsed() < Duration::from_secs(3),
        "closed too late: {waited:?}"
    );
    // And the connection goes away.
    within("EOF", wait_for_eof(&mut stream)).await;
}

#[tokio::test]
async fn a_peer_that_answers_pings_stays_connected() {
    let options = AcceptOptions::default()
        .keep_alive_interval(Some(Duration::from_millis(100)))
        .keep_alive_timeout(Duration::from_millis(150));
    let (server, mut results) = recv_reporter(options).await;
    let mut client = open_client(&server, "/ws").await;

    // The client-role socket answers pings while it waits to receive; let several
    // keep-alive periods pass.
    let idle = tokio::time::timeout(Duration::from_millis(900), client.recv()).await;
    assert!(idle.is_err(), "nothing arrives but pings: {idle:?}");
    assert!(client.stats().bytes_received > 0, "pings arrived");
    within("send", client.send(Message::text("alive")))
        .await
        .unwrap();
    let (result, waited) = within("recv", results.recv()).await.unwrap();
    assert_eq!(result.unwrap(), Some(Message::text("alive")));
    assert!(waited >= Duration::from_millis(800), "{waited:?}");
}
