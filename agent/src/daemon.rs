//! The agent daemon: asks the server for its node until an admin has approved it, then sends a
//! heartbeat every 10 s; retries with backoff and jitter while the server cannot be reached,
//! logging why once per new problem. Its status goes to `status.json` for `status`.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use plantwatch_shared::api::ErrorCode;
use plantwatch_shared::api::OutboxStatus;
use plantwatch_shared::api::{Heartbeat, HostInventory};
use plantwatch_shared::daemon::{
    Backoff, Enrollment, Problems, prepare_dir, read_json, write_json,
};
use plantwatch_shared::lineproto::Writer;
use plantwatch_shared::push::{LineSender, PushOptions, Pusher};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// File of the daemon's status.
pub const STATUS_FILE: &str = "status.json";
/// How long the inventory waits for WMI.
pub const WMI_TIMEOUT: Duration = Duration::from_secs(20);
/// How often the inventory is read again (sent only when it changed).
pub const INVENTORY_EVERY: Duration = Duration::from_secs(6 * 3_600);

/// How the daemon paces itself.
#[derive(Debug, Clone)]
pub struct Options {
    pub state_dir: PathBuf,
    /// Interval of heartbeats (DESIGN §2: 10 s).
    pub heartbeat_every: Duration,
    pub retry_min: Duration,
    pub retry_max: Duration,
    /// Interval of system metrics (10 s).
    pub metrics_every: Duration,
    /// Batching, outbox bounds and replay pace of the metric push.
    pub push: PushOptions,
}

impl Options {
    pub fn new(state_dir: PathBuf) -> Self {
        Options {
            state_dir: state_dir.clone(),
            heartbeat_every: Duration::from_secs(10),
            retry_min: Duration::from_secs(1),
            retry_max: Duration::from_secs(30),
            metrics_every: Duration::from_secs(10),
            push: PushOptions::new(state_dir.join("outbox")),
        }
    }
}

/// What `status` prints, written by the running daemon.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Status {
    pub component_id: i64,
    pub server_url: String,
    pub node_id: Option<i64>,
    pub state: String,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub last_heartbeat_at: Option<OffsetDateTime>,
    pub last_error: Option<String>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub updated_at: Option<OffsetDateTime>,
    pub pid: u32,
    /// Metrics waiting to be delivered.
    #[serde(default)]
    pub outbox: Option<OutboxStatus>,
}

/// Reads the status file, if the daemon ever ran.
pub fn load_status(dir: &Path) -> anyhow::Result<Option<Status>> {
    Ok(read_json(&dir.join(STATUS_FILE))?.map(|(status, _)| status))
}

fn save_status(dir: &Path, status: &mut Status) {
    status.updated_at = Some(OffsetDateTime::now_utc());
    if let Err(error) = write_json(&dir.join(STATUS_FILE), status) {
        tracing::warn!(%error, "Writing the status file failed.");
    }
}

