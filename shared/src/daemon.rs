//! What the collector and agent daemons share: the enrollment state file, private files written
//! atomically, the machine id, and retry backoff with jitter.

use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::time::Duration;

use rand::Rng as _;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::api::{ComponentKind, JoinCode, RegisterRequest};
use crate::client::normalize_url;
use crate::{Client, Fingerprint, Secret};

/// Name of the enrollment state file inside the state directory.
pub const STATE_FILE: &str = "state.json";

/// What a daemon keeps after enrolling (mode 0600): who it is and how to reach the server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Enrollment {
    pub component_id: i64,
    pub kind: ComponentKind,
    pub name: String,
    pub machine_id: String,
    pub server_url: String,
    pub fingerprint: Option<Fingerprint>,
    pub api_key: Secret,
    #[serde(with = "time::serde::rfc3339")]
    pub enrolled_at: OffsetDateTime,
    /// The other servers of an active/standby pair (from the join code, or learnt since).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub alternates: Vec<crate::api::ha::ServerAddress>,
}

/// Failures of the daemon helpers, with the path they concern.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("{action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not a file plantwatch wrote, or it is damaged: {reason}")]
    Corrupt { path: PathBuf, reason: String },
    #[error(
        "not enrolled: {path} does not exist; run `enroll JOIN_CODE` first (or pass the \
         --state-dir it was enrolled with)"
    )]
    NotEnrolled { path: PathBuf },
    #[error("{path} is the enrollment of a component of kind {found}, not {expected}")]
    WrongKind {
        path: PathBuf,
        found: ComponentKind,
        expected: ComponentKind,
    },
    #[error(transparent)]
    Client(#[from] crate::Error),
    #[error(transparent)]
    JoinCode(crate::api::JoinCodeError),
    #[error("the host name is unknown; give this component a --name")]
    NoName,
}

pub(crate) fn io(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> DaemonError {
    let path = path.to_owned();
    move |source| DaemonError::Io {
        action,
        path,
        source,
    }
}

/// Creates the state directory if it does not exist, limited to its owner (mode 0700; on
/// Windows SYSTEM and Administrators only).
pub fn prepare_dir(dir: &Path) -> Result<(), DaemonError> {
    if !dir.exists() {
        std::fs::create_dir_all(dir).map_err(io("creating", dir))?;
        crate::private::restrict_dir(dir).map_err(io("restricting", dir))?;
    }
    Ok(())
}

/// Writes `bytes` to `path` readable by the owner only, atomically: a temporary file beside it,
/// flushed to disk, then renamed over it, so a crash leaves the old file or the new one.
pub fn write_private(path: &Path, bytes: &[u8]) -> Result<(), DaemonError> {
    let temporary = path.with_extension("tmp");
    let _ = std::fs::remove_file(&temporary);
    let mut file = crate::private::private_options()
        .write(true)
        .create_new(true)
        .open(&temporary)
        .map_err(io("creating", &temporary))?;
    file.write_all(bytes).map_err(io("writing", &temporary))?;
    file.sync_all().map_err(io("flushing", &temporary))?;
    std::fs::rename(&temporary, path).map_err(io("replacing", path))
}

/// Reads a JSON file a daemon keeps, with its bytes as read; `None` when there is none.
pub fn read_json<T: serde::de::DeserializeOwned>(
    path: &Path,
) -> Result<Option<(T, Vec<u8>)>, DaemonError> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io("reading", path)(e)),
    };
    let value = serde_json::from_slice(&bytes).map_err(|e| DaemonError::Corrupt {
        path: path.to_owned(),
        reason: e.to_string(),
    })?;
    Ok(Some((value, bytes)))
}

/// Writes `value` as pretty JSON to `path`, privately and atomically.
pub fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<(), DaemonError> {
    let json = serde_json::to_vec_pretty(value).map_err(|e| DaemonError::Corrupt {
        path: path.to_owned(),
        reason: e.to_string(),
    })?;
    write_private(path, &json)
}

