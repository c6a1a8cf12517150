//! `plantwatch discovery run|list|show|cancel|import|dismiss`.

use std::io::IsTerminal as _;
use std::time::Duration;

use anyhow::bail;
use clap::{Args, Subcommand};
use plantwatch_shared::Client;
use plantwatch_shared::api::{
    DEFAULT_TCP_PORTS, Device, DeviceQuery, DeviceSelection, DeviceStatus, Job, JobQuery, JobSpec,
    JobState, MAX_PAGE_LIMIT, ScanOptions, parse_tcp_ports,
};

use super::output::Format;
use super::usage;
use super::{Partial, Session};
use crate::cells::time_cell;
use crate::cells::{device_name, parse_duration, progress_cell, rtt_cell};

#[derive(Debug, Subcommand)]
pub enum DiscoveryCommand {
    /// Scan targets for devices (operators): the results land in the discovery inbox.
    Run(RunArgs),
    /// List scan jobs, newest first.
    #[command(alias = "ls")]
    List {
        /// Only jobs in this state: queued, running, done, failed, cancelled.
        #[arg(long)]
        state: Option<JobState>,
        /// Only jobs of this collector.
        #[arg(long)]
        collector: Option<String>,
    },
    /// Show a job and the devices it found.
    Show {
        id: i64,
        /// Only devices in this state: new, imported, dismissed.
        #[arg(long)]
        status: Option<DeviceStatus>,
        /// Only devices not monitored yet.
        #[arg(long)]
        unmonitored: bool,
        /// Only devices whose address, names, vendor or template contain this text.
        #[arg(long)]
        search: Option<String>,
    },
    /// Cancel a queued or running job, and its schedule (operators).
    Cancel { id: i64 },
    /// Take found devices into monitoring as nodes (operators): with their template, the
    /// credential that answered, and the collector that found them. Already monitored ones
    /// are skipped.
    Import(SelectArgs),
    /// Dismiss found devices (operators): later scans of the collector file them as dismissed.
    Dismiss(SelectArgs),
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// CIDRs (10.0.0.0/24), ranges (10.0.0.5-10.0.0.80) and addresses, IPv4 or IPv6.
    #[arg(required = true, value_name = "TARGETS")]
    pub targets: Vec<String>,
    /// Addresses, ranges or CIDRs to leave out; repeat for several.
    #[arg(long = "exclude", value_name = "TARGET")]
    pub exclusions: Vec<String>,
    /// The collector that scans [default: the server's own].
    #[arg(long)]
    pub collector: Option<String>,
    /// SNMP credential to try, in order; repeat for several.
    #[arg(long = "credential", value_name = "NAME")]
    pub credentials: Vec<String>,
    /// Name of the job [default: the first target].
    #[arg(long)]
    pub name: Option<String>,
    /// No ICMP echo sweep.
    #[arg(long)]
    pub no_icmp: bool,
    /// TCP ports tried on hosts that drop ICMP, comma-separated; `none` for no TCP fallback
    /// [default: 22,80,443,502,102,161].
    #[arg(long, value_name = "PORTS")]
    pub tcp_ports: Option<String>,
    /// No SNMP probe.
    #[arg(long)]
    pub no_snmp: bool,
    /// No reverse DNS lookups.
    #[arg(long)]
    pub no_dns: bool,
    /// Addresses worked on at once [default: 256].
    #[arg(long)]
    pub concurrency: Option<u32>,
    /// Packets per second at most [default: 1000].
    #[arg(long)]
    pub pps: Option<u32>,
    /// Wait for an answer this long, in milliseconds [default: 1000].
    #[arg(long)]
    pub timeout_ms: Option<u32>,
    /// Scan more than 65,536 addresses.
    #[arg(long)]
    pub force: bool,
    /// Scan again this long after each run: 1h, 1d, …
    #[arg(long, value_parser = parse_duration)]
    pub every: Option<u64>,
    /// Wait until the scan ends, with progress on a terminal, then list what it found.
    #[arg(long)]
    pub wait: bool,
}

#[derive(Debug, Args)]
pub struct SelectArgs {
    /// The job.
    pub id: i64,
    /// Device ids (as `discovery show` lists them).
    #[arg(value_name = "DEVICE")]
    pub devices: Vec<i64>,
    /// Every device of the job still in the inbox.
    #[arg(long, conflicts_with = "devices")]
    pub all: bool,
    /// Tag for the imported nodes; repeat for several.
    #[arg(long = "tag")]
    pub tags: Vec<String>,
    /// Import without the suggested checks (a tls check for each open 443, 4443, 8443, 9443).
    #[arg(long)]
    pub no_checks: bool,
}

