//! The head: committed samples not sealed into chunks yet, held in memory per series and
//! logged on disk as whole batches (the `head_log` table), the shape of Prometheus's TSDB head
//! and its write-ahead log.
//!
//! The writer appends each commit's samples to the log as a few blobs (one per 5-minute slice
//! of sample time: an append, whatever the head holds) and then to [`Head`]. The compactor seals
//! from memory; the transaction that stores a series' chunks also moves the series' seal mark
//! (`series.sealed_before`, `series.sealed_seq`: every sample with `ts < sealed_before` and
//! `seq <= sealed_seq` is in a chunk), and a log row is deleted once every sample in it is
//! sealed. At start [`replay`] reads the log back, skipping what the marks say is sealed: a
//! crash at any point leaves every acknowledged sample exactly once, in the log or in a chunk.

use std::sync::RwLock;
use std::sync::atomic::{AtomicU64, Ordering};

use rusqlite::{Connection, params};
use rustc_hash::FxHashMap;

use super::codec;
use super::compactor::SLICE_MS;

/// One sample in the head.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Point {
    ts: i64,
    /// Arrival number: of two samples at one millisecond the later wins, and the compactor
    /// removes only what it read.
    seq: i64,
    value: f64,
}

/// A sample as the log stores it: (series id, ms, value); its `seq` is the row's first plus
/// its index.
pub type Logged = (i64, i64, f64);

/// The unsealed samples of every series, in memory.
#[derive(Debug, Default)]
pub struct Head {
    series: RwLock<FxHashMap<i64, Vec<Point>>>,
    samples: AtomicU64,
}

