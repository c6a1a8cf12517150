//! Storage benchmark (`cargo bench -p plantwatch-server --bench storage`), in one run on one
//! data set:
//!
//! 1. **bytes per sample** of a plant generated from the built-in SNMP templates (10,000
//!    series, 30 days every 10 s: 2.59 billion samples, plus a year of rollups for one switch),
//!    sealed with the compactor's own encoders, as `metrics stats` reports it;
//! 2. **chart queries** for that switch as the console asks them (every series of the node,
//!    about 120 points, average): 1 h, 24 h, 7 days, 1 year;
//! 3. **ingest** samples/s through the store's writer, with the background compactor running
//!    and without it, against a bare rusqlite insert of the same rows;
//! 4. **compaction**: samples sealed per second and the CPU it takes, for a 3-hour backlog and
//!    for the steady 5-minute slice.
//!
//! `PLANTWATCH_BENCH_DAYS` shortens the 30 days for a quick run; `PLANTWATCH_BENCH_DB=FILE`
//! keeps the data set (and reuses it next time); `PLANTWATCH_BENCH_PARTS=storage` stops after
//! the queries.
#![allow(clippy::unwrap_used, clippy::expect_used)] // A benchmark fails loudly by design.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use plantwatch_server::metrics_store::chunks::{
    HOUR_MS, Resolution, chunk_id, roll_up, series_points,
};
use plantwatch_server::metrics_store::codec::{encode_raw, encode_rollups};
use plantwatch_server::metrics_store::compactor::{GRACE_MS, SLICE_MS};
use plantwatch_server::metrics_store::{
    Batch, Kind, MetricsStore, Sample, SeriesKey, StoreOptions, query, stats,
};
use plantwatch_server::templates::{self, Loaded};
use plantwatch_shared::api::Aggregation;
use rand::rngs::StdRng;
use rand::{Rng as _, SeedableRng as _};
use rusqlite::{Connection, params};

const SERIES: usize = 10_000;
const INTERVAL_MS: i64 = 10_000;
const DAY_MS: i64 = 24 * HOUR_MS;

// ---- the plant ----

/// How one series' values move.
#[derive(Debug, Clone, Copy)]
enum Model {
    /// Status codes, speeds: never change.
    Constant(f64),
    /// An integer level wandering between bounds, changing at a given rate per poll.
    Walk { lo: f64, hi: f64, step: f64, p: f64 },
    /// sysUpTime in seconds (timeticks × 0.01).
    Uptime,
    /// Interface octets: down (never counts), idle (a few frames), or carrying traffic.
    Octets { bytes_per_s: f64 },
    /// Packets of the same interface.
    Packets { per_s: f64 },
    /// Errors and discards: a rare step.
    Rare,
    /// Round-trip time in ms, nanosecond resolution as the ICMP source measures it.
    Rtt,
}

struct SeriesModel {
    node: usize,
    metric: String,
    tags: String,
    kind: Kind,
    model: Model,
}

/// Templates and interface counts of a plant's nodes, most common first.
const MIX: &[(&str, usize)] = &[
    ("cisco-ios", 24),
    ("hpe-procurve", 24),
    ("apc-ups", 1),
    ("linux", 2),
    ("geist-sensor", 1),
    ("ups-mib", 1),
    ("windows", 2),
    ("apc-pdu", 1),
    ("paloalto-panos", 8),
    ("cisco-ios", 48),
];

fn builtin_templates() -> BTreeMap<String, Loaded> {
    let mut raw = BTreeMap::new();
    for (source, text) in templates::BUILT_IN {
        let def = templates::parse(source, text).unwrap();
        raw.insert(
            def.name.clone(),
            Loaded {
                def,
                source: (*source).to_owned(),
            },
        );
    }
    templates::resolve(&raw).0
}

