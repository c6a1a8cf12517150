//! Store-and-forward push of metrics, for the collector and the agent.
//!
//! Sources hand complete line-protocol lines to a [`Pusher`]. Every 10 s, or at 5,000 lines,
//! the lines become a batch: gzip-compressed, named with a batch id, and written to the
//! on-disk outbox *before* it is sent, so neither a dead server nor a killed daemon loses it.
//! A new batch is sent at once (current data keeps flowing); older batches are replayed
//! oldest first at a bounded rate while the server answers. A batch leaves the outbox only
//! when the server has acknowledged it; the server stores a batch id once, so a lost
//! acknowledgement never duplicates data. The outbox is bounded by size and age: the oldest
//! batches are dropped first, counted and logged.
//!
//! Under an active/standby pair (`docs/ha.md`) an acknowledged batch is kept a while longer
//! (`resend_grace`, 2 minutes) in `acked/`: the active acknowledges a batch once it is on its
//! own disk, a moment before its replica has it. When an answer carries a new term (another
//! server has taken over), the batches acknowledged in the grace period are sent again; the
//! new active stores each batch id once.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::mpsc;

use crate::Client;
use crate::api::OutboxStatus;
use crate::daemon::{Backoff, DaemonError, io, prepare_dir};

/// How a pusher batches, bounds and paces.
#[derive(Debug, Clone)]
pub struct PushOptions {
    /// The outbox directory.
    pub dir: PathBuf,
    /// Seal a batch at least this often (10 s).
    pub flush_every: Duration,
    /// … or as soon as it has this many lines (5,000).
    pub flush_lines: usize,
    /// Largest outbox; the oldest batches are dropped beyond it (1 GiB).
    pub max_bytes: u64,
    /// Oldest batch kept (7 days).
    pub max_age: Duration,
    /// Backlog batches replayed per second while the server answers (each up to 5,000 lines).
    pub replay_per_second: u32,
    /// Waits between attempts while the server does not answer.
    pub retry_min: Duration,
    pub retry_max: Duration,
    /// How long an acknowledged batch is kept to be sent again if another server of an
    /// active/standby pair takes over (2 minutes; only while the server names a term).
    pub resend_grace: Duration,
}

impl PushOptions {
    pub fn new(dir: PathBuf) -> Self {
        PushOptions {
            dir,
            flush_every: Duration::from_secs(10),
            flush_lines: 5_000,
            max_bytes: 1 << 30,
            max_age: Duration::from_secs(7 * 24 * 3600),
            replay_per_second: 5,
            retry_min: Duration::from_secs(1),
            retry_max: Duration::from_secs(30),
            resend_grace: Duration::from_secs(120),
        }
    }
}

/// Command-line settings of the push, shared by the collector's and the agent's `run`.
#[derive(Debug, Clone, clap::Args)]
pub struct PushArgs {
    /// Seconds between metric pushes.
    #[arg(long, env = "PLANTWATCH_PUSH_INTERVAL", value_name = "SECS", default_value_t = 10,
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub push_interval: u64,
    /// Largest on-disk outbox, in MiB; the oldest metrics are dropped beyond it.
    #[arg(long, env = "PLANTWATCH_OUTBOX_MAX_MB", value_name = "MIB", default_value_t = 1024,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub outbox_max_mb: u64,
    /// Oldest metrics kept in the outbox, in hours.
    #[arg(long, env = "PLANTWATCH_OUTBOX_MAX_AGE_HOURS", value_name = "HOURS", default_value_t = 168,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub outbox_max_age_hours: u64,
}

impl PushArgs {
    /// Applies these settings.
    pub fn apply(&self, options: &mut PushOptions) {
        options.flush_every = Duration::from_secs(self.push_interval);
        options.max_bytes = self.outbox_max_mb.saturating_mul(1024 * 1024);
        options.max_age = Duration::from_secs(self.outbox_max_age_hours.saturating_mul(3600));
    }
}

/// Lines for the pusher: complete line-protocol text and how many lines it holds.
#[derive(Debug)]
pub struct Lines {
    pub text: String,
    pub count: usize,
}

/// Where sources send their lines.
#[derive(Debug, Clone)]
pub struct LineSender(mpsc::Sender<Lines>);

