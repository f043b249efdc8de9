//! `sockway bench URL`: a WebSocket echo load generator on sockway's own client.
//!
//! Every connection sends a message, waits for its echo and records the round trip, then sends
//! the next (`--in-flight` keeps more outstanding): the de facto standard method of WebSocket
//! echo benchmarks. Connections are opened first, then a warm-up runs uncounted, then the
//! measured window; the report gives messages/s, MB/s, round-trip percentiles and errors, and
//! with `--server-pid` the server's CPU time per million messages (from `/proc`). `--idle N`
//! instead opens N quiet connections and reports the server's memory per connection.
//! `--local-addresses` spreads the connections over several source addresses, for more
//! connections to one server than one address has ephemeral ports.

mod histogram;
mod idle;
mod load;
mod payload;
mod procfs;
mod report;

use std::io::{IsTerminal, Write};
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sockway::client::{ClientBuilder, ClientStream};
use sockway::{MessageKind, WebSocket};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use histogram::Histogram;
use load::{Outcome, Plan, Shared, MEASURE, STOP, WARMUP};
use payload::PayloadStyle;
use procfs::{CpuTimes, Process};
use report::{LoadResults, ProcessCost};

/// Flags of `sockway bench`.
#[derive(Debug, Clone, clap::Args)]
pub struct BenchArgs {
    /// The WebSocket URL of an echo server (`ws://` or `wss://`).
    url: String,
    /// Connections, each a task sending and waiting for echoes.
    #[arg(long, short = 'c', value_name = "N", default_value_t = 10)]
    connections: usize,
    /// Payload bytes per message.
    #[arg(long, value_name = "BYTES", default_value_t = 20)]
    payload: usize,
    /// Seconds measured (fractions allowed).
    #[arg(long, value_name = "SECS", default_value = "10", value_parser = parse_secs)]
    duration: Duration,
    /// Seconds run before measuring, whose results are discarded.
    #[arg(long, value_name = "SECS", default_value = "2", value_parser = parse_secs)]
    warmup: Duration,
    /// Offer this many messages per second in all, spread evenly over the connections,
    /// instead of as many as the server answers: compares servers by the CPU time they spend
    /// on the same load (with `--server-pid`). A server slower than the rate gets what it
    /// answers: a connection more than 100 ms behind its schedule starts a new one.
    #[arg(long, value_name = "MSGS", value_parser = parse_rate)]
    rate: Option<f64>,
    /// Messages outstanding per connection (1: send, wait for the echo, send again).
    #[arg(long, value_name = "K", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=4096))]
    in_flight: u32,
    /// Send binary messages (the default).
    #[arg(long, conflicts_with = "text")]
    binary: bool,
    /// Send text messages.
    #[arg(long)]
    text: bool,
    /// Offer permessage-deflate (RFC 7692).
    #[arg(long)]
    compression: bool,
    /// With --compression: the generator's zlib level, 0 (stored) to 9.
    #[arg(long, value_name = "LEVEL", default_value_t = 1, value_parser = clap::value_parser!(u8).range(0..=9))]
    compression_level: u8,
    /// How the payload looks: `alphabet` (one repeated payload) or `json` (distinct
    /// JSON-like records in turn, compressing like real traffic; for `--compression` runs).
    #[arg(long, value_enum, value_name = "STYLE", default_value_t = PayloadStyle::Alphabet)]
    payload_style: PayloadStyle,
    /// Accept any server certificate (`wss://` with a throwaway certificate).
    #[arg(long)]
    insecure: bool,
    /// Trust the CA certificates of this PEM file too.
    #[arg(long, value_name = "PEM")]
    ca_file: Option<PathBuf>,
    /// Connect over HTTP/2 (RFC 8441 extended CONNECT).
    #[arg(long)]
    http2: bool,
    /// Worker threads of the generator's runtime; default: the number of CPUs.
    #[arg(long, value_name = "T")]
    threads: Option<usize>,
    /// Write the results as JSON to this file.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// The echo server's PID (Linux): report its CPU time per million messages and its RSS.
    #[arg(long, value_name = "PID")]
    server_pid: Option<u32>,
    /// Stop after this many measured messages (the duration still bounds the run), for
    /// fixed-work runs under a profiler.
    #[arg(long, value_name = "N")]
    count: Option<u64>,
    /// Open N idle connections instead of sending load, hold them until the server's RSS
    /// is stable, and report the server's memory per connection (needs `--server-pid`).
    #[arg(long, value_name = "N")]
    idle: Option<usize>,
    /// With `--idle`: leave the connections fresh, without the one echo each does first.
    #[arg(long, requires = "idle")]
    idle_fresh: bool,
    /// Comma-separated source addresses (`127.0.0.1,127.0.0.2`): connections are spread over
    /// them round-robin. One source address has only as many connections to a server as
    /// ephemeral ports (about 28,000 on Linux), so 50,000 connections to one loopback server
    /// need two or more (any 127.x.y.z works on Linux). Default: the OS picks.
    #[arg(long, value_name = "LIST", value_delimiter = ',')]
    local_addresses: Vec<IpAddr>,
    /// Connections being opened at the same time.
    #[arg(long, value_name = "N", default_value_t = 64)]
    connect_concurrency: usize,
    /// A name for the server in the report and the JSON.
    #[arg(long, value_name = "NAME")]
    label: Option<String>,
}

