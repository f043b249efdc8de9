//! sockway's event-loop echo server for the comparison: [`EventLoopServer`] with THREADS
//! worker threads (its own threads, not a tokio runtime: that is the point of it), echoing
//! whole messages from the `lent_message` callback (the message lent from the worker's read
//! buffer and sent back from there, as uWebSockets' echo sends the view its handler gets).
//! Settings are the library defaults (keep-alive on) except the 64 MiB message limit and a
//! connection limit high enough for the idle-memory run. It has no permessage-deflate. With
//! `--tls DIR` it serves `wss://` with `DIR/cert.pem` and `DIR/key.pem` (`EventLoopOptions::tls`).
//! With `--per-core` each worker accepts on a listener of its own on the shared port
//! (`EventLoopServer::start_per_worker`), as uWebSockets' processes do, instead of worker 0
//! dealing connections to the least-loaded worker.

use std::net::SocketAddr;

use sockway::event_loop::{
    Conn, EventLoopOptions, EventLoopServer, Handler, LentMessage, OpenRequest, ServerTls,
};
use sockway::Message;
use sockway_bench_peers::{args, reuse_port_listeners, tls_pem, ALLOCATOR_NAME, MAX_MESSAGE};

/// Echoes every message back, from where it was read (as uWebSockets' echo sends the view
/// its handler was given).
#[derive(Clone)]
struct Echo;

impl Handler for Echo {
    type Session = ();

    fn open(&mut self, _conn: &mut Conn<'_>, _request: &OpenRequest<'_>) {}

    fn message(&mut self, conn: &mut Conn<'_>, _session: &mut (), message: Message) {
        let _ = conn.send(&message);
    }

    fn lent_message(&mut self, conn: &mut Conn<'_>, _session: &mut (), message: LentMessage<'_>) {
        let _ = conn.send_lent(&message);
    }
}

fn main() {
    let args = args("sockway-loop-echo", false);
    let defaults = EventLoopOptions::default();
    // SOCKWAY_BUSY_POLLS overrides `EventLoopOptions::busy_polls`, for experiments.
    let busy_polls = std::env::var("SOCKWAY_BUSY_POLLS")
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(defaults.busy_polls);
    let mut options = EventLoopOptions::default()
        .threads(args.threads)
        .busy_polls(busy_polls)
        .max_connections(1_000_000)
        .websocket(defaults.websocket.clone().max_message_size(MAX_MESSAGE));
    if let Some(dir) = &args.tls {
        let (cert, key) = tls_pem(dir);
        options = options.tls(ServerTls::from_pem(&cert, &key).expect("cert.pem and key.pem"));
    }
    let tls = if args.tls.is_some() { ", TLS" } else { "" };
    let server = EventLoopServer::new(Echo, options);
    if args.per_core {
        let layout = format!("event loop, {busy_polls} busy polls{tls}");
        let listeners = reuse_port_listeners("sockway-loop-echo", &args, &layout);
        let server = server.start_per_worker(listeners).expect("start");
        server.join().expect("event loop");
        return;
    }
    let server = server
        .bind(SocketAddr::from(([127, 0, 0, 1], args.port)))
        .expect("bind");
    println!(
        "sockway-loop-echo listening on {} (event loop, {} worker threads, {busy_polls} busy \
         polls, max message {} MiB, no compression{tls}, {ALLOCATOR_NAME})",
        server.local_addr(),
        args.threads,
        MAX_MESSAGE >> 20,
    );
    server.join().expect("event loop");
}