fn model_of(field: &str, kind: Kind, rng: &mut StdRng, port_state: u8) -> Model {
    let walk = |lo: f64, hi: f64, step: f64, p: f64| Model::Walk { lo, hi, step, p };
    if kind == Kind::Counter {
        return if field.contains("octets") {
            Model::Octets {
                bytes_per_s: match port_state {
                    0 => 0.0,
                    1 => rng.random_range(20.0..200.0),
                    _ => 10f64.powf(rng.random_range(4.0..6.5)),
                },
            }
        } else if field.contains("packets") {
            Model::Packets {
                per_s: match port_state {
                    0 => 0.0,
                    1 => rng.random_range(0.2..2.0),
                    _ => 10f64.powf(rng.random_range(1.5..3.5)),
                },
            }
        } else {
            Model::Rare
        };
    }
    match field {
        f if f.contains("status") || f.starts_with("on_") => {
            Model::Constant(if port_state == 0 { 2.0 } else { 1.0 })
        }
        f if f.contains("speed") => Model::Constant(1_000.0),
        "uptime_s" => Model::Uptime,
        f if f.starts_with("rtt") => Model::Rtt,
        f if f.contains("bytes") => walk(1e8, 4e9, 4_096.0, 0.5),
        f if f.contains("celsius") || f.contains("temperature") => walk(18.0, 45.0, 1.0, 0.02),
        f if f.contains("voltage") => walk(225.0, 235.0, 1.0, 0.05),
        f if f.contains("pct") => walk(0.0, 100.0, 1.0, 0.3),
        f if f == "up" || f.starts_with("loss") => {
            Model::Constant(if f == "up" { 1.0 } else { 0.0 })
        }
        _ => walk(0.0, 1_000.0, 1.0, 0.1),
    }
}

/// Nodes from [`MIX`] until there are `target` series; the index of the first 24-port switch
/// (the node whose charts are measured).
fn plant(target: usize) -> (Vec<SeriesModel>, usize) {
    let templates = builtin_templates();
    let mut rng = StdRng::seed_from_u64(7);
    let mut out = Vec::new();
    let mut node = 0;
    while out.len() < target {
        let (name, ports) = MIX[node % MIX.len()];
        let def = &templates[name].def;
        let mut add = |metric: String, tags: String, field: &str, kind: Kind, state: u8| {
            let model = model_of(field, kind, &mut rng, state);
            out.push(SeriesModel {
                node,
                metric,
                tags,
                kind,
                model,
            });
        };
        for group in &def.scalars {
            for field in &group.fields {
                let kind = Kind::of_field(&field.name);
                add(
                    format!("{}.{}", group.measurement, field.name),
                    String::new(),
                    &field.name,
                    kind,
                    2,
                );
            }
        }
        for table in &def.tables {
            let rows = if table.measurement == "interface" {
                ports
            } else {
                2
            };
            for row in 0..rows {
                // Plant switches: 40 % of ports down, 30 % idle, 30 % carrying traffic.
                let state = match row * 10 / rows.max(1) {
                    0..=3 => 0,
                    4..=6 => 1,
                    _ => 2,
                };
                for field in &table.fields {
                    let kind = Kind::of_field(&field.name);
                    add(
                        format!("{}.{}", table.measurement, field.name),
                        format!("index={row}"),
                        &field.name,
                        kind,
                        state,
                    );
                }
            }
        }
        for field in ["up", "loss_pct", "rtt_min_ms", "rtt_avg_ms", "rtt_max_ms"] {
            add(
                format!("ping.{field}"),
                String::new(),
                field,
                Kind::Gauge,
                2,
            );
        }
        node += 1;
    }
    out.truncate(target);
    (out, 0)
}

fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// Poll time `k` of a node: every 10 s, a few ms late as a timer wakes up.
fn poll_ts(start: i64, node: usize, k: i64) -> i64 {
    start + k * INTERVAL_MS + (splitmix(((node as u64) << 40) ^ k as u64) % 4) as i64
}

/// A series' values, poll after poll.
struct Values {
    rng: StdRng,
    model: Model,
    level: f64,
}

impl Values {
    fn new(index: usize, model: Model) -> Values {
        let mut rng = StdRng::seed_from_u64(index as u64 ^ 0xA5A5);
        let level = match model {
            Model::Walk { lo, hi, .. } => rng.random_range(lo..hi).round(),
            Model::Uptime => rng.random_range(1e5..1e7_f64).round() / 100.0,
            Model::Octets { .. } | Model::Packets { .. } | Model::Rare => {
                rng.random_range(0.0..1e9_f64).round()
            }
            _ => 0.0,
        };
        Values { rng, model, level }
    }

