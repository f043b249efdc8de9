//! Peers that go quiet or half away, against the [`sockway::server::Server`] runner:
//!
//! - a peer that vanishes without a FIN (it neither reads nor writes nor answers pings):
//!   keep-alive (200 ms interval, 300 ms timeout) ends the handler's receive with
//!   `KeepAliveTimeout` and the server closes the connection;
//! - a peer that sends its close frame and half-closes at once (`shutdown(Write)`): the server
//!   still answers with its close frame, which the peer reads, and the handler sees a clean
//!   1000;
//! - a peer that half-closes without a close frame (with nothing or half a frame sent): the
//!   handler sees an abnormal closure (1006) at once, not a hang, and the connection ends.

use std::time::{Duration, Instant};

use sockway::server::WebSocketLayer;
use sockway::server::{AcceptOptions, Layer, ServerOptions, ServerWebSocket, UpgradeInfo};
use sockway::{CloseCode, CloseInfo, Error};
use sockway_tests::frame::{Event, Frame, Sender};
use sockway_tests::http1;
use sockway_tests::peer::{PeerError, RawPeer};
use tokio::io::AsyncReadExt;
use tokio::sync::mpsc;
use tokio::time::Instant as TokioInstant;

use crate::support::{not_found, shared, within, Runner};

/// How a handler's first receive ended.
#[derive(Debug)]
struct Verdict {
    /// `Ok(None)`, or the error.
    result: Result<(), Error>,
    /// The socket's close status afterwards.
    close: Option<CloseInfo>,
    /// Time from accepting the socket to the end of the receive.
    waited: Duration,
}

/// A runner whose `/ws` handler receives until the connection ends and reports how.
async fn reporting_server(options: AcceptOptions) -> (Runner, mpsc::Receiver<Verdict>) {
    let (tx, rx) = mpsc::channel(4);
    let app = WebSocketLayer::new(move |mut socket: ServerWebSocket, _info: UpgradeInfo| {
        let tx = tx.clone();
        async move {
            let started = Instant::now();
            let result = loop {
                match socket.recv().await {
                    Ok(Some(_)) => {}
                    Ok(None) => break Ok(()),
                    Err(e) => break Err(e),
                }
            };
            let verdict = Verdict {
                result,
                close: socket.close_info(),
                waited: started.elapsed(),
            };
            let _ = tx.send(verdict).await;
        }
    })
    .path("/ws")
    .options(options)
    .layer(not_found());
    let server = Runner::start(ServerOptions::default(), None, app).await;
    (server, rx)
}

/// Opens a WebSocket with a raw handshake and wraps it in a [`RawPeer`].
async fn raw_peer(server: &Runner) -> RawPeer {
    let (stream, leftover) = within(
        "handshake",
        Duration::from_secs(5),
        http1::connect(server.addr, "/ws", &[]),
    )
    .await
    .expect("handshake");
    RawPeer::new(stream, Sender::Client, leftover)
}

#[tokio::test]
async fn a_peer_that_vanishes_without_fin_is_dropped_by_keep_alive() {
    let _shared = shared().await;
    let options = AcceptOptions::default()
        .keep_alive_interval(Some(Duration::from_millis(200)))
        .keep_alive_timeout(Duration::from_millis(300));
    let (server, mut verdicts) = reporting_server(options).await;
    // The peer is a socket that is kept open and never touched: no reads, no pongs, no FIN.
    let (mut stream, _leftover) = within(
        "handshake",
        Duration::from_secs(5),
        http1::connect(server.addr, "/ws", &[]),
    )
    .await
    .expect("handshake");

    let verdict = within(
        "keep-alive verdict",
        Duration::from_secs(5),
        verdicts.recv(),
    )
    .await
    .expect("a verdict");
    assert!(
        matches!(verdict.result, Err(Error::KeepAliveTimeout(_))),
        "{verdict:?}"
    );
    assert_eq!(
        verdict.close.as_ref().map(|c| c.code),
        Some(CloseCode::ABNORMAL)
    );
    // Not before interval + timeout (500 ms); a generous upper bound for loaded CI.
    assert!(verdict.waited >= Duration::from_millis(450), "{verdict:?}");
    assert!(verdict.waited < Duration::from_secs(3), "{verdict:?}");
    // The server lets go of the connection: reading now finds the ping, then its end.
    let mut sink = Vec::new();
    let end = within(
        "the server closing the connection",
        Duration::from_secs(5),
        stream.read_to_end(&mut sink),
    )
    .await;
    assert!(
        end.is_ok(),
        "the server ends the connection with a FIN: {end:?}"
    );
    assert_eq!(
        sink.first().map(|b| b & 0x0f),
        Some(0x9),
        "a ping came first"
    );
    assert!(server.is_running());
}

#[tokio::test]
async fn a_close_frame_then_half_close_still_gets_the_servers_close_frame() {
    let _shared = shared().await;
    let (server, mut verdicts) = reporting_server(AcceptOptions::default()).await;
    let mut peer = raw_peer(&server).await;

    peer.send(&[Frame::close_with(1000, b"bye")])
        .await
        .expect("send close");
    peer.shutdown_write().await.expect("half-close");

    let deadline = TokioInstant::now() + Duration::from_secs(3);
    let reply = peer.next_event(deadline).await.expect("the server's close");
    // The reply carries the code; echoing the reason is optional (RFC 6455 section 5.5.1).
    assert!(matches!(reply, Event::Close(Some(1000), _)), "{reply}");
    assert_eq!(peer.next_event(deadline).await, Ok(Event::Eof));
    let verdict = within("handler verdict", Duration::from_secs(3), verdicts.recv())
        .await
        .expect("a verdict");
    assert!(verdict.result.is_ok(), "{verdict:?}");
    let close = verdict.close.expect("close info");
    assert_eq!(close.code, CloseCode::NORMAL);
    assert_eq!(close.reason, "bye");
    assert!(!close.initiated_locally);
    assert!(server.is_running());
}

#[tokio::test]
async fn a_half_close_without_a_close_frame_is_an_abnormal_closure_at_once() {
    let _shared = shared().await;
    let (server, mut verdicts) = reporting_server(AcceptOptions::default()).await;
    // Nothing sent, then half a frame (a header announcing 10 bytes, and 4 of them).
    let half_frame = Frame::binary(b"0123".to_vec()).declared_len(10);
    for before_fin in [None, Some(half_frame)] {
        let mut peer = raw_peer(&server).await;
        if let Some(frame) = &before_fin {
            peer.send(std::slice::from_ref(frame)).await.expect("send");
        }
        let fin_at = Instant::now();
        peer.shutdown_write().await.expect("half-close");

        let verdict = within("handler verdict", Duration::from_secs(3), verdicts.recv())
            .await
            .expect("a verdict");
        assert!(
            matches!(verdict.result, Err(Error::AbnormalClosure)),
            "{before_fin:?}: {verdict:?}"
        );
        assert_eq!(
            verdict.close.as_ref().map(|c| c.code),
            Some(CloseCode::ABNORMAL)
        );
        assert!(fin_at.elapsed() < Duration::from_secs(2), "{verdict:?}");
        // The server closes its side too (a close frame may precede the end; 1006 never
        // goes on the wire).
        let deadline = TokioInstant::now() + Duration::from_secs(3);
        loop {
            match peer.next_event(deadline).await {
                Ok(Event::Eof) | Err(PeerError::Io(_)) => break,
                Ok(Event::Close(code, _)) => assert_ne!(code, Some(1006)),
                other => panic!("{before_fin:?}: unexpected {other:?}"),
            }
        }
    }
    assert!(server.is_running());
}