impl Head {
    /// Samples held.
    pub fn len(&self) -> u64 {
        self.samples.load(Ordering::Relaxed)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Adds samples numbered from `first_seq` on, in arrival order.
    pub(crate) fn append(&self, first_seq: i64, samples: &[Logged]) {
        let Ok(mut series) = self.series.write() else {
            return;
        };
        for (index, &(id, ts, value)) in samples.iter().enumerate() {
            series.entry(id).or_default().push(Point {
                ts,
                seq: first_seq + index as i64,
                value,
            });
        }
        self.samples
            .fetch_add(samples.len() as u64, Ordering::Relaxed);
    }

    /// Samples of a series held, as they arrived (several at one timestamp counted each).
    pub fn samples_of(&self, series_id: i64) -> usize {
        self.series
            .read()
            .map_or(0, |series| series.get(&series_id).map_or(0, Vec::len))
    }

    /// The newest sample's time, over every series.
    pub fn newest(&self) -> Option<i64> {
        let series = self.series.read().ok()?;
        series.values().flatten().map(|p| p.ts).max()
    }

    /// Points of a series in `[from, to)` with `seq <= max_seq`, one per timestamp (the latest
    /// arrival), in time order.
    pub fn points(&self, series_id: i64, from: i64, to: i64, max_seq: i64) -> Vec<(i64, f64)> {
        let Ok(series) = self.series.read() else {
            return Vec::new();
        };
        let Some(points) = series.get(&series_id) else {
            return Vec::new();
        };
        let mut out: Vec<Point> = points
            .iter()
            .filter(|p| p.ts >= from && p.ts < to && p.seq <= max_seq)
            .copied()
            .collect();
        drop(series);
        if !out.is_sorted_by_key(|p| (p.ts, p.seq)) {
            out.sort_unstable_by_key(|p| (p.ts, p.seq));
        }
        let mut answer: Vec<(i64, f64)> = Vec::with_capacity(out.len());
        for point in out {
            match answer.last_mut() {
                Some(last) if last.0 == point.ts => last.1 = point.value,
                _ => answer.push((point.ts, point.value)),
            }
        }
        answer
    }

    /// The latest reading of a series before `before`.
    pub fn reading_before(&self, series_id: i64, before: i64) -> Option<(i64, f64)> {
        let series = self.series.read().ok()?;
        series
            .get(&series_id)?
            .iter()
            .filter(|p| p.ts < before)
            .max_by_key(|p| (p.ts, p.seq))
            .map(|p| (p.ts, p.value))
    }

    /// Series holding a sample before `cutoff` with `seq <= max_seq` (what a pass seals), by id.
    pub(crate) fn due(&self, cutoff: i64, max_seq: i64) -> Vec<i64> {
        let Ok(series) = self.series.read() else {
            return Vec::new();
        };
        let mut due: Vec<i64> = series
            .iter()
            .filter(|(_, points)| points.iter().any(|p| p.ts < cutoff && p.seq <= max_seq))
            .map(|(id, _)| *id)
            .collect();
        due.sort_unstable();
        due
    }

    /// Drops what a committed seal stored in chunks: the series' samples before `cutoff` with
    /// `seq <= max_seq`.
    pub(crate) fn remove_sealed(&self, sealed: &[i64], cutoff: i64, max_seq: i64) {
        let Ok(mut series) = self.series.write() else {
            return;
        };
        let mut removed = 0;
        for id in sealed {
            let Some(points) = series.get_mut(id) else {
                continue;
            };
            let before = points.len();
            points.retain(|p| p.ts >= cutoff || p.seq > max_seq);
            removed += before - points.len();
            if points.is_empty() {
                series.remove(id);
            }
        }
        self.samples.fetch_sub(removed as u64, Ordering::Relaxed);
    }
}

/// Slice of sample time a sample's log row belongs to: a row is deleted once the compactor has
/// sealed past its slice.
pub(crate) fn slice_of(ts: i64) -> i64 {
    ts.div_euclid(SLICE_MS) * SLICE_MS
}

/// Appends one log row per slice of `samples` in the writer's transaction. The samples are
/// first put in slice order (a stable sort: two samples at one millisecond keep their order),
/// and numbered from `first_seq` in that order: a row's numbers are its first `seq` on.
pub fn log(
    tx: &rusqlite::Transaction<'_>,
    first_seq: i64,
    samples: &mut [Logged],
) -> rusqlite::Result<()> {
    if !samples.is_sorted_by_key(|s| slice_of(s.1)) {
        samples.sort_by_key(|s| slice_of(s.1));
    }
    let mut insert = tx.prepare_cached(
        "INSERT INTO head_log (seq, slice, samples, data) VALUES (?1, ?2, ?3, ?4)",
    )?;
    // Usually one or two slices: a poll round's samples share their time.
    let mut start = 0;
    while start < samples.len() {
        let slice = slice_of(samples[start].1);
        let mut end = start + 1;
        while end < samples.len() && slice_of(samples[end].1) == slice {
            end += 1;
        }
        let run = &samples[start..end];
        insert.execute(params![
            first_seq + start as i64,
            slice,
            run.len() as i64,
            codec::encode_log(run)
        ])?;
        start = end;
    }
    Ok(())
}

/// Deletes the log rows whose every sample is sealed: their slice ended by `cutoff` and their
/// last `seq` is at most `max_seq`.
pub(crate) fn forget_sealed(
    tx: &rusqlite::Transaction<'_>,
    cutoff: i64,
    max_seq: i64,
) -> rusqlite::Result<usize> {
    tx.prepare_cached("DELETE FROM head_log WHERE slice + ?1 <= ?2 AND seq + samples - 1 <= ?3")?
        .execute(params![SLICE_MS, cutoff, max_seq])
}

/// Moves the seal marks of `sealed` series: everything before `cutoff` up to `max_seq` is in
/// chunks.
pub(crate) fn mark_sealed(
    tx: &rusqlite::Transaction<'_>,
    sealed: &[i64],
    cutoff: i64,
    max_seq: i64,
) -> rusqlite::Result<()> {
    let mut mark =
        tx.prepare_cached("UPDATE series SET sealed_before = ?2, sealed_seq = ?3 WHERE id = ?1")?;
    for id in sealed {
        mark.execute(params![id, cutoff, max_seq])?;
    }
    Ok(())
}

/// What the log holds that is not sealed, read back: a head to serve from, and the last `seq`
/// given. Used at start, and by tools and tests reading a file the server wrote.
pub fn replay(conn: &Connection) -> rusqlite::Result<(Head, i64)> {
    let mut marks: FxHashMap<i64, (i64, i64)> = FxHashMap::default();
    {
        let mut statement =
            conn.prepare("SELECT id, sealed_before, sealed_seq FROM series WHERE sealed_seq > 0")?;
        let mut rows = statement.query([])?;
        while let Some(row) = rows.next()? {
            marks.insert(row.get(0)?, (row.get(1)?, row.get(2)?));
        }
    }
    let head = Head::default();
    let mut last_seq = 0;
    let mut statement = conn.prepare("SELECT seq, data FROM head_log ORDER BY seq")?;
    let mut rows = statement.query([])?;
    let mut kept: Vec<Logged> = Vec::new();
    while let Some(row) = rows.next()? {
        let first: i64 = row.get(0)?;
        let samples =
            codec::decode_log(row.get_ref(1)?.as_blob()?).map_err(super::chunks::damaged)?;
        last_seq = last_seq.max(first + samples.len() as i64 - 1);
        // Samples a seal already took keep their place (their seq) but are not served again.
        kept.clear();
        let mut next = first;
        for (index, sample) in samples.iter().enumerate() {
            let seq = first + index as i64;
            let sealed = marks
                .get(&sample.0)
                .is_some_and(|&(before, upto)| sample.1 < before && seq <= upto);
            if sealed {
                if !kept.is_empty() {
                    head.append(next, &kept);
                    kept.clear();
                }
                next = seq + 1;
            } else {
                kept.push(*sample);
            }
        }
        head.append(next, &kept);
    }
    Ok((head, last_seq))
}

/// Moves the rows of the one-row-per-sample `head` table of earlier versions into the head log
/// (in their arrival order) and drops the table, in one transaction.
pub(crate) fn adopt_legacy_table(conn: &mut Connection) -> rusqlite::Result<()> {
    let exists: bool = conn.query_row(
        "SELECT count(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = 'head'",
        [],
        |r| r.get(0),
    )?;
    if !exists {
        return Ok(());
    }
    let tx = conn.transaction()?;
    let mut samples: Vec<Logged> = {
        let mut statement =
            tx.prepare("SELECT series_id, ts, value FROM head ORDER BY seq, series_id, ts")?;
        statement
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
            .collect::<rusqlite::Result<_>>()?
    };
    let first: i64 = tx.query_row(
        "SELECT max(coalesce((SELECT max(seq) FROM head), 0),
                    coalesce((SELECT max(seq) FROM remote_queue), 0)) + 1",
        [],
        |r| r.get(0),
    )?;
    log(&tx, first, &mut samples)?;
    tx.execute_batch("DROP TABLE head")?;
    tx.commit()?;
    if !samples.is_empty() {
        tracing::info!(
            samples = samples.len(),
            "Moved the head's rows into the head log."
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_latest_arrival_at_a_timestamp_wins_and_sealing_removes_only_what_was_read() {
        let head = Head::default();
        head.append(10, &[(1, 2_000, 1.0), (1, 1_000, 2.0), (2, 1_000, 5.0)]);
        head.append(13, &[(1, 2_000, 3.0)]);
        assert_eq!(
            head.points(1, 0, 10_000, i64::MAX),
            [(1_000, 2.0), (2_000, 3.0)]
        );
        assert_eq!(head.points(1, 0, 10_000, 12), [(1_000, 2.0), (2_000, 1.0)]);
        assert_eq!(head.reading_before(1, 2_000), Some((1_000, 2.0)));
        assert_eq!(head.due(1_500, 12), [1, 2]);
        head.remove_sealed(&[1], 10_000, 12);
        assert_eq!(head.points(1, 0, 10_000, i64::MAX), [(2_000, 3.0)]);
        assert_eq!(head.len(), 2);
        head.remove_sealed(&[1, 2], 10_000, 13);
        assert!(head.is_empty());
        assert!(head.due(i64::MAX, i64::MAX).is_empty());
    }
}
