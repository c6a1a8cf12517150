//! The poller against a real vSphere API: govmomi's simulator (testkit's `Vcsim`).

use std::time::Duration;

use plantwatch_shared::{Fingerprint, Secret};
use plantwatch_testkit::vcsim::{Model, PASSWORD, USER, Vcsim};

use super::*;

fn session(sim: &Vcsim, password: &str, pin: Option<&str>) -> Session {
    Session::new(Endpoint {
        url: sdk_url(&sim.address),
        username: USER.to_owned(),
        password: Secret::new(password),
        pin: pin.map(|p| p.parse::<Fingerprint>().unwrap()),
        timeout: Duration::from_secs(10),
    })
    .unwrap()
}

fn pinned(sim: &Vcsim) -> Session {
    session(sim, PASSWORD, Some(&sim.fingerprint))
}

#[tokio::test]
async fn the_inventory_and_performance_match_the_simulator() {
    let sim = Vcsim::start(&Model::default());
    let reading = poll(&pinned(&sim), true).await.unwrap();
    let inventory = &reading.inventory;
    assert!(inventory.about.contains("VMware"), "{}", inventory.about);
    // One datacenter: a cluster of three hosts and one standalone host.
    let mut hosts: Vec<_> = inventory
        .hosts
        .iter()
        .map(|h| {
            (
                h.name.as_str(),
                h.cluster.as_deref(),
                h.datacenter.as_deref(),
            )
        })
        .collect();
    hosts.sort();
    assert_eq!(
        hosts,
        [
            ("DC0_C0_H0", Some("DC0_C0"), Some("DC0")),
            ("DC0_C0_H1", Some("DC0_C0"), Some("DC0")),
            ("DC0_C0_H2", Some("DC0_C0"), Some("DC0")),
            ("DC0_H0", None, Some("DC0")),
        ]
    );
    assert!(
        inventory
            .hosts
            .iter()
            .all(|h| h.connection_state == "connected"
                && h.power_state == "poweredOn"
                && !h.maintenance)
    );
    // Two VMs in each of the two root resource pools (the host's and the cluster's).
    assert_eq!(inventory.vms.len(), 4);
    for vm in &inventory.vms {
        assert_eq!(vm.power_state, "poweredOn", "{vm:?}");
        let host = vm.host.as_deref().expect("a VM runs on a host");
        assert!(inventory.hosts.iter().any(|h| h.moref == host), "{vm:?}");
        assert_eq!(vm.datacenter.as_deref(), Some("DC0"));
        assert!(vm.moref.starts_with("vm-"), "{vm:?}");
    }
    assert_eq!(inventory.datastores.len(), 1);
    let store = &inventory.datastores[0];
    assert_eq!(store.name, "LocalDS_0");
    assert!(
        store.accessible && store.capacity_bytes > 0 && store.free_bytes <= store.capacity_bytes
    );
    // The latest real-time sample of every host and VM.
    for moref in inventory
        .hosts
        .iter()
        .map(|h| &h.moref)
        .chain(inventory.vms.iter().map(|v| &v.moref))
    {
        let perf = reading
            .perf
            .get(moref)
            .unwrap_or_else(|| panic!("no perf for {moref}"));
        let cpu = perf.cpu_pct.expect("cpu");
        let memory = perf.memory_pct.expect("memory");
        assert!(
            (0.0..=100.0).contains(&cpu) && (0.0..=100.0).contains(&memory),
            "{perf:?}"
        );
        assert!(
            perf.disk_bytes_per_s.is_some() && perf.net_bytes_per_s.is_some(),
            "{perf:?}"
        );
    }

    // Written: the vCenter's own line and its datastore's; each host's and VM's on its node.
    let nodes: HashMap<String, i64> = inventory
        .hosts
        .iter()
        .map(|h| &h.moref)
        .chain(inventory.vms.iter().map(|v| &v.moref))
        .enumerate()
        .map(|(i, moref)| (moref.clone(), 100 + i as i64))
        .collect();
    let mut out = Writer::new();
    write(&reading, 7, &nodes, 12.5, 1_000, &mut out);
    let text = out.as_str().to_owned();
    assert!(text.contains("vsphere,node_id=7 up=1.0,poll_ms=12.5,hosts=4.0,vms=4.0,vms_powered_on=4.0,datastores=1.0 "), "{text}");
    assert!(
        text.contains("vsphere_datastore,node_id=7,datastore=LocalDS_0 capacity_bytes="),
        "{text}"
    );
    assert!(text.contains("vsphere_host,node_id=100 connected=1.0,powered_on=1.0,maintenance=0.0,disk_bytes_per_s="), "{text}");
    assert_eq!(text.matches("vsphere_vm,node_id=").count(), 4, "{text}");
    assert_eq!(text.matches("cpu,node_id=").count(), 8, "{text}");
    assert_eq!(text.matches("memory,node_id=").count(), 8, "{text}");
}

