//! `sockway gateway`: runs the WebSocket-aware application gateway from a configuration file
//! (JSON or TOML in the shape of the Azure Application Gateway template, see
//! `docs/gateway.md`), or with `--check` validates the file and prints every error.

use std::path::PathBuf;

/// Flags of `sockway gateway`.
#[derive(Debug, clap::Args)]
pub struct GatewayArgs {
    /// The configuration file (`.json` or `.toml`).
    #[arg(long, value_name = "FILE")]
    config: PathBuf,
    /// Only validate the configuration: print OK, or every error with its path, and exit
    /// non-zero on errors.
    #[arg(long)]
    check: bool,
}

/// Runs or checks the gateway.
pub async fn run(args: GatewayArgs) -> Result<(), Box<dyn std::error::Error>> {
    if args.check {
        return match sockway_gateway::config::load(&args.config) {
            Ok(_) => {
                println!("{}: OK", args.config.display());
                Ok(())
            }
            Err(error) => {
                let lines = error.lines();
                for line in &lines {
                    println!("{line}");
                }
                Err(format!(
                    "{}: {} error{}",
                    args.config.display(),
                    lines.len(),
                    if lines.len() == 1 { "" } else { "s" }
                )
                .into())
            }
        };
    }
    sockway_gateway::run(&args.config).await?;
    Ok(())
}