/// Runs the agent until `shutdown` completes.
pub async fn run(
    enrollment: Enrollment,
    options: Options,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    prepare_dir(&options.state_dir)?;
    let client = enrollment
        .client()
        .context("setting up the connection to the server")?;
    let started = std::time::Instant::now();
    let pair = tokio::spawn(plantwatch_shared::daemon::keep_pair(
        client.clone(),
        options.state_dir.clone(),
        enrollment.clone(),
    ));
    let (pusher, lines, outbox) =
        Pusher::spawn(client.clone(), options.push.clone()).context("opening the metric outbox")?;
    let (watch_tx, watch_rx) = tokio::sync::watch::channel(Vec::<String>::new());
    let collector = tokio::spawn(collect_metrics(lines, options.metrics_every, watch_rx));
    let (inventory_tx, mut inventory_rx) = tokio::sync::mpsc::channel(1);
    let inventory = tokio::spawn(read_inventory(inventory_tx));
    // The inventory to send with the next heartbeat, and the last one the server took.
    let mut unsent: Option<HostInventory> = None;
    let mut sent: Option<HostInventory> = None;
    let mut status = Status {
        component_id: enrollment.component_id,
        server_url: enrollment.server_url.clone(),
        state: "starting".into(),
        pid: std::process::id(),
        ..Status::default()
    };
    let mut problems = Problems::default();
    let mut backoff = Backoff::new(options.retry_min, options.retry_max);
    tokio::pin!(shutdown);
    loop {
        let result = match status.node_id {
            None => client.component_me().await.map(|me| {
                status.node_id = me.node_id;
                if let Some(node_id) = me.node_id {
                    tracing::info!(node_id, "Approved; sending heartbeats for node {node_id}.");
                }
            }),
            Some(node_id) => {
                while let Ok(read) = inventory_rx.try_recv() {
                    if sent.as_ref() != Some(&read) {
                        unsent = Some(read);
                    }
                }
                let heartbeat = Heartbeat {
                    version: env!("CARGO_PKG_VERSION").to_owned(),
                    uptime_s: Some(started.elapsed().as_secs()),
                    inventory: unsent.clone(),
                };
                client.heartbeat(node_id, &heartbeat).await.map(|ack| {
                    status.last_heartbeat_at = Some(OffsetDateTime::now_utc());
                    if let Some(taken) = unsent.take() {
                        sent = Some(taken);
                    }
                    watch_tx.send_if_modified(|watched| {
                        let changed = *watched != ack.processes;
                        if changed {
                            watched.clone_from(&ack.processes);
                        }
                        changed
                    });
                })
            }
        };
        let wait = match result {
            Ok(()) => {
                backoff.reset();
                if problems.recovered() {
                    tracing::info!(server = %client.base_url(), "Connected to the server again.");
                }
                status.state = "connected".into();
                status.server_url = client.base_url();
                status.last_error = None;
                options.heartbeat_every
            }
            Err(error) if error.is(ErrorCode::PendingApproval) => {
                backoff.reset();
                if problems.failed("waiting for approval") {
                    tracing::warn!(
                        "Waiting for an admin to approve this agent (plantwatch agents approve {}).",
                        enrollment.component_id
                    );
                }
                status.state = "waiting for approval".into();
                options.heartbeat_every
            }
            Err(error) => {
                // A refused heartbeat may mean the node changed: ask again which it is, and
                // tell the new node what this machine is.
                if error.status() == Some(403) {
                    status.node_id = None;
                    if unsent.is_none() {
                        unsent = sent.take();
                    }
                }
                let wait = backoff.next_delay();
                let problem = error.to_string();
                if problems.failed(problem.clone()) {
                    tracing::warn!(
                        server = %client.base_url(),
                        retry_in_ms = wait.as_millis() as u64,
                        "Cannot reach the server: {problem}"
                    );
                }
                status.state = "unreachable".into();
                status.last_error = Some(problem);
                wait
            }
        };
        status.outbox = outbox.lock().ok().map(|o| *o);
        save_status(&options.state_dir, &mut status);
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = &mut shutdown => break,
        }
    }
    collector.abort();
    inventory.abort();
    pair.abort();
    pusher.stop().await;
    status.outbox = outbox.lock().ok().map(|o| *o);
    status.state = "stopped".into();
    save_status(&options.state_dir, &mut status);
    tracing::info!("Agent stopped.");
    Ok(())
}

/// Reads what the machine is now and every [`INVENTORY_EVERY`] (off the async threads: WMI
/// blocks).
async fn read_inventory(to: tokio::sync::mpsc::Sender<HostInventory>) {
    loop {
        match tokio::task::spawn_blocking(|| crate::inventory::read(WMI_TIMEOUT)).await {
            Ok(inventory) => {
                if let Some(problem) = &inventory.problem {
                    tracing::warn!("Inventory incomplete: {problem}.");
                }
                if to.send(inventory).await.is_err() {
                    return;
                }
            }
            Err(error) => tracing::warn!("Reading the inventory failed: {error}."),
        }
        tokio::time::sleep(INVENTORY_EVERY).await;
    }
}

/// Reads the system every `every` (with the watched processes and, on Windows, the services)
/// and hands the lines to the pusher.
async fn collect_metrics(
    lines: LineSender,
    every: Duration,
    watched: tokio::sync::watch::Receiver<Vec<String>>,
) {
    let (mut metrics, mut processes) = match (
        crate::metrics::SystemMetrics::new(),
        crate::processes::Processes::new(),
    ) {
        (Ok(metrics), Ok(processes)) => (metrics, processes),
        (Err(problem), _) | (_, Err(problem)) => {
            tracing::error!("No system metrics: {problem}.");
            return;
        }
    };
    let mut ticker = tokio::time::interval(every);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    #[cfg(windows)]
    let mut services_problem = plantwatch_shared::daemon::Problems::default();
    loop {
        ticker.tick().await;
        let now_ms = (OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64;
        let mut out = Writer::new();
        metrics.collect(now_ms, &mut out);
        let names = watched.borrow().clone();
        processes.collect(&names, now_ms, &mut out);
        #[cfg(windows)]
        match tokio::task::spawn_blocking(crate::windows::scm::services).await {
            Ok(Ok(services)) => {
                if services_problem.recovered() {
                    tracing::info!("Listing the services works again.");
                }
                crate::services::write_lines(&services, now_ms, &mut out);
            }
            Ok(Err(error)) => {
                if services_problem.failed(error.to_string()) {
                    tracing::warn!("Listing the services failed: {error}.");
                }
            }
            Err(_) => {}
        }
        lines.send_written(out).await;
    }
}
