//! Discovery on a simulated plant /24, in network namespaces this benchmark builds (root): 100
//! live hosts, the first 50 answering SNMP with real-device recordings (snmpsim), the rest
//! ping only, every other address silent. Measured in the same run, median of 3 rounds:
//!
//! - plantwatch's sweep alone (ICMP; ICMP with the TCP fallback) against `nmap -sn` and
//!   `fping`, as addresses per second;
//! - plantwatch's full discovery (sweep + SNMP probe of the system group + fingerprint)
//!   against `nmap -sn` followed by `snmpget` of the same six OIDs on every live host (64 in
//!   parallel).
//!
//! `cargo bench -p plantwatch-collector --bench discovery` (needs root, nmap, fping, snmpget,
//! snmpsim).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::collections::BTreeSet;
use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

use plantwatch_collector::discovery::scan::{self, Event};
use plantwatch_collector::sources::icmp::Icmp;
use plantwatch_shared::api::{
    ClaimedJob, CredentialKind, CredentialParams, ScanOptions, TargetCredential, TemplateDef,
};
use plantwatch_testkit::plantnet::{PLANT_SNMP, PlantNet, SnmpDevice, rerun_inside};

const SUBNET: &str = "198.18.0.0/24";
/// The scanner itself.
const SCANNER: &str = "198.18.0.1";
const SNMP_HOSTS: usize = 50;
const LIVE_HOSTS: usize = 100;
const ROUNDS: usize = 3;
const OIDS: [&str; 6] = [
    "1.3.6.1.2.1.1.1.0",
    "1.3.6.1.2.1.1.2.0",
    "1.3.6.1.2.1.1.3.0",
    "1.3.6.1.2.1.1.4.0",
    "1.3.6.1.2.1.1.5.0",
    "1.3.6.1.2.1.1.6.0",
];

fn address(i: usize) -> String {
    format!("198.18.0.{}", 10 + i)
}

fn plant() -> PlantNet {
    let snmp: Vec<SnmpDevice<String>> = (0..SNMP_HOSTS)
        .map(|i| {
            let model = &PLANT_SNMP[i % (PLANT_SNMP.len() - 1)];
            SnmpDevice {
                address: address(i),
                recording: model.recording,
                community: "public",
                template: model.template,
            }
        })
        .collect();
    let ping: Vec<String> = (SNMP_HOSTS..LIVE_HOSTS).map(address).collect();
    PlantNet::with(&snmp, &ping)
}

fn templates() -> Vec<TemplateDef> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../server/templates");
    std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| {
            let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
            toml::from_str::<TemplateDef>(&text).unwrap()
        })
        .filter(|t| !t.fingerprints.is_empty())
        .collect()
}

struct Outcome {
    seconds: f64,
    hosts: BTreeSet<String>,
    identified: usize,
}

async fn plantwatch(options: ScanOptions, icmp: &Option<Arc<Icmp>>) -> Outcome {
    let credential = TargetCredential {
        id: 1,
        name: "public".into(),
        kind: CredentialKind::SnmpV2c,
        params: CredentialParams::default(),
        secrets: [("community".to_owned(), "public".into())].into(),
        networks: Vec::new(),
    };
    let job = ClaimedJob {
        id: 1,
        targets: vec![SUBNET.into()],
        exclusions: vec![SCANNER.into()],
        options,
        credentials: vec![credential],
        templates: templates(),
        resume_at: 0,
    };
    let (events, mut received) = tokio::sync::mpsc::channel(1_024);
    let started = Instant::now();
    let scan = tokio::spawn(scan::run(job, icmp.clone(), events));
    let mut hosts = BTreeSet::new();
    let mut identified = 0;
    while let Some(Event::Scanned { found, .. }) = received.recv().await {
        if let Some(found) = found {
            identified += usize::from(found.template.is_some());
            hosts.insert(found.address);
        }
    }
    scan.await.unwrap().unwrap();
    Outcome {
        seconds: started.elapsed().as_secs_f64(),
        hosts,
        identified,
    }
}

fn timed(command: &mut Command) -> (f64, String) {
    let started = Instant::now();
    let output = command.output().unwrap();
    let seconds = started.elapsed().as_secs_f64();
    assert!(
        output.status.success() || !output.stdout.is_empty(),
        "{command:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    (
        seconds,
        String::from_utf8_lossy(&output.stdout).into_owned(),
    )
}

