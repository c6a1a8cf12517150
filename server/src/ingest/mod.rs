//! Metric ingest: a line-protocol body from a collector, an agent or Telegraf becomes samples
//! for the metric store, each forced onto a node the sender may report for (DESIGN §2).
//! Everything here is pure; the route lives in `api/ingest.rs`.

use std::collections::HashSet;
use std::io::Read as _;
use std::sync::Arc;

use plantwatch_shared::api::{
    CollectedEvent, LineError, MAX_NEIGHBOUR_ROWS, NeighbourReport, canonical_tags,
};
use plantwatch_shared::lineproto::{self, Precision};
use plantwatch_shared::metric_names::{EVENT, NEIGHBOURS};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::metrics_store::chunks::MAX_TS_MS;
use crate::metrics_store::{Sample, SeriesKey};

/// Largest request body as sent (compressed or not).
pub const MAX_BODY_BYTES: usize = 16 * 1024 * 1024;
/// Largest body once decompressed.
pub const MAX_DECOMPRESSED_BYTES: usize = 64 * 1024 * 1024;
/// Most lines in one request.
pub const MAX_LINES: usize = 500_000;
/// Refused lines named in an answer.
pub const MAX_ERRORS_REPORTED: usize = 20;
/// Tags on one line, beyond which it is refused (a series explosion guard).
pub const MAX_TAGS: usize = 32;

/// The nodes a sender may write for.
#[derive(Debug, Clone)]
pub enum Scope {
    /// An agent: its own node; lines without `node_id` are its node's. It never writes what a
    /// collector measures of that node: `ping`, `snmp` and `check` ([`COLLECTOR_MEASUREMENTS`]), and the
    /// metrics of the node's SNMP template (`collector_metrics`, `measurement.field`).
    Agent {
        node_id: i64,
        collector_metrics: HashSet<String>,
    },
    /// A collector: the nodes assigned to it; every line names its node.
    Collector { targets: HashSet<i64> },
}

pub use plantwatch_shared::metric_names::COLLECTOR_MEASUREMENTS;

/// What a body turned into.
#[derive(Debug, Default)]
pub struct Prepared {
    pub samples: Vec<Sample>,
    pub lines: usize,
    pub accepted: usize,
    pub rejected: usize,
    /// The first refused lines.
    pub errors: Vec<LineError>,
    /// Events (a collector's `event` lines), to be stored apart from the samples.
    pub events: Vec<CollectedEvent>,
    /// Neighbour tables (a collector's `neighbours` lines), likewise.
    pub neighbours: Vec<NeighbourReport>,
}

impl Prepared {
    fn refuse(&mut self, line: usize, message: String) {
        self.rejected += 1;
        if self.errors.len() < MAX_ERRORS_REPORTED {
            self.errors.push(LineError { line, message });
        }
    }
}

/// Why a whole body was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BodyError {
    #[error("the body is not valid gzip: {0}")]
    Gzip(String),
    #[error("the body is larger than {MAX_DECOMPRESSED_BYTES} bytes once decompressed")]
    TooLarge,
    #[error("the body is not UTF-8 text")]
    NotUtf8,
    #[error("the body has more than {MAX_LINES} lines")]
    TooManyLines,
    #[error("the server is decompressing too much at once; retry shortly")]
    Busy,
}

/// Decompressed bytes all requests together may hold at once: 32 concurrent 64 MiB bombs
/// cost at most this (the others answer 503), whatever the concurrency.
pub const MAX_DECOMPRESSED_IN_FLIGHT: usize = 256 * 1024 * 1024;
/// The budget's unit: one permit per MiB decompressed.
const BUDGET_UNIT: usize = 1024 * 1024;

/// The process-wide budget of decompressed bytes in flight.
pub fn decompress_budget() -> &'static Arc<Semaphore> {
    static BUDGET: std::sync::LazyLock<Arc<Semaphore>> = std::sync::LazyLock::new(|| {
        Arc::new(Semaphore::new(MAX_DECOMPRESSED_IN_FLIGHT / BUDGET_UNIT))
    });
    &BUDGET
}

