//! Range queries over stored samples: a node's series in a time range, in steps, aggregated,
//! with counters turned into per-second rates (wraps and resets handled).

use plantwatch_shared::api::{
    Aggregation, MAX_POINTS_PER_SERIES, MAX_SERIES_PER_QUERY, MetricSeries, SeriesInfo, SeriesKind,
    tags_from_canonical,
};
use rusqlite::{Connection, params};

use super::chunks::{self, Resolution};
use super::codec::{Columns, Rollup};
use super::{Head, Kind, Retention, kind_column};
use crate::db::{Db, DbError};

/// Increase of a counter between two readings. A decrease is a 64-bit wrap when the previous
/// reading was in the top half of the 64-bit range, otherwise a reset (device reboot, agent
/// restart): the counter counted from zero to `current`. (32-bit counters are extended across
/// their wraps by the collector, which knows the SNMP type and the device's uptime.)
pub fn counter_increase(previous: f64, current: f64) -> f64 {
    const TWO_POW_63: f64 = 9_223_372_036_854_775_808.0;
    const TWO_POW_64: f64 = 18_446_744_073_709_551_616.0;
    if current >= previous {
        current - previous
    } else if previous >= TWO_POW_63 {
        TWO_POW_64 - previous + current
    } else {
        current
    }
}

/// A chosen step: the caller's, or about 300 points over the range; never more than
/// [`MAX_POINTS_PER_SERIES`] points.
pub fn step_for(from: i64, to: i64, asked: Option<i64>) -> i64 {
    let span = (to - from).max(1);
    let step = asked.unwrap_or(span / 300).max(1);
    step.max((span + MAX_POINTS_PER_SERIES - 1) / MAX_POINTS_PER_SERIES)
}

pub struct SeriesRow {
    pub id: i64,
    pub metric: String,
    pub tags: String,
    pub kind: Kind,
}

pub fn wire_kind(kind: Kind) -> SeriesKind {
    match kind {
        Kind::Gauge => SeriesKind::Gauge,
        Kind::Counter => SeriesKind::Counter,
    }
}

/// The `LIKE` pattern of a metric filter: exact, or a prefix ending in `*`.
fn metric_pattern(metric: Option<&str>) -> String {
    match metric {
        None => "%".to_owned(),
        Some(m) => match m.strip_suffix('*') {
            Some(prefix) => format!("{}%", like_escape(prefix)),
            None => like_escape(m),
        },
    }
}

/// How many series of the node match `metric` (a chart answers at most
/// [`MAX_SERIES_PER_QUERY`] of them).
pub fn count_node_series(
    conn: &Connection,
    node_id: i64,
    metric: Option<&str>,
) -> rusqlite::Result<u64> {
    conn.prepare_cached(
        "SELECT count(*) FROM series WHERE node_id = ?1 AND metric LIKE ?2 ESCAPE '\\'",
    )?
    .query_row(params![node_id, metric_pattern(metric)], |row| {
        row.get::<_, i64>(0)
    })
    .map(|count| count.max(0) as u64)
}

/// The node's series matching `metric` (exact, or a prefix ending in `*`), by name.
pub fn node_series(
    conn: &Connection,
    node_id: i64,
    metric: Option<&str>,
) -> rusqlite::Result<Vec<SeriesRow>> {
    let pattern = metric_pattern(metric);
    let mut statement = conn.prepare_cached(
        "SELECT id, metric, tags, kind FROM series
          WHERE node_id = ?1 AND metric LIKE ?2 ESCAPE '\\'
          ORDER BY metric, tags LIMIT ?3",
    )?;
    let rows = statement.query_map(
        params![node_id, pattern, MAX_SERIES_PER_QUERY as i64],
        |row| {
            Ok(SeriesRow {
                id: row.get(0)?,
                metric: row.get(1)?,
                tags: row.get(2)?,
                kind: kind_column(&row.get::<_, String>(3)?),
            })
        },
    )?;
    rows.collect()
}

fn like_escape(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}

