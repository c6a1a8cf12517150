//! The embedded metric store, `metrics.db`: one writer thread commits batches of samples to
//! the head's log (several requests' batches in one transaction when they queue up), remembers
//! which batch ids it has committed so a batch sent twice is stored once, and then adds them to
//! the in-memory [`Head`] and the [`HotWindow`] that live views and the alert evaluator read.
//! The [`compactor`] seals the head into compressed chunks and rollups through the same writer;
//! queries ([`query`]) read the head in memory and chunks through their own pool (WAL lets them
//! run beside the writer). Head: [`head`]; layout: [`chunks`]; encoding: [`codec`]; design:
//! `docs/storage.md`.

pub mod backend;
pub mod chunks;
pub mod codec;
pub mod compactor;
pub mod head;
pub mod hot;
pub mod query;
pub mod stats;

use std::collections::HashMap;

use rustc_hash::FxHashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rusqlite::{Connection, OptionalExtension as _, params};
use tokio::sync::{mpsc, oneshot};

use crate::db::{Db, DbError};
use crate::telemetry::registry::figures;
use crate::telemetry::{Counter, Exposition, Gauge, Report};
use compactor::{Compactor, SealWork};
pub use compactor::{PassReport, Retention};
pub use head::Head;
pub use hot::HotWindow;

/// Migrations of `metrics.db`, in order.
pub const MIGRATIONS: &[(&str, &str)] = &[
    (
        "0001_samples",
        include_str!("../../../migrations/metrics/0001_samples.sql"),
    ),
    (
        "0002_chunks",
        include_str!("../../../migrations/metrics/0002_chunks.sql"),
    ),
    (
        "0003_remote_queue",
        include_str!("../../../migrations/metrics/0003_remote_queue.sql"),
    ),
    (
        "0004_head_log",
        include_str!("../../../migrations/metrics/0004_head_log.sql"),
    ),
];

/// Batch ids are remembered this long: longer than a daemon's outbox keeps a batch (7 days).
const BATCH_IDS_KEPT: Duration = Duration::from_secs(8 * 24 * 3600);
/// Most samples committed in one transaction when requests queue up.
const GROUP_COMMIT_SAMPLES: usize = 200_000;
/// Samples the head holds by default before writes are refused as busy (about 30 bytes each).
pub const HEAD_MAX_SAMPLES: u64 = 50_000_000;
/// Requests waiting for the writer before senders wait too (back-pressure).
const QUEUE: usize = 64;

/// Whether a series counts up (answered as a per-second rate) or is a level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Gauge,
    Counter,
}

impl Kind {
    /// By naming convention (as in Prometheus): fields ending in `_total` are counters.
    pub fn of_field(field: &str) -> Kind {
        if field.ends_with("_total") {
            Kind::Counter
        } else {
            Kind::Gauge
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Gauge => "gauge",
            Kind::Counter => "counter",
        }
    }

    fn parse(text: &str) -> Kind {
        if text == "counter" {
            Kind::Counter
        } else {
            Kind::Gauge
        }
    }
}

/// Identity of a series: node, metric (`measurement.field`) and canonical tags.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SeriesKey {
    pub node_id: i64,
    /// Shared: the samples of one request share their metric names and each line's tags.
    pub metric: Arc<str>,
    /// `k=v,k=v` sorted by key; `node_id` is not among them.
    pub tags: Arc<str>,
}

/// Series ids by key (the writer's map; hashed fast, keys are the server's own).
pub type SeriesIds = FxHashMap<Arc<SeriesKey>, i64>;

/// One sample to store.
#[derive(Debug, Clone)]
pub struct Sample {
    pub key: Arc<SeriesKey>,
    pub ts_ms: i64,
    pub value: f64,
}

#[cfg(test)]
impl Sample {
    /// A sample of `series` written `metric{k=v,…}` (tags in canonical order), for tests.
    pub fn of(node_id: i64, series: &str, ts_ms: i64, value: f64) -> Sample {
        let (metric, tags) = series.split_once('{').unwrap_or((series, ""));
        Sample {
            key: Arc::new(SeriesKey {
                node_id,
                metric: metric.into(),
                tags: tags.trim_end_matches('}').into(),
            }),
            ts_ms,
            value,
        }
    }
}

/// What one request hands to the writer.
#[derive(Debug)]
pub struct Batch {
    pub component_id: i64,
    /// The sender's id for this batch; `None` when it sent none (Telegraf).
    pub batch_id: Option<String>,
    pub lines: usize,
    pub samples: Vec<Sample>,
}

/// How a batch ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Committed {
    Stored,
    /// Its id was committed before: nothing was written again.
    Duplicate,
    /// Stored, but for the samples of new series past a limit, which were dropped.
    Limited(LimitHit),
}

/// Limits on series, against senders that invent them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SeriesLimits {
    /// Series one node may have.
    pub per_node: u64,
    /// New series one sender (collector or agent) may create per hour.
    pub new_per_sender_hour: u64,
}

