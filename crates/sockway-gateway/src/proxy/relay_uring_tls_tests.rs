//! A client's TLS session on the io_uring relay, over real loopback sockets and a real
//! rustls client, as records once rustls handed the keys over (the gateway's listeners'
//! configuration) or through rustls' connection (TLS 1.2, or keys not handed over):
//! payloads of every size arrive intact both ways (TLS 1.3 and 1.2),
//! keep-alive pings reach the client through its session, a key update is answered,
//! records a hand-back cut reach a slow client whole, a close order hands the session back
//! to tokio's tasks in the middle of it, the client's `close_notify` ends its way like an
//! end of stream, and a record that does not decrypt ends the session with an alert. Where
//! the kernel refuses io_uring the relay runs on epoll and the tests say so instead of
//! checking the ring.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_rustls::client::TlsStream;
use tokio_rustls::{TlsAcceptor, TlsConnector};

use super::super::super::front_socket::FrontSocket;
use super::super::super::tls13_stream::RecordStream;
use super::super::super::tls_test_support::localhost;
use super::super::tests::{frame, pair, payload, NoTotals};
use super::super::{relay, Counters, RelayConfig, RelayOutcome, Side};
use super::tests::{
    both_hear_1001, close_code, closed_both_ways, ends, exchange, large, pinged_and_pong_kept,
    shut_down, CLOSES,
};
use super::{rings, take_over, Front, AS_RECORDS, TAKEN};
use crate::drain::CloseOrder;

const WAIT: Duration = Duration::from_secs(30);

/// A relay between a TLS client and a plain backend.
struct Session {
    client: TlsStream<TcpStream>,
    backend: TcpStream,
    orders: watch::Sender<Option<CloseOrder>>,
    relay: JoinHandle<RelayOutcome>,
}

/// How the ring relays a TLS 1.3 session.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Path {
    /// As records: the server's configuration logs the secrets and hands the keys over,
    /// as the gateway's listeners' does.
    Records,
    /// Through rustls' connection.
    Rustls,
}

/// A server acceptor and a client connector that trusts it, for `localhost`; the client
/// speaks only `version`, the server is set up for `path`.
fn tls_pair(
    version: &'static rustls::SupportedProtocolVersion,
    path: Path,
) -> (TlsAcceptor, TlsConnector) {
    let (cert, private, roots) = localhost();
    let mut server = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(vec![cert], private)
        .unwrap();
    if path == Path::Records {
        server.enable_secret_extraction = true;
        server.key_log = crate::proxy::tls13_secrets::secret_log();
    }
    let client = rustls::ClientConfig::builder_with_protocol_versions(&[version])
        .with_root_certificates(roots)
        .with_no_client_auth();
    (
        TlsAcceptor::from(Arc::new(server)),
        TlsConnector::from(Arc::new(client)),
    )
}

/// A relay with io_uring on; `early` is sent by the client in its session before the relay
/// starts and left unread on the gateway's side (decrypted there, but nobody read it yet).
async fn session(idle: Duration, keep_alive: bool, early: &[u8]) -> Session {
    session_over(
        &rustls::version::TLS13,
        Path::Records,
        idle,
        keep_alive,
        early,
    )
    .await
}

