//! What every echo server of the comparison shares, so that they differ only in the WebSocket
//! library: the command line (`PORT THREADS [--compression] [--tls DIR]`), the runtime (tokio's
//! multi-threaded flavour with exactly THREADS worker threads), the listener (127.0.0.1,
//! `TCP_NODELAY` on accepted connections), TLS (one rustls configuration for all) and the
//! startup line that states all of it.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

/// mimalloc for every server when built with the `mimalloc` feature (see Cargo.toml).
#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The allocator every server uses, as the startup line states it.
pub const ALLOCATOR_NAME: &str = if cfg!(feature = "mimalloc") {
    "mimalloc"
} else {
    "system malloc"
};

/// The largest message every server accepts: 64 MiB.
pub const MAX_MESSAGE: usize = 64 << 20;

/// The command line of every echo server.
#[derive(Debug, Clone)]
pub struct Args {
    /// Port on 127.0.0.1; 0 picks a free one (the startup line says which).
    pub port: u16,
    /// Worker threads of the tokio runtime.
    pub threads: usize,
    /// Accept permessage-deflate (RFC 7692) with the library's default parameters: window 15,
    /// context takeover both ways, zlib level 1, every message compressed.
    pub compression: bool,
    /// Serve TLS with `cert.pem` and `key.pem` of this directory (`--tls DIR`).
    pub tls: Option<PathBuf>,
    /// One single-threaded runtime per worker thread, each with its own `SO_REUSEPORT`
    /// listener on the port (`--per-core`), instead of one multi-threaded runtime: the layout
    /// of uWebSockets' processes, for the servers that can run that way
    /// ([`reuse_port_listeners`]); for the event loop, a listener per worker thread.
    pub per_core: bool,
    /// One single-threaded runtime per worker thread on one listener, thread 0 dealing each
    /// connection to the thread with the fewest (`--dealt`, `Server::serve_threads`).
    pub dealt: bool,
}

/// Parses `PORT [THREADS] [--compression] [--tls DIR]` (THREADS defaults to 2), exiting with
/// usage on anything else, and with a clear message when `--compression` is asked of a server
/// whose library has no permessage-deflate (`supports_compression` false).
pub fn args(name: &str, supports_compression: bool) -> Args {
    let mut argv: Vec<String> = std::env::args().skip(1).collect();
    let compression = argv.iter().any(|arg| arg == "--compression");
    let per_core = argv.iter().any(|arg| arg == "--per-core");
    let dealt = argv.iter().any(|arg| arg == "--dealt");
    argv.retain(|arg| !matches!(arg.as_str(), "--compression" | "--per-core" | "--dealt"));
    let tls = argv.iter().position(|arg| arg == "--tls").map(|at| {
        let dir = argv.get(at + 1).cloned().unwrap_or_default();
        argv.drain(at..(at + 2).min(argv.len()));
        PathBuf::from(dir)
    });
    let parsed = match argv.as_slice() {
        [port] => port.parse().ok().map(|port| (port, 2)),
        [port, threads] => port.parse().ok().zip(threads.parse().ok()),
        _ => None,
    };
    if compression && !supports_compression {
        eprintln!("{name}: this library has no permessage-deflate; --compression is not available");
        std::process::exit(2);
    }
    match parsed {
        Some((port, threads))
            if threads > 0 && tls.as_ref().is_none_or(|d| !d.as_os_str().is_empty()) =>
        {
            Args {
                port,
                threads,
                compression,
                tls,
                per_core,
                dealt,
            }
        }
        _ => {
            eprintln!(
                "usage: {name} PORT [THREADS] [--compression] [--tls DIR] [--per-core | --dealt]   \
                 (PORT 0 picks a free port; THREADS >= 1; DIR holds cert.pem and key.pem)"
            );
            std::process::exit(2);
        }
    }
}

/// Runs `serve` on a tokio runtime with `args.threads` threads, after binding the listener and
/// printing the startup line (`NAME listening on ADDR (...)`) on stdout. One thread is a
/// current-thread runtime, as `sockway echo --threads 1` runs: a multi-threaded runtime with
/// one worker would run the accept loop on a second thread (the one in `block_on`) and pay
/// for work-stealing it cannot use.
pub fn run<F, Fut>(name: &str, args: Args, serve: F)
where
    F: FnOnce(TcpListener) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let (mut builder, flavor) = if args.threads == 1 {
        let builder = tokio::runtime::Builder::new_current_thread();
        (builder, "tokio current_thread".to_owned())
    } else {
        let mut builder = tokio::runtime::Builder::new_multi_thread();
        builder.worker_threads(args.threads);
        let flavor = format!("tokio multi_thread, {} worker threads", args.threads);
        (builder, flavor)
    };
    let runtime = builder.enable_all().build().expect("tokio runtime");
    let tls = args
        .tls
        .as_ref()
        .map(|dir| format!(", TLS (rustls, aws-lc-rs) with {}", dir.display()));
    runtime.block_on(async move {
        let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], args.port)))
            .await
            .expect("bind");
        let address = listener.local_addr().expect("local address");
        println!(
            "{name} listening on {address} ({flavor}, max message {} MiB, {}{}, \
             {ALLOCATOR_NAME})",
            MAX_MESSAGE >> 20,
            if args.compression {
                "permessage-deflate: window 15, context takeover, level 1, every message"
            } else {
                "no compression"
            },
            tls.unwrap_or_default()
        );
        serve(listener).await;
    });
}

