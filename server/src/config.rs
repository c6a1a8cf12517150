//! Server configuration: command-line flags over `PLANTWATCH_*` environment variables over a
//! TOML file over built-in defaults. `plantwatch-server.sample.toml` lists every key with its
//! default (a test holds the two together).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use clap::{Args, Parser, Subcommand, ValueEnum};
use plantwatch_shared::Secret;
use serde::{Deserialize, Serialize};

/// Environment variable of the `GET /metrics` scrape token.
pub const SCRAPE_TOKEN_ENV: &str = "PLANTWATCH_METRICS_SCRAPE_TOKEN";
/// Environment variable of the remote engine's basic-auth password.
pub const REMOTE_PASSWORD_ENV: &str = "PLANTWATCH_METRICS_REMOTE_PASSWORD";
/// Environment variable of the remote engine's bearer token.
pub const REMOTE_BEARER_ENV: &str = "PLANTWATCH_METRICS_REMOTE_BEARER_TOKEN";

/// Command line of `plantwatch-server`.
#[derive(Debug, Parser)]
#[command(
    name = "plantwatch-server",
    version,
    about = "The plantwatch server: HTTPS API, users, inventory and metrics on embedded SQLite."
)]
pub struct Cli {
    #[command(flatten)]
    pub options: Options,
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// What the binary does.
#[derive(Debug, Clone, Copy, Subcommand, PartialEq, Eq)]
pub enum Command {
    /// Run the server (the default).
    Serve,
    /// Print the SHA-256 fingerprint of the server's TLS certificate, for clients to pin.
    Fingerprint,
    /// Manage the credentials vault.
    #[command(subcommand)]
    Vault(VaultCommand),
    /// Inspect the metric store.
    #[command(subcommand)]
    Metrics(MetricsCommand),
}

/// `plantwatch-server metrics …`.
#[derive(Debug, Clone, Copy, Subcommand, PartialEq, Eq)]
pub enum MetricsCommand {
    /// Print series, samples, bytes per sample, disk use and each resolution's chunks. Reads
    /// metrics.db read-only: the server may be running.
    Stats {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
}

/// `plantwatch-server vault …`.
#[derive(Debug, Clone, Copy, Subcommand, PartialEq, Eq)]
pub enum VaultCommand {
    /// Re-encrypt every secret under a new key, in one transaction. Stop the server first.
    Rotate,
}

/// Flags shared by every subcommand; each can also come from its environment variable.
#[derive(Debug, Clone, Default, Args)]
pub struct Options {
    /// TOML configuration file.
    #[arg(long, env = "PLANTWATCH_CONFIG", global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Directory of the database, TLS certificate and keys [default: ./plantwatch-data].
    #[arg(long, env = "PLANTWATCH_DATA_DIR", global = true, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Address and port to listen on [default: 0.0.0.0:8443].
    #[arg(long, env = "PLANTWATCH_LISTEN", value_name = "ADDR:PORT")]
    pub listen: Option<SocketAddr>,
    /// PEM certificate (chain) to serve instead of the generated self-signed one.
    #[arg(
        long,
        env = "PLANTWATCH_TLS_CERT",
        global = true,
        requires = "tls_key",
        value_name = "FILE"
    )]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert.
    #[arg(
        long,
        env = "PLANTWATCH_TLS_KEY",
        global = true,
        requires = "tls_cert",
        value_name = "FILE"
    )]
    pub tls_key: Option<PathBuf>,
    /// Serve plain HTTP. Refused unless listening on a loopback address.
    #[arg(long, env = "PLANTWATCH_INSECURE_HTTP")]
    pub insecure_http: bool,
    /// Log format [default: pretty].
    #[arg(long, env = "PLANTWATCH_LOG_FORMAT", value_enum)]
    pub log_format: Option<LogFormat>,
    /// Seconds without a request after which a session ends [default: 43200].
    #[arg(
        long,
        env = "PLANTWATCH_SESSION_IDLE_TIMEOUT_SECS",
        value_name = "SECS"
    )]
    pub session_idle_timeout_secs: Option<u64>,
    /// Seconds after login at which a session ends however busy it is [default: 604800].
    #[arg(long, env = "PLANTWATCH_SESSION_MAX_AGE_SECS", value_name = "SECS")]
    pub session_max_age_secs: Option<u64>,
    /// Failed logins per user or per source address that trigger the lock-out [default: 5].
    #[arg(long, env = "PLANTWATCH_LOGIN_MAX_FAILURES", value_name = "N")]
    pub login_max_failures: Option<u32>,
    /// Window over which failed logins are counted, and the lock-out lasts [default: 60].
    #[arg(long, env = "PLANTWATCH_LOGIN_WINDOW_SECS", value_name = "SECS")]
    pub login_window_secs: Option<u64>,
    /// Largest accepted request body in bytes [default: 1048576].
    #[arg(long, env = "PLANTWATCH_MAX_BODY_BYTES", value_name = "BYTES")]
    pub max_body_bytes: Option<usize>,
    /// How often the server's local collector pushes its metrics, in seconds [default: 10].
    #[arg(long, env = "PLANTWATCH_PUSH_INTERVAL_SECS", value_name = "SECS")]
    pub push_interval_secs: Option<u64>,
    /// Whether the server's local collector polls the nodes assigned to it [default: true].
    /// `false` on a server that must not send to plant networks itself.
    #[arg(long, env = "PLANTWATCH_LOCAL_POLLING", value_name = "BOOL")]
    pub local_polling: Option<bool>,
    /// Whether the server's local collector runs discovery scans [default: true]. `false` on a
    /// server that must not scan networks itself: scans then need a remote collector.
    #[arg(long, env = "PLANTWATCH_LOCAL_DISCOVERY", value_name = "BOOL")]
    pub local_discovery: Option<bool>,
    /// How often the alert evaluator runs, in seconds [default: 10].
    #[arg(long, env = "PLANTWATCH_ALERT_INTERVAL_SECS", value_name = "SECS")]
    pub alert_interval_secs: Option<u64>,
    /// Time zone of recurring maintenance windows, e.g. `Europe/Berlin` [default: the
    /// system's].
    #[arg(long, env = "PLANTWATCH_TIME_ZONE", value_name = "ZONE")]
    pub time_zone: Option<String>,
    /// Days raw samples are kept in metrics.db [default: 30].
    #[arg(
        long,
        env = "PLANTWATCH_METRICS_RAW_RETENTION_DAYS",
        value_name = "DAYS"
    )]
    pub metrics_raw_retention_days: Option<u32>,
    /// Days the 5-minute rollups are kept [default: 400].
    #[arg(
        long,
        env = "PLANTWATCH_METRICS_5M_RETENTION_DAYS",
        value_name = "DAYS"
    )]
    pub metrics_5m_retention_days: Option<u32>,
    /// Days the 1-hour rollups are kept [default: 1826, five years].
    #[arg(
        long,
        env = "PLANTWATCH_METRICS_1H_RETENTION_DAYS",
        value_name = "DAYS"
    )]
    pub metrics_1h_retention_days: Option<u32>,
    /// Size cap of metrics.db in megabytes; over it the oldest data goes first, raw samples
    /// before rollups [default: 0, no cap].
    #[arg(long, env = "PLANTWATCH_METRICS_MAX_SIZE_MB", value_name = "MB")]
    pub metrics_max_size_mb: Option<u64>,
    /// Open connections the HTTPS listener keeps; past it new ones are closed (never more
    /// than the open-file limit allows) [default: 4096].
    #[arg(long, env = "PLANTWATCH_MAX_CONNECTIONS", value_name = "N")]
    pub max_connections: Option<u64>,
    /// Seconds a client may take to send a request's headers, and to start its next request on
    /// a kept-alive connection, before the connection is closed [default: 15].
    #[arg(long, env = "PLANTWATCH_HTTP_HEADER_TIMEOUT_SECS", value_name = "SECS")]
    pub http_header_timeout_secs: Option<u64>,
    /// Seconds a connection may go without a byte either way (HTTP/2 ones and clients that
    /// stop reading included) before it is closed [default: 120].
    #[arg(long, env = "PLANTWATCH_HTTP_IDLE_TIMEOUT_SECS", value_name = "SECS")]
    pub http_idle_timeout_secs: Option<u64>,
    /// Series one node may have; samples that would make more are refused (400
    /// `series_limit`) [default: 20000].
    #[arg(long, env = "PLANTWATCH_MAX_SERIES_PER_NODE", value_name = "N")]
    pub max_series_per_node: Option<u64>,
    /// New series one collector or agent may create per hour [default: 1000000].
    #[arg(long, env = "PLANTWATCH_MAX_NEW_SERIES_PER_HOUR", value_name = "N")]
    pub max_new_series_per_hour: Option<u64>,
    /// Where metrics are stored: `sqlite` (embedded metrics.db) or `remote_write` (an engine
    /// speaking Prometheus remote write: VictoriaMetrics, Prometheus, Mimir, Thanos Receive)
    /// [default: sqlite].
    #[arg(long, env = "PLANTWATCH_METRICS_BACKEND", value_enum)]
    pub metrics_backend: Option<MetricsBackend>,
    /// The engine's remote-write endpoint, e.g. `http://vm:8428/api/v1/write`.
    #[arg(long, env = "PLANTWATCH_METRICS_REMOTE_WRITE_URL", value_name = "URL")]
    pub metrics_remote_write_url: Option<String>,
    /// The engine's Prometheus query API base, e.g. `http://vm:8428` (charts read
    /// `<URL>/api/v1/query` and `<URL>/api/v1/query_range`).
    #[arg(long, env = "PLANTWATCH_METRICS_QUERY_URL", value_name = "URL")]
    pub metrics_query_url: Option<String>,
    /// Basic-auth user for the engine; the password comes from
    /// `PLANTWATCH_METRICS_REMOTE_PASSWORD`.
    #[arg(long, env = "PLANTWATCH_METRICS_REMOTE_USERNAME", value_name = "USER")]
    pub metrics_remote_username: Option<String>,
    /// PEM certificate(s) to trust for the engine's HTTPS, besides the system's.
    #[arg(long, env = "PLANTWATCH_METRICS_REMOTE_CA_FILE", value_name = "FILE")]
    pub metrics_remote_ca_file: Option<PathBuf>,
    /// Most samples the remote-write queue holds while the engine is unreachable; when full,
    /// ingest answers 503 and senders keep their batches [default: 50000000].
    #[arg(
        long,
        env = "PLANTWATCH_METRICS_REMOTE_QUEUE_MAX_SAMPLES",
        value_name = "N"
    )]
    pub metrics_remote_queue_max_samples: Option<u64>,
}

