//! Connecting: RFC 8305 address racing on loopback (an address that never answers next to one
//! that works), the connect deadline, the address cap, cancellation (drop and token), and the
//! source address.
//!
//! The tests in this file run one at a time (they count the process's open descriptors).

#![cfg(feature = "client")]

mod client_support;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use client_support::*;
use sockway::client::{CancelToken, ClientBuilder, ClientError, Phase};
use tokio::io::AsyncReadExt;
use tokio::time::timeout;

static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn refused_addr() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap()
}

#[tokio::test]
async fn races_past_an_address_that_never_answers() {
    let _serial = SERIAL.lock().await;
    let hole = black_hole().await;
    let good = echo_server().await;
    let started = Instant::now();
    let socket = ClientBuilder::new(format!("ws://multi.test:{}/", good.port()))
        .resolve_to(vec![hole.addr, good])
        .connect_message();
    let socket = timeout(STEP, socket).await.unwrap().unwrap();
    // The black hole never answers and the connect timeout is 60 s, so connecting within
    // STEP at all means the second address was raced; the race starts after the attempt delay.
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(200),
        "the second attempt waited for the delay: {elapsed:?}"
    );
    assert_eq!(socket.info().remote_addr, good);
    assert_eq!(socket.info().addresses, 2);
}

#[tokio::test]
async fn a_refused_address_moves_on_at_once() {
    let _serial = SERIAL.lock().await;
    let good = echo_server().await;
    let started = Instant::now();
    let delay = Duration::from_secs(2);
    let socket = ClientBuilder::new("ws://multi.test/")
        .resolve_to(vec![refused_addr(), refused_addr(), good])
        .attempt_delay(delay)
        .connect_message();
    let socket = timeout(STEP, socket).await.unwrap().unwrap();
    // Failures start the next attempt without waiting for the attempt delay: waiting even
    // once would take at least `delay`.
    assert!(started.elapsed() < delay, "{:?}", started.elapsed());
    assert_eq!(socket.info().remote_addr, good);

    // With max_addresses(2) the working third address is never tried.
    let e = ClientBuilder::new("ws://multi.test/")
        .resolve_to(vec![refused_addr(), refused_addr(), good])
        .max_addresses(2)
        .connect_message()
        .await
        .unwrap_err();
    assert!(
        matches!(&e, ClientError::Refused { addrs } if addrs.len() == 2),
        "{e}"
    );
}

#[tokio::test]
async fn connect_timeout_covers_addresses_that_never_answer() {
    let _serial = SERIAL.lock().await;
    let holes = [black_hole().await, black_hole().await];
    let started = Instant::now();
    let e = ClientBuilder::new("ws://silent.test/")
        .resolve_to(holes.iter().map(|h| h.addr).collect())
        .connect_timeout(Duration::from_millis(400))
        .connect_message()
        .await
        .unwrap_err();
    assert!(
        matches!(e, ClientError::Timeout { phase: Phase::Connect, after } if after == Duration::from_millis(400)),
        "{e}"
    );
    // Well before the 60 s default: the deadline covered both addresses.
    assert!(started.elapsed() < STEP, "{:?}", started.elapsed());
}

#[tokio::test]
async fn dropping_the_connect_future_aborts_every_attempt() {
    let _serial = SERIAL.lock().await;
    let hole = black_hole().await;
    // The second address accepts TCP and then says nothing, so the connect is stuck in the
    // handshake with one attempt still pending at the black hole.
    let (accepted_tx, accepted_rx) = tokio::sync::oneshot::channel();
    let (eof_tx, eof_rx) = tokio::sync::oneshot::channel();
    let silent = serve_once(|mut tcp| async move {
        let _ = accepted_tx.send(());
        let mut buf = vec![0u8; 4096];
        let eof = timeout(STEP, async {
            loop {
                match tcp.read(&mut buf).await {
                    Ok(0) | Err(_) => return true,
                    Ok(_) => {}
                }
            }
        })
        .await
        .unwrap_or(false);
        let _ = eof_tx.send(eof);
    })
    .await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    let fds_before = open_fds();
    let connect = ClientBuilder::new("ws://stuck.test/")
        .resolve_to(vec![hole.addr, silent])
        .attempt_delay(Duration::from_millis(50))
        .connect_message();
    let task = tokio::spawn(connect);
    timeout(STEP, accepted_rx).await.unwrap().unwrap();
    assert!(open_fds() >= fds_before + 2, "both attempts are open");
    task.abort();
    let _ = task.await;
    // The server sees the client's socket close...
    assert!(
        timeout(STEP, eof_rx).await.unwrap().unwrap(),
        "no EOF after drop"
    );
    // ...and no socket of the aborted connect is left open.
    let deadline = Instant::now() + Duration::from_secs(2);
    while open_fds() > fds_before && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(open_fds() <= fds_before, "{} > {fds_before}", open_fds());
}

