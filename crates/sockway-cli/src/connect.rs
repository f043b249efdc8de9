//! `sockway connect URL`: an interactive WebSocket client, like wscat or websocat. Lines from
//! stdin become messages; received messages print to stdout, one per line; the exit status
//! says how the connection ended, so it works in scripts and pipes.

use std::io::Write as _;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use sockway::client::{ClientBuilder, ClientError, Closed, ClosedBy, ErrorStatus};
use sockway::{CloseCode, Message};
use tokio::sync::mpsc;

/// Exit status: normal close (1000/1001, or 1005 after our close) or stdin EOF.
const EXIT_OK: i32 = 0;
/// Exit status: could not connect (bad URL, name not found, refused, timeout, TLS).
const EXIT_CONNECT: i32 = 3;
/// Exit status: the server refused the WebSocket handshake or answered something else.
const EXIT_HANDSHAKE: i32 = 4;
/// Exit status: the server closed with a code other than 1000/1001.
const EXIT_CLOSED_WITH_ERROR: i32 = 5;
/// Exit status: protocol violation, abnormal closure (1006), reset or timeout.
const EXIT_ABNORMAL: i32 = 6;
/// How long to wait for the server's close frame after stdin EOF.
const CLOSE_WAIT: Duration = Duration::from_secs(10);
/// The longest `--linger` wait after stdin EOF.
const MAX_LINGER: Duration = Duration::from_secs(5);

/// Flags of `sockway connect`.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Input and output:
  Each stdin line is sent as one text message (binary with --binary), without its newline.
  Each received text message is printed as is on one line; binary messages are printed as
  lowercase hex on one line. Status lines go to stderr. At stdin EOF the client waits
  until the server has been quiet for --linger, sends close 1000, waits for the server's
  close, and exits.

Exit status:
  0  normal close (1000 or 1001), or stdin EOF and a completed close handshake
  2  invalid command line
  3  connect failure: bad URL, host not found, refused, connect timeout, TLS/certificate error
  4  handshake rejected: non-101 status or invalid handshake response
  5  the server closed with another code than 1000/1001
  6  abnormal closure (1006), protocol violation, reset or send/receive timeout")]
pub struct ConnectArgs {
    /// The `ws://` or `wss://` URL.
    url: String,
    /// Send stdin lines as binary messages instead of text.
    #[arg(long)]
    binary: bool,
    /// Extra request header `NAME:VALUE` (repeatable).
    #[arg(long = "header", short = 'H', value_name = "NAME:VALUE")]
    headers: Vec<String>,
    /// Subprotocol to offer, in order of preference (repeatable).
    #[arg(long = "subprotocol", short = 's', value_name = "PROTOCOL")]
    subprotocols: Vec<String>,
    /// The Origin header.
    #[arg(long)]
    origin: Option<String>,
    /// Accept any TLS certificate (DANGEROUS: testing only).
    #[arg(long, short = 'k')]
    insecure: bool,
    /// Trust the CA certificates in this PEM file too (wss://).
    #[arg(long, value_name = "PEM")]
    ca_file: Option<PathBuf>,
    /// Connect timeout in seconds (resolve, TCP, TLS and handshake).
    #[arg(long, value_name = "SECS", default_value_t = 60.0)]
    connect_timeout: f64,
    /// Largest message accepted, in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = 16 << 20)]
    max_message_size: usize,
    /// After stdin EOF, keep receiving until the server has been quiet this long (at most
    /// 5 s in all) before closing, so replies to the last lines are not cut off: some servers
    /// drop unsent replies when the close arrives. 0 closes at once.
    #[arg(long, value_name = "SECS", default_value_t = 0.25)]
    linger: f64,
    /// Print no status lines on stderr.
    #[arg(long, short = 'q')]
    quiet: bool,
    /// Offer permessage-deflate (RFC 7692); the connection stays uncompressed if the server
    /// declines.
    #[arg(long)]
    compression: bool,
}

fn builder(args: &ConnectArgs) -> Result<ClientBuilder, String> {
    if !(args.connect_timeout.is_finite() && args.connect_timeout > 0.0) {
        return Err("--connect-timeout must be a positive number of seconds".into());
    }
    let mut builder = ClientBuilder::new(args.url.clone())
        .connect_timeout(Duration::from_secs_f64(args.connect_timeout.min(86_400.0)))
        .max_message_size(args.max_message_size)
        .send_timeout(Some(Duration::from_secs(30)))
        .compression(args.compression.then(sockway::DeflateConfig::default));
    for header in &args.headers {
        let (name, value) = header
            .split_once(':')
            .ok_or_else(|| format!("--header {header:?} is not NAME:VALUE"))?;
        builder = builder.header(name, value);
    }
    for protocol in &args.subprotocols {
        builder = builder.subprotocol(protocol.clone());
    }
    if let Some(origin) = &args.origin {
        builder = builder.origin(origin.clone());
    }
    if let Some(file) = &args.ca_file {
        builder = builder.ca_file(file.clone());
    }
    if args.insecure {
        builder = builder.danger_accept_invalid_certificates();
    }
    Ok(builder)
}

fn connect_exit_code(error: &ClientError) -> i32 {
    match error.status() {
        ErrorStatus::Rejected | ErrorStatus::InvalidResponse => EXIT_HANDSHAKE,
        _ => EXIT_CONNECT,
    }
}

