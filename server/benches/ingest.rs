//! Ingest against an engine: the same gzip line-protocol bodies, posted by the same client
//! (reqwest, 4 requests in flight), to plantwatch's embedded store (HTTPS, a collector's key;
//! each 204 only once the batch is committed and fsync'd) and to a fresh VictoriaMetrics' own
//! `/write` on loopback (before and after plantwatch; the better run counts) — 100 switches × 48 ports × 7 interface fields every 10 s, the shape of
//! a collector replaying its outbox after an outage. Two volumes: the first 1.0 M samples and
//! the whole hour (12.1 M, ending 15 minutes ago). Then bytes per sample on disk: plantwatch
//! once the compactor has sealed everything, VictoriaMetrics after a forced flush and merge.
//! Server, engine and client share this machine's cores.
//!
//! Run with `cargo bench -p plantwatch-server --bench ingest`; `PLANTWATCH_BENCH_POLLS` sets
//! the volumes as polls (default `30,360`: 1.0 M and 12.1 M samples).
#![allow(clippy::unwrap_used, clippy::expect_used)] // A benchmark fails loudly by design.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

mod common;

use common::{
    FIELDS, dir_bytes, gzip, interface_lines, post_as_collector, post_to_engine, wait_for,
};
use plantwatch_server::metrics_store::stats;
use plantwatch_testkit::engines::{Engine, EngineKind};

const NODES: usize = 100;
const INTERFACES: usize = 48;
const LINES_PER_BATCH: usize = 5_000;
const CONCURRENCY: usize = 4;

/// One side's figures.
struct Run {
    samples_per_second: f64,
    seconds: f64,
    /// Bytes on disk per sample once sealed or merged (the whole data directory).
    file_bytes: f64,
    /// plantwatch only: pages in use per sample.
    used_bytes: f64,
}

/// `polls` poll rounds of every interface as gzip bodies of [`LINES_PER_BATCH`] lines.
fn bodies(node_ids: &[i64], polls: usize, base_ms: i64) -> Vec<Vec<u8>> {
    let lines = polls * NODES * INTERFACES;
    (0..lines.div_ceil(LINES_PER_BATCH))
        .map(|batch| {
            let first = batch * LINES_PER_BATCH;
            let count = LINES_PER_BATCH.min(lines - first);
            gzip(&interface_lines(
                first, count, node_ids, INTERFACES, base_ms,
            ))
        })
        .collect()
}

/// The bodies posted to a fresh VictoriaMetrics' `/write`, until every post is acknowledged;
/// then flushed and merged, and its data directory measured.
async fn engine_run(bodies: Arc<Vec<Vec<u8>>>, samples: f64, last_s: i64) -> Run {
    let engine = Engine::start(EngineKind::VictoriaMetrics);
    let seconds = post_to_engine(&engine, bodies, CONCURRENCY).await;
    wait_for(&engine, "{__name__=~\"interface_.*\"}", samples, last_s).await;
    let http = reqwest::Client::new();
    for path in ["/internal/force_flush", "/internal/force_merge"] {
        let status = http
            .get(format!("{}{path}", engine.base_url()))
            .send()
            .await
            .unwrap()
            .status();
        assert!(status.is_success(), "{path}: {status}");
    }
    let bytes = settled_size(engine.data_dir()).await;
    Run {
        samples_per_second: samples / seconds,
        seconds,
        file_bytes: bytes as f64 / samples,
        used_bytes: f64::NAN,
    }
}

/// The size of `dir` once it has not changed for 3 s (a merge runs in the background).
async fn settled_size(dir: &Path) -> u64 {
    let mut last = (dir_bytes(dir), Instant::now());
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let now = dir_bytes(dir);
        if now != last.0 {
            last = (now, Instant::now());
        } else if last.1.elapsed() > Duration::from_secs(3) {
            return now;
        }
    }
}

/// A fresh plantwatch server (embedded store, compactor running) with an approved collector
/// polling the switches.
struct Plant {
    bench: common::Bench,
    collector: plantwatch_shared::Client,
    node_ids: Vec<i64>,
}

impl Plant {
    async fn start() -> Plant {
        let bench = common::start_with(|_| {}).await;
        let registration = common::approved_collector(&bench.admin, "north").await;
        let node_ids = common::switches(&bench.admin, NODES, "north").await;
        let collector = bench.client.clone().with_api_key(registration.api_key);
        Plant {
            bench,
            collector,
            node_ids,
        }
    }

    /// Posts `bodies` as the collector; the seconds until every batch was acknowledged.
    async fn post(&self, bodies: Arc<Vec<Vec<u8>>>, name: &'static str) -> f64 {
        post_as_collector(&self.collector, bodies, CONCURRENCY, name).await
    }

