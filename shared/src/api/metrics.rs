//! Metric ingest answers and metric queries.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Header carrying a push's batch id, so a batch sent again is stored once.
pub const BATCH_ID_HEADER: &str = "x-batch-id";
/// Longest batch id.
pub const MAX_BATCH_ID_LEN: usize = 64;
/// Most points a query answers per series; a finer step is coarsened to fit.
pub const MAX_POINTS_PER_SERIES: i64 = 2_000;
/// Most series one query answers.
pub const MAX_SERIES_PER_QUERY: usize = 500;

/// One refused line of an ingest request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LineError {
    /// 1-based line number in the (decompressed) body.
    pub line: usize,
    pub message: String,
}

/// `details` of a 400 answer to an ingest request: the good lines were stored anyway.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IngestRejection {
    pub accepted: usize,
    pub rejected: usize,
    /// The first refused lines (at most 20).
    pub errors: Vec<LineError>,
}

/// How samples are combined within one step of a query.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Aggregation {
    #[default]
    Avg,
    Min,
    Max,
    Last,
    Sum,
}

/// Whether a series counts up (answered as a per-second rate) or is a level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SeriesKind {
    Gauge,
    Counter,
}

/// `GET /nodes/{id}/metrics` query parameters.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MetricQuery {
    /// `measurement.field`, or a prefix ending in `*` (`interface.*`); all metrics if absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metric: Option<String>,
    /// UNIX seconds; default one hour before `to`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<i64>,
    /// UNIX seconds; default now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<i64>,
    /// Seconds per point; default so that the range has about 300 points.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agg: Option<Aggregation>,
}

/// One series in a query answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricSeries {
    pub metric: String,
    pub tags: BTreeMap<String, String>,
    pub kind: SeriesKind,
    /// `[UNIX seconds of the step's start, value]`; counters as per-second rates.
    pub points: Vec<(i64, f64)>,
}

/// Answer of `GET /nodes/{id}/metrics`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricsAnswer {
    pub node_id: i64,
    pub from: i64,
    pub to: i64,
    pub step: i64,
    pub agg: Aggregation,
    pub items: Vec<MetricSeries>,
    /// Series of the node matching the query; more than `items` when the answer stopped at
    /// [`MAX_SERIES_PER_QUERY`] (narrow it with `metric`).
    #[serde(default)]
    pub total: u64,
    /// Whether series were left out (`total` > the series answered).
    #[serde(default)]
    pub truncated: bool,
}

/// `GET /metrics/series` query parameters.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SeriesQuery {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_id: Option<i64>,
    /// Part of the metric name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub q: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<i64>,
}

/// One stored series.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SeriesInfo {
    pub id: i64,
    pub node_id: i64,
    pub metric: String,
    pub tags: BTreeMap<String, String>,
    pub kind: SeriesKind,
    /// Newest stored sample: `[UNIX seconds, value]` (raw, counters not as rates).
    pub latest: Option<(i64, f64)>,
}

/// Ingest figures for the dashboard (part of `GET /summary`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct IngestStats {
    pub samples_per_second: f64,
    pub samples_total: u64,
    pub series: u64,
    pub rejected_lines: u64,
    pub duplicate_batches: u64,
}

/// `GET /summary`: the dashboard's figures.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Node count per health (`healthy`, `offline`, …).
    pub nodes_by_health: BTreeMap<String, i64>,
    /// Every collector with its last report (outbox size and lag).
    pub collectors: Vec<super::Component>,
    pub ingest: IngestStats,
    /// Pending and firing alerts.
    #[serde(default)]
    pub active_alerts: u64,
    /// Pending and firing alerts per severity (`critical`, `warning`).
    #[serde(default)]
    pub alerts_by_severity: BTreeMap<String, u64>,
    /// The most urgent active alerts (critical first, then newest).
    #[serde(default)]
    pub newest_alerts: Vec<super::Alert>,
    /// How long the alert evaluator's last cycle took, once it has run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evaluator_cycle_ms: Option<f64>,
    /// The remote-write backend's queue and forwarder; absent with the embedded store.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote_write: Option<RemoteWriteStatus>,
}

/// The remote-write backend as the dashboard shows it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RemoteWriteStatus {
    /// The engine's write endpoint.
    pub url: String,
    /// Samples committed but not yet taken by the engine (the backlog).
    pub queued_samples: u64,
    /// Most samples the queue holds before ingest answers 503.
    pub max_queued_samples: u64,
    /// Age of the oldest queued sample, while there is a backlog.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oldest_queued_age_secs: Option<i64>,
    /// Samples the engine accepted since the server started.
    pub sent_samples: u64,
    /// Samples the engine refused as bad data (not retried).
    pub rejected_samples: u64,
    /// Attempts that failed and were retried.
    pub failed_attempts: u64,
    /// Whether the last attempt failed and the forwarder waits to retry.
    pub retrying: bool,
    /// UNIX seconds of the last accepted request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_success: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

/// Parses canonical tags `k=v,k=v` (as stored) into a map.
pub fn tags_from_canonical(text: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut key = String::new();
    let mut value = String::new();
    let mut in_value = false;
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let Some(next) = chars.next() {
                    if in_value { &mut value } else { &mut key }.push(next);
                }
            }
            '=' if !in_value => in_value = true,
            ',' => {
                out.insert(std::mem::take(&mut key), std::mem::take(&mut value));
                in_value = false;
            }
            c => if in_value { &mut value } else { &mut key }.push(c),
        }
    }
    if !key.is_empty() {
        out.insert(key, value);
    }
    out
}

/// Canonical text of a tag set: sorted by key, `,`, `=` and `\` escaped with `\`.
pub fn canonical_tags<'a>(tags: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    let mut sorted: Vec<_> = tags.into_iter().collect();
    sorted.sort_unstable();
    let mut out = String::new();
    for (index, (key, value)) in sorted.into_iter().enumerate() {
        if index > 0 {
            out.push(',');
        }
        escape(&mut out, key);
        out.push('=');
        escape(&mut out, value);
    }
    out
}

fn escape(out: &mut String, text: &str) {
    for c in text.chars() {
        if matches!(c, ',' | '=' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_tags_are_sorted_and_round_trip() {
        let text = canonical_tags([("ifName", "Gi0/1,a=b"), ("descr", "x\\y")]);
        assert_eq!(text, r"descr=x\\y,ifName=Gi0/1\,a\=b");
        let back = tags_from_canonical(&text);
        assert_eq!(back["ifName"], "Gi0/1,a=b");
        assert_eq!(back["descr"], "x\\y");
        assert!(tags_from_canonical("").is_empty());
    }
}
