//! The relay's copy loop over real loopback sockets: a destination that stops reading gets
//! every byte, in order, once it reads again (the backlog path of [`Pump::poll_copy`]).

use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use super::{relay, Counters, RelayConfig, Side, Totals};

/// Totals nobody reads (also used by the splice step's tests).
#[derive(Default)]
pub(super) struct NoTotals([AtomicU64; 2]);

impl Totals for NoTotals {
    fn totals(&self) -> [&AtomicU64; 2] {
        [&self.0[0], &self.0[1]]
    }
}

/// A connected loopback pair: (the peer's end, the relay's end).
pub(super) async fn pair() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let peer = TcpStream::connect(listener.local_addr().unwrap())
        .await
        .unwrap();
    let (relayed, _) = listener.accept().await.unwrap();
    (peer, relayed)
}

/// `count` unmasked binary frames (as a backend sends them) of `len` bytes each, every
/// payload byte different from its neighbours so that a reordering shows.
fn frames(count: usize, len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(count * (len + 10));
    for frame in 0..count {
        out.push(0x82);
        out.push(127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
        out.extend((0..len).map(|i| (i * 7 + frame) as u8));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_destination_that_stops_reading_gets_every_byte_in_order() {
    let (mut client, client_end) = pair().await;
    let (backend_end, mut backend) = pair().await;
    let config = RelayConfig {
        idle: Duration::from_secs(60),
        buffer: 16384,
        close_grace: Duration::from_secs(1),
        keep_alive: true,
    };
    let (_orders, receiver) = watch::channel(None);
    let session = tokio::spawn(relay(
        Side::tcp(client_end, Bytes::new()),
        Side::tcp(backend_end, Bytes::new()),
        config,
        receiver,
        Arc::new(Counters::default()),
        Arc::new(NoTotals::default()),
    ));
    // 8 MiB: more than loopback's socket buffers hold, so the relay's writes towards the
    // client stall while it does not read.
    let sent = frames(128, 65536);
    let writer = tokio::spawn({
        let sent = sent.clone();
        async move {
            backend.write_all(&sent).await.unwrap();
            backend
        }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut got = vec![0u8; sent.len()];
    tokio::time::timeout(Duration::from_secs(30), client.read_exact(&mut got))
        .await
        .expect("the relayed bytes within 30 s")
        .unwrap();
    assert!(got == sent, "the bytes arrived changed or reordered");
    let backend = tokio::time::timeout(Duration::from_secs(30), writer)
        .await
        .expect("the backend's writes within 30 s")
        .unwrap();
    drop(backend);
    drop(client);
    let outcome = tokio::time::timeout(Duration::from_secs(30), session)
        .await
        .expect("the relay ends within 30 s once both sides have gone")
        .unwrap();
    assert_eq!(outcome.bytes_down, sent.len() as u64);
    assert_eq!(outcome.bytes_up, 0);
}