/// The step and the stored resolution a query over `[from, to]` (UNIX seconds) is answered
/// from: the caller's step (or about 300 points), then the coarsest resolution that step allows
/// (5-minute rollups from a 5-minute step, hourly ones from a 6-hour step) — or a coarser one
/// when the range reaches back past a resolution's retention — with the step rounded up to a
/// multiple of it, so every step is made of whole rollup buckets.
pub fn plan(
    from: i64,
    to: i64,
    asked: Option<i64>,
    retention: &Retention,
    now_ms: i64,
) -> (i64, Resolution) {
    let step = step_for(from, to, asked);
    let mut resolution = if step >= 6 * 3_600 {
        Resolution::Hour
    } else if step >= 300 {
        Resolution::FiveMinutes
    } else {
        Resolution::Raw
    };
    while resolution != Resolution::Hour && from * 1_000 < retention.horizon(resolution, now_ms) {
        resolution = match resolution {
            Resolution::Raw => Resolution::FiveMinutes,
            _ => Resolution::Hour,
        };
    }
    let width = resolution.seconds();
    let step = if width > 0 {
        ceil_to(step, width)
    } else {
        step
    };
    (step, resolution)
}

/// A range query: a node's series matching `metric` over `[from, to]` (UNIX seconds, `to`
/// inclusive) in steps of `step` seconds, read at `resolution` (see [`plan`]).
#[derive(Debug, Clone)]
pub struct RangeQuery {
    pub node_id: i64,
    pub metric: Option<String>,
    pub from: i64,
    pub to: i64,
    pub step: i64,
    pub resolution: Resolution,
    pub agg: Aggregation,
    /// Oldest raw sample retention keeps (ms).
    pub raw_horizon_ms: i64,
}

impl RangeQuery {
    /// The query for a caller's range and step, planned against `retention` at `now_ms`.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        node_id: i64,
        metric: Option<String>,
        (from, to): (i64, i64),
        asked_step: Option<i64>,
        agg: Aggregation,
        retention: &Retention,
        now_ms: i64,
    ) -> RangeQuery {
        let (step, resolution) = plan(from, to, asked_step, retention, now_ms);
        RangeQuery {
            node_id,
            metric,
            from,
            to,
            step,
            resolution,
            agg,
            raw_horizon_ms: retention.horizon(Resolution::Raw, now_ms),
        }
    }

    fn series(
        &self,
        conn: &Connection,
        head: &Head,
        series: SeriesRow,
    ) -> rusqlite::Result<MetricSeries> {
        let buckets = series_buckets(
            conn,
            head,
            series.id,
            series.kind,
            (self.from * 1_000, (self.to + 1) * 1_000),
            self.step * 1_000,
            (self.resolution, columns_for(self.agg)),
            self.raw_horizon_ms,
        )?;
        Ok(MetricSeries {
            metric: series.metric,
            tags: tags_from_canonical(&series.tags),
            kind: wire_kind(series.kind),
            points: buckets
                .iter()
                .map(|b| (b.ts.div_euclid(1_000), value_of(b, self.agg)))
                .collect(),
        })
    }
}

/// Answers `query` on one connection.
pub fn range(
    conn: &Connection,
    head: &Head,
    query: &RangeQuery,
) -> rusqlite::Result<Vec<MetricSeries>> {
    node_series(conn, query.node_id, query.metric.as_deref())?
        .into_iter()
        .map(|series| query.series(conn, head, series))
        .collect()
}

/// Series per thread below which a query is not split.
const SERIES_PER_THREAD: usize = 32;

/// Answers `query` with the series split over as many pooled connections as there are cores
/// (at most 4, and only connections free at once): a chart of a large switch reads hundreds of
/// series. Blocking: call it from a blocking thread.
pub fn range_on(db: &Db, head: &Head, query: &RangeQuery) -> Result<Vec<MetricSeries>, DbError> {
    let conn = db.get()?;
    let series = node_series(&conn, query.node_id, query.metric.as_deref())?;
    let wanted = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(4)
        .min(series.len() / SERIES_PER_THREAD)
        .max(1);
    // Further connections only if the pool has them free now: a query never waits for a
    // second one (many queries at once, each holding one, could otherwise wait on each other).
    let extra: Vec<_> = (1..wanted).map_while(|_| db.try_get()).collect();
    if extra.is_empty() {
        return Ok(series
            .into_iter()
            .map(|s| query.series(&conn, head, s))
            .collect::<rusqlite::Result<_>>()?);
    }
    let per_part = series.len().div_ceil(extra.len() + 1);
    let mut rest = series.into_iter();
    let mine: Vec<SeriesRow> = rest.by_ref().take(per_part).collect();
    std::thread::scope(|scope| {
        let others: Vec<_> = extra
            .into_iter()
            .map(|other| {
                let part: Vec<SeriesRow> = rest.by_ref().take(per_part).collect();
                scope.spawn(move || -> rusqlite::Result<Vec<MetricSeries>> {
                    part.into_iter()
                        .map(|s| query.series(&other, head, s))
                        .collect()
                })
            })
            .collect();
        let mut out: Vec<MetricSeries> = mine
            .into_iter()
            .map(|s| query.series(&conn, head, s))
            .collect::<rusqlite::Result<_>>()?;
        for handle in others {
            let part = handle
                .join()
                .map_err(|_| DbError::Task("a query thread panicked".into()))??;
            out.extend(part);
        }
        Ok(out)
    })
}