/// Where metrics are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum MetricsBackend {
    /// The embedded store, metrics.db.
    #[default]
    Sqlite,
    /// An engine speaking Prometheus remote write, through an on-disk queue.
    #[value(name = "remote_write")]
    RemoteWrite,
}

impl MetricsBackend {
    pub fn as_str(self) -> &'static str {
        match self {
            MetricsBackend::Sqlite => "sqlite",
            MetricsBackend::RemoteWrite => "remote_write",
        }
    }
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// One human-readable line per event.
    #[default]
    Pretty,
    /// One JSON object per event.
    Json,
}

/// The TOML file: every key optional; absent keys fall back to the defaults.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub data_dir: Option<PathBuf>,
    pub listen: Option<SocketAddr>,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    pub insecure_http: Option<bool>,
    pub log_format: Option<LogFormat>,
    pub session_idle_timeout_secs: Option<u64>,
    pub session_max_age_secs: Option<u64>,
    pub login_max_failures: Option<u32>,
    pub login_window_secs: Option<u64>,
    pub max_body_bytes: Option<usize>,
    pub push_interval_secs: Option<u64>,
    pub local_polling: Option<bool>,
    pub local_discovery: Option<bool>,
    pub alert_interval_secs: Option<u64>,
    pub time_zone: Option<String>,
    pub metrics_raw_retention_days: Option<u32>,
    pub metrics_5m_retention_days: Option<u32>,
    pub metrics_1h_retention_days: Option<u32>,
    pub metrics_max_size_mb: Option<u64>,
    pub max_series_per_node: Option<u64>,
    pub max_new_series_per_hour: Option<u64>,
    pub max_connections: Option<u64>,
    pub http_header_timeout_secs: Option<u64>,
    pub http_idle_timeout_secs: Option<u64>,
    pub metrics_backend: Option<MetricsBackend>,
    pub metrics_remote_write_url: Option<String>,
    pub metrics_query_url: Option<String>,
    pub metrics_remote_username: Option<String>,
    pub metrics_remote_ca_file: Option<PathBuf>,
    pub metrics_remote_queue_max_samples: Option<u64>,
}

