//! Where samples live in `metrics.db` and how they are read back.
//!
//! - **head** ([`super::Head`], in memory, logged in the `head_log` table): samples as
//!   committed by the writer and not sealed yet; `seq` orders arrivals, so of two samples at one
//!   timestamp the later one wins.
//! - **chunks** (`chunks` table): the compactor's sealed blobs ([`super::codec`]). Raw samples
//!   in one chunk per series per clock hour; rollups at 5 minutes in one chunk per UTC day, at
//!   1 hour in one chunk per 7 days. A chunk's row id encodes series, resolution and window:
//!   `series_id << 32 | resolution << 28 | window index`, so one B-tree orders every series'
//!   chunks by resolution and time, with no second index.

use rusqlite::{Connection, params};

use super::codec::{self, CodecError, Columns, Rollup, RollupDecoder};
use super::query::counter_increase;
use super::{Head, Kind};

/// A stored resolution.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Resolution {
    Raw,
    FiveMinutes,
    Hour,
}

/// One hour in milliseconds: the raw chunk window.
pub const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 24 * HOUR_MS;

impl Resolution {
    pub const ALL: [Resolution; 3] = [Resolution::Raw, Resolution::FiveMinutes, Resolution::Hour];
    pub const ROLLUPS: [Resolution; 2] = [Resolution::FiveMinutes, Resolution::Hour];

    fn code(self) -> i64 {
        match self {
            Resolution::Raw => 0,
            Resolution::FiveMinutes => 1,
            Resolution::Hour => 2,
        }
    }

    /// Bucket width in seconds (0 for raw).
    pub fn seconds(self) -> i64 {
        match self {
            Resolution::Raw => 0,
            Resolution::FiveMinutes => 300,
            Resolution::Hour => 3_600,
        }
    }

    /// Bucket width in milliseconds (0 for raw).
    pub fn bucket_ms(self) -> i64 {
        self.seconds() * 1_000
    }

    /// Time one chunk covers.
    pub fn window_ms(self) -> i64 {
        match self {
            Resolution::Raw => HOUR_MS,
            Resolution::FiveMinutes => DAY_MS,
            Resolution::Hour => 7 * DAY_MS,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Resolution::Raw => "raw",
            Resolution::FiveMinutes => "5m",
            Resolution::Hour => "1h",
        }
    }

    /// Start of the window holding `ts`.
    pub fn window_of(self, ts: i64) -> i64 {
        ts.div_euclid(self.window_ms()) * self.window_ms()
    }
}

/// Timestamps the store accepts: 1970 up to the year 10000 (window indexes fit 28 bits).
pub const MAX_TS_MS: i64 = 253_402_300_800_000;

/// Row id of a chunk. `window_start` must be a window boundary of `resolution`, ≥ 0.
pub fn chunk_id(series_id: i64, resolution: Resolution, window_start: i64) -> i64 {
    let index = window_start.max(0) / resolution.window_ms();
    (series_id << 32) | (resolution.code() << 28) | index
}

/// The row id range `[low, high)` of a series' chunks of one resolution, windows starting
/// before `before` (ms).
pub fn chunk_range(series_id: i64, resolution: Resolution, before: i64) -> (i64, i64) {
    let low = chunk_id(series_id, resolution, 0);
    let windows = before.max(0).div_euclid(resolution.window_ms())
        + i64::from(before.rem_euclid(resolution.window_ms()) != 0);
    (low, low + windows.min(1 << 28))
}

/// Window start of a chunk id.
pub fn window_of_id(id: i64, resolution: Resolution) -> i64 {
    (id & ((1 << 28) - 1)) * resolution.window_ms()
}

/// Decoding failures surface as SQLite errors so callers keep one error type.
pub(crate) fn damaged(error: CodecError) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Blob, Box::new(error))
}

/// Raw points of a series with `from <= ts < to` (ms), chunks and head merged, in time order;
/// of several samples at one timestamp the latest arrival.
pub fn raw_points(
    conn: &Connection,
    head: &Head,
    series_id: i64,
    from: i64,
    to: i64,
) -> rusqlite::Result<Vec<(i64, f64)>> {
    if to <= from {
        return Ok(Vec::new());
    }
    let mut sealed = sealed_points(conn, series_id, from, to)?;
    sealed.retain(|(ts, _)| *ts >= from);
    Ok(merge(sealed, head.points(series_id, from, to, i64::MAX)))
}

