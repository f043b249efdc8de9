//! `sockway echo --event-loop`: the echo on `sockway::event_loop` instead of the async
//! runner. Every WebSocket request is echoed whole-message by whole-message, whatever its
//! path, compressed when `--compression` allows it, over TLS with the `--tls-*` flags; there
//! is no test page or HTTP/2 (the event-loop server has neither).
//! Ctrl-C or SIGTERM closes open sockets with 1001 and waits for the drain.

use sockway::event_loop::{Conn, EventLoopOptions, EventLoopServer, Handler, OpenRequest};
use sockway::server::StopSignals;
use sockway::{KeepAlive, Message, WebSocketConfig};

use super::EchoArgs;

/// Sends every message back.
#[derive(Clone)]
struct Echo;

impl Handler for Echo {
    type Session = ();

    fn open(&mut self, _conn: &mut Conn<'_>, _request: &OpenRequest<'_>) {}

    fn message(&mut self, conn: &mut Conn<'_>, _session: &mut (), message: Message) {
        let _ = conn.send(&message);
    }
}

/// The event-loop options that match `args`.
fn options(args: &EchoArgs) -> EventLoopOptions {
    let keep_alive = (!args.keep_alive_interval.is_zero()).then_some(KeepAlive {
        interval: args.keep_alive_interval,
        timeout: args.keep_alive_timeout,
    });
    let websocket = WebSocketConfig::default()
        .max_message_size(args.max_message_size)
        .keep_alive(keep_alive);
    let mut options = EventLoopOptions::default()
        .websocket(websocket)
        .max_connections(args.max_connections)
        .handshake_timeout(args.handshake_timeout)
        .max_header_bytes(args.max_header_bytes)
        .drain_timeout(args.drain_timeout)
        .compression(super::compression(args));
    if !args.allowed_origins.is_empty() {
        options = options.allowed_origins(args.allowed_origins.iter().cloned());
    }
    options
}

/// Serves until Ctrl-C or SIGTERM, then drains and returns.
pub async fn run(args: EchoArgs) -> Result<(), Box<dyn std::error::Error>> {
    // Before the listener opens, so a signal sent once it is announced is never lost.
    let mut stop_signals = StopSignals::install();
    let mut options = options(&args);
    let tls = super::identity(&args)?;
    if let Some(tls) = &tls {
        options = options.tls(tls.clone());
    }
    let scheme = if tls.is_some() { "wss" } else { "ws" };
    let threads = options.threads;
    let server = EventLoopServer::new(Echo, options).bind(args.listen)?;
    tracing::info!(
        websocket = %format!("{scheme}://{}/", server.local_addr()),
        threads,
        "echo server listening (event loop)"
    );
    if let Some(tls) = &tls {
        super::announce(tls, &args);
    }
    let stop = server.stop_handle();
    let mut workers = tokio::task::spawn_blocking(move || server.join());
    tokio::select! {
        ended = &mut workers => return Ok(ended??),
        () = stop_signals.recv() => {}
    }
    stop.stop();
    workers.await??;
    tracing::info!("echo server stopped");
    Ok(())
}