/// The listeners of a server that runs one loop per thread (`--per-core`): `args.threads`
/// listeners on one port of 127.0.0.1 with `SO_REUSEPORT`, so that the kernel spreads the
/// connections over them (sockway's [`sockway::server::reuse_port_listeners`]); prints the
/// startup line, naming `layout` (how the threads run).
pub fn reuse_port_listeners(name: &str, args: &Args, layout: &str) -> Vec<std::net::TcpListener> {
    let address = SocketAddr::from(([127, 0, 0, 1], args.port));
    let listeners = sockway::server::reuse_port_listeners(address, args.threads).expect("bind");
    let address = listeners[0].local_addr().expect("local address");
    println!(
        "{name} listening on {address} ({layout}, {} threads, one SO_REUSEPORT listener each, \
         max message {} MiB, no compression, {ALLOCATOR_NAME})",
        args.threads,
        MAX_MESSAGE >> 20,
    );
    listeners
}

/// The one listener of a server whose thread 0 deals connections to its threads (`--dealt`),
/// on 127.0.0.1; prints the startup line, naming `layout` (how the threads run).
pub fn dealing_listener(name: &str, args: &Args, layout: &str) -> std::net::TcpListener {
    let listener =
        std::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], args.port))).expect("bind");
    let address = listener.local_addr().expect("local address");
    println!(
        "{name} listening on {address} ({layout}, {} threads, one listener, thread 0 dealing, \
         max message {} MiB, no compression, {ALLOCATOR_NAME})",
        args.threads,
        MAX_MESSAGE >> 20,
    );
    listener
}

/// Accepts the next connection with `TCP_NODELAY` set, retrying after transient errors
/// (such as running out of file descriptors) with a short pause.
pub async fn accept(listener: &TcpListener) -> TcpStream {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                let _ = stream.set_nodelay(true);
                return stream;
            }
            Err(error) => {
                eprintln!("accept: {error}");
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
        }
    }
}

/// The PEM certificate chain and key of `dir` (`cert.pem`, `key.pem`), exiting with a clear
/// message when they cannot be read.
pub fn tls_pem(dir: &std::path::Path) -> (Vec<u8>, Vec<u8>) {
    let read = |name: &str| {
        std::fs::read(dir.join(name)).unwrap_or_else(|error| {
            eprintln!("--tls: cannot read {}: {error}", dir.join(name).display());
            std::process::exit(2);
        })
    };
    (read("cert.pem"), read("key.pem"))
}

/// The TLS acceptor every Rust peer uses with `--tls DIR`: rustls with `sockway::crypto_provider` (aws-lc-rs), TLS 1.2 and 1.3,
/// ALPN `http/1.1`, the certificate and key of `dir`.
pub fn tls_acceptor(dir: &std::path::Path) -> TlsAcceptor {
    let (cert, key) = tls_pem(dir);
    let chain = CertificateDer::pem_slice_iter(&cert)
        .collect::<Result<Vec<_>, _>>()
        .expect("cert.pem holds PEM certificates");
    let key = PrivateKeyDer::from_pem_slice(&key).expect("key.pem holds a PEM private key");
    let provider = sockway::crypto_provider();
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .expect("certificate and key match");
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    TlsAcceptor::from(Arc::new(config))
}

/// Runs the TLS handshake on an accepted connection; `None` when it fails (the connection is
/// dropped, as a server would).
pub async fn tls_handshake(
    acceptor: TlsAcceptor,
    stream: TcpStream,
) -> Option<TlsStream<TcpStream>> {
    acceptor.accept(stream).await.ok()
}

/// Exits with a clear message when `--tls` was given to a server without TLS.
pub fn refuse_tls(name: &str, args: &Args) {
    if args.tls.is_some() {
        eprintln!("{name}: this server has no TLS; --tls is not available");
        std::process::exit(2);
    }
}
