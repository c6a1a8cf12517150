//! The discovery worker: while idle it asks the server for a job every `every` (10 s, DESIGN
//! §2; the server's own collector is also woken when a job is queued), runs it with
//! [`scan::run`], and streams what it finds back in batches at least once a second. The
//! server's answer to a batch says whether to go on: a cancelled job stops within a second.
//!
//! A collector that stops mid-scan leaves the job running on the server; claiming again after
//! a restart hands it back with the position to resume from. One that never comes back has its
//! job failed by the server, with the results so far kept.

pub mod scan;
pub mod vendor;

use std::sync::Arc;
use std::time::Duration;

use plantwatch_shared::Client;
use plantwatch_shared::api::{ClaimedJob, ErrorCode, ResultBatch};
use plantwatch_shared::daemon::Problems;
use tokio::sync::{Notify, mpsc, watch};

use crate::sources::icmp::Icmp;

/// How the worker looks for work.
#[derive(Debug, Clone)]
pub struct DiscoveryOptions {
    /// Look for jobs at all.
    pub enabled: bool,
    /// Between claims while idle.
    pub every: Duration,
    /// Wakes the worker at once (the server's own collector, when a job is queued).
    pub wake: Option<Arc<Notify>>,
}

impl Default for DiscoveryOptions {
    fn default() -> Self {
        DiscoveryOptions {
            enabled: true,
            every: Duration::from_secs(10),
            wake: None,
        }
    }
}

/// Most devices per result batch.
const BATCH_DEVICES: usize = 200;
/// Longest wait between batches while scanning.
const BATCH_EVERY: Duration = Duration::from_secs(1);

