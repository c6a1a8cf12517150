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
    /// An active/standby pair: its status and planned switch-overs (docs/ha.md).
    #[command(subcommand)]
    Ha(HaCommand),
}

/// `plantwatch-server ha …`: reads and writes the pair's shared directory (`ha_dir`), so it
/// works beside the running servers.
#[derive(Debug, Clone, Copy, Subcommand, PartialEq, Eq)]
pub enum HaCommand {
    /// Who is active, in which term, each member's role and the standby's replication lag.
    Status {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Ask the active server to hand over to this one (run on the standby).
    Promote,
    /// Ask this server, the active, to hand over to the standby (run on the active).
    Demote,
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

/// Declares every setting once: its key (the TOML key, and the flag `--key-with-dashes`), its
/// environment variable, type, default, the default as documented, its check, extra clap
/// attributes, and its help (the doc comment). From that come the flags ([`Options`]), the
/// file ([`FileConfig`]), the effective [`Config`] with its defaults and merge, the text
/// recorded in the `settings` table, and [`SETTINGS`], from which the README's table and the
/// sample file are written (a test holds both to it).
macro_rules! settings {
    (
        with_default {
            $(
                $(#[doc = $doc:literal])*
                $name:ident: $ty:ty = $default:expr;
                env $env:literal, shown $shown:literal, check $check:expr $(, [$($arg:tt)*])?;
            )*
        }
        optional {
            $(
                $(#[doc = $odoc:literal])*
                $oname:ident: $oty:ty;
                env $oenv:literal, example $example:literal $(, [$($oarg:tt)*])?;
            )*
        }
        from_environment {
            $(
                $(#[doc = $sdoc:literal])*
                $sname:ident: $sty:ty;
            )*
        }
    ) => {
        /// Flags shared by every subcommand; each can also come from its environment variable.
        #[derive(Debug, Clone, Default, Args)]
        pub struct Options {
            /// TOML configuration file.
            #[arg(long, env = "PLANTWATCH_CONFIG", global = true, value_name = "FILE")]
            pub config: Option<PathBuf>,
            $(
                #[arg(long, env = $env, $($($arg)*,)?
                      help = help_text(concat!($($doc, "\n",)*), Some($shown)))]
                pub $name: Option<$ty>,
            )*
            $(
                #[arg(long, env = $oenv, $($($oarg)*,)?
                      help = help_text(concat!($($odoc, "\n",)*), None))]
                pub $oname: Option<$oty>,
            )*
        }

        /// The TOML file: every key optional; absent keys fall back to the defaults.
        #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
        #[serde(deny_unknown_fields)]
        pub struct FileConfig {
            $(pub $name: Option<$ty>,)*
            $(pub $oname: Option<$oty>,)*
        }

        /// The effective configuration.
        #[derive(Debug, Clone, PartialEq)]
        pub struct Config {
            $($(#[doc = $doc])* pub $name: $ty,)*
            $($(#[doc = $odoc])* pub $oname: Option<$oty>,)*
            $($(#[doc = $sdoc])* pub $sname: Option<$sty>,)*
        }

        impl Default for Config {
            fn default() -> Self {
                Config {
                    $($name: $default,)*
                    $($oname: None,)*
                    $($sname: None,)*
                }
            }
        }

        impl Config {
            /// Flags (with their environment variables) over `file` over the defaults.
            pub fn merge(flags: &Options, file: FileConfig) -> Config {
                let flags = flags.clone();
                Config {
                    $($name: flags.$name.or(file.$name).unwrap_or_else(|| $default),)*
                    $($oname: flags.$oname.or(file.$oname),)*
                    $($sname: None,)*
                }
            }

            /// Each setting's own check (ranges, formats).
            fn check_each(&self) -> anyhow::Result<()> {
                $(
                    let check: fn(&$ty) -> Result<(), String> = $check;
                    if let Err(problem) = check(&self.$name) {
                        bail!("{}: {problem}", stringify!($name));
                    }
                )*
                Ok(())
            }

            /// The settings recorded in the `settings` table, as key/value text.
            pub fn settings(&self) -> Vec<(&'static str, String)> {
                vec![
                    $((stringify!($name), self.$name.text()),)*
                    $((stringify!($oname), self.$oname.text()),)*
                ]
            }
        }

        /// Every setting, for the documentation.
        pub const SETTINGS: &[Setting] = &[
            $(Setting {
                key: stringify!($name),
                env: $env,
                default: Some($shown),
                help: concat!($($doc, "\n",)*),
            },)*
            $(Setting {
                key: stringify!($oname),
                env: $oenv,
                default: None,
                help: concat!($($odoc, "\n",)*),
            },)*
        ];

        /// Example values of the settings without a default, for the sample file.
        const EXAMPLES: &[(&str, &str)] = &[$((stringify!($oname), $example),)*];
    };
}

/// One setting as documented.
#[derive(Debug, Clone, Copy)]
pub struct Setting {
    pub key: &'static str,
    pub env: &'static str,
    /// The default as people read it; `None`: unset unless given.
    pub default: Option<&'static str>,
    /// Its doc comment, one line per line.
    pub help: &'static str,
}

impl Setting {
    /// `--key-with-dashes`.
    pub fn flag(&self) -> String {
        format!("--{}", self.key.replace('_', "-"))
    }

    /// The help on one line.
    pub fn help_line(&self) -> String {
        help_text(self.help, None)
    }
}

/// The README's table of settings, one row per setting.
pub fn readme_rows() -> String {
    let mut out = String::from(
        "| flag | environment | default | meaning |\n|---|---|---|---|\n\
         | `--config` | `PLANTWATCH_CONFIG` | – | TOML file |\n",
    );
    for setting in SETTINGS {
        let default = match setting.default {
            Some("") => "empty".to_owned(),
            Some(text) => format!("`{text}`"),
            None => "–".to_owned(),
        };
        out.push_str(&format!(
            "| `{}` | `{}` | {default} | {} |\n",
            setting.flag(),
            setting.env,
            setting.help_line()
        ));
    }
    out
}

/// `plantwatch-server.sample.toml`: every setting, its help as a comment, its default (or an
/// example, commented out).
pub fn sample_file() -> String {
    let mut out = String::from(
        "# plantwatch-server configuration. Every key is optional; the values below are the defaults.\n\
         # Precedence: command-line flags > PLANTWATCH_* environment variables > this file > defaults.\n\
         # Use it with `plantwatch-server --config plantwatch-server.toml`.\n\
         # Written from the settings' declarations in server/src/config.rs (a test holds it to them).\n",
    );
    for setting in SETTINGS {
        out.push('\n');
        for line in setting.help.lines() {
            out.push_str(&format!("#{}\n", line.trim_end()));
        }
        let toml_value = |text: &str| {
            let bare = text.parse::<f64>().is_ok() || text == "true" || text == "false";
            if bare {
                text.to_owned()
            } else {
                format!("{text:?}")
            }
        };
        match setting.default {
            Some(default) => out.push_str(&format!("{} = {}\n", setting.key, toml_value(default))),
            None => {
                let example = EXAMPLES
                    .iter()
                    .find(|(key, _)| *key == setting.key)
                    .map_or("", |(_, e)| e);
                out.push_str(&format!("# {} = {}\n", setting.key, toml_value(example)));
            }
        }
    }
    out
}

/// A setting's help for `--help`: its doc comment on one line, and its default.
fn help_text(doc: &str, default: Option<&str>) -> String {
    let text = doc.split_whitespace().collect::<Vec<_>>().join(" ");
    match default {
        Some("") => format!("{text} [default: empty]"),
        Some(default) => format!("{text} [default: {default}]"),
        None => text,
    }
}

/// A setting's value as recorded in the `settings` table.
trait SettingText {
    fn text(&self) -> String;
}

macro_rules! text_by_display {
    ($($ty:ty),*) => {
        $(impl SettingText for $ty {
            fn text(&self) -> String {
                self.to_string()
            }
        })*
    };
}
text_by_display!(u32, u64, usize, bool, String, SocketAddr);

impl SettingText for PathBuf {
    fn text(&self) -> String {
        self.display().to_string()
    }
}

impl SettingText for LogFormat {
    fn text(&self) -> String {
        format!("{self:?}").to_lowercase()
    }
}

impl SettingText for MetricsBackend {
    fn text(&self) -> String {
        self.as_str().to_owned()
    }
}

impl<T: SettingText> SettingText for Option<T> {
    fn text(&self) -> String {
        self.as_ref().map(SettingText::text).unwrap_or_default()
    }
}

/// Checks of single settings.
mod check {
    pub fn any<T>(_: &T) -> Result<(), String> {
        Ok(())
    }

    pub fn positive<T: PartialOrd + Default>(value: &T) -> Result<(), String> {
        if *value > T::default() {
            Ok(())
        } else {
            Err("must be at least 1".into())
        }
    }

    pub fn interval(secs: &u64) -> Result<(), String> {
        if (1..=3_600).contains(secs) {
            Ok(())
        } else {
            Err("must be between 1 and 3600".into())
        }
    }

    pub fn retention(days: &u32) -> Result<(), String> {
        if (1..=36_500).contains(days) {
            Ok(())
        } else {
            Err("must be between 1 and 36500 days".into())
        }
    }

    pub fn body(bytes: &usize) -> Result<(), String> {
        if *bytes >= 1024 {
            Ok(())
        } else {
            Err("must be at least 1024".into())
        }
    }

    pub fn queue(samples: &u64) -> Result<(), String> {
        if *samples >= 10_000 {
            Ok(())
        } else {
            Err("must be at least 10000".into())
        }
    }

    #[allow(clippy::ptr_arg)] // Every check takes a &T of its setting.
    pub fn time_zone(name: &String) -> Result<(), String> {
        crate::alerting::maintenance::time_zone(name).map(|_| ())
    }
}

settings! {
    with_default {
        /// Directory of the database, TLS certificate and keys.
        data_dir: PathBuf = PathBuf::from("./plantwatch-data");
        env "PLANTWATCH_DATA_DIR", shown "./plantwatch-data", check check::any,
            [global = true, value_name = "DIR"];
        /// Address and port of the HTTPS API.
        listen: SocketAddr = SocketAddr::from(([0, 0, 0, 0], 8443));
        env "PLANTWATCH_LISTEN", shown "0.0.0.0:8443", check check::any, [value_name = "ADDR:PORT"];
        /// Serve plain HTTP, for development only. Refused unless listening on a loopback
        /// address.
        insecure_http: bool = false;
        env "PLANTWATCH_INSECURE_HTTP", shown "false", check check::any,
            [num_args = 0..=1, default_missing_value = "true", value_name = "BOOL",
             value_parser = clap::builder::BoolishValueParser::new()];
        /// Log format: `pretty` (one line per event) or `json` (`RUST_LOG` sets the level).
        log_format: LogFormat = LogFormat::Pretty;
        env "PLANTWATCH_LOG_FORMAT", shown "pretty", check check::any, [value_enum];
        /// Seconds without a request after which a session ends (12 h).
        session_idle_timeout_secs: u64 = 12 * 3600;
        env "PLANTWATCH_SESSION_IDLE_TIMEOUT_SECS", shown "43200", check check::positive,
            [value_name = "SECS"];
        /// Seconds after login at which a session ends however busy it is (7 days).
        session_max_age_secs: u64 = 7 * 24 * 3600;
        env "PLANTWATCH_SESSION_MAX_AGE_SECS", shown "604800", check check::positive,
            [value_name = "SECS"];
        /// Failed logins per address, or per user from one address, within the window that
        /// are answered 429 until it has passed; per user from anywhere, later attempts are
        /// slowed down.
        login_max_failures: u32 = 5;
        env "PLANTWATCH_LOGIN_MAX_FAILURES", shown "5", check check::positive,
            [value_name = "N"];
        /// Window over which failed logins are counted, and the lock-out lasts, in seconds.
        login_window_secs: u64 = 60;
        env "PLANTWATCH_LOGIN_WINDOW_SECS", shown "60", check check::positive,
            [value_name = "SECS"];
        /// How often the role of every directory (LDAP) user with a live session is checked
        /// against their groups, in seconds: a user removed from a group loses access within
        /// this time.
        ldap_check_interval_secs: u64 = 300;
        env "PLANTWATCH_LDAP_CHECK_INTERVAL_SECS", shown "300", check check::interval,
            [value_name = "SECS"];
        /// Largest accepted request body in bytes (1 MiB).
        max_body_bytes: usize = 1024 * 1024;
        env "PLANTWATCH_MAX_BODY_BYTES", shown "1048576", check check::body,
            [value_name = "BYTES"];
        /// How often the server's own (local) collector pushes the metrics it polled, in
        /// seconds.
        push_interval_secs: u64 = 10;
        env "PLANTWATCH_PUSH_INTERVAL_SECS", shown "10", check check::interval,
            [value_name = "SECS"];
        /// Whether the server's own (local) collector polls the nodes assigned to it; `false`
        /// on a server that must not send to plant networks itself.
        local_polling: bool = true;
        env "PLANTWATCH_LOCAL_POLLING", shown "true", check check::any, [value_name = "BOOL"];
        /// Whether the server's own (local) collector runs discovery scans; `false` on a server
        /// that must not scan networks itself (scans then need a remote collector).
        local_discovery: bool = true;
        env "PLANTWATCH_LOCAL_DISCOVERY", shown "true", check check::any,
            [value_name = "BOOL"];
        /// How often the alert evaluator checks every rule against the recent data, in seconds.
        alert_interval_secs: u64 = 10;
        env "PLANTWATCH_ALERT_INTERVAL_SECS", shown "10", check check::interval,
            [value_name = "SECS"];
        /// Time zone in which recurring maintenance windows repeat (e.g. `Europe/Berlin`);
        /// empty: the system's.
        time_zone: String = String::new();
        env "PLANTWATCH_TIME_ZONE", shown "", check check::time_zone, [value_name = "ZONE"];
        /// Days raw samples are kept in metrics.db.
        metrics_raw_retention_days: u32 = 30;
        env "PLANTWATCH_METRICS_RAW_RETENTION_DAYS", shown "30", check check::retention,
            [value_name = "DAYS"];
        /// Days the 5-minute rollups are kept (min, max, sum, count and last of each bucket;
        /// charts over longer ranges read them).
        metrics_5m_retention_days: u32 = 400;
        env "PLANTWATCH_METRICS_5M_RETENTION_DAYS", shown "400", check check::retention,
            [value_name = "DAYS"];
        /// Days the 1-hour rollups are kept (five years).
        metrics_1h_retention_days: u32 = 5 * 365 + 1;
        env "PLANTWATCH_METRICS_1H_RETENTION_DAYS", shown "1826", check check::retention,
            [value_name = "DAYS"];
        /// How often the collectors walk the LLDP and CDP neighbour tables of the nodes whose
        /// templates name them, in seconds.
        topology_interval_secs: u64 = 900;
        env "PLANTWATCH_TOPOLOGY_INTERVAL_SECS", shown "900", check check::interval,
            [value_name = "SECS"];
        /// Days the events (SNMP traps, syslog messages) the collectors receive are kept.
        events_retention_days: u32 = 90;
        env "PLANTWATCH_EVENTS_RETENTION_DAYS", shown "90", check check::retention,
            [value_name = "DAYS"];
        /// Most events kept; over it the oldest go first (a flood cannot fill the disk).
        events_max_rows: u64 = 2_000_000;
        env "PLANTWATCH_EVENTS_MAX_ROWS", shown "2000000", check check::any, [value_name = "N"];
        /// Size cap of metrics.db in megabytes (0: none); over it the oldest data goes first,
        /// a day at a time, raw samples before rollups, with a warning in the log.
        metrics_max_size_mb: u64 = 0;
        env "PLANTWATCH_METRICS_MAX_SIZE_MB", shown "0", check check::any, [value_name = "MB"];
        /// Samples the in-memory head may hold before ingest answers 503 (senders keep their
        /// batches and retry) until the compactor has sealed some: about 30 bytes each.
        metrics_head_max_samples: u64 = crate::metrics_store::HEAD_MAX_SAMPLES;
        env "PLANTWATCH_METRICS_HEAD_MAX_SAMPLES", shown "50000000", check check::positive,
            [value_name = "N"];
        /// Series one node may have; samples that would make more are refused (400
        /// `series_limit`, counted in `/metrics`).
        max_series_per_node: u64 = 20_000;
        env "PLANTWATCH_MAX_SERIES_PER_NODE", shown "20000", check check::positive,
            [value_name = "N"];
        /// New series one collector or agent may create per hour.
        max_new_series_per_hour: u64 = 1_000_000;
        env "PLANTWATCH_MAX_NEW_SERIES_PER_HOUR", shown "1000000", check check::positive,
            [value_name = "N"];
        /// Open connections the HTTPS listener keeps (at most the open-file limit, raised to
        /// its hard limit at start, less 256); past it new ones are closed with a warning in
        /// the log.
        max_connections: u64 = 4_096;
        env "PLANTWATCH_MAX_CONNECTIONS", shown "4096", check check::positive,
            [value_name = "N"];
        /// Seconds a client may take to send a request's headers, and to start its next
        /// request on a kept-alive connection (a TLS handshake: 10 s).
        http_header_timeout_secs: u64 = 15;
        env "PLANTWATCH_HTTP_HEADER_TIMEOUT_SECS", shown "15", check check::positive,
            [value_name = "SECS"];
        /// Seconds a connection may go without a byte either way (HTTP/2 ones and clients that
        /// stop reading included) before it is closed.
        http_idle_timeout_secs: u64 = 120;
        env "PLANTWATCH_HTTP_IDLE_TIMEOUT_SECS", shown "120", check check::positive,
            [value_name = "SECS"];
        /// Where metrics are stored: `sqlite` (the embedded metrics.db) or `remote_write` (an
        /// engine speaking Prometheus remote write: VictoriaMetrics, Prometheus, Mimir, Thanos
        /// Receive; see docs/scale-out.md).
        metrics_backend: MetricsBackend = MetricsBackend::Sqlite;
        env "PLANTWATCH_METRICS_BACKEND", shown "sqlite", check check::any, [value_enum];
        /// Most samples the remote-write queue holds on disk (about 40 bytes each) while the
        /// engine is unreachable; when full, ingest answers 503 and senders keep their batches.
        metrics_remote_queue_max_samples: u64 = 50_000_000;
        env "PLANTWATCH_METRICS_REMOTE_QUEUE_MAX_SAMPLES", shown "50000000",
            check check::queue, [value_name = "N"];
        /// With `ha_dir`: the Litestream program that replicates the databases (docs/ha.md).
        ha_litestream: PathBuf = PathBuf::from("litestream");
        env "PLANTWATCH_HA_LITESTREAM", shown "litestream", check check::any,
            [value_name = "PROGRAM"];
    }
    optional {
        /// A PEM certificate (chain) to serve instead of the self-signed one generated at
        /// first start.
        tls_cert: PathBuf;
        env "PLANTWATCH_TLS_CERT", example "/etc/plantwatch/server.crt",
            [global = true, requires = "tls_key", value_name = "FILE"];
        /// The PEM private key of `tls_cert`.
        tls_key: PathBuf;
        env "PLANTWATCH_TLS_KEY", example "/etc/plantwatch/server.key",
            [global = true, requires = "tls_cert", value_name = "FILE"];
        /// With `remote_write`: the engine's write endpoint.
        metrics_remote_write_url: String;
        env "PLANTWATCH_METRICS_REMOTE_WRITE_URL", example "http://127.0.0.1:8428/api/v1/write",
            [value_name = "URL"];
        /// With `remote_write`: the engine's Prometheus query API base (charts read
        /// `<URL>/api/v1/query` and `<URL>/api/v1/query_range`).
        metrics_query_url: String;
        env "PLANTWATCH_METRICS_QUERY_URL", example "http://127.0.0.1:8428",
            [value_name = "URL"];
        /// Basic-auth user for the engine; the password comes from
        /// `PLANTWATCH_METRICS_REMOTE_PASSWORD` (or use a token in
        /// `PLANTWATCH_METRICS_REMOTE_BEARER_TOKEN`).
        metrics_remote_username: String;
        env "PLANTWATCH_METRICS_REMOTE_USERNAME", example "plantwatch", [value_name = "USER"];
        /// PEM certificate(s) to trust for the engine's HTTPS, besides the system's.
        metrics_remote_ca_file: PathBuf;
        env "PLANTWATCH_METRICS_REMOTE_CA_FILE", example "/etc/plantwatch/engine-ca.pem",
            [value_name = "FILE"];
        /// A directory both servers of an active/standby pair share (lease, replica): makes
        /// this server one of the pair (docs/ha.md).
        ha_dir: PathBuf;
        env "PLANTWATCH_HA_DIR", example "/mnt/plantwatch-pair", [global = true, value_name = "DIR"];
        /// This server's name in the pair (default: the host name).
        ha_name: String;
        env "PLANTWATCH_HA_NAME", example "plant-a", [global = true, value_name = "NAME"];
        /// The URL clients reach this server at (default: https://LISTEN).
        ha_url: String;
        env "PLANTWATCH_HA_URL", example "https://10.1.0.5:8443", [value_name = "URL"];
    }
    from_environment {
        /// The engine's basic-auth password, from `PLANTWATCH_METRICS_REMOTE_PASSWORD`. Never
        /// recorded.
        metrics_remote_password: Secret;
        /// The engine's bearer token, from `PLANTWATCH_METRICS_REMOTE_BEARER_TOKEN`. Never
        /// recorded.
        metrics_remote_bearer_token: Secret;
        /// First admin from `PLANTWATCH_ADMIN_USER` / `PLANTWATCH_ADMIN_PASSWORD`, created when
        /// the database has no user. Never written to the settings table or a log.
        bootstrap_admin: BootstrapAdmin;
        /// The vault key from `PLANTWATCH_VAULT_KEY`, instead of the key file. Never recorded.
        vault_key: Secret;
        /// Bearer token that may read `GET /metrics` besides an admin's session, from
        /// `PLANTWATCH_METRICS_SCRAPE_TOKEN`. Never recorded.
        scrape_token: Secret;
    }
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

/// Credentials of the admin created at first start.
#[derive(Debug, Clone, PartialEq)]
pub struct BootstrapAdmin {
    pub username: String,
    pub password: Secret,
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
        self.check_each()?;
        if self
            .scrape_token
            .as_ref()
            .is_some_and(|t| t.expose().trim().len() < 16)
        {
            bail!("{SCRAPE_TOKEN_ENV} must be at least 16 characters");
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
        assert_eq!(
            file.ldap_check_interval_secs,
            Some(defaults.ldap_check_interval_secs)
        );
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

    /// With `PLANTWATCH_WRITE_DOCS=1` the test writes the files instead.
    fn held_to(path: &str, expected: &str, actual: &str) {
        if std::env::var_os("PLANTWATCH_WRITE_DOCS").is_some() {
            std::fs::write(path, expected).unwrap();
            return;
        }
        assert!(
            actual == expected,
            "{path} is not what the settings declare; rewrite it with \
             PLANTWATCH_WRITE_DOCS=1 cargo test -p plantwatch-server --lib config"
        );
    }

    #[test]
    fn the_sample_file_and_the_readme_table_are_the_declared_settings() {
        let sample = concat!(env!("CARGO_MANIFEST_DIR"), "/plantwatch-server.sample.toml");
        held_to(sample, &sample_file(), SAMPLE);
        let readme_path = concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md");
        let readme = std::fs::read_to_string(readme_path).unwrap();
        let (start, end) = ("<!-- settings -->\n", "<!-- /settings -->");
        let (Some(a), Some(b)) = (readme.find(start), readme.find(end)) else {
            panic!("README.md lacks the {start:?} … {end:?} markers");
        };
        let expected = format!("{}{start}{}{}", &readme[..a], readme_rows(), &readme[b..]);
        held_to(readme_path, &expected, &readme);
        // Every flag of the binary is declared (and so documented).
        let command = <Cli as clap::CommandFactory>::command();
        for arg in command.get_arguments() {
            let Some(long) = arg.get_long() else { continue };
            if long == "config" {
                continue;
            }
            assert!(
                SETTINGS.iter().any(|s| s.flag() == format!("--{long}")),
                "--{long} is not a declared setting"
            );
        }
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
