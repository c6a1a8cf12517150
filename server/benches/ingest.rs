//! End-to-end ingest: gzip line-protocol batches from a collector over HTTPS until each is
//! committed to `metrics.db` (204), against the machine's ceiling, a bare rusqlite batched
//! insert of the same samples into the same schema with the same durability (WAL, synchronous
//! FULL). Server and client share this process and the machine's cores.
//! Run with `cargo bench -p plantwatch-server --bench ingest`.
#![allow(clippy::unwrap_used, clippy::expect_used)] // A benchmark fails loudly by design.

use std::time::Instant;

mod common;

use common::{FIELDS, gzip, interface_batch};
use rusqlite::Connection;

const NODES: usize = 100;
const INTERFACES: usize = 48;
const LINES_PER_BATCH: usize = 5_000;
const BATCHES: usize = 60;
const CONCURRENCY: usize = 4;
/// The first poll's time (2025-11-24).
const BASE_MS: i64 = 1_764_000_000_000;

/// The ceiling: the same samples inserted by one connection in one transaction per batch.
fn bare_insert(batches: &[String]) -> f64 {
    let dir = tempfile::tempdir().unwrap();
    // Rows as the writer would insert them: series ids resolved, values and times parsed.
    let mut series: std::collections::HashMap<(String, String), i64> = Default::default();
    let mut rows: Vec<Vec<(i64, i64, f64)>> = Vec::new();
    for text in batches {
        let mut batch_rows = Vec::with_capacity(LINES_PER_BATCH * FIELDS);
        for line in text.lines() {
            let parsed = plantwatch_shared::lineproto::parse_line(line).unwrap();
            let tags = format!("{:?}", parsed.tags);
            let ts = parsed.timestamp.unwrap() / 1_000_000;
            for (field, value) in &parsed.fields {
                let next = series.len() as i64 + 1;
                let id = *series
                    .entry((tags.clone(), field.to_string()))
                    .or_insert(next);
                batch_rows.push((id, ts, value.as_f64().unwrap()));
            }
        }
        rows.push(batch_rows);
    }
    common::bare_insert(dir.path(), &rows).0
}

#[tokio::main]
async fn main() {
    let bench = common::start_with(|_| {}).await;
    let registration = common::approved_collector(&bench, "north").await;
    let node_ids = common::switches(&bench, NODES, "north").await;
    let texts: Vec<String> = (0..BATCHES)
        .map(|i| interface_batch(i, &node_ids, LINES_PER_BATCH, INTERFACES, BASE_MS))
        .collect();
    let bodies: Vec<Vec<u8>> = texts.iter().map(|t| gzip(t)).collect();
    let raw: usize = texts.iter().map(String::len).sum();
    let compressed: usize = bodies.iter().map(Vec::len).sum();
    let collector = bench.client.clone().with_api_key(registration.api_key);

    let samples = (BATCHES * LINES_PER_BATCH * FIELDS) as f64;
    let started = Instant::now();
    let bodies = std::sync::Arc::new(bodies);
    let mut tasks = Vec::new();
    for worker in 0..CONCURRENCY {
        let (collector, bodies) = (collector.clone(), bodies.clone());
        tasks.push(tokio::spawn(async move {
            for index in (worker..BATCHES).step_by(CONCURRENCY) {
                collector
                    .ingest_gzip(&format!("bench-{index}"), bodies[index].clone())
                    .await
                    .unwrap();
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let elapsed = started.elapsed().as_secs_f64();
    let end_to_end = samples / elapsed;
    let conn = Connection::open(bench.dir.path().join("metrics.db")).unwrap();
    let head = plantwatch_server::metrics_store::head::replay(&conn)
        .unwrap()
        .0;
    let stored: i64 = head.len() as i64
        + conn
            .query_row(
                "SELECT coalesce(sum(points), 0) FROM chunks WHERE (id >> 28) & 15 = 0",
                [],
                |r| r.get::<_, i64>(0),
            )
            .unwrap();
    assert_eq!(stored as f64, samples, "every sample stored once");

    let ceiling = tokio::task::spawn_blocking(move || bare_insert(&texts))
        .await
        .unwrap();
    println!(
        "ingest: {BATCHES} batches of {LINES_PER_BATCH} lines × {FIELDS} fields ({:.1} MiB, {:.1} MiB gzip), {} series, {CONCURRENCY} in flight",
        raw as f64 / 1_048_576.0,
        compressed as f64 / 1_048_576.0,
        NODES * INTERFACES * FIELDS
    );
    println!(
        "  end to end (HTTPS, gzip, parse, scope, commit): {end_to_end:.0} samples/s ({elapsed:.2} s)"
    );
    println!("  bare rusqlite batched insert (the ceiling):    {ceiling:.0} samples/s");
    println!(
        "  ratio: {:.0} % of the ceiling",
        100.0 * end_to_end / ceiling
    );
}