/// Parses a positive message rate (fractions allowed).
fn parse_rate(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(rate) if rate.is_finite() && rate > 0.0 => Ok(rate),
        _ => Err(format!(
            "{text:?} is not a positive number of messages per second"
        )),
    }
}

/// Parses a non-negative number of seconds, fractions allowed (`0.5`).
fn parse_secs(text: &str) -> Result<Duration, String> {
    let secs: f64 = text
        .trim()
        .parse()
        .map_err(|_| format!("{text:?} is not a number of seconds"))?;
    Duration::try_from_secs_f64(secs).map_err(|_| format!("{text:?} is not a valid duration"))
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Runs the benchmark on a runtime of its own (`--threads` workers) and prints the results.
pub async fn run(args: BenchArgs) -> Result<(), Box<dyn std::error::Error>> {
    let builders = client_builders(&args).map_err(|e| e as Box<dyn std::error::Error>)?;
    let threads = args.threads.unwrap_or_else(|| {
        std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get)
    });
    if threads == 0 {
        return Err("--threads must be at least 1".into());
    }
    // The generator gets a runtime of its own so that its thread count is exactly what was
    // asked; this runtime (the command's) only waits for it.
    let outcome = tokio::task::spawn_blocking(move || -> Result<(), BoxError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .enable_all()
            .build()?;
        runtime.block_on(async move {
            match args.idle {
                Some(count) => idle::run(&args, &builders, count).await,
                None => load_run(&args, &builders, threads).await,
            }
        })
    })
    .await?;
    outcome.map_err(|error| error as Box<dyn std::error::Error>)
}

/// The client settings for every connection, or why the flags cannot be served.
fn client_builder(args: &BenchArgs) -> Result<ClientBuilder, BoxError> {
    if args.connections == 0 && args.idle.is_none() {
        return Err("--connections must be at least 1".into());
    }
    let size = args.payload.saturating_add(16);
    let mut builder = ClientBuilder::new(args.url.clone())
        .connect_timeout(Duration::from_secs(10))
        .max_message_size(size.max(16 << 20))
        // Bigger reads for bigger messages, so the generator stays cheap at 16 KiB and up.
        .read_buffer_size(size.clamp(4096, 256 * 1024))
        .write_buffer_limit((size * 2).max(128 * 1024));
    if args.compression {
        builder = builder.compression(Some(sockway::DeflateConfig {
            compression_level: args.compression_level,
            ..Default::default()
        }));
    }
    // Every connection of an --http2 run shares one HTTP/2 connection (the builder's pool)
    // while the server's stream limit allows. Without it, HTTP/1.1 even for `wss://`, so that
    // what is measured never depends on what the server offers through ALPN.
    builder = builder.http_version(if args.http2 {
        sockway::client::HttpVersion::Http2Only
    } else {
        sockway::client::HttpVersion::Http1Only
    });
    if args.insecure {
        builder = builder.danger_accept_invalid_certificates();
    }
    if let Some(path) = &args.ca_file {
        builder = builder.ca_file(path.clone());
    }
    Ok(builder)
}

