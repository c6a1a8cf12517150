//! The command line of `plantwatch-collector`: `enroll`, `run`, `status`.

use std::path::{Path, PathBuf};

use clap::{Parser, Subcommand};
use plantwatch_shared::api::ComponentKind;
use plantwatch_shared::daemon::{self, EnrollArgs, Enrollment, LogFormat, shutdown_signal};
use plantwatch_shared::push::PushArgs;

use crate::store;

/// The plantwatch collector: runs on an isolated plant network, holds the current
/// configuration of the devices it polls, and reports to the plantwatch server.
#[derive(Debug, Parser)]
#[command(name = "plantwatch-collector", version)]
pub struct Cli {
    /// Directory of the enrollment, the saved configuration and the status file.
    #[arg(
        long,
        env = "PLANTWATCH_STATE_DIR",
        global = true,
        default_value = "/var/lib/plantwatch-collector"
    )]
    pub state_dir: PathBuf,
    /// Log format.
    #[arg(long, env = "PLANTWATCH_LOG_FORMAT", global = true, value_enum, default_value_t = LogFormat::Pretty)]
    pub log_format: LogFormat,
    #[command(subcommand)]
    pub command: Command,
}

/// Settings of `run`.
#[derive(Debug, Clone, clap::Args)]
pub struct RunArgs {
    /// Wait for one SNMP answer, in milliseconds.
    #[arg(long, env = "PLANTWATCH_SNMP_TIMEOUT_MS", value_name = "MS", default_value_t = 2_000,
          value_parser = clap::value_parser!(u64).range(100..=60_000))]
    pub snmp_timeout_ms: u64,
    /// Further attempts after an SNMP timeout.
    #[arg(long, env = "PLANTWATCH_SNMP_RETRIES", value_name = "N", default_value_t = 1,
          value_parser = clap::value_parser!(u32).range(0..=5))]
    pub snmp_retries: u32,
    /// SNMP requests in flight at most, over all targets.
    #[arg(long, env = "PLANTWATCH_SNMP_MAX_IN_FLIGHT", value_name = "N", default_value_t = 256,
          value_parser = clap::value_parser!(u64).range(1..=65_536))]
    pub snmp_max_in_flight: u64,
    /// Between requests for discovery work while idle, in milliseconds.
    #[arg(long, env = "PLANTWATCH_DISCOVERY_POLL_MS", value_name = "MS", default_value_t = 10_000,
          value_parser = clap::value_parser!(u64).range(100..=600_000))]
    pub discovery_poll_ms: u64,
    #[command(flatten)]
    pub push: PushArgs,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Enroll with the server using a join code from `plantwatch tokens create`.
    Enroll(EnrollArgs),
    /// Run: poll the targets of the configuration, push their metrics (kept in an on-disk
    /// outbox while the server is unreachable) and report to the server until SIGTERM.
    Run(RunArgs),
    /// Print what the collector knows: enrollment, configuration, last contact.
    Status {
        /// As JSON.
        #[arg(long)]
        json: bool,
    },
}

/// Runs a command.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let dir = &cli.state_dir;
    match cli.command {
        Command::Enroll(args) => {
            daemon::enroll_command(dir, ComponentKind::Collector, args).await?;
            // A configuration of an earlier enrollment is not this one's.
            let _ = std::fs::remove_file(dir.join(store::CONFIG_FILE));
            Ok(())
        }
        Command::Run(args) => {
            let enrollment = Enrollment::load(dir, ComponentKind::Collector)?;
            tracing::info!(
                component_id = enrollment.component_id,
                server = %enrollment.server_url,
                "Collector starting."
            );
            let mut options = crate::Options::new(dir.clone());
            args.push.apply(&mut options.push);
            options.poll.timeout = std::time::Duration::from_millis(args.snmp_timeout_ms);
            options.poll.retries = args.snmp_retries;
            options.poll.max_in_flight = args.snmp_max_in_flight as usize;
            options.discovery.every = std::time::Duration::from_millis(args.discovery_poll_ms);
            crate::run(enrollment, options, shutdown_signal()?).await
        }
        Command::Status { json } => status(dir, json),
    }
}

fn status(dir: &Path, json: bool) -> anyhow::Result<()> {
    let enrollment = Enrollment::load(dir, ComponentKind::Collector)?;
    let status = store::load_status(dir)?;
    let held = store::load_config(dir)?;
    if json {
        let document = serde_json::json!({
            "component_id": enrollment.component_id,
            "name": enrollment.name,
            "server_url": enrollment.server_url,
            "fingerprint": enrollment.fingerprint,
            "enrolled_at": enrollment.enrolled_at.to_string(),
            "saved_config_sha256": held.as_ref().map(|h| &h.sha256),
            "saved_targets": held.as_ref().map(|h| h.config.targets.len()),
            "status": status,
        });
        println!("{}", serde_json::to_string_pretty(&document)?);
        return Ok(());
    }
    println!(
        "collector     {} ({})",
        enrollment.component_id, enrollment.name
    );
    println!("server        {}", enrollment.server_url);
    if let Some(fingerprint) = enrollment.fingerprint {
        println!("fingerprint   {fingerprint}");
    }
    match &held {
        Some(held) => println!(
            "config        {} targets, sha256 {}",
            held.config.targets.len(),
            held.sha256
        ),
        None => println!("config        none received yet"),
    }
    match status {
        Some(status) => {
            println!("state         {}", status.state);
            let at =
                |t: Option<time::OffsetDateTime>| t.map_or("never".to_owned(), |t| t.to_string());
            println!("last contact  {}", at(status.last_contact_at));
            println!("last report   {}", at(status.last_report_at));
            if let Some(error) = status.last_error {
                println!("last error    {error}");
            }
        }
        None => println!("state         never run"),
    }
    Ok(())
}
