//! plantwatch's own figures in the Prometheus text format (`GET /metrics`): ingest, the metric
//! store's writer and compactor, the alert evaluator, config delivery, each collector's lag,
//! HTTP requests by route, and the database pools.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::Ordering;
use std::time::Duration;

use plantwatch_shared::api::ComponentKind;

use crate::db;
use crate::state::AppState;

/// Upper bounds (seconds) of the request duration histogram.
const BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

#[derive(Debug, Default, Clone)]
struct RouteFigures {
    /// Requests by status code.
    by_status: BTreeMap<u16, u64>,
    /// Requests at or under each of [`BUCKETS`] (not cumulative yet).
    buckets: [u64; BUCKETS.len()],
    count: u64,
    seconds: f64,
}

/// Requests counted by matched route (never the raw path: ids would make a series each).
#[derive(Debug, Default)]
pub struct HttpStats {
    routes: Mutex<BTreeMap<(String, String), RouteFigures>>,
}

impl HttpStats {
    pub fn record(&self, method: &str, route: &str, status: u16, took: Duration) {
        let Ok(mut routes) = self.routes.lock() else {
            return;
        };
        let figures = routes
            .entry((route.to_owned(), method.to_owned()))
            .or_default();
        *figures.by_status.entry(status).or_default() += 1;
        let seconds = took.as_secs_f64();
        if let Some(bucket) = BUCKETS.iter().position(|le| seconds <= *le) {
            figures.buckets[bucket] += 1;
        }
        figures.count += 1;
        figures.seconds += seconds;
    }
}

/// Escapes a label value (`\`, `"` and newlines).
fn label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

struct Text(String);

impl Text {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.0, "# HELP {name} {help}");
        let _ = writeln!(self.0, "# TYPE {name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        self.0.push_str(name);
        if !labels.is_empty() {
            self.0.push('{');
            for (index, (key, value)) in labels.iter().enumerate() {
                if index > 0 {
                    self.0.push(',');
                }
                let _ = write!(self.0, "{key}=\"{}\"", label(value));
            }
            self.0.push('}');
        }
        let _ = writeln!(self.0, " {value}");
    }

    fn one(&mut self, name: &str, kind: &str, help: &str, value: f64) {
        self.family(name, kind, help);
        self.sample(name, &[], value);
    }
}

/// One collector's figure, if it has it.
type PerCollector = fn(&AppState, &plantwatch_shared::api::Component, i64) -> Option<f64>;

