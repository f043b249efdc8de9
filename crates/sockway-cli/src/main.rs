//! The `sockway` command: `echo` runs the sample echo server, `hub` the sample chat hub.

mod bench;
mod connect;
mod echo;
mod gateway;
mod hub;

use clap::{Parser, Subcommand};

/// sockway: a WebSocket toolkit.
#[derive(Debug, Parser)]
#[command(name = "sockway", version, about)]
struct Cli {
    /// Threads that run the command's tasks (tokio workers): by default one per CPU (or
    /// TOKIO_WORKER_THREADS). 1 runs everything on one thread with no scheduler shared
    /// between threads (tokio's current_thread runtime), as one nginx worker process does.
    #[arg(long, global = true, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    worker_threads: Option<u16>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the sample echo server: a web page at `/` and a WebSocket echo endpoint at `/ws`.
    Echo(echo::EchoArgs),
    /// Connect to a WebSocket server: stdin lines become messages, messages print to stdout.
    Connect(connect::ConnectArgs),
    /// Benchmark a WebSocket echo server: messages/s, MB/s, round-trip percentiles.
    Bench(bench::BenchArgs),
    /// Run the WebSocket-aware application gateway (`--check` validates the configuration).
    Gateway(gateway::GatewayArgs),
    /// Run the sample SignalR chat hub: a chat page at `/` and the hub at `/chatHub`.
    Hub(hub::HubArgs),
}

fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let cli = Cli::parse();
    let runtime = match runtime(cli.worker_threads) {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("sockway: cannot start the runtime: {error}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Echo(args) => echo::run(args).await,
            Command::Connect(args) => connect::run(args).await,
            Command::Bench(args) => bench::run(args).await,
            Command::Gateway(args) => gateway::run(args).await,
            Command::Hub(args) => hub::run(args).await,
        }
    });
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("sockway: {error}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// The runtime for `--worker-threads`: tokio's default multi-threaded one, one with N workers,
/// or with 1 a current-thread runtime (I/O and timers on the main thread, blocking work on
/// tokio's blocking pool as always).
fn runtime(worker_threads: Option<u16>) -> std::io::Result<tokio::runtime::Runtime> {
    match worker_threads {
        None => tokio::runtime::Runtime::new(),
        Some(1) => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build(),
        Some(threads) => tokio::runtime::Builder::new_multi_thread()
            .worker_threads(usize::from(threads))
            .enable_all()
            .build(),
    }
}