/// The effective configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub data_dir: PathBuf,
    pub listen: SocketAddr,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    pub insecure_http: bool,
    pub log_format: LogFormat,
    pub session_idle_timeout_secs: u64,
    pub session_max_age_secs: u64,
    pub login_max_failures: u32,
    pub login_window_secs: u64,
    pub max_body_bytes: usize,
    pub push_interval_secs: u64,
    pub local_polling: bool,
    pub local_discovery: bool,
    pub alert_interval_secs: u64,
    /// `""`: the system's time zone.
    pub time_zone: String,
    pub metrics_raw_retention_days: u32,
    pub metrics_5m_retention_days: u32,
    pub metrics_1h_retention_days: u32,
    /// 0: no cap.
    pub metrics_max_size_mb: u64,
    pub max_series_per_node: u64,
    pub max_new_series_per_hour: u64,
    pub max_connections: u64,
    pub http_header_timeout_secs: u64,
    pub http_idle_timeout_secs: u64,
    pub metrics_backend: MetricsBackend,
    pub metrics_remote_write_url: Option<String>,
    pub metrics_query_url: Option<String>,
    pub metrics_remote_username: Option<String>,
    pub metrics_remote_ca_file: Option<PathBuf>,
    pub metrics_remote_queue_max_samples: u64,
    /// The engine's basic-auth password, from `PLANTWATCH_METRICS_REMOTE_PASSWORD`. Never
    /// recorded.
    pub metrics_remote_password: Option<Secret>,
    /// The engine's bearer token, from `PLANTWATCH_METRICS_REMOTE_BEARER_TOKEN`. Never recorded.
    pub metrics_remote_bearer_token: Option<Secret>,
    /// First admin from `PLANTWATCH_ADMIN_USER` / `PLANTWATCH_ADMIN_PASSWORD`, created when the
    /// database has no user. Never written to the settings table or a log.
    pub bootstrap_admin: Option<BootstrapAdmin>,
    /// The vault key from `PLANTWATCH_VAULT_KEY`, instead of the key file. Never recorded.
    pub vault_key: Option<Secret>,
    /// Bearer token that may read `GET /metrics` besides an admin's session, from
    /// `PLANTWATCH_METRICS_SCRAPE_TOKEN`. Never recorded.
    pub scrape_token: Option<Secret>,
}