impl LineSender {
    /// A sender and the receiving end, for sources tested or measured without a pusher.
    pub fn channel(capacity: usize) -> (LineSender, mpsc::Receiver<Lines>) {
        let (sender, receiver) = mpsc::channel(capacity);
        (LineSender(sender), receiver)
    }

    /// Queues lines; waits while the pusher is busy sealing (bounded memory).
    pub async fn send(&self, lines: Lines) {
        if lines.count > 0 {
            let _ = self.0.send(lines).await;
        }
    }

    /// Queues what `out` holds, as [`send`](Self::send) does.
    pub async fn send_written(&self, mut out: crate::lineproto::Writer) {
        let count = out.len();
        self.send(Lines {
            text: out.take(),
            count,
        })
        .await;
    }
}

/// One batch file in the outbox.
#[derive(Debug, Clone)]
struct Entry {
    path: PathBuf,
    batch_id: String,
    bytes: u64,
    lines: u64,
    created_ms: u64,
}

/// The outbox directory: batches by sequence number, oldest first.
#[derive(Debug)]
pub struct Outbox {
    dir: PathBuf,
    entries: BTreeMap<u64, Entry>,
    /// Acknowledged batches kept for the resend grace period (in `acked/`), with when.
    acked: BTreeMap<u64, (Entry, std::time::Instant)>,
    next_seq: u64,
    /// Random per start, so batch ids never repeat across restarts or reinstalls.
    prefix: String,
    dropped_batches: u64,
    dropped_lines: u64,
    sealed_lines: u64,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// File name: `{seq:016}-{created_ms}-{lines}-{batch_id}.lp.gz`.
fn parse_name(name: &str) -> Option<(u64, u64, u64, String)> {
    let stem = name.strip_suffix(".lp.gz")?;
    let mut parts = stem.splitn(4, '-');
    let seq = parts.next()?.parse().ok()?;
    let created = parts.next()?.parse().ok()?;
    let lines = parts.next()?.parse().ok()?;
    let batch_id = parts.next()?.to_owned();
    Some((seq, created, lines, batch_id))
}

impl Outbox {
    /// Opens (creating) the outbox at `dir` and lists what waits in it.
    pub fn open(dir: &Path) -> Result<Outbox, DaemonError> {
        prepare_dir(dir)?;
        let mut entries = BTreeMap::new();
        let listing = std::fs::read_dir(dir).map_err(io("listing", dir))?;
        for item in listing.flatten() {
            let path = item.path();
            let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
                continue;
            };
            if name.ends_with(".tmp") {
                // A batch being written when the daemon died: never acknowledged, never sent.
                let _ = std::fs::remove_file(&path);
                continue;
            }
            let Some((seq, created_ms, lines, batch_id)) = parse_name(name) else {
                continue;
            };
            let bytes = item.metadata().map_or(0, |m| m.len());
            entries.insert(
                seq,
                Entry {
                    path,
                    batch_id,
                    bytes,
                    lines,
                    created_ms,
                },
            );
        }
        // Batches acknowledged before a restart: kept one more grace period from now.
        let mut acked = BTreeMap::new();
        let acked_dir = dir.join(ACKED_DIR);
        if let Ok(listing) = std::fs::read_dir(&acked_dir) {
            for item in listing.flatten() {
                let path = item.path();
                let parsed = path
                    .file_name()
                    .and_then(|n| n.to_str())
                    .and_then(parse_name);
                let Some((seq, created_ms, lines, batch_id)) = parsed else {
                    let _ = std::fs::remove_file(&path);
                    continue;
                };
                let bytes = item.metadata().map_or(0, |m| m.len());
                let entry = Entry {
                    path,
                    batch_id,
                    bytes,
                    lines,
                    created_ms,
                };
                acked.insert(seq, (entry, std::time::Instant::now()));
            }
        }
        let last = entries.keys().chain(acked.keys()).max();
        let next_seq = last.map_or(1, |last| last + 1);
        Ok(Outbox {
            dir: dir.to_owned(),
            entries,
            acked,
            next_seq,
            prefix: hex::encode(rand::random::<[u8; 6]>()),
            dropped_batches: 0,
            dropped_lines: 0,
            sealed_lines: 0,
        })
    }

