//! The command line of `plantwatch-agent`: `enroll`, `run`, `status`.

use std::path::{Path, PathBuf};

use clap::{Parser, Subcommand};
use plantwatch_shared::api::ComponentKind;
use plantwatch_shared::daemon::{self, EnrollArgs, Enrollment, LogFormat, shutdown_signal};
use plantwatch_shared::push::PushArgs;

/// The plantwatch agent: runs on a monitored server and reports a heartbeat (and, later, its
/// system metrics) to the plantwatch server.
#[derive(Debug, Parser)]
#[command(name = "plantwatch-agent", version)]
pub struct Cli {
    /// Directory of the enrollment and the status file.
    #[arg(
        long,
        env = "PLANTWATCH_STATE_DIR",
        global = true,
        default_value = "/var/lib/plantwatch-agent"
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
    /// Seconds between readings of the system metrics.
    #[arg(long, env = "PLANTWATCH_INTERVAL", value_name = "SECS", default_value_t = 10,
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub interval: u64,
    #[command(flatten)]
    pub push: PushArgs,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Enroll with the server using a join code from `plantwatch tokens create`.
    Enroll(EnrollArgs),
    /// Run: send a heartbeat every 10 s and this machine's metrics until SIGTERM (metrics wait
    /// in an on-disk outbox while the server is unreachable).
    Run(RunArgs),
    /// Print what the agent knows: enrollment, node, last heartbeat.
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
            daemon::enroll_command(dir, ComponentKind::Agent, args).await?;
            Ok(())
        }
        Command::Run(args) => {
            let enrollment = Enrollment::load(dir, ComponentKind::Agent)?;
            tracing::info!(
                component_id = enrollment.component_id,
                server = %enrollment.server_url,
                "Agent starting."
            );
            let mut options = crate::Options::new(dir.clone());
            args.push.apply(&mut options.push);
            options.metrics_every = std::time::Duration::from_secs(args.interval);
            crate::run(enrollment, options, shutdown_signal()?).await
        }
        Command::Status { json } => status(dir, json),
    }
}

fn status(dir: &Path, json: bool) -> anyhow::Result<()> {
    let enrollment = Enrollment::load(dir, ComponentKind::Agent)?;
    let status = crate::daemon::load_status(dir)?;
    if json {
        let document = serde_json::json!({
            "component_id": enrollment.component_id,
            "name": enrollment.name,
            "server_url": enrollment.server_url,
            "fingerprint": enrollment.fingerprint,
            "status": status,
        });
        println!("{}", serde_json::to_string_pretty(&document)?);
        return Ok(());
    }
    println!(
        "agent           {} ({})",
        enrollment.component_id, enrollment.name
    );
    println!("server          {}", enrollment.server_url);
    match status {
        Some(status) => {
            let node = status
                .node_id
                .map_or("not yet (waiting for approval)".to_owned(), |id| {
                    id.to_string()
                });
            println!("node            {node}");
            println!("state           {}", status.state);
            let at = status
                .last_heartbeat_at
                .map_or("never".to_owned(), |t| t.to_string());
            println!("last heartbeat  {at}");
            if let Some(error) = status.last_error {
                println!("last error      {error}");
            }
        }
        None => println!("state           never run"),
    }
    Ok(())
}
