//! The relay on io_uring (Linux, the `relayIoUring` setting): plain TCP to the backend, and
//! plain TCP or the gateway's own TLS stream from the client (`relay_uring_tls.rs`).
//!
//! A relayed message costs the gateway one read and one write per direction, and at 20 B the system
//! calls themselves, their entries and epoll's re-checks of each ready socket are most of its CPU
//! (`docs/benchmarks/gateway-1.md`, "Gateway relay"). io_uring takes the calls out of the loop: one
//! ring per worker thread ([`rings`]) keeps a receive armed on every session's sockets and submits
//! all the sends and new receives of a loop turn with the wait for the next completions in one
//! `io_uring_enter` (`relay_uring_loop.rs`), naming each session's sockets by the ring's registered
//! descriptors (`relay_uring_files.rs`). Reads land in a pool of buffers the kernel picks from when
//! data arrives (a provided-buffer ring), so an idle session holds no buffer, as on the epoll path
//! (`scratch.rs`).
//!
//! The loop only does the steady copy: read, note the activity, filter pongs, write, track
//! frames, count, and write a wanted keep-alive ping at a frame boundary. Everything else is
//! the epoll path's, unchanged: on a close order (drain, shutdown, idle limit, unanswered
//! ping), when a source ends or fails, when a write fails, and when frames of at least
//! `SPLICE_MIN` bytes come (their payloads are spliced on that path), the loop cancels what
//! it has in flight and hands both directions back to their tasks ([`Handed`]), with their
//! frame trackers, pong filters and any bytes read but not yet written; the tasks go on as
//! if they had relayed from the start. A TLS client's session goes back with its stream
//! whole (its socket parked underneath, `front_socket.rs`), or, a TLS 1.3 session the ring
//! took over from rustls ([`take_over`], `tls13_records.rs`), as a
//! [`RecordStream`] over the same records layer; it is never spliced. The
//! relay's own task keeps the idle limit and the close orders as before, and reaches the
//! loop through the directions' wakers ([`Poke`]).

use std::any::Any;
use std::os::fd::{AsFd, AsRawFd};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Wake, Waker};

use bytes::Bytes;
use nix::sys::eventfd::{EfdFlags, EventFd};
use tokio::sync::oneshot;

use rustls::{CipherSuite, ProtocolVersion};

use super::super::front_socket::FrontSocket;
use super::super::tls13_keys::TrafficKeys;
use super::super::tls13_records::Records;
use super::super::tls13_secrets::secret_log;
use super::super::tls13_stream::RecordStream;
use super::super::upgraded::FrontTls;
use super::{Carry, Pump, ReadSide, Side, Totals, WriteSide};

#[path = "relay_uring_loop.rs"]
mod ring;
#[path = "relay_uring_tls.rs"]
mod tls;

/// Sessions the io_uring loops took over since the process started (for tests and logs).
pub(super) static TAKEN: AtomicU64 = AtomicU64::new(0);
/// TLS sessions among them that went on as records, without rustls (for tests and logs).
pub(super) static AS_RECORDS: AtomicU64 = AtomicU64::new(0);

/// What a ring hands back to one direction's task.
pub(super) struct Handed {
    src: ReadSide,
    dst: WriteSide,
    carry: Carry,
}

/// The client's end on a ring: its socket, its TLS stream, or its socket and the records
/// layer of a TLS 1.3 session taken over from rustls ([`take_over`]); a TLS client's socket
/// is parked ([`FrontSocket::park`]).
enum Front {
    Tcp(std::net::TcpStream),
    Tls(Box<FrontTls>),
    Records(Box<(FrontSocket, Records)>),
}

impl Front {
    /// The socket's descriptor, for the ring's requests.
    fn fd(&self) -> i32 {
        match self {
            Front::Tcp(tcp) => tcp.as_fd().as_raw_fd(),
            Front::Tls(tls) => tls.get_ref().0.parked_fd().unwrap_or(-1),
            Front::Records(front) => front.0.parked_fd().unwrap_or(-1),
        }
    }

