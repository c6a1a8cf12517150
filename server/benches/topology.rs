//! Link resolution: 5,000 devices whose neighbour tables hold 50,000 rows (a leaf–spine plant:
//! every access switch reports its two uplinks and its neighbours on the floor, the cores
//! report their side), resolved into links and unmanaged neighbours as `GET /topology` does.
//! Run with `cargo bench -p plantwatch-server --bench topology`.
#![allow(clippy::unwrap_used, clippy::expect_used)] // A benchmark fails loudly by design.

use std::time::{Duration, Instant};

use plantwatch_server::db::topology::{Identity, StoredRow};
use plantwatch_server::topology::resolve;
use plantwatch_shared::api::{NeighbourProtocol, NeighbourRow, NodeStatus, TopologyNode};

const DEVICES: usize = 5_000;
const ROWS: usize = 50_000;
const CORES: usize = 50;
const RUNS: usize = 5;

fn chassis(i: usize) -> String {
    format!(
        "02:00:00:{:02x}:{:02x}:{:02x}",
        i >> 16,
        (i >> 8) & 255,
        i & 255
    )
}

fn main() {
    let nodes: Vec<TopologyNode> = (0..DEVICES)
        .map(|i| TopologyNode {
            id: i as i64 + 1,
            name: format!("sw-{i:05}"),
            address: format!("10.{}.{}.{}", i >> 16, (i >> 8) & 255, i & 255),
            health: NodeStatus::Healthy,
            parent_id: None,
        })
        .collect();
    let identities: Vec<Identity> = (0..DEVICES)
        .map(|i| Identity {
            node_id: i as i64 + 1,
            chassis_id: Some(chassis(i)),
            sys_name: Some(format!("sw-{i:05}.plant.local")),
            walked_at: 1_000,
        })
        .collect();
    // Each access switch: two uplinks to cores (by chassis id), a few peers by name, the rest
    // unmanaged devices (phones, cameras); the cores report their side of every uplink.
    let mut rows = Vec::with_capacity(ROWS);
    let row =
        |node: usize, port: usize, chassis_id: Option<String>, name: Option<String>| StoredRow {
            node_id: node as i64 + 1,
            row: NeighbourRow {
                protocol: NeighbourProtocol::Lldp,
                local_port: format!("Gi1/0/{port}"),
                chassis_id,
                port: Some(format!("Te1/1/{}", port % 4)),
                port_descr: None,
                sys_name: name,
                address: None,
                platform: None,
            },
            first_seen: 900,
            last_seen: 1_000,
        };
    let mut i = 0;
    while rows.len() < ROWS {
        let node = CORES + i % (DEVICES - CORES);
        let port = i / (DEVICES - CORES);
        let core = (node + port) % CORES;
        match port {
            0 | 1 => {
                rows.push(row(node, 49 + port, Some(chassis(core)), None));
                rows.push(row(core, node, Some(chassis(node)), None));
            }
            2..=4 => rows.push(row(node, port, None, Some(format!("sw-{:05}", node + 1)))),
            _ => rows.push(row(
                node,
                port,
                Some(format!("0a:{:010x}", i)),
                Some(format!("cam-{i}")),
            )),
        }
        i += 1;
    }
    rows.truncate(ROWS);
    let mut times = Vec::new();
    let mut links = 0;
    let mut unmanaged = 0;
    let (_, rss_before, _) = plantwatch_testkit::usage();
    let cpu_before = plantwatch_testkit::usage().0;
    for _ in 0..RUNS {
        let started = Instant::now();
        let map = resolve(nodes.clone(), &identities, &rows);
        times.push(started.elapsed());
        links = map.links.len();
        unmanaged = map.unmanaged.len();
    }
    let (cpu_after, _, peak) = plantwatch_testkit::usage();
    times.sort();
    let median: Duration = times[RUNS / 2];
    println!(
        "topology: {DEVICES} devices, {ROWS} neighbour rows → {links} links, {unmanaged} unmanaged neighbours"
    );
    println!(
        "  resolution, median of {RUNS}: {:.0} ms ({:.2} µs a row, {:.0} ms CPU a run); resident {:.0} MiB with the rows loaded, peak {:.0} MiB",
        median.as_secs_f64() * 1e3,
        median.as_secs_f64() * 1e6 / ROWS as f64,
        (cpu_after - cpu_before) * 1e3 / RUNS as f64,
        rss_before as f64 / 1024.0,
        peak as f64 / 1024.0,
    );
}