impl SeriesLimits {
    /// No limit (benchmarks and tools that load data sets).
    pub const NONE: SeriesLimits = SeriesLimits {
        per_node: u64::MAX,
        new_per_sender_hour: u64::MAX,
    };
}

impl Default for SeriesLimits {
    fn default() -> Self {
        SeriesLimits {
            per_node: 20_000,
            new_per_sender_hour: 1_000_000,
        }
    }
}

/// Samples of new series a batch could not store, and the first limit they met.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimitHit {
    pub samples: usize,
    pub message: String,
}

/// Counters of the ingest path, for the summary and `GET /metrics`.
#[derive(Debug, Default)]
pub struct Stats {
    pub samples: Counter,
    pub batches: Counter,
    pub duplicate_batches: Counter,
    pub rejected_lines: Counter,
    /// Gzip bodies answered 503 because the decompression budget was spent.
    pub busy_bodies: Counter,
    /// Samples refused because their node or sender reached its new-series limit.
    pub series_limited_samples: Counter,
    pub series: Gauge,
    /// Commits of the writer and the time they took.
    pub writes: Counter,
    pub write_micros: Counter,
    pub compaction: compactor::CompactionStats,
    /// Samples in the remote-write queue (remote-write backend only).
    pub remote_queued: Gauge,
    rate: std::sync::Mutex<RateWindow>,
}

#[derive(Debug, Default)]
struct RateWindow {
    /// (when, samples committed then), newest last, over about the last 10 s.
    points: std::collections::VecDeque<(Instant, u64)>,
}

/// Span of the samples/s rate.
const RATE_SPAN: Duration = Duration::from_secs(10);

impl Stats {
    fn committed(&self, samples: usize) {
        self.samples.fetch_add(samples as u64, Ordering::Relaxed);
        if let Ok(mut rate) = self.rate.lock() {
            let now = Instant::now();
            rate.points.push_back((now, samples as u64));
            while rate
                .points
                .front()
                .is_some_and(|(t, _)| now.duration_since(*t) > RATE_SPAN)
            {
                rate.points.pop_front();
            }
        }
    }

    /// Samples committed per second over the last 10 s.
    pub fn samples_per_second(&self) -> f64 {
        let Ok(mut rate) = self.rate.lock() else {
            return 0.0;
        };
        let now = Instant::now();
        while rate
            .points
            .front()
            .is_some_and(|(t, _)| now.duration_since(*t) > RATE_SPAN)
        {
            rate.points.pop_front();
        }
        let total: u64 = rate.points.iter().map(|(_, n)| n).sum();
        total as f64 / RATE_SPAN.as_secs_f64()
    }
}

pub(crate) enum Job {
    Write {
        batch: Batch,
        reply: oneshot::Sender<Result<Committed, String>>,
    },
    Seal {
        work: SealWork,
        reply: oneshot::Sender<Result<(), String>>,
    },
    /// The engine has taken the queued samples up to `seq` (inclusive), `samples` of them.
    Forwarded {
        seq: i64,
        samples: u64,
        reply: oneshot::Sender<Result<(), String>>,
    },
}

impl Job {
    fn samples(&self) -> usize {
        match self {
            Job::Write { batch, .. } => batch.samples.len(),
            Job::Seal { work, .. } => work.samples as usize,
            Job::Forwarded { .. } => 0,
        }
    }
}

/// How the store is run.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    pub retention: Retention,
    /// Whether the compactor runs in the background (benchmarks and tests that drive it
    /// themselves turn it off and call [`MetricsStore::compact`]).
    pub background_compaction: bool,
    /// Where committed samples go.
    pub sink: Sink,
    pub series_limits: SeriesLimits,
    /// Samples the head may hold before writes are refused as busy.
    pub head_max_samples: u64,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            retention: Retention::default(),
            background_compaction: true,
            sink: Sink::Head,
            series_limits: SeriesLimits::default(),
            head_max_samples: HEAD_MAX_SAMPLES,
        }
    }
}

/// Where the writer puts committed samples.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sink {
    /// The head, which the compactor seals into chunks (the embedded backend).
    Head,
    /// The write-ahead queue the remote-write forwarder sends on and empties; there is no
    /// compactor (the remote-write backend).
    RemoteQueue,
}

impl Sink {
    /// Samples committed: those the remote engine has yet to take are counted as queued.
    fn committed(self, stats: &Stats, samples: usize) {
        if self == Sink::RemoteQueue {
            stats
                .remote_queued
                .fetch_add(samples as u64, Ordering::Relaxed);
        }
    }

    /// Whether a compactor seals what is committed.
    fn compacted(self) -> bool {
        self == Sink::Head
    }
}

/// Handle on the store; cheap to clone.
#[derive(Clone, Debug)]
pub struct MetricsStore {
    jobs: mpsc::Sender<Job>,
    /// Read-only work: queries and series listings.
    pub reader: Db,
    /// Committed samples not sealed yet.
    pub head: Arc<Head>,
    pub hot: Arc<HotWindow>,
    pub stats: Arc<Stats>,
    pub retention: Retention,
    /// Samples the head may hold before writes are refused as busy.
    pub head_max_samples: u64,
    path: PathBuf,
    committed_seq: Arc<AtomicI64>,
    compaction: Arc<Mutex<()>>,
}