impl Enrollment {
    /// Reads the state file in `dir`, checking it belongs to a component of `kind`.
    pub fn load(dir: &Path, kind: ComponentKind) -> Result<Enrollment, DaemonError> {
        let path = dir.join(STATE_FILE);
        let Some((state, _)) = read_json::<Enrollment>(&path)? else {
            return Err(DaemonError::NotEnrolled { path });
        };
        if state.kind != kind {
            return Err(DaemonError::WrongKind {
                path,
                found: state.kind,
                expected: kind,
            });
        }
        Ok(state)
    }

    /// Writes the state file into `dir` (mode 0600).
    pub fn save(&self, dir: &Path) -> Result<(), DaemonError> {
        prepare_dir(dir)?;
        write_json(&dir.join(STATE_FILE), self)
    }

    /// A client of the server this component enrolled with, authenticated by its key.
    pub fn client(&self) -> crate::Result<Client> {
        Client::new(&self.server_url, self.fingerprint)?
            .with_alternates(&self.alternates)
            .map(|client| client.with_api_key(self.api_key.clone()))
    }
}

/// Registers with the server named in `code`. The certificate is pinned from the first byte:
/// the fingerprint comes with the code, so there is no trust-on-first-use question.
pub async fn enroll(
    code: &JoinCode,
    kind: ComponentKind,
    name: &str,
    machine_id: &str,
    version: &str,
) -> Result<Enrollment, DaemonError> {
    let client = Client::new(&code.url, code.fingerprint)?.with_alternates(&code.alternates)?;
    let registration = client
        .register(&RegisterRequest {
            token: code.token.clone(),
            kind,
            name: name.to_owned(),
            machine_id: machine_id.to_owned(),
            version: version.to_owned(),
            hostname: hostname(),
        })
        .await?;
    Ok(Enrollment {
        component_id: registration.component_id,
        kind,
        name: name.to_owned(),
        machine_id: machine_id.to_owned(),
        server_url: normalize_url(&code.url)?,
        fingerprint: code.fingerprint,
        api_key: registration.api_key,
        enrolled_at: OffsetDateTime::now_utc(),
        alternates: code.alternates.clone(),
    })
}

/// How often a daemon asks its server which servers make up its pair.
const PAIR_CHECK_EVERY: Duration = Duration::from_secs(300);

/// Asks the server (`GET /healthz`) which servers make up its active/standby pair, at start
/// and every five minutes, so a daemon enrolled before the standby existed learns it, and
/// saves what it learns into the state file in `dir`. Runs until the runtime stops.
pub async fn keep_pair(client: Client, dir: PathBuf, mut enrollment: Enrollment) {
    loop {
        if let Ok(health) = client.health().await
            && let Some(ha) = health.ha
        {
            client.learn(&ha);
            let alternates = ha.others_than(&enrollment.server_url);
            if alternates != enrollment.alternates {
                tracing::info!(
                    servers = ?alternates.iter().map(|s| s.url.as_str()).collect::<Vec<_>>(),
                    "Learnt the other servers of the pair."
                );
                enrollment.alternates = alternates;
                if let Err(error) = enrollment.save(&dir) {
                    tracing::warn!(%error, "Saving the servers of the pair failed.");
                }
            }
        }
        tokio::time::sleep(PAIR_CHECK_EVERY).await;
    }
}

/// This machine's stable id: `/etc/machine-id` (systemd), else D-Bus's, else one generated
/// once and kept in `dir`.
pub fn machine_id(dir: &Path) -> Result<String, DaemonError> {
    for path in ["/etc/machine-id", "/var/lib/dbus/machine-id"] {
        if let Ok(text) = std::fs::read_to_string(path) {
            let id = text.trim();
            if !id.is_empty() {
                return Ok(id.to_owned());
            }
        }
    }
    let path = dir.join("machine-id");
    if let Ok(text) = std::fs::read_to_string(&path)
        && !text.trim().is_empty()
    {
        return Ok(text.trim().to_owned());
    }
    let id = hex::encode(rand::rng().random::<[u8; 16]>());
    prepare_dir(dir)?;
    write_private(&path, format!("{id}\n").as_bytes())?;
    Ok(id)
}

