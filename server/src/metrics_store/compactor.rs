//! The compactor: a background thread that seals head samples into chunks, keeps the rollups
//! up to date, and enforces retention and the size cap.
//!
//! It reads the head in memory and chunks on its own connection, and encodes on its own core;
//! what it writes goes to the one writer as a [`SealWork`], committed in the same transaction
//! as whatever ingest is queued then (no extra fsync), at most [`SEAL_BATCH_SAMPLES`] samples
//! at a time so an ingest never waits long behind it. The transaction that stores a series'
//! chunks moves its seal mark, and only over samples up to the `seq` the compactor read; the
//! head's log rows go once a whole pass has sealed them (`head.rs`): a crash at any point
//! leaves every sample exactly once, in the head or in a chunk. Sealing merges by timestamp, so
//! a late sample for an hour already sealed is merged into that hour's chunk (and its rollups
//! redone).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rusqlite::{Connection, OptionalExtension as _, params};
use tokio::sync::{mpsc, oneshot};

use super::chunks::{self, HOUR_MS, Resolution, chunk_id, chunk_range, damaged, window_of_id};
use super::codec::{self, Rollup};
use super::{Head, Job, Kind, Stats, kind_column};
use crate::telemetry::{Counter, Gauge};

/// Samples are sealed in 5-minute slices, once this much time has passed since a slice's end
/// (late polls still land in the head; later ones are merged in). The head so holds the last
/// few minutes, which keeps what a chart reads row by row small.
pub const GRACE_MS: i64 = 2 * 60 * 1_000;
/// Slice of sealing: the head up to a multiple of this is sealed at each pass.
pub const SLICE_MS: i64 = 5 * 60 * 1_000;
/// Samples sealed per write handed to the writer.
pub const SEAL_BATCH_SAMPLES: u64 = 20_000;
/// Pause between passes when there is nothing left to seal.
const PASS_EVERY: Duration = Duration::from_secs(10);
/// How often retention and the size cap are checked.
const RETENTION_EVERY: Duration = Duration::from_secs(600);
/// Series whose old chunks are dropped per write.
const DROP_BATCH_SERIES: usize = 1_000;
/// The size cap never drops data younger than this.
const CAP_KEEPS_MS: i64 = 2 * 24 * HOUR_MS;
const DAY_MS: i64 = 24 * HOUR_MS;

/// How long each resolution is kept, and the cap on the file's size.
#[derive(Debug, Clone, PartialEq)]
pub struct Retention {
    pub raw_days: u32,
    pub five_minute_days: u32,
    pub hour_days: u32,
    /// Bytes the store may use; 0 for no cap.
    pub max_bytes: u64,
}

impl Default for Retention {
    fn default() -> Self {
        Retention {
            raw_days: 30,
            five_minute_days: 400,
            hour_days: 5 * 365 + 1,
            max_bytes: 0,
        }
    }
}

impl Retention {
    pub fn days(&self, resolution: Resolution) -> u32 {
        match resolution {
            Resolution::Raw => self.raw_days,
            Resolution::FiveMinutes => self.five_minute_days,
            Resolution::Hour => self.hour_days,
        }
    }

    /// Oldest time (ms) `resolution` still holds at `now`.
    pub fn horizon(&self, resolution: Resolution, now: i64) -> i64 {
        now - i64::from(self.days(resolution)) * DAY_MS
    }
}

/// Nice value of the compactor's thread: the lowest, as for any batch work. The scheduler gives
/// it every idle cycle and next to nothing the ingest threads want (weight 15 against 1024; at
/// nice 10, weight 110, ingest at full speed lost up to 13 % to a sealing backlog). Sealing
/// cannot fall behind for long: past `metrics_head_max_samples` ingest answers 503, senders
/// back off, and the compactor has the cores.
#[cfg(target_os = "linux")]
const COMPACTOR_NICE: i32 = 19;