impl MetricsStore {
    /// Opens `metrics.db` with the default retention and the background compactor.
    pub fn open(path: &Path) -> Result<MetricsStore, DbError> {
        MetricsStore::open_with(path, StoreOptions::default())
    }

    /// Opens (creating and migrating) `metrics.db` at `path` and starts its writer thread (and
    /// the compactor's), which stop once every handle is dropped.
    pub fn open_with(path: &Path, options: StoreOptions) -> Result<MetricsStore, DbError> {
        free_pages_returned(path)?;
        let reader = Db::open_with(path, MIGRATIONS)?;
        let mut conn = Connection::open(path)?;
        conn.busy_timeout(Duration::from_secs(5))?;
        // A batch is acknowledged only once it is on disk: FULL syncs the WAL at each commit.
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "cache_size", -65_536)?;
        // The -wal file is cut back to this after a checkpoint instead of keeping its peak.
        conn.pragma_update(None, "journal_size_limit", WAL_FILE_KEPT_BYTES)?;
        let stats = Arc::new(Stats::default());
        let hot = Arc::new(HotWindow::default());
        let series = load_series(&conn)?;
        stats.series.store(series.len() as u64, Ordering::Relaxed);
        prune_batch_ids(&mut conn)?;
        head::adopt_legacy_table(&mut conn)?;
        let started = Instant::now();
        let (head, logged_seq) = head::replay(&conn)?;
        if !head.is_empty() {
            tracing::info!(
                samples = head.len(),
                ms = started.elapsed().as_millis() as u64,
                "Read the unsealed samples back from the head log."
            );
        }
        let head = Arc::new(head);
        let (seq, queued): (i64, i64) = conn.query_row(
            "SELECT max(?1, coalesce((SELECT max(seq) FROM remote_queue), 0)),
                    (SELECT count(*) FROM remote_queue)",
            [logged_seq],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        stats.remote_queued.store(queued as u64, Ordering::Relaxed);
        if queued > 0 && options.sink != Sink::RemoteQueue {
            tracing::warn!(
                samples = queued,
                "metrics.db holds samples queued for a remote engine that were never sent; \
                 they stay queued until metrics_backend is \"remote_write\" again."
            );
        }
        // Arrival numbers never go back, even once the head is empty: a compactor still
        // finishing for an earlier handle must not take new rows for ones it read.
        let seq = seq.max(crate::clock::unix_ms() * 1_000);
        let committed_seq = Arc::new(AtomicI64::new(seq));
        let (jobs, receiver) = mpsc::channel(QUEUE);
        let mut per_node: HashMap<i64, u64> = HashMap::new();
        for key in series.keys() {
            *per_node.entry(key.node_id).or_default() += 1;
        }
        let mut writer = Writer {
            conn,
            series,
            per_node,
            new_by_sender: HashMap::new(),
            limits: options.series_limits,
            seq,
            committed_seq: committed_seq.clone(),
            head: head.clone(),
            hot: hot.clone(),
            stats: stats.clone(),
            pruned_at: Instant::now(),
            evicted_at: Instant::now(),
            sink: options.sink,
        };
        std::thread::Builder::new()
            .name("metrics-writer".into())
            .spawn(move || writer.run(receiver))
            .map_err(|e| DbError::Task(format!("starting the metrics writer: {e}")))?;
        let store = MetricsStore {
            jobs,
            reader,
            head,
            hot,
            stats,
            retention: options.retention.clone(),
            head_max_samples: options.head_max_samples,
            path: path.to_owned(),
            committed_seq,
            compaction: Arc::new(Mutex::new(())),
        };
        if options.background_compaction && options.sink.compacted() {
            let compactor = store.compactor()?;
            std::thread::Builder::new()
                .name("metrics-compactor".into())
                .spawn(move || compactor.run())
                .map_err(|e| DbError::Task(format!("starting the compactor: {e}")))?;
        }
        Ok(store)
    }

    fn compactor(&self) -> Result<Compactor, DbError> {
        Ok(Compactor::new(
            &self.path,
            self.head.clone(),
            self.jobs.downgrade(),
            self.committed_seq.clone(),
            self.retention.clone(),
            self.stats.clone(),
            self.compaction.clone(),
        )?)
    }

    /// Runs one compaction pass as if the time were `now_ms`, retention and size cap
    /// included, on a thread of its own at the background compactor's priority, and returns
    /// once it is committed.
    pub async fn compact(&self, now_ms: i64) -> Result<PassReport, DbError> {
        let mut compactor = self.compactor()?;
        let (reply, answer) = oneshot::channel();
        std::thread::Builder::new()
            .name("metrics-compact".into())
            .spawn(move || {
                compactor::background_priority();
                compactor.retention_due();
                let _ = reply.send(compactor.pass(now_ms));
            })
            .map_err(|e| DbError::Task(format!("starting a compaction: {e}")))?;
        answer
            .await
            .map_err(|e| DbError::Task(e.to_string()))?
            .map_err(DbError::Task)
    }