const JOB_HEADERS: [&str; 9] = [
    "ID",
    "NAME",
    "COLLECTOR",
    "STATE",
    "PROGRESS",
    "HOSTS",
    "SNMP",
    "STARTED",
    "ERROR",
];
const DEVICE_HEADERS: [&str; 10] = [
    "ID",
    "ADDRESS",
    "NAME",
    "VENDOR",
    "TEMPLATE",
    "CREDENTIAL",
    "BY",
    "RTT",
    "MONITORED",
    "STATUS",
];

fn job_row(job: &Job) -> Vec<String> {
    vec![
        job.id.to_string(),
        job.name.clone(),
        job.collector.clone(),
        job.state.to_string(),
        progress_cell(job),
        job.hosts_found.to_string(),
        job.snmp_identified.to_string(),
        time_cell(job.started_at),
        job.error.clone().unwrap_or_default(),
    ]
}

fn device_row(device: &Device) -> Vec<String> {
    let mut status = device.status.to_string();
    if !device.changes.is_empty() {
        status.push_str(" (changed)");
    }
    vec![
        device.id.to_string(),
        device.address.clone(),
        device_name(device),
        device.vendor.clone().unwrap_or_default(),
        device.template_hint(),
        device.credential.clone().unwrap_or_default(),
        device.found_by.to_string(),
        rtt_cell(device.rtt_ms),
        device.node.clone().unwrap_or_default(),
        status,
    ]
}

impl RunArgs {
    fn spec(self) -> anyhow::Result<JobSpec> {
        let defaults = ScanOptions::default();
        let options = ScanOptions {
            icmp: !self.no_icmp,
            tcp_ports: match self.tcp_ports.as_deref() {
                Some(text) => {
                    parse_tcp_ports(text).map_err(|e| super::Usage(format!("--tcp-ports: {e}")))?
                }
                None => DEFAULT_TCP_PORTS.to_vec(),
            },
            snmp: !self.no_snmp,
            reverse_dns: !self.no_dns,
            concurrency: self.concurrency.unwrap_or(defaults.concurrency),
            packets_per_second: self.pps.unwrap_or(defaults.packets_per_second),
            timeout_ms: self.timeout_ms.unwrap_or(defaults.timeout_ms),
            retries: defaults.retries,
        };
        let every_s = match self.every {
            Some(secs) => {
                Some(u32::try_from(secs).map_err(|_| super::Usage("--every is too long".into()))?)
            }
            None => None,
        };
        Ok(JobSpec {
            name: self.name,
            targets: self.targets,
            exclusions: self.exclusions,
            collector: self.collector,
            credentials: self.credentials,
            options,
            force: self.force,
            every_s,
        })
    }
}

async fn all_devices(client: &Client, id: i64, query: DeviceQuery) -> anyhow::Result<Vec<Device>> {
    let mut items = Vec::new();
    loop {
        let page = client
            .job_devices(
                id,
                &DeviceQuery {
                    limit: Some(MAX_PAGE_LIMIT),
                    offset: Some(items.len() as u32),
                    ..query.clone()
                },
            )
            .await?;
        let got = page.items.len();
        items.extend(page.items);
        if got == 0 || items.len() as u64 >= page.total {
            return Ok(items);
        }
    }
}

/// Waits for a job to end; a progress bar on a terminal's standard error.
async fn wait(client: &Client, job: Job) -> anyhow::Result<Job> {
    let bar = std::io::stderr().is_terminal().then(|| {
        let bar = indicatif::ProgressBar::new(job.total);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{spinner} [{bar:30}] {pos}/{len} addresses  {msg}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        bar
    });
    let mut job = job;
    loop {
        if let Some(bar) = &bar {
            bar.set_position(job.done);
            let eta = job
                .eta_s
                .map(|s| format!(", ETA {s} s"))
                .unwrap_or_default();
            bar.set_message(format!(
                "{} hosts, {} SNMP{eta}",
                job.hosts_found, job.snmp_identified
            ));
        }
        if job.state.is_finished() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        job = client.get_job(job.id).await?;
    }
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    Ok(job)
}

/// Prints a job and its devices: JSON `{job, devices}` or a summary and a table.
fn print_job(session: &Session, job: &Job, devices: &[Device]) -> anyhow::Result<()> {
    if session.format == Format::Json {
        let document = serde_json::json!({ "job": job, "devices": devices });
        return session.print(&document, &[], Vec::new());
    }
    if session.format == Format::Table {
        println!(
            "Job {} — {} on {} ({})",
            job.id, job.name, job.collector, job.state
        );
        println!("  targets:   {}", job.targets.join(", "));
        if !job.exclusions.is_empty() {
            println!("  excluded:  {}", job.exclusions.join(", "));
        }
        if !job.credentials.is_empty() {
            println!("  tries:     {}", job.credentials.join(", "));
        }
        println!(
            "  progress:  {}, {} hosts, {} identified by SNMP",
            progress_cell(job),
            job.hosts_found,
            job.snmp_identified
        );
        if let Some(rate) = job.rate {
            println!("  rate:      {rate:.1} addresses/s");
        }
        if let Some(every) = job.every_s {
            println!(
                "  repeats:   every {every} s, next {}",
                time_cell(job.next_run_at)
            );
        }
        if let Some(error) = &job.error {
            println!("  error:     {error}");
        }
        println!();
    }
    let rows = devices.iter().map(device_row).collect();
    session.print(&devices, &DEVICE_HEADERS, rows)
}