/// The client settings, one copy per `--local-addresses` source address (just the one
/// without the flag); connections take them in turn.
fn client_builders(args: &BenchArgs) -> Result<Vec<ClientBuilder>, BoxError> {
    let builder = client_builder(args)?;
    if args.local_addresses.is_empty() {
        return Ok(vec![builder]);
    }
    Ok(args
        .local_addresses
        .iter()
        .map(|ip| builder.clone().local_address(*ip))
        .collect())
}

/// Opens `count` connections, at most `concurrency` at a time, taking the `builders` in turn
/// (round-robin over the source addresses); returns the sockets and the connect errors (count
/// and first message).
async fn open_connections(
    builders: &[ClientBuilder],
    count: usize,
    concurrency: usize,
    progress: bool,
) -> (Vec<WebSocket<ClientStream>>, u64, Option<String>) {
    let limit = Arc::new(Semaphore::new(concurrency.max(1)));
    let mut connecting = JoinSet::new();
    for builder in builders.iter().cycle().take(count) {
        let connect = builder.connect();
        let limit = limit.clone();
        connecting.spawn(async move {
            let _permit = limit.acquire_owned().await;
            connect.await.map(|(socket, _info)| socket)
        });
    }
    let (mut sockets, mut errors, mut first) = (Vec::with_capacity(count), 0, None);
    let mut last_shown = Instant::now();
    while let Some(joined) = connecting.join_next().await {
        match joined {
            Ok(Ok(socket)) => sockets.push(socket),
            Ok(Err(error)) => {
                errors += 1;
                first.get_or_insert_with(|| error.to_string());
            }
            Err(error) => {
                errors += 1;
                first.get_or_insert_with(|| error.to_string());
            }
        }
        if progress && last_shown.elapsed() >= Duration::from_millis(250) {
            last_shown = Instant::now();
            print!("\r\x1b[Kconnecting: {}/{count}", sockets.len());
            let _ = std::io::stdout().flush();
        }
    }
    (sockets, errors, first)
}

/// CPU time of a process, or none when it cannot be read.
fn cpu_of(process: Option<Process>) -> Option<CpuTimes> {
    process.and_then(|p| p.cpu_times().ok())
}