    /// Requests waiting for the writer.
    pub fn queued(&self) -> usize {
        self.jobs.max_capacity() - self.jobs.capacity()
    }

    /// Deletes the queued samples up to `seq` (inclusive), `samples` of them, once the remote
    /// engine has taken them.
    pub async fn forwarded(&self, seq: i64, samples: u64) -> Result<(), DbError> {
        let (reply, answer) = oneshot::channel();
        self.submit(
            Job::Forwarded {
                seq,
                samples,
                reply,
            },
            answer,
        )
        .await
    }

    /// Commits `batch` and returns once it is on disk.
    pub async fn write(&self, batch: Batch) -> Result<Committed, DbError> {
        let (reply, answer) = oneshot::channel();
        self.submit(Job::Write { batch, reply }, answer).await
    }

    /// Hands `job` to the writer and waits for its `answer`.
    async fn submit<T>(
        &self,
        job: Job,
        answer: oneshot::Receiver<Result<T, String>>,
    ) -> Result<T, DbError> {
        let stopped = || DbError::Task("the metrics writer has stopped".into());
        self.jobs.send(job).await.map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?.map_err(DbError::Task)
    }
}

impl Report for MetricsStore {
    fn report(&self, out: &mut Exposition) {
        let stats = &self.stats;
        let compaction = &stats.compaction;
        for (figure, value) in [
            (&figures::INGEST_SAMPLES, stats.samples.get() as f64),
            (
                &figures::INGEST_SAMPLES_PER_SECOND,
                stats.samples_per_second(),
            ),
            (&figures::INGEST_BATCHES, stats.batches.get() as f64),
            (
                &figures::INGEST_DUPLICATE_BATCHES,
                stats.duplicate_batches.get() as f64,
            ),
            (
                &figures::INGEST_REJECTED_LINES,
                stats.rejected_lines.get() as f64,
            ),
            (&figures::INGEST_BUSY_BODIES, stats.busy_bodies.get() as f64),
            (
                &figures::INGEST_SERIES_LIMITED_SAMPLES,
                stats.series_limited_samples.get() as f64,
            ),
            (&figures::STORE_SERIES, stats.series.get() as f64),
            (&figures::STORE_WRITE_QUEUE, self.queued() as f64),
            (
                &figures::STORE_SEALED_SAMPLES,
                compaction.sealed_samples.get() as f64,
            ),
            (
                &figures::STORE_COMPACTION_PASSES,
                compaction.passes.get() as f64,
            ),
            (
                &figures::STORE_COMPACTION_PASS_SECONDS,
                compaction.last_pass_us.get() as f64 / 1e6,
            ),
        ] {
            out.value(figure, value);
        }
        let write = &figures::STORE_WRITE_SECONDS;
        out.part(write, "_sum", &[], stats.write_micros.get() as f64 / 1e6);
        out.part(write, "_count", &[], stats.writes.get() as f64);
    }
}

fn load_series(conn: &Connection) -> rusqlite::Result<SeriesIds> {
    let mut statement = conn.prepare("SELECT id, node_id, metric, tags FROM series")?;
    let rows = statement.query_map([], |row| {
        Ok((
            Arc::new(SeriesKey {
                node_id: row.get(1)?,
                metric: row.get(2)?,
                tags: row.get(3)?,
            }),
            row.get::<_, i64>(0)?,
        ))
    })?;
    rows.collect()
}

fn prune_batch_ids(conn: &mut Connection) -> rusqlite::Result<()> {
    let before = crate::clock::unix_secs() - BATCH_IDS_KEPT.as_secs() as i64;
    conn.execute(
        "DELETE FROM ingest_batches WHERE committed_at < ?1",
        [before],
    )?;
    Ok(())
}

struct Writer {
    conn: Connection,
    series: SeriesIds,
    /// Series per node.
    per_node: HashMap<i64, u64>,
    /// New series per sender in the current hour: (hour, count).
    new_by_sender: HashMap<i64, (i64, u64)>,
    limits: SeriesLimits,
    /// Last `seq` given to a head row.
    seq: i64,
    committed_seq: Arc<AtomicI64>,
    head: Arc<Head>,
    hot: Arc<HotWindow>,
    stats: Arc<Stats>,
    pruned_at: Instant,
    /// When the hot window last released the series that stopped arriving.
    evicted_at: Instant,
    sink: Sink,
}

