//! RFC 6455 conformance suite (custom harness): the case tables in `cases/` run against
//!
//! - `server`: an in-process sockway echo server (`sockway::server::accept` on hyper, echoing
//!   frame by frame with `recv_fragment`, like `sockway echo`);
//! - `server-msg`, `server-buf`: the same server echoing with `recv` (whole messages) and with
//!   `receive` into a 100-byte buffer;
//! - `server-bin`: the `sockway echo` binary, when `SOCKWAY_BIN` names it;
//! - `client`, `client-buf`: a sockway client (`sockway::client::ClientBuilder`) driven by a
//!   hand-written test server, echoing with `recv` and with `receive` into a 100-byte buffer;
//! - `harness`: negative controls (`selftest.*`), broken peers the runner must catch.
//!
//! Cases run 8 at a time, each bounded by 5 s. The suite prints one line per case (id, role,
//! description, result, detail), counts per section and role, and the line
//! `conformance: N passed, M failed`; it writes `target/conformance/report.json` and exits
//! non-zero when a case failed. Arguments that do not start with `-` filter cases by id
//! substring (`cargo test -p sockway-tests --test conformance -- utf8.fail-fast`).

mod cases;
mod client_app;
mod script;
mod selftest;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use sockway::server::AcceptOptions;
use sockway::WebSocketConfig;
use sockway_tests::echo_server::{EchoMode, EchoServer};
use sockway_tests::frame::Sender;
use sockway_tests::http1;
use sockway_tests::peer::RawPeer;
use sockway_tests::process::{self, ChildGuard};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::time::Instant;

use cases::{Body, Case, Roles, LIMIT};
use client_app::{ClientApi, ClientApp};

/// The buffer size of the `receive`-based echo loops: small, so that messages arrive in many
/// pieces.
const BUFFER: usize = 100;
/// The clients' close timeout: how long they wait for the server's TCP close (short, so that
/// the case where the server never closes fits in a case's time).
const CLIENT_CLOSE_TIMEOUT: Duration = Duration::from_secs(1);
/// Cases run at the same time.
const CONCURRENCY: usize = 8;
/// The bound on one case.
const CASE_TIMEOUT: Duration = Duration::from_secs(5);
/// The deadline the steps of a case work to (inside [`CASE_TIMEOUT`], so that a slow peer is
/// reported by the step that waited for it).
const STEP_BUDGET: Duration = Duration::from_millis(4500);