    /// The TLS session, if the client speaks TLS.
    fn tls(&mut self) -> Option<tls::Cipher<'_>> {
        match self {
            Front::Tcp(_) => None,
            Front::Tls(tls) => Some(tls::Cipher::Rustls(tls.get_mut().1)),
            Front::Records(front) => Some(tls::Cipher::Records(&mut front.1)),
        }
    }

    /// Takes the client's socket out of tokio's reactor; false if it was lost.
    fn park(&mut self) -> bool {
        match self {
            Front::Tcp(_) => true,
            Front::Tls(tls) => tls.get_mut().0.park().is_some(),
            Front::Records(front) => front.0.park().is_some(),
        }
    }
}

/// A session given to a ring: both sockets (blocking: io_uring waits, not the caller), the
/// bytes each side sent before the relay started, the two directions and where to hand
/// them back.
struct NewSession {
    client: Front,
    backend: std::net::TcpStream,
    /// The client's prefix, then the backend's.
    prefixes: [Bytes; 2],
    pumps: [Pump<dyn Totals>; 2],
    back: [oneshot::Sender<Handed>; 2],
    /// The runtime the sockets go back to.
    runtime: tokio::runtime::Handle,
}

/// A message to a ring.
enum Msg {
    New(Box<NewSession>),
    /// A session's waker was woken: a close order or a wanted ping (its key).
    Poke(u64),
}

/// A ring's mailbox: messages from other threads, and the eventfd the ring keeps a read on.
struct Inbox {
    queue: Mutex<Vec<Msg>>,
    wake: EventFd,
}

impl Inbox {
    fn send(&self, msg: Msg) {
        let first = {
            let mut queue = self.queue.lock().unwrap_or_else(|e| e.into_inner());
            queue.push(msg);
            queue.len() == 1
        };
        // The ring empties the queue after every wake-up, so only the first message since
        // then needs to wake it.
        if first {
            let _ = self.wake.write(1);
        }
    }

    fn take(&self, into: &mut Vec<Msg>) {
        let mut queue = self.queue.lock().unwrap_or_else(|e| e.into_inner());
        into.append(&mut queue);
    }
}

/// The waker a ring leaves in a session's `Shared::wakers`: waking it (a close order, a
/// ping wanted) tells the ring to look at the session.
struct Poke {
    inbox: Arc<Inbox>,
    key: u64,
}

impl Wake for Poke {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.inbox.send(Msg::Poke(self.key));
    }
}

impl Poke {
    fn waker(inbox: &Arc<Inbox>, key: u64) -> Waker {
        Waker::from(Arc::new(Poke {
            inbox: inbox.clone(),
            key,
        }))
    }
}

/// The rings, one per worker thread of the runtime that first asked, started on first use;
/// `None` if io_uring is not available (an old kernel, or one that refuses it).
fn rings(buffer: usize) -> Option<&'static [Arc<Inbox>]> {
    static RINGS: OnceLock<Option<Vec<Arc<Inbox>>>> = OnceLock::new();
    RINGS
        .get_or_init(|| {
            let threads = tokio::runtime::Handle::try_current()
                .map(|h| h.metrics().num_workers())
                .unwrap_or(1)
                .max(1);
            let started: Result<Vec<_>, _> = (0..threads).map(|_| start(buffer)).collect();
            started
                .inspect_err(|error| {
                    tracing::warn!(%error, "io_uring relay unavailable; relaying with epoll")
                })
                .ok()
        })
        .as_deref()
}

/// Starts one ring's thread; fails if its ring cannot be set up.
fn start(buffer: usize) -> std::io::Result<Arc<Inbox>> {
    let inbox = Arc::new(Inbox {
        queue: Mutex::new(Vec::new()),
        wake: EventFd::from_flags(EfdFlags::EFD_CLOEXEC)?,
    });
    let (ready, outcome) = std::sync::mpsc::channel();
    let theirs = inbox.clone();
    std::thread::Builder::new()
        .name("sockway-relay-ring".into())
        .spawn(move || match ring::Ring::new(theirs, buffer) {
            Ok(mut ring) => {
                let _ = ready.send(Ok(()));
                ring.run();
            }
            Err(error) => {
                let _ = ready.send(Err(error));
            }
        })?;
    outcome
        .recv()
        .map_err(std::io::Error::other)
        .and_then(|started| started)
        .map(|()| inbox)
}

