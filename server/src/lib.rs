//! The plantwatch server: an axum HTTPS API over an embedded SQLite database.
//!
//! [`run`] is what the binary calls; [`server::start`] starts the same server in-process and
//! is what the integration tests and benchmarks use.

pub mod alerting;
pub mod api;
pub mod auth;
pub mod clock;
pub mod components;
pub mod config;
pub mod config_delivery;
pub mod db;
pub mod discovery;
pub mod ha;
pub mod ingest;
pub mod inventory;
pub mod listener;
pub mod local_collector;
pub mod logging;
pub mod metrics_store;
pub mod remote_write;
pub mod server;
pub mod state;
pub mod telemetry;
pub mod templates;
pub mod tls;
pub mod topology;
pub mod vault;

use anyhow::Context as _;

use crate::config::{Cli, Command, MetricsCommand, VaultCommand};

/// Runs the command the binary was given.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    let config = cli.resolve()?;
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => {
            logging::init(config.log_format);
            let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
            runtime.block_on(async {
                let signals = server::ShutdownSignals::install()?;
                if config.ha_dir.is_some() {
                    return ha::serve(config, signals).await;
                }
                let running = server::start(config).await?;
                running.wait_for_signal(signals).await
            })
        }
        Command::Ha(command) => ha::command(&config, command),
        Command::Fingerprint => {
            let fingerprint = tls::existing_fingerprint(&config)?;
            println!("{fingerprint}");
            Ok(())
        }
        Command::Metrics(MetricsCommand::Stats { json }) => {
            let stats = metrics_store::stats::collect(&config.metrics_path())?;
            if json {
                println!("{}", serde_json::to_string_pretty(&stats)?);
            } else {
                print!("{stats}");
            }
            Ok(())
        }
        Command::Vault(VaultCommand::Rotate) => {
            let _lock = server::lock_data_dir(&config)?;
            let mut conn = db::open_connection(&config.database_path())?;
            let rotation = vault::rotate(&config.data_dir, config.vault_key.as_ref(), &mut conn)?;
            println!(
                "Re-encrypted {} secret(s) under a new vault key.",
                rotation.secrets
            );
            if let Some(key) = rotation.new_env_key {
                println!(
                    "The old key came from {}; set it to the new key before the next start:",
                    vault::KEY_ENV
                );
                println!("{}", key.expose());
            }
            Ok(())
        }
    }
}