/// Credentials of the admin created at first start.
#[derive(Debug, Clone, PartialEq)]
pub struct BootstrapAdmin {
    pub username: String,
    pub password: Secret,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data_dir: PathBuf::from("./plantwatch-data"),
            listen: SocketAddr::from(([0, 0, 0, 0], 8443)),
            tls_cert: None,
            tls_key: None,
            insecure_http: false,
            log_format: LogFormat::Pretty,
            session_idle_timeout_secs: 12 * 3600,
            session_max_age_secs: 7 * 24 * 3600,
            login_max_failures: 5,
            login_window_secs: 60,
            max_body_bytes: 1024 * 1024,
            push_interval_secs: 10,
            local_polling: true,
            local_discovery: true,
            alert_interval_secs: 10,
            time_zone: String::new(),
            metrics_raw_retention_days: 30,
            metrics_5m_retention_days: 400,
            metrics_1h_retention_days: 5 * 365 + 1,
            metrics_max_size_mb: 0,
            max_series_per_node: 20_000,
            max_new_series_per_hour: 1_000_000,
            max_connections: 4_096,
            http_header_timeout_secs: 15,
            http_idle_timeout_secs: 120,
            metrics_backend: MetricsBackend::Sqlite,
            metrics_remote_write_url: None,
            metrics_query_url: None,
            metrics_remote_username: None,
            metrics_remote_ca_file: None,
            metrics_remote_queue_max_samples: 50_000_000,
            metrics_remote_password: None,
            metrics_remote_bearer_token: None,
            bootstrap_admin: None,
            vault_key: None,
            scrape_token: None,
        }
    }
}

impl FileConfig {
    /// Reads and parses a TOML file.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading the configuration file {}", path.display()))?;
        Self::parse(&text)
            .with_context(|| format!("parsing the configuration file {}", path.display()))
    }

    /// Parses TOML text.
    pub fn parse(text: &str) -> anyhow::Result<Self> {
        Ok(toml::from_str(text)?)
    }
}

impl Cli {
    /// Merges flags and environment over the configuration file over the defaults, and checks
    /// the result.
    pub fn resolve(&self) -> anyhow::Result<Config> {
        let file = match &self.options.config {
            Some(path) => FileConfig::load(path)?,
            None => FileConfig::default(),
        };
        let mut config = Config::merge(&self.options, file);
        config.bootstrap_admin = bootstrap_admin_from_env()?;
        config.vault_key = std::env::var(crate::vault::KEY_ENV).ok().map(Secret::from);
        config.scrape_token = std::env::var(SCRAPE_TOKEN_ENV).ok().map(Secret::from);
        config.metrics_remote_password = std::env::var(REMOTE_PASSWORD_ENV).ok().map(Secret::from);
        config.metrics_remote_bearer_token =
            std::env::var(REMOTE_BEARER_ENV).ok().map(Secret::from);
        config.validate()?;
        Ok(config)
    }
}

