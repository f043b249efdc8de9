//! The relay's copy loop over real loopback sockets: a destination that stops reading gets
//! every byte, in order, once it reads again (the backlog path of [`Pump::poll_copy`]).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use sockway_proto::frame::encode_frame;
use sockway_proto::OpCode;
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

/// A frame with `first` as its first byte (FIN and opcode bits), masked when `mask` is set
/// (also used by the splice step's and the io_uring loop's tests).
pub(super) fn frame(first: u8, payload: &[u8], mask: Option<[u8; 4]>) -> Vec<u8> {
    let mut bytes = encode_frame(OpCode::Binary, payload, mask);
    bytes[0] = first;
    bytes
}

/// `len` bytes in which a reordering or a lost chunk shows.
pub(super) fn payload(len: usize, seed: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 + i / 251 + seed) as u8).collect()
}

/// Has `backend` send `count` frames made by `one` while `client` reads nothing for 2 s, and
/// checks that the relay held the backend back (it could not write them all, fewer bytes
/// went through), then that the client gets every frame, in order, once it reads. Returns
/// the bytes sent and the backend's socket.
pub(super) async fn stalled_destination(
    client: &mut TcpStream,
    mut backend: TcpStream,
    counters: &Counters,
    count: usize,
    one: fn(usize) -> Vec<u8>,
) -> (u64, TcpStream) {
    let total = (0..count).map(|i| one(i).len() as u64).sum::<u64>();
    let writer = tokio::spawn(async move {
        for i in 0..count {
            backend.write_all(&one(i)).await.unwrap();
        }
        backend
    });
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        !writer.is_finished(),
        "the relay took {total} bytes the client never read"
    );
    assert!(counters.down.load(Ordering::Relaxed) < total);
    let read_all = async {
        for i in 0..count {
            let want = one(i);
            let mut got = vec![0u8; want.len()];
            client.read_exact(&mut got).await.unwrap();
            assert!(got == want, "frame {i} arrived changed or out of order");
        }
    };
    tokio::time::timeout(Duration::from_secs(30), read_all)
        .await
        .expect("the relayed bytes within 30 s");
    let backend = tokio::time::timeout(Duration::from_secs(30), writer)
        .await
        .expect("written within 30 s")
        .unwrap();
    (total, backend)
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
        io_uring: false,
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