/// One series over `[from, to)` (ms) in steps of `step_ms`: raw samples where the range cuts
/// a rollup bucket or the rollups do not reach yet (the head, or an hour with late samples
/// not sealed again), stored rollups in between; of those, only `columns`.
pub fn series_buckets(
    conn: &Connection,
    head: &Head,
    series_id: i64,
    kind: Kind,
    (from, to): (i64, i64),
    step_ms: i64,
    (resolution, columns): (Resolution, Columns),
    raw_horizon_ms: i64,
) -> rusqlite::Result<Vec<Rollup>> {
    let reader = RawReader::new(conn, head, series_id);
    let raw = |lo: i64, hi: i64| -> rusqlite::Result<Vec<Rollup>> {
        if hi <= lo {
            return Ok(Vec::new());
        }
        let (previous, points) = reader.points(lo, hi, kind == Kind::Counter)?;
        Ok(chunks::roll_up(
            &chunks::series_points(kind, previous, &points),
            step_ms,
        ))
    };
    if resolution == Resolution::Raw {
        return raw(from, to);
    }
    let width = resolution.bucket_ms();
    let mut start = ceil_to(from, width);
    let mut end = to.div_euclid(width) * width;
    // Past raw retention no samples are left to cut a bucket with: it is taken whole.
    if from < raw_horizon_ms {
        start = from.div_euclid(width) * width;
    }
    if to < raw_horizon_ms {
        end = ceil_to(to, width);
    }
    // Rollups are complete for every bucket before the series' oldest head row (an hour is
    // rolled up again from its whole chunk each time a slice of it is sealed).
    if let Some(&(ts, _)) = reader.head.first() {
        end = end.min(ts.div_euclid(width) * width);
    }
    if end <= start {
        return raw(from, to);
    }
    let mut out = raw(from, start.min(to))?;
    let stored = chunks::rollup_steps(conn, series_id, resolution, (start, end), columns, step_ms)?;
    append(&mut out, stored);
    append(&mut out, raw(end.max(from), to)?);
    Ok(out)
}

/// The reading before a span (if asked for and any), and the span's points.
type RawSpan = (Option<(i64, f64)>, Vec<(i64, f64)>);

/// A series' raw samples as one query reads them: its head rows once, chunks by the hour.
struct RawReader<'c> {
    conn: &'c Connection,
    series_id: i64,
    /// The head, one point per timestamp, in time order.
    head: Vec<(i64, f64)>,
}

