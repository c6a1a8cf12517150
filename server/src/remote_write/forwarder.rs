//! Sends the write-ahead queue to the engine: reads the oldest queued samples in `seq` order,
//! writes them as one remote-write request (grouped by series, each in time order), and once
//! the engine has answered deletes exactly that range. A failure that a retry may mend
//! (engine down, 5xx, 429, 401/403/404: a misconfiguration being fixed) keeps the samples and
//! retries with backoff; a 4xx meaning bad data (400, 409, 422: out-of-order or too old for
//! the engine) drops them, counted and logged, since resending cannot help.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use rusqlite::{Connection, OptionalExtension as _, params};
use tokio::sync::watch;

use super::Remote;
use super::names;
use super::proto::{Label, Sample, TimeSeries, WriteRequest, encode};
use crate::db::{Db, DbError};
use crate::metrics_store::{MetricsStore, SeriesKey};

/// Most samples in one request.
pub const MAX_SAMPLES_PER_REQUEST: usize = 25_000;
/// Requests in flight at once, each with its share of the series (so each series' samples
/// still arrive in order, as Prometheus requires).
pub const SHARDS: usize = 4;
/// Queued rows read at once.
const READ_ROWS: i64 = (SHARDS * MAX_SAMPLES_PER_REQUEST) as i64;
/// Pause when the queue is empty.
const IDLE: Duration = Duration::from_millis(100);
/// First and longest wait between failed attempts.
const BACKOFF_MIN: Duration = Duration::from_millis(500);
const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// How often node names are read again (a rename changes the `node` label).
const NAMES_REFRESH: Duration = Duration::from_secs(60);

/// One queued sample.
#[derive(Debug, Clone, Copy)]
struct Queued {
    seq: i64,
    series_id: i64,
    ts: i64,
    value: f64,
}

/// How an attempt ended.
#[derive(Debug, PartialEq)]
pub enum Outcome {
    Accepted,
    /// Bad data: drop, do not retry.
    Refused(String),
    /// The request was larger than the engine takes (413, or 400 saying so): send it in parts.
    TooLarge(String),
    /// Keep and retry.
    Failed(String),
}

/// Runs until `shutdown` turns true.
pub async fn run(
    remote: Arc<Remote>,
    store: MetricsStore,
    db: Db,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut labels = LabelCache::default();
    let mut after = 0_i64;
    let mut backoff = BACKOFF_MIN;
    loop {
        if *shutdown.borrow() {
            return;
        }
        if labels
            .refreshed
            .is_none_or(|at| at.elapsed() > NAMES_REFRESH)
            && let Err(error) = labels.refresh_names(&db).await
        {
            tracing::warn!(%error, "Could not read node names for remote write.");
        }
        let batch = match read_queue(&store, after).await {
            Ok(batch) => batch,
            Err(error) => {
                tracing::error!(%error, "Could not read the remote-write queue.");
                wait(&mut shutdown, BACKOFF_MAX).await;
                continue;
            }
        };
        let Some(last) = batch.last().copied() else {
            remote.stats.oldest_queued_ms.store(0, Ordering::Relaxed);
            wait(&mut shutdown, IDLE).await;
            continue;
        };
        remote.stats.oldest_queued_ms.store(
            batch.iter().map(|q| q.ts).min().unwrap_or(0),
            Ordering::Relaxed,
        );
        let shards = match labels.shards(&store, &db, &batch).await {
            Ok(shards) => shards,
            Err(error) => {
                tracing::error!(%error, "Could not read series for remote write.");
                wait(&mut shutdown, BACKOFF_MAX).await;
                continue;
            }
        };
        // Each shard until the engine has taken or refused it; only failed ones are resent,
        // and one the engine finds too large is split in two.
        let mut pending: Vec<Vec<Queued>> = shards;
        while !pending.is_empty() {
            let started = Instant::now();
            let requests: Vec<WriteRequest> = pending
                .iter()
                .map(|shard| build_request(shard, &labels.series))
                .collect();
            let outcomes =
                futures_util::future::join_all(requests.iter().map(|r| send(&remote, r))).await;
            let micros = started.elapsed().as_micros() as u64;
            let mut failed = Vec::new();
            let mut failure = None;
            for (shard, outcome) in pending.into_iter().zip(outcomes) {
                let samples = shard.len() as u64;
                match outcome {
                    Outcome::Accepted => {
                        remote.stats.accepted(samples, micros);
                    }
                    Outcome::TooLarge(_) if shard.len() > 1 => {
                        let (first, second) = split(shard);
                        failed.push(first);
                        failed.push(second);
                    }
                    Outcome::Refused(error) | Outcome::TooLarge(error) => {
                        remote
                            .stats
                            .rejected_samples
                            .fetch_add(samples, Ordering::Relaxed);
                        tracing::warn!(%error, samples,
                            "The metrics engine refused samples as bad data; they are dropped.");
                        remote.stats.set_error(error);
                    }
                    Outcome::Failed(error) => {
                        failed.push(shard);
                        failure = Some(error);
                    }
                }
            }
            pending = failed;
            let stats = &remote.stats;
            match failure {
                Some(error) => {
                    stats.failed_attempts.fetch_add(1, Ordering::Relaxed);
                    if !stats.retrying.swap(true, Ordering::Relaxed) {
                        tracing::warn!(%error, queued = store.stats.remote_queued.load(Ordering::Relaxed),
                            "The metrics engine did not take a batch; samples stay queued and are retried.");
                    }
                    remote.stats.set_error(error);
                    wait(&mut shutdown, backoff).await;
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                    if *shutdown.borrow() {
                        // Shards already taken are sent again after the restart.
                        return;
                    }
                }
                None => {
                    if stats.retrying.swap(false, Ordering::Relaxed) {
                        tracing::info!(
                            "The metrics engine takes samples again; sending the backlog."
                        );
                    }
                }
            }
        }
        backoff = BACKOFF_MIN;
        // Deleted in the writer's next transaction; `after` keeps the range from being read
        // again meanwhile. Should the delete fail, the samples are sent again after a restart
        // (the engine then holds them twice only if it keeps duplicates: see docs/scale-out.md).
        if let Err(error) = store.forwarded(last.seq, batch.len() as u64).await {
            tracing::error!(%error, "Could not delete forwarded samples from the queue.");
        }
        after = last.seq;
    }
}