fn bootstrap_admin_from_env() -> anyhow::Result<Option<BootstrapAdmin>> {
    let user = std::env::var("PLANTWATCH_ADMIN_USER").ok();
    let password = std::env::var("PLANTWATCH_ADMIN_PASSWORD").ok();
    match (user, password) {
        (Some(username), Some(password)) => Ok(Some(BootstrapAdmin {
            username,
            password: password.into(),
        })),
        (None, None) => Ok(None),
        _ => bail!("set both PLANTWATCH_ADMIN_USER and PLANTWATCH_ADMIN_PASSWORD, or neither"),
    }
}

impl Config {
    /// Flags (with their environment variables) over `file` over the defaults.
    pub fn merge(flags: &Options, file: FileConfig) -> Config {
        let defaults = Config::default();
        let flags = flags.clone();
        Config {
            data_dir: flags
                .data_dir
                .or(file.data_dir)
                .unwrap_or(defaults.data_dir),
            listen: flags.listen.or(file.listen).unwrap_or(defaults.listen),
            tls_cert: flags.tls_cert.or(file.tls_cert),
            tls_key: flags.tls_key.or(file.tls_key),
            insecure_http: flags.insecure_http || file.insecure_http.unwrap_or(false),
            log_format: flags
                .log_format
                .or(file.log_format)
                .unwrap_or(defaults.log_format),
            session_idle_timeout_secs: flags
                .session_idle_timeout_secs
                .or(file.session_idle_timeout_secs)
                .unwrap_or(defaults.session_idle_timeout_secs),
            session_max_age_secs: flags
                .session_max_age_secs
                .or(file.session_max_age_secs)
                .unwrap_or(defaults.session_max_age_secs),
            login_max_failures: flags
                .login_max_failures
                .or(file.login_max_failures)
                .unwrap_or(defaults.login_max_failures),
            login_window_secs: flags
                .login_window_secs
                .or(file.login_window_secs)
                .unwrap_or(defaults.login_window_secs),
            max_body_bytes: flags
                .max_body_bytes
                .or(file.max_body_bytes)
                .unwrap_or(defaults.max_body_bytes),
            push_interval_secs: flags
                .push_interval_secs
                .or(file.push_interval_secs)
                .unwrap_or(defaults.push_interval_secs),
            local_polling: flags
                .local_polling
                .or(file.local_polling)
                .unwrap_or(defaults.local_polling),
            local_discovery: flags
                .local_discovery
                .or(file.local_discovery)
                .unwrap_or(defaults.local_discovery),
            alert_interval_secs: flags
                .alert_interval_secs
                .or(file.alert_interval_secs)
                .unwrap_or(defaults.alert_interval_secs),
            time_zone: flags
                .time_zone
                .or(file.time_zone)
                .unwrap_or(defaults.time_zone),
            metrics_raw_retention_days: flags
                .metrics_raw_retention_days
                .or(file.metrics_raw_retention_days)
                .unwrap_or(defaults.metrics_raw_retention_days),
            metrics_5m_retention_days: flags
                .metrics_5m_retention_days
                .or(file.metrics_5m_retention_days)
                .unwrap_or(defaults.metrics_5m_retention_days),
            metrics_1h_retention_days: flags
                .metrics_1h_retention_days
                .or(file.metrics_1h_retention_days)
                .unwrap_or(defaults.metrics_1h_retention_days),
            metrics_max_size_mb: flags
                .metrics_max_size_mb
                .or(file.metrics_max_size_mb)
                .unwrap_or(defaults.metrics_max_size_mb),
            max_series_per_node: flags
                .max_series_per_node
                .or(file.max_series_per_node)
                .unwrap_or(defaults.max_series_per_node),
            max_new_series_per_hour: flags
                .max_new_series_per_hour
                .or(file.max_new_series_per_hour)
                .unwrap_or(defaults.max_new_series_per_hour),
            max_connections: flags
                .max_connections
                .or(file.max_connections)
                .unwrap_or(defaults.max_connections),
            http_header_timeout_secs: flags
                .http_header_timeout_secs
                .or(file.http_header_timeout_secs)
                .unwrap_or(defaults.http_header_timeout_secs),
            http_idle_timeout_secs: flags
                .http_idle_timeout_secs
                .or(file.http_idle_timeout_secs)
                .unwrap_or(defaults.http_idle_timeout_secs),
            metrics_backend: flags
                .metrics_backend
                .or(file.metrics_backend)
                .unwrap_or(defaults.metrics_backend),
            metrics_remote_write_url: flags
                .metrics_remote_write_url
                .or(file.metrics_remote_write_url),
            metrics_query_url: flags.metrics_query_url.or(file.metrics_query_url),
            metrics_remote_username: flags
                .metrics_remote_username
                .or(file.metrics_remote_username),
            metrics_remote_ca_file: flags.metrics_remote_ca_file.or(file.metrics_remote_ca_file),
            metrics_remote_queue_max_samples: flags
                .metrics_remote_queue_max_samples
                .or(file.metrics_remote_queue_max_samples)
                .unwrap_or(defaults.metrics_remote_queue_max_samples),
            metrics_remote_password: None,
            metrics_remote_bearer_token: None,
            bootstrap_admin: None,
            vault_key: None,
            scrape_token: None,
        }
    }