    /// Compresses and durably stores a batch; returns its sequence number.
    pub fn append(&mut self, text: &str, lines: u64) -> Result<u64, DaemonError> {
        let seq = self.next_seq;
        self.next_seq += 1;
        let batch_id = format!("{}-{seq}", self.prefix);
        let created_ms = now_ms();
        let name = format!("{seq:016}-{created_ms}-{lines}-{batch_id}.lp.gz");
        let path = self.dir.join(&name);
        let temp = self.dir.join(format!("{name}.tmp"));
        let mut encoder = flate2::write::GzEncoder::new(
            Vec::with_capacity(text.len() / 4),
            flate2::Compression::fast(),
        );
        encoder
            .write_all(text.as_bytes())
            .map_err(io("writing", &path))?;
        let body = encoder.finish().map_err(io("writing", &path))?;
        {
            // Batches hold what devices report: readable by the daemon's user only.
            let mut file = crate::private::private_options()
                .write(true)
                .create(true)
                .truncate(true)
                .open(&temp)
                .map_err(io("writing", &temp))?;
            file.write_all(&body).map_err(io("writing", &temp))?;
            file.sync_all().map_err(io("writing", &temp))?;
        }
        std::fs::rename(&temp, &path).map_err(io("writing", &path))?;
        self.sealed_lines += lines;
        self.entries.insert(
            seq,
            Entry {
                path,
                batch_id,
                bytes: body.len() as u64,
                lines,
                created_ms,
            },
        );
        Ok(seq)
    }

    /// Drops the oldest batches beyond `max_bytes` or older than `max_age`; returns how many.
    pub fn enforce(&mut self, max_bytes: u64, max_age: Duration) -> (u64, u64) {
        let oldest_allowed = now_ms().saturating_sub(max_age.as_millis() as u64);
        let mut total: u64 = self.entries.values().map(|e| e.bytes).sum();
        let (mut batches, mut lines) = (0, 0);
        while let Some((&seq, entry)) = self.entries.iter().next() {
            if total <= max_bytes && entry.created_ms >= oldest_allowed {
                break;
            }
            total -= entry.bytes;
            lines += entry.lines;
            batches += 1;
            let _ = std::fs::remove_file(&entry.path);
            self.entries.remove(&seq);
        }
        self.dropped_batches += batches;
        self.dropped_lines += lines;
        (batches, lines)
    }

    fn remove(&mut self, seq: u64) {
        if let Some(entry) = self.entries.remove(&seq) {
            let _ = std::fs::remove_file(&entry.path);
        }
    }

    /// An acknowledged batch: kept in `acked/` to be resent after a takeover, or removed.
    fn acknowledged(&mut self, seq: u64, keep: bool) {
        let Some(mut entry) = self.entries.remove(&seq) else {
            return;
        };
        if keep {
            let dir = self.dir.join(ACKED_DIR);
            let _ = std::fs::create_dir(&dir);
            if let Some(name) = entry.path.file_name() {
                let path = dir.join(name);
                if std::fs::rename(&entry.path, &path).is_ok() {
                    entry.path = path;
                    self.acked.insert(seq, (entry, std::time::Instant::now()));
                    return;
                }
            }
        }
        let _ = std::fs::remove_file(&entry.path);
    }

    /// Forgets acknowledged batches older than `grace`.
    fn expire_acked(&mut self, grace: Duration) {
        while let Some((&seq, (_, at))) = self.acked.iter().next() {
            if at.elapsed() < grace {
                break;
            }
            if let Some((entry, _)) = self.acked.remove(&seq) {
                let _ = std::fs::remove_file(&entry.path);
            }
        }
    }

    /// Puts the acknowledged batches kept back into the outbox, to be sent again (to a server
    /// that has just taken over); returns how many.
    pub fn requeue_acked(&mut self) -> usize {
        let mut count = 0;
        for (seq, (mut entry, _)) in std::mem::take(&mut self.acked) {
            let Some(name) = entry.path.file_name() else {
                continue;
            };
            let path = self.dir.join(name);
            if std::fs::rename(&entry.path, &path).is_ok() {
                entry.path = path;
                self.entries.insert(seq, entry);
                count += 1;
            }
        }
        count
    }