/// Lowers the calling thread's priority (on Linux a thread has its own nice value).
pub(crate) fn background_priority() {
    #[cfg(target_os = "linux")]
    if let Err(error) =
        rustix::process::setpriority_process(Some(rustix::thread::gettid()), COMPACTOR_NICE)
    {
        tracing::debug!(%error, "Could not lower the compactor's priority.");
    }
}

/// What the size cap did last.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CapState {
    Dropping(Resolution, i64),
    /// Over the cap with nothing it may drop.
    Stuck,
}

/// What one write of the compactor changes.
#[derive(Debug, Default)]
pub struct SealWork {
    /// Head samples with `seq` up to this were read.
    pub max_seq: i64,
    /// The pass sealed what came before this (ms).
    pub cutoff: i64,
    /// Series whose head samples before `cutoff` (up to `max_seq`) are now in chunks.
    pub sealed: Vec<i64>,
    /// Chunks to store: `(id, points, blob)`.
    pub chunks: Vec<(i64, i64, Vec<u8>)>,
    /// Chunk id ranges `[low, high)` to drop.
    pub dropped: Vec<(i64, i64)>,
    /// Head samples sealed.
    pub samples: u64,
    /// The last write of a pass that sealed everything due: the head log's rows it covers go.
    pub pass_end: bool,
}

/// Figures of one pass.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PassReport {
    pub series: u64,
    pub samples: u64,
    pub chunks: u64,
    pub dropped_ranges: u64,
}

/// Counters for `metrics stats` and the self-metrics.
#[derive(Debug, Default)]
pub struct CompactionStats {
    pub passes: Counter,
    pub sealed_samples: Counter,
    pub last_pass_us: Gauge,
}

pub(crate) struct Compactor {
    conn: Connection,
    head: Arc<Head>,
    jobs: mpsc::WeakSender<Job>,
    committed_seq: Arc<AtomicI64>,
    retention: Retention,
    stats: Arc<Stats>,
    /// One pass at a time, whoever runs it.
    lock: Arc<Mutex<()>>,
    retention_at: Option<Instant>,
    /// What the size cap last logged, so each drop is logged once.
    cap_state: Option<CapState>,
}

impl Compactor {
    pub(crate) fn new(
        path: &Path,
        head: Arc<Head>,
        jobs: mpsc::WeakSender<Job>,
        committed_seq: Arc<AtomicI64>,
        retention: Retention,
        stats: Arc<Stats>,
        lock: Arc<Mutex<()>>,
    ) -> rusqlite::Result<Compactor> {
        let conn = Connection::open(path)?;
        conn.busy_timeout(Duration::from_secs(5))?;
        conn.pragma_update(None, "cache_size", -32_768)?;
        Ok(Compactor {
            conn,
            head,
            jobs,
            committed_seq,
            retention,
            stats,
            lock,
            retention_at: None,
            cap_state: None,
        })
    }

    /// Runs passes until the store is dropped, at a lower CPU priority than ingest: sealing
    /// takes what ingest leaves, so a backlog being sealed does not slow ingest down.
    pub(crate) fn run(mut self) {
        background_priority();
        loop {
            if self.jobs.upgrade().is_none() {
                return;
            }
            let started = Instant::now();
            let busy = match self.pass(crate::clock::unix_ms()) {
                Ok(report) => {
                    if report.samples > 0 {
                        tracing::debug!(
                            series = report.series,
                            samples = report.samples,
                            chunks = report.chunks,
                            ms = started.elapsed().as_millis() as u64,
                            "Compacted the head."
                        );
                    }
                    false
                }
                Err(error) => {
                    tracing::warn!(%error, "Compaction failed; retrying at the next pass.");
                    false
                }
            };
            if !busy {
                for _ in 0..PASS_EVERY.as_secs() {
                    std::thread::sleep(Duration::from_secs(1));
                    if self.jobs.upgrade().is_none() {
                        return;
                    }
                }
            }
        }
    }