/// Decompresses a gzip body, bounded, every member of it (`gzip(a) + gzip(b)` is `a + b`:
/// nothing acknowledged is dropped).
pub fn gunzip(body: &[u8]) -> Result<Vec<u8>, BodyError> {
    let budget = Arc::new(Semaphore::new(MAX_DECOMPRESSED_BYTES / BUDGET_UNIT + 1));
    gunzip_within(body, &budget).map(|(out, _)| out)
}

/// [`gunzip`] drawing on `budget` (one permit per MiB, taken as the output grows and held
/// while the returned permit lives); when the budget is spent the body is refused as
/// [`BodyError::Busy`] rather than waited for, so no two requests can wait on each other.
pub fn gunzip_within(
    body: &[u8],
    budget: &Arc<Semaphore>,
) -> Result<(Vec<u8>, OwnedSemaphorePermit), BodyError> {
    let mut permit = budget
        .clone()
        .try_acquire_owned()
        .map_err(|_| BodyError::Busy)?;
    let mut held = BUDGET_UNIT;
    let mut out = Vec::with_capacity((body.len() * 4).min(BUDGET_UNIT));
    let mut decoder =
        flate2::read::MultiGzDecoder::new(body).take(MAX_DECOMPRESSED_BYTES as u64 + 1);
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        let read = decoder
            .read(&mut chunk)
            .map_err(|e| BodyError::Gzip(e.to_string()))?;
        if read == 0 {
            break;
        }
        if out.len() + read > MAX_DECOMPRESSED_BYTES {
            return Err(BodyError::TooLarge);
        }
        while out.len() + read > held {
            let more = budget
                .clone()
                .try_acquire_owned()
                .map_err(|_| BodyError::Busy)?;
            permit.merge(more);
            held += BUDGET_UNIT;
        }
        out.extend_from_slice(&chunk[..read]);
    }
    Ok((out, permit))
}

