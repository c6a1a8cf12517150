//! The collector daemon: pulls its configuration every 10 s, keeps the last good one on disk,
//! reports its status on every change and every 60 s, and retries with backoff and jitter when
//! the server cannot be reached, logging why once per new problem.

use std::future::Future;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use plantwatch_shared::api::OutboxStatus;
use plantwatch_shared::api::{CollectorReport, ErrorCode};
use plantwatch_shared::client::ConfigPull;
use plantwatch_shared::daemon::{Backoff, Enrollment, Problems, prepare_dir};
use plantwatch_shared::push::{PushOptions, Pusher};
use time::OffsetDateTime;
use tokio::time::Instant;

use crate::sources::checks::Checker;
use crate::sources::events::EventReceivers;
use crate::sources::vsphere::{Reporter as VsphereReporter, Vsphere};
use crate::sources::{PollOptions, Poller};
use crate::store::{self, HeldConfig, Status};

/// How the daemon paces itself.
#[derive(Debug, Clone)]
pub struct Options {
    /// Where the configuration and status files live.
    pub state_dir: PathBuf,
    /// Interval of configuration pulls (DESIGN §2: 10 s).
    pub pull_every: Duration,
    /// Interval of status reports when nothing changes (DESIGN §2: 60 s).
    pub report_every: Duration,
    /// Shortest and longest wait between attempts while the server cannot be reached.
    pub retry_min: Duration,
    pub retry_max: Duration,
    /// Keep the last good configuration on disk, to start with it while the server is down.
    /// Off for the server's in-process collector: the server is up whenever it runs, and its
    /// disk must not hold the credentials that the vault keeps encrypted.
    pub keep_config: bool,
    /// Ask the server which servers make up its active/standby pair, and follow them. Off
    /// for the server's in-process collector, which only ever talks to its own server.
    pub follow_pair: bool,
    /// Polling: SNMP concurrency, timeouts, ICMP.
    pub poll: PollOptions,
    /// Batching, outbox bounds and replay pace of the metric push.
    pub push: PushOptions,
    /// Discovery: how often to ask for a scan job.
    pub discovery: crate::discovery::DiscoveryOptions,
}

impl Options {
    /// The defaults, keeping files in `state_dir`.
    pub fn new(state_dir: PathBuf) -> Self {
        Options {
            state_dir: state_dir.clone(),
            pull_every: Duration::from_secs(10),
            report_every: Duration::from_secs(60),
            retry_min: Duration::from_secs(1),
            retry_max: Duration::from_secs(30),
            keep_config: true,
            follow_pair: true,
            poll: PollOptions::default(),
            push: PushOptions::new(state_dir.join("outbox")),
            discovery: crate::discovery::DiscoveryOptions::default(),
        }
    }
}

/// How often certificate findings are posted to the server (the latest per check).
const FINDINGS_EVERY: Duration = Duration::from_secs(10);

/// What one pull led to.
enum Outcome {
    /// Talked to the server; `changed` when a new configuration came.
    Contact { changed: bool },
    /// The server knows the collector but an admin has not approved it yet.
    Pending,
    /// Could not reach the server or was refused.
    Failed(String),
}

struct Daemon {
    enrollment: Enrollment,
    client: plantwatch_shared::Client,
    options: Options,
    held: Option<HeldConfig>,
    status: Status,
    problems: Problems,
    report_due: bool,
    last_report: Option<Instant>,
    poller: Poller,
    checker: Checker,
    receivers: EventReceivers,
    vsphere: Vsphere,
    outbox: std::sync::Arc<std::sync::Mutex<OutboxStatus>>,
}