    /// One pass at `now` (ms): seals every 5-minute slice that ended more than [`GRACE_MS`]
    /// ago into its hour's chunk (a chunk grows until its hour is over), then
    /// (every 10 minutes, and on the first pass) applies retention and the size cap.
    pub(crate) fn pass(&mut self, now: i64) -> Result<PassReport, String> {
        let lock = self.lock.clone();
        let _one_at_a_time = lock
            .lock()
            .map_err(|_| "compaction lock poisoned".to_owned())?;
        let started = Instant::now();
        let mut report = PassReport::default();
        let max_seq = self.committed_seq.load(Ordering::Acquire);
        let cutoff = (now - GRACE_MS).div_euclid(SLICE_MS) * SLICE_MS;
        let series = self.all_series().map_err(|e| e.to_string())?;
        let kinds: rustc_hash::FxHashMap<i64, Kind> = series.iter().copied().collect();
        let fresh = || SealWork {
            max_seq,
            cutoff,
            ..SealWork::default()
        };
        let mut work = fresh();
        for series_id in self.head.due(cutoff, max_seq) {
            let kind = kinds.get(&series_id).copied().unwrap_or(Kind::Gauge);
            self.seal_series(series_id, kind, max_seq, cutoff, &mut work)
                .map_err(|e| format!("sealing series {series_id}: {e}"))?;
            report.series += 1;
            if work.samples >= SEAL_BATCH_SAMPLES {
                self.submit(std::mem::replace(&mut work, fresh()), &mut report)?;
            }
        }
        work.pass_end = report.series > 0;
        self.submit(work, &mut report)?;
        let due = self
            .retention_at
            .is_none_or(|at| at.elapsed() >= RETENTION_EVERY);
        if due {
            self.retention_at = Some(Instant::now());
            self.enforce_retention(&series, now, &mut report)?;
            self.enforce_cap(&series, now, &mut report)?;
        }
        self.stats.compaction.passes.fetch_add(1, Ordering::Relaxed);
        self.stats
            .compaction
            .last_pass_us
            .store(started.elapsed().as_micros() as u64, Ordering::Relaxed);
        Ok(report)
    }

    /// Makes the next pass apply retention and the size cap.
    pub(crate) fn retention_due(&mut self) {
        self.retention_at = None;
    }

    fn all_series(&self) -> rusqlite::Result<Vec<(i64, Kind)>> {
        let mut statement = self
            .conn
            .prepare_cached("SELECT id, kind FROM series ORDER BY id")?;
        let rows = statement.query_map([], |r| {
            Ok((r.get(0)?, kind_column(&r.get::<_, String>(1)?)))
        })?;
        rows.collect()
    }

    /// Hands `work` to the writer and waits until it is committed.
    fn submit(&self, work: SealWork, report: &mut PassReport) -> Result<(), String> {
        if work.sealed.is_empty()
            && work.chunks.is_empty()
            && work.dropped.is_empty()
            && !work.pass_end
        {
            return Ok(());
        }
        let Some(jobs) = self.jobs.upgrade() else {
            return Err("the metric store is closing".into());
        };
        let (samples, chunks, dropped) = (
            work.samples,
            work.chunks.len() as u64,
            work.dropped.len() as u64,
        );
        let (reply, answer) = oneshot::channel();
        jobs.blocking_send(Job::Seal { work, reply })
            .map_err(|_| "the metrics writer has stopped".to_owned())?;
        drop(jobs);
        answer
            .blocking_recv()
            .map_err(|_| "the metrics writer has stopped".to_owned())??;
        report.samples += samples;
        report.chunks += chunks;
        report.dropped_ranges += dropped;
        self.stats
            .compaction
            .sealed_samples
            .fetch_add(samples, Ordering::Relaxed);
        Ok(())
    }

