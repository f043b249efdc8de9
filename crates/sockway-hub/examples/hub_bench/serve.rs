//! `serve ADDR`: the sample chat hub at `/chatHub` on sockway's runner with two worker
//! threads (as the WebSocket servers of `benches/idle_memory.sh` run), until standard input
//! closes.

use std::net::SocketAddr;
use std::time::Duration;

use sockway::server::{Server, ServerOptions};
use sockway_hub::sample::chat_hub;
use sockway_hub::{HttpOptions, HubService};
use tokio::io::AsyncReadExt as _;

use crate::BoxError;

/// Serves until standard input reaches its end (the script closes it, or dies).
pub fn run(addr: SocketAddr) -> Result<(), BoxError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let server = Server::new(
            ServerOptions::default()
                .handle_signals(false)
                .drain_timeout(Duration::from_secs(1)),
        );
        let stop = server.shutdown_handle();
        let hub = HubService::new("/chatHub", chat_hub(), HttpOptions::default()).close_on(&stop);
        println!(
            "listening {} pid {}",
            listener.local_addr()?,
            std::process::id()
        );
        let served = tokio::spawn(server.serve(listener, hub));
        let mut sink = [0u8; 64];
        let mut stdin = tokio::io::stdin();
        while stdin.read(&mut sink).await.unwrap_or(0) > 0 {}
        stop.shutdown();
        let _ = served.await;
        Ok(())
    })
}