    fn body(&self, seq: u64) -> Option<(String, Vec<u8>)> {
        let entry = self.entries.get(&seq)?;
        let body = std::fs::read(&entry.path).ok()?;
        Some((entry.batch_id.clone(), body))
    }

    fn oldest(&self) -> Option<u64> {
        self.entries.keys().next().copied()
    }

    /// Size, lag and drops, for status reports.
    pub fn status(&self) -> OutboxStatus {
        let now = now_ms();
        OutboxStatus {
            batches: self.entries.len() as u64,
            bytes: self.entries.values().map(|e| e.bytes).sum(),
            lag_s: self
                .entries
                .values()
                .next()
                .map_or(0, |e| now.saturating_sub(e.created_ms) / 1_000),
            dropped_batches: self.dropped_batches,
            dropped_lines: self.dropped_lines,
            sealed_lines: self.sealed_lines,
        }
    }
}

/// Subdirectory of the outbox holding acknowledged batches during the resend grace period.
const ACKED_DIR: &str = "acked";

/// Result of sending one batch.
enum Sent {
    /// Acknowledged (stored, stored before, or refused as malformed: never worth resending).
    Done,
    /// Not delivered; keep it and retry later.
    Retry(String),
}

/// A pusher running on its own task.
#[derive(Debug)]
pub struct Running {
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

impl Running {
    /// Stops the pusher once it has put what it holds into the outbox.
    pub async fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.task.await;
    }
}

/// Batches lines into the outbox and delivers it.
pub struct Pusher {
    options: PushOptions,
    outbox: Outbox,
    client: Client,
    status: Arc<Mutex<OutboxStatus>>,
    receiver: mpsc::Receiver<Lines>,
    /// The term of the active server that acknowledged the last batch.
    term: Option<u64>,
}