    fn raw_chunk(&self, series_id: i64, hour: i64) -> rusqlite::Result<Vec<(i64, f64)>> {
        let id = chunk_id(series_id, Resolution::Raw, hour);
        let blob: Option<Vec<u8>> = self
            .conn
            .prepare_cached("SELECT data FROM chunks WHERE id = ?1")?
            .query_row([id], |r| r.get(0))
            .optional()?;
        match blob {
            Some(blob) => codec::decode_raw(&blob).map_err(damaged),
            None => Ok(Vec::new()),
        }
    }

    /// Seals the head rows of one series before `cutoff` into `work`.
    fn seal_series(
        &self,
        series_id: i64,
        kind: Kind,
        max_seq: i64,
        cutoff: i64,
        work: &mut SealWork,
    ) -> rusqlite::Result<()> {
        let rows = self.head.points(series_id, 0, cutoff, max_seq);
        let mut fresh: BTreeMap<i64, Vec<(i64, f64)>> = BTreeMap::new();
        for point in rows {
            fresh
                .entry(Resolution::Raw.window_of(point.0))
                .or_default()
                .push(point);
        }
        let mut hours: BTreeSet<i64> = fresh.keys().copied().collect();
        // A counter's first rate in the next sealed hour depends on the last reading before
        // it: when sealing lands before an hour already sealed, that hour is rolled up again.
        if kind == Kind::Counter {
            let (_, end) = chunk_range(series_id, Resolution::Raw, i64::MAX);
            let mut next = self.conn.prepare_cached(
                "SELECT id FROM chunks WHERE id > ?1 AND id < ?2 ORDER BY id LIMIT 1",
            )?;
            for &hour in fresh.keys() {
                let after = chunk_id(series_id, Resolution::Raw, hour);
                if let Some(id) = next
                    .query_row(params![after, end], |r| r.get::<_, i64>(0))
                    .optional()?
                {
                    hours.insert(window_of_id(id, Resolution::Raw));
                }
            }
        }
        // The newest reading of each hour handled here, for the next one's first rate.
        work.sealed.push(series_id);
        let mut lasts: BTreeMap<i64, (i64, f64)> = BTreeMap::new();
        let mut rolled: BTreeMap<Resolution, BTreeMap<i64, Vec<Rollup>>> = BTreeMap::new();
        for &hour in &hours {
            let stored = self.raw_chunk(series_id, hour)?;
            let points = match fresh.remove(&hour) {
                Some(new) => {
                    work.samples += new.len() as u64;
                    let points = chunks::merge(stored, new);
                    work.chunks.push((
                        chunk_id(series_id, Resolution::Raw, hour),
                        points.len() as i64,
                        codec::encode_raw(&points),
                    ));
                    // Only what was read: the rest of the hour may be in the head already.
                    points
                }
                None => stored,
            };
            let previous = match lasts.range(..hour).next_back() {
                Some((&h, &last)) if h == hour - HOUR_MS => Some(last),
                handled => {
                    let sealed = chunks::sealed_reading_before(&self.conn, series_id, hour)?;
                    match (handled.map(|(_, last)| *last), sealed) {
                        (Some(mine), Some(theirs)) if theirs.0 > mine.0 => Some(theirs),
                        (Some(mine), _) => Some(mine),
                        (None, theirs) => theirs,
                    }
                }
            };
            if let Some(&last) = points.last() {
                lasts.insert(hour, last);
            }
            let values = chunks::series_points(kind, previous, &points);
            for resolution in Resolution::ROLLUPS {
                rolled
                    .entry(resolution)
                    .or_default()
                    .insert(hour, chunks::roll_up(&values, resolution.bucket_ms()));
            }
        }
        for (resolution, by_hour) in rolled {
            let mut windows: BTreeMap<i64, Vec<(i64, Vec<Rollup>)>> = BTreeMap::new();
            for (hour, points) in by_hour {
                windows
                    .entry(resolution.window_of(hour))
                    .or_default()
                    .push((hour, points));
            }
            for (window, hours) in windows {
                let id = chunk_id(series_id, resolution, window);
                let blob: Option<Vec<u8>> = self
                    .conn
                    .prepare_cached("SELECT data FROM chunks WHERE id = ?1")?
                    .query_row([id], |r| r.get(0))
                    .optional()?;
                let mut points = match blob {
                    Some(blob) => codec::decode_rollups(&blob).map_err(damaged)?,
                    None => Vec::new(),
                };
                points.retain(|p| {
                    !hours
                        .iter()
                        .any(|(hour, _)| p.ts >= *hour && p.ts < hour + HOUR_MS)
                });
                points.extend(hours.into_iter().flat_map(|(_, p)| p));
                points.sort_by_key(|p| p.ts);
                if points.is_empty() {
                    work.dropped.push((id, id + 1));
                } else {
                    work.chunks
                        .push((id, points.len() as i64, codec::encode_rollups(&points)));
                }
            }
        }
        Ok(())
    }

