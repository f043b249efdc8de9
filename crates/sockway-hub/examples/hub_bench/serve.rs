//! `serve ADDR [REDIS_URL]`: the sample chat hub at `/chatHub` on sockway's runner with two
//! worker threads (as the WebSocket servers of `benches/idle_memory.sh` run), until standard
//! input closes. With `REDIS_URL` it is one server of a fleet (`ScaleOutLifetimeManager` on
//! `RedisBackplane`, as `sockway hub --redis` runs it); at the end it prints the backplane's
//! counters and the most messages that waited in its outage buffer at once (sampled every
//! 10 ms), which `benches/hub_fleet_fanout.sh` reads.
//!
//! Besides the chat hub's methods it has `Join(group)`, which adds the caller to a group
//! without announcing it to the group (the chat hub's `AddToGroup` tells every member, which
//! for N clients joining one group would be N²/2 messages before the measurement starts).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use sockway::server::{Server, ServerOptions};
use sockway_hub::backplane::{
    RedisBackplane, RedisOptions, ScaleOutLifetimeManager, ScaleOutOptions,
};
use sockway_hub::sample::chat_hub_builder;
use sockway_hub::{HttpOptions, HubContext, HubOptions, HubService};
use tokio::io::AsyncReadExt as _;

use crate::BoxError;

/// Serves until standard input reaches its end (the script closes it, or dies).
pub fn run(addr: SocketAddr, redis: Option<&str>) -> Result<(), BoxError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let mut builder = chat_hub_builder(HubOptions::default()).method(
            "Join",
            |ctx: HubContext, (group,): (String,)| async move {
                ctx.groups().add(ctx.connection_id(), group).await
            },
        );
        let manager = match redis {
            Some(url) => {
                let backplane = RedisBackplane::start(RedisOptions::new(url))?;
                let manager =
                    ScaleOutLifetimeManager::start(Arc::new(backplane), ScaleOutOptions::default())
                        .await?;
                builder = builder.lifetime_manager(manager.clone());
                Some(manager)
            }
            None => None,
        };
        let peak = Arc::new(AtomicU64::new(0));
        if let Some(manager) = manager.clone() {
            let peak = peak.clone();
            tokio::spawn(async move {
                loop {
                    peak.fetch_max(manager.stats().buffered, Ordering::Relaxed);
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            });
        }
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let server = Server::new(
            ServerOptions::default()
                .handle_signals(false)
                .drain_timeout(Duration::from_secs(1)),
        );
        let stop = server.shutdown_handle();
        let hub =
            HubService::new("/chatHub", builder.build(), HttpOptions::default()).close_on(&stop);
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
        if let Some(manager) = manager {
            let stats = manager.stats();
            println!(
                "backplane published={} received={} dropped={} reconnects={} peak_buffered={}",
                stats.published,
                stats.received,
                stats.dropped,
                stats.reconnects,
                peak.load(Ordering::Relaxed)
            );
        }
        Ok(())
    })
}