/// Gives a session to a ring: the backend must be plain TCP, the client plain TCP or a
/// TLS stream of the gateway's listener ([`FrontTls`]), and a ring available; otherwise
/// they come back unchanged. On success, one receiver per direction ([`super::UP`],
/// [`super::DOWN`]) gets that direction back when the ring is done with it (dropped, should
/// the sockets be lost).
pub(super) fn offer(
    client: Side,
    backend: Side,
    pumps: [Pump<dyn Totals>; 2],
) -> Result<[oneshot::Receiver<Handed>; 2], Box<(Side, Side)>> {
    let Some(rings) = rings(pumps[0].shared.config.buffer) else {
        return Err(Box::new((client, backend)));
    };
    let Side {
        read: ReadSide::Tcp(br),
        write: WriteSide::Tcp(bw),
        prefix: bp,
    } = backend
    else {
        return Err(Box::new((client, backend)));
    };
    let backend = match br.reunite(bw) {
        Ok(b) => b,
        Err(e) => return Err(Box::new((client, halves(Err(e), bp)))),
    };
    let (front, cp) = match client {
        Side {
            read: ReadSide::Tcp(cr),
            write: WriteSide::Tcp(cw),
            prefix,
        } => match cr.reunite(cw) {
            Ok(c) => (blocking(c).map(Front::Tcp), prefix),
            Err(e) => return Err(Box::new((halves(Err(e), prefix), Side::tcp(backend, bp)))),
        },
        Side {
            read: ReadSide::Other(cr),
            write: WriteSide::Other(cw),
            prefix,
        } if cr.is_pair_of(&cw) => {
            let stream = cr.unsplit(cw);
            if !(&*stream as &dyn Any).is::<FrontTls>() {
                return Err(Box::new((
                    Side::other(stream, prefix),
                    Side::tcp(backend, bp),
                )));
            }
            let any: Box<dyn Any + Send> = stream;
            match any.downcast::<FrontTls>() {
                Ok(mut tls) => {
                    let prefix = with_decrypted(&mut tls, prefix);
                    let front = take_over(tls).and_then(|mut front| front.park().then_some(front));
                    (front, prefix)
                }
                // Never (the type was checked above): the session would be lost, not the
                // process.
                Err(_) => (None, prefix),
            }
        }
        client => return Err(Box::new((client, Side::tcp(backend, bp)))),
    };
    let (up_tx, up_rx) = oneshot::channel();
    let (down_tx, down_rx) = oneshot::channel();
    match (front, blocking(backend)) {
        (Some(c), Some(b)) => {
            static NEXT: AtomicUsize = AtomicUsize::new(0);
            let inbox = &rings[NEXT.fetch_add(1, Ordering::Relaxed) % rings.len()];
            TAKEN.fetch_add(1, Ordering::Relaxed);
            inbox.send(Msg::New(Box::new(NewSession {
                client: c,
                backend: b,
                prefixes: [cp, bp],
                pumps,
                back: [up_tx, down_tx],
                runtime: tokio::runtime::Handle::current(),
            })));
        }
        // A socket tokio could not let go of is lost: the session ends.
        _ => tracing::debug!("a relayed socket could not leave the runtime"),
    }
    Ok([up_rx, down_rx])
}

/// The client's TLS session as the ring relays it: a TLS 1.3 session goes on as records
/// (`tls13_records.rs`) when rustls holds nothing of it but its keys (the handshake done,
/// nothing to send, no part of a record read, its plaintext taken) and the key log has its
/// secrets; any other stays with rustls. `None` if rustls refused the keys (its session
/// had failed) or its suite is not one of TLS 1.3's.
fn take_over(mut tls: Box<FrontTls>) -> Option<Front> {
    let (socket, conn) = tls.get_mut();
    let suite = conn.negotiated_cipher_suite().map(|s| s.suite());
    let ready = conn.protocol_version() == Some(ProtocolVersion::TLSv1_3)
        && matches!(
            suite,
            Some(
                CipherSuite::TLS13_AES_128_GCM_SHA256
                    | CipherSuite::TLS13_AES_256_GCM_SHA384
                    | CipherSuite::TLS13_CHACHA20_POLY1305_SHA256
            )
        )
        && !conn.is_handshaking()
        && !conn.wants_write()
        && conn
            .process_new_packets()
            .is_ok_and(|state| !state.peer_has_closed() && state.plaintext_bytes_to_read() == 0)
        && socket.at_record_boundary();
    // The key log has the secrets only where the listener's configuration logs them, and it
    // also lets rustls hand the keys over there (`tls.rs`).
    let secrets = socket
        .client_random()
        .filter(|_| ready)
        .and_then(|random| secret_log().take(&random))
        .filter(|pair| pair.client.is_some() && pair.server.is_some());
    let Some(secrets) = secrets else {
        return Some(Front::Tls(tls));
    };
    let (socket, conn) = (*tls).into_inner();
    let extracted = conn.dangerous_extract_secrets().ok()?;
    let rx = TrafficKeys::new(extracted.rx.0, extracted.rx.1, secrets.client)?;
    let tx = TrafficKeys::new(extracted.tx.0, extracted.tx.1, secrets.server)?;
    AS_RECORDS.fetch_add(1, Ordering::Relaxed);
    tracing::debug!(?suite, "a TLS 1.3 session goes on as records");
    Some(Front::Records(Box::new((socket, Records::new(rx, tx)))))
}

