//! The plantwatch server: an axum HTTPS API over an embedded SQLite database.
//!
//! [`run`] is what the binary calls; [`server::start`] starts the same server in-process and
//! is what the integration tests and benchmarks use.

pub mod api;
pub mod auth;
pub mod config;
pub mod db;
pub mod logging;
pub mod server;
pub mod state;
pub mod tls;

use anyhow::Context as _;

use crate::config::{Cli, Command};

/// Runs the command the binary was given.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    let config = cli.resolve()?;
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => {
            logging::init(config.log_format);
            let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
            runtime.block_on(async {
                let running = server::start(config).await?;
                running.wait_for_signal().await
            })
        }
        Command::Fingerprint => {
            let fingerprint = tls::existing_fingerprint(&config)?;
            println!("{fingerprint}");
            Ok(())
        }
    }
}
