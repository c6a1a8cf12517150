//! One vSphere poll of a large inventory: govmomi's vCenter simulator (a separate process, so
//! the CPU and memory figures are the collector's alone) with 5,000 VMs on 4 hosts.
//! 1. The inventory alone (container view, property collector in pages of 500): time.
//! 2. A whole poll as the collector runs it: inventory and the latest performance sample of the
//!    hosts and 5,000 VMs (QueryPerf, 250 entities a call, two in flight), then the lines
//!    written for 5,004 nodes: time, CPU, memory, bytes written.
//!
//! Run with `cargo bench -p plantwatch-collector --bench vsphere`.
#![allow(clippy::unwrap_used, clippy::expect_used)] // A benchmark fails loudly by design.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use plantwatch_collector::sources::vsphere::{Endpoint, Session, poll, read, sdk_url, write};
use plantwatch_shared::Secret;
use plantwatch_shared::lineproto::Writer;
use plantwatch_testkit::vcsim::{Model, PASSWORD, USER, Vcsim};

const RUNS: usize = 5;

fn p50_max(mut times: Vec<Duration>) -> (Duration, Duration) {
    times.sort();
    (times[times.len() / 2], times[times.len() - 1])
}

fn main() {
    let started = Instant::now();
    // 2,500 VMs in each of the two root resource pools (the standalone host's, the cluster's).
    let sim = Vcsim::start(&Model {
        vms: 2_500,
        ..Model::default()
    });
    println!(
        "simulator with 5,000 VMs up in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let session = Session::new(Endpoint {
            url: sdk_url(&sim.address),
            username: USER.into(),
            password: Secret::new(PASSWORD),
            pin: Some(sim.fingerprint.parse().unwrap()),
            timeout: Duration::from_secs(120),
        })
        .unwrap();
        session.ensure_login().await.unwrap();

        let mut inventory_times = Vec::new();
        for _ in 0..RUNS {
            let at = Instant::now();
            let reading = read(&session, false).await.unwrap();
            inventory_times.push(at.elapsed());
            assert_eq!(reading.inventory.vms.len(), 5_000);
        }
        let (p50, max) = p50_max(inventory_times);
        println!("inventory only (5,000 VMs, 4 hosts, 1 datastore): p50 {p50:?}, max {max:?} over {RUNS}");

        let (cpu_before, _, _) = plantwatch_testkit::usage();
        let mut poll_times = Vec::new();
        let mut bytes = 0;
        let mut nodes: HashMap<String, i64> = HashMap::new();
        for _ in 0..RUNS {
            let at = Instant::now();
            let reading = poll(&session, true).await.unwrap();
            if nodes.is_empty() {
                nodes = reading
                    .inventory
                    .hosts
                    .iter()
                    .map(|h| &h.moref)
                    .chain(reading.inventory.vms.iter().map(|v| &v.moref))
                    .enumerate()
                    .map(|(i, m)| (m.clone(), i as i64 + 10))
                    .collect();
            }
            let mut out = Writer::new();
            write(&reading, 1, &nodes, 0.0, 0, &mut out);
            poll_times.push(at.elapsed());
            bytes = out.as_str().len();
            assert_eq!(reading.perf.len(), 5_004, "every host's and VM's sample");
        }
        let (cpu_after, rss, peak) = plantwatch_testkit::usage();
        let (p50, max) = p50_max(poll_times);
        println!("whole poll (inventory + QueryPerf of 5,004 entities + lines): p50 {p50:?}, max {max:?} over {RUNS}");
        println!(
            "collector CPU per poll: {:.2} s; resident {:.1} MiB (peak {:.1} MiB); {:.1} KiB of lines a poll",
            (cpu_after - cpu_before) / RUNS as f64,
            rss as f64 / 1024.0,
            peak as f64 / 1024.0,
            bytes as f64 / 1024.0
        );
    });
}
