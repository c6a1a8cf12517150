//! An active/standby pair of real `plantwatch-server` processes on loopback (release build,
//! Litestream replicating into a shared directory on the same disk):
//!
//! 1. Replication lag under 100,000 samples/s of ingest: a collector's gzip batches of 5,000
//!    interface lines (35,000 samples) posted at that pace to the active for 30 s, while the
//!    standby's lag (`ha status`: the age of the newest beacon in its copy) is read every
//!    second.
//! 2. Failover time over 10 runs: SIGKILL the active, time until the standby answers
//!    `/healthz` as active; the killed server is started again as the standby and follows
//!    before the next run (roles alternate).
//!
//! Both servers, Litestream and the client share this machine's cores.
//! Run with `cargo bench -p plantwatch-server --bench ha`; `PLANTWATCH_BENCH_FAILOVERS` sets
//! the runs (default 10), `PLANTWATCH_BENCH_LOAD_SECS` the load (default 30).
#![allow(clippy::unwrap_used, clippy::expect_used)] // A benchmark fails loudly by design.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

mod common;

use common::{gzip, interface_lines, percentile_ms};
use plantwatch_shared::Client;
use plantwatch_shared::api::ha::{HaRole, HaStatus};
use plantwatch_testkit::ADMIN_PASSWORD;
use plantwatch_testkit::pair::{Member, Pair, wait_active};

const BIN: &str = env!("CARGO_BIN_EXE_plantwatch-server");
const NODES: usize = 100;
const INTERFACES: usize = 48;
const LINES_PER_BATCH: usize = 5_000;
const SAMPLES_PER_BATCH: usize = LINES_PER_BATCH * common::FIELDS;
const TARGET_SAMPLES_PER_SECOND: usize = 100_000;

fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn status(member: &Member, shared: &Path) -> HaStatus {
    let out = Command::new(BIN)
        .args(["ha", "status", "--json", "--data-dir"])
        .arg(&member.data)
        .arg("--ha-dir")
        .arg(shared)
        .output()
        .unwrap();
    serde_json::from_slice(&out.stdout).unwrap()
}

#[tokio::main]
async fn main() {
    let failovers = env_number("PLANTWATCH_BENCH_FAILOVERS", 10);
    let load_secs = env_number("PLANTWATCH_BENCH_LOAD_SECS", 30);
    let (mut pair, fa, fb) = Pair::start(Path::new(BIN)).await;
    let shared = pair.shared();

    // A collector with 100 switches on the active.
    let admin = Client::new(&pair.a.url(), Some(fa)).unwrap();
    let token = admin.login("admin", ADMIN_PASSWORD).await.unwrap().token;
    let admin = admin.with_token(token);
    let registration = common::approved_collector(&admin, "north").await;
    let node_ids = common::switches(&admin, NODES, "north").await;
    let collector = Client::new(&pair.a.url(), Some(fa))
        .unwrap()
        .with_api_key(registration.api_key);

    // 1. Replication lag under load.
    let batches = load_secs * TARGET_SAMPLES_PER_SECOND / SAMPLES_PER_BATCH;
    let base_ms = (time::OffsetDateTime::now_utc().unix_timestamp() - 3 * 3600) * 1000;
    let bodies: Arc<Vec<Vec<u8>>> = Arc::new(
        (0..batches)
            .map(|i| {
                gzip(&interface_lines(
                    i * LINES_PER_BATCH,
                    LINES_PER_BATCH,
                    &node_ids,
                    INTERFACES,
                    base_ms,
                ))
            })
            .collect(),
    );
    let pace = Duration::from_secs_f64(SAMPLES_PER_BATCH as f64 / TARGET_SAMPLES_PER_SECOND as f64);
    let loader = {
        let (collector, bodies) = (collector.clone(), bodies.clone());
        tokio::spawn(async move {
            let started = Instant::now();
            let mut sends = tokio::task::JoinSet::new();
            for (i, body) in bodies.iter().enumerate() {
                let due = started + pace * i as u32;
                tokio::time::sleep_until(due.into()).await;
                let (collector, body) = (collector.clone(), body.clone());
                sends.spawn(async move {
                    collector
                        .ingest_gzip(&format!("bench-{i}"), body)
                        .await
                        .unwrap();
                });
                while sends.len() > 8 {
                    sends.join_next().await;
                }
            }
            while sends.join_next().await.is_some() {}
            started.elapsed()
        })
    };
    let mut lags = Vec::new();
    while !loader.is_finished() {
        tokio::time::sleep(Duration::from_secs(1)).await;
        if let Some(lag) = status(&pair.a, &shared)
            .members
            .iter()
            .find(|m| m.role == HaRole::Standby && m.seen_ms_ago < 3_000)
            .and_then(|m| m.replication_lag_ms)
        {
            lags.push(Duration::from_millis(lag));
        }
    }
    let took = loader.await.unwrap();
    let rate = (batches * SAMPLES_PER_BATCH) as f64 / took.as_secs_f64();
    lags.sort();
    println!(
        "replication lag at {rate:.0} samples/s for {:.1} s ({} readings): p50 {:.0} ms, p90 {:.0} ms, max {:.0} ms",
        took.as_secs_f64(),
        lags.len(),
        percentile_ms(&lags, 0.5),
        percentile_ms(&lags, 0.9),
        percentile_ms(&lags, 1.0),
    );

    // 2. Failover time.
    let mut times = Vec::new();
    let fingerprints = [fa, fb];
    for run in 0..failovers {
        let (active, standby, fp) = if run % 2 == 0 {
            (&mut pair.a, &mut pair.b, fingerprints[1])
        } else {
            (&mut pair.b, &mut pair.a, fingerprints[0])
        };
        let killed = Instant::now();
        active.kill();
        wait_active(&standby.url(), fp, 60).await;
        let took = killed.elapsed();
        println!("  run {}: {:.2} s", run + 1, took.as_secs_f64());
        times.push(took);
        active.start(&shared);
        let name = active.name;
        pair.wait_following(name).await;
    }
    times.sort();
    println!(
        "failover over {} runs: p50 {:.2} s, max {:.2} s, min {:.2} s",
        times.len(),
        percentile_ms(&times, 0.5) / 1e3,
        percentile_ms(&times, 1.0) / 1e3,
        percentile_ms(&times, 0.0) / 1e3,
    );
}
