//! Shared pieces of the reliability suite: the lock that lets memory-measuring tests run
//! alone, environment knobs, the process's resident set size, bounded waits, and a sockway
//! [`Server`] runner on a loopback port (optionally with a throwaway TLS certificate).

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use http::{Request, Response, StatusCode};
use hyper::body::Incoming;
use sockway::server::{Body, Server, ServerOptions, ServerTls, Service, ShutdownHandle};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};
use tokio::task::JoinHandle;

/// Held for writing by tests that measure the process's memory or load it heavily, and for
/// reading by all others: a measurement never sees another test's allocations.
static EXCLUSIVE: RwLock<()> = RwLock::const_new(());

/// Runs the calling test alone (until the guard drops).
pub async fn exclusive() -> RwLockWriteGuard<'static, ()> {
    EXCLUSIVE.write().await
}

/// Lets the calling test run next to other shared ones, but never next to an exclusive one.
pub async fn shared() -> RwLockReadGuard<'static, ()> {
    EXCLUSIVE.read().await
}

/// A positive integer from the environment, or `default`.
pub fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .filter(|&v| v > 0)
        .unwrap_or(default)
}

/// One mebibyte.
pub const MIB: usize = 1024 * 1024;

/// The process's resident set size in bytes (`VmRSS` of `/proc/self/status`); the servers
/// under test run in this process, so this is their memory (plus the clients').
pub fn rss_bytes() -> usize {
    status_kib("VmRSS:") * 1024
}

/// Resets the process's peak RSS (`VmHWM`) to its current RSS by writing `5` to
/// `/proc/self/clear_refs` (Linux 4.0 and later); returns whether that worked.
pub fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// The process's peak RSS in bytes (`VmHWM`) since the start or the last [`reset_peak_rss`].
pub fn peak_rss_bytes() -> usize {
    status_kib("VmHWM:") * 1024
}

/// A `kB` field of `/proc/self/status`.
fn status_kib(field: &str) -> usize {
    let status = std::fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    status
        .lines()
        .find_map(|line| line.strip_prefix(field))
        .and_then(|rest| {
            rest.trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<usize>()
                .ok()
        })
        .unwrap_or_else(|| panic!("{field} in /proc/self/status"))
}

/// Bytes as MiB with one decimal, for messages.
pub fn mib(bytes: usize) -> String {
    format!("{:.1} MiB", bytes as f64 / MIB as f64)
}

/// The largest send and receive buffers the kernel may give one TCP socket (the third field
/// of `tcp_wmem` and `tcp_rmem`), with 4 MiB and 6 MiB when they cannot be read.
pub fn tcp_buffer_max() -> (usize, usize) {
    let read = |path: &str, default: usize| {
        std::fs::read_to_string(path)
            .ok()
            .and_then(|s| s.split_whitespace().nth(2).and_then(|v| v.parse().ok()))
            .unwrap_or(default)
    };
    (
        read("/proc/sys/net/ipv4/tcp_wmem", 4 * MIB),
        read("/proc/sys/net/ipv4/tcp_rmem", 6 * MIB),
    )
}

/// Awaits `future` for at most `limit`, failing the test with `what` if it takes longer.
pub async fn within<F: Future>(what: &str, limit: Duration, future: F) -> F::Output {
    tokio::time::timeout(limit, future)
        .await
        .unwrap_or_else(|_| panic!("timed out after {limit:?}: {what}"))
}

/// A [`Server`] runner serving on `127.0.0.1` with an OS-chosen port; shut down and stopped
/// when dropped.
pub struct Runner {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Starts its graceful shutdown.
    pub handle: ShutdownHandle,
    task: JoinHandle<()>,
}

impl Runner {
    /// Serves `service` with `options` (signal handling off), over TLS when `tls` is given.
    pub async fn start<S, B>(options: ServerOptions, tls: Option<ServerTls>, service: S) -> Self
    where
        S: Service<Request<Incoming>, Response = Response<B>> + Clone + Send + 'static,
        S::Future: Send + 'static,
        S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
        B: hyper::body::Body + Send + 'static,
        B::Data: Send,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("local address");
        let mut server = Server::new(options.handle_signals(false));
        if let Some(tls) = tls {
            server = server.tls(tls);
        }
        let handle = server.shutdown_handle();
        let task = tokio::spawn(server.serve(listener, service));
        Self { addr, handle, task }
    }

    /// Whether the accept loop is still running (it ends only on shutdown or a panic).
    pub fn is_running(&self) -> bool {
        !self.task.is_finished()
    }

    /// `ws://` URL of `path`.
    pub fn url(&self, path: &str) -> String {
        format!("ws://{}{path}", self.addr)
    }

    /// A new TCP connection to it.
    pub async fn connect(&self) -> TcpStream {
        let stream = within(
            "TCP connect",
            Duration::from_secs(5),
            TcpStream::connect(self.addr),
        )
        .await
        .expect("TCP connect");
        let _ = stream.set_nodelay(true);
        stream
    }
}

impl Drop for Runner {
    fn drop(&mut self) {
        self.handle.shutdown();
        self.task.abort();
    }
}

/// A service answering every request 404, for [`sockway::server::WebSocketLayer`] to wrap.
pub fn not_found() -> impl Service<
    Request<Incoming>,
    Response = Response<Body>,
    Error = std::convert::Infallible,
    Future = impl Send,
> + Clone
       + Send
       + 'static {
    sockway::server::service_fn(|_request: Request<Incoming>| async {
        let mut response = Response::new(Body::from("no such page\n"));
        *response.status_mut() = StatusCode::NOT_FOUND;
        response
    })
}

/// A throwaway self-signed certificate for `localhost` and `127.0.0.1`: the runner's TLS
/// identity and the PEM text a client trusts it by.
pub fn self_signed() -> (ServerTls, String) {
    let certified =
        rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()])
            .expect("generate a certificate");
    let cert = certified.cert.pem();
    let tls = ServerTls::from_pem(
        cert.as_bytes(),
        certified.signing_key.serialize_pem().as_bytes(),
    )
    .expect("TLS identity");
    (tls, cert)
}

/// A small deterministic generator (splitmix64), so that every run sends the same traffic.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator for `seed`.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
}