/// The kernel's host name.
pub fn hostname() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|name| name.trim().to_owned())
        .filter(|name| !name.is_empty())
}

/// Log output format of a daemon.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Pretty,
    Json,
}

/// The arguments of `enroll`, the same for collectors and agents.
#[derive(Debug, Clone, clap::Args)]
pub struct EnrollArgs {
    /// The join code from `plantwatch tokens create`; read from standard input when omitted or
    /// `-`, so it stays out of the process list.
    pub join_code: Option<String>,
    /// Name shown on the server [default: the host name].
    #[arg(long)]
    pub name: Option<String>,
    /// Machine id [default: /etc/machine-id]. Enrolling again with the same one replaces the
    /// key of the same component.
    #[arg(long, env = "PLANTWATCH_MACHINE_ID")]
    pub machine_id: Option<String>,
}

/// `enroll`: reads the join code, registers, saves the state file in `dir`, and says what
/// happens next.
pub async fn enroll_command(
    dir: &Path,
    kind: ComponentKind,
    args: EnrollArgs,
) -> Result<Enrollment, DaemonError> {
    let code = read_join_code(args.join_code)?;
    let (name, machine_id) = identity(dir, args.name, args.machine_id)?;
    let enrollment = enroll(&code, kind, &name, &machine_id, env!("CARGO_PKG_VERSION")).await?;
    enrollment.save(dir)?;
    println!(
        "Enrolled as {kind} {} ({name}) with {}.",
        enrollment.component_id, enrollment.server_url
    );
    println!(
        "Waiting for approval: an admin runs `plantwatch {kind}s approve {}`, then start \
         `plantwatch-{kind} run`.",
        enrollment.component_id
    );
    Ok(enrollment)
}