#[tokio::test]
async fn a_wrong_password_is_one_clear_error() {
    let sim = Vcsim::start(&Model::default());
    let error = poll(
        &session(&sim, "not-the-password", Some(&sim.fingerprint)),
        true,
    )
    .await
    .unwrap_err();
    assert_eq!(error, SoapError::InvalidLogin(USER.to_owned()));
    assert_eq!(
        error.to_string(),
        "the vCenter refused the login for \"plant\": wrong user name or password"
    );
    assert!(!error.to_string().contains("not-the-password"));
}

#[tokio::test]
async fn a_certificate_neither_pinned_nor_trusted_is_refused() {
    let sim = Vcsim::start(&Model::default());
    // Another certificate's fingerprint.
    let other = "SHA256:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF";
    for session in [
        session(&sim, PASSWORD, Some(other)),
        session(&sim, PASSWORD, None),
    ] {
        match poll(&session, true).await {
            Err(SoapError::Transport(text)) => assert!(
                text.contains("certificate") || text.contains("Certificate"),
                "{text}"
            ),
            other => panic!("{other:?}"),
        }
    }
}

#[tokio::test]
async fn an_expired_session_is_renewed() {
    let sim = Vcsim::start(&Model {
        session_idle: Some(Duration::from_secs(3)),
        ..Model::default()
    });
    let session = pinned(&sim);
    poll(&session, false).await.unwrap();
    // Idle past the timeout and the simulator's next sweep (it sweeps every timeout).
    tokio::time::sleep(Duration::from_secs(7)).await;
    // The vCenter has dropped the session: a read alone is refused…
    assert_eq!(
        read(&session, false).await.unwrap_err(),
        SoapError::NotAuthenticated
    );
    // …and a poll logs in again.
    let reading = poll(&session, false).await.unwrap();
    assert_eq!(reading.inventory.hosts.len(), 4);
}

#[tokio::test]
async fn a_restarted_vcenter_is_polled_again() {
    let sim = Vcsim::start(&Model::default());
    let session = pinned(&sim);
    poll(&session, false).await.unwrap();
    let address = sim.kill();
    assert!(matches!(
        poll(&session, false).await,
        Err(SoapError::Transport(_))
    ));
    let sim = Vcsim::start_on(&address, &Model::default());
    let reading = poll(&session, false).await.unwrap();
    assert_eq!(reading.inventory.vms.len(), 4);
    drop(sim);
}

#[tokio::test]
async fn thousands_of_vms_are_read_page_by_page() {
    // 1,500 VMs in each root pool (the standalone host's and the cluster's): 3,000, six pages.
    let sim = Vcsim::start(&Model {
        vms: 1_500,
        ..Model::default()
    });
    let reading = poll(&pinned(&sim), true).await.unwrap();
    assert_eq!(reading.inventory.vms.len(), 3_000);
    let mut morefs: Vec<_> = reading.inventory.vms.iter().map(|v| &v.moref).collect();
    morefs.sort();
    morefs.dedup();
    assert_eq!(morefs.len(), 3_000, "every VM once");
    assert_eq!(
        reading.perf.len(),
        3_004,
        "every powered-on VM's and host's sample"
    );
}