/// Every sealed raw point of the hours overlapping `[from, to)`, up to `to`.
pub fn sealed_points(
    conn: &Connection,
    series_id: i64,
    from: i64,
    to: i64,
) -> rusqlite::Result<Vec<(i64, f64)>> {
    let mut sealed = Vec::new();
    if to <= from {
        return Ok(sealed);
    }
    let hour = Resolution::Raw.window_of(from.max(0));
    let low = chunk_id(series_id, Resolution::Raw, hour);
    let (_, high) = chunk_range(series_id, Resolution::Raw, to);
    let mut statement =
        conn.prepare_cached("SELECT data FROM chunks WHERE id >= ?1 AND id < ?2 ORDER BY id")?;
    let mut rows = statement.query(params![low, high])?;
    while let Some(row) = rows.next()? {
        let blob = row.get_ref(0)?.as_blob()?;
        let points = codec::decode_raw(blob).map_err(damaged)?;
        sealed.extend(points.into_iter().filter(|(ts, _)| *ts < to));
    }
    Ok(sealed)
}

/// Merges two time-ordered point lists; on equal timestamps `newer` wins.
pub fn merge(older: Vec<(i64, f64)>, newer: Vec<(i64, f64)>) -> Vec<(i64, f64)> {
    if newer.is_empty() {
        return older;
    }
    if older.is_empty() {
        return newer;
    }
    let mut out = Vec::with_capacity(older.len() + newer.len());
    let (mut a, mut b) = (older.into_iter().peekable(), newer.into_iter().peekable());
    loop {
        match (a.peek(), b.peek()) {
            (Some(x), Some(y)) if x.0 < y.0 => out.extend(a.next()),
            (Some(x), Some(y)) if x.0 == y.0 => {
                a.next();
                out.extend(b.next());
            }
            (_, Some(_)) => out.extend(b.next()),
            (Some(_), None) => out.extend(a.next()),
            (None, None) => return out,
        }
    }
}

/// The latest raw reading of a series before `before` (ms), from the head or the chunks.
pub fn reading_before(
    conn: &Connection,
    head: &Head,
    series_id: i64,
    before: i64,
) -> rusqlite::Result<Option<(i64, f64)>> {
    let head = head.reading_before(series_id, before);
    let sealed = sealed_reading_before(conn, series_id, before)?;
    Ok(match (head, sealed) {
        (Some(h), Some(s)) if s.0 > h.0 => Some(s),
        (Some(h), _) => Some(h),
        (None, s) => s,
    })
}

/// The latest sealed raw reading before `before`.
pub fn sealed_reading_before(
    conn: &Connection,
    series_id: i64,
    before: i64,
) -> rusqlite::Result<Option<(i64, f64)>> {
    let (low, high) = chunk_range(series_id, Resolution::Raw, before);
    let mut statement = conn.prepare_cached(
        "SELECT data FROM chunks WHERE id >= ?1 AND id < ?2 ORDER BY id DESC LIMIT 2",
    )?;
    let mut rows = statement.query(params![low, high])?;
    while let Some(row) = rows.next()? {
        let points = codec::decode_raw(row.get_ref(0)?.as_blob()?).map_err(damaged)?;
        if let Some(point) = points.into_iter().rev().find(|(ts, _)| *ts < before) {
            return Ok(Some(point));
        }
    }
    Ok(None)
}

/// The newest reading of a series, if it has any.
pub fn latest(
    conn: &Connection,
    head: &Head,
    series_id: i64,
) -> rusqlite::Result<Option<(i64, f64)>> {
    reading_before(conn, head, series_id, MAX_TS_MS)
}

/// Stored rollup buckets of a series at `resolution` in `[from, to)` (ms), folded into steps
/// of `step_ms` (a multiple of the resolution), with the `columns` asked for (the others 0).
pub fn rollup_steps(
    conn: &Connection,
    series_id: i64,
    resolution: Resolution,
    (from, to): (i64, i64),
    columns: Columns,
    step_ms: i64,
) -> rusqlite::Result<Vec<Rollup>> {
    let mut out: Vec<Rollup> = Vec::new();
    if to <= from {
        return Ok(out);
    }
    let low = chunk_id(series_id, resolution, resolution.window_of(from.max(0)));
    let (_, high) = chunk_range(series_id, resolution, to);
    let mut statement =
        conn.prepare_cached("SELECT data FROM chunks WHERE id >= ?1 AND id < ?2 ORDER BY id")?;
    let mut rows = statement.query(params![low, high])?;
    let mut decoder = RollupDecoder::default();
    // The step being filled ends here: one division per step, not per bucket.
    let mut step_end = i64::MIN;
    while let Some(row) = rows.next()? {
        let points = decoder
            .decode(row.get_ref(0)?.as_blob()?, columns)
            .map_err(damaged)?;
        for point in points {
            if point.ts < from || point.ts >= to {
                continue;
            }
            match out.last_mut() {
                Some(last) if point.ts < step_end => last.absorb(point),
                _ => {
                    let start = point.ts.div_euclid(step_ms) * step_ms;
                    step_end = start + step_ms;
                    out.push(Rollup {
                        ts: start,
                        ..*point
                    });
                }
            }
        }
    }
    Ok(out)
}

