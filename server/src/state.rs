//! Shared state of the running server, handed to every handler.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use plantwatch_shared::Fingerprint;

use crate::auth::api_keys::{KeyCache, Presence};
use crate::auth::rate_limit::LoginLimiter;
use crate::config::Config;
use crate::config_delivery::Stats;
use crate::db::Db;
use crate::metrics_store::MetricsStore;
use crate::vault::Vault;

/// Wrong API keys from one address per minute before it is answered 429 for a while (many
/// agents may share one address behind NAT, so it is looser than the login limit).
pub const KEY_FAILURES_PER_MINUTE: u32 = 30;

/// Cheap to clone: everything lives behind one `Arc`.
/// Failures per username counted for the slowdown (beyond them it is at its cap anyway).
const USER_FAILURES_TRACKED: u32 = 64;

#[derive(Clone, Debug)]
pub struct AppState(pub Arc<Inner>);

/// What [`AppState`] holds.
#[derive(Debug)]
pub struct Inner {
    pub db: Db,
    pub vault: Vault,
    pub config: Config,
    pub limiter: LoginLimiter,
    /// Failed logins per username from any address: they slow that user's logins down,
    /// never lock them.
    pub user_failures: LoginLimiter,
    /// Failed API key checks per source address: each costs a bcrypt verify, so a flood of
    /// wrong keys is answered 429 before it costs the server more.
    pub key_failures: LoginLimiter,
    /// The one-time setup code while the server has no user yet.
    pub setup_code: Mutex<Option<String>>,
    /// File the setup code was also written to, removed once used.
    pub setup_code_file: PathBuf,
    /// Verified instead of a real hash when a login names an unknown user.
    pub decoy_hash: String,
    /// Whether the listener is HTTPS (session cookies are then marked `Secure`).
    pub https: bool,
    /// Fingerprint of the served certificate, put into join codes.
    pub fingerprint: Option<Fingerprint>,
    /// Verified component API keys.
    pub keys: KeyCache,
    /// When components were last heard from.
    pub presence: Presence,
    /// The processes each node watches, as heartbeats answer them.
    pub host_watch: crate::db::host::WatchCache,
    /// Counts of config delivery.
    pub delivery: Arc<Stats>,
    /// Samples: `metrics.db`, its writer and the hot window.
    pub metrics: MetricsStore,
    /// The alert evaluator's cycle count and duration.
    pub evaluator: Arc<crate::alerting::EvaluatorStatus>,
    /// Wakes the local collector's discovery worker when a job is queued.
    pub discovery_wake: Arc<tokio::sync::Notify>,
    /// Requests by route, for `GET /metrics`.
    pub http: crate::telemetry::HttpStats,
    /// Where charts are answered and what ingest may queue: `metrics.db` or a remote engine.
    pub backend: Arc<dyn crate::metrics_store::backend::MetricBackend>,
    /// Whether this server may act (always, unless it is one of an active/standby pair).
    pub gate: crate::ha::Gate,
}

impl std::ops::Deref for AppState {
    type Target = Inner;

    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl AppState {
    pub fn new(
        db: Db,
        vault: Vault,
        config: Config,
        setup_code: Option<String>,
        fingerprint: Option<Fingerprint>,
        delivery: Arc<Stats>,
        metrics: MetricsStore,
        gate: crate::ha::Gate,
        backend: Arc<dyn crate::metrics_store::backend::MetricBackend>,
    ) -> Self {
        let limiter = LoginLimiter::new(
            config.login_max_failures,
            Duration::from_secs(config.login_window_secs),
        );
        let setup_code_file = config.data_dir.join("setup-code");
        AppState(Arc::new(Inner {
            db,
            vault,
            limiter,
            user_failures: LoginLimiter::new(
                USER_FAILURES_TRACKED,
                Duration::from_secs(config.login_window_secs),
            ),
            key_failures: LoginLimiter::new(KEY_FAILURES_PER_MINUTE, Duration::from_secs(60)),
            setup_code: Mutex::new(setup_code),
            setup_code_file,
            decoy_hash: crate::auth::decoy_hash(),
            https: fingerprint.is_some(),
            fingerprint,
            keys: KeyCache::default(),
            presence: Presence::default(),
            host_watch: Default::default(),
            delivery,
            metrics,
            evaluator: Arc::default(),
            discovery_wake: Arc::default(),
            http: crate::telemetry::HttpStats::default(),
            backend,
            gate,
            config,
        }))
    }
}
