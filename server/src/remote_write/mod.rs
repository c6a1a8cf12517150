//! The remote-write backend (`metrics_backend = "remote_write"`): samples are committed to a
//! write-ahead queue in `metrics.db` (acknowledged once on disk, as with the embedded store),
//! and the [`forwarder`] sends them on to an engine that speaks Prometheus remote write
//! (VictoriaMetrics, Prometheus, Mimir, Thanos Receive), deleting each range once the engine
//! has taken it. Charts query the engine's Prometheus HTTP API ([`query`]); the hot window,
//! and so the alert evaluator, stay local. Names: [`names`]; wire format: [`proto`].
//! Operator's guide: `docs/scale-out.md`.

pub mod forwarder;
pub mod names;
pub mod proto;
pub mod query;

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context as _;
use plantwatch_shared::Secret;
use plantwatch_shared::api::RemoteWriteStatus;
use reqwest::{RequestBuilder, Url};

use crate::config::{Config, MetricsBackend};
use crate::metrics_store::Batch;
use crate::metrics_store::MetricsStore;
use crate::metrics_store::backend::{Answer, BackendError, MetricBackend, WriteError, Written};
use crate::metrics_store::query::{RangeQuery, node_series};
use crate::telemetry::registry::figures;
use crate::telemetry::{Counter, Exposition};

/// Longest a request to the engine may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// How plantwatch signs in to the engine.
#[derive(Debug, Clone)]
enum Auth {
    None,
    Basic { username: String, password: Secret },
    Bearer(Secret),
}

/// The engine: where to write and query, how to sign in, and the forwarder's figures.
#[derive(Debug)]
pub struct Remote {
    pub write_url: Url,
    /// Base of the Prometheus query API (`…/api/v1/query` is joined to it).
    pub query_url: Url,
    client: reqwest::Client,
    auth: Auth,
    /// Most samples the queue may hold; ingest answers 503 beyond.
    pub max_queue: u64,
    pub stats: RemoteStats,
}

/// What the forwarder has done, for `GET /summary`, `GET /metrics` and the console.
#[derive(Debug, Default)]
pub struct RemoteStats {
    /// Samples the engine accepted.
    pub sent_samples: Counter,
    /// Requests the engine accepted.
    pub sent_requests: Counter,
    /// Samples the engine refused as bad data (4xx other than auth, not found and 429): not
    /// retried, since a retry cannot mend them.
    pub rejected_samples: Counter,
    /// Attempts that failed and are retried (engine down, 5xx, 429, auth).
    pub failed_attempts: Counter,
    /// Whether the last attempt failed and the forwarder is waiting to retry.
    pub retrying: AtomicBool,
    /// Timestamp (ms) of the oldest sample still queued, 0 when none.
    pub oldest_queued_ms: AtomicI64,
    /// UNIX seconds of the last accepted request, 0 before the first.
    pub last_success: AtomicI64,
    pub last_error: Mutex<Option<String>>,
    /// Time spent in requests the engine accepted, µs.
    pub send_micros: Counter,
}

impl RemoteStats {
    /// A request of `samples` queued samples taken by the engine after `micros`.
    pub(crate) fn accepted(&self, samples: u64, micros: u64) {
        self.sent_samples.fetch_add(samples, Ordering::Relaxed);
        self.sent_requests.fetch_add(1, Ordering::Relaxed);
        self.send_micros.fetch_add(micros, Ordering::Relaxed);
        self.last_success
            .store(crate::clock::unix_secs(), Ordering::Relaxed);
    }

    /// Remembers the last failure or refusal, for the dashboard.
    pub(crate) fn set_error(&self, error: String) {
        if let Ok(mut last) = self.last_error.lock() {
            *last = Some(error);
        }
    }
}

impl Remote {
    /// The engine of `config`, or `None` with the embedded backend.
    pub fn from_config(config: &Config) -> anyhow::Result<Option<Remote>> {
        if config.metrics_backend != MetricsBackend::RemoteWrite {
            return Ok(None);
        }
        let parse = |name: &str, url: &Option<String>| -> anyhow::Result<Url> {
            let url = url
                .as_deref()
                .with_context(|| format!("{name} is not set"))?;
            Url::parse(url).with_context(|| format!("{name} {url:?}"))
        };
        let write_url = parse("metrics_remote_write_url", &config.metrics_remote_write_url)?;
        let mut query_url = parse("metrics_query_url", &config.metrics_query_url)?;
        if !query_url.path().ends_with('/') {
            let path = format!("{}/", query_url.path());
            query_url.set_path(&path);
        }
        let mut builder = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .connect_timeout(Duration::from_secs(5))
            .user_agent(concat!("plantwatch-server/", env!("CARGO_PKG_VERSION")));
        if let Some(path) = &config.metrics_remote_ca_file {
            let pem = std::fs::read(path)
                .with_context(|| format!("reading metrics_remote_ca_file {}", path.display()))?;
            let certificates = reqwest::Certificate::from_pem_bundle(&pem)
                .with_context(|| format!("metrics_remote_ca_file {}", path.display()))?;
            anyhow::ensure!(
                !certificates.is_empty(),
                "metrics_remote_ca_file {} holds no certificate",
                path.display()
            );
            for certificate in certificates {
                builder = builder.add_root_certificate(certificate);
            }
        }
        let auth = match (
            &config.metrics_remote_username,
            &config.metrics_remote_password,
            &config.metrics_remote_bearer_token,
        ) {
            (Some(username), Some(password), _) => Auth::Basic {
                username: username.clone(),
                password: password.clone(),
            },
            (_, _, Some(token)) => Auth::Bearer(token.clone()),
            _ => Auth::None,
        };
        Ok(Some(Remote {
            write_url,
            query_url,
            client: builder
                .build()
                .context("building the metrics engine's client")?,
            auth,
            max_queue: config.metrics_remote_queue_max_samples,
            stats: RemoteStats::default(),
        }))
    }