/// Runs the collector until `shutdown` completes.
pub async fn run(
    enrollment: Enrollment,
    options: Options,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    prepare_dir(&options.state_dir)?;
    let client = enrollment
        .client()
        .context("setting up the connection to the server")?;
    let client = if options.follow_pair {
        client
    } else {
        client.alone()
    };
    let held = match store::load_config(&options.state_dir) {
        Ok(held) => held,
        Err(error) => {
            tracing::warn!(
                error = format!("{error:#}"),
                "Ignoring the saved configuration."
            );
            None
        }
    };
    match &held {
        Some(held) => tracing::info!(
            targets = held.config.targets.len(),
            sha256 = %held.sha256,
            "Starting with the saved configuration."
        ),
        None => tracing::info!("No saved configuration yet; waiting for the server's."),
    }
    let pair = options.follow_pair.then(|| {
        tokio::spawn(plantwatch_shared::daemon::keep_pair(
            client.clone(),
            options.state_dir.clone(),
            enrollment.clone(),
        ))
    });
    let (pusher, lines, outbox) =
        Pusher::spawn(client.clone(), options.push.clone()).context("opening the metric outbox")?;
    let (stop_discovery, discovery_stop) = tokio::sync::watch::channel(false);
    let discovery = tokio::spawn(crate::discovery::worker(
        client.clone(),
        enrollment.component_id,
        options.discovery.clone(),
        discovery_stop,
    ));
    let (mut checker, findings) = Checker::new(
        lines.clone(),
        crate::sources::checks::tls::system_roots(),
        options.poll.enabled,
    );
    let reporter = tokio::spawn(crate::sources::checks::report_findings(
        client.clone(),
        enrollment.component_id,
        findings,
        FINDINGS_EVERY,
    ));
    let mut receivers = EventReceivers::new(lines.clone());
    let mut vsphere = Vsphere::new(
        lines.clone(),
        Some(VsphereReporter {
            client: client.clone(),
            collector_id: enrollment.component_id,
        }),
        options.poll.enabled,
    );
    let mut poller = Poller::new(lines, &options.poll);
    if let Some(held) = &held {
        poller.apply(&held.config);
        vsphere.apply(&held.config);
        checker.apply(&held.config);
        receivers.apply(&held.config).await;
    }
    let status = Status {
        component_id: enrollment.component_id,
        server_url: enrollment.server_url.clone(),
        state: "starting".into(),
        config_sha256: held.as_ref().map(|h| h.sha256.clone()),
        target_count: held.as_ref().map_or(0, |h| h.config.targets.len()),
        pid: std::process::id(),
        ..Status::default()
    };
    let mut daemon = Daemon {
        enrollment,
        client,
        options,
        held,
        status,
        problems: Problems::default(),
        report_due: true,
        last_report: None,
        poller,
        checker,
        receivers,
        vsphere,
        outbox,
    };
    daemon.save_status();
    tokio::pin!(shutdown);
    let mut backoff = Backoff::new(daemon.options.retry_min, daemon.options.retry_max);
    loop {
        let wait = match daemon.pull().await {
            Outcome::Contact { changed } => {
                backoff.reset();
                if let Some(problem) = daemon.receivers.retry().await {
                    daemon.problems.note(problem);
                }
                if daemon.problems.recovered() {
                    tracing::info!(server = %daemon.client.base_url(), "Connected to the server again.");
                }
                daemon.status.state = "connected".into();
                daemon.status.server_url = daemon.client.base_url();
                daemon.status.last_error = None;
                daemon.status.last_contact_at = Some(OffsetDateTime::now_utc());
                if changed || daemon.report_is_due() {
                    daemon.report().await;
                }
                daemon.options.pull_every
            }
            Outcome::Pending => {
                backoff.reset();
                if daemon.problems.failed("waiting for approval") {
                    tracing::warn!(
                        component_id = daemon.enrollment.component_id,
                        "Waiting for an admin to approve this collector (plantwatch collectors approve {}).",
                        daemon.enrollment.component_id
                    );
                }
                daemon.status.state = "waiting for approval".into();
                daemon.status.last_contact_at = Some(OffsetDateTime::now_utc());
                daemon.options.pull_every
            }
            Outcome::Failed(problem) => {
                let wait = backoff.next_delay();
                if daemon.problems.failed(problem.clone()) {
                    tracing::warn!(
                        server = %daemon.client.base_url(),
                        retry_in_ms = wait.as_millis() as u64,
                        "Cannot get the configuration: {problem}"
                    );
                } else {
                    tracing::debug!(
                        retry_in_ms = wait.as_millis() as u64,
                        "Still failing: {problem}"
                    );
                }
                daemon.status.state = "unreachable".into();
                daemon.status.last_error = Some(problem);
                wait
            }
        };
        daemon.save_status();
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = &mut shutdown => break,
        }
    }
    // Stop polling and scanning, then let the pusher put what it holds into the outbox.
    let _ = stop_discovery.send(true);
    let _ = discovery.await;
    daemon.poller.stop();
    daemon.checker.stop();
    daemon.receivers.stop();
    daemon.vsphere.stop();
    reporter.abort();
    if let Some(pair) = pair {
        pair.abort();
    }
    pusher.stop().await;
    daemon.status.state = "stopped".into();
    daemon.save_status();
    tracing::info!("Collector stopped.");
    Ok(())
}