impl Writer {
    fn run(&mut self, mut receiver: mpsc::Receiver<Job>) {
        while let Some(first) = receiver.blocking_recv() {
            let mut jobs = vec![first];
            let mut queued = jobs[0].samples();
            while queued < GROUP_COMMIT_SAMPLES {
                match receiver.try_recv() {
                    Ok(job) => {
                        queued += job.samples();
                        jobs.push(job);
                    }
                    Err(_) => break,
                }
            }
            let seq_before = self.seq;
            let started = Instant::now();
            let mut logged = Vec::new();
            let committed = self.commit(&mut jobs, &mut logged);
            self.stats.writes.fetch_add(1, Ordering::Relaxed);
            self.stats
                .write_micros
                .fetch_add(started.elapsed().as_micros() as u64, Ordering::Relaxed);
            match committed {
                Ok(outcomes) => {
                    self.head.append(seq_before + 1, &logged);
                    self.committed_seq.store(self.seq, Ordering::Release);
                    for (job, outcome) in jobs.into_iter().zip(outcomes) {
                        match job {
                            Job::Write { batch, reply } => {
                                if outcome != Committed::Duplicate {
                                    self.hot.record(
                                        &batch.samples,
                                        &self.series,
                                        crate::clock::unix_ms() - hot::HOT_WINDOW_MS,
                                    );
                                    self.stats.committed(batch.samples.len());
                                    self.stats.batches.fetch_add(1, Ordering::Relaxed);
                                    self.sink.committed(&self.stats, batch.samples.len());
                                } else {
                                    self.stats.duplicate_batches.fetch_add(1, Ordering::Relaxed);
                                }
                                let _ = reply.send(Ok(outcome));
                            }
                            Job::Seal { work, reply } => {
                                self.head
                                    .remove_sealed(&work.sealed, work.cutoff, work.max_seq);
                                if work.pass_end {
                                    self.return_free_pages();
                                }
                                let _ = reply.send(Ok(()));
                            }
                            Job::Forwarded { samples, reply, .. } => {
                                self.stats.remote_queued.fetch_sub(
                                    samples.min(self.stats.remote_queued.load(Ordering::Relaxed)),
                                    Ordering::Relaxed,
                                );
                                let _ = reply.send(Ok(()));
                            }
                        }
                    }
                }
                Err(error) => {
                    tracing::error!(%error, "Could not store samples.");
                    self.seq = seq_before;
                    // Series ids handed out in the rolled-back transaction do not exist.
                    if let Ok(series) = load_series(&self.conn) {
                        self.per_node.clear();
                        for key in series.keys() {
                            *self.per_node.entry(key.node_id).or_default() += 1;
                        }
                        self.series = series;
                    }
                    for job in jobs {
                        match job {
                            Job::Write { reply, .. } => {
                                let _ = reply.send(Err(error.to_string()));
                            }
                            Job::Seal { reply, .. } | Job::Forwarded { reply, .. } => {
                                let _ = reply.send(Err(error.to_string()));
                            }
                        }
                    }
                }
            }
            if self.evicted_at.elapsed() > Duration::from_secs(60) {
                self.evicted_at = Instant::now();
                self.hot.evict(crate::clock::unix_ms());
            }
            if self.pruned_at.elapsed() > Duration::from_secs(3600) {
                self.pruned_at = Instant::now();
                if let Err(error) = prune_batch_ids(&mut self.conn) {
                    tracing::warn!(%error, "Could not prune old batch ids.");
                }
            }
        }
    }

    /// Whether a new series of `node_id` from `sender` is within the limits; counts it if so.
    fn admit_series(
        limits: SeriesLimits,
        per_node: &mut HashMap<i64, u64>,
        new_by_sender: &mut HashMap<i64, (i64, u64)>,
        (sender, node_id, hour): (i64, i64, i64),
    ) -> Result<(), String> {
        let on_node = per_node.get(&node_id).copied().unwrap_or(0);
        if on_node >= limits.per_node {
            return Err(format!(
                "node {node_id} has {on_node} series, the limit (max_series_per_node {})",
                limits.per_node
            ));
        }
        let (at, created) = new_by_sender.entry(sender).or_insert((hour, 0));
        if *at != hour {
            *at = hour;
            *created = 0;
        }
        if *created >= limits.new_per_sender_hour {
            return Err(format!(
                "this sender created {created} new series this hour, the limit \
                 (max_new_series_per_hour {})",
                limits.new_per_sender_hour
            ));
        }
        *created += 1;
        *per_node.entry(node_id).or_default() += 1;
        Ok(())
    }

    /// Returns the pages the log's deleted rows freed once they are more than a third of the
    /// file (they are reused first: the file does not grow while they last).
    fn return_free_pages(&mut self) {
        let pages = |pragma: &str| -> rusqlite::Result<i64> {
            self.conn.query_row(pragma, [], |r| r.get(0))
        };
        let (Ok(total), Ok(free)) = (pages("PRAGMA page_count"), pages("PRAGMA freelist_count"))
        else {
            return;
        };
        if free * 3 > total
            && let Err(error) = incremental_vacuum(&self.conn)
        {
            tracing::warn!(%error, "Could not return free pages of metrics.db.");
        }
    }