    /// A request to the engine with plantwatch's credentials.
    fn request(&self, method: reqwest::Method, url: Url) -> RequestBuilder {
        let request = self.client.request(method, url);
        match &self.auth {
            Auth::None => request,
            Auth::Basic { username, password } => {
                request.basic_auth(username, Some(password.expose()))
            }
            Auth::Bearer(token) => request.bearer_auth(token.expose()),
        }
    }

    /// The forwarder's state as the API and the console show it; `queued` from the store.
    pub fn status(&self, queued: u64, now_ms: i64) -> RemoteWriteStatus {
        let stats = &self.stats;
        let oldest = stats.oldest_queued_ms.load(Ordering::Relaxed);
        let last_success = stats.last_success.load(Ordering::Relaxed);
        RemoteWriteStatus {
            url: self.write_url.to_string(),
            queued_samples: queued,
            max_queued_samples: self.max_queue,
            oldest_queued_age_secs: (queued > 0 && oldest > 0)
                .then(|| ((now_ms - oldest) / 1_000).max(0)),
            sent_samples: stats.sent_samples.load(Ordering::Relaxed),
            rejected_samples: stats.rejected_samples.load(Ordering::Relaxed),
            failed_attempts: stats.failed_attempts.load(Ordering::Relaxed),
            retrying: stats.retrying.load(Ordering::Relaxed),
            last_success: (last_success > 0).then_some(last_success),
            last_error: stats.last_error.lock().ok().and_then(|e| e.clone()),
        }
    }
}

/// The remote-write backend: ingest commits to the write-ahead queue (the store was opened with
/// `remote_queue`), the [`forwarder`] sends it on, charts query the engine.
#[derive(Debug)]
pub struct RemoteBackend {
    pub remote: Arc<Remote>,
    pub store: MetricsStore,
}

impl MetricBackend for RemoteBackend {
    fn name(&self) -> &'static str {
        "remote_write"
    }

    fn range(&self, query: RangeQuery) -> Answer<'_> {
        Box::pin(async move {
            let (node, metric) = (query.node_id, query.metric.clone());
            let rows = self
                .store
                .reader
                .call(move |conn| {
                    node_series(conn, node, metric.as_deref()).map_err(crate::db::DbError::from)
                })
                .await?;
            query::range(&self.remote, rows, &query)
                .await
                .map_err(BackendError::Engine)
        })
    }

    fn write(&self, batch: Batch) -> Written<'_> {
        Box::pin(async move {
            if !batch.samples.is_empty()
                && self.store.stats.remote_queued.get() >= self.remote.max_queue
            {
                return Err(WriteError::Full(format!(
                    "the queue for the metrics engine is full ({} samples): the engine has not \
                     taken samples for a while; keep the batch and retry",
                    self.remote.max_queue
                )));
            }
            Ok(self.store.write(batch).await?)
        })
    }

    fn keeps_samples(&self) -> bool {
        false
    }

    fn remote_status(&self) -> Option<RemoteWriteStatus> {
        let queued = self.store.stats.remote_queued.get();
        Some(self.remote.status(queued, crate::clock::unix_ms()))
    }

    fn report(&self, out: &mut Exposition) {
        let Some(status) = self.remote_status() else {
            return;
        };
        let r = &self.remote.stats;
        for (figure, value) in [
            (&figures::REMOTE_QUEUE_SAMPLES, status.queued_samples as f64),
            (
                &figures::REMOTE_QUEUE_OLDEST_AGE,
                status.oldest_queued_age_secs.unwrap_or(0) as f64,
            ),
            (&figures::REMOTE_SENT_SAMPLES, status.sent_samples as f64),
            (
                &figures::REMOTE_REJECTED_SAMPLES,
                status.rejected_samples as f64,
            ),
            (
                &figures::REMOTE_FAILED_ATTEMPTS,
                status.failed_attempts as f64,
            ),
            (&figures::REMOTE_REQUESTS, r.sent_requests.get() as f64),
            (
                &figures::REMOTE_REQUEST_SECONDS,
                r.send_micros.get() as f64 / 1e6,
            ),
        ] {
            out.value(figure, value);
        }
    }
}