    fn next(&mut self, ts: i64) -> f64 {
        let day = (ts % DAY_MS) as f64 / DAY_MS as f64;
        let diurnal = 1.0 + 0.5 * (day * std::f64::consts::TAU).sin();
        let rng = &mut self.rng;
        match self.model {
            Model::Constant(v) => v,
            Model::Walk { lo, hi, step, p } => {
                if rng.random_bool(p) {
                    let delta = if rng.random_bool(0.5) { step } else { -step };
                    self.level = (self.level + delta * rng.random_range(1..4) as f64).clamp(lo, hi);
                }
                self.level
            }
            Model::Uptime => {
                // 1000 or 1001 timeticks a poll.
                self.level = ((self.level * 100.0).round()
                    + 1_000.0
                    + f64::from(rng.random_bool(0.3) as u8))
                    / 100.0;
                self.level
            }
            Model::Octets { bytes_per_s } | Model::Packets { per_s: bytes_per_s } => {
                if bytes_per_s > 0.0 {
                    let noise = rng.random_range(0.8..1.2);
                    self.level += (bytes_per_s * 10.0 * diurnal * noise).round();
                }
                self.level
            }
            Model::Rare => {
                if rng.random_bool(0.000_5) {
                    self.level += rng.random_range(1..20) as f64;
                }
                self.level
            }
            Model::Rtt => rng.random_range(150_000..2_500_000) as f64 / 1e6,
        }
    }
}

/// The store's key of each series of the plant.
fn series_keys(plant: &[SeriesModel]) -> Vec<Arc<SeriesKey>> {
    plant
        .iter()
        .map(|s| {
            Arc::new(SeriesKey {
                node_id: s.node as i64 + 1,
                metric: s.metric.as_str().into(),
                tags: s.tags.as_str().into(),
            })
        })
        .collect()
}

/// Each series' values from its first poll.
fn first_values(plant: &[SeriesModel]) -> Vec<Values> {
    plant
        .iter()
        .enumerate()
        .map(|(i, s)| Values::new(i, s.model))
        .collect()
}

// ---- 1: the data set, sealed ----

struct Built {
    samples: u64,
    seconds: f64,
}

