//! A vCenter's inventory made nodes (`db::vsphere::sync`, what every vCenter poll's report runs
//! on the server): 4 hosts and 5,000 VMs into a fresh database (every node created), the same
//! again (nothing changes: the steady state, every 300 s), then with 100 VMs renamed and 100
//! gone. One transaction each, as the API runs it.
//! Run with `cargo bench -p plantwatch-server --bench vsphere`.
#![allow(clippy::unwrap_used, clippy::expect_used)] // A benchmark fails loudly by design.

use std::time::{Duration, Instant};

use plantwatch_server::db::{Db, vsphere};
use plantwatch_shared::api::vsphere::{VsphereHost, VsphereInventory, VsphereVm};

const VMS: usize = 5_000;

fn inventory() -> VsphereInventory {
    let hosts = (0..4)
        .map(|h| VsphereHost {
            moref: format!("host-{h}"),
            name: format!("esx{h:02}.plant.local"),
            datacenter: Some("Plant A".into()),
            cluster: Some("Production".into()),
            connection_state: "connected".into(),
            power_state: "poweredOn".into(),
            maintenance: false,
        })
        .collect();
    let vms = (0..VMS)
        .map(|v| VsphereVm {
            moref: format!("vm-{v}"),
            name: format!("scada-{v:05}"),
            host: Some(format!("host-{}", v % 4)),
            datacenter: Some("Plant A".into()),
            cluster: Some("Production".into()),
            power_state: "poweredOn".into(),
            ip: Some(format!("10.20.{}.{}", v / 250, v % 250 + 1)),
            guest_os: Some("Microsoft Windows Server 2019 (64-bit)".into()),
        })
        .collect();
    VsphereInventory {
        about: "VMware vCenter Server 8.0.2".into(),
        hosts,
        vms,
        datastores: Vec::new(),
    }
}

fn timed(db: &Db, inventory: &VsphereInventory) -> (Duration, (u32, u32, u32)) {
    let mut conn = db.get().unwrap();
    let started = Instant::now();
    let tx = conn.transaction().unwrap();
    let sync = vsphere::sync(&tx, 1, "vc01", 5, inventory, 1_000).unwrap();
    tx.commit().unwrap();
    (started.elapsed(), (sync.created, sync.renamed, sync.gone))
}

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(&dir.path().join("plantwatch.db")).unwrap();
    db.get()
        .unwrap()
        .execute_batch(
            "INSERT INTO remote_components (id, kind, name, machine_id, api_key_hash, created_at)
                 VALUES (5, 'collector', 'plant-a', 'm', 'h', 0);
             INSERT INTO nodes (id, name, address, node_type, collector_id, created_at, updated_at)
                 VALUES (1, 'vc01', 'vc01.plant.local', 'vcenter', 5, 0, 0);",
        )
        .unwrap();
    let mut inventory = inventory();
    let json = serde_json::to_vec(&inventory).unwrap().len();
    println!(
        "inventory of 4 hosts and {VMS} VMs: {:.2} MiB of JSON",
        json as f64 / 1048576.0
    );
    let (first, counts) = timed(&db, &inventory);
    println!("first sync (every node created): {first:?} {counts:?}");
    let mut steady = Vec::new();
    for _ in 0..5 {
        let (took, counts) = timed(&db, &inventory);
        assert_eq!(counts, (0, 0, 0));
        steady.push(took);
    }
    steady.sort();
    println!(
        "unchanged inventory: p50 {:?}, max {:?} over 5",
        steady[2], steady[4]
    );
    for vm in inventory.vms.iter_mut().take(100) {
        vm.name.push_str("-new");
    }
    inventory.vms.truncate(VMS - 100);
    let (changed, counts) = timed(&db, &inventory);
    assert_eq!(counts, (0, 100, 100));
    println!("100 renamed and 100 gone: {changed:?}");
}