impl<'c> RawReader<'c> {
    fn new(conn: &'c Connection, head: &Head, series_id: i64) -> RawReader<'c> {
        RawReader {
            conn,
            series_id,
            head: head.points(series_id, 0, chunks::MAX_TS_MS, i64::MAX),
        }
    }

    /// Points in `[lo, hi)` and, when asked, the reading before `lo` (a counter's first rate).
    fn points(&self, lo: i64, hi: i64, previous: bool) -> rusqlite::Result<RawSpan> {
        // Whole hours are decoded anyway: the part before `lo` usually holds the reading
        // before it.
        let hour = Resolution::Raw.window_of(lo.max(0));
        let sealed = chunks::sealed_points(self.conn, self.series_id, hour, hi)?;
        let head_from = self.head.partition_point(|(ts, _)| *ts < hour);
        let head_to = self.head.partition_point(|(ts, _)| *ts < hi);
        let all = chunks::merge(sealed, self.head[head_from..head_to].to_vec());
        let first = all.partition_point(|(ts, _)| *ts < lo);
        let before = match (previous, first) {
            (false, _) => None,
            (true, 0) => {
                let head = self.head[..head_from].last().copied();
                let sealed = chunks::sealed_reading_before(self.conn, self.series_id, hour)?;
                match (head, sealed) {
                    (Some(h), Some(s)) if s.0 > h.0 => Some(s),
                    (Some(h), _) => Some(h),
                    (None, s) => s,
                }
            }
            (true, at) => Some(all[at - 1]),
        };
        Ok((before, all[first..].to_vec()))
    }
}

/// `value` rounded up to a multiple of `width` (> 0).
fn ceil_to(value: i64, width: i64) -> i64 {
    -(-value).div_euclid(width) * width
}

/// Appends later step buckets, folding one that continues the last.
fn append(out: &mut Vec<Rollup>, later: Vec<Rollup>) {
    let mut later = later.into_iter();
    if let (Some(last), Some(first)) = (out.last_mut(), later.as_slice().first())
        && last.ts == first.ts
    {
        last.absorb(first);
        later.next();
    }
    out.extend(later);
}

/// The rollup columns `agg` reads (bucket starts and counts are always read).
pub fn columns_for(agg: Aggregation) -> Columns {
    let none = Columns {
        min: false,
        max: false,
        sum: false,
        last: false,
    };
    match agg {
        Aggregation::Avg | Aggregation::Sum => Columns { sum: true, ..none },
        Aggregation::Min => Columns { min: true, ..none },
        Aggregation::Max => Columns { max: true, ..none },
        Aggregation::Last => Columns { last: true, ..none },
    }
}

/// A bucket's value under `agg`.
pub fn value_of(bucket: &Rollup, agg: Aggregation) -> f64 {
    match agg {
        Aggregation::Avg => bucket.sum / f64::from(bucket.count),
        Aggregation::Sum => bucket.sum,
        Aggregation::Min => bucket.min,
        Aggregation::Max => bucket.max,
        Aggregation::Last => bucket.last,
    }
}

/// Stored series, optionally of one node and whose metric contains `q`, with their newest
/// sample.
pub fn search(
    conn: &Connection,
    head: &Head,
    node_id: Option<i64>,
    q: Option<&str>,
    limit: i64,
) -> rusqlite::Result<Vec<SeriesInfo>> {
    let pattern = format!("%{}%", like_escape(q.unwrap_or_default()));
    let mut statement = conn.prepare_cached(
        "SELECT s.id, s.node_id, s.metric, s.tags, s.kind
           FROM series s
          WHERE (?1 IS NULL OR s.node_id = ?1) AND s.metric LIKE ?2 ESCAPE '\\'
          ORDER BY s.node_id, s.metric, s.tags LIMIT ?3",
    )?;
    let rows = statement.query_map(params![node_id, pattern, limit], |row| {
        Ok(SeriesInfo {
            id: row.get(0)?,
            node_id: row.get(1)?,
            metric: row.get(2)?,
            tags: tags_from_canonical(&row.get::<_, String>(3)?),
            kind: wire_kind(kind_column(&row.get::<_, String>(4)?)),
            latest: None,
        })
    })?;
    let mut out = rows.collect::<rusqlite::Result<Vec<_>>>()?;
    for info in &mut out {
        info.latest =
            chunks::latest(conn, head, info.id)?.map(|(ts, value)| (ts.div_euclid(1_000), value));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    // ---- the naive reference: every raw sample, read and bucketed in one go ----

    /// Per-second rates of a counter's readings (ms timestamps), each at the later reading.
    fn rates(points: &[(i64, f64)]) -> Vec<(i64, f64)> {
        points
            .windows(2)
            .filter_map(|pair| {
                let ((t0, v0), (t1, v1)) = (pair[0], pair[1]);
                let seconds = (t1 - t0) as f64 / 1_000.0;
                (seconds > 0.0).then(|| (t1, counter_increase(v0, v1) / seconds))
            })
            .collect()
    }

    /// Groups ms points into steps of `step` seconds starting at a multiple of `step`.
    fn bucket(points: &[(i64, f64)], step: i64, agg: Aggregation) -> Vec<(i64, f64)> {
        let mut out: Vec<(i64, f64)> = Vec::new();
        let mut current: Option<(i64, f64, f64, usize)> = None; // start, acc, last, count
        let flush = |out: &mut Vec<(i64, f64)>,
                     (start, acc, _last, count): (i64, f64, f64, usize)| {
            let value = match agg {
                Aggregation::Avg => acc / count as f64,
                _ => acc,
            };
            out.push((start, value));
        };
        for &(ts_ms, value) in points {
            let start = ts_ms.div_euclid(1_000).div_euclid(step) * step;
            match &mut current {
                Some((bucket_start, acc, last, count)) if *bucket_start == start => {
                    *acc = match agg {
                        Aggregation::Avg | Aggregation::Sum => *acc + value,
                        Aggregation::Min => acc.min(value),
                        Aggregation::Max => acc.max(value),
                        Aggregation::Last => value,
                    };
                    *last = value;
                    *count += 1;
                }
                _ => {
                    if let Some(done) = current.take() {
                        flush(&mut out, done);
                    }
                    current = Some((start, value, value, 1));
                }
            }
        }
        if let Some(done) = current {
            flush(&mut out, done);
        }
        out
    }

    #[test]
    fn counter_increase_handles_wraps_and_resets() {
        assert_eq!(counter_increase(100.0, 250.0), 150.0);
        // 64-bit wrap: 10 before the top, 5 after.
        let top = 18_446_744_073_709_551_616.0;
        let previous = top - 4096.0;
        assert_eq!(counter_increase(previous, 5.0), 4096.0 + 5.0);
        // A reset (reboot): the counter restarted from zero.
        assert_eq!(counter_increase(1_000_000.0, 300.0), 300.0);
    }

    #[test]
    fn rates_are_per_second_and_skip_equal_timestamps() {
        let points = [
            (0, 0.0),
            (10_000, 1_000.0),
            (10_000, 1_000.0),
            (20_000, 3_000.0),
        ];
        assert_eq!(rates(&points), vec![(10_000, 100.0), (20_000, 200.0)]);
    }

    #[test]
    fn buckets_aggregate_within_each_step() {
        let points = [(0, 1.0), (5_000, 3.0), (60_000, 10.0), (61_000, 20.0)];
        assert_eq!(
            bucket(&points, 60, Aggregation::Avg),
            vec![(0, 2.0), (60, 15.0)]
        );
        assert_eq!(
            bucket(&points, 60, Aggregation::Max),
            vec![(0, 3.0), (60, 20.0)]
        );
        assert_eq!(
            bucket(&points, 60, Aggregation::Min),
            vec![(0, 1.0), (60, 10.0)]
        );
        assert_eq!(
            bucket(&points, 60, Aggregation::Last),
            vec![(0, 3.0), (60, 20.0)]
        );
        assert_eq!(
            bucket(&points, 60, Aggregation::Sum),
            vec![(0, 4.0), (60, 30.0)]
        );
    }

    #[test]
    fn steps_default_to_300_points_and_are_capped() {
        assert_eq!(step_for(0, 3_600, None), 12);
        assert_eq!(step_for(0, 3_600, Some(60)), 60);
        assert_eq!(step_for(0, 7 * 86_400, Some(1)), 303);
        assert_eq!(step_for(0, 10, None), 1);
    }

    // ---- the store against the reference ----

    use std::collections::BTreeMap;
    use std::sync::Arc;

    use proptest::prelude::*;
    use rand::rngs::StdRng;
    use rand::{Rng as _, SeedableRng as _};

    use crate::metrics_store::{Batch, MetricsStore, Sample, SeriesKey, StoreOptions};

    const NOW: i64 = 1_800_000_000_000;
    const SPAN: i64 = 3 * 24 * 3_600_000;

    /// The reference answer over every sample ever written (the last write of a timestamp
    /// wins), with a counter's rates taken over its whole history.
    fn reference(
        truth: &BTreeMap<i64, f64>,
        kind: Kind,
        (from, to, step): (i64, i64, i64),
        agg: Aggregation,
    ) -> Vec<(i64, f64)> {
        let all: Vec<(i64, f64)> = truth.iter().map(|(t, v)| (*t, *v)).collect();
        let points = match kind {
            Kind::Gauge => all,
            Kind::Counter => rates(&all),
        };
        let inside: Vec<(i64, f64)> = points
            .into_iter()
            .filter(|(ts, _)| *ts >= from * 1_000 && *ts < (to + 1) * 1_000)
            .collect();
        bucket(&inside, step, agg)
    }

    fn close(a: f64, b: f64) -> bool {
        a == b || (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
    }

    /// Writes random gauge and counter data (out of order, with late samples and rewritten
    /// timestamps) with compaction passes in between, then checks random queries.
    fn store_answers_like_the_reference(seed: u64) {
        let mut rng = StdRng::seed_from_u64(seed);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let options = StoreOptions {
            background_compaction: false,
            ..StoreOptions::default()
        };
        let store = MetricsStore::open_with(&dir.path().join("metrics.db"), options).unwrap();
        let series = [("m.level", Kind::Gauge), ("m.octets_total", Kind::Counter)];
        let mut truth: Vec<BTreeMap<i64, f64>> = vec![BTreeMap::new(); series.len()];
        let mut pending: Vec<(usize, i64, f64)> = Vec::new();
        let interval = [1_000, 10_000, 60_000][rng.random_range(0..3)];
        for (index, _) in series.iter().enumerate() {
            let mut ts = NOW - SPAN + rng.random_range(0..interval);
            let mut counter = rng.random_range(0..1_000_000) as f64;
            let integers = rng.random_bool(0.7);
            while ts < NOW {
                let value = if index == 0 {
                    let v = rng.random_range(-50.0..150.0);
                    if integers { f64::round(v) } else { v }
                } else {
                    if rng.random_bool(0.001) {
                        counter = 0.0; // a reboot
                    }
                    counter += rng.random_range(0..5_000) as f64;
                    counter
                };
                pending.push((index, ts, value));
                // Gaps (a device away) and jitter.
                ts += if rng.random_bool(0.002) {
                    rng.random_range(0..6 * 3_600_000)
                } else {
                    interval + rng.random_range(-3..4)
                };
            }
        }
        pending.sort_by_key(|p| p.1);
        // Some samples arrive late, some timestamps are written twice with new values.
        let late = pending.len() / 50;
        for _ in 0..late {
            let at = rng.random_range(0..pending.len());
            let mut sample = pending.remove(at);
            if rng.random_bool(0.5) {
                pending.push(sample);
            } else {
                sample.2 += 1.0;
                let to = rng.random_range(at..=pending.len());
                pending.insert(to, sample);
            }
        }
        let keys: Vec<Arc<SeriesKey>> = series
            .iter()
            .map(|(metric, _)| {
                Arc::new(SeriesKey {
                    node_id: 1,
                    metric: (*metric).into(),
                    tags: "".into(),
                })
            })
            .collect();
        let batches = rng.random_range(3..12);
        let per_batch = pending.len().div_ceil(batches);
        runtime.block_on(async {
            for part in pending.chunks(per_batch.max(1)) {
                let mut samples = Vec::with_capacity(part.len());
                for &(index, ts, value) in part {
                    truth[index].insert(ts, value);
                    samples.push(Sample {
                        key: keys[index].clone(),
                        ts_ms: ts,
                        value,
                    });
                }
                store
                    .write(Batch {
                        component_id: 1,
                        batch_id: None,
                        lines: part.len(),
                        samples,
                    })
                    .await
                    .unwrap();
                if rng.random_bool(0.7) {
                    let newest = part.iter().map(|p| p.1).max().unwrap_or(NOW);
                    store
                        .compact(newest + rng.random_range(0..2 * 3_600_000))
                        .await
                        .unwrap();
                }
            }
            if rng.random_bool(0.5) {
                store.compact(NOW + 2 * 3_600_000).await.unwrap();
            }
        });
        let conn = store.reader.get().unwrap();
        for _ in 0..40 {
            let from = (NOW - SPAN - 3_600_000 + rng.random_range(0..SPAN + 3_600_000)) / 1_000;
            let to = from + rng.random_range(1..(NOW / 1_000 - from + 3_600).max(2));
            let asked = [
                None,
                Some(10),
                Some(60),
                Some(300),
                Some(900),
                Some(3_600),
                Some(21_600),
            ][rng.random_range(0..7)];
            let agg = [
                Aggregation::Avg,
                Aggregation::Min,
                Aggregation::Max,
                Aggregation::Sum,
                Aggregation::Last,
            ][rng.random_range(0..5)];
            let query = RangeQuery::new(1, None, (from, to), asked, agg, &store.retention, NOW);
            let plan = (query.step, query.resolution);
            let answer = range(&conn, &store.head, &query).unwrap();
            assert_eq!(answer.len(), series.len());
            for (index, (metric, kind)) in series.iter().enumerate() {
                let got = &answer.iter().find(|s| s.metric == *metric).unwrap().points;
                let want = reference(&truth[index], *kind, (from, to, plan.0), agg);
                let context = format!(
                    "seed {seed}, {metric}, from {from} to {to}, asked {asked:?}, plan {plan:?}, {agg:?}"
                );
                if got.len() != want.len() {
                    let at = got
                        .iter()
                        .zip(&want)
                        .position(|(g, w)| g.0 != w.0)
                        .unwrap_or(got.len().min(want.len()));
                    panic!(
                        "{context}: {} vs {} points, first difference at {at}: got {:?} want {:?}",
                        got.len(),
                        want.len(),
                        got.get(at.saturating_sub(1)..at + 2),
                        want.get(at.saturating_sub(1)..at + 2)
                    );
                }
                for (g, w) in got.iter().zip(&want) {
                    assert!(g.0 == w.0 && close(g.1, w.1), "{context}: {g:?} vs {w:?}");
                }
            }
        }
    }

    /// Seeds that once failed: sealing a 5-minute slice deleted the rest of its hour's head
    /// rows.
    #[test]
    fn sealing_a_slice_keeps_the_rest_of_its_hour() {
        store_answers_like_the_reference(5_244_569_428_548_779_338);
        store_answers_like_the_reference(5_413_749_087_534_223_832);
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]
        #[test]
        fn queries_answer_like_a_naive_scan_of_every_sample(seed in any::<u64>()) {
            store_answers_like_the_reference(seed);
        }
    }

    #[test]
    fn a_query_split_over_threads_answers_like_one_connection() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let store = MetricsStore::open_with(
            &dir.path().join("metrics.db"),
            StoreOptions {
                background_compaction: false,
                ..StoreOptions::default()
            },
        )
        .unwrap();
        let samples: Vec<Sample> = (0..150)
            .flat_map(|i| {
                let key = Arc::new(SeriesKey {
                    node_id: 1,
                    metric: format!("m.s{i:03}_total").into(),
                    tags: "".into(),
                });
                (0..60).map(move |k| Sample {
                    key: key.clone(),
                    ts_ms: NOW - 3_600_000 + k * 60_000,
                    value: (k * i) as f64,
                })
            })
            .collect();
        runtime.block_on(async {
            store
                .write(Batch {
                    component_id: 1,
                    batch_id: None,
                    lines: samples.len(),
                    samples,
                })
                .await
                .unwrap();
            store.compact(NOW).await.unwrap();
        });
        let query = RangeQuery::new(
            1,
            None,
            ((NOW - 3_600_000) / 1_000, NOW / 1_000),
            Some(300),
            Aggregation::Avg,
            &store.retention,
            NOW,
        );
        let split = range_on(&store.reader, &store.head, &query).unwrap();
        let one = range(&store.reader.get().unwrap(), &store.head, &query).unwrap();
        assert_eq!(split.len(), 150);
        assert_eq!(split, one);
        assert!(split.windows(2).all(|w| w[0].metric < w[1].metric));
        // With every connection but one taken, the query runs on that one and does not wait.
        let mut held: Vec<_> = std::iter::from_fn(|| store.reader.try_get()).collect();
        held.pop();
        let started = std::time::Instant::now();
        assert_eq!(range_on(&store.reader, &store.head, &query).unwrap(), one);
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
    }

    #[test]
    fn a_long_step_reads_rollups_and_a_short_one_raw_samples() {
        let retention = Retention::default();
        let now = NOW;
        let day = 86_400;
        let from = now / 1_000 - 7 * day;
        let (step, resolution) = plan(from, now / 1_000, None, &retention, now);
        assert_eq!((step, resolution), (2_100, Resolution::FiveMinutes));
        let (step, resolution) = plan(now / 1_000 - 365 * day, now / 1_000, None, &retention, now);
        assert_eq!((step, resolution), (108_000, Resolution::Hour));
        let (_, resolution) = plan(now / 1_000 - 3_600, now / 1_000, None, &retention, now);
        assert_eq!(resolution, Resolution::Raw);
        // Raw samples are gone after 30 days: an old hour comes from the 5-minute rollups.
        let old = now / 1_000 - 40 * day;
        assert_eq!(
            plan(old, old + 3_600, Some(10), &retention, now),
            (300, Resolution::FiveMinutes)
        );
    }
}