/// Writes `days` of every series (and `year_days` of the chart node's) into a new store at
/// `path`: raw chunks for the last `days` except the newest minutes (left in the head, as the
/// compactor leaves them), 5-minute and 1-hour rollups over everything.
fn build(path: &Path, plant: &[SeriesModel], chart_node: usize, now: i64, days: i64) -> Built {
    let store = MetricsStore::open_with(
        path,
        StoreOptions {
            background_compaction: false,
            ..StoreOptions::default()
        },
    )
    .unwrap();
    drop(store);
    let started = Instant::now();
    let mut conn = Connection::open(path).unwrap();
    conn.pragma_update(None, "synchronous", "OFF").unwrap();
    {
        let tx = conn.transaction().unwrap();
        for (index, series) in plant.iter().enumerate() {
            tx.execute(
                "INSERT INTO series (id, node_id, metric, tags, kind, created_at) VALUES (?1, ?2, ?3, ?4, ?5, 0)",
                params![index as i64 + 1, series.node as i64 + 1, series.metric, series.tags, series.kind.as_str()],
            )
            .unwrap();
        }
        tx.commit().unwrap();
    }
    let sealed_until = (now - GRACE_MS).div_euclid(SLICE_MS) * SLICE_MS;
    let raw_from = now - days * DAY_MS;
    type Rows = (Vec<(i64, i64, Vec<u8>)>, Vec<(i64, i64, f64)>);
    let (sender, receiver) = std::sync::mpsc::sync_channel::<Rows>(64);
    std::thread::scope(|scope| {
        for worker in 0..2usize {
            let sender = sender.clone();
            scope.spawn(move || {
                for (index, series) in plant.iter().enumerate().skip(worker).step_by(2) {
                    let id = index as i64 + 1;
                    let span = if series.node == chart_node {
                        365 * DAY_MS
                    } else {
                        days * DAY_MS
                    };
                    let start = Resolution::Hour.window_of(now - span);
                    let polls = (now - start) / INTERVAL_MS;
                    let mut values = Values::new(index, series.model);
                    let points: Vec<(i64, f64)> = (0..polls)
                        .map(|k| {
                            let ts = poll_ts(start, series.node, k);
                            (ts, values.next(ts))
                        })
                        .filter(|(ts, _)| *ts < now)
                        .collect();
                    let mut chunks = Vec::new();
                    let mut head = Vec::new();
                    let mut at = 0;
                    while at < points.len() {
                        let hour = Resolution::Raw.window_of(points[at].0);
                        let end = at + points[at..].partition_point(|(ts, _)| *ts < hour + HOUR_MS);
                        let slice = &points[at..end];
                        let sealed = slice.partition_point(|(ts, _)| *ts < sealed_until);
                        if hour + HOUR_MS > raw_from && sealed > 0 {
                            chunks.push((
                                chunk_id(id, Resolution::Raw, hour),
                                sealed as i64,
                                encode_raw(&slice[..sealed]),
                            ));
                        }
                        head.extend(slice[sealed..].iter().map(|(ts, v)| (id, *ts, *v)));
                        at = end;
                    }
                    let sealed_points: Vec<(i64, f64)> = points
                        .iter()
                        .copied()
                        .filter(|(ts, _)| *ts < sealed_until)
                        .collect();
                    let values = series_points(series.kind, None, &sealed_points);
                    for resolution in Resolution::ROLLUPS {
                        let mut at = 0;
                        while at < values.len() {
                            let window = resolution.window_of(values[at].0);
                            let end = at
                                + values[at..].partition_point(|(ts, _)| {
                                    *ts < window + resolution.window_ms()
                                });
                            let rolled = roll_up(&values[at..end], resolution.bucket_ms());
                            chunks.push((
                                chunk_id(id, resolution, window),
                                rolled.len() as i64,
                                encode_rollups(&rolled),
                            ));
                            at = end;
                        }
                    }
                    sender.send((chunks, head)).unwrap();
                }
            });
        }
        drop(sender);
        let mut tx = conn.transaction().unwrap();
        let mut rows_in_tx = 0;
        let mut seq = 1;
        for (chunks, mut head) in receiver {
            {
                let mut insert = tx
                    .prepare_cached("INSERT INTO chunks (id, points, data) VALUES (?1, ?2, ?3)")
                    .unwrap();
                for (id, points, data) in &chunks {
                    insert.execute(params![id, points, data]).unwrap();
                }
                plantwatch_server::metrics_store::head::log(&tx, seq, &mut head).unwrap();
                seq += head.len() as i64;
            }
            rows_in_tx += chunks.len() + head.len();
            if rows_in_tx > 200_000 {
                tx.commit().unwrap();
                tx = conn.transaction().unwrap();
                rows_in_tx = 0;
            }
        }
        tx.commit().unwrap();
    });
    conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")
        .unwrap();
    let polls_per_series = (days * DAY_MS / INTERVAL_MS) as u64;
    Built {
        samples: polls_per_series * plant.len() as u64,
        seconds: started.elapsed().as_secs_f64(),
    }
}

// ---- 2: chart queries ----

fn chart_queries(store: &MetricsStore, node_id: i64, series: usize, now: i64) {
    println!(
        "\nchart queries for node {node_id} ({series} series), as the console asks (every series, ~120 points, avg), warm cache:"
    );
    for (label, span) in [
        ("1 h", 3_600),
        ("24 h", 86_400),
        ("7 days", 7 * 86_400),
        ("1 year", 365 * 86_400),
    ] {
        let to = now / 1_000;
        let from = to - span;
        let query = query::RangeQuery::new(
            node_id,
            None,
            (from, to),
            Some((span / 120).max(10)),
            Aggregation::Avg,
            &store.retention,
            now,
        );
        let plan = (query.step, query.resolution);
        let mut times = Vec::new();
        let mut points = 0;
        for _ in 0..30 {
            let started = Instant::now();
            let answer = query::range_on(&store.reader, &store.head, &query).unwrap();
            times.push(started.elapsed());
            points = answer.iter().map(|s| s.points.len()).sum::<usize>();
            assert_eq!(answer.len(), series);
        }
        times.sort();
        println!(
            "  {label:>7}: step {:>6} s from {:<4} p50 {:>7.2} ms  p99 {:>7.2} ms  ({points} points)",
            plan.0,
            plan.1.name(),
            common::percentile_ms(&times, 0.5),
            common::percentile_ms(&times, 0.99),
        );
    }
}

