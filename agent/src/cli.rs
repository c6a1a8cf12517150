//! The command line of `plantwatch-agent`: `enroll`, `run`, `status`.

use std::path::{Path, PathBuf};

use clap::{Parser, Subcommand};
use plantwatch_shared::api::ComponentKind;
use plantwatch_shared::daemon::{self, EnrollArgs, Enrollment, LogFormat, shutdown_signal};
use plantwatch_shared::push::PushArgs;

/// The plantwatch agent: runs on a monitored server (Linux, or Windows as a service) and reports
/// a heartbeat, its system metrics, the processes its node watches and, on Windows, its services
/// and inventory to the plantwatch server.
#[derive(Debug, Parser)]
#[command(name = "plantwatch-agent", version)]
pub struct Cli {
    /// Directory of the enrollment and the status file (Windows: %ProgramData%\plantwatch\agent).
    #[arg(
        long,
        env = "PLANTWATCH_STATE_DIR",
        global = true,
        default_value_os_t = default_state_dir()
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
    /// Print what this machine is (operating system, hardware; on Windows from WMI), as the
    /// agent sends it to the server; `--wmi` prints WMI's answers themselves.
    Inventory {
        /// WMI's answers as JSON (Windows).
        #[arg(long)]
        wmi: bool,
    },
    /// Print the services the Service Control Manager lists, as the agent reports them
    /// (Windows).
    #[cfg(windows)]
    Services,
    /// Register the agent as a Windows service (automatic start, restarted on failure) that
    /// runs with these settings; enroll first.
    #[cfg(windows)]
    Install(RunArgs),
    /// Stop and remove the Windows service.
    #[cfg(windows)]
    Uninstall,
    /// Start the Windows service and wait until it runs.
    #[cfg(windows)]
    Start,
    /// Stop the Windows service and wait until it has stopped.
    #[cfg(windows)]
    Stop,
    /// What the Service Control Manager runs (not for consoles).
    #[cfg(windows)]
    #[command(hide = true)]
    Service(RunArgs),
}

/// Where the agent keeps its state: `/var/lib/plantwatch-agent`; on Windows
/// `%ProgramData%\plantwatch\agent` (SYSTEM and Administrators only).
pub fn default_state_dir() -> PathBuf {
    if cfg!(windows) {
        let data = std::env::var_os("ProgramData").unwrap_or_else(|| "C:\\ProgramData".into());
        PathBuf::from(data).join("plantwatch").join("agent")
    } else {
        PathBuf::from("/var/lib/plantwatch-agent")
    }
}

/// Runs the agent with `args` until `shutdown` (`run`, and the Windows service).
pub async fn run_agent(
    dir: &Path,
    args: RunArgs,
    shutdown: impl std::future::Future<Output = ()>,
) -> anyhow::Result<()> {
    let enrollment = Enrollment::load(dir, ComponentKind::Agent)?;
    tracing::info!(
        component_id = enrollment.component_id,
        server = %enrollment.server_url,
        "Agent starting."
    );
    let mut options = crate::Options::new(dir.to_owned());
    args.push.apply(&mut options.push);
    options.metrics_every = std::time::Duration::from_secs(args.interval);
    crate::run(enrollment, options, shutdown).await
}

/// Runs a command.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let dir = &cli.state_dir;
    match cli.command {
        Command::Enroll(args) => {
            daemon::enroll_command(dir, ComponentKind::Agent, args).await?;
            Ok(())
        }
        Command::Run(args) => run_agent(dir, args, shutdown_signal()?).await,
        Command::Status { json } => status(dir, json),
        Command::Inventory { wmi } => inventory(wmi),
        #[cfg(windows)]
        Command::Services => {
            let services = crate::windows::scm::services()?;
            let mut text = String::new();
            for service in services {
                text.push_str(&format!(
                    "{:<40} {:<14} {:<8} {}\n",
                    service.name,
                    service.start(),
                    plantwatch_shared::metric_names::windows_service_state_name(service.state)
                        .unwrap_or("unknown"),
                    service.display_name
                ));
            }
            // A reader that stops early (`| more`) closes the pipe: not an error, not a panic.
            let _ = std::io::Write::write_all(&mut std::io::stdout().lock(), text.as_bytes());
            Ok(())
        }
        #[cfg(windows)]
        Command::Install(_) => {
            // The service runs `service` with the same settings: pass them on as given.
            let run: Vec<std::ffi::OsString> = std::env::args_os()
                .skip_while(|a| a != "install")
                .skip(1)
                .collect();
            crate::windows::service::install(dir, &run)
        }
        #[cfg(windows)]
        Command::Uninstall => crate::windows::service::uninstall(),
        #[cfg(windows)]
        Command::Start => crate::windows::service::start(),
        #[cfg(windows)]
        Command::Stop => crate::windows::service::stop(),
        #[cfg(windows)]
        Command::Service(_) => crate::windows::service::dispatch(),
    }
}

fn inventory(wmi: bool) -> anyhow::Result<()> {
    let timeout = crate::daemon::WMI_TIMEOUT;
    let json = if wmi {
        #[cfg(windows)]
        {
            serde_json::to_string_pretty(
                &crate::windows::wmi::query(timeout).map_err(anyhow::Error::msg)?,
            )?
        }
        #[cfg(not(windows))]
        anyhow::bail!(
            "WMI exists on Windows only; this agent runs on {}",
            std::env::consts::OS
        )
    } else {
        serde_json::to_string_pretty(&crate::inventory::read(timeout))?
    };
    println!("{json}");
    Ok(())
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
            let at = status.last_heartbeat_at.map_or("never".to_owned(), |t| {
                t.format(&time::format_description::well_known::Rfc3339)
                    .unwrap_or_else(|_| t.to_string())
            });
            println!("last heartbeat  {at}");
            if let Some(error) = status.last_error {
                println!("last error      {error}");
            }
        }
        None => println!("state           never run"),
    }
    Ok(())
}