/// The load run: connect, warm up, measure, stop, report.
async fn load_run(
    args: &BenchArgs,
    builders: &[ClientBuilder],
    threads: usize,
) -> Result<(), BoxError> {
    let progress = std::io::stdout().is_terminal();
    let server = args.server_pid.map(Process::Pid);
    if let Some(process) = server {
        process
            .cpu_time()
            .map_err(|e| format!("cannot read the CPU time of --server-pid: {e}"))?;
    }
    let kind = if args.text {
        MessageKind::Text
    } else {
        MessageKind::Binary
    };
    let mut plan = Plan::new(
        args.payload,
        args.payload_style,
        kind,
        args.in_flight as usize,
    );
    if let Some(rate) = args.rate {
        plan = plan.paced(rate, args.connections);
    }
    let plan = Arc::new(plan);
    let shared = Arc::new(Shared {
        count_limit: args.count.unwrap_or(0),
        ..Shared::default()
    });

    let connect_started = Instant::now();
    let (sockets, connect_errors, mut first_error) = open_connections(
        builders,
        args.connections,
        args.connect_concurrency,
        progress,
    )
    .await;
    let connect_time = connect_started.elapsed();
    let connected = sockets.len();
    let compressed = sockets.iter().filter(|s| s.compression().is_some()).count();
    if connected == 0 {
        return Err(format!(
            "no connection to {} could be opened: {}",
            args.url,
            first_error.unwrap_or_default()
        )
        .into());
    }

    let mut tasks = JoinSet::new();
    for (index, socket) in sockets.into_iter().enumerate() {
        let offset = index as f64 / connected as f64;
        tasks.spawn(load::drive(socket, plan.clone(), shared.clone(), offset));
    }
    let ticker = progress.then(|| tokio::spawn(show_progress(shared.clone(), args.clone())));

    tokio::time::sleep(args.warmup).await;
    let server_before = cpu_of(server);
    let own_before = cpu_of(Some(Process::Current));
    let window_started = Instant::now();
    shared.phase.store(MEASURE, Ordering::Relaxed);
    let all_failed = async {
        while shared.failed.load(Ordering::Relaxed) < connected as u64 {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    tokio::select! {
        () = tokio::time::sleep(args.duration) => {}
        () = shared.limit_reached.notified() => {}
        () = all_failed => {}
    }
    shared.phase.store(STOP, Ordering::Relaxed);
    let window = window_started.elapsed();
    let server_after = cpu_of(server);
    let own_after = cpu_of(Some(Process::Current));
    let server_rss = server.and_then(|p| p.rss().ok());
    if let Some(ticker) = ticker {
        ticker.abort();
        print!("\r\x1b[K");
        let _ = std::io::stdout().flush();
    }

    // Every connection stops once its outstanding echoes are back; a server that stopped
    // answering gets a few seconds, then those connections count as failed.
    let mut latency = Histogram::new();
    let (mut bytes, mut mismatches, mut stuck) = (0, 0, 0u64);
    let finish = async {
        while let Some(joined) = tasks.join_next().await {
            if let Ok(outcome) = joined {
                let Outcome {
                    latency: l,
                    bytes: b,
                    mismatches: m,
                    error,
                } = outcome;
                latency.merge(&l);
                bytes += b;
                mismatches += m;
                if let Some(error) = error {
                    first_error.get_or_insert(error);
                }
            }
        }
    };
    if tokio::time::timeout(Duration::from_secs(5), finish)
        .await
        .is_err()
    {
        stuck = tasks.len() as u64;
        first_error.get_or_insert_with(|| "connections stopped answering".into());
        tasks.abort_all();
    }

    let results = LoadResults {
        label: args.label.clone(),
        url: args.url.clone(),
        connections: args.connections,
        connected,
        compressed,
        payload: args.payload,
        kind: if args.text { "text" } else { "binary" },
        payload_style: match args.payload_style {
            PayloadStyle::Alphabet => "alphabet",
            PayloadStyle::Json => "json",
        },
        in_flight: plan.in_flight,
        offered_rate: args.rate,
        threads,
        warmup: args.warmup,
        window,
        connect_time,
        messages: latency.count(),
        bytes,
        total_echoes: shared.completed.load(Ordering::Relaxed),
        latency,
        connect_errors,
        connection_errors: shared.failed.load(Ordering::Relaxed) + stuck,
        mismatches,
        first_error,
        server: match (args.server_pid, server_before, server_after) {
            (Some(pid), Some(before), Some(after)) => Some(ProcessCost {
                pid,
                cpu: after.since(before),
                rss: server_rss.unwrap_or(0),
            }),
            _ => None,
        },
        generator_cpu: own_before.zip(own_after).map(|(b, a)| a.since(b).total()),
    };
    print!("{}", results.text());
    if let Some(path) = &args.json {
        std::fs::write(path, results.json() + "\n")
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }
    if results.messages == 0 {
        return Err("no echo came back in the measured window".into());
    }
    Ok(())
}

/// Rewrites one status line per second: phase, elapsed time, current rate, failures.
async fn show_progress(shared: Arc<Shared>, args: BenchArgs) {
    let started = Instant::now();
    let mut last = (Instant::now(), 0u64);
    let mut interval = tokio::time::interval(Duration::from_secs(1));
    interval.tick().await;
    loop {
        interval.tick().await;
        let now = Instant::now();
        let done = shared.completed.load(Ordering::Relaxed);
        let rate = (done - last.1) as f64 / now.duration_since(last.0).as_secs_f64();
        last = (now, done);
        let phase = match shared.phase.load(Ordering::Relaxed) {
            WARMUP => "warming up",
            MEASURE => "measuring",
            _ => "stopping",
        };
        let total = (args.warmup + args.duration).as_secs_f64();
        print!(
            "\r\x1b[K{phase}: {:.0}/{total:.0} s, {rate:.0} messages/s, {} failed connections",
            started.elapsed().as_secs_f64(),
            shared.failed.load(Ordering::Relaxed)
        );
        let _ = std::io::stdout().flush();
    }
}