/// What part of a line holds a character no terminal should be handed (NUL, escapes, TAB,
/// bidi overrides), if any: such names would be stored and shown as something they are not.
fn unsafe_text(line: &lineproto::Line<'_>) -> Option<&'static str> {
    let bad = |text: &str| text.chars().any(plantwatch_shared::rules::is_unsafe_char);
    if bad(&line.measurement) {
        Some("the measurement")
    } else if line.fields.iter().any(|(k, _)| bad(k)) {
        Some("a field name")
    } else if line.tags.iter().any(|(k, _)| bad(k)) {
        Some("a tag key")
    } else if line.tags.iter().any(|(_, v)| bad(v)) {
        Some("a tag value")
    } else {
        None
    }
}

/// The metric names (`measurement.field`) of one body, made once each.
#[derive(Default)]
struct MetricNames {
    /// measurement → its fields and their names.
    by_measurement: rustc_hash::FxHashMap<String, Vec<(String, Arc<str>)>>,
}

impl MetricNames {
    fn metric(&mut self, measurement: &str, field: &str) -> Arc<str> {
        let name = || -> Arc<str> { format!("{measurement}.{field}").into() };
        if let Some(fields) = self.by_measurement.get_mut(measurement) {
            if let Some((_, known)) = fields.iter().find(|(f, _)| f == field) {
                return known.clone();
            }
            let made = name();
            fields.push((field.to_owned(), made.clone()));
            return made;
        }
        let made = name();
        self.by_measurement.insert(
            measurement.to_owned(),
            vec![(field.to_owned(), made.clone())],
        );
        made
    }
}

/// Parses `body` into samples the sender may write; `now_ms` stamps lines without a time.
pub fn prepare(
    body: &[u8],
    precision: Precision,
    scope: &Scope,
    now_ms: i64,
) -> Result<Prepared, BodyError> {
    let text = std::str::from_utf8(body).map_err(|_| BodyError::NotUtf8)?;
    let mut out = Prepared::default();
    let mut names = MetricNames::default();
    for (number, line) in lineproto::lines(text) {
        out.lines += 1;
        if out.lines > MAX_LINES {
            return Err(BodyError::TooManyLines);
        }
        let parsed = match lineproto::parse_line(line) {
            Ok(parsed) => parsed,
            Err(error) => {
                out.refuse(number, error.to_string());
                continue;
            }
        };
        if parsed.tags.len() > MAX_TAGS {
            out.refuse(number, format!("more than {MAX_TAGS} tags"));
            continue;
        }
        if let Some(what) = unsafe_text(&parsed) {
            out.refuse(
                number,
                format!("{what} holds a control character or bidirectional override"),
            );
            continue;
        }
        if parsed.measurement == EVENT {
            match event_of(&parsed, scope) {
                Ok(event) => {
                    out.events.push(event);
                    out.accepted += 1;
                }
                Err(problem) => out.refuse(number, problem),
            }
            continue;
        }
        let node_id = match (scope, parsed.tag("node_id")) {
            (_, Some(text)) => match text.parse::<i64>() {
                Ok(id) => id,
                Err(_) => {
                    out.refuse(number, format!("node_id {text:?} is not a number"));
                    continue;
                }
            },
            (Scope::Agent { node_id, .. }, None) => *node_id,
            (Scope::Collector { .. }, None) => {
                out.refuse(number, "the line has no node_id tag".into());
                continue;
            }
        };
        let allowed = match scope {
            Scope::Agent { node_id: own, .. } => node_id == *own,
            Scope::Collector { targets } => targets.contains(&node_id),
        };
        if !allowed {
            let whose = match scope {
                Scope::Agent { .. } => "this agent's node",
                Scope::Collector { .. } => "a target of this collector",
            };
            out.refuse(number, format!("node {node_id} is not {whose}"));
            continue;
        }
        if let Scope::Agent {
            collector_metrics, ..
        } = scope
        {
            let measurement = parsed.measurement.as_ref();
            let owned = COLLECTOR_MEASUREMENTS.contains(&measurement)
                || parsed.fields.iter().any(|(field, _)| {
                    collector_metrics.contains(&format!("{measurement}.{field}"))
                });
            if owned {
                out.refuse(
                    number,
                    format!(
                        "{measurement} of this node is measured by its collector; an agent may \
                         not write it"
                    ),
                );
                continue;
            }
        }
        if parsed.measurement == NEIGHBOURS {
            match neighbours_of(&parsed, node_id, scope) {
                Ok(report) => {
                    out.neighbours.push(report);
                    out.accepted += 1;
                }
                Err(problem) => out.refuse(number, problem),
            }
            continue;
        }
        let ts_ms = match parsed.timestamp {
            None => now_ms,
            Some(ts) => match precision.to_millis(ts) {
                Some(ms) => ms,
                None => {
                    out.refuse(number, "timestamp out of range".into());
                    continue;
                }
            },
        };
        if !(0..MAX_TS_MS).contains(&ts_ms) {
            out.refuse(number, "timestamp before 1970 or after 9999".into());
            continue;
        }
        let tags: Arc<str> = canonical_tags(
            parsed
                .tags
                .iter()
                .filter(|(k, _)| k != "node_id")
                .map(|(k, v)| (k.as_ref(), v.as_ref())),
        )
        .into();
        let mut stored = 0;
        for (field, value) in &parsed.fields {
            let Some(value) = value.as_f64() else {
                continue; // Strings are descriptions, not samples.
            };
            // A key per sample (interning whole keys cost two hashes a sample, and a replayed
            // outbox's body rarely names a series twice; the writer keeps one per series), but
            // the line's tags and the body's metric names are shared, not copied.
            let key = Arc::new(SeriesKey {
                node_id,
                metric: names.metric(&parsed.measurement, field),
                tags: tags.clone(),
            });
            out.samples.push(Sample { key, ts_ms, value });
            stored += 1;
        }
        if stored == 0 {
            out.refuse(number, "the line has no numeric field".into());
            continue;
        }
        out.accepted += 1;
    }
    Ok(out)
}

/// The neighbour table a `neighbours` line carries (JSON in the field `doc`), of node
/// `node_id`; only a collector sends them.
fn neighbours_of(
    line: &lineproto::Line<'_>,
    node_id: i64,
    scope: &Scope,
) -> Result<NeighbourReport, String> {
    if !matches!(scope, Scope::Collector { .. }) {
        return Err("only a collector sends neighbour tables".into());
    }
    let doc = doc_field(line)
        .ok_or("a neighbours line carries its table as JSON in the string field doc")?;
    let report: NeighbourReport =
        serde_json::from_str(doc).map_err(|e| format!("the neighbour table is not valid: {e}"))?;
    if report.node_id != node_id {
        return Err("the neighbour table names another node than its line".into());
    }
    if report.rows.len() > MAX_NEIGHBOUR_ROWS {
        return Err(format!("more than {MAX_NEIGHBOUR_ROWS} neighbour rows"));
    }
    Ok(report)
}

/// The string field `doc` of a line.
fn doc_field<'l>(line: &'l lineproto::Line<'_>) -> Option<&'l str> {
    line.fields
        .iter()
        .find(|(field, _)| field == "doc")
        .and_then(|(_, value)| match value {
            lineproto::FieldValue::Str(text) => Some(text.as_ref()),
            _ => None,
        })
}

/// The event an `event` line carries (JSON in the field `doc`); only a collector sends them.
fn event_of(line: &lineproto::Line<'_>, scope: &Scope) -> Result<CollectedEvent, String> {
    if !matches!(scope, Scope::Collector { .. }) {
        return Err("only a collector sends events".into());
    }
    let doc =
        doc_field(line).ok_or("an event line carries its event as JSON in the string field doc")?;
    let event: CollectedEvent =
        serde_json::from_str(doc).map_err(|e| format!("the event is not valid: {e}"))?;
    if event.uid.is_empty() || event.uid.len() > 128 {
        return Err("the event's uid must be 1 to 128 characters".into());
    }
    if event.source.parse::<std::net::IpAddr>().is_err() {
        return Err(format!(
            "the event's source {:?} is not an address",
            event.source
        ));
    }
    Ok(event)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agent(node_id: i64, collector_metrics: &[&str]) -> Scope {
        Scope::Agent {
            node_id,
            collector_metrics: collector_metrics.iter().map(|m| m.to_string()).collect(),
        }
    }

    #[test]
    fn events_come_from_collectors_as_json_and_are_kept_apart_from_samples() {
        let doc = r#"{"uid":"r-1","kind":"syslog","source":"10.0.0.5","severity":"error","message":"m","received_at":"2026-12-04T10:00:00Z"}"#;
        let mut writer = plantwatch_shared::lineproto::Writer::new();
        writer
            .line(EVENT, &[("kind", "syslog")])
            .string("doc", doc)
            .finish(0);
        writer.line(EVENT, &[]).string("doc", "{not json").finish(0);
        writer.line(EVENT, &[]).float("doc", 1.0).finish(0);
        let body = writer.take();
        let collector = Scope::Collector {
            targets: HashSet::new(),
        };
        let out = prepare(body.as_bytes(), Precision::Milliseconds, &collector, 0).unwrap();
        assert_eq!((out.accepted, out.rejected), (1, 2), "{:?}", out.errors);
        assert_eq!(out.events[0].uid, "r-1");
        assert!(out.samples.is_empty());
        let from_agent =
            prepare(body.as_bytes(), Precision::Milliseconds, &agent(3, &[]), 0).unwrap();
        assert_eq!(from_agent.accepted, 0);
        assert!(from_agent.errors[0].message.contains("only a collector"));
    }

    #[test]
    fn an_agent_never_writes_what_the_collector_measures_of_its_node() {
        let body = b"ping up=1\nsnmp up=1\nmemory used_pct=40\ninterface,ifName=lo oper_status=1\n\
                     memory total_bytes=1000,used_pct=40\n";
        let out = prepare(
            body,
            Precision::Nanoseconds,
            &agent(3, &["interface.oper_status", "memory.total_bytes"]),
            0,
        )
        .unwrap();
        assert_eq!((out.accepted, out.rejected), (1, 4), "{:?}", out.errors);
        let lines: Vec<_> = out.errors.iter().map(|e| e.line).collect();
        assert_eq!(lines, [1, 2, 4, 5]);
        assert!(out.errors[0].message.contains("measured by its collector"));
        assert_eq!(out.samples[0].key.metric.as_ref(), "memory.used_pct");
    }

    fn collector(targets: &[i64]) -> Scope {
        Scope::Collector {
            targets: targets.iter().copied().collect(),
        }
    }

    #[test]
    fn collector_lines_are_kept_to_its_targets() {
        let body = b"ping,node_id=1 rtt_avg_ms=1.5,up=true 1000000000\n\
                     ping,node_id=2 rtt_avg_ms=2\n\
                     ping rtt_avg_ms=3\n\
                     ping,node_id=x rtt_avg_ms=3\n";
        let out = prepare(body, Precision::Nanoseconds, &collector(&[1]), 42).unwrap();
        assert_eq!((out.lines, out.accepted, out.rejected), (4, 1, 3));
        assert_eq!(out.samples.len(), 2);
        assert_eq!(out.samples[0].key.metric.as_ref(), "ping.rtt_avg_ms");
        assert_eq!(out.samples[0].ts_ms, 1_000);
        assert_eq!(out.samples[1].value, 1.0);
        let lines: Vec<_> = out.errors.iter().map(|e| e.line).collect();
        assert_eq!(lines, vec![2, 3, 4]);
        assert!(out.errors[0].message.contains("not a target"));
    }

    #[test]
    fn agent_lines_default_to_its_node_and_refuse_others() {
        let body =
            b"cpu usage_pct=5 7\ncpu,node_id=9 usage_pct=5\nmem,host=a used_pct=1,note=\"x\"\n";
        let out = prepare(body, Precision::Seconds, &agent(3, &[]), 0).unwrap();
        assert_eq!((out.accepted, out.rejected), (2, 1));
        assert!(out.samples.iter().all(|s| s.key.node_id == 3));
        assert_eq!(out.samples[0].ts_ms, 7_000);
        assert_eq!(out.samples[1].key.tags.as_ref(), "host=a");
        assert!(out.errors[0].message.contains("not this agent's node"));
    }

    #[test]
    fn whole_body_problems_are_refused() {
        let scope = agent(1, &[]);
        assert_eq!(
            prepare(&[0xff, 0xfe], Precision::Nanoseconds, &scope, 0).unwrap_err(),
            BodyError::NotUtf8
        );
        assert!(matches!(gunzip(b"not gzip"), Err(BodyError::Gzip(_))));
        let lines = "cpu v=1\n".repeat(MAX_LINES + 1);
        assert_eq!(
            prepare(lines.as_bytes(), Precision::Nanoseconds, &scope, 0).unwrap_err(),
            BodyError::TooManyLines
        );
    }

    #[test]
    fn control_characters_and_bidi_overrides_are_refused_per_line() {
        let body = [
            "cpu,node_id=1 v=1",
            "cp\u{1}u,node_id=1 v=1",
            "cpu,node_id=1,port=a\u{202E}b v=1",
            "cpu,node_id=1 v\u{0}x=1",
            "cpu,node_id=1,k\u{2067}=x v=1",
            "cpu,node_id=1,port=a\u{9}b v=1",
            "cpu,node_id=1,port=Gi0/1 v=2",
        ]
        .join("\n");
        let out = prepare(body.as_bytes(), Precision::Nanoseconds, &collector(&[1]), 0).unwrap();
        assert_eq!((out.accepted, out.rejected), (2, 5), "{:?}", out.errors);
        let lines: Vec<_> = out.errors.iter().map(|e| e.line).collect();
        assert_eq!(lines, [2, 3, 4, 5, 6]);
        assert!(out.errors[1].message.starts_with("a tag value"));
    }

    fn gzip(text: &[u8]) -> Vec<u8> {
        use std::io::Write as _;
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder.write_all(text).unwrap();
        encoder.finish().unwrap()
    }

    #[test]
    fn every_gzip_member_is_decoded() {
        let mut body = gzip(b"cpu,node_id=1 v=1\n");
        body.extend(gzip(b"cpu,node_id=1 v=2\n"));
        assert_eq!(
            gunzip(&body).unwrap(),
            b"cpu,node_id=1 v=1\ncpu,node_id=1 v=2\n"
        );
    }

    #[test]
    fn decompressed_bytes_in_flight_are_bounded_across_requests() {
        // A budget of 3 MiB: a 2.5 MiB body fits, a second one while it is held does not.
        let budget = Arc::new(Semaphore::new(3));
        let big = gzip(&vec![b'x'; 2_500_000]);
        let (first, held) = gunzip_within(&big, &budget).unwrap();
        assert_eq!(first.len(), 2_500_000);
        assert_eq!(budget.available_permits(), 0);
        assert_eq!(gunzip_within(&big, &budget).unwrap_err(), BodyError::Busy);
        // A refused body gives back what it took.
        assert_eq!(budget.available_permits(), 0);
        drop(held);
        assert_eq!(budget.available_permits(), 3);
        assert!(gunzip_within(&big, &budget).is_ok());
        assert_eq!(budget.available_permits(), 3);
    }
}
