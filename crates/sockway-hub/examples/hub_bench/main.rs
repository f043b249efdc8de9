//! The hub's load tool (docs/benchmarks/hub.md): a server mode and two client modes that
//! speak the hub protocol over raw WebSockets (`sockway::client` and the crate's own codec),
//! so measuring costs the server, not a general-purpose client.
//!
//! ```text
//! hub_bench serve ADDR [REDIS_URL]              the sample chat hub at /chatHub, 2 workers;
//!                                                with REDIS_URL one server of a fleet
//! hub_bench fanout URLS N json|messagepack SECS [GROUP]
//!                                                N clients spread over URLS (comma-separated);
//!                                                one sends SendMessage (or to GROUP), all get it
//! hub_bench steady URLS N json|messagepack RATE SECS
//!                                                N clients in a group; one sends RATE numbered
//!                                                messages a second; counts lost, late, reordered
//! hub_bench idle URL N SECS                      N clients handshake, Echo once, then idle
//! ```
//!
//! Every mode stops by itself: `serve` when its standard input closes, the others after
//! SECS (bounded to 120).

mod client;
mod fanout;
mod histogram;
mod idle;
mod serve;
mod steady;

use std::time::Duration;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The longest run any mode accepts, so a mistyped argument cannot leave it running.
const MAX_SECS: u64 = 120;

fn usage() -> BoxError {
    "usage: hub_bench serve ADDR [REDIS_URL] | fanout URLS N json|messagepack SECS [GROUP] \
     | steady URLS N json|messagepack RATE SECS | idle URL N SECS"
        .into()
}

fn seconds(text: &str) -> Result<Duration, BoxError> {
    let secs: u64 = text.parse()?;
    Ok(Duration::from_secs(secs.clamp(1, MAX_SECS)))
}

fn main() -> Result<(), BoxError> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    match args.as_slice() {
        ["serve", addr] => serve::run(addr.parse()?, None),
        ["serve", addr, redis] => serve::run(addr.parse()?, Some(redis)),
        ["fanout", urls, n, protocol, secs, group @ ..] if group.len() <= 1 => {
            let urls = client::urls(urls)?;
            let (n, secs) = (n.parse()?, seconds(secs)?);
            let run = fanout::run(
                &urls,
                n,
                protocol_named(protocol)?,
                secs,
                group.first().copied(),
            );
            client_runtime()?.block_on(run)
        }
        ["steady", urls, n, protocol, rate, secs] => {
            let urls = client::urls(urls)?;
            let protocol = protocol_named(protocol)?;
            let run = steady::run(&urls, n.parse()?, protocol, rate.parse()?, seconds(secs)?);
            client_runtime()?.block_on(run)
        }
        ["idle", url, n, secs] => {
            client_runtime()?.block_on(idle::run(url, n.parse()?, seconds(secs)?))
        }
        _ => Err(usage()),
    }
}

fn protocol_named(name: &str) -> Result<sockway_hub::protocol::Protocol, BoxError> {
    sockway_hub::protocol::Protocol::from_name(name).ok_or_else(usage)
}

/// The clients' runtime: two workers, like the server's, on the same two CPUs.
fn client_runtime() -> Result<tokio::runtime::Runtime, BoxError> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?)
}
