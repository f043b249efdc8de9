//! What every echo server of the comparison shares, so that they differ only in the WebSocket
//! library: the command line (`PORT THREADS [--compression]`), the runtime (tokio's multi-threaded flavour
//! with exactly THREADS worker threads), the listener (127.0.0.1, `TCP_NODELAY` on accepted
//! connections) and the startup line that states all of it.

use std::net::SocketAddr;

use tokio::net::{TcpListener, TcpStream};

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
#[derive(Debug, Clone, Copy)]
pub struct Args {
    /// Port on 127.0.0.1; 0 picks a free one (the startup line says which).
    pub port: u16,
    /// Worker threads of the tokio runtime.
    pub threads: usize,
    /// Accept permessage-deflate (RFC 7692) with the library's default parameters: window 15,
    /// context takeover both ways, zlib level 1, every message compressed.
    pub compression: bool,
}

/// Parses `PORT [THREADS] [--compression]` (THREADS defaults to 2), exiting with usage on
/// anything else, and with a clear message when `--compression` is asked of a server whose
/// library has no permessage-deflate (`supports_compression` false).
pub fn args(name: &str, supports_compression: bool) -> Args {
    let mut argv: Vec<String> = std::env::args().skip(1).collect();
    let compression = argv.iter().any(|arg| arg == "--compression");
    argv.retain(|arg| arg != "--compression");
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
        Some((port, threads)) if threads > 0 => Args {
            port,
            threads,
            compression,
        },
        _ => {
            eprintln!(
                "usage: {name} PORT [THREADS] [--compression]   \
                 (PORT 0 picks a free port; THREADS >= 1)"
            );
            std::process::exit(2);
        }
    }
}

/// Runs `serve` on a tokio multi-threaded runtime with `args.threads` workers, after binding
/// the listener and printing the startup line (`NAME listening on ADDR (...)`) on stdout.
pub fn run<F, Fut>(name: &str, args: Args, serve: F)
where
    F: FnOnce(TcpListener) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.threads)
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(async move {
        let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], args.port)))
            .await
            .expect("bind");
        let address = listener.local_addr().expect("local address");
        println!(
            "{name} listening on {address} (tokio multi_thread, {} worker threads, \
             max message {} MiB, {}, {ALLOCATOR_NAME})",
            args.threads,
            MAX_MESSAGE >> 20,
            if args.compression {
                "permessage-deflate: window 15, context takeover, level 1, every message"
            } else {
                "no compression"
            }
        );
        serve(listener).await;
    });
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