    /// Refuses combinations that cannot work or would be unsafe.
    pub fn validate(&self) -> anyhow::Result<()> {
        if self.insecure_http && !self.listen.ip().is_loopback() {
            bail!(
                "--insecure-http serves plain HTTP and is only allowed on a loopback address; \
                 {} is not one (listen on 127.0.0.1, or drop --insecure-http to use HTTPS)",
                self.listen
            );
        }
        if self.tls_cert.is_some() != self.tls_key.is_some() {
            bail!("--tls-cert and --tls-key go together: give both or neither");
        }
        if self.session_idle_timeout_secs == 0 || self.session_max_age_secs == 0 {
            bail!("session timeouts must be at least one second");
        }
        if self.login_max_failures == 0 || self.login_window_secs == 0 {
            bail!("login_max_failures and login_window_secs must be at least 1");
        }
        if self.push_interval_secs == 0 || self.push_interval_secs > 3_600 {
            bail!("push_interval_secs must be between 1 and 3600");
        }
        if self.alert_interval_secs == 0 || self.alert_interval_secs > 3_600 {
            bail!("alert_interval_secs must be between 1 and 3600");
        }
        if let Err(problem) = crate::alerting::maintenance::time_zone(&self.time_zone) {
            bail!("time_zone: {problem}");
        }
        for (name, days) in [
            (
                "metrics_raw_retention_days",
                self.metrics_raw_retention_days,
            ),
            ("metrics_5m_retention_days", self.metrics_5m_retention_days),
            ("metrics_1h_retention_days", self.metrics_1h_retention_days),
        ] {
            if !(1..=36_500).contains(&days) {
                bail!("{name} must be between 1 and 36500 days");
            }
        }
        if self
            .scrape_token
            .as_ref()
            .is_some_and(|t| t.expose().trim().len() < 16)
        {
            bail!("{SCRAPE_TOKEN_ENV} must be at least 16 characters");
        }
        if self.max_body_bytes < 1024 {
            bail!("max_body_bytes must be at least 1024");
        }
        self.validate_remote()
    }

    /// The remote-write backend's settings: both URLs, http(s), one kind of credentials.
    fn validate_remote(&self) -> anyhow::Result<()> {
        if self.metrics_backend != MetricsBackend::RemoteWrite {
            return Ok(());
        }
        for (name, url) in [
            ("metrics_remote_write_url", &self.metrics_remote_write_url),
            ("metrics_query_url", &self.metrics_query_url),
        ] {
            let Some(url) = url else {
                bail!("metrics_backend = \"remote_write\" needs {name} (see docs/scale-out.md)");
            };
            match reqwest::Url::parse(url) {
                Ok(parsed) if matches!(parsed.scheme(), "http" | "https") => {
                    if !parsed.username().is_empty() || parsed.password().is_some() {
                        bail!(
                            "{name} must not carry credentials: use metrics_remote_username and \
                             {REMOTE_PASSWORD_ENV}, or {REMOTE_BEARER_ENV}"
                        );
                    }
                }
                Ok(_) => bail!("{name} must be an http:// or https:// URL, not {url:?}"),
                Err(error) => bail!("{name} {url:?} is not a URL: {error}"),
            }
        }
        if self.metrics_remote_username.is_some() != self.metrics_remote_password.is_some() {
            bail!(
                "metrics_remote_username and {REMOTE_PASSWORD_ENV} go together: set both or neither"
            );
        }
        if self.metrics_remote_username.is_some() && self.metrics_remote_bearer_token.is_some() {
            bail!("use basic auth or {REMOTE_BEARER_ENV} for the metrics engine, not both");
        }
        if self.metrics_remote_queue_max_samples < 10_000 {
            bail!("metrics_remote_queue_max_samples must be at least 10000");
        }
        Ok(())
    }