/// `prefix` followed by the plaintext the client's TLS connection decrypted and nobody has
/// read yet (`tokio_rustls` reads records as they come, hyper only what it needs).
fn with_decrypted(tls: &mut FrontTls, prefix: Bytes) -> Bytes {
    let mut plain = prefix.to_vec();
    let before = plain.len();
    // An error here is the client's, and the connection remembers it for the next read.
    let _ = tls::decrypted(tls.get_mut().1, &mut plain);
    match plain.len() == before {
        true => prefix,
        false => Bytes::from(plain),
    }
}

/// A side rebuilt from halves that did not reunite (never two halves of one socket: they
/// always do).
fn halves(
    reunited: Result<tokio::net::TcpStream, tokio::net::tcp::ReuniteError>,
    prefix: Bytes,
) -> Side {
    match reunited {
        Ok(tcp) => Side::tcp(tcp, prefix),
        Err(e) => Side {
            read: ReadSide::Tcp(e.0),
            write: WriteSide::Tcp(e.1),
            prefix,
        },
    }
}

/// The socket out of tokio's reactor, in blocking mode for the ring.
fn blocking(tcp: tokio::net::TcpStream) -> Option<std::net::TcpStream> {
    let std = tcp.into_std().ok()?;
    std.set_nonblocking(false).ok()?;
    Some(std)
}

/// The sockets back into `runtime`'s reactor, split for the two directions' tasks; `None` if
/// the runtime cannot take them (it is shutting down).
fn into_runtime(
    runtime: &tokio::runtime::Handle,
    client: Front,
    backend: std::net::TcpStream,
) -> Option<[(ReadSide, WriteSide); 2]> {
    let _entered = runtime.enter();
    let tokio_tcp = |s: std::net::TcpStream| {
        s.set_nonblocking(true).ok()?;
        tokio::net::TcpStream::from_std(s).ok()
    };
    let (br, bw) = tokio_tcp(backend)?.into_split();
    let (cr, cw) = match client {
        Front::Tcp(tcp) => {
            let (cr, cw) = tokio_tcp(tcp)?.into_split();
            (ReadSide::Tcp(cr), WriteSide::Tcp(cw))
        }
        Front::Tls(mut tls) => {
            if !tls.get_mut().0.unpark(runtime) {
                return None;
            }
            let side = Side::other(tls, Bytes::new());
            (side.read, side.write)
        }
        Front::Records(front) => {
            let (mut socket, records) = *front;
            if !socket.unpark(runtime) {
                return None;
            }
            let side = Side::other(Box::new(RecordStream::new(socket, records)), Bytes::new());
            (side.read, side.write)
        }
    };
    Some([(cr, WriteSide::Tcp(bw)), (ReadSide::Tcp(br), cw)])
}

impl<T: Totals> Pump<T> {
    /// Waits until the ring hands this direction back, then relays it as
    /// [`run`](Pump::run) does (nothing, if the ring lost it).
    pub(super) async fn resume(self, back: oneshot::Receiver<Handed>) {
        if let Ok(handed) = back.await {
            self.run(Bytes::new(), Some(handed.carry), handed.src, handed.dst)
                .await;
        }
    }
}

#[cfg(test)]
#[path = "relay_uring_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "relay_uring_tls_tests.rs"]
mod tls_tests;