/// Runs the worker until `stop` turns true.
pub async fn worker(
    client: Client,
    collector_id: i64,
    options: DiscoveryOptions,
    mut stop: watch::Receiver<bool>,
) {
    if !options.enabled {
        return;
    }
    let icmp = match Icmp::open() {
        Ok(icmp) => Some(Arc::new(icmp)),
        Err(error) => {
            tracing::warn!(%error, "Discovery cannot ping; it will find hosts by TCP and SNMP only.");
            None
        }
    };
    let wake = options.wake.clone().unwrap_or_default();
    let mut problems = Problems::default();
    loop {
        match client.claim_job(collector_id).await {
            Ok(claim) => {
                problems.recovered();
                if let Some(job) = claim.job {
                    run_job(&client, job, icmp.clone(), &mut stop).await;
                    if *stop.borrow() {
                        return;
                    }
                    // Another job may be waiting.
                    continue;
                }
            }
            Err(error) => {
                if !error.is(ErrorCode::PendingApproval) && problems.failed(error.to_string()) {
                    tracing::warn!(%error, "Cannot ask the server for discovery work.");
                }
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(options.every) => {}
            _ = wake.notified() => {}
            _ = stop.changed() => return,
        }
    }
}

/// Progress not yet sent.
#[derive(Debug, Default)]
struct Pending {
    /// The progress now and the devices not sent yet.
    batch: ResultBatch,
    /// The progress the server has acknowledged.
    acked_done: u64,
    acked_resume_at: u64,
}

async fn run_job(
    client: &Client,
    job: ClaimedJob,
    icmp: Option<Arc<Icmp>>,
    stop: &mut watch::Receiver<bool>,
) {
    let id = job.id;
    tracing::info!(
        job_id = id,
        targets = ?job.targets,
        resume_at = job.resume_at,
        "Discovery job started."
    );
    let started = std::time::Instant::now();
    let (events, mut received) = mpsc::channel(1_024);
    let mut scan = tokio::spawn(scan::run(job.clone(), icmp, events));
    let mut pending = Pending {
        batch: ResultBatch {
            done: job.resume_at,
            resume_at: job.resume_at,
            ..ResultBatch::default()
        },
        acked_done: job.resume_at,
        acked_resume_at: job.resume_at,
    };
    let mut found = 0u64;
    let mut tick = tokio::time::interval(BATCH_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let outcome: Result<(), String> = loop {
        tokio::select! {
            event = received.recv() => match event {
                Some(scan::Event::Scanned { done, resume_at, found: device }) => {
                    pending.batch.done = done;
                    pending.batch.resume_at = resume_at;
                    if let Some(device) = device {
                        found += 1;
                        pending.batch.devices.push(*device);
                    }
                    if pending.batch.devices.len() >= BATCH_DEVICES && !send(client, id, &mut pending, false).await {
                        scan.abort();
                        tracing::info!(job_id = id, "Discovery job cancelled.");
                        return;
                    }
                }
                None => {
                    break match (&mut scan).await {
                        Ok(result) => result,
                        Err(error) => Err(format!("the scan stopped: {error}")),
                    };
                }
            },
            _ = tick.tick() => {
                if !send(client, id, &mut pending, false).await {
                    scan.abort();
                    tracing::info!(job_id = id, "Discovery job cancelled.");
                    return;
                }
            }
            _ = stop.changed() => {
                // Stopping: what is known goes to the server; the job resumes at the next start.
                scan.abort();
                send(client, id, &mut pending, false).await;
                return;
            }
        }
    };
    pending.batch.error = outcome.err();
    // The last batch must arrive: try for a minute before leaving it to the server's watchdog.
    for attempt in 0..30u32 {
        if flush(client, id, &mut pending, true).await.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
        tracing::debug!(job_id = id, attempt, "Retrying the last discovery batch.");
    }
    tracing::info!(
        job_id = id,
        hosts = found,
        seconds = started.elapsed().as_secs_f64(),
        error = pending.batch.error.as_deref(),
        "Discovery job finished."
    );
}

/// Sends the pending batch; returns false when the server says stop. A failed send keeps the
/// devices for the next attempt.
async fn send(client: &Client, id: i64, pending: &mut Pending, finished: bool) -> bool {
    flush(client, id, pending, finished).await.unwrap_or(true)
}

/// Sends what is pending in batches of at most [`BATCH_DEVICES`] (devices pile up while the
/// server is unreachable, and it takes a bounded number per batch). All but the last batch
/// repeat the progress already acknowledged, so a crash between them never skips an address
/// whose device was not delivered. `Some(go on)` once all went, `None` when a send failed.
async fn flush(client: &Client, id: i64, pending: &mut Pending, finished: bool) -> Option<bool> {
    while pending.batch.devices.len() > BATCH_DEVICES {
        let chunk = ResultBatch {
            done: pending.acked_done,
            resume_at: pending.acked_resume_at,
            devices: pending.batch.devices[..BATCH_DEVICES].to_vec(),
            finished: false,
            error: None,
        };
        if !send_once(client, id, &chunk).await? {
            return Some(false);
        }
        pending.batch.devices.drain(..BATCH_DEVICES);
    }
    pending.batch.finished = finished;
    let go_on = send_once(client, id, &pending.batch).await?;
    pending.batch.devices.clear();
    pending.acked_done = pending.batch.done;
    pending.acked_resume_at = pending.batch.resume_at;
    Some(go_on)
}

/// One attempt: `Some(go on)` when the server answered.
async fn send_once(client: &Client, id: i64, batch: &ResultBatch) -> Option<bool> {
    match client.send_results(id, batch).await {
        Ok(ack) => Some(!ack.stop),
        // Gone, not ours, or refused as malformed: sending again would not help.
        Err(error) if matches!(error.status(), Some(400 | 403 | 404 | 413 | 422)) => {
            tracing::warn!(job_id = id, %error, "The server refused the discovery results; stopping.");
            Some(false)
        }
        Err(error) => {
            tracing::warn!(job_id = id, %error, "Sending discovery results failed; keeping them for the next attempt.");
            None
        }
    }
}