/// Ingest into the data set while 1-year chart queries of its busiest node run back to back on
/// the reader pool, against ingest alone: how long each write waits to be committed.
fn writes_beside_queries(path: &Path, plant: &[SeriesModel], node_id: i64, now: i64) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let store = MetricsStore::open_with(path, StoreOptions::default()).unwrap();
    let keys = series_keys(plant);
    let mut values = first_values(plant);
    println!(
        "
writes beside long queries (one poll round of {} samples a write, one at a time):",
        plant.len()
    );
    let mut first = 0;
    // Queries: none, on one connection (one core), split over the cores (as the API runs them);
    // and, as the control, a thread that only spins (no SQLite at all).
    for (label, queries_on) in [
        ("alone:", None),
        ("beside a spinning thread (control):", Some(None)),
        ("beside 1-year charts on one core:", Some(Some(false))),
        ("beside 1-year charts on all cores:", Some(Some(true))),
    ] {
        let with_queries = queries_on.is_some();
        let batches = rounds(plant, &keys, &mut values, now, first, 60);
        first += 60;
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let queries = with_queries.then(|| {
            let (store, stop) = (store.clone(), stop.clone());
            std::thread::spawn(move || {
                let to = now / 1_000;
                let query = query::RangeQuery::new(
                    node_id,
                    None,
                    (to - 365 * 86_400, to),
                    Some(365 * 86_400 / 120),
                    Aggregation::Avg,
                    &store.retention,
                    now,
                );
                let conn = store.reader.get().unwrap();
                let mut ran = 0;
                while !stop.load(Ordering::Relaxed) {
                    match queries_on {
                        Some(Some(true)) => {
                            drop(query::range_on(&store.reader, &store.head, &query).unwrap())
                        }
                        Some(Some(false)) => {
                            drop(query::range(&conn, &store.head, &query).unwrap())
                        }
                        _ => {
                            let spun = (0..1_000_000u64).fold(0u64, |a, b| a.wrapping_add(b * b));
                            std::hint::black_box(spun);
                        }
                    }
                    ran += 1;
                }
                ran
            })
        });
        let mut waits = Vec::new();
        runtime.block_on(async {
            for batch in batches {
                let started = Instant::now();
                store.write(batch).await.unwrap();
                waits.push(started.elapsed());
            }
        });
        stop.store(true, Ordering::Relaxed);
        let ran = queries.map_or(0, |q| q.join().unwrap());
        waits.sort();
        println!(
            "  {:<36} write p50 {:>6.2} ms  p99 {:>6.2} ms  max {:>6.2} ms{}",
            label,
            common::percentile_ms(&waits, 0.5),
            common::percentile_ms(&waits, 0.99),
            waits.last().unwrap().as_secs_f64() * 1e3,
            if with_queries {
                format!("  ({ran} queries meanwhile)")
            } else {
                String::new()
            },
        );
    }
}

// ---- 3 and 4: ingest and compaction ----

fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / 100.0
}

/// Poll rounds of every series from `start` (one batch each).
fn rounds(
    plant: &[SeriesModel],
    keys: &[Arc<SeriesKey>],
    values: &mut [Values],
    start: i64,
    first: i64,
    count: i64,
) -> Vec<Batch> {
    (first..first + count)
        .map(|k| Batch {
            component_id: 1,
            batch_id: None,
            lines: plant.len(),
            samples: plant
                .iter()
                .enumerate()
                .map(|(i, series)| {
                    let ts = poll_ts(start, series.node, k);
                    Sample {
                        key: keys[i].clone(),
                        ts_ms: ts,
                        value: values[i].next(ts),
                    }
                })
                .collect(),
        })
        .collect()
}

