//! Chart queries answered by the engine through its Prometheus HTTP API.
//!
//! A query the embedded store would answer from raw samples (a step under 5 minutes, i.e.
//! ranges up to about a day) fetches the raw samples (`/api/v1/query` of a range vector) and
//! folds them exactly as the embedded store does ([`chunks::series_points`],
//! [`chunks::roll_up`]): the same points for the same data. Longer ranges ask the engine to
//! aggregate (`/api/v1/query_range` with `avg_over_time`, `max_over_time`, … for gauges and
//! `rate` for counters), as its rollups are its own business.

use std::collections::HashMap;

use plantwatch_shared::api::{Aggregation, MetricSeries, tags_from_canonical};
use serde::Deserialize;

use super::{Remote, names};
use crate::metrics_store::Kind;
use crate::metrics_store::chunks::{self, Resolution};
use crate::metrics_store::query::{RangeQuery, SeriesRow, value_of, wire_kind};

/// How far before a range raw samples are read, for a counter's first rate.
pub const LOOKBACK_MS: i64 = 15 * 60 * 1_000;

/// The engine's answer envelope.
#[derive(Debug, Deserialize)]
struct Envelope {
    status: String,
    #[serde(default)]
    data: Option<Data>,
    #[serde(default)]
    error: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Data {
    result: Vec<Matrix>,
}

/// One series of a matrix: labels and `[seconds, "value"]` pairs.
#[derive(Debug, Deserialize)]
struct Matrix {
    metric: HashMap<String, String>,
    #[serde(default)]
    values: Vec<(f64, String)>,
}

/// Answers `query` for the node's series `rows` (from the local series table).
pub async fn range(
    remote: &Remote,
    rows: Vec<SeriesRow>,
    query: &RangeQuery,
) -> Result<Vec<MetricSeries>, String> {
    let selector = names::selector(query.node_id, query.metric.as_deref());
    let from_ms = query.from * 1_000;
    let to_ms = (query.to + 1) * 1_000;
    let step_ms = query.step * 1_000;
    let result = if query.resolution == Resolution::Raw {
        // Range vectors select (t - range, t]: read from LOOKBACK before `from` to `to_ms - 1`.
        let at = to_ms - 1;
        let span = at - (from_ms - LOOKBACK_MS) + 1;
        let params = [
            ("query", format!("{selector}[{span}ms]")),
            ("time", seconds(at)),
        ];
        fetch(remote, "api/v1/query", &params).await?
    } else {
        return aggregated(remote, rows, query).await;
    };
    let mut by_identity: HashMap<String, Vec<(i64, f64)>> = result
        .into_iter()
        .map(|m| (identity_of(&m.metric, true), points(&m.values)))
        .collect();
    Ok(rows
        .into_iter()
        .map(|row| {
            let found = by_identity.remove(&row_identity(query.node_id, &row, true));
            let all = found.unwrap_or_default();
            let first = all.partition_point(|(ts, _)| *ts < from_ms);
            let previous = (first > 0 && row.kind == Kind::Counter).then(|| all[first - 1]);
            let in_range: Vec<(i64, f64)> = all[first..]
                .iter()
                .copied()
                .take_while(|(ts, _)| *ts < to_ms)
                .collect();
            let buckets = chunks::roll_up(
                &chunks::series_points(row.kind, previous, &in_range),
                step_ms,
            );
            series(
                row,
                buckets
                    .iter()
                    .map(|b| (b.ts.div_euclid(1_000), value_of(b, query.agg)))
                    .collect(),
            )
        })
        .collect())
}

fn series(row: SeriesRow, points: Vec<(i64, f64)>) -> MetricSeries {
    MetricSeries {
        tags: tags_from_canonical(&row.tags),
        kind: wire_kind(row.kind),
        metric: row.metric,
        points,
    }
}

/// The PromQL expression of an aggregated chart: a gauge by `agg` over each step, a counter
/// as its per-second `rate` over each step.
fn promql(kind: Kind, agg: Aggregation, selector: &str, step: i64) -> String {
    let function = match (kind, agg) {
        (Kind::Counter, _) => "rate",
        (Kind::Gauge, Aggregation::Avg) => "avg_over_time",
        (Kind::Gauge, Aggregation::Min) => "min_over_time",
        (Kind::Gauge, Aggregation::Max) => "max_over_time",
        (Kind::Gauge, Aggregation::Last) => "last_over_time",
        (Kind::Gauge, Aggregation::Sum) => "sum_over_time",
    };
    format!("{function}({selector}[{step}s])")
}

/// Requests to the engine at once for one aggregated chart.
const PARALLEL: usize = 4;

/// An aggregated chart: one `query_range` per metric name (the functions drop `__name__`, so
/// two metrics with the same tags would collide in one answer), evaluated at each bucket's
/// end over `(end - step, end]` and labelled by the bucket's start.
async fn aggregated(
    remote: &Remote,
    rows: Vec<SeriesRow>,
    query: &RangeQuery,
) -> Result<Vec<MetricSeries>, String> {
    let step_ms = query.step * 1_000;
    let first = (query.from * 1_000).div_euclid(step_ms) * step_ms;
    let last = (query.to * 1_000).div_euclid(step_ms) * step_ms;
    let metrics: std::collections::BTreeMap<&str, Kind> =
        rows.iter().map(|r| (r.metric.as_str(), r.kind)).collect();
    let mut found: HashMap<(String, String), Vec<(i64, f64)>> = HashMap::new();
    let requests: Vec<(&str, [(&str, String); 4])> = metrics
        .iter()
        .map(|(metric, kind)| {
            let selector = names::selector(query.node_id, Some(metric));
            let params = [
                ("query", promql(*kind, query.agg, &selector, query.step)),
                ("start", seconds(first + step_ms)),
                ("end", seconds(last + step_ms)),
                ("step", query.step.to_string()),
            ];
            (*metric, params)
        })
        .collect();
    for group in requests.chunks(PARALLEL) {
        let answers = futures_util::future::join_all(
            group
                .iter()
                .map(|(_, params)| fetch(remote, "api/v1/query_range", params)),
        )
        .await;
        for ((metric, _), answer) in group.iter().zip(answers) {
            for m in answer? {
                let points = points(&m.values)
                    .into_iter()
                    .map(|(ts, v)| ((ts - step_ms).div_euclid(1_000), v))
                    .collect();
                found.insert(
                    ((*metric).to_owned(), identity_of(&m.metric, false)),
                    points,
                );
            }
        }
    }
    Ok(rows
        .into_iter()
        .map(|row| {
            let key = (row.metric.clone(), row_identity(query.node_id, &row, false));
            let points = found.remove(&key).unwrap_or_default();
            series(row, points)
        })
        .collect())
}

/// A series' identity among the engine's answers: its labels but `node` and, unless `named`,
/// its name (functions such as `rate` drop it).
fn identity_of(labels: &HashMap<String, String>, named: bool) -> String {
    let name = if named {
        labels.get("__name__").map_or("", String::as_str)
    } else {
        ""
    };
    names::identity(name, labels.iter().map(|(k, v)| (k.as_str(), v.as_str())))
}

/// The identity of a local series row, as [`identity_of`] gives it for the engine's answer.
fn row_identity(node_id: i64, row: &SeriesRow, named: bool) -> String {
    let key = crate::metrics_store::SeriesKey {
        node_id,
        metric: row.metric.as_str().into(),
        tags: row.tags.as_str().into(),
    };
    let labels = names::labels(&key, "")
        .into_iter()
        .map(|l| (l.name, l.value))
        .collect();
    identity_of(&labels, named)
}

/// `[seconds, "value"]` pairs as (ms, value), in time order.
fn points(values: &[(f64, String)]) -> Vec<(i64, f64)> {
    values
        .iter()
        .filter_map(|(t, v)| {
            let value = match v.as_str() {
                "NaN" => f64::NAN,
                "+Inf" => f64::INFINITY,
                "-Inf" => f64::NEG_INFINITY,
                other => other.parse().ok()?,
            };
            Some(((t * 1_000.0).round() as i64, value))
        })
        .collect()
}

/// UNIX milliseconds as the API's seconds with a fraction.
fn seconds(ms: i64) -> String {
    format!("{}.{:03}", ms.div_euclid(1_000), ms.rem_euclid(1_000))
}

async fn fetch(
    remote: &Remote,
    path: &str,
    params: &[(&str, String)],
) -> Result<Vec<Matrix>, String> {
    let url = remote
        .query_url
        .join(path)
        .map_err(|e| format!("metrics_query_url: {e}"))?;
    let response = remote
        .request(reqwest::Method::GET, url.clone())
        .query(params)
        .send()
        .await
        .map_err(|e| format!("{url}: {}", plantwatch_shared::error_chain(&e)))?;
    let status = response.status();
    let body = response
        .bytes()
        .await
        .map_err(|e| format!("{url}: {}", plantwatch_shared::error_chain(&e)))?;
    let envelope: Envelope = serde_json::from_slice(&body).map_err(|_| {
        let text: String = String::from_utf8_lossy(&body).chars().take(300).collect();
        format!("{url} answered {status}: {text}")
    })?;
    if envelope.status != "success" {
        return Err(format!(
            "{url} answered {status}: {}",
            envelope.error.unwrap_or_default()
        ));
    }
    Ok(envelope.data.map(|d| d.result).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_and_values_are_read_exactly() {
        let values = vec![
            (1_700_000_000.123, "1.5".to_owned()),
            (1_700_000_001.0, "NaN".to_owned()),
            (1_700_000_002.999, "-3e2".to_owned()),
        ];
        let points = points(&values);
        assert_eq!(points[0], (1_700_000_000_123, 1.5));
        assert!(points[1].1.is_nan());
        assert_eq!(points[2], (1_700_000_002_999, -300.0));
        assert_eq!(seconds(1_700_000_002_999), "1700000002.999");
        assert_eq!(seconds(-1), "-1.999");
    }

    #[test]
    fn aggregated_charts_ask_for_the_right_function() {
        let sel = names::selector(4, Some("cpu.usage"));
        assert_eq!(
            promql(Kind::Gauge, Aggregation::Max, &sel, 3_600),
            "max_over_time({node_id=\"4\",__name__=\"plantwatch_cpu_usage\"}[3600s])"
        );
        assert_eq!(
            promql(Kind::Counter, Aggregation::Min, &sel, 300),
            "rate({node_id=\"4\",__name__=\"plantwatch_cpu_usage\"}[300s])"
        );
    }
}