    /// The lock file held by the running server and by offline maintenance commands.
    pub fn lock_path(&self) -> PathBuf {
        self.data_dir.join("plantwatch.lock")
    }

    /// Path of the metadata database.
    pub fn database_path(&self) -> PathBuf {
        self.data_dir.join("plantwatch.db")
    }

    /// Where an admin puts template files of their own (`*.toml`).
    pub fn templates_dir(&self) -> PathBuf {
        self.data_dir.join("templates")
    }

    /// The metric store, `metrics.db`, beside the metadata database.
    pub fn metrics_path(&self) -> PathBuf {
        self.data_dir.join("metrics.db")
    }

    /// What the metric store keeps, and its size cap.
    pub fn retention(&self) -> crate::metrics_store::Retention {
        crate::metrics_store::Retention {
            raw_days: self.metrics_raw_retention_days,
            five_minute_days: self.metrics_5m_retention_days,
            hour_days: self.metrics_1h_retention_days,
            max_bytes: self.metrics_max_size_mb * 1_000_000,
        }
    }

    /// The metric store's limits on series.
    pub fn series_limits(&self) -> crate::metrics_store::SeriesLimits {
        crate::metrics_store::SeriesLimits {
            per_node: self.max_series_per_node,
            new_per_sender_hour: self.max_new_series_per_hour,
        }
    }