pub async fn run(session: &Session, command: DiscoveryCommand) -> anyhow::Result<()> {
    let (_, client) = session.client()?;
    match command {
        DiscoveryCommand::Run(args) => {
            let wait_for_it = args.wait;
            let job = client.create_job(&args.spec()?).await?;
            if !wait_for_it {
                if session.format == Format::Table {
                    println!(
                        "Job {} queued on {}: {} addresses. Follow it with `plantwatch discovery show {}`.",
                        job.id, job.collector, job.total, job.id
                    );
                    return Ok(());
                }
                return session.print(&job, &JOB_HEADERS, vec![job_row(&job)]);
            }
            let job = wait(&client, job).await?;
            let devices = all_devices(&client, job.id, DeviceQuery::default()).await?;
            print_job(session, &job, &devices)?;
            match job.state {
                JobState::Done => Ok(()),
                JobState::Cancelled => Err(Partial(format!("job {} was cancelled", job.id)).into()),
                _ => bail!(
                    "job {} failed: {}",
                    job.id,
                    job.error.as_deref().unwrap_or("no reason given")
                ),
            }
        }
        DiscoveryCommand::List { state, collector } => {
            let list = client
                .list_jobs(&JobQuery {
                    state,
                    collector,
                    limit: Some(MAX_PAGE_LIMIT),
                    offset: None,
                })
                .await?;
            let rows = list.items.iter().map(job_row).collect();
            session.print(&list, &JOB_HEADERS, rows)
        }
        DiscoveryCommand::Show {
            id,
            status,
            unmonitored,
            search,
        } => {
            let job = client.get_job(id).await?;
            let query = DeviceQuery {
                status,
                unmonitored: unmonitored.then_some(true),
                q: search,
                ..DeviceQuery::default()
            };
            let devices = all_devices(&client, id, query).await?;
            print_job(session, &job, &devices)
        }
        DiscoveryCommand::Cancel { id } => {
            let job = client.cancel_job(id).await?;
            if session.format == Format::Table {
                println!("Job {} is {} ({}).", job.id, job.state, progress_cell(&job));
                return Ok(());
            }
            session.print(&job, &JOB_HEADERS, vec![job_row(&job)])
        }
        DiscoveryCommand::Import(args) => {
            if !args.all && args.devices.is_empty() {
                usage!("name the devices to import, or --all");
            }
            let outcome = client
                .import_devices(
                    args.id,
                    &DeviceSelection {
                        devices: args.devices,
                        all: args.all,
                        tags: args.tags,
                        no_checks: args.no_checks,
                    },
                )
                .await?;
            if session.format == Format::Table {
                for node in &outcome.created {
                    println!(
                        "imported device {} as node {} ({})",
                        node.device_id, node.name, node.node_id
                    );
                }
                for skipped in &outcome.skipped {
                    println!(
                        "skipped device {} {}: {}",
                        skipped.device_id, skipped.address, skipped.reason
                    );
                }
                println!(
                    "{} imported, {} skipped.",
                    outcome.created.len(),
                    outcome.skipped.len()
                );
            } else {
                session.print(&outcome, &[], Vec::new())?;
            }
            if !outcome.skipped.is_empty() && !outcome.created.is_empty() {
                return Err(Partial(format!(
                    "{} of the devices were skipped",
                    outcome.skipped.len()
                ))
                .into());
            }
            if outcome.created.is_empty() && !outcome.skipped.is_empty() {
                bail!("nothing was imported");
            }
            Ok(())
        }
        DiscoveryCommand::Dismiss(args) => {
            if !args.all && args.devices.is_empty() {
                usage!("name the devices to dismiss, or --all");
            }
            let dismissed = client
                .dismiss_devices(
                    args.id,
                    &DeviceSelection {
                        devices: args.devices,
                        all: args.all,
                        ..DeviceSelection::default()
                    },
                )
                .await?;
            if session.format == Format::Table {
                println!("{} devices dismissed.", dismissed.dismissed);
                return Ok(());
            }
            session.print(&dismissed, &[], Vec::new())
        }
    }
}