async fn ingest(store: &MetricsStore, batches: Vec<Batch>) -> f64 {
    let samples: usize = batches.iter().map(|b| b.samples.len()).sum();
    let started = Instant::now();
    let queue = Arc::new(std::sync::Mutex::new(batches.into_iter()));
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let (store, queue) = (store.clone(), queue.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let next = queue.lock().unwrap().next();
                let Some(batch) = next else { break };
                store.write(batch).await.unwrap();
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    samples as f64 / started.elapsed().as_secs_f64()
}

/// The same rows inserted one by one into the first schema (see `common::bare_insert`).
fn bare_insert(dir: &Path, batches: &[Batch]) -> (f64, f64) {
    // Series ids as the writer would resolve them: one per series of the plant, in order.
    let rows: Vec<Vec<(i64, i64, f64)>> = batches
        .iter()
        .map(|b| {
            b.samples
                .iter()
                .enumerate()
                .map(|(i, s)| (i as i64 + 1, s.ts_ms, s.value))
                .collect()
        })
        .collect();
    common::bare_insert(dir, &rows)
}

fn main() {
    let days: i64 = std::env::var("PLANTWATCH_BENCH_DAYS")
        .ok()
        .and_then(|d| d.parse().ok())
        .unwrap_or(30);
    let (plant, chart_node) = plant(SERIES);
    let nodes = plant.last().map_or(0, |s| s.node + 1);
    let chart_series = plant.iter().filter(|s| s.node == chart_node).count();
    let counters = plant.iter().filter(|s| s.kind == Kind::Counter).count();
    println!(
        "plant: {} series on {nodes} nodes from the built-in templates ({counters} counters), every 10 s",
        plant.len()
    );
    let now = (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64;
    let dir = tempfile::tempdir_in(
        std::env::var("PLANTWATCH_BENCH_DIR").unwrap_or_else(|_| "/var/tmp".into()),
    )
    .unwrap();

    // 1 (PLANTWATCH_BENCH_DB keeps the data set for the next run, which reuses it)
    let kept = std::env::var("PLANTWATCH_BENCH_DB")
        .ok()
        .map(std::path::PathBuf::from);
    let path = kept
        .clone()
        .unwrap_or_else(|| dir.path().join("metrics.db"));
    let reuse = kept.is_some() && path.exists();
    let now = if reuse {
        let conn = Connection::open(&path).unwrap();
        let (head, _) = plantwatch_server::metrics_store::head::replay(&conn).unwrap();
        head.newest().unwrap() + 1
    } else {
        now
    };
    let built = if reuse {
        Built {
            samples: (days * DAY_MS / INTERVAL_MS) as u64 * plant.len() as u64,
            seconds: 0.0,
        }
    } else {
        build(&path, &plant, chart_node, now, days)
    };
    let figures = stats::collect(&path).unwrap();
    println!(
        "\ndata set: {days} days of {} series = {:.3} billion samples (+ a year of rollups for node {}), sealed in {:.0} s",
        plant.len(),
        built.samples as f64 / 1e9,
        chart_node + 1,
        built.seconds
    );
    print!("{figures}");
    let raw = &figures.levels[0];
    let rollup_bytes: u64 = figures.levels[1..].iter().map(|l| l.bytes).sum();
    println!(
        "=> {:.2} bytes/sample for the whole file ({:.2}x Prometheus's 1.3); raw chunks {:.2}, rollups {:.2} per raw sample",
        figures.bytes_per_sample,
        figures.bytes_per_sample / 1.3,
        figures.chunk_bytes_per_sample,
        rollup_bytes as f64 / raw.points.max(1) as f64,
    );

    // 2
    let store = MetricsStore::open_with(
        &path,
        StoreOptions {
            background_compaction: false,
            ..StoreOptions::default()
        },
    )
    .unwrap();
    chart_queries(&store, chart_node as i64 + 1, chart_series, now);
    drop(store);
    writes_beside_queries(&path, &plant, chart_node as i64 + 1, now);
    if kept.is_none() {
        drop(std::fs::remove_file(&path));
    }
    if std::env::var("PLANTWATCH_BENCH_PARTS").is_ok_and(|p| p == "storage") {
        return;
    }

    // 3, 4
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let keys = series_keys(&plant);
    let hours = 3;
    let rounds_count = hours * HOUR_MS / INTERVAL_MS;
    let start = Resolution::Raw.window_of(now) - hours * HOUR_MS;
    let mut values = first_values(&plant);
    let data = rounds(&plant, &keys, &mut values, start, 0, rounds_count);
    let samples = (rounds_count as usize * plant.len()) as f64;
    println!(
        "\ningest: {hours} h of poll rounds ({:.1} M samples, batches of {} samples, 4 in flight):",
        samples / 1e6,
        plant.len()
    );
    let (bare_rate, bare_bytes) = bare_insert(dir.path(), &data[..360]);
    println!(
        "  bare rusqlite insert (one row per sample, first 1 h): {bare_rate:>9.0} samples/s, {bare_bytes:.1} bytes/sample on disk"
    );

    let without = MetricsStore::open_with(
        &dir.path().join("without.db"),
        StoreOptions {
            background_compaction: false,
            ..StoreOptions::default()
        },
    )
    .unwrap();
    let rate_without = runtime.block_on(ingest(&without, clone_batches(&data)));
    println!(
        "  store, compactor off:                                 {rate_without:>9.0} samples/s"
    );
    let with =
        MetricsStore::open_with(&dir.path().join("with.db"), StoreOptions::default()).unwrap();
    let rate_with = runtime.block_on(ingest(&with, data));
    let sealed_meanwhile = with.stats.compaction.sealed_samples.load(Ordering::Relaxed);
    println!(
        "  store, compactor on:                                  {rate_with:>9.0} samples/s ({:.1} M samples sealed meanwhile) = {:.0} % of off",
        sealed_meanwhile as f64 / 1e6,
        100.0 * rate_with / rate_without
    );
    drop(with);

    println!("\ncompaction (one pass, nothing else running):");
    // A pass at `at`: its report, wall seconds and cores busy.
    let timed_pass = |at: i64| {
        let cpu = cpu_seconds();
        let started = Instant::now();
        let report = runtime.block_on(without.compact(at)).unwrap();
        let wall = started.elapsed().as_secs_f64();
        (report, wall, (cpu_seconds() - cpu) / wall)
    };
    let (report, wall, cores) = timed_pass(now);
    println!(
        "  {hours} h backlog:      {:>5.1} M samples in {wall:.1} s = {:>9.0} samples/s, {:.2} cores busy ({} series, {} chunks written)",
        report.samples as f64 / 1e6,
        report.samples as f64 / wall,
        cores,
        report.series,
        report.chunks
    );
    // The steady state: five more minutes polled, then the pass that seals that slice.
    let slice = rounds(
        &plant,
        &keys,
        &mut values,
        start,
        rounds_count,
        SLICE_MS / INTERVAL_MS,
    );
    runtime.block_on(ingest(&without, slice));
    let (report, wall, cores) = timed_pass(now + SLICE_MS);
    println!(
        "  5-minute slice:  {:>5.2} M samples in {wall:.2} s = {:>9.0} samples/s, {:.2} cores busy (hour chunks and rollups rewritten)",
        report.samples as f64 / 1e6,
        report.samples as f64 / wall,
        cores,
    );
    let figures = stats::collect(&dir.path().join("without.db")).unwrap();
    println!(
        "  after compaction: {:.2} bytes/sample (raw chunks {:.2}) over {} samples",
        figures.bytes_per_sample, figures.chunk_bytes_per_sample, figures.samples
    );
}

fn clone_batches(batches: &[Batch]) -> Vec<Batch> {
    batches
        .iter()
        .map(|b| Batch {
            component_id: b.component_id,
            batch_id: None,
            lines: b.lines,
            samples: b.samples.clone(),
        })
        .collect()
}
