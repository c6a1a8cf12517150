//! The server's own figures, declared once: each a [`Figure`] (name, kind, help) in
//! [`figures`], counted in a typed [`Counter`] or [`Gauge`] next to the code that moves it,
//! and reported by its owner ([`Report`]) into one [`Exposition`] that writes each family's
//! `HELP`/`TYPE` once (the Prometheus text format).

use std::collections::HashSet;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

/// How a figure moves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Only goes up (named `…_total`).
    Counter,
    /// Goes up and down.
    Gauge,
    /// `_sum` and `_count`.
    Summary,
    /// `_bucket`, `_sum` and `_count`.
    Histogram,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Summary => "summary",
            Kind::Histogram => "histogram",
        }
    }
}

/// One named figure of `GET /metrics`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Figure {
    pub name: &'static str,
    pub kind: Kind,
    pub help: &'static str,
}

macro_rules! figures {
    ($($(#[$doc:meta])* $constant:ident: $kind:ident $name:literal $help:literal;)*) => {
        $($(#[$doc])* pub const $constant: Figure = Figure {
            name: $name,
            kind: Kind::$kind,
            help: $help,
        };)*
        /// Every figure the server reports.
        pub const ALL: &[Figure] = &[$($constant,)*];
    };
}

/// Every figure, in the order `GET /metrics` lists them.
pub mod figures {
    use super::{Figure, Kind};

    figures! {
        INGEST_SAMPLES: Counter "plantwatch_ingest_samples_total"
            "Samples committed to the metric store.";
        INGEST_SAMPLES_PER_SECOND: Gauge "plantwatch_ingest_samples_per_second"
            "Samples committed per second over the last 10 s.";
        INGEST_BATCHES: Counter "plantwatch_ingest_batches_total"
            "Ingest batches committed.";
        INGEST_DUPLICATE_BATCHES: Counter "plantwatch_ingest_duplicate_batches_total"
            "Ingest batches answered as already stored (their id was seen).";
        INGEST_REJECTED_LINES: Counter "plantwatch_ingest_rejected_lines_total"
            "Line-protocol lines refused.";
        INGEST_BUSY_BODIES: Counter "plantwatch_ingest_busy_bodies_total"
            "Gzip bodies answered 503: the decompressed bytes in flight were at their cap.";
        INGEST_SERIES_LIMITED_SAMPLES: Counter "plantwatch_ingest_series_limited_samples_total"
            "Samples refused because they would create series past a node's or sender's limit.";
        HTTP_CONNECTIONS_OPEN: Gauge "plantwatch_http_connections_open"
            "HTTPS connections open now.";
        HTTP_CONNECTIONS_REFUSED: Counter "plantwatch_http_connections_refused_total"
            "Connections closed at once because max_connections were open.";
        STORE_SERIES: Gauge "plantwatch_store_series"
            "Series in the metric store.";
        STORE_WRITE_QUEUE: Gauge "plantwatch_store_write_queue"
            "Requests waiting for the metric store's writer.";
        STORE_SEALED_SAMPLES: Counter "plantwatch_store_sealed_samples_total"
            "Samples the compactor sealed into chunks.";
        STORE_COMPACTION_PASSES: Counter "plantwatch_store_compaction_passes_total"
            "Compaction passes.";
        STORE_COMPACTION_PASS_SECONDS: Gauge "plantwatch_store_compaction_pass_seconds"
            "Duration of the last compaction pass.";
        STORE_WRITE_SECONDS: Summary "plantwatch_store_write_seconds"
            "Time the metric store's writer took per commit (ingest and compaction together).";
        EVALUATOR_CYCLES: Counter "plantwatch_evaluator_cycles_total"
            "Alert evaluator cycles.";
        EVALUATOR_CYCLE_SECONDS: Gauge "plantwatch_evaluator_cycle_seconds"
            "Duration of the alert evaluator's last cycle.";
        REMOTE_QUEUE_SAMPLES: Gauge "plantwatch_remote_write_queue_samples"
            "Samples committed but not yet taken by the metrics engine.";
        REMOTE_QUEUE_OLDEST_AGE: Gauge "plantwatch_remote_write_queue_oldest_age_seconds"
            "Age of the oldest sample waiting for the metrics engine (0 when none).";
        REMOTE_SENT_SAMPLES: Counter "plantwatch_remote_write_sent_samples_total"
            "Samples the metrics engine accepted.";
        REMOTE_REJECTED_SAMPLES: Counter "plantwatch_remote_write_rejected_samples_total"
            "Samples the metrics engine refused as bad data (not retried).";
        REMOTE_FAILED_ATTEMPTS: Counter "plantwatch_remote_write_failed_attempts_total"
            "Remote-write requests that failed and were retried.";
        REMOTE_REQUESTS: Counter "plantwatch_remote_write_requests_total"
            "Remote-write requests the metrics engine accepted.";
        REMOTE_REQUEST_SECONDS: Counter "plantwatch_remote_write_request_seconds_total"
            "Time spent in remote-write requests the metrics engine accepted.";
        CONFIG_REGENERATIONS: Counter "plantwatch_config_regenerations_total"
            "Collector configurations generated since the server started.";
        COLLECTOR_LAST_SEEN_AGE: Gauge "plantwatch_collector_last_seen_age_seconds"
            "Seconds since each collector was last heard from.";
        COLLECTOR_OUTBOX_LAG: Gauge "plantwatch_collector_outbox_lag_seconds"
            "Age of the oldest batch waiting in each collector's outbox, as it last reported.";
        COLLECTOR_OUTBOX_BATCHES: Gauge "plantwatch_collector_outbox_batches"
            "Batches waiting in each collector's outbox, as it last reported.";
        HA_TERM: Gauge "plantwatch_ha_term"
            "One of an active/standby pair: the term this server is active in.";
        HA_ACTING: Gauge "plantwatch_ha_acting"
            "One of a pair: 1 while this server holds a fresh lease and acts, else 0.";
        HA_REPLICATION_LAG: Gauge "plantwatch_ha_replication_lag_seconds"
            "One of a pair: how far the standby's copy is behind, as the standby last wrote it.";
        DB_POOL_CONNECTIONS: Gauge "plantwatch_db_pool_connections"
            "Connections of each SQLite pool, by state.";
        HTTP_REQUESTS: Counter "plantwatch_http_requests_total"
            "HTTP requests by route, method and status.";
        HTTP_REQUEST_DURATION: Histogram "plantwatch_http_request_duration_seconds"
            "HTTP request durations by route and method.";
    }
}

/// A count that only goes up. Derefs to its atomic for the code that moves it.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

/// A level that goes up and down (an integer). Derefs to its atomic.
#[derive(Debug, Default)]
pub struct Gauge(AtomicU64);

macro_rules! atomic_figure {
    ($($ty:ident),*) => {
        $(impl $ty {
            pub const fn new() -> Self {
                $ty(AtomicU64::new(0))
            }

            pub fn get(&self) -> u64 {
                self.0.load(Ordering::Relaxed)
            }
        }

        impl std::ops::Deref for $ty {
            type Target = AtomicU64;

            fn deref(&self) -> &AtomicU64 {
                &self.0
            }
        })*
    };
}
atomic_figure!(Counter, Gauge);

/// Something that reports figures.
pub trait Report {
    fn report(&self, out: &mut Exposition);
}

/// `GET /metrics` being written.
#[derive(Debug, Default)]
pub struct Exposition {
    text: String,
    /// Families whose `HELP`/`TYPE` are written.
    declared: HashSet<&'static str>,
}

impl Exposition {
    /// Declares `figure` (once), even when it has no sample yet.
    pub fn declare(&mut self, figure: &Figure) {
        if self.declared.insert(figure.name) {
            let _ = writeln!(self.text, "# HELP {} {}", figure.name, figure.help);
            let _ = writeln!(self.text, "# TYPE {} {}", figure.name, figure.kind.as_str());
        }
    }

    /// The value of an unlabelled figure.
    pub fn value(&mut self, figure: &Figure, value: f64) {
        self.labelled(figure, &[], value);
    }

    /// One labelled sample of `figure`.
    pub fn labelled(&mut self, figure: &Figure, labels: &[(&str, &str)], value: f64) {
        self.part(figure, "", labels, value);
    }

    /// A part of a summary or histogram: `suffix` is `_sum`, `_count` or `_bucket`.
    pub fn part(&mut self, figure: &Figure, suffix: &str, labels: &[(&str, &str)], value: f64) {
        self.declare(figure);
        self.text.push_str(figure.name);
        self.text.push_str(suffix);
        if !labels.is_empty() {
            self.text.push('{');
            for (index, (key, value)) in labels.iter().enumerate() {
                if index > 0 {
                    self.text.push(',');
                }
                let _ = write!(self.text, "{key}=\"{}\"", label(value));
            }
            self.text.push('}');
        }
        let _ = writeln!(self.text, " {value}");
    }

    pub fn into_text(self) -> String {
        self.text
    }
}

/// The value of an unlabelled figure in an exposition's text (tests and benchmarks read what
/// `GET /metrics` shows).
pub fn read(text: &str, figure: &Figure) -> Option<f64> {
    text.lines().find_map(|line| {
        line.strip_prefix(figure.name)?
            .strip_prefix(' ')?
            .parse()
            .ok()
    })
}

/// Escapes a label value (`\`, `"` and newlines).
pub fn label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_are_named_once_and_as_prometheus_expects() {
        let mut names = HashSet::new();
        for figure in figures::ALL {
            assert!(names.insert(figure.name), "{} declared twice", figure.name);
            assert!(figure.name.starts_with("plantwatch_"), "{}", figure.name);
            assert!(
                figure
                    .name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'),
                "{}",
                figure.name
            );
            assert_eq!(
                figure.kind == Kind::Counter,
                figure.name.ends_with("_total"),
                "{}: counters, and only they, end in _total",
                figure.name
            );
            assert!(figure.help.ends_with('.'), "{}", figure.name);
        }
    }

    #[test]
    fn a_family_is_declared_once_whoever_reports_into_it() {
        let mut out = Exposition::default();
        out.labelled(&figures::DB_POOL_CONNECTIONS, &[("db", "a")], 1.0);
        out.labelled(&figures::DB_POOL_CONNECTIONS, &[("db", "b\"")], 2.0);
        out.value(&figures::INGEST_SAMPLES, 3.0);
        let text = out.into_text();
        assert_eq!(
            text.matches("# TYPE plantwatch_db_pool_connections gauge")
                .count(),
            1
        );
        assert!(
            text.contains("plantwatch_db_pool_connections{db=\"b\\\"\"} 2\n"),
            "{text}"
        );
        assert!(text.contains(
            "# TYPE plantwatch_ingest_samples_total counter\nplantwatch_ingest_samples_total 3\n"
        ));
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