/// `nmap -sn`: the seconds and the live hosts it reports.
fn nmap() -> (f64, BTreeSet<String>) {
    let (seconds, out) =
        timed(Command::new("nmap").args(["-sn", "-n", SUBNET, "--exclude", SCANNER]));
    let hosts = out
        .lines()
        .filter_map(|l| l.strip_prefix("Nmap scan report for "))
        .map(|a| a.trim().to_owned())
        .collect();
    (seconds, hosts)
}

/// `snmpget` of the six OIDs on every host, 64 at a time; the seconds and how many answered.
fn snmpget(hosts: &BTreeSet<String>) -> (f64, usize) {
    let list: String = hosts.iter().map(|h| format!("{h}\n")).collect();
    let script = format!(
        "printf '%s' '{list}' | xargs -P 64 -I{{}} sh -c 'snmpget -v2c -c public -t 1 -r 1 -Oqv {{}} {} >/dev/null 2>&1 && echo {{}}' ",
        OIDS.join(" ")
    );
    let (seconds, out) = timed(Command::new("sh").args(["-c", &script]));
    (seconds, out.lines().count())
}

fn fping(extra: &[&str]) -> (f64, usize) {
    let (seconds, out) = timed(
        Command::new("fping")
            .args(["-a", "-q", "-g", SUBNET])
            .args(extra),
    );
    (seconds, out.lines().filter(|l| l.trim() != SCANNER).count())
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    if rerun_inside(plant, &args).is_none() {
        return;
    }
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let sockets = runtime.block_on(async { Icmp::open().ok().map(Arc::new) });
    let addresses = 253.0;
    let quiet = ScanOptions {
        reverse_dns: false,
        ..ScanOptions::default()
    };
    let sweep_icmp = ScanOptions {
        tcp_ports: vec![],
        snmp: false,
        ..quiet.clone()
    };
    let sweep_tcp = ScanOptions {
        snmp: false,
        ..quiet.clone()
    };
    let mut rows: Vec<(String, Vec<f64>, String)> = Vec::new();
    let mut record =
        |name: &str, seconds: f64, note: String| match rows.iter_mut().find(|r| r.0 == name) {
            Some(row) => {
                row.1.push(seconds);
                row.2 = note;
            }
            None => rows.push((name.to_owned(), vec![seconds], note)),
        };
    for round in 0..ROUNDS {
        let icmp = runtime.block_on(plantwatch(sweep_icmp.clone(), &sockets));
        assert_eq!(
            icmp.hosts.len(),
            LIVE_HOSTS,
            "round {round}: {:?}",
            icmp.hosts
        );
        record(
            "plantwatch sweep (ICMP)",
            icmp.seconds,
            format!("{} hosts", icmp.hosts.len()),
        );
        let tcp = runtime.block_on(plantwatch(sweep_tcp.clone(), &sockets));
        record(
            "plantwatch sweep (ICMP + TCP on 7 ports)",
            tcp.seconds,
            format!("{} hosts", tcp.hosts.len()),
        );
        let (seconds, found) = fping(&[]);
        record("fping -a -q -g", seconds, format!("{found} hosts"));
        let (seconds, found) = fping(&["-r", "1"]);
        record("fping -a -q -g -r 1", seconds, format!("{found} hosts"));
        let (nmap_s, nmap_hosts) = nmap();
        record("nmap -sn -n", nmap_s, format!("{} hosts", nmap_hosts.len()));
        let (snmp_s, answered) = snmpget(&nmap_hosts);
        record(
            "snmpget of 6 OIDs per live host (64 parallel)",
            snmp_s,
            format!("{answered} answered"),
        );
        record(
            "nmap -sn, then snmpget (the pair)",
            nmap_s + snmp_s,
            format!("{} hosts, {answered} SNMP", nmap_hosts.len()),
        );
        let full = runtime.block_on(plantwatch(quiet.clone(), &sockets));
        assert_eq!(full.hosts, icmp.hosts);
        assert_eq!(
            full.identified, SNMP_HOSTS,
            "every SNMP device fingerprinted"
        );
        record(
            "plantwatch full discovery (sweep + SNMP + fingerprint)",
            full.seconds,
            format!("{} hosts, {} identified", full.hosts.len(), full.identified),
        );
    }
    println!(
        "| what (253 addresses, {LIVE_HOSTS} live, {SNMP_HOSTS} SNMP) | median s | addresses/s | result |"
    );
    println!("|---|---:|---:|---|");
    for (name, seconds, note) in &rows {
        let m = median(seconds.clone());
        println!("| {name} | {m:.2} | {:.0} | {note} |", addresses / m);
    }
}
