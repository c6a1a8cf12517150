//! The server's side of discovery, over HTTPS with the real client: a collector streaming the
//! results of a /16 scan (65,534 addresses, 5,000 hosts found, batches of 200 devices as the
//! collector sends them), the inbox read back (a page of 1,000 sorted by address, and filtered),
//! and an import of 1,000 devices as nodes in one transaction. No network is scanned: the
//! "collector" is this process posting made-up results.
//! Run with `cargo bench -p plantwatch-server --bench discovery`.
#![allow(clippy::unwrap_used, clippy::expect_used)] // A benchmark fails loudly by design.

use std::time::{Duration, Instant};

mod common;

use plantwatch_shared::api::{
    DeviceQuery, DeviceSelection, Found, FoundBy, JobSpec, MAX_BATCH_DEVICES, ResultBatch,
};

const HOSTS: usize = 5_000;
const BATCH: usize = 200;
const ADDRESSES: u64 = 65_534;

fn found(n: usize) -> Found {
    let a = (n * 13) + 1;
    let snmp = n.is_multiple_of(2);
    Found {
        address: format!("10.77.{}.{}", a / 256, a % 256),
        sys_name: snmp.then(|| format!("dev-{n:05}")),
        sys_descr: snmp.then(|| "Cisco IOS Software, C3560 Software (C3560-IPBASE-M)".into()),
        sys_object_id: snmp.then(|| "1.3.6.1.4.1.9.1.617".into()),
        sys_uptime_s: snmp.then_some(86_400),
        vendor: snmp.then(|| "Cisco".into()),
        template: snmp.then(|| "cisco-ios".into()),
        rtt_ms: Some(0.5),
        found_by: Some(FoundBy::Icmp),
        ..Found::default()
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

#[tokio::main]
async fn main() {
    let bench = common::start_with(|_| {}).await;
    let registration = common::approved_collector(&bench.admin, "bench").await;
    let collector = bench
        .client
        .clone()
        .with_api_key(registration.api_key.clone());
    let job = bench
        .admin
        .create_job(&JobSpec {
            collector: Some("bench".into()),
            ..JobSpec::new(vec!["10.77.0.0/16".into()])
        })
        .await
        .unwrap();
    assert_eq!(job.total, ADDRESSES);
    let claimed = collector
        .claim_job(registration.component_id)
        .await
        .unwrap()
        .job
        .unwrap();
    assert_eq!(claimed.id, job.id);

    // Results: 25 batches of 200 devices, the addresses done growing with them.
    let mut latencies = Vec::new();
    let started = Instant::now();
    for (i, chunk) in (0..HOSTS).collect::<Vec<_>>().chunks(BATCH).enumerate() {
        assert!(chunk.len() <= MAX_BATCH_DEVICES);
        let done = ADDRESSES * (i as u64 + 1) / (HOSTS / BATCH) as u64;
        let batch = ResultBatch {
            done,
            resume_at: done,
            devices: chunk.iter().map(|n| found(*n)).collect(),
            finished: done == ADDRESSES,
            error: None,
        };
        let t = Instant::now();
        let ack = collector.send_results(job.id, &batch).await.unwrap();
        latencies.push(t.elapsed());
        assert!(!ack.stop);
    }
    let total = started.elapsed();
    latencies.sort();
    let job = bench.admin.get_job(job.id).await.unwrap();
    assert_eq!(job.hosts_found, HOSTS as u64);
    println!(
        "results: {} batches of {BATCH} devices in {:.0} ms ({:.0} devices/s); per batch p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        latencies.len(),
        ms(total),
        HOSTS as f64 / total.as_secs_f64(),
        common::percentile_ms(&latencies, 0.5),
        common::percentile_ms(&latencies, 0.99),
        ms(*latencies.last().unwrap()),
    );

    // The inbox: a page of 1,000 by address; a text filter; the job with its counts.
    let mut page = Vec::new();
    let mut filtered = Vec::new();
    let mut read = Vec::new();
    // One inbox read, timed.
    let inbox = |query: DeviceQuery| {
        let admin = bench.admin.clone();
        async move {
            let t = Instant::now();
            let list = admin.job_devices(job.id, &query).await.unwrap();
            (t.elapsed(), list)
        }
    };
    for _ in 0..20 {
        let (took, list) = inbox(DeviceQuery {
            limit: Some(1_000),
            sort: Some("address".into()),
            ..DeviceQuery::default()
        })
        .await;
        page.push(took);
        assert_eq!(list.items.len(), 1_000);
        assert_eq!(list.total, HOSTS as u64);
        let (took, list) = inbox(DeviceQuery {
            q: Some("dev-04".into()),
            unmonitored: Some(true),
            ..DeviceQuery::default()
        })
        .await;
        filtered.push(took);
        assert_eq!(list.total, 500);
        let t = Instant::now();
        bench.admin.get_job(job.id).await.unwrap();
        read.push(t.elapsed());
    }
    for (what, samples) in [
        (
            "inbox page of 1,000 sorted by address (5,000 devices)",
            &mut page,
        ),
        (
            "inbox filtered by text and unmonitored (500 match)",
            &mut filtered,
        ),
        ("GET the job with its counts", &mut read),
    ] {
        samples.sort();
        println!(
            "{what}: p50 {:.1} ms, p99 {:.1} ms",
            common::percentile_ms(samples, 0.5),
            common::percentile_ms(samples, 0.99)
        );
    }

    // Import 1,000 devices as nodes in one call.
    let ids: Vec<i64> = bench
        .admin
        .job_devices(
            job.id,
            &DeviceQuery {
                limit: Some(1_000),
                ..DeviceQuery::default()
            },
        )
        .await
        .unwrap()
        .items
        .iter()
        .map(|d| d.id)
        .collect();
    let t = Instant::now();
    let imported = bench
        .admin
        .import_devices(
            job.id,
            &DeviceSelection {
                devices: ids,
                ..DeviceSelection::default()
            },
        )
        .await
        .unwrap();
    let took = t.elapsed();
    assert_eq!(imported.created.len(), 1_000);
    println!("import of 1,000 devices as nodes: {:.0} ms", ms(took));
    bench.server.shutdown().await.unwrap();
}