/// The points a series' statistics are taken over: its values (gauge) or, for a counter, the
/// per-second rate at each reading since the one before (`previous`, the reading before the
/// first of `points`).
pub fn series_points(
    kind: Kind,
    previous: Option<(i64, f64)>,
    points: &[(i64, f64)],
) -> Vec<(i64, f64)> {
    match kind {
        Kind::Gauge => points.to_vec(),
        Kind::Counter => {
            let mut out = Vec::with_capacity(points.len());
            let mut before = previous;
            for &(ts, value) in points {
                if let Some((t0, v0)) = before {
                    let seconds = (ts - t0) as f64 / 1_000.0;
                    if seconds > 0.0 {
                        out.push((ts, counter_increase(v0, value) / seconds));
                    }
                }
                before = Some((ts, value));
            }
            out
        }
    }
}

/// Rolls time-ordered points up into buckets of `bucket_ms` (aligned to the epoch).
pub fn roll_up(points: &[(i64, f64)], bucket_ms: i64) -> Vec<Rollup> {
    let mut out: Vec<Rollup> = Vec::new();
    for &(ts, value) in points {
        let start = ts.div_euclid(bucket_ms) * bucket_ms;
        match out.last_mut() {
            Some(bucket) if bucket.ts == start => bucket.add(value),
            _ => out.push(Rollup {
                ts: start,
                min: value,
                max: value,
                sum: value,
                count: 1,
                last: value,
            }),
        }
    }
    out
}

impl Rollup {
    fn add(&mut self, value: f64) {
        self.min = self.min.min(value);
        self.max = self.max.max(value);
        self.sum += value;
        self.count += 1;
        self.last = value;
    }

    /// Folds a later bucket's aggregates into this one.
    pub fn absorb(&mut self, later: &Rollup) {
        self.min = self.min.min(later.min);
        self.max = self.max.max(later.max);
        self.sum += later.sum;
        self.count += later.count;
        self.last = later.last;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunk_ids_order_series_then_resolution_then_time() {
        let a = chunk_id(7, Resolution::Raw, 5 * HOUR_MS);
        let b = chunk_id(7, Resolution::Raw, 6 * HOUR_MS);
        let c = chunk_id(7, Resolution::FiveMinutes, 0);
        let d = chunk_id(8, Resolution::Raw, 0);
        assert!(a < b && b < c && c < d);
        assert_eq!(window_of_id(b, Resolution::Raw), 6 * HOUR_MS);
        let (low, high) = chunk_range(7, Resolution::Raw, 6 * HOUR_MS + 1);
        assert!(low <= a && b < high && high <= c);
        let (_, high) = chunk_range(7, Resolution::Raw, 6 * HOUR_MS);
        assert_eq!(high, b);
    }

    #[test]
    fn merging_prefers_the_newer_list() {
        let merged = merge(
            vec![(1, 1.0), (2, 2.0), (4, 4.0)],
            vec![(2, 20.0), (3, 30.0)],
        );
        assert_eq!(merged, vec![(1, 1.0), (2, 20.0), (3, 30.0), (4, 4.0)]);
    }

    #[test]
    fn counters_roll_up_as_rates_from_the_reading_before() {
        let points = [(10_000, 100.0), (20_000, 300.0), (310_000, 900.0)];
        let rates = series_points(Kind::Counter, Some((0, 0.0)), &points);
        assert_eq!(
            rates,
            vec![(10_000, 10.0), (20_000, 20.0), (310_000, 600.0 / 290.0)]
        );
        let buckets = roll_up(&rates, 300_000);
        assert_eq!(buckets.len(), 2);
        assert_eq!(
            (buckets[0].count, buckets[0].sum, buckets[0].last),
            (2, 30.0, 20.0)
        );
        assert_eq!(buckets[1].ts, 300_000);
    }
}
