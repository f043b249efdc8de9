//! Drives the Autobahn TestSuite's fuzzing server (or kosoku's re-implementation) in the
//! client role: `autobahn_client ws://127.0.0.1:9001 [AGENT] [PARALLEL]`.
//!
//! 1. `GET /getCaseCount`: one text message with the number of cases.
//! 2. For each case N, `/runCase?case=N&agent=AGENT`: echo every message back, whole, until
//!    the server closes (the fuzzing server judges how the client handles what it sends).
//!    Up to PARALLEL cases (default 1) run at once, each on a connection of its own, as the
//!    fuzzing client runs cases side by side in the server role.
//! 3. `/updateReports?agent=AGENT`: the server writes its reports.
//!
//! Messages up to 64 MiB are accepted (the largest cases send 16 MiB). Exits non-zero only when
//! the fuzzing server itself cannot be reached; a failing case is the report's business.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use sockway::client::{ClientBuilder, ClientError};
use sockway::{CloseCode, Message};

const MAX_MESSAGE: usize = 64 << 20;

fn builder(url: String) -> ClientBuilder {
    ClientBuilder::new(url)
        .max_message_size(MAX_MESSAGE)
        .connect_timeout(Duration::from_secs(30))
        .read_buffer_size(64 * 1024)
        // Offering client_no_context_takeover tells the server it may ask for it, which
        // sections 13.2, 13.5 and 13.6 require; the client then resets per message.
        .compression(Some(sockway::DeflateConfig {
            client_no_context_takeover: true,
            ..Default::default()
        }))
}

/// Reads the case count from `/getCaseCount`.
async fn case_count(base: &str) -> Result<u32, ClientError> {
    let (mut socket, _) = builder(format!("{base}/getCaseCount")).connect().await?;
    let mut count = None;
    while let Some(message) = socket.recv().await? {
        if let Message::Text(text) = message {
            count = text.trim().parse().ok();
        }
    }
    count.ok_or_else(|| ClientError::InvalidResponse("no case count received".into()))
}

/// Runs one case: echo until the server closes. Errors are expected in many cases (the
/// server sends invalid frames on purpose) and only logged.
async fn run_case(base: &str, case: u32, agent: &str) -> Result<(), ClientError> {
    let url = format!("{base}/runCase?case={case}&agent={agent}");
    let (mut socket, _) = builder(url).connect().await?;
    loop {
        match socket.recv().await {
            Ok(Some(message)) => {
                if let Err(error) = socket.send(message).await {
                    tracing::debug!(case, %error, "echo failed");
                    break;
                }
            }
            Ok(None) => break,
            Err(error) => {
                tracing::debug!(case, %error, "case ended with an error");
                break;
            }
        }
    }
    Ok(())
}

async fn update_reports(base: &str, agent: &str) -> Result<(), ClientError> {
    let (mut socket, _) = builder(format!("{base}/updateReports?agent={agent}"))
        .connect()
        .await?;
    // The server closes once the reports are written.
    let _ = tokio::time::timeout(Duration::from_secs(60), async {
        while let Ok(Some(_)) = socket.recv().await {}
    })
    .await;
    let _ = socket.close(CloseCode::NORMAL, "").await;
    Ok(())
}

async fn run(base: &str, agent: &str, parallel: usize) -> Result<(), ClientError> {
    let started = Instant::now();
    let count = case_count(base).await?;
    eprintln!("autobahn_client: {count} cases, up to {parallel} at once");
    let mut running = tokio::task::JoinSet::new();
    for case in 1..=count {
        if running.len() >= parallel {
            running.join_next().await;
        }
        let (base, agent) = (base.to_owned(), agent.to_owned());
        running.spawn(async move {
            if let Err(error) = run_case(&base, case, &agent).await {
                eprintln!("autobahn_client: case {case}: could not connect: {error}");
            }
        });
    }
    while running.join_next().await.is_some() {}
    update_reports(base, agent).await?;
    eprintln!(
        "autobahn_client: ran {count} cases in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let mut args = std::env::args().skip(1);
    let Some(base) = args.next() else {
        eprintln!("usage: autobahn_client ws://HOST:PORT [AGENT] [PARALLEL]");
        return ExitCode::from(2);
    };
    let base = base.trim_end_matches('/').to_owned();
    let agent = args.next().unwrap_or_else(|| "sockway".into());
    let parallel = match args.next().map(|n| n.parse::<usize>()) {
        None => 1,
        Some(Ok(n)) if n > 0 => n,
        Some(_) => {
            eprintln!("autobahn_client: PARALLEL must be a whole number above 0");
            return ExitCode::from(2);
        }
    };
    // Cases side by side echo on up to two threads: enough to keep the fuzzing server busy.
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(parallel.min(2))
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("autobahn_client: cannot start the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(&base, &agent, parallel)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("autobahn_client: {error}");
            ExitCode::FAILURE
        }
    }
}