impl Daemon {
    async fn pull(&mut self) -> Outcome {
        let id = self.enrollment.component_id;
        let held = self.held.as_ref().map(|h| h.sha256.as_str());
        match self.client.collector_config(id, held).await {
            Ok(ConfigPull::NotModified) => Outcome::Contact { changed: false },
            Ok(ConfigPull::Changed {
                sha256,
                body,
                config,
            }) => {
                let saved = if self.options.keep_config {
                    store::save_config(&self.options.state_dir, &body)
                } else {
                    Ok(())
                };
                if let Err(error) = saved {
                    // Polling goes on with the new configuration in memory; a restart before
                    // the next successful save starts from the older file.
                    tracing::error!(
                        error = format!("{error:#}"),
                        "Saving the configuration failed."
                    );
                    self.problems
                        .failed(format!("saving the configuration: {error:#}"));
                }
                tracing::info!(targets = config.targets.len(), %sha256, "New configuration.");
                self.poller.apply(&config);
                self.vsphere.apply(&config);
                self.checker.apply(&config);
                self.receivers.apply(&config).await;
                self.status.config_sha256 = Some(sha256.clone());
                self.status.target_count = config.targets.len();
                self.status.config_received_at = Some(OffsetDateTime::now_utc());
                self.held = Some(HeldConfig {
                    sha256,
                    config: *config,
                });
                self.report_due = true;
                Outcome::Contact { changed: true }
            }
            Err(error) if error.is(ErrorCode::PendingApproval) => Outcome::Pending,
            Err(error) => Outcome::Failed(error.to_string()),
        }
    }

    fn report_is_due(&self) -> bool {
        self.report_due
            || self
                .last_report
                .is_none_or(|at| at.elapsed() >= self.options.report_every)
    }

    async fn report(&mut self) {
        // A vCenter refusing the login says so where the collector's problems are read.
        for problem in self.vsphere.take_problems() {
            self.problems.note(problem);
        }
        let report = CollectorReport {
            version: env!("CARGO_PKG_VERSION").to_owned(),
            config_sha256: self.held.as_ref().map(|h| h.sha256.clone()),
            target_count: self
                .held
                .as_ref()
                .map_or(0, |h| h.config.targets.len() as u32),
            errors: self.problems.recent(),
            outbox: Some(self.outbox_status()),
            // Once receivers ran (or run): a collector that never received says nothing.
            events: Some(self.receivers.counts().snapshot()).filter(|counts| {
                counts.received > 0
                    || self
                        .held
                        .as_ref()
                        .is_some_and(|h| !h.config.receivers.is_empty())
            }),
        };
        match self
            .client
            .report(self.enrollment.component_id, &report)
            .await
        {
            Ok(()) => {
                self.report_due = false;
                self.last_report = Some(Instant::now());
                self.status.last_report_at = Some(OffsetDateTime::now_utc());
            }
            Err(error) => {
                tracing::warn!(%error, "Sending the status report failed; retrying with the next pull.");
            }
        }
    }

    fn outbox_status(&self) -> OutboxStatus {
        self.outbox.lock().map(|s| *s).unwrap_or_default()
    }

    fn save_status(&mut self) {
        self.status.updated_at = Some(OffsetDateTime::now_utc());
        self.status.outbox = Some(self.outbox_status());
        if let Err(error) = store::save_status(&self.options.state_dir, &self.status) {
            tracing::warn!(
                error = format!("{error:#}"),
                "Writing the status file failed."
            );
        }
    }
}