/// The `main` of a daemon binary: logging, the runtime, `command`, and the exit code (errors
/// on standard error).
pub fn main<F>(format: LogFormat, command: F) -> std::process::ExitCode
where
    F: std::future::Future<Output = anyhow::Result<()>>,
{
    init_logging(format);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: starting the async runtime: {error}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(command) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Reads the join code from the argument, or standard input.
pub fn read_join_code(given: Option<String>) -> Result<JoinCode, DaemonError> {
    let text = match given {
        Some(text) if text != "-" => text,
        _ => {
            let mut text = String::new();
            std::io::stdin()
                .take(64 * 1024)
                .read_to_string(&mut text)
                .map_err(io(
                    "reading the join code from",
                    Path::new("standard input"),
                ))?;
            text
        }
    };
    text.trim().parse().map_err(DaemonError::JoinCode)
}

/// The name and machine id to enroll with.
pub fn identity(
    state_dir: &Path,
    name: Option<String>,
    given_machine_id: Option<String>,
) -> Result<(String, String), DaemonError> {
    let name = match name.or_else(hostname) {
        Some(name) => name,
        None => return Err(DaemonError::NoName),
    };
    let id = match given_machine_id {
        Some(id) => id,
        None => machine_id(state_dir)?,
    };
    Ok((name, id))
}

/// Completes on SIGTERM or SIGINT.
#[cfg(unix)]
pub fn shutdown_signal() -> Result<impl std::future::Future<Output = ()>, DaemonError> {
    use tokio::signal::unix::{SignalKind, signal};
    let signals = Path::new("signal handlers");
    let mut terminate = signal(SignalKind::terminate()).map_err(io("installing", signals))?;
    let mut interrupt = signal(SignalKind::interrupt()).map_err(io("installing", signals))?;
    Ok(async move {
        tokio::select! {
            _ = terminate.recv() => tracing::info!("SIGTERM received, stopping."),
            _ = interrupt.recv() => tracing::info!("SIGINT received, stopping."),
        }
    })
}

/// Completes on Ctrl+C or Ctrl+Break (a console run; a service stops through the Service
/// Control Manager instead).
#[cfg(windows)]
pub fn shutdown_signal() -> Result<impl std::future::Future<Output = ()>, DaemonError> {
    let signals = Path::new("console handlers");
    let mut c = tokio::signal::windows::ctrl_c().map_err(io("installing", signals))?;
    let mut brk = tokio::signal::windows::ctrl_break().map_err(io("installing", signals))?;
    Ok(async move {
        tokio::select! {
            _ = c.recv() => tracing::info!("Ctrl+C received, stopping."),
            _ = brk.recv() => tracing::info!("Ctrl+Break received, stopping."),
        }
    })
}

/// Whether log lines get colours: only on a terminal, and not under `NO_COLOR` (journald and
/// log files must not collect escape sequences).
pub fn log_colours(on_terminal: bool, no_color: bool) -> bool {
    on_terminal && !no_color
}

/// Sets up `tracing` on standard error.
pub fn init_logging(format: LogFormat) {
    use std::io::IsTerminal as _;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(log_colours(
            std::io::stderr().is_terminal(),
            std::env::var_os("NO_COLOR").is_some(),
        ))
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Pretty => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}
/// Exponential backoff with jitter for reconnecting: 1 s, 2 s, 4 s … up to `max`, each delay
/// drawn between half and all of that, so many daemons that lost the server at once do not
/// come back in step.
#[derive(Debug, Clone)]
pub struct Backoff {
    base: Duration,
    max: Duration,
    failures: u32,
}

impl Backoff {
    pub fn new(base: Duration, max: Duration) -> Self {
        Backoff {
            base,
            max,
            failures: 0,
        }
    }

    /// The delay before the next attempt after one more failure.
    pub fn next_delay(&mut self) -> Duration {
        let ceiling = self
            .base
            .saturating_mul(1 << self.failures.min(16))
            .min(self.max);
        self.failures = self.failures.saturating_add(1);
        let half = ceiling / 2;
        half + ceiling
            .saturating_sub(half)
            .mul_f64(rand::rng().random::<f64>())
    }

    /// Failures since the last success.
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// Back to the shortest delay after a success.
    pub fn reset(&mut self) {
        self.failures = 0;
    }
}

/// Most recent problems of a daemon, for its status file and reports; and whether a problem is
/// new, so that a daemon that cannot reach its server logs why once, not every retry.
#[derive(Debug, Clone, Default)]
pub struct Problems {
    current: Option<String>,
    recent: std::collections::VecDeque<String>,
}

impl Problems {
    /// Most problems kept.
    pub const KEEP: usize = crate::api::MAX_REPORT_ERRORS;

    /// Records a failure; true when it differs from the one before (worth a log line).
    pub fn failed(&mut self, problem: impl Into<String>) -> bool {
        let problem = Self::bounded(problem.into());
        let new = self.current.as_deref() != Some(problem.as_str());
        if new {
            self.remember(problem.clone());
        }
        self.current = Some(problem);
        new
    }

    /// Records a problem beside the connection's (a receiver's port that cannot be opened):
    /// kept among the recent ones once, not at every retry.
    pub fn note(&mut self, problem: impl Into<String>) {
        let problem = Self::bounded(problem.into());
        if self.recent.back() != Some(&problem) {
            self.remember(problem);
        }
    }

    fn remember(&mut self, problem: String) {
        if self.recent.len() == Self::KEEP {
            self.recent.pop_front();
        }
        self.recent.push_back(problem);
    }

    fn bounded(mut problem: String) -> String {
        if problem.len() > crate::api::MAX_REPORT_ERROR_LEN {
            let mut end = crate::api::MAX_REPORT_ERROR_LEN;
            while !problem.is_char_boundary(end) {
                end -= 1;
            }
            problem.truncate(end);
        }
        problem
    }

    /// Records a success; true when it ends a failure (worth a log line).
    pub fn recovered(&mut self) -> bool {
        self.current.take().is_some()
    }

    /// The problem now, if any.
    pub fn current(&self) -> Option<&str> {
        self.current.as_deref()
    }

    /// The most recent distinct problems, oldest first.
    pub fn recent(&self) -> Vec<String> {
        self.recent.iter().cloned().collect()
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn logs_are_coloured_only_on_a_terminal_without_no_color() {
        assert!(log_colours(true, false));
        assert!(!log_colours(false, false));
        assert!(!log_colours(true, true));
    }

    use super::*;

    #[test]
    fn problems_are_reported_once_until_they_change_and_kept_bounded() {
        let mut problems = Problems::default();
        assert!(problems.failed("connection refused"));
        assert!(!problems.failed("connection refused"));
        assert_eq!(problems.current(), Some("connection refused"));
        assert!(problems.recovered());
        assert!(!problems.recovered());
        for i in 0..30 {
            problems.failed(format!("error {i}"));
        }
        let recent = problems.recent();
        assert_eq!(recent.len(), Problems::KEEP);
        assert_eq!(recent.last().map(String::as_str), Some("error 29"));
        problems.failed("x".repeat(2000));
        assert_eq!(
            problems.current().map(str::len),
            Some(crate::api::MAX_REPORT_ERROR_LEN)
        );
    }

    #[test]
    fn backoff_grows_with_jitter_up_to_the_ceiling_and_resets() {
        let mut backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(60));
        let delays: Vec<Duration> = (0..10).map(|_| backoff.next_delay()).collect();
        assert!(delays[0] >= Duration::from_millis(500) && delays[0] <= Duration::from_secs(1));
        assert!(delays[3] >= Duration::from_secs(4) && delays[3] <= Duration::from_secs(8));
        for delay in &delays[6..] {
            assert!(*delay >= Duration::from_secs(30) && *delay <= Duration::from_secs(60));
        }
        assert_eq!(backoff.failures(), 10);
        backoff.reset();
        assert!(backoff.next_delay() <= Duration::from_secs(1));
    }

    #[test]
    fn state_files_are_private_and_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let state_dir = dir.path().join("state");
        let state = Enrollment {
            component_id: 7,
            kind: ComponentKind::Collector,
            name: "north".into(),
            machine_id: "m1".into(),
            server_url: "https://127.0.0.1:8443".into(),
            fingerprint: Some(Fingerprint::of_der(b"x")),
            api_key: Secret::new("pwk_7_secret"),
            enrolled_at: OffsetDateTime::UNIX_EPOCH,
            alternates: Vec::new(),
        };
        state.save(&state_dir).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode(&state_dir.join(STATE_FILE)), 0o600);
            assert_eq!(mode(&state_dir), 0o700);
        }
        #[cfg(windows)]
        {
            let dacl = crate::private::windows::dacl_of(&state_dir).unwrap();
            assert!(
                dacl.starts_with("D:P") && !dacl.contains(";;;BU)"),
                "{dacl}"
            );
        }
        assert_eq!(
            Enrollment::load(&state_dir, ComponentKind::Collector).unwrap(),
            state
        );
        let err = Enrollment::load(&state_dir, ComponentKind::Agent).unwrap_err();
        assert!(
            err.to_string().contains("kind collector, not agent"),
            "{err}"
        );
        let err = Enrollment::load(dir.path(), ComponentKind::Agent).unwrap_err();
        assert!(err.to_string().contains("run `enroll"), "{err}");
        std::fs::write(state_dir.join(STATE_FILE), b"{").unwrap();
        let err = Enrollment::load(&state_dir, ComponentKind::Collector).unwrap_err();
        assert!(err.to_string().contains("damaged"), "{err}");
    }
}
