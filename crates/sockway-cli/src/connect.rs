//! `sockway connect` (placeholder; the client issue fills this in).

/// Flags of `sockway connect`.
#[derive(Debug, clap::Args)]
pub struct ConnectArgs {
    /// The `ws://` or `wss://` URL.
    url: String,
}

/// Not yet implemented.
pub async fn run(args: ConnectArgs) -> Result<(), Box<dyn std::error::Error>> {
    Err(format!("connect to {} is not implemented yet", args.url).into())
}
