//! Ingest through the remote-write backend into VictoriaMetrics, against the engine's ceiling:
//! the same line protocol posted straight to VictoriaMetrics' own `/write` endpoint. Both
//! runs use a fresh VictoriaMetrics (Debian's `victoria-metrics`) on loopback with its own
//! data dir, the same batches, the same concurrency, and end when the engine has acknowledged
//! every sample (plantwatch: its queue is empty). Server, engine and senders share this
//! machine's cores. Run with `cargo bench -p plantwatch-server --bench remote_write`;
//! `PLANTWATCH_BENCH_BATCHES` sets the batches (default 60, of 5,000 lines × 7 fields).
#![allow(clippy::unwrap_used, clippy::expect_used)] // A benchmark fails loudly by design.

use plantwatch_server::telemetry::registry::{figures as f, read};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

mod common;

use common::{FIELDS, gzip, interface_batch, post_as_collector, post_to_engine, wait_for};
use plantwatch_server::config::MetricsBackend;
use plantwatch_testkit::engines::{Engine, EngineKind};

const NODES: usize = 100;
const INTERFACES: usize = 48;
const LINES_PER_BATCH: usize = 5_000;
const CONCURRENCY: usize = 4;

/// The ceiling: the bodies posted to a fresh VictoriaMetrics' `/write` (InfluxDB line protocol,
/// gzip), until every post is acknowledged.
async fn ceiling(bodies: Arc<Vec<Vec<u8>>>, samples: f64, last_s: i64) -> (f64, f64) {
    let engine = Engine::start(EngineKind::VictoriaMetrics);
    let rate = samples / post_to_engine(&engine, bodies, CONCURRENCY).await;
    let cpu = engine.cpu_seconds();
    wait_for(&engine, "{__name__=~\"interface_.*\"}", samples, last_s).await;
    (rate, cpu)
}

#[tokio::main]
async fn main() {
    let batches: usize = std::env::var("PLANTWATCH_BENCH_BATCHES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(60);
    // Recent data (an engine may refuse samples far from now): the last poll a minute ago.
    let polls = (batches * LINES_PER_BATCH).div_ceil(NODES * INTERFACES) as i64;
    let base_ms = (plantwatch_server::clock::unix_ms() / 10_000 - polls) * 10_000 - 60_000;
    let last_s = (base_ms + polls * 10_000) / 1_000;
    let samples = (batches * LINES_PER_BATCH * FIELDS) as f64;

    let engine = Engine::start(EngineKind::VictoriaMetrics);
    let bench = common::start_with(|c| {
        c.metrics_backend = MetricsBackend::RemoteWrite;
        c.metrics_remote_write_url = Some(engine.write_url());
        c.metrics_query_url = Some(engine.base_url());
    })
    .await;
    let registration = common::approved_collector(&bench.admin, "north").await;
    let node_ids = common::switches(&bench.admin, NODES, "north").await;
    let bodies: Vec<Vec<u8>> = (0..batches)
        .map(|i| {
            gzip(&interface_batch(
                i,
                &node_ids,
                LINES_PER_BATCH,
                INTERFACES,
                base_ms,
            ))
        })
        .collect();
    let bodies = Arc::new(bodies);

    // The engine's ceiling, before and after plantwatch's run (the better one counts).
    let before = ceiling(bodies.clone(), samples, last_s).await;

    let collector = bench.client.clone().with_api_key(registration.api_key);
    let stats = bench.server.state.metrics.stats.clone();
    let (engine_cpu, own_cpu) = (engine.cpu_seconds(), own_cpu_seconds());
    let started = Instant::now();
    let acknowledged = post_as_collector(&collector, bodies.clone(), CONCURRENCY, "bench").await;
    let mut peak = 0;
    while stats.remote_queued.load(Ordering::Relaxed) > 0 {
        peak = peak.max(stats.remote_queued.load(Ordering::Relaxed));
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let forwarded = started.elapsed().as_secs_f64();
    let (engine_cpu, own_cpu) = (
        engine.cpu_seconds() - engine_cpu,
        own_cpu_seconds() - own_cpu,
    );
    // The forwarder's own figures, as GET /metrics shows them.
    let mut figures = plantwatch_server::telemetry::Exposition::default();
    bench.server.state.backend.report(&mut figures);
    let figures = figures.into_text();
    let figure = |figure| read(&figures, figure).expect("the forwarder reports its figures");
    assert_eq!(figure(&f::REMOTE_SENT_SAMPLES), samples);
    wait_for(&engine, "{__name__=~\"plantwatch_.*\"}", samples, last_s).await;
    let requests = figure(&f::REMOTE_REQUESTS) as u64;
    let send_s = figure(&f::REMOTE_REQUEST_SECONDS);

    let after = ceiling(bodies.clone(), samples, last_s).await;
    let ((before, before_cpu), (after, after_cpu)) = (before, after);
    let best = before.max(after);
    let million = samples / 1e6;
    let through = samples / forwarded;
    println!(
        "remote write: {batches} batches of {LINES_PER_BATCH} lines × {FIELDS} fields ({} samples, {} series), {CONCURRENCY} in flight",
        samples,
        NODES * INTERFACES * FIELDS
    );
    println!(
        "  plantwatch → VictoriaMetrics (HTTPS ingest, queue on disk, remote write): {through:.0} samples/s until the engine has every sample ({forwarded:.2} s; every batch acknowledged after {acknowledged:.2} s, queue peak {peak} samples, {requests} requests, {:.1} ms each)",
        send_s * 1e3 / requests.max(1) as f64
    );
    println!(
        "  line protocol straight to VictoriaMetrics /write (the ceiling): {before:.0} / {after:.0} samples/s (before / after)"
    );
    println!(
        "  CPU per million samples: VictoriaMetrics taking line protocol {:.2} / {:.2} s; taking plantwatch's remote write {:.2} s; plantwatch (and its senders) {:.2} s",
        before_cpu / million,
        after_cpu / million,
        engine_cpu / million,
        own_cpu / million
    );
    println!(
        "  ratio: {:.0} % of the better ceiling",
        100.0 * through / best
    );
}

/// CPU time this process (server, forwarder and senders) has used, in seconds.
fn own_cpu_seconds() -> f64 {
    plantwatch_testkit::engines::cpu_seconds(std::process::id())
}
