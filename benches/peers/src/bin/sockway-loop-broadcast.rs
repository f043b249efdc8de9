//! sockway's fan-out server for `broadcast_test`, the equivalent of `uws-broadcast`: the
//! event loop ([`EventLoopServer`], THREADS workers) with every connection subscribed to one
//! topic ("all") and every message it receives published there, to every client, itself
//! included. Limits as in uws-broadcast: 16 MiB messages, a 64 MiB write buffer limit (its
//! `maxBackpressure`), no compression.

use std::net::SocketAddr;

use sockway::event_loop::{Conn, EventLoopOptions, EventLoopServer, Handler, OpenRequest};
use sockway::Message;
use sockway_bench_peers::{args, refuse_tls, ALLOCATOR_NAME};

/// The one topic.
const TOPIC: &str = "all";

/// Subscribes every connection to [`TOPIC`] and publishes every message there.
#[derive(Clone)]
struct Broadcast;

impl Handler for Broadcast {
    type Session = ();

    fn open(&mut self, conn: &mut Conn<'_>, _request: &OpenRequest<'_>) {
        let _ = conn.subscribe(TOPIC);
    }

    fn message(&mut self, conn: &mut Conn<'_>, _session: &mut (), message: Message) {
        let _ = conn.publish(TOPIC, &message);
    }
}

fn main() {
    let args = args("sockway-loop-broadcast", false);
    refuse_tls("sockway-loop-broadcast", &args);
    let defaults = EventLoopOptions::default();
    let websocket = defaults
        .websocket
        .clone()
        .max_message_size(16 << 20)
        .write_buffer_limit(64 << 20);
    let options = EventLoopOptions::default()
        .threads(args.threads)
        .max_connections(1_000_000)
        .websocket(websocket);
    let server = EventLoopServer::new(Broadcast, options)
        .bind(SocketAddr::from(([127, 0, 0, 1], args.port)))
        .expect("bind");
    println!(
        "sockway-loop-broadcast listening on {} (event loop, {} worker threads, one topic, \
         no compression, {ALLOCATOR_NAME})",
        server.local_addr(),
        args.threads,
    );
    server.join().expect("event loop");
}
