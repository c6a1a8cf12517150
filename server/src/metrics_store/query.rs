//! Range queries over stored samples: a node's series in a time range, in steps, aggregated,
//! with counters turned into per-second rates (wraps and resets handled).

use plantwatch_shared::api::{
    Aggregation, MAX_POINTS_PER_SERIES, MAX_SERIES_PER_QUERY, MetricSeries, SeriesInfo, SeriesKind,
    tags_from_canonical,
};
use rusqlite::{Connection, params};

use super::{Kind, kind_column};

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

/// Per-second rates of a counter's readings (ms timestamps), each at the later reading.
pub fn rates(points: &[(i64, f64)]) -> Vec<(i64, f64)> {
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
pub fn bucket(points: &[(i64, f64)], step: i64, agg: Aggregation) -> Vec<(i64, f64)> {
    let mut out: Vec<(i64, f64)> = Vec::new();
    let mut current: Option<(i64, f64, f64, usize)> = None; // start, acc, last, count
    let flush = |out: &mut Vec<(i64, f64)>, (start, acc, _last, count): (i64, f64, f64, usize)| {
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

/// A chosen step: the caller's, or about 300 points over the range; never more than
/// [`MAX_POINTS_PER_SERIES`] points.
pub fn step_for(from: i64, to: i64, asked: Option<i64>) -> i64 {
    let span = (to - from).max(1);
    let step = asked.unwrap_or(span / 300).max(1);
    step.max((span + MAX_POINTS_PER_SERIES - 1) / MAX_POINTS_PER_SERIES)
}

struct SeriesRow {
    id: i64,
    metric: String,
    tags: String,
    kind: Kind,
}

fn wire_kind(kind: Kind) -> SeriesKind {
    match kind {
        Kind::Gauge => SeriesKind::Gauge,
        Kind::Counter => SeriesKind::Counter,
    }
}

/// The node's series matching `metric` (exact, or a prefix ending in `*`), by name.
fn node_series(
    conn: &Connection,
    node_id: i64,
    metric: Option<&str>,
) -> rusqlite::Result<Vec<SeriesRow>> {
    let pattern = match metric {
        None => "%".to_owned(),
        Some(m) => match m.strip_suffix('*') {
            Some(prefix) => format!("{}%", like_escape(prefix)),
            None => like_escape(m),
        },
    };
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

/// Series of `node_id` matching `metric` over `[from, to]` (UNIX seconds) in steps.
pub fn range(
    conn: &Connection,
    node_id: i64,
    metric: Option<&str>,
    from: i64,
    to: i64,
    step: i64,
    agg: Aggregation,
) -> rusqlite::Result<Vec<MetricSeries>> {
    let mut samples = conn.prepare_cached(
        "SELECT ts, value FROM samples WHERE series_id = ?1 AND ts >= ?2 AND ts <= ?3 ORDER BY ts",
    )?;
    let mut out = Vec::new();
    for series in node_series(conn, node_id, metric)? {
        // A counter's first rate needs the reading before the range.
        let start = if series.kind == Kind::Counter {
            (from - step) * 1_000
        } else {
            from * 1_000
        };
        let points = samples
            .query_map(params![series.id, start, to * 1_000 + 999], |row| {
                Ok((row.get::<_, i64>(0)?, row.get::<_, f64>(1)?))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        let points = match series.kind {
            Kind::Counter => rates(&points)
                .into_iter()
                .filter(|(ts, _)| *ts >= from * 1_000)
                .collect(),
            Kind::Gauge => points,
        };
        out.push(MetricSeries {
            metric: series.metric,
            tags: tags_from_canonical(&series.tags),
            kind: wire_kind(series.kind),
            points: bucket(&points, step, agg),
        });
    }
    Ok(out)
}

/// Stored series, optionally of one node and whose metric contains `q`, with their newest
/// sample.
pub fn search(
    conn: &Connection,
    node_id: Option<i64>,
    q: Option<&str>,
    limit: i64,
) -> rusqlite::Result<Vec<SeriesInfo>> {
    let pattern = format!("%{}%", like_escape(q.unwrap_or_default()));
    let mut statement = conn.prepare_cached(
        "SELECT s.id, s.node_id, s.metric, s.tags, s.kind,
                (SELECT ts FROM samples WHERE series_id = s.id ORDER BY ts DESC LIMIT 1),
                (SELECT value FROM samples WHERE series_id = s.id ORDER BY ts DESC LIMIT 1)
           FROM series s
          WHERE (?1 IS NULL OR s.node_id = ?1) AND s.metric LIKE ?2 ESCAPE '\\'
          ORDER BY s.node_id, s.metric, s.tags LIMIT ?3",
    )?;
    let rows = statement.query_map(params![node_id, pattern, limit], |row| {
        let ts: Option<i64> = row.get(5)?;
        let value: Option<f64> = row.get(6)?;
        Ok(SeriesInfo {
            id: row.get(0)?,
            node_id: row.get(1)?,
            metric: row.get(2)?,
            tags: tags_from_canonical(&row.get::<_, String>(3)?),
            kind: wire_kind(kind_column(&row.get::<_, String>(4)?)),
            latest: ts.zip(value).map(|(ts, v)| (ts.div_euclid(1_000), v)),
        })
    })?;
    rows.collect()
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
