//! `sockway bench --idle N`: the memory a server spends on connections that do nothing.
//!
//! Reads the server's RSS, opens N connections, has each exchange one message (so that the
//! buffers a first read allocates are counted, as on any connection that was ever used; turn
//! that off with `--idle-fresh`), then holds them, sampling the RSS until it stops changing,
//! and reports (RSS after - RSS before) / N.

use std::time::{Duration, Instant};

use sockway::client::{ClientBuilder, ClientStream};
use sockway::WebSocket;
use tokio::task::JoinSet;

use super::procfs::{self, Process};
use super::report::IdleResults;
use super::{open_connections, BenchArgs, BoxError};

/// How often the RSS is sampled while it settles.
const SAMPLE_EVERY: Duration = Duration::from_millis(500);
/// Samples in a row that must agree for the RSS to count as stable.
const STABLE_SAMPLES: usize = 4;

/// Opens and holds `count` idle connections and reports the server's memory per connection.
pub async fn run(
    args: &BenchArgs,
    builders: &[ClientBuilder],
    count: usize,
) -> Result<(), BoxError> {
    if let Some(limit) = procfs::open_files_limit() {
        if limit < count as u64 + 64 {
            return Err(format!(
                "{count} connections need more open files than this process may have \
                 ({limit}): raise the limit first, e.g. `ulimit -n {}`",
                count + 1024
            )
            .into());
        }
    }
    let server = args.server_pid.map(Process::Pid);
    let rss_before = match server {
        Some(process) => Some(
            process
                .rss()
                .map_err(|e| format!("cannot read the RSS of --server-pid: {e}"))?,
        ),
        None => None,
    };

    let (sockets, _errors, mut first_error) =
        open_connections(builders, count, args.connect_concurrency, false).await;
    let sockets = if args.idle_fresh {
        sockets
    } else {
        echo_once(sockets, args.payload, &mut first_error).await
    };
    let connected = sockets.len();

    // Wait for the server's RSS to settle: STABLE_SAMPLES samples in a row within 0.5 % (or
    // 64 KiB) of each other, for at most the run's duration (at least 5 s).
    let settle_started = Instant::now();
    let deadline = args.duration.max(Duration::from_secs(5));
    let mut samples: Vec<u64> = Vec::new();
    let rss_after = match server {
        Some(process) => loop {
            tokio::time::sleep(SAMPLE_EVERY).await;
            if let Ok(rss) = process.rss() {
                samples.push(rss);
            }
            let recent = &samples[samples.len().saturating_sub(STABLE_SAMPLES)..];
            let stable = recent.len() == STABLE_SAMPLES && {
                let (low, high) = (
                    recent.iter().copied().min().unwrap_or(0),
                    recent.iter().copied().max().unwrap_or(0),
                );
                high - low <= (high / 200).max(64 * 1024)
            };
            if stable || settle_started.elapsed() >= deadline {
                break samples.last().copied();
            }
        },
        None => {
            tokio::time::sleep(deadline).await;
            None
        }
    };

    let results = IdleResults {
        label: args.label.clone(),
        url: args.url.clone(),
        connections: count,
        connected,
        first_error,
        pid: args.server_pid,
        rss_before,
        rss_after,
        settle: settle_started.elapsed(),
    };
    print!("{}", results.text());
    if let Some(path) = &args.json {
        std::fs::write(path, results.json() + "\n")
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }
    // Dropping the sockets closes them (close 1001, then the transport).
    drop(sockets);
    if connected == 0 {
        return Err("no connection could be opened".into());
    }
    Ok(())
}

/// Has every socket send one binary message of `size` bytes and wait for its echo; keeps the
/// sockets that did.
async fn echo_once(
    sockets: Vec<WebSocket<ClientStream>>,
    size: usize,
    first_error: &mut Option<String>,
) -> Vec<WebSocket<ClientStream>> {
    let payload: std::sync::Arc<[u8]> = vec![b'i'; size].into();
    let mut echoing = JoinSet::new();
    for mut socket in sockets {
        let payload = payload.clone();
        echoing.spawn(async move {
            socket.send_binary(&payload).await?;
            match socket.recv().await? {
                Some(_) => Ok(socket),
                None => Err(sockway::Error::AbnormalClosure),
            }
        });
    }
    let mut kept = Vec::new();
    while let Some(joined) = echoing.join_next().await {
        match joined {
            Ok(Ok(socket)) => kept.push(socket),
            Ok(Err(error)) => {
                first_error.get_or_insert_with(|| format!("echo before idling: {error}"));
            }
            Err(error) => {
                first_error.get_or_insert_with(|| error.to_string());
            }
        }
    }
    kept
}
