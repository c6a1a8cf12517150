//! The metric store's backends behind one trait: where chart queries are answered, whether
//! ingest may queue more, and what the dashboard shows. [`Embedded`] is `metrics.db` itself;
//! [`crate::remote_write::RemoteBackend`] forwards to an engine speaking Prometheus remote write.
//! Both commit ingest through the same writer (the embedded store to its head, the remote one
//! to its write-ahead queue), so acknowledgement, batch ids and the hot window are shared.

use std::fmt::Debug;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use plantwatch_shared::api::{MetricSeries, RemoteWriteStatus};

use super::query::{self, RangeQuery};
use crate::db::{Db, DbError};
use crate::remote_write::Remote;

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

/// A metric store backend.
pub trait MetricBackend: Send + Sync + Debug {
    /// `sqlite` or `remote_write`, as in `metrics_backend`.
    fn name(&self) -> &'static str;

    /// Answers a chart query (a node's series over a range, in steps).
    fn range(&self, query: RangeQuery) -> Answer<'_>;

    /// Whether ingest may commit more samples now; the reason when not (answered 503).
    fn admit(&self) -> Result<(), String> {
        Ok(())
    }

    /// Whether `metrics.db` keeps the samples (the series list reads their newest there).
    fn keeps_samples(&self) -> bool {
        true
    }

    /// The remote engine, if samples go to one.
    fn remote(&self) -> Option<&Arc<Remote>> {
        None
    }

    /// The forwarder's state for the dashboard, if samples go to an engine.
    fn remote_status(&self) -> Option<RemoteWriteStatus> {
        None
    }
}

/// `metrics.db`: queries read its head and chunks on the reader pool.
#[derive(Debug)]
pub struct Embedded {
    pub reader: Db,
}

impl MetricBackend for Embedded {
    fn name(&self) -> &'static str {
        "sqlite"
    }

    fn range(&self, query: RangeQuery) -> Answer<'_> {
        let reader = self.reader.clone();
        Box::pin(async move {
            let items = tokio::task::spawn_blocking(move || query::range_on(&reader, &query))
                .await
                .map_err(|e| DbError::Task(e.to_string()))??;
            Ok(items)
        })
    }
}
