//! Inventory benchmark: a 10,000-node CSV import (plan, apply, re-apply unchanged) and filtered
//! listings of 10,000 nodes, against the real server over HTTPS on loopback with the real
//! `shared` client. Run with `cargo bench -p plantwatch-server --bench inventory`.
#![allow(clippy::unwrap_used, clippy::expect_used)] // A benchmark fails loudly by design.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

mod common;

use plantwatch_server::server::Running;
use plantwatch_shared::Client;
use plantwatch_shared::api::{
    CreateCredentialRequest, CredentialKind, ExportFormat, ImportQuery, NodeQuery, NodeStatus,
    NodeType,
};

const NODES: usize = 10_000;
const RUNS: usize = 3;
const LIST_REQUESTS: usize = 200;

/// A plant of `rows` nodes: one switch, the rest under it, with tags, a credential and notes.
fn plant_csv(rows: usize) -> Vec<u8> {
    let mut csv = String::from(
        "name,address,type,tags,collector,template,credentials,parent,interval_s,notes\n",
    );
    csv.push_str("switch,10.0.0.1,network,core,,,ro,,,\"core switch, hall 1\"\n");
    let types = ["plc", "hmi", "server", "ups", "printer", "storage"];
    for n in 1..rows {
        csv.push_str(&format!(
            "dev-{n:05},10.{}.{}.{},{},line-{};{},,,ro,switch,{},cabinet {}\n",
            n / 65536,
            (n / 256) % 256,
            n % 256,
            types[n % types.len()],
            n % 7,
            types[n % types.len()],
            10 + n % 50,
            n % 40
        ));
    }
    csv.into_bytes()
}

async fn server() -> (Running, tempfile::TempDir, Client) {
    let common::Bench {
        server,
        dir,
        admin: client,
        ..
    } = common::start_with(|config| config.max_body_bytes = 64 * 1024 * 1024).await;
    client
        .create_credential(&CreateCredentialRequest {
            name: "ro".into(),
            kind: CredentialKind::SnmpV2c,
            params: Default::default(),
            secrets: BTreeMap::from([("community".to_owned(), "public-ro".into())]),
            networks: Vec::new(),
        })
        .await
        .unwrap();
    (server, dir, client)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn summary(samples: &mut [Duration]) -> String {
    samples.sort();
    let at = |p: f64| ms(samples[((samples.len() as f64 - 1.0) * p).round() as usize]);
    format!(
        "p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        at(0.5),
        at(0.9),
        at(0.99),
        ms(*samples.last().unwrap())
    )
}

#[tokio::main]
async fn main() {
    let csv = plant_csv(NODES);
    println!(
        "inventory benchmark (HTTPS on loopback, release build, server and client in one process)"
    );
    println!("import file: {NODES} rows, {} KiB", csv.len() / 1024);

    let (mut plans, mut applies, mut reapplies) = (Vec::new(), Vec::new(), Vec::new());
    let mut last = None;
    for _ in 0..RUNS {
        let (server, dir, client) = server().await;
        let dry = ImportQuery {
            dry_run: true,
            ..Default::default()
        };
        let t = Instant::now();
        let plan = client.import_nodes(csv.clone(), false, &dry).await.unwrap();
        plans.push(t.elapsed());
        assert_eq!(plan.summary.create, NODES as u64);
        let t = Instant::now();
        let report = client
            .import_nodes(csv.clone(), false, &ImportQuery::default())
            .await
            .unwrap();
        applies.push(t.elapsed());
        assert!(report.applied);
        let upsert = ImportQuery {
            upsert: true,
            ..Default::default()
        };
        let t = Instant::now();
        let again = client
            .import_nodes(csv.clone(), false, &upsert)
            .await
            .unwrap();
        reapplies.push(t.elapsed());
        assert_eq!(again.summary.unchanged, NODES as u64);
        // Keep the last server for the listings; stop the others.
        if let Some((previous, _dir)) = last.replace((server, dir)) {
            previous.shutdown().await.unwrap();
        }
    }
    println!(
        "import {NODES} new nodes (one transaction), {RUNS} fresh servers: {}",
        summary(&mut applies)
    );
    println!(
        "dry run of the same file (plan only): {}",
        summary(&mut plans)
    );
    println!(
        "same file again with upsert (all unchanged): {}",
        summary(&mut reapplies)
    );

    let (server, _dir) = last.expect("at least one run");
    let anonymous = Client::new(&server.url(), server.fingerprint).unwrap();
    let session = anonymous.login("admin", "bench-password").await.unwrap();
    let client = anonymous.with_token(session.token);
    let queries: Vec<(&str, NodeQuery)> = vec![
        (
            "tag=line-3 (1,429 match, first page of 100)",
            NodeQuery {
                tag: Some("line-3".into()),
                ..Default::default()
            },
        ),
        (
            "q=10.0.3 text search on name/address (first page of 100)",
            NodeQuery {
                q: Some("10.0.3".into()),
                ..Default::default()
            },
        ),
        (
            "type=plc&sort=-address, limit 1000",
            NodeQuery {
                node_type: Some(NodeType::Plc),
                sort: Some("-address".into()),
                limit: Some(1000),
                ..Default::default()
            },
        ),
        (
            "status=discovering (all 10,000 match), limit 1000",
            NodeQuery {
                status: Some(NodeStatus::Discovering),
                limit: Some(1000),
                ..Default::default()
            },
        ),
    ];
    for (label, query) in queries {
        for _ in 0..10 {
            client.list_nodes(&query).await.unwrap();
        }
        let mut samples = Vec::with_capacity(LIST_REQUESTS);
        for _ in 0..LIST_REQUESTS {
            let t = Instant::now();
            client.list_nodes(&query).await.unwrap();
            samples.push(t.elapsed());
        }
        println!("GET /api/v1/nodes?{label}: {}", summary(&mut samples));
    }
    let mut samples = Vec::new();
    for _ in 0..10 {
        let t = Instant::now();
        let bytes = client.export_nodes(ExportFormat::Csv).await.unwrap();
        samples.push(t.elapsed());
        assert!(bytes.len() > 100_000);
    }
    println!(
        "GET /api/v1/nodes/export (CSV, {NODES} nodes): {}",
        summary(&mut samples)
    );
    server.shutdown().await.unwrap();
}