#[tokio::test]
async fn cancel_token_aborts_a_pending_connect() {
    let _serial = SERIAL.lock().await;
    let hole = black_hole().await;
    let token = CancelToken::new();
    let connect = ClientBuilder::new("ws://cancel.test/")
        .resolve_to(vec![hole.addr])
        .cancel_token(token.clone())
        .connect_message();
    let task = tokio::spawn(connect);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let started = Instant::now();
    token.cancel();
    let e = timeout(STEP, task).await.unwrap().unwrap().unwrap_err();
    assert!(matches!(e, ClientError::Cancelled), "{e}");
    // The black hole never answers and the connect timeout is 60 s: only the token ends it.
    assert!(started.elapsed() < STEP, "{:?}", started.elapsed());
    // A token cancelled beforehand stops the connect at once.
    let e = ClientBuilder::new("ws://cancel.test/")
        .resolve_to(vec![hole.addr])
        .cancel_token(token)
        .connect_message()
        .await
        .unwrap_err();
    assert!(matches!(e, ClientError::Cancelled), "{e}");
}

#[tokio::test]
async fn ip_literals_skip_the_resolver() {
    let _serial = SERIAL.lock().await;
    let good = echo_server().await;
    let socket = ClientBuilder::new(format!("ws://{good}/"))
        .resolver(|_: &str, _: u16| Err(std::io::Error::other("must not be called")))
        .connect_message();
    let socket = timeout(STEP, socket).await.unwrap().unwrap();
    assert_eq!(socket.info().remote_addr, good);
    let e = ClientBuilder::new("ws://named.test/")
        .resolver(|_: &str, _: u16| Err(std::io::Error::other("NXDOMAIN")))
        .connect_message()
        .await
        .unwrap_err();
    assert!(
        matches!(&e, ClientError::HostNotFound { host, .. } if host == "named.test"),
        "{e}"
    );
}

#[tokio::test]
async fn local_address_binds_the_source_address() {
    let _serial = SERIAL.lock().await;
    let (peer_tx, peer_rx) = tokio::sync::oneshot::channel();
    let server = serve_once(|tcp| async move {
        let _ = peer_tx.send(tcp.peer_addr().unwrap());
        let (ws, _) = accept(tcp, "").await;
        echo(ws).await;
    })
    .await;
    let source = "127.0.0.2".parse().unwrap();
    let socket = ClientBuilder::new(format!("ws://{server}/"))
        .local_address(source)
        .connect_message();
    let socket = timeout(STEP, socket).await.unwrap().unwrap();
    assert_eq!(socket.info().local_addr.ip(), source);
    let peer = timeout(STEP, peer_rx).await.unwrap().unwrap();
    assert_eq!(
        peer.ip(),
        source,
        "the server sees the bound source address"
    );
}

#[tokio::test]
async fn local_address_of_the_other_family_fails() {
    let _serial = SERIAL.lock().await;
    let good = echo_server().await;
    let connect = ClientBuilder::new(format!("ws://{good}/"))
        .local_address("::1".parse().unwrap())
        .connect_message();
    let e = timeout(STEP, connect).await.unwrap().unwrap_err();
    assert!(
        matches!(&e, ClientError::Unreachable { detail, .. } if detail.contains("different families")),
        "{e}"
    );
}