    /// Commits `jobs` in one transaction; the head samples logged are appended to `logged`
    /// (numbered from the `seq` after the one before the call) for the caller to add to the
    /// head once committed.
    fn commit(
        &mut self,
        jobs: &mut [Job],
        logged: &mut Vec<head::Logged>,
    ) -> rusqlite::Result<Vec<Committed>> {
        let first_seq = self.seq + 1;
        let tx = self.conn.transaction()?;
        let mut outcomes = Vec::with_capacity(jobs.len());
        let now = crate::clock::unix_secs();
        {
            let mut seen = tx.prepare_cached(
                "SELECT 1 FROM ingest_batches WHERE component_id = ?1 AND batch_id = ?2",
            )?;
            let mut remember = tx.prepare_cached(
                "INSERT INTO ingest_batches (component_id, batch_id, committed_at, lines)
                 VALUES (?1, ?2, ?3, ?4)",
            )?;
            let mut new_series = tx.prepare_cached(
                "INSERT INTO series (node_id, metric, tags, kind, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )?;
            let mut queue = tx.prepare_cached(
                "INSERT INTO remote_queue (series_id, ts, seq, value) VALUES (?1, ?2, ?3, ?4)",
            )?;
            // Two requests of one group may carry the same batch id.
            let mut in_group = std::collections::HashSet::new();
            for job in jobs {
                let batch = match job {
                    Job::Write { batch, .. } => batch,
                    Job::Seal { work, .. } => {
                        apply_seal(&tx, work)?;
                        outcomes.push(Committed::Stored);
                        continue;
                    }
                    Job::Forwarded { seq, .. } => {
                        tx.prepare_cached("DELETE FROM remote_queue WHERE seq <= ?1")?
                            .execute([*seq])?;
                        outcomes.push(Committed::Stored);
                        continue;
                    }
                };
                if let Some(id) = &batch.batch_id {
                    let duplicate = !in_group.insert((batch.component_id, id.clone()))
                        || seen
                            .query_row(params![batch.component_id, id], |_| Ok(()))
                            .optional()?
                            .is_some();
                    if duplicate {
                        outcomes.push(Committed::Duplicate);
                        continue;
                    }
                    remember.execute(params![batch.component_id, id, now, batch.lines as i64])?;
                }
                let mut limited: Vec<usize> = Vec::new();
                let mut first_limit = None;
                for (index, sample) in batch.samples.iter().enumerate() {
                    let series_id = match self.series.get(&sample.key) {
                        Some(id) => *id,
                        None => {
                            if let Err(why) = Self::admit_series(
                                self.limits,
                                &mut self.per_node,
                                &mut self.new_by_sender,
                                (batch.component_id, sample.key.node_id, now / 3_600),
                            ) {
                                limited.push(index);
                                first_limit.get_or_insert(why);
                                continue;
                            }
                            let field = sample.key.metric.rsplit('.').next().unwrap_or_default();
                            new_series.execute(params![
                                sample.key.node_id,
                                sample.key.metric,
                                sample.key.tags,
                                Kind::of_field(field).as_str(),
                                now
                            ])?;
                            let id = tx.last_insert_rowid();
                            self.series.insert(sample.key.clone(), id);
                            self.stats.series.fetch_add(1, Ordering::Relaxed);
                            id
                        }
                    };
                    self.seq += 1;
                    match self.sink {
                        Sink::Head => logged.push((series_id, sample.ts_ms, sample.value)),
                        Sink::RemoteQueue => {
                            queue.execute(params![
                                series_id,
                                sample.ts_ms,
                                self.seq,
                                sample.value
                            ])?;
                        }
                    }
                }
                match first_limit {
                    None => outcomes.push(Committed::Stored),
                    Some(message) => {
                        // What the hot window and the counters see is what was stored.
                        let mut index = 0;
                        batch.samples.retain(|_| {
                            index += 1;
                            limited.binary_search(&(index - 1)).is_err()
                        });
                        outcomes.push(Committed::Limited(LimitHit {
                            samples: limited.len(),
                            message,
                        }));
                    }
                }
            }
        }
        head::log(&tx, first_seq, logged)?;
        tx.commit()?;
        Ok(outcomes)
    }
}

/// Applies one write of the compactor.
fn apply_seal(tx: &rusqlite::Transaction<'_>, work: &SealWork) -> rusqlite::Result<()> {
    head::mark_sealed(tx, &work.sealed, work.cutoff, work.max_seq)?;
    let mut store =
        tx.prepare_cached("INSERT OR REPLACE INTO chunks (id, points, data) VALUES (?1, ?2, ?3)")?;
    for (id, points, data) in &work.chunks {
        store.execute(params![id, points, data])?;
    }
    let mut drop = tx.prepare_cached("DELETE FROM chunks WHERE id >= ?1 AND id < ?2")?;
    for (low, high) in &work.dropped {
        drop.execute(params![low, high])?;
    }
    if work.pass_end {
        head::forget_sealed(tx, work.cutoff, work.max_seq)?;
    }
    Ok(())
}

/// Returns every free page to the file system: the pragma frees a page per step, so it is
/// stepped to its end (a one-step `execute` would free one). Then copies the pages into the
/// file and cuts the -wal file back, so both shrink now.
fn incremental_vacuum(conn: &Connection) -> rusqlite::Result<()> {
    let mut statement = conn.prepare("PRAGMA incremental_vacuum")?;
    let mut rows = statement.query([])?;
    while rows.next()?.is_some() {}
    // Busy readers make it stop short (and say so in a row it returns): the next one finishes.
    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
}

/// Largest `-wal` file kept after a checkpoint.
const WAL_FILE_KEPT_BYTES: i64 = 16 * 1024 * 1024;

/// Makes `metrics.db` able to return free pages to the file system (`auto_vacuum =
/// INCREMENTAL`), which takes a `VACUUM`: instant on a new file, once on a file made before
/// (which also gives back what it had grown to).
fn free_pages_returned(path: &Path) -> Result<(), DbError> {
    let conn = Connection::open(path)?;
    let mode: i64 = conn.query_row("PRAGMA auto_vacuum", [], |r| r.get(0))?;
    if mode == 2 {
        return Ok(());
    }
    let bytes = std::fs::metadata(path).map_or(0, |m| m.len());
    if bytes > 0 {
        tracing::info!(
            mib = bytes / 1_048_576,
            "Converting metrics.db to return freed pages (once; a VACUUM of the whole file)."
        );
    }
    conn.pragma_update(None, "auto_vacuum", "INCREMENTAL")?;
    conn.execute_batch("VACUUM")?;
    Ok(())
}

/// Reads a series' kind column.
pub(crate) fn kind_column(text: &str) -> Kind {
    Kind::parse(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(node_id: i64, metric: &str, ts_ms: i64, value: f64) -> Sample {
        Sample {
            key: Arc::new(SeriesKey {
                node_id,
                metric: metric.into(),
                tags: "".into(),
            }),
            ts_ms,
            value,
        }
    }

    /// Samples stored: in the head (as read back from its log) and in raw chunks.
    fn count(path: &Path) -> i64 {
        let conn = Connection::open(path).unwrap();
        let sealed: i64 = conn
            .query_row(
                "SELECT coalesce(sum(points), 0) FROM chunks WHERE (id >> 28) & 15 = 0",
                [],
                |r| r.get(0),
            )
            .unwrap();
        head::replay(&conn).unwrap().0.len() as i64 + sealed
    }

    #[tokio::test]
    async fn a_batch_id_is_stored_once_even_across_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("metrics.db");
        // Two hours ago: sealed into a chunk by the compactor while the test runs, kept by
        // retention.
        let t = (crate::clock::unix_secs() - 7_200) * 1_000;
        let batch = |id: &str| Batch {
            component_id: 7,
            batch_id: Some(id.into()),
            lines: 2,
            samples: vec![
                sample(1, "ping.rtt_avg", t + 1_000, 1.5),
                sample(1, "ping.rtt_avg", t + 2_000, 2.5),
            ],
        };
        let store = MetricsStore::open(&path).unwrap();
        assert_eq!(store.write(batch("a")).await.unwrap(), Committed::Stored);
        assert_eq!(store.write(batch("a")).await.unwrap(), Committed::Duplicate);
        drop(store);
        let store = MetricsStore::open(&path).unwrap();
        assert_eq!(store.write(batch("a")).await.unwrap(), Committed::Duplicate);
        assert_eq!(count(&path), 2);
        let mut other = batch("b");
        other.samples[0].ts_ms = t + 3_000;
        other.samples[1].ts_ms = t + 4_000;
        assert_eq!(store.write(other).await.unwrap(), Committed::Stored);
        assert_eq!(count(&path), 4);
        assert_eq!(store.stats.duplicate_batches.load(Ordering::Relaxed), 1);
        assert_eq!(store.stats.series.load(Ordering::Relaxed), 1);
    }

    #[tokio::test]
    async fn committed_samples_reach_the_hot_window() {
        let dir = tempfile::tempdir().unwrap();
        let store = MetricsStore::open(&dir.path().join("metrics.db")).unwrap();
        let now = crate::clock::unix_ms();
        store
            .write(Batch {
                component_id: 1,
                batch_id: None,
                lines: 1,
                samples: vec![
                    sample(4, "cpu.usage", now - 1_000, 10.0),
                    sample(4, "cpu.usage", now, 20.0),
                ],
            })
            .await
            .unwrap();
        let latest = store.hot.latest(4, "cpu.usage");
        assert_eq!(latest.map(|(_, v)| v), Some(20.0));
        assert!(store.stats.samples_per_second() > 0.0);
    }

    /// Bytes of the file and its -wal.
    fn on_disk(path: &Path) -> u64 {
        let wal = path.with_extension("db-wal");
        [path, wal.as_path()]
            .iter()
            .map(|p| std::fs::metadata(p).map_or(0, |m| m.len()))
            .sum()
    }

    #[tokio::test]
    async fn a_sealed_backlog_leaves_the_log_empty_and_the_file_small_and_a_restart_serves_the_rest()
     {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("metrics.db");
        let options = || StoreOptions {
            background_compaction: false,
            series_limits: SeriesLimits::NONE,
            ..StoreOptions::default()
        };
        let store = MetricsStore::open_with(&path, options()).unwrap();
        // Two hours of 200 series every 10 s ending 30 minutes ago (a replayed outbox), and
        // the last 30 minutes, which stay in the head.
        let now = crate::clock::unix_ms() / 10_000 * 10_000;
        let keys: Vec<Arc<SeriesKey>> = (0..200)
            .map(|i| {
                Sample::of(
                    1,
                    &format!("interface.in_octets_total{{ifIndex={i}}}"),
                    0,
                    0.0,
                )
                .key
            })
            .collect();
        let polls = |from: i64, to: i64| {
            (from..to)
                .step_by(10_000)
                .map(|ts| {
                    keys.iter()
                        .enumerate()
                        .map(|(i, key)| Sample {
                            key: key.clone(),
                            ts_ms: ts,
                            value: (ts / 10 + i as i64) as f64,
                        })
                        .collect::<Vec<_>>()
                })
                .collect::<Vec<_>>()
        };
        let old = polls(now - 150 * 60_000, now - 30 * 60_000);
        let recent = polls(now - 30 * 60_000, now);
        for (index, samples) in old.into_iter().chain(recent).enumerate() {
            let batch = Batch {
                component_id: 1,
                batch_id: Some(format!("b{index}")),
                lines: samples.len(),
                samples,
            };
            assert_eq!(store.write(batch).await.unwrap(), Committed::Stored);
        }
        let written = 900 * 200;
        assert_eq!(store.head.len(), written);
        let grown = on_disk(&path);
        store.compact(now).await.unwrap();
        // What is left: from the last 5-minute boundary at least 2 minutes old on.
        let cutoff =
            (now - compactor::GRACE_MS).div_euclid(compactor::SLICE_MS) * compactor::SLICE_MS;
        let left = ((now - cutoff) / 10_000) as u64 * 200;
        assert_eq!(store.head.len(), left);
        assert_eq!(count(&path), written as i64, "every sample once");
        let conn = Connection::open(&path).unwrap();
        let logged: i64 = conn
            .query_row("SELECT coalesce(sum(samples), 0) FROM head_log", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert!(
            logged as u64 >= left && logged < written as i64 / 4,
            "the log keeps only rows with unsealed samples: {logged}"
        );
        let pragma = |name: &str| -> i64 {
            conn.query_row(&format!("PRAGMA {name}"), [], |r| r.get(0))
                .unwrap()
        };
        assert_eq!(pragma("auto_vacuum"), 2);
        conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")
            .unwrap();
        let used = (pragma("page_count") - pragma("freelist_count")) * pragma("page_size");
        let file = on_disk(&path);
        assert!(
            file <= 2 * used as u64 && file < grown,
            "the file gave back the log's pages: {file} bytes on disk for {used} in use (it grew to {grown})"
        );
        drop(conn);
        drop(store);

        // A restart serves the unsealed rest from the log, and nothing sealed twice.
        let store = MetricsStore::open_with(&path, options()).unwrap();
        assert_eq!(store.head.len(), left);
        store.compact(now + 10 * 60_000).await.unwrap();
        assert!(store.head.is_empty());
        assert_eq!(count(&path), written as i64);
    }

    #[tokio::test]
    async fn a_file_of_the_one_row_per_sample_head_is_moved_into_the_log_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("metrics.db");
        {
            // A metrics.db as the release before wrote it.
            let mut conn = Connection::open(&path).unwrap();
            crate::db::apply_migrations(&mut conn, "metrics.db", &MIGRATIONS[..3]).unwrap();
            conn.execute_batch(
                "INSERT INTO series (id, node_id, metric, tags, kind, created_at)
                     VALUES (1, 4, 'cpu.usage', '', 'gauge', 0);
                 INSERT INTO head (series_id, ts, seq, value) VALUES
                     (1, 2000, 7, 20.0), (1, 1000, 5, 10.0), (1, 2000, 6, 19.0);",
            )
            .unwrap();
        }
        let options = || StoreOptions {
            background_compaction: false,
            ..StoreOptions::default()
        };
        let store = MetricsStore::open_with(&path, options()).unwrap();
        assert_eq!(store.head.len(), 3);
        assert_eq!(
            store.head.points(1, 0, 10_000, i64::MAX),
            [(1_000, 10.0), (2_000, 20.0)]
        );
        let conn = Connection::open(&path).unwrap();
        let tables: i64 = conn
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE name = 'head'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(tables, 0, "the old table is gone");
        let mode: i64 = conn
            .query_row("PRAGMA auto_vacuum", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mode, 2, "converted to give freed pages back");
        drop(store);
        // Opened again: the same samples, from the log, not moved twice.
        let store = MetricsStore::open_with(&path, options()).unwrap();
        assert_eq!(
            store.head.points(1, 0, 10_000, i64::MAX),
            [(1_000, 10.0), (2_000, 20.0)]
        );
        assert_eq!(count(&path), 3);
    }

    #[test]
    fn counters_are_named_total() {
        assert_eq!(Kind::of_field("in_octets_total"), Kind::Counter);
        assert_eq!(Kind::of_field("rtt_avg"), Kind::Gauge);
    }
}
