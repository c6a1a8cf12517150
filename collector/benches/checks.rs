//! 1,000 TLS certificate checks on one collector: ten `openssl s_server` processes on loopback
//! (each its own process, so this one's CPU time is the collector's alone), 100 checks each,
//! every 30 s. Measures how long a round of 1,000 takes against the interval, the collector's
//! CPU time and resident memory over two rounds. Run with
//! `cargo bench -p plantwatch-collector --bench checks` (needs openssl).
#![allow(clippy::unwrap_used, clippy::expect_used)] // A benchmark fails loudly by design.

use std::time::{Duration, Instant};

use plantwatch_collector::sources::checks::Checker;
use plantwatch_shared::api::{CheckSpec, CollectorConfig, NodeType, Target, TargetCheck};
use plantwatch_shared::push::LineSender;
use plantwatch_testkit::tls::{self, LegacyServer, Pki};

const SERVERS: usize = 10;
const CHECKS: i64 = 1_000;
const INTERVAL_S: u32 = 30;
const ROUNDS: usize = 2;

#[tokio::main]
async fn main() {
    let pki = Pki::new();
    let leaf = pki.leaf(&["localhost"], tls::days(-1), tls::days(60));
    let servers: Vec<LegacyServer> = (0..SERVERS).map(|_| LegacyServer::modern(&leaf)).collect();
    let targets = (0..CHECKS)
        .map(|id| {
            let server = &servers[usize::try_from(id).unwrap() % SERVERS];
            let mut spec: CheckSpec = format!("tls:{}@localhost", server.address.port())
                .parse()
                .unwrap();
            spec.interval_s = Some(INTERVAL_S);
            Target {
                node_id: id + 1,
                name: format!("hmi-{id}"),
                address: "127.0.0.1".into(),
                node_type: NodeType::Other,
                template: None,
                interval_s: 60,
                credential_ids: Vec::new(),
                checks: vec![TargetCheck { id: id + 1, spec }],
                modbus_unit: None,
                vsphere: None,
            }
        })
        .collect();
    let config = CollectorConfig {
        collector_id: 1,
        credentials: Vec::new(),
        targets,
        ..CollectorConfig::default()
    };
    let (lines, mut received) = LineSender::channel(4096);
    tokio::spawn(async move { while received.recv().await.is_some() {} });
    let (cpu_before, rss_before, _) = plantwatch_testkit::usage();
    let (mut checker, mut findings) = Checker::new(
        lines,
        plantwatch_collector::sources::checks::tls::system_roots(),
        true,
    );
    let started = Instant::now();
    checker.apply(&config);
    println!(
        "{CHECKS} tls checks every {INTERVAL_S} s against {SERVERS} openssl s_server processes on loopback"
    );
    for round in 1..=ROUNDS {
        let mut seen = 0;
        let mut ok = 0;
        let mut first = None;
        while seen < CHECKS {
            let finding = tokio::time::timeout(Duration::from_secs(120), findings.recv())
                .await
                .expect("a round took over 2 minutes")
                .unwrap();
            first.get_or_insert_with(|| started.elapsed());
            seen += 1;
            ok += i64::from(finding.error.is_none());
        }
        let (first, last) = (first.unwrap_or_default(), started.elapsed());
        let (cpu, rss, peak) = plantwatch_testkit::usage();
        println!(
            "round {round}: {seen} findings ({ok} with a certificate) from {:.1} s to {:.1} s after start: \
             {:.1} s of the {INTERVAL_S} s interval",
            first.as_secs_f64(),
            last.as_secs_f64(),
            (last - first).as_secs_f64()
        );
        println!(
            "  collector CPU {:.2} s so far ({:.2} ms a check); resident {:.1} MiB (before {:.1}, peak {:.1})",
            cpu - cpu_before,
            (cpu - cpu_before) * 1000.0 / (CHECKS as f64 * round as f64),
            rss as f64 / 1024.0,
            rss_before as f64 / 1024.0,
            peak as f64 / 1024.0
        );
    }
    checker.stop();
}