/// The whole exposition.
pub async fn render(state: &AppState) -> String {
    let mut out = Text(String::with_capacity(16 * 1024));
    let stats = &state.metrics.stats;
    let load = |v: &std::sync::atomic::AtomicU64| v.load(Ordering::Relaxed) as f64;
    let compaction = &stats.compaction;
    let mut figures: Vec<(&str, &str, &str, f64)> = vec![
        (
            "plantwatch_ingest_samples_total",
            "counter",
            "Samples committed to the metric store.",
            load(&stats.samples),
        ),
        (
            "plantwatch_ingest_samples_per_second",
            "gauge",
            "Samples committed per second over the last 10 s.",
            stats.samples_per_second(),
        ),
        (
            "plantwatch_ingest_batches_total",
            "counter",
            "Ingest batches committed.",
            load(&stats.batches),
        ),
        (
            "plantwatch_ingest_duplicate_batches_total",
            "counter",
            "Ingest batches answered as already stored (their id was seen).",
            load(&stats.duplicate_batches),
        ),
        (
            "plantwatch_ingest_rejected_lines_total",
            "counter",
            "Line-protocol lines refused.",
            load(&stats.rejected_lines),
        ),
        (
            "plantwatch_http_connections_open",
            "gauge",
            "HTTPS connections open now.",
            crate::listener::OPEN.load(Ordering::Relaxed) as f64,
        ),
        (
            "plantwatch_http_connections_refused_total",
            "counter",
            "Connections closed at once because max_connections were open.",
            crate::listener::REFUSED.load(Ordering::Relaxed) as f64,
        ),
        (
            "plantwatch_ingest_busy_bodies_total",
            "counter",
            "Gzip bodies answered 503: the decompressed bytes in flight were at their cap.",
            load(&stats.busy_bodies),
        ),
        (
            "plantwatch_ingest_series_limited_samples_total",
            "counter",
            "Samples refused because they would create series past a node's or sender's limit.",
            load(&stats.series_limited_samples),
        ),
        (
            "plantwatch_store_series",
            "gauge",
            "Series in the metric store.",
            load(&stats.series),
        ),
        (
            "plantwatch_store_write_queue",
            "gauge",
            "Requests waiting for the metric store's writer.",
            state.metrics.queued() as f64,
        ),
        (
            "plantwatch_store_sealed_samples_total",
            "counter",
            "Samples the compactor sealed into chunks.",
            load(&compaction.sealed_samples),
        ),
        (
            "plantwatch_store_compaction_passes_total",
            "counter",
            "Compaction passes.",
            load(&compaction.passes),
        ),
        (
            "plantwatch_store_compaction_pass_seconds",
            "gauge",
            "Duration of the last compaction pass.",
            load(&compaction.last_pass_us) / 1e6,
        ),
        (
            "plantwatch_evaluator_cycles_total",
            "counter",
            "Alert evaluator cycles.",
            load(&state.evaluator.cycles),
        ),
        (
            "plantwatch_evaluator_cycle_seconds",
            "gauge",
            "Duration of the alert evaluator's last cycle.",
            load(&state.evaluator.last_cycle_us) / 1e6,
        ),
    ];
    if let (Some(remote), Some(status)) = (state.backend.remote(), state.backend.remote_status()) {
        let r = &remote.stats;
        figures.extend([
            (
                "plantwatch_remote_write_queue_samples",
                "gauge",
                "Samples committed but not yet taken by the metrics engine.",
                status.queued_samples as f64,
            ),
            (
                "plantwatch_remote_write_queue_oldest_age_seconds",
                "gauge",
                "Age of the oldest sample waiting for the metrics engine (0 when none).",
                status.oldest_queued_age_secs.unwrap_or(0) as f64,
            ),
            (
                "plantwatch_remote_write_sent_samples_total",
                "counter",
                "Samples the metrics engine accepted.",
                status.sent_samples as f64,
            ),
            (
                "plantwatch_remote_write_rejected_samples_total",
                "counter",
                "Samples the metrics engine refused as bad data (not retried).",
                status.rejected_samples as f64,
            ),
            (
                "plantwatch_remote_write_failed_attempts_total",
                "counter",
                "Remote-write requests that failed and were retried.",
                status.failed_attempts as f64,
            ),
            (
                "plantwatch_remote_write_requests_total",
                "counter",
                "Remote-write requests the metrics engine accepted.",
                load(&r.sent_requests),
            ),
            (
                "plantwatch_remote_write_request_seconds_total",
                "counter",
                "Time spent in remote-write requests the metrics engine accepted.",
                load(&r.send_micros) / 1e6,
            ),
        ]);
    }
    for (name, kind, help, value) in figures {
        out.one(name, kind, help, value);
    }
    out.family(
        "plantwatch_store_write_seconds",
        "summary",
        "Time the metric store's writer took per commit (ingest and compaction together).",
    );
    out.sample(
        "plantwatch_store_write_seconds_sum",
        &[],
        load(&stats.write_micros) / 1e6,
    );
    out.sample(
        "plantwatch_store_write_seconds_count",
        &[],
        load(&stats.writes),
    );
    let collectors = state
        .db
        .call(|conn| {
            db::components::all(conn, Some(ComponentKind::Collector)).map_err(db::DbError::from)
        })
        .await
        .unwrap_or_default();
    let now = db::now();
    let views: Vec<_> = collectors
        .into_iter()
        .map(|row| crate::api::components::view(state, row, now))
        .collect();
    let per_collector: [(&str, &str, &str, PerCollector); 4] = [
        (
            "plantwatch_config_regenerations_total",
            "counter",
            "Collector configurations generated since the server started.",
            |state, c, _| Some(state.delivery.regenerations_of(c.id) as f64),
        ),
        (
            "plantwatch_collector_last_seen_age_seconds",
            "gauge",
            "Seconds since each collector was last heard from.",
            |_, c, now| {
                c.last_seen_at
                    .map(|seen| (now - seen.unix_timestamp()).max(0) as f64)
            },
        ),
        (
            "plantwatch_collector_outbox_lag_seconds",
            "gauge",
            "Age of the oldest batch waiting in each collector's outbox, as it last reported.",
            |_, c, _| c.outbox.map(|o| o.lag_s as f64),
        ),
        (
            "plantwatch_collector_outbox_batches",
            "gauge",
            "Batches waiting in each collector's outbox, as it last reported.",
            |_, c, _| c.outbox.map(|o| o.batches as f64),
        ),
    ];
    for (name, kind, help, figure) in per_collector {
        out.family(name, kind, help);
        for collector in &views {
            if let Some(value) = figure(state, collector, now) {
                out.sample(name, &[("collector", &collector.name)], value);
            }
        }
    }

    out.family(
        "plantwatch_db_pool_connections",
        "gauge",
        "Connections of each SQLite pool, by state.",
    );
    for (name, pool) in [
        ("plantwatch", &state.db),
        ("metrics", &state.metrics.reader),
    ] {
        let (open, idle) = pool.usage();
        out.sample(
            "plantwatch_db_pool_connections",
            &[("db", name), ("state", "busy")],
            f64::from(open.saturating_sub(idle)),
        );
        out.sample(
            "plantwatch_db_pool_connections",
            &[("db", name), ("state", "idle")],
            f64::from(idle),
        );
    }

    let routes = state
        .http
        .routes
        .lock()
        .map(|r| r.clone())
        .unwrap_or_default();
    out.family(
        "plantwatch_http_requests_total",
        "counter",
        "HTTP requests by route, method and status.",
    );
    for ((route, method), figures) in &routes {
        for (status, count) in &figures.by_status {
            let status = status.to_string();
            out.sample(
                "plantwatch_http_requests_total",
                &[("route", route), ("method", method), ("status", &status)],
                *count as f64,
            );
        }
    }
    out.family(
        "plantwatch_http_request_duration_seconds",
        "histogram",
        "HTTP request durations by route and method.",
    );
    for ((route, method), figures) in &routes {
        let mut cumulative = 0;
        for (le, count) in BUCKETS.iter().zip(figures.buckets) {
            cumulative += count;
            let le = le.to_string();
            out.sample(
                "plantwatch_http_request_duration_seconds_bucket",
                &[("route", route), ("method", method), ("le", &le)],
                cumulative as f64,
            );
        }
        let labels = [("route", route.as_str()), ("method", method.as_str())];
        out.sample(
            "plantwatch_http_request_duration_seconds_bucket",
            &[labels[0], labels[1], ("le", "+Inf")],
            figures.count as f64,
        );
        out.sample(
            "plantwatch_http_request_duration_seconds_sum",
            &labels,
            figures.seconds,
        );
        out.sample(
            "plantwatch_http_request_duration_seconds_count",
            &labels,
            figures.count as f64,
        );
    }
    out.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }

    #[test]
    fn requests_fall_in_their_bucket() {
        let stats = HttpStats::default();
        stats.record("GET", "/x", 200, Duration::from_millis(3));
        stats.record("GET", "/x", 500, Duration::from_millis(70));
        let routes = stats.routes.lock().unwrap();
        let figures = &routes[&("/x".to_owned(), "GET".to_owned())];
        assert_eq!(figures.buckets[0], 1);
        assert_eq!(figures.buckets[4], 1);
        assert_eq!(figures.by_status[&500], 1);
        assert_eq!(figures.count, 2);
    }
}
