//! The hub's load tool (docs/hub.md, "Figures"): a server mode and two client modes that
//! speak the hub protocol over raw WebSockets (`sockway::client` and the crate's own codec),
//! so measuring costs the server, not a general-purpose client.
//!
//! ```text
//! hub_bench serve ADDR                          the sample chat hub at /chatHub, 2 workers
//! hub_bench fanout URL N json|messagepack SECS  N clients; one sends SendMessage, all receive
//! hub_bench idle URL N SECS                     N clients handshake, Echo once, then idle
//! ```
//!
//! Every mode stops by itself: `serve` when its standard input closes, the others after
//! SECS (bounded to 120).

mod client;
mod fanout;
mod histogram;
mod idle;
mod serve;

use std::time::Duration;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The longest run any mode accepts, so a mistyped argument cannot leave it running.
const MAX_SECS: u64 = 120;

fn usage() -> BoxError {
    "usage: hub_bench serve ADDR | fanout URL N json|messagepack SECS | idle URL N SECS".into()
}

fn seconds(text: &str) -> Result<Duration, BoxError> {
    let secs: u64 = text.parse()?;
    Ok(Duration::from_secs(secs.clamp(1, MAX_SECS)))
}

fn main() -> Result<(), BoxError> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    match args.as_slice() {
        ["serve", addr] => serve::run(addr.parse()?),
        ["fanout", url, n, protocol, secs] => {
            let protocol =
                sockway_hub::protocol::Protocol::from_name(protocol).ok_or_else(usage)?;
            client_runtime()?.block_on(fanout::run(url, n.parse()?, protocol, seconds(secs)?))
        }
        ["idle", url, n, secs] => {
            client_runtime()?.block_on(idle::run(url, n.parse()?, seconds(secs)?))
        }
        _ => Err(usage()),
    }
}

/// The clients' runtime: two workers, like the server's, on the same two CPUs.
fn client_runtime() -> Result<tokio::runtime::Runtime, BoxError> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?)
}
