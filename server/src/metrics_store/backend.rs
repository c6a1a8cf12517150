//! The metric store's backends behind one trait, the only way in for ingest's writes, chart
//! reads and status: [`Embedded`] is `metrics.db` itself; [`crate::remote_write::RemoteBackend`]
//! forwards to an engine speaking Prometheus remote write. Both commit through the same writer
//! (the embedded store to its head, the remote one to its write-ahead queue: the store's
//! [`Sink`](super::Sink)), so acknowledgement, batch ids and the hot window are shared.

use std::fmt::Debug;
use std::future::Future;
use std::pin::Pin;

use plantwatch_shared::api::{MetricSeries, RemoteWriteStatus};

use super::query::{self, RangeQuery};
use super::{Batch, Committed, MetricsStore};
use crate::db::DbError;
use crate::telemetry::Exposition;

/// A chart answer on its way.
pub type Answer<'a> =
    Pin<Box<dyn Future<Output = Result<Vec<MetricSeries>, BackendError>> + Send + 'a>>;

/// Why a backend could not answer.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    #[error(transparent)]
    Store(#[from] DbError),
    /// The remote engine failed or did not answer.
    #[error("the metrics engine did not answer the query: {0}")]
    Engine(String),
}

/// A batch on its way to disk.
pub type Written<'a> = Pin<Box<dyn Future<Output = Result<Committed, WriteError>> + Send + 'a>>;

/// Why a batch was not committed.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error(transparent)]
    Store(#[from] DbError),
    /// The backend cannot take more now (answered 503; the sender keeps the batch).
    #[error("{0}")]
    Full(String),
    /// The store is catching up and takes no more for a moment (503 with `Retry-After`).
    #[error("{0}")]
    Busy(String),
}

/// A metric store backend.
pub trait MetricBackend: Send + Sync + Debug {
    /// `sqlite` or `remote_write`, as in `metrics_backend`.
    fn name(&self) -> &'static str;

    /// Commits an ingest batch; returns once it is on disk.
    fn write(&self, batch: Batch) -> Written<'_>;

    /// Answers a chart query (a node's series over a range, in steps).
    fn range(&self, query: RangeQuery) -> Answer<'_>;

    /// Whether `metrics.db` keeps the samples (the series list reads their newest there).
    fn keeps_samples(&self) -> bool {
        true
    }

    /// The forwarder's state for the dashboard, if samples go to an engine.
    fn remote_status(&self) -> Option<RemoteWriteStatus> {
        None
    }

    /// Its own figures for `GET /metrics` (the store's are reported by the store).
    fn report(&self, _out: &mut Exposition) {}
}

/// `metrics.db`: batches go to its head, queries read its head and chunks on the reader pool.
#[derive(Debug)]
pub struct Embedded {
    pub store: MetricsStore,
}

impl MetricBackend for Embedded {
    fn name(&self) -> &'static str {
        "sqlite"
    }

    fn write(&self, batch: Batch) -> Written<'_> {
        Box::pin(async move {
            let held = self.store.head.len();
            if !batch.samples.is_empty() && held >= self.store.head_max_samples {
                return Err(WriteError::Busy(format!(
                    "the metric store holds {held} samples not sealed yet (its limit, \
                     metrics_head_max_samples); keep the batch and retry shortly"
                )));
            }
            Ok(self.store.write(batch).await?)
        })
    }

    fn range(&self, query: RangeQuery) -> Answer<'_> {
        let (reader, head) = (self.store.reader.clone(), self.store.head.clone());
        Box::pin(async move {
            let items =
                tokio::task::spawn_blocking(move || query::range_on(&reader, &head, &query))
                    .await
                    .map_err(|e| DbError::Task(e.to_string()))??;
            Ok(items)
        })
    }
}