    /// The settings recorded in the `settings` table, as key/value text.
    pub fn settings(&self) -> Vec<(&'static str, String)> {
        let path = |p: &Option<PathBuf>| p.as_ref().map(|p| p.display().to_string());
        vec![
            ("data_dir", self.data_dir.display().to_string()),
            ("listen", self.listen.to_string()),
            ("tls_cert", path(&self.tls_cert).unwrap_or_default()),
            ("tls_key", path(&self.tls_key).unwrap_or_default()),
            ("insecure_http", self.insecure_http.to_string()),
            (
                "log_format",
                format!("{:?}", self.log_format).to_lowercase(),
            ),
            (
                "session_idle_timeout_secs",
                self.session_idle_timeout_secs.to_string(),
            ),
            (
                "session_max_age_secs",
                self.session_max_age_secs.to_string(),
            ),
            ("login_max_failures", self.login_max_failures.to_string()),
            ("login_window_secs", self.login_window_secs.to_string()),
            ("max_body_bytes", self.max_body_bytes.to_string()),
            ("push_interval_secs", self.push_interval_secs.to_string()),
            ("local_polling", self.local_polling.to_string()),
            ("local_discovery", self.local_discovery.to_string()),
            ("alert_interval_secs", self.alert_interval_secs.to_string()),
            ("time_zone", self.time_zone.clone()),
            (
                "metrics_raw_retention_days",
                self.metrics_raw_retention_days.to_string(),
            ),
            (
                "metrics_5m_retention_days",
                self.metrics_5m_retention_days.to_string(),
            ),
            (
                "metrics_1h_retention_days",
                self.metrics_1h_retention_days.to_string(),
            ),
            ("metrics_max_size_mb", self.metrics_max_size_mb.to_string()),
            ("max_series_per_node", self.max_series_per_node.to_string()),
            (
                "max_new_series_per_hour",
                self.max_new_series_per_hour.to_string(),
            ),
            ("max_connections", self.max_connections.to_string()),
            (
                "http_header_timeout_secs",
                self.http_header_timeout_secs.to_string(),
            ),
            (
                "http_idle_timeout_secs",
                self.http_idle_timeout_secs.to_string(),
            ),
            ("metrics_backend", self.metrics_backend.as_str().to_owned()),
            (
                "metrics_remote_write_url",
                self.metrics_remote_write_url.clone().unwrap_or_default(),
            ),
            (
                "metrics_query_url",
                self.metrics_query_url.clone().unwrap_or_default(),
            ),
            (
                "metrics_remote_username",
                self.metrics_remote_username.clone().unwrap_or_default(),
            ),
            (
                "metrics_remote_ca_file",
                path(&self.metrics_remote_ca_file).unwrap_or_default(),
            ),
            (
                "metrics_remote_queue_max_samples",
                self.metrics_remote_queue_max_samples.to_string(),
            ),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = include_str!("../plantwatch-server.sample.toml");

    #[test]
    fn sample_config_parses_to_exactly_the_defaults() {
        let file = FileConfig::parse(SAMPLE).unwrap();
        let defaults = Config::default();
        // Every key the sample sets is the default, and every defaulted key is in the sample.
        assert_eq!(file.data_dir.as_ref(), Some(&defaults.data_dir));
        assert_eq!(file.listen, Some(defaults.listen));
        assert_eq!(file.insecure_http, Some(defaults.insecure_http));
        assert_eq!(file.log_format, Some(defaults.log_format));
        assert_eq!(
            file.session_idle_timeout_secs,
            Some(defaults.session_idle_timeout_secs)
        );
        assert_eq!(
            file.session_max_age_secs,
            Some(defaults.session_max_age_secs)
        );
        assert_eq!(file.login_max_failures, Some(defaults.login_max_failures));
        assert_eq!(file.login_window_secs, Some(defaults.login_window_secs));
        assert_eq!(file.max_body_bytes, Some(defaults.max_body_bytes));
        assert_eq!(file.push_interval_secs, Some(defaults.push_interval_secs));
        assert_eq!(file.local_polling, Some(defaults.local_polling));
        assert_eq!(file.alert_interval_secs, Some(defaults.alert_interval_secs));
        assert_eq!(file.time_zone.as_ref(), Some(&defaults.time_zone));
        assert_eq!(file.metrics_backend, Some(defaults.metrics_backend));
        assert_eq!(
            file.metrics_remote_queue_max_samples,
            Some(defaults.metrics_remote_queue_max_samples)
        );
        assert_eq!(Config::merge(&Options::default(), file), defaults);
    }

    #[test]
    fn flags_win_over_the_file_and_the_file_over_defaults() {
        let file =
            FileConfig::parse("listen = \"127.0.0.1:9000\"\nlogin_max_failures = 9\n").unwrap();
        let flags = Options {
            listen: Some("127.0.0.1:9100".parse().unwrap()),
            ..Options::default()
        };
        let config = Config::merge(&flags, file);
        assert_eq!(config.listen.port(), 9100);
        assert_eq!(config.login_max_failures, 9);
        assert_eq!(config.login_window_secs, 60);
    }

    #[test]
    fn unknown_keys_in_the_file_are_an_error() {
        let err = FileConfig::parse("listne = \"127.0.0.1:1\"\n").unwrap_err();
        assert!(format!("{err:#}").contains("unknown field"), "{err:#}");
    }

    #[test]
    fn the_remote_write_backend_needs_both_urls_and_one_kind_of_credentials() {
        let mut config = Config {
            metrics_backend: MetricsBackend::RemoteWrite,
            ..Config::default()
        };
        let err = config.validate().unwrap_err().to_string();
        assert!(err.contains("metrics_remote_write_url"), "{err}");
        config.metrics_remote_write_url = Some("http://127.0.0.1:8428/api/v1/write".into());
        config.metrics_query_url = Some("ftp://127.0.0.1:8428".into());
        let err = config.validate().unwrap_err().to_string();
        assert!(err.contains("http:// or https://"), "{err}");
        config.metrics_query_url = Some("https://user:pw@127.0.0.1:8428".into());
        let err = config.validate().unwrap_err().to_string();
        assert!(err.contains("must not carry credentials"), "{err}");
        config.metrics_query_url = Some("http://127.0.0.1:8428".into());
        config.validate().unwrap();
        config.metrics_remote_username = Some("plantwatch".into());
        let err = config.validate().unwrap_err().to_string();
        assert!(err.contains(REMOTE_PASSWORD_ENV), "{err}");
        config.metrics_remote_password = Some("pw".into());
        config.validate().unwrap();
        config.metrics_remote_bearer_token = Some("token".into());
        let err = config.validate().unwrap_err().to_string();
        assert!(err.contains("not both"), "{err}");
        let file = FileConfig::parse("metrics_backend = \"remote_write\"\n").unwrap();
        assert_eq!(file.metrics_backend, Some(MetricsBackend::RemoteWrite));
    }

    #[test]
    fn insecure_http_is_refused_off_loopback() {
        let mut config = Config {
            insecure_http: true,
            ..Config::default()
        };
        let err = config.validate().unwrap_err();
        assert!(err.to_string().contains("loopback"), "{err}");
        config.listen = "127.0.0.1:8080".parse().unwrap();
        config.validate().unwrap();
        config.listen = "[::1]:8080".parse().unwrap();
        config.validate().unwrap();
    }
}