impl std::fmt::Debug for Pusher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pusher")
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl Pusher {
    /// A pusher over the outbox in `options.dir`; send lines through the returned sender, read
    /// the outbox's state from the returned status.
    pub fn new(
        client: Client,
        options: PushOptions,
    ) -> Result<(Pusher, LineSender, Arc<Mutex<OutboxStatus>>), DaemonError> {
        let outbox = Outbox::open(&options.dir)?;
        if !outbox.entries.is_empty() {
            tracing::info!(
                batches = outbox.entries.len(),
                "Metrics from before the restart wait in the outbox; they will be replayed."
            );
        }
        let status = Arc::new(Mutex::new(outbox.status()));
        let (sender, receiver) = mpsc::channel(1_024);
        Ok((
            Pusher {
                options,
                outbox,
                client,
                status: status.clone(),
                receiver,
                term: None,
            },
            LineSender(sender),
            status,
        ))
    }

    /// Starts a pusher on its own task; stop it with [`Running::stop`].
    pub fn spawn(
        client: Client,
        options: PushOptions,
    ) -> Result<(Running, LineSender, Arc<Mutex<OutboxStatus>>), DaemonError> {
        let (pusher, lines, status) = Pusher::new(client, options)?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(pusher.run(async {
            let _ = stopped.await;
        }));
        Ok((Running { stop, task }, lines, status))
    }

    /// Runs until `shutdown`; then seals what it holds into the outbox (sent at the next start).
    pub async fn run(mut self, shutdown: impl std::future::Future<Output = ()>) {
        tokio::pin!(shutdown);
        let mut buffer = String::new();
        let mut buffered = 0usize;
        let mut flush = tokio::time::interval(self.options.flush_every);
        flush.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        flush.tick().await;
        let replay_every =
            Duration::from_secs_f64(1.0 / f64::from(self.options.replay_per_second.max(1)));
        let mut replay = tokio::time::interval(replay_every);
        replay.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut backoff = Backoff::new(self.options.retry_min, self.options.retry_max);
        // While failing: the problem, and when the next attempt may be made.
        let mut failing: Option<String> = None;
        let mut retry_at = tokio::time::Instant::now();
        loop {
            let backlog = self.outbox.oldest().is_some();
            tokio::select! {
                _ = &mut shutdown => break,
                received = self.receiver.recv() => {
                    let Some(lines) = received else { break };
                    buffer.push_str(&lines.text);
                    buffered += lines.count;
                    if buffered < self.options.flush_lines {
                        continue;
                    }
                }
                _ = flush.tick() => {
                    if buffered == 0 {
                        continue;
                    }
                }
                _ = replay.tick(), if backlog => {
                    if failing.is_some() && tokio::time::Instant::now() < retry_at {
                        continue;
                    }
                    if let Some(seq) = self.outbox.oldest() {
                        self.deliver(seq, &mut failing, &mut backoff, &mut retry_at).await;
                    }
                    continue;
                }
            }
            // Seal the buffer into a batch, and send it at once unless the server is down.
            let Some(seq) = self.seal(&mut buffer, &mut buffered) else {
                continue;
            };
            if failing.is_none() {
                self.deliver(seq, &mut failing, &mut backoff, &mut retry_at)
                    .await;
            }
        }
        // Lines still queued by sources, then the buffer: kept for the next start.
        while let Ok(lines) = self.receiver.try_recv() {
            buffer.push_str(&lines.text);
            buffered += lines.count;
        }
        self.seal(&mut buffer, &mut buffered);
    }

    fn seal(&mut self, buffer: &mut String, buffered: &mut usize) -> Option<u64> {
        if *buffered == 0 {
            return None;
        }
        let text = std::mem::take(buffer);
        let lines = std::mem::take(buffered) as u64;
        let seq = match self.outbox.append(&text, lines) {
            Ok(seq) => Some(seq),
            Err(error) => {
                // The disk is full or gone: these lines cannot be kept.
                tracing::error!(%error, lines, "Could not write a batch to the outbox; it is lost.");
                None
            }
        };
        let (batches, lines) = self
            .outbox
            .enforce(self.options.max_bytes, self.options.max_age);
        if batches > 0 {
            tracing::warn!(
                batches,
                lines,
                max_bytes = self.options.max_bytes,
                max_age_s = self.options.max_age.as_secs(),
                "The outbox is full: dropped its oldest batches."
            );
        }
        self.publish();
        seq
    }

    async fn deliver(
        &mut self,
        seq: u64,
        failing: &mut Option<String>,
        backoff: &mut Backoff,
        retry_at: &mut tokio::time::Instant,
    ) {
        let Some((batch_id, body)) = self.outbox.body(seq) else {
            self.outbox.remove(seq);
            self.publish();
            return;
        };
        match self.send(&batch_id, body).await {
            Sent::Done => {
                let term = self.client.term();
                self.outbox.expire_acked(self.options.resend_grace);
                if let (Some(before), Some(now)) = (self.term, term)
                    && before != now
                {
                    let again = self.outbox.requeue_acked();
                    tracing::info!(
                        before,
                        now,
                        batches = again,
                        "Another server of the pair has taken over; sending the batches it may \
                         not have again."
                    );
                }
                self.outbox.acknowledged(seq, term.is_some());
                self.term = term;
                if failing.take().is_some() {
                    tracing::info!(
                        waiting = self.outbox.entries.len(),
                        "The server takes metrics again; replaying the outbox."
                    );
                }
                backoff.reset();
            }
            Sent::Retry(problem) => {
                let wait = backoff.next_delay();
                if failing.as_deref() != Some(problem.as_str()) {
                    tracing::warn!(
                        retry_in_ms = wait.as_millis() as u64,
                        waiting = self.outbox.entries.len(),
                        "Cannot push metrics, keeping them in the outbox: {problem}"
                    );
                }
                *failing = Some(problem);
                *retry_at = tokio::time::Instant::now() + wait;
            }
        }
        self.publish();
    }

    async fn send(&self, batch_id: &str, body: Vec<u8>) -> Sent {
        match self.client.ingest_gzip(batch_id, body).await {
            Ok(()) => Sent::Done,
            Err(crate::Error::Api {
                status,
                code,
                message,
                ..
            }) => match status {
                // Malformed or refused lines (the rest were stored) or a body the server
                // will never take: resending cannot help.
                400 | 413 | 415 => {
                    tracing::warn!(
                        batch_id,
                        %code,
                        "The server refused part of a batch: {message}"
                    );
                    Sent::Done
                }
                _ => Sent::Retry(format!("{message} ({status} {code})")),
            },
            Err(error) => Sent::Retry(error.to_string()),
        }
    }

    fn publish(&self) {
        if let Ok(mut status) = self.status.lock() {
            *status = self.outbox.status();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_survive_a_reopen_in_order_and_a_torn_write_is_discarded() {
        let dir = tempfile::tempdir().unwrap();
        let mut outbox = Outbox::open(dir.path()).unwrap();
        let first = outbox.append("cpu v=1 1\n", 1).unwrap();
        let second = outbox.append("cpu v=2 2\ncpu v=3 3\n", 2).unwrap();
        std::fs::write(
            dir.path().join("0000000000000009-1-1-x-9.lp.gz.tmp"),
            b"torn",
        )
        .unwrap();
        let reopened = Outbox::open(dir.path()).unwrap();
        assert_eq!(
            reopened.entries.keys().copied().collect::<Vec<_>>(),
            vec![first, second]
        );
        assert_eq!(reopened.next_seq, second + 1);
        let (id, body) = reopened.body(first).unwrap();
        assert!(id.ends_with(&format!("-{first}")));
        let mut text = String::new();
        std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&body[..]), &mut text)
            .unwrap();
        assert_eq!(text, "cpu v=1 1\n");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2);
        assert_eq!(reopened.status().batches, 2);
        // Batch files are the owner's only, like the rest of the state dir.
        #[cfg(unix)]
        for entry in std::fs::read_dir(dir.path()).unwrap() {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = entry.unwrap().metadata().unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn the_oldest_batches_are_dropped_beyond_the_size_bound_and_counted() {
        let dir = tempfile::tempdir().unwrap();
        let mut outbox = Outbox::open(dir.path()).unwrap();
        for i in 0..5 {
            outbox.append(&format!("cpu v={i} {i}\n"), 1).unwrap();
        }
        let size = outbox.status().bytes;
        let (batches, lines) = outbox.enforce(size * 3 / 5, Duration::from_secs(3600));
        assert_eq!((batches, lines), (2, 2));
        assert_eq!(outbox.oldest(), Some(3));
        let status = outbox.status();
        assert_eq!(
            (status.batches, status.dropped_batches, status.dropped_lines),
            (3, 2, 2)
        );
        // Age bound: everything is older than zero seconds.
        std::thread::sleep(Duration::from_millis(5));
        assert_eq!(outbox.enforce(u64::MAX, Duration::ZERO).0, 3);
        assert_eq!(outbox.status().batches, 0);
    }

    #[test]
    fn acknowledged_batches_are_kept_for_the_grace_period_and_can_be_sent_again() {
        let dir = tempfile::tempdir().unwrap();
        let mut outbox = Outbox::open(dir.path()).unwrap();
        let first = outbox.append("cpu v=1 1\n", 1).unwrap();
        let second = outbox.append("cpu v=2 2\n", 1).unwrap();
        let third = outbox.append("cpu v=3 3\n", 1).unwrap();
        // Kept (a pair's term was seen), kept, and not kept (no pair).
        outbox.acknowledged(first, true);
        outbox.acknowledged(second, true);
        outbox.acknowledged(third, false);
        assert_eq!(outbox.oldest(), None);
        assert_eq!(
            std::fs::read_dir(dir.path().join(ACKED_DIR))
                .unwrap()
                .count(),
            2
        );
        // A restart keeps them, and new batches take sequence numbers after theirs.
        let mut outbox = Outbox::open(dir.path()).unwrap();
        assert_eq!(outbox.next_seq, second + 1);
        outbox.expire_acked(Duration::from_secs(120));
        assert_eq!(outbox.requeue_acked(), 2);
        assert_eq!(outbox.oldest(), Some(first));
        let (id, _) = outbox.body(second).unwrap();
        assert!(id.ends_with(&format!("-{second}")), "same batch id: {id}");
        // Past the grace period they are gone.
        outbox.acknowledged(first, true);
        std::thread::sleep(Duration::from_millis(5));
        outbox.expire_acked(Duration::ZERO);
        assert_eq!(outbox.requeue_acked(), 0);
        assert_eq!(
            std::fs::read_dir(dir.path().join(ACKED_DIR))
                .unwrap()
                .count(),
            0
        );
    }
}