/// An implementation under test.
#[derive(Debug, Clone)]
enum Target {
    /// A server at this address, labelled.
    Server(&'static str, SocketAddr),
    /// A sockway client, labelled, using this receive API.
    Client(&'static str, ClientApi),
}

impl Target {
    fn label(&self) -> &'static str {
        match self {
            Self::Server(label, _) | Self::Client(label, _) => label,
        }
    }
}

/// One row of the report.
#[derive(Debug, Serialize)]
struct Outcome {
    id: String,
    role: &'static str,
    section: &'static str,
    description: String,
    result: &'static str,
    detail: String,
    millis: u64,
}

/// Counts for one section in one role.
#[derive(Debug, Serialize)]
struct SectionCount {
    section: &'static str,
    role: &'static str,
    passed: usize,
    failed: usize,
}

/// The JSON report.
#[derive(Debug, Serialize)]
struct Report {
    passed: usize,
    failed: usize,
    millis: u64,
    sections: Vec<SectionCount>,
    cases: Vec<Outcome>,
}

fn main() -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("conformance: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let filters: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    runtime.block_on(run(filters))
}

async fn run(filters: Vec<String>) -> ExitCode {
    let started = Instant::now();
    let out_dir = process::target_dir().join("conformance");
    let _ = std::fs::create_dir_all(&out_dir);
    let mut outcomes = Vec::new();

    let options = AcceptOptions::default().max_message_size(LIMIT);
    let mut servers = Vec::new();
    let mut targets = Vec::new();
    for (label, mode) in [
        ("server", EchoMode::Frames),
        ("server-msg", EchoMode::Messages),
        ("server-buf", EchoMode::Buffer(BUFFER)),
    ] {
        match EchoServer::start_with(options.clone(), mode).await {
            Ok(server) => {
                targets.push(Target::Server(label, server.addr()));
                servers.push(server);
            }
            Err(e) => {
                eprintln!("conformance: cannot start the in-process echo server: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    targets.push(Target::Client("client", ClientApi::Messages));
    targets.push(Target::Client("client-buf", ClientApi::Buffer(BUFFER)));
    // Kept alive for the whole run; killed on drop.
    let mut _binary: Option<ChildGuard> = None;
    if let Some(bin) = std::env::var_os("SOCKWAY_BIN").filter(|b| !b.is_empty()) {
        let bin = PathBuf::from(bin);
        let log = out_dir.join("sockway-echo.log");
        match process::start_sockway_echo(&bin, LIMIT, &log).await {
            Ok((child, addr)) => {
                _binary = Some(child);
                targets.push(Target::Server("server-bin", addr));
            }
            Err(e) => outcomes.push(Outcome {
                id: "setup.binary".into(),
                role: "server-bin",
                section: "setup",
                description: format!("start {} echo", bin.display()),
                result: "FAIL",
                detail: e,
                millis: 0,
            }),
        }
    }

    let cases: Vec<Arc<Case>> = cases::all()
        .into_iter()
        .filter(|c| filters.is_empty() || filters.iter().any(|f| c.id.contains(f.as_str())))
        .map(Arc::new)
        .collect();
    let mut jobs = Vec::new();
    for target in &targets {
        for case in &cases {
            let applies = matches!(
                (case.roles, target),
                (Roles::Both, _)
                    | (Roles::Server, Target::Server(..))
                    | (Roles::Client, Target::Client(..))
            );
            if applies {
                jobs.push((case.clone(), target.clone()));
            }
        }
    }

    let limit = Arc::new(Semaphore::new(CONCURRENCY));
    let mut handles = Vec::with_capacity(jobs.len());
    if filters.is_empty() || filters.iter().any(|f| "selftest".contains(f.as_str())) {
        for control in selftest::controls() {
            let limit = limit.clone();
            handles.push(tokio::spawn(async move {
                let _permit = limit.acquire_owned().await.expect("semaphore stays open");
                let start = Instant::now();
                let result = tokio::time::timeout(CASE_TIMEOUT, selftest::run(&control)).await;
                outcome(
                    control.id.to_owned(),
                    "harness",
                    "selftest",
                    control.description.to_owned(),
                    result,
                    start,
                )
            }));
        }
    }
    for (case, target) in jobs {
        let limit = limit.clone();
        handles.push(tokio::spawn(async move {
            let _permit = limit.acquire_owned().await.expect("semaphore stays open");
            let start = Instant::now();
            let result = tokio::time::timeout(CASE_TIMEOUT, run_case(&case, &target)).await;
            outcome(
                case.id.clone(),
                target.label(),
                case.section,
                case.description.clone(),
                result,
                start,
            )
        }));
    }
    for handle in handles {
        match handle.await {
            Ok(outcome) => outcomes.push(outcome),
            Err(e) => outcomes.push(Outcome {
                id: "harness".into(),
                role: "-",
                section: "harness",
                description: "a case task".into(),
                result: "FAIL",
                detail: format!("task panicked: {e}"),
                millis: 0,
            }),
        }
    }
    drop(servers);

    print_table(&outcomes);
    let failed = outcomes.iter().filter(|o| o.result != "PASS").count();
    let passed = outcomes.len() - failed;
    let report = Report {
        passed,
        failed,
        millis: started.elapsed().as_millis() as u64,
        sections: section_counts(&outcomes),
        cases: outcomes,
    };
    let path = out_dir.join("report.json");
    match serde_json::to_vec_pretty(&report) {
        Ok(json) => {
            if let Err(e) = std::fs::write(&path, json) {
                eprintln!("conformance: cannot write {}: {e}", path.display());
            }
        }
        Err(e) => eprintln!("conformance: cannot encode the report: {e}"),
    }
    println!(
        "report: {} ({:.1} s)",
        path.display(),
        report.millis as f64 / 1000.0
    );
    println!("conformance: {passed} passed, {failed} failed");
    // A filter that matches nothing runs nothing and succeeds, as libtest does (so that
    // `cargo test --workspace some_unit_test` does not fail here).
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// The report row for a finished (or timed-out) case.
fn outcome(
    id: String,
    role: &'static str,
    section: &'static str,
    description: String,
    result: Result<Result<Vec<String>, String>, tokio::time::error::Elapsed>,
    start: Instant,
) -> Outcome {
    let (passed, detail) = match result {
        Ok(Ok(notes)) => (true, notes.join("; ")),
        Ok(Err(e)) => (false, e),
        Err(_) => (false, format!("case timed out after {CASE_TIMEOUT:?}")),
    };
    Outcome {
        id,
        role,
        section,
        description,
        result: if passed { "PASS" } else { "FAIL" },
        detail,
        millis: start.elapsed().as_millis() as u64,
    }
}

/// Runs one case against one target; `Ok` holds remarks for the detail column.
async fn run_case(case: &Case, target: &Target) -> Result<Vec<String>, String> {
    let deadline = Instant::now() + STEP_BUDGET;
    match (&case.body, target) {
        (Body::Handshake(check), Target::Server(_, addr)) => {
            cases::handshake::run(check, *addr, deadline).await
        }
        (Body::Script(steps), Target::Server(_, addr)) => {
            let early: Vec<u8> = case
                .with_handshake
                .iter()
                .flat_map(|f| f.encode(Sender::Client))
                .collect();
            let (stream, leftover) = http1::connect(*addr, "/ws", &early).await?;
            let mut peer = RawPeer::new(stream, Sender::Client, leftover);
            Ok(script::run(steps, &mut peer, deadline).await?.notes)
        }
        (Body::ClientHandshake(_), Target::Server(..)) => {
            Err("client handshake checks are client-only".into())
        }
        (body, Target::Client(_, api)) => {
            let listener = TcpListener::bind("127.0.0.1:0")
                .await
                .map_err(|e| format!("bind: {e}"))?;
            let addr = listener.local_addr().map_err(|e| e.to_string())?;
            let config = WebSocketConfig::default()
                .max_message_size(LIMIT)
                .close_timeout(CLIENT_CLOSE_TIMEOUT);
            let mut app = ClientApp::start(addr, config, *api);
            let (mut stream, _) = tokio::time::timeout_at(deadline, listener.accept())
                .await
                .map_err(|_| "the client did not connect".to_string())?
                .map_err(|e| format!("accept: {e}"))?;
            let steps = match body {
                Body::Script(steps) => steps,
                Body::ClientHandshake(response) => {
                    return cases::client_handshake::run(response, &mut app, stream, deadline).await
                }
                Body::Handshake(_) => return Err("handshake checks are server-only".into()),
            };
            let early: Vec<u8> = case
                .with_handshake
                .iter()
                .flat_map(|f| f.encode(Sender::Server))
                .collect();
            let (_, leftover) = http1::accept(&mut stream, &early).await?;
            let mut peer = RawPeer::new(stream, Sender::Server, leftover);
            let report = script::run(steps, &mut peer, deadline).await?;
            let want = report.app_end.clone().ok_or("script did not end")?;
            tokio::time::timeout_at(deadline, app.check(&want))
                .await
                .map_err(|_| "the client application did not finish".to_string())??;
            Ok(report.notes)
        }
    }
}

fn print_table(outcomes: &[Outcome]) {
    let id_width = outcomes
        .iter()
        .map(|o| o.id.len())
        .max()
        .unwrap_or(2)
        .max(2);
    let desc_width = outcomes
        .iter()
        .map(|o| o.description.chars().count())
        .max()
        .unwrap_or(11)
        .min(90);
    println!(
        "{:<id_width$}  {:<10}  {:<desc_width$}  {:<6}  detail",
        "id", "role", "description", "result"
    );
    for o in outcomes {
        println!(
            "{:<id_width$}  {:<10}  {:<desc_width$}  {:<6}  {}",
            o.id, o.role, o.description, o.result, o.detail
        );
    }
    println!();
    println!(
        "{:<15}  {:<10}  {:>6}  {:>6}",
        "section", "role", "passed", "failed"
    );
    for c in section_counts(outcomes) {
        println!(
            "{:<15}  {:<10}  {:>6}  {:>6}",
            c.section, c.role, c.passed, c.failed
        );
    }
}

/// Passed and failed counts per section and role, in the order sections first appear.
fn section_counts(outcomes: &[Outcome]) -> Vec<SectionCount> {
    let mut counts: Vec<SectionCount> = Vec::new();
    for o in outcomes {
        let i = match counts
            .iter()
            .position(|c| c.section == o.section && c.role == o.role)
        {
            Some(i) => i,
            None => {
                counts.push(SectionCount {
                    section: o.section,
                    role: o.role,
                    passed: 0,
                    failed: 0,
                });
                counts.len() - 1
            }
        };
        if o.result == "PASS" {
            counts[i].passed += 1;
        } else {
            counts[i].failed += 1;
        }
    }
    counts.sort_by_key(|c| {
        let first = outcomes.iter().position(|o| o.section == c.section);
        (first, c.role)
    });
    counts
}