    /// Ingests `bodies` (`samples` of them), then seals everything and measures the file.
    async fn run(&self, bodies: Arc<Vec<Vec<u8>>>, samples: f64) -> Run {
        let seconds = self.post(bodies, "bench").await;
        // Everything ended 15 minutes ago: one pass seals it all.
        let store = &self.bench.server.state.metrics;
        store
            .compact(plantwatch_server::clock::unix_ms())
            .await
            .unwrap();
        assert!(store.head.is_empty(), "the head is sealed");
        let dir = self.bench.dir.path();
        let figures = stats::collect(&dir.join("metrics.db")).unwrap();
        let mib = |bytes: u64| bytes as f64 / 1_048_576.0;
        let size = |suffix: &str| {
            mib(std::fs::metadata(dir.join(format!("metrics.db{suffix}"))).map_or(0, |m| m.len()))
        };
        let levels: Vec<String> = figures
            .levels
            .iter()
            .map(|l| {
                format!(
                    "{} {} chunks {:.1} MiB",
                    l.resolution,
                    l.chunks,
                    mib(l.bytes)
                )
            })
            .collect();
        println!(
            "    (plantwatch on disk: metrics.db {:.1} MiB, -wal {:.1} MiB; pages in use {:.1} MiB; blobs: {})",
            size(""),
            size("-wal"),
            mib(figures.used_bytes),
            levels.join(", ")
        );
        assert_eq!(figures.samples as f64, samples, "every sample stored once");
        Run {
            samples_per_second: samples / seconds,
            seconds,
            file_bytes: figures.disk_bytes as f64 / samples,
            used_bytes: figures.used_bytes as f64 / samples,
        }
    }
}

/// Ingest of `polls` rounds beside the compactor sealing a backlog of as many rounds (the
/// hour before), on a fresh server: the rate of the ingest, and how long the sealing took.
async fn beside_sealing(polls: usize, base_ms: i64) -> (f64, f64) {
    let plant = Plant::start().await;
    let backlog = Arc::new(bodies(
        &plant.node_ids,
        polls,
        base_ms - polls as i64 * 10_000,
    ));
    let fresh = Arc::new(bodies(&plant.node_ids, polls, base_ms));
    plant.post(backlog, "backlog").await;
    let store = plant.bench.server.state.metrics.clone();
    let started = Instant::now();
    let sealing = tokio::spawn(async move {
        let report = store
            .compact(plantwatch_server::clock::unix_ms())
            .await
            .unwrap();
        (report, started.elapsed().as_secs_f64())
    });
    let seconds = plant.post(fresh, "fresh").await;
    let (report, sealed_after) = sealing.await.unwrap();
    let samples = (polls * NODES * INTERFACES * FIELDS) as f64;
    assert!(report.samples as f64 >= samples, "the backlog was sealed");
    (samples / seconds, sealed_after)
}

#[tokio::main]
async fn main() {
    let volumes: Vec<usize> = std::env::var("PLANTWATCH_BENCH_POLLS")
        .ok()
        .map(|v| v.split(',').map(|p| p.trim().parse().unwrap()).collect())
        .unwrap_or_else(|| vec![30, 360]);
    println!(
        "ingest against VictoriaMetrics: {NODES} switches × {INTERFACES} ports × {FIELDS} fields every 10 s, gzip bodies of {LINES_PER_BATCH} lines, {CONCURRENCY} in flight"
    );
    let mut rates = Vec::new();
    let largest = volumes.iter().max().copied();
    for polls in volumes {
        let samples = (polls * NODES * INTERFACES * FIELDS) as f64;
        let last_ms = (plantwatch_server::clock::unix_ms() / 10_000) * 10_000 - 15 * 60_000;
        let base_ms = last_ms - (polls as i64 - 1) * 10_000;
        // The engine before and after plantwatch (the better run counts): this machine's
        // rates move by ±15 % from one minute to the next. The same bodies for all three.
        let plant = Plant::start().await;
        let bodies = Arc::new(bodies(&plant.node_ids, polls, base_ms));
        let engine_before = engine_run(bodies.clone(), samples, last_ms / 1_000).await;
        let own = plant.run(bodies.clone(), samples).await;
        drop(plant);
        let engine_after = engine_run(bodies, samples, last_ms / 1_000).await;
        let engine = if engine_after.samples_per_second > engine_before.samples_per_second {
            engine_after
        } else {
            engine_before
        };
        println!("  {:.2} M samples ({polls} polls):", samples / 1e6);
        println!(
            "    plantwatch (HTTPS, durable commit)  {:>10.0} samples/s ({:.2} s)   {:.2} bytes/sample on disk ({:.2} in pages in use)",
            own.samples_per_second, own.seconds, own.file_bytes, own.used_bytes
        );
        println!(
            "    VictoriaMetrics /write              {:>10.0} samples/s ({:.2} s)   {:.2} bytes/sample on disk (the better of a run before and one after)",
            engine.samples_per_second, engine.seconds, engine.file_bytes
        );
        println!(
            "    ratio: ingest {:.2} (target ≥ 1.0), bytes per sample {:.2} on disk, {:.2} in use (target ≤ 1.0)",
            own.samples_per_second / engine.samples_per_second,
            own.file_bytes / engine.file_bytes,
            own.used_bytes / engine.file_bytes
        );
        rates.push(own.samples_per_second);
        if Some(&polls) == largest.as_ref() {
            let (rate, sealed_after) = beside_sealing(polls, base_ms).await;
            println!(
                "    plantwatch beside the compactor sealing a backlog of as many samples: {rate:.0} samples/s, {:.0} % of its rate alone (target ≥ 90 %); the backlog was sealed after {sealed_after:.2} s",
                100.0 * rate / own.samples_per_second
            );
        }
    }
    if let (Some(first), Some(last)) = (rates.first(), rates.last())
        && rates.len() > 1
    {
        println!(
            "  plantwatch at the largest volume: {:.0} % of its rate at the smallest (target ≥ 90 %)",
            100.0 * last / first
        );
    }
}