/// Sleeps `duration`, or less if the server shuts down.
async fn wait(shutdown: &mut watch::Receiver<bool>, duration: Duration) {
    tokio::select! {
        _ = tokio::time::sleep(duration) => {}
        _ = shutdown.changed() => {}
    }
}

async fn read_queue(store: &MetricsStore, after: i64) -> Result<Vec<Queued>, DbError> {
    store
        .reader
        .call(move |conn| {
            let mut statement = conn.prepare_cached(
                "SELECT seq, series_id, ts, value FROM remote_queue
                  WHERE seq > ?1 ORDER BY seq LIMIT ?2",
            )?;
            let rows = statement.query_map(params![after, READ_ROWS], |r| {
                Ok(Queued {
                    seq: r.get(0)?,
                    series_id: r.get(1)?,
                    ts: r.get(2)?,
                    value: r.get(3)?,
                })
            })?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
        .await
}

/// Series labels by series id, and node names by node id.
#[derive(Default)]
struct LabelCache {
    series: HashMap<i64, Arc<[Label]>>,
    nodes: HashMap<i64, String>,
    refreshed: Option<Instant>,
}

impl LabelCache {
    async fn refresh_names(&mut self, db: &Db) -> Result<(), DbError> {
        let names = db
            .call(|conn| {
                let mut statement = conn
                    .prepare_cached("SELECT id, name FROM nodes")
                    .map_err(DbError::from)?;
                let rows = statement
                    .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
                    .map_err(DbError::from)?;
                rows.collect::<rusqlite::Result<HashMap<i64, String>>>()
                    .map_err(DbError::from)
            })
            .await?;
        if names != self.nodes {
            self.series.clear();
            self.nodes = names;
        }
        self.refreshed = Some(Instant::now());
        Ok(())
    }

    /// `batch` split by series into up to [`SHARDS`] parts of about
    /// [`MAX_SAMPLES_PER_REQUEST`] samples, once every series' labels are known.
    async fn shards(
        &mut self,
        store: &MetricsStore,
        db: &Db,
        batch: &[Queued],
    ) -> Result<Vec<Vec<Queued>>, DbError> {
        let unknown: Vec<i64> = batch
            .iter()
            .map(|q| q.series_id)
            .filter(|id| !self.series.contains_key(id))
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        if !unknown.is_empty() {
            let keys = store
                .reader
                .call(move |conn| series_keys(conn, &unknown).map_err(DbError::from))
                .await?;
            // A node created since the names were read.
            if keys
                .iter()
                .any(|(_, k)| !self.nodes.contains_key(&k.node_id))
            {
                self.refresh_names(db).await?;
            }
            for (id, key) in keys {
                let node = self.nodes.get(&key.node_id).map_or("", String::as_str);
                self.series.insert(id, names::labels(&key, node).into());
            }
        }
        let shards = batch
            .len()
            .div_ceil(MAX_SAMPLES_PER_REQUEST)
            .clamp(1, SHARDS) as i64;
        let mut parts: Vec<Vec<Queued>> = vec![Vec::new(); shards as usize];
        for queued in batch {
            parts[queued.series_id.rem_euclid(shards) as usize].push(*queued);
        }
        parts.retain(|part| !part.is_empty());
        Ok(parts)
    }
}

/// The keys of series `ids` (sorted): one range scan when they are dense (new series arrive
/// together, with consecutive ids), else one lookup each.
fn series_keys(conn: &Connection, ids: &[i64]) -> rusqlite::Result<Vec<(i64, SeriesKey)>> {
    let row = |r: &rusqlite::Row<'_>| -> rusqlite::Result<(i64, SeriesKey)> {
        Ok((
            r.get(0)?,
            SeriesKey {
                node_id: r.get(1)?,
                metric: r.get(2)?,
                tags: r.get(3)?,
            },
        ))
    };
    let (Some(&low), Some(&high)) = (ids.first(), ids.last()) else {
        return Ok(Vec::new());
    };
    if ((high - low) as usize) < ids.len() * 4 {
        let wanted: std::collections::HashSet<i64> = ids.iter().copied().collect();
        let mut statement = conn.prepare_cached(
            "SELECT id, node_id, metric, tags FROM series WHERE id BETWEEN ?1 AND ?2",
        )?;
        let rows = statement.query_map([low, high], row)?;
        let mut out = Vec::with_capacity(ids.len());
        for found in rows {
            let found = found?;
            if wanted.contains(&found.0) {
                out.push(found);
            }
        }
        return Ok(out);
    }
    let mut statement =
        conn.prepare_cached("SELECT id, node_id, metric, tags FROM series WHERE id = ?1")?;
    // A series deleted meanwhile has no key: its samples are skipped.
    let mut out = Vec::with_capacity(ids.len());
    for &id in ids {
        if let Some(found) = statement.query_row([id], row).optional()? {
            out.push(found);
        }
    }
    Ok(out)
}

/// A shard the engine found too large, in two: its series in two groups (each series stays
/// whole, so its samples stay in order), or a single series' samples in two halves in time.
fn split(mut shard: Vec<Queued>) -> (Vec<Queued>, Vec<Queued>) {
    shard.sort_by_key(|q| (q.series_id, q.ts, q.seq));
    let middle = shard.len() / 2;
    let series = shard[middle].series_id;
    // The nearest series boundary to the middle, if there is one.
    let before = shard[..middle].iter().rposition(|q| q.series_id != series);
    let after = shard[middle..].iter().position(|q| q.series_id != series);
    let at = match (before, after) {
        (Some(b), Some(a)) if middle - (b + 1) <= a => b + 1,
        (_, Some(a)) => middle + a,
        (Some(b), None) => b + 1,
        (None, None) => middle,
    };
    let second = shard.split_off(at);
    (shard, second)
}

/// One remote-write request: one time series per series id, samples in time order (of two at
/// one millisecond the later arrival, as the embedded store keeps).
fn build_request(batch: &[Queued], labels: &HashMap<i64, Arc<[Label]>>) -> WriteRequest {
    let mut by_series: HashMap<i64, Vec<&Queued>> = HashMap::new();
    for queued in batch {
        by_series.entry(queued.series_id).or_default().push(queued);
    }
    let mut timeseries = Vec::with_capacity(by_series.len());
    for (series_id, mut samples) in by_series {
        let Some(labels) = labels.get(&series_id) else {
            continue;
        };
        // Stable: of two at one timestamp, the later arrival stays last, and is kept.
        samples.sort_by_key(|q| q.ts);
        let mut out: Vec<Sample> = Vec::with_capacity(samples.len());
        for q in samples {
            match out.last_mut() {
                Some(last) if last.timestamp == q.ts => last.value = q.value,
                _ => out.push(Sample {
                    value: q.value,
                    timestamp: q.ts,
                }),
            }
        }
        timeseries.push(TimeSeries {
            labels: labels.to_vec(),
            samples: out,
        });
    }
    WriteRequest { timeseries }
}

/// One attempt to write `request`.
pub async fn send(remote: &Remote, request: &WriteRequest) -> Outcome {
    let body = match encode(request) {
        Ok(body) => body,
        Err(error) => return Outcome::Refused(error),
    };
    let response = remote
        .request(reqwest::Method::POST, remote.write_url.clone())
        .header("Content-Type", "application/x-protobuf")
        .header("Content-Encoding", "snappy")
        .header("X-Prometheus-Remote-Write-Version", "0.1.0")
        .body(body)
        .send()
        .await;
    let response = match response {
        Ok(response) => response,
        Err(error) => {
            return Outcome::Failed(format!(
                "{}: {}",
                remote.write_url,
                plantwatch_shared::error_chain(&error)
            ));
        }
    };
    let status = response.status();
    if status.is_success() {
        return Outcome::Accepted;
    }
    let text = response.text().await.unwrap_or_default();
    let text: String = text.trim().chars().take(300).collect();
    let message = format!("{} answered {status}: {text}", remote.write_url);
    let too_large = ["too big", "too large", "exceed"]
        .iter()
        .any(|phrase| text.to_ascii_lowercase().contains(phrase));
    match status.as_u16() {
        413 => Outcome::TooLarge(message),
        400 if too_large => Outcome::TooLarge(message),
        400 | 409 | 422 => Outcome::Refused(message),
        _ => Outcome::Failed(message),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shard_splits_at_a_series_boundary_or_one_series_in_time() {
        let q = |seq, series_id, ts| Queued {
            seq,
            series_id,
            ts,
            value: 0.0,
        };
        let (a, b) = split(vec![
            q(1, 1, 10),
            q(2, 2, 10),
            q(3, 1, 20),
            q(4, 3, 10),
            q(5, 2, 20),
        ]);
        let ids = |s: &[Queued]| s.iter().map(|q| q.series_id).collect::<Vec<_>>();
        assert_eq!((ids(&a), ids(&b)), (vec![1, 1], vec![2, 2, 3]));
        let (a, b) = split(vec![q(1, 7, 30), q(2, 7, 10), q(3, 7, 20), q(4, 7, 40)]);
        let times = |s: &[Queued]| s.iter().map(|q| q.ts).collect::<Vec<_>>();
        assert_eq!((times(&a), times(&b)), (vec![10, 20], vec![30, 40]));
    }

    #[test]
    fn a_request_groups_by_series_in_time_order_and_the_later_arrival_wins() {
        let q = |seq, series_id, ts, value| Queued {
            seq,
            series_id,
            ts,
            value,
        };
        let batch = [
            q(1, 1, 2_000, 2.0),
            q(2, 2, 1_000, 10.0),
            q(3, 1, 1_000, 1.0),
            q(4, 1, 2_000, 2.5),
            q(5, 3, 1_000, 0.0),
        ];
        let label = |v: &str| -> Arc<[Label]> {
            vec![Label {
                name: "__name__".into(),
                value: v.into(),
            }]
            .into()
        };
        // Series 3 was deleted meanwhile: its samples have nothing to be written as.
        let labels = HashMap::from([(1, label("a")), (2, label("b"))]);
        let mut request = build_request(&batch, &labels);
        request
            .timeseries
            .sort_by(|a, b| a.labels[0].value.cmp(&b.labels[0].value));
        let samples: Vec<Vec<(i64, f64)>> = request
            .timeseries
            .iter()
            .map(|t| t.samples.iter().map(|s| (s.timestamp, s.value)).collect())
            .collect();
        assert_eq!(
            samples,
            vec![vec![(1_000, 1.0), (2_000, 2.5)], vec![(1_000, 10.0)]]
        );
    }
}
