//! plantwatch's own figures in the Prometheus text format (`GET /metrics`): ingest, the metric
//! store's writer and compactor, the alert evaluator, config delivery, each collector's lag,
//! HTTP requests by route, and the database pools. Every figure is declared in
//! [`registry::figures`]; its owner reports it ([`Report`]).

pub mod registry;

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use plantwatch_shared::api::ComponentKind;

use self::registry::figures as f;
pub use self::registry::{Counter, Exposition, Gauge, Report};
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

/// The whole exposition.
pub async fn render(state: &AppState) -> String {
    let mut out = Exposition::default();
    state.metrics.report(&mut out);
    crate::listener::CONNECTIONS.report(&mut out);
    state.evaluator.report(&mut out);
    state.backend.report(&mut out);
    state.gate.report(&mut out);

    let collectors = state
        .db
        .call(|conn| {
            db::components::all(conn, Some(ComponentKind::Collector)).map_err(db::DbError::from)
        })
        .await
        .unwrap_or_default();
    let now = crate::clock::unix_secs();
    let views: Vec<_> = collectors
        .into_iter()
        .map(|row| crate::components::view(&state.presence, row, now))
        .collect();
    let per_collector: [(&registry::Figure, PerCollector); 4] = [
        (&f::CONFIG_REGENERATIONS, |state, c, _| {
            Some(state.delivery.regenerations_of(c.id) as f64)
        }),
        (&f::COLLECTOR_LAST_SEEN_AGE, |_, c, now| {
            c.last_seen_at
                .map(|seen| (now - seen.unix_timestamp()).max(0) as f64)
        }),
        (&f::COLLECTOR_OUTBOX_LAG, |_, c, _| {
            c.outbox.map(|o| o.lag_s as f64)
        }),
        (&f::COLLECTOR_OUTBOX_BATCHES, |_, c, _| {
            c.outbox.map(|o| o.batches as f64)
        }),
    ];
    for (figure, value_of) in per_collector {
        out.declare(figure);
        for collector in &views {
            if let Some(value) = value_of(state, collector, now) {
                out.labelled(figure, &[("collector", &collector.name)], value);
            }
        }
    }

    out.declare(&f::DB_POOL_CONNECTIONS);
    for (name, pool) in [
        ("plantwatch", &state.db),
        ("metrics", &state.metrics.reader),
    ] {
        let (open, idle) = pool.usage();
        out.labelled(
            &f::DB_POOL_CONNECTIONS,
            &[("db", name), ("state", "busy")],
            f64::from(open.saturating_sub(idle)),
        );
        out.labelled(
            &f::DB_POOL_CONNECTIONS,
            &[("db", name), ("state", "idle")],
            f64::from(idle),
        );
    }
    state.http.report(&mut out);
    out.into_text()
}

impl Report for HttpStats {
    fn report(&self, out: &mut Exposition) {
        let routes = self.routes.lock().map(|r| r.clone()).unwrap_or_default();
        out.declare(&f::HTTP_REQUESTS);
        for ((route, method), figures) in &routes {
            for (status, count) in &figures.by_status {
                let status = status.to_string();
                out.labelled(
                    &f::HTTP_REQUESTS,
                    &[("route", route), ("method", method), ("status", &status)],
                    *count as f64,
                );
            }
        }
        let histogram = &f::HTTP_REQUEST_DURATION;
        out.declare(histogram);
        for ((route, method), figures) in &routes {
            let mut cumulative = 0;
            for (le, count) in BUCKETS.iter().zip(figures.buckets) {
                cumulative += count;
                let le = le.to_string();
                out.part(
                    histogram,
                    "_bucket",
                    &[("route", route), ("method", method), ("le", &le)],
                    cumulative as f64,
                );
            }
            let labels = [("route", route.as_str()), ("method", method.as_str())];
            out.part(
                histogram,
                "_bucket",
                &[labels[0], labels[1], ("le", "+Inf")],
                figures.count as f64,
            );
            out.part(histogram, "_sum", &labels, figures.seconds);
            out.part(histogram, "_count", &labels, figures.count as f64);
        }
    }
}

/// One collector's figure, if it has it.
type PerCollector = fn(&AppState, &plantwatch_shared::api::Component, i64) -> Option<f64>;

#[cfg(test)]
mod tests {
    use super::*;

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