fn closed_exit_code(closed: &Closed) -> i32 {
    match (&closed.error, closed.by, closed.code) {
        (Some(_), _, _) | (None, ClosedBy::Abnormal, _) => EXIT_ABNORMAL,
        (None, _, CloseCode::NORMAL | CloseCode::GOING_AWAY) => EXIT_OK,
        // Our own close 1000 answered without a status.
        (None, ClosedBy::Local, CloseCode::NO_STATUS) => EXIT_OK,
        (None, _, _) => EXIT_CLOSED_WITH_ERROR,
    }
}

/// Waits until no message arrived for `quiet` (at most [`MAX_LINGER`] in all).
async fn linger_until_quiet(received: &AtomicU64, quiet: Duration) {
    if quiet.is_zero() {
        return;
    }
    let started = tokio::time::Instant::now();
    loop {
        let seen = received.load(Ordering::Relaxed);
        tokio::time::sleep(quiet).await;
        if received.load(Ordering::Relaxed) == seen || started.elapsed() >= MAX_LINGER {
            return;
        }
    }
}

/// Reads stdin lines on a plain thread (a blocking read must not hold the runtime open at
/// exit); `None` marks EOF.
fn spawn_stdin_reader() -> mpsc::Receiver<Option<String>> {
    let (tx, rx) = mpsc::channel(64);
    std::thread::spawn(move || {
        let stdin = std::io::stdin();
        let mut line = String::new();
        loop {
            line.clear();
            match stdin.read_line(&mut line) {
                Ok(0) | Err(_) => {
                    let _ = tx.blocking_send(None);
                    return;
                }
                Ok(_) => {
                    let text = line.trim_end_matches(['\n', '\r']).to_owned();
                    if tx.blocking_send(Some(text)).is_err() {
                        return;
                    }
                }
            }
        }
    });
    rx
}

fn print_message(out: &mut impl std::io::Write, message: &Message) -> std::io::Result<()> {
    match message {
        Message::Text(text) => out.write_all(text.as_bytes())?,
        Message::Binary(data) => {
            for byte in data.iter() {
                write!(out, "{byte:02x}")?;
            }
        }
    }
    out.write_all(b"\n")?;
    out.flush()
}

/// Runs the client and exits the process with the status documented in `--help`.
pub async fn run(args: ConnectArgs) -> Result<(), Box<dyn std::error::Error>> {
    let code = session(&args).await;
    let _ = std::io::stdout().flush();
    if code != EXIT_OK {
        std::process::exit(code);
    }
    Ok(())
}

async fn session(args: &ConnectArgs) -> i32 {
    let status = |line: std::fmt::Arguments<'_>| {
        if !args.quiet {
            eprintln!("{line}");
        }
    };
    let builder = match builder(args) {
        Ok(builder) => builder,
        Err(message) => {
            eprintln!("sockway connect: {message}");
            return 2;
        }
    };
    let socket = match builder.connect_message().await {
        Ok(socket) => socket,
        Err(error) => {
            eprintln!("sockway connect: {error}");
            return connect_exit_code(&error);
        }
    };
    let info = socket.info();
    status(format_args!(
        "connected to {} ({}{})",
        info.url,
        info.remote_addr,
        info.subprotocol
            .as_deref()
            .map(|p| format!(", subprotocol {p}"))
            .unwrap_or_default()
    ));
    let (sender, receiver) = socket.split();
    let binary = args.binary;
    let linger = if args.linger.is_finite() && args.linger > 0.0 {
        Duration::from_secs_f64(args.linger.min(5.0))
    } else {
        Duration::ZERO
    };
    let counter = Arc::new(AtomicU64::new(0));
    let received = counter.clone();
    let mut lines = spawn_stdin_reader();
    let input = tokio::spawn(async move {
        while let Some(Some(line)) = lines.recv().await {
            let sent = if binary {
                sender.send_binary(line.as_bytes()).await
            } else {
                sender.send_text(&line).await
            };
            if sent.is_err() {
                // The connection ended; the receiver reports how.
                std::future::pending::<()>().await;
            }
        }
        linger_until_quiet(&received, linger).await;
        let _ = sender.close(CloseCode::NORMAL, "").await;
    });
    let mut closed = None;
    let on_message = |message: Message| {
        counter.fetch_add(1, Ordering::Relaxed);
        if print_message(&mut std::io::stdout().lock(), &message).is_err() {
            // stdout is gone (e.g. `| head`): nothing more to do.
            std::process::exit(EXIT_OK);
        }
    };
    let receive = receiver.run(on_message, |c| closed = Some(c));
    // After our close (stdin EOF), the server has CLOSE_WAIT to answer.
    let close_wait = async {
        let _ = input.await;
        tokio::time::sleep(CLOSE_WAIT).await;
    };
    let answered = tokio::select! {
        () = receive => true,
        () = close_wait => false,
    };
    let _ = std::io::stdout().flush();
    let Some(closed) = closed.filter(|_| answered) else {
        eprintln!("sockway connect: the server did not answer the close within {CLOSE_WAIT:?}");
        return EXIT_ABNORMAL;
    };
    status(format_args!(
        "closed: {} {}{}",
        closed.code,
        match closed.by {
            ClosedBy::Local => "(by us)",
            ClosedBy::Remote => "(by the server)",
            ClosedBy::Abnormal => "(abnormally)",
        },
        match (&closed.error, closed.reason.is_empty()) {
            (Some(error), _) => format!(": {error}"),
            (None, false) => format!(": {}", closed.reason),
            (None, true) => String::new(),
        }
    ));
    closed_exit_code(&closed)
}