    /// Drops every chunk whose window ended before its resolution's retention.
    fn enforce_retention(
        &self,
        series: &[(i64, Kind)],
        now: i64,
        report: &mut PassReport,
    ) -> Result<(), String> {
        for batch in series.chunks(DROP_BATCH_SERIES) {
            let mut work = SealWork::default();
            for &(series_id, _) in batch {
                for resolution in Resolution::ALL {
                    let horizon = self.retention.horizon(resolution, now);
                    let range =
                        chunk_range(series_id, resolution, horizon - resolution.window_ms() + 1);
                    if range.1 > range.0 {
                        work.dropped.push(range);
                    }
                }
            }
            self.submit(work, report)?;
        }
        Ok(())
    }

    /// Bytes the file's pages in use take.
    fn used_bytes(&self) -> rusqlite::Result<u64> {
        let pages: i64 = self.conn.query_row("PRAGMA page_count", [], |r| r.get(0))?;
        let free: i64 = self
            .conn
            .query_row("PRAGMA freelist_count", [], |r| r.get(0))?;
        let size: i64 = self.conn.query_row("PRAGMA page_size", [], |r| r.get(0))?;
        Ok(((pages - free).max(0) * size) as u64)
    }

    /// Over the size cap, drops the oldest day of the finest resolution that has data older
    /// than two days (raw first: the rollups keep the history), and says so in the log.
    fn enforce_cap(
        &mut self,
        series: &[(i64, Kind)],
        now: i64,
        report: &mut PassReport,
    ) -> Result<(), String> {
        let cap = self.retention.max_bytes;
        if cap == 0 {
            return Ok(());
        }
        let used = self.used_bytes().map_err(|e| e.to_string())?;
        if used <= cap {
            self.cap_state = None;
            return Ok(());
        }
        let keep_from = now - CAP_KEEPS_MS;
        for resolution in Resolution::ALL {
            let window = resolution.window_ms();
            let mut oldest: Option<i64> = None;
            for &(series_id, _) in series {
                let (low, high) = chunk_range(series_id, resolution, i64::MAX);
                let first: Option<i64> = self
                    .conn
                    .prepare_cached(
                        "SELECT id FROM chunks WHERE id >= ?1 AND id < ?2 ORDER BY id LIMIT 1",
                    )
                    .and_then(|mut s| s.query_row(params![low, high], |r| r.get(0)).optional())
                    .map_err(|e| e.to_string())?;
                if let Some(id) = first {
                    let start = window_of_id(id, resolution);
                    oldest = Some(oldest.map_or(start, |o: i64| o.min(start)));
                }
            }
            // Whole chunks only, and none reaching into the last two days.
            let Some(oldest) = oldest.filter(|o| o + window <= keep_from) else {
                continue;
            };
            let before = (oldest + DAY_MS.max(window)).min(keep_from - window + 1);
            let message = CapState::Dropping(resolution, before);
            if self.cap_state != Some(message) {
                let kept = if resolution == Resolution::Raw {
                    " (the rollups keep their history)"
                } else {
                    ""
                };
                tracing::warn!(
                    used_mb = used / 1_000_000,
                    cap_mb = cap / 1_000_000,
                    resolution = resolution.name(),
                    before = %crate::db::rfc3339(before.div_euclid(1_000)),
                    "metrics.db is over its size cap: dropping {} data older than {}{kept}.",
                    resolution.name(),
                    crate::db::rfc3339(before.div_euclid(1_000))
                );
                self.cap_state = Some(message);
            }
            for batch in series.chunks(DROP_BATCH_SERIES) {
                let mut work = SealWork::default();
                for &(series_id, _) in batch {
                    work.dropped
                        .push(chunk_range(series_id, resolution, before));
                }
                self.submit(work, report)?;
            }
            return Ok(());
        }
        if self.cap_state != Some(CapState::Stuck) {
            tracing::warn!(
                used_mb = used / 1_000_000,
                cap_mb = cap / 1_000_000,
                "metrics.db is over its size cap but holds nothing older than two days to drop; \
                 raise metrics_max_size_mb."
            );
            self.cap_state = Some(CapState::Stuck);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;
    use crate::metrics_store::stats;
    use crate::metrics_store::{Batch, MetricsStore, Sample, SeriesKey, StoreOptions};

    const NOW: i64 = 1_800_000_000_000;

    #[cfg(target_os = "linux")]
    #[test]
    fn the_compactor_thread_runs_at_the_lowest_priority_and_leaves_others_alone() {
        let own = || rustix::process::getpriority_process(Some(rustix::thread::gettid())).unwrap();
        let before = own();
        let lowered = std::thread::spawn(move || {
            background_priority();
            own()
        })
        .join()
        .unwrap();
        assert_eq!(lowered, COMPACTOR_NICE);
        assert_eq!(own(), before, "only the compactor's thread is lowered");
    }

    /// A store holding `days` of one gauge and one counter every minute, up to `NOW`.
    fn store_with(retention: Retention, days: i64) -> (tempfile::TempDir, MetricsStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = MetricsStore::open_with(
            &dir.path().join("metrics.db"),
            StoreOptions {
                retention,
                background_compaction: false,
                sink: crate::metrics_store::Sink::Head,
                series_limits: crate::metrics_store::SeriesLimits::NONE,
                ..StoreOptions::default()
            },
        )
        .unwrap();
        let keys = ["m.level", "m.octets_total"].map(|metric| {
            Arc::new(SeriesKey {
                node_id: 1,
                metric: metric.into(),
                tags: "".into(),
            })
        });
        let samples: Vec<Sample> = (0..days * 24 * 60)
            .flat_map(|k| {
                let ts = NOW - days * DAY_MS + k * 60_000;
                keys.iter().map(move |key| Sample {
                    key: key.clone(),
                    ts_ms: ts,
                    value: (k % 97) as f64 * 1_000.0 + k as f64,
                })
            })
            .collect();
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(store.write(Batch {
                component_id: 1,
                batch_id: None,
                lines: samples.len(),
                samples,
            }))
            .unwrap();
        (dir, store)
    }

    fn levels(dir: &tempfile::TempDir) -> Vec<stats::Level> {
        stats::collect(&dir.path().join("metrics.db"))
            .unwrap()
            .levels
    }

    #[test]
    fn retention_drops_whole_chunks_per_resolution() {
        let retention = Retention {
            raw_days: 2,
            five_minute_days: 4,
            hour_days: 30,
            max_bytes: 0,
        };
        let (dir, store) = store_with(retention, 6);
        let mut compactor = store.compactor().unwrap();
        let report = compactor.pass(NOW).unwrap();
        assert!(
            report.samples > 0 && report.dropped_ranges > 0,
            "{report:?}"
        );
        let [raw, five, hour] = <[stats::Level; 3]>::try_from(levels(&dir)).unwrap();
        // Whole chunks only: the oldest kept window ends after the horizon.
        let horizon = |days: i64| (NOW - days * DAY_MS) / 1_000;
        let oldest = |level: &stats::Level, window: i64| level.oldest.unwrap() + window / 1_000;
        assert!(oldest(&raw, HOUR_MS) > horizon(2), "{raw:?}");
        assert!(raw.oldest.unwrap() <= horizon(2), "{raw:?}");
        assert!(oldest(&five, DAY_MS) > horizon(4), "{five:?}");
        assert!(five.oldest.unwrap() <= horizon(4), "{five:?}");
        assert!(hour.oldest.unwrap() <= horizon(6), "{hour:?}");
        // An old range is answered from the rollups that are left.
        let conn = store.reader.get().unwrap();
        let query = crate::metrics_store::query::RangeQuery::new(
            1,
            Some("m.level".into()),
            (horizon(5), horizon(5) + 3_599),
            Some(60),
            plantwatch_shared::api::Aggregation::Max,
            &store.retention,
            NOW,
        );
        assert_eq!(query.resolution, Resolution::Hour);
        let answer = crate::metrics_store::query::range(&conn, &store.head, &query).unwrap();
        assert_eq!(answer[0].points.len(), 1, "{answer:?}");
    }

    /// Log lines written while `f` runs on this thread.
    fn logged<T>(f: impl FnOnce() -> T) -> (T, String) {
        #[derive(Clone, Default)]
        struct Lines(Arc<Mutex<Vec<u8>>>);
        impl Write for Lines {
            fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(bytes);
                Ok(bytes.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let lines = Lines::default();
        let writer = lines.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        let out = tracing::subscriber::with_default(subscriber, f);
        let text = String::from_utf8(lines.0.lock().unwrap().clone()).unwrap();
        (out, text)
    }

    #[test]
    fn over_the_size_cap_the_oldest_raw_day_goes_first_and_the_log_says_so() {
        let retention = Retention {
            max_bytes: 1,
            ..Retention::default()
        };
        let (dir, store) = store_with(retention, 5);
        let mut compactor = store.compactor().unwrap();
        let (report, log) = logged(|| compactor.pass(NOW).unwrap());
        assert!(report.dropped_ranges > 0, "{report:?}");
        assert!(
            log.contains("over its size cap: dropping raw data older than"),
            "{log}"
        );
        assert!(log.contains("the rollups keep their history"), "{log}");
        let [raw, five, hour] = <[stats::Level; 3]>::try_from(levels(&dir)).unwrap();
        let first_day = (NOW - 5 * DAY_MS) / 1_000;
        assert!(raw.oldest.unwrap() >= first_day + 86_400 - 3_600, "{raw:?}");
        assert!(five.oldest.unwrap() <= first_day && hour.oldest.unwrap() <= first_day);
        // A day a pass, raw first, then the 5-minute rollups; never the last two days; then
        // a warning that nothing is left to drop.
        let mut logs = log;
        for _ in 0..8 {
            compactor.retention_due();
            logs += &logged(|| compactor.pass(NOW).unwrap()).1;
        }
        let raw_at = logs.rfind("dropping raw").unwrap();
        let five_at = logs.find("dropping 5m").expect(&logs);
        assert!(raw_at < five_at, "{logs}");
        assert!(logs.contains("holds nothing older than two days"), "{logs}");
        let keep = (NOW - 2 * DAY_MS) / 1_000;
        let [raw, five, hour] = <[stats::Level; 3]>::try_from(levels(&dir)).unwrap();
        assert!(raw.oldest.unwrap() + 3_600 > keep, "{raw:?}");
        assert!(five.oldest.unwrap() + 86_400 > keep, "{five:?}");
        assert!(hour.points > 0, "{hour:?}");
        assert_eq!(raw.newest, Some(NOW / 1_000), "the newest hour is kept");
    }
}