/// [`session`] with a client that speaks only `version`, relayed by `path` (TLS 1.2 is
/// always relayed through rustls).
async fn session_over(
    version: &'static rustls::SupportedProtocolVersion,
    path: Path,
    idle: Duration,
    keep_alive: bool,
    early: &[u8],
) -> Session {
    let (client, client_end) = pair().await;
    let (backend_end, backend) = pair().await;
    let (acceptor, connector) = tls_pair(version, path);
    let name = ServerName::try_from("localhost").unwrap();
    let (client, front) = tokio::join!(
        connector.connect(name, client),
        acceptor.accept(FrontSocket::new(client_end))
    );
    let (mut client, mut front) = (client.unwrap(), front.unwrap());
    if !early.is_empty() {
        client.write_all(early).await.unwrap();
        client.flush().await.unwrap();
        // The gateway's stream reads the records (and decrypts them) without handing out
        // their plaintext: a read into an empty buffer.
        let mut none = [0u8; 0];
        while front.get_ref().1.wants_read() {
            assert_eq!(front.read(&mut none).await.unwrap(), 0);
            tokio::task::yield_now().await;
            if front
                .get_mut()
                .1
                .process_new_packets()
                .unwrap()
                .plaintext_bytes_to_read()
                >= early.len()
            {
                break;
            }
        }
    }
    let config = RelayConfig {
        idle,
        buffer: 16384,
        close_grace: Duration::from_secs(1),
        keep_alive,
        io_uring: true,
    };
    let (orders, receiver) = watch::channel(None);
    let taken = TAKEN.load(Ordering::Relaxed);
    let as_records = AS_RECORDS.load(Ordering::Relaxed);
    let relay = tokio::spawn(relay(
        Side::other(Box::new(front), Bytes::new()),
        Side::tcp(backend_end, Bytes::new()),
        config,
        receiver,
        Arc::new(Counters::default()),
        Arc::new(NoTotals::default()),
    ));
    let on_ring = async {
        while TAKEN.load(Ordering::Relaxed) == taken {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    };
    if rings(16384).is_some() {
        tokio::time::timeout(WAIT, on_ring)
            .await
            .expect("a ring takes the TLS session within 30 s");
        // Other tests' sessions may be taken over meanwhile: only "none" tells.
        let records = AS_RECORDS.load(Ordering::Relaxed) > as_records;
        let tls13 = version == &rustls::version::TLS13;
        if path == Path::Records && tls13 {
            assert!(records, "the ring relays the session as records");
        }
    } else {
        eprintln!("io_uring unavailable here: the relay ran on epoll");
    }
    Session {
        client,
        backend,
        orders,
        relay,
    }
}

/// Sends `up` from the client and `down` from the backend at once, and reads both.
async fn both_ways(s: &mut Session, up: &[u8], down: &[u8]) {
    exchange(&mut s.client, &mut s.backend, up, down).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn payloads_of_every_size_cross_a_tls_session_on_the_ring() {
    payloads_of_every_size_cross(Path::Records).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn payloads_of_every_size_cross_a_tls_session_on_the_ring_through_rustls() {
    payloads_of_every_size_cross(Path::Rustls).await;
}

async fn payloads_of_every_size_cross(path: Path) {
    let early = frame(0x81, b"early", Some([9, 8, 7, 6]));
    let tls13 = &rustls::version::TLS13;
    let mut s = session_over(tls13, path, Duration::from_secs(60), true, &early).await;
    let mut want = early.clone();
    let mut got = vec![0u8; want.len()];
    tokio::time::timeout(WAIT, s.backend.read_exact(&mut got))
        .await
        .expect("the early frame within 30 s")
        .unwrap();
    assert_eq!(
        got, want,
        "what the client sent before the relay comes first"
    );
    let up = large(Some([0x37, 0xfa, 0x21, 0x3d]));
    let down = large(None);
    both_ways(&mut s, &up, &down).await;
    let outcome = closed_both_ways(s.client, s.backend, s.relay).await;
    want.extend_from_slice(&up);
    assert_eq!(outcome.bytes_up, (want.len() + CLOSES[0]) as u64);
    assert_eq!(outcome.bytes_down, (down.len() + CLOSES[1]) as u64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tls12_client_is_relayed_on_the_ring_too() {
    let mut s = session_over(
        &rustls::version::TLS12,
        Path::Records,
        Duration::from_secs(60),
        true,
        b"",
    )
    .await;
    assert_eq!(
        s.client.get_ref().1.protocol_version(),
        Some(rustls::ProtocolVersion::TLSv1_2)
    );
    let up = large(Some([0x11, 0x22, 0x33, 0x44]));
    let down = large(None);
    both_ways(&mut s, &up, &down).await;
    let outcome = closed_both_ways(s.client, s.backend, s.relay).await;
    assert_eq!(outcome.bytes_up, (up.len() + CLOSES[0]) as u64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quiet_tls_client_is_pinged_through_its_session_and_its_pong_kept() {
    let mut s = session(Duration::from_secs(2), true, b"").await;
    both_ways(&mut s, &frame(0x82, b"hi", Some([1, 1, 1, 1])), b"").await;
    pinged_and_pong_kept(&mut s.client, &mut s.backend).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_s_key_update_is_answered_on_the_ring() {
    a_client_s_key_update_is_answered(Path::Records).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_s_key_update_is_answered_on_the_ring_through_rustls() {
    a_client_s_key_update_is_answered(Path::Rustls).await;
}

async fn a_client_s_key_update_is_answered(path: Path) {
    let tls13 = &rustls::version::TLS13;
    let mut s = session_over(tls13, path, Duration::from_secs(60), false, b"").await;
    both_ways(&mut s, &frame(0x82, b"hi", Some([1, 1, 1, 1])), b"").await;
    // TLS 1.3 KeyUpdate with update_requested (RFC 8446 section 4.6.3): the gateway's side
    // must answer with its own before it sends anything under new keys.
    s.client.get_mut().1.refresh_traffic_keys().unwrap();
    for i in 0..3 {
        let up = frame(0x82, &payload(30_000, i), Some([3, 1, 4, 1]));
        let down = frame(0x82, &payload(30_000, i + 1), None);
        both_ways(&mut s, &up, &down).await;
    }
    let outcome = closed_both_ways(s.client, s.backend, s.relay).await;
    assert_eq!(outcome.ended_by_gateway, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_close_order_hands_a_tls_session_back_and_both_sides_hear_1001() {
    let mut s = session(Duration::from_secs(60), false, b"").await;
    both_ways(
        &mut s,
        &frame(0x82, b"hi", Some([1, 1, 1, 1])),
        &frame(0x82, &payload(50_000, 1), None),
    )
    .await;
    shut_down(&s.orders);
    both_hear_1001(&mut s.client, &mut s.backend).await;
    drop((s.client, s.backend));
    assert_eq!(ends(s.relay).await.ended_by_gateway, Some("shutdown"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_a_hand_back_cuts_reach_a_slow_client_whole() {
    let mut s = session(Duration::from_secs(60), false, b"").await;
    both_ways(&mut s, &frame(0x82, b"hi", Some([1, 1, 1, 1])), b"").await;
    // 24 MB the client does not read for a while, more than the loopback sockets' buffers
    // on the way hold: the ring's send of records to it stalls part-way, and a close order
    // then cuts it.
    let frames: Vec<u8> = (0..400)
        .flat_map(|i| frame(0x82, &payload(60_000, i), None))
        .collect();
    let mut backend = s.backend;
    let sent = frames.clone();
    let writer = tokio::spawn(async move {
        let _ = backend.write_all(&sent).await;
        backend
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    shut_down(&s.orders);
    let mut got = Vec::new();
    let read = tokio::time::timeout(WAIT, s.client.read_to_end(&mut got))
        .await
        .expect("the client's session ends within 30 s");
    // Every record decrypted (a record cut or skipped fails the client's MAC check), and
    // the session ended with close_notify.
    read.unwrap();
    let same = got.iter().zip(&frames).take_while(|(a, b)| a == b).count();
    assert!(same > 0, "the backend's frames came");
    match &got[same..] {
        [] => {}
        // A close at a frame boundary (none after a cut frame).
        [0x88, ..] => assert_eq!(close_code(&mut &got[same..], false).await, 1001),
        rest => panic!(
            "{} bytes after the frames' prefix: {:?}",
            rest.len(),
            &rest[..rest.len().min(8)]
        ),
    }
    drop(writer.await.unwrap());
    ends(s.relay).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_s_close_notify_ends_its_way_as_a_client_gone_away() {
    let mut s = session(Duration::from_secs(60), false, b"").await;
    both_ways(&mut s, &frame(0x82, b"hi", Some([1, 1, 1, 1])), b"").await;
    s.client.shutdown().await.unwrap();
    assert_eq!(close_code(&mut s.backend, true).await, 1001);
    drop(s.backend);
    let outcome = ends(s.relay).await;
    assert_eq!(outcome.backend_close, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_that_does_not_decrypt_ends_the_session_with_an_alert() {
    let mut s = session(Duration::from_secs(60), false, b"").await;
    both_ways(&mut s, &frame(0x82, b"hi", Some([1, 1, 1, 1])), b"").await;
    // An application-data record of garbage, written under the client's TLS layer.
    let garbage = [
        23u8, 3, 3, 0, 20, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20,
    ];
    s.client.get_mut().0.write_all(&garbage).await.unwrap();
    let mut rest = Vec::new();
    let read = tokio::time::timeout(WAIT, s.client.read_to_end(&mut rest))
        .await
        .expect("the client's session ends within 30 s");
    assert!(
        read.is_err(),
        "the client hears an alert, not a clean end: {read:?}"
    );
    let mut left = Vec::new();
    let backend_end = tokio::time::timeout(WAIT, s.backend.read_to_end(&mut left)).await;
    assert!(
        backend_end.is_ok(),
        "the backend's connection ends within 30 s"
    );
    ends(s.relay).await;
}

/// A TLS 1.3 session handshaken over loopback with the gateway's configuration and taken
/// over as records, as a [`RecordStream`] again (what a hand-back gives the tasks), and the
/// client's end.
async fn record_stream() -> (RecordStream, TlsStream<TcpStream>) {
    let (client, client_end) = pair().await;
    let (acceptor, connector) = tls_pair(&rustls::version::TLS13, Path::Records);
    let name = ServerName::try_from("localhost").unwrap();
    let (client, front) = tokio::join!(
        connector.connect(name, client),
        acceptor.accept(FrontSocket::new(client_end))
    );
    let Some(Front::Records(front)) = take_over(Box::new(front.unwrap())) else {
        panic!("a finished TLS 1.3 session with its secrets logged is taken over");
    };
    let (socket, records) = *front;
    (RecordStream::new(socket, records), client.unwrap())
}

#[tokio::test]
async fn a_session_handed_back_as_records_reads_writes_follows_key_updates_and_closes() {
    let (mut stream, mut client) = record_stream().await;
    let up = payload(100_000, 1);
    let down = payload(150_000, 2);
    let (sent, got) = tokio::join!(
        async {
            client.write_all(&up).await.unwrap();
            client.flush().await.unwrap();
            let mut got = vec![0u8; down.len()];
            client.read_exact(&mut got).await.unwrap();
            got
        },
        async {
            let mut got = vec![0u8; up.len()];
            stream.read_exact(&mut got).await.unwrap();
            stream.write_all(&down).await.unwrap();
            stream.flush().await.unwrap();
            got
        }
    );
    assert!(sent == down && got == up, "bytes changed on the way");

    // The client's key update (it asks for one back): both directions go on.
    client.get_mut().1.refresh_traffic_keys().unwrap();
    client.write_all(b"after").await.unwrap();
    client.flush().await.unwrap();
    let mut after = [0u8; 5];
    stream.read_exact(&mut after).await.unwrap();
    assert_eq!(&after, b"after");
    stream.write_all(b"answer").await.unwrap();
    stream.flush().await.unwrap();
    let mut answer = [0u8; 6];
    client.read_exact(&mut answer).await.unwrap();
    assert_eq!(&answer, b"answer");

    // The gateway's close: close_notify, a clean end for the client.
    stream.shutdown().await.unwrap();
    let mut rest = Vec::new();
    tokio::time::timeout(WAIT, client.read_to_end(&mut rest))
        .await
        .expect("the end within 30 s")
        .expect("a clean end (close_notify)");
    assert!(rest.is_empty());
}

#[tokio::test]
async fn a_session_handed_back_as_records_answers_garbage_with_an_alert() {
    let (mut stream, mut client) = record_stream().await;
    let garbage = [
        23u8, 3, 3, 0, 20, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20,
    ];
    client.get_mut().0.write_all(&garbage).await.unwrap();
    let mut one = [0u8; 1];
    let read = tokio::time::timeout(WAIT, stream.read(&mut one))
        .await
        .unwrap();
    assert_eq!(read.unwrap_err().kind(), std::io::ErrorKind::InvalidData);
    drop(stream);
    let mut rest = Vec::new();
    let heard = tokio::time::timeout(WAIT, client.read_to_end(&mut rest))
        .await
        .unwrap();
    let error = heard.expect_err("the client hears an alert");
    assert!(
        error.to_string().contains("BadRecordMac"),
        "bad_record_mac (RFC 8446 section 5.2): {error}"
    );
}
