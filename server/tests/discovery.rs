//! Discovery on a simulated plant network (`plantwatch_testkit::plantnet`): the real server,
//! its local collector and a remote `plantwatch-collector` process scan namespaces the test
//! builds, holding real-device SNMP recordings served by snmpsim, ping-only hosts, hosts that
//! answer TCP only, and silent addresses. Each test re-runs itself inside the scanning
//! namespace, which has no route out. Needs root (CI runs the tests as root).
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly by design.

mod common;

use plantwatch_shared::api::ErrorCode;
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use common::{TestApp, community, spawn_app_with};
use plantwatch_shared::Client;
use plantwatch_shared::api::{
    AuthProtocol, CreateCredentialRequest, CredentialKind, CredentialParams, Device, DeviceQuery,
    DeviceSelection, DeviceStatus, FoundBy, Job, JobSpec, JobState, PrivProtocol, ScanOptions,
};
use plantwatch_testkit::plantnet::{
    self, FAR_PING_ONLY, FAR_SNMP, PLANT_PING_ONLY, PLANT_SNMP, PlantNet, SERVER_ADDRESS, TCP_ONLY,
};

const SERVER_BIN: &str = env!("CARGO_BIN_EXE_plantwatch-server");

/// The server on the scan namespace's link to the remote collector, polling and scanning.
fn plant_config(config: &mut plantwatch_server::config::Config, listen: std::net::SocketAddr) {
    config.listen = listen;
    // Imported nodes are polled: the plant's devices are reachable only from here.
    config.local_polling = true;
    config.local_discovery = true;
    config.push_interval_secs = 1;
}

async fn plant_server() -> TestApp {
    spawn_app_with(|config| plant_config(config, format!("{SERVER_ADDRESS}:0").parse().unwrap()))
        .await
}

async fn credentials(admin: &Client) {
    admin
        .create_credential(&community("plant-public", "public"))
        .await
        .unwrap();
    admin
        .create_credential(&CreateCredentialRequest {
            name: "plant-v3".into(),
            kind: CredentialKind::SnmpV3,
            params: CredentialParams {
                username: Some("simulator".into()),
                auth_protocol: Some(AuthProtocol::Md5),
                priv_protocol: Some(PrivProtocol::Des),
                context: Some("plant-v3".into()),
                domain: None,
                fingerprint: None,
            },
            secrets: BTreeMap::from([
                ("auth_password".to_owned(), "auctoritas".into()),
                ("priv_password".to_owned(), "privatus".into()),
            ]),
            networks: Vec::new(),
        })
        .await
        .unwrap();
}

async fn wait_finished(client: &Client, id: i64, limit: Duration) -> Job {
    let deadline = Instant::now() + limit;
    loop {
        let job = client.get_job(id).await.unwrap();
        if job.state.is_finished() {
            return job;
        }
        assert!(
            Instant::now() < deadline,
            "job {id} did not finish: {job:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn all_devices(client: &Client, id: i64) -> BTreeMap<String, Device> {
    let query = DeviceQuery {
        limit: Some(500),
        ..DeviceQuery::default()
    };
    let page = client.job_devices(id, &query).await.unwrap();
    assert_eq!(page.total as usize, page.items.len());
    page.items
        .into_iter()
        .map(|d| (d.address.clone(), d))
        .collect()
}

/// About four addresses a second, one at a time, ICMP only: a scan a test can step into.
fn slow() -> ScanOptions {
    ScanOptions {
        concurrency: 1,
        packets_per_second: 8,
        tcp_ports: vec![],
        retries: 0,
        timeout_ms: 200,
        reverse_dns: false,
        ..ScanOptions::default()
    }
}

fn spec(targets: &[&str], credentials: &[&str]) -> JobSpec {
    JobSpec {
        credentials: credentials.iter().map(|c| (*c).to_owned()).collect(),
        ..JobSpec::new(targets.iter().map(|t| (*t).to_owned()).collect())
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_plant_is_swept_probed_fingerprinted_and_imported() {
    if plantnet::run_inside("a_plant_is_swept_probed_fingerprinted_and_imported").is_none() {
        return;
    }
    let app = plant_server().await;
    let admin = app.admin().await;
    credentials(&admin).await;

    // The scanner's own address is excluded.
    let job = admin
        .create_job(&JobSpec {
            exclusions: vec!["198.18.0.1".into()],
            ..spec(
                &["198.18.0.0/24", "198.18.3.8/29"],
                &["plant-public", "plant-v3"],
            )
        })
        .await
        .unwrap();
    assert_eq!(job.total, 253 + 6);
    assert_eq!(job.collector, "local");
    let job = wait_finished(&admin, job.id, Duration::from_secs(120)).await;
    assert_eq!(job.state, JobState::Done, "{job:?}");
    assert_eq!(job.done, job.total);
    let devices = all_devices(&admin, job.id).await;

    // Every live host found, no silent address reported.
    let expected: BTreeSet<String> = PLANT_SNMP
        .iter()
        .map(|d| d.address)
        .chain(PLANT_PING_ONLY.iter().copied())
        .chain(TCP_ONLY.iter().copied())
        .map(str::to_owned)
        .collect();
    let found: BTreeSet<String> = devices.keys().cloned().collect();
    assert_eq!(found, expected);
    assert_eq!(job.hosts_found, expected.len() as u64);
    assert_eq!(job.snmp_identified, PLANT_SNMP.len() as u64);

    // Each SNMP device fingerprinted to its template, with the credential that answered.
    for simulated in PLANT_SNMP {
        let device = &devices[simulated.address];
        assert_eq!(
            device.template.as_deref(),
            Some(simulated.template),
            "{device:?}"
        );
        assert_eq!(device.found_by, FoundBy::Icmp);
        assert!(
            device.sys_name.is_some() && device.sys_descr.is_some(),
            "{device:?}"
        );
        assert!(device.vendor.is_some(), "{device:?}");
        assert!(device.sys_uptime_s.is_some(), "{device:?}");
        let credential = if simulated.community == "plant-v3" {
            "plant-v3"
        } else {
            "plant-public"
        };
        assert_eq!(device.credential.as_deref(), Some(credential), "{device:?}");
        assert_eq!(device.status, DeviceStatus::New);
        assert!(device.node_id.is_none());
    }
    assert_eq!(devices["198.18.0.10"].vendor.as_deref(), Some("Cisco"));
    assert_eq!(
        devices["198.18.0.10"].dns_name.as_deref(),
        Some("core-switch.plant.example")
    );
    for address in PLANT_PING_ONLY {
        let device = &devices[*address];
        assert_eq!(device.found_by, FoundBy::Icmp);
        assert!(device.sys_object_id.is_none() && device.credential.is_none());
        assert!(device.rtt_ms.is_some_and(|ms| ms < 500.0));
    }
    assert_eq!(
        devices["198.18.0.30"].dns_name.as_deref(),
        Some("press-line-3.plant.example")
    );
    // A host that answered ping has its services asked too: the HMI's web console on 8443
    // is listed, and a certificate check proposed for it.
    let (tls_host, tls_port) = plantnet::TLS_PORT_HOST;
    assert_eq!(devices[tls_host].open_ports, vec![tls_port]);
    assert_eq!(
        devices[tls_host]
            .suggested_checks()
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>(),
        [format!("tls:{tls_port}")]
    );
    assert!(devices["198.18.0.30"].open_ports.is_empty());
    // Hosts dropping ICMP: found by TCP, the open Modbus port listed.
    assert_eq!(devices[TCP_ONLY[0]].found_by, FoundBy::Tcp);
    assert_eq!(devices[TCP_ONLY[0]].open_ports, vec![502]);
    assert_eq!(devices[TCP_ONLY[1]].found_by, FoundBy::Tcp);
    assert!(devices[TCP_ONLY[1]].open_ports.is_empty());

    // Import: nodes of the collector that found them, template and credential attached.
    let cisco = devices["198.18.0.10"].id;
    let ping = devices["198.18.0.31"].id;
    let selection = DeviceSelection {
        devices: vec![cisco, ping],
        all: false,
        tags: vec!["discovered".into()],
        no_checks: false,
    };
    let imported = admin.import_devices(job.id, &selection).await.unwrap();
    assert_eq!(imported.created.len(), 2, "{imported:?}");
    // Created in the order of the devices' ids, which the scan's concurrency decides.
    let node_of = |device: i64| {
        imported
            .created
            .iter()
            .find(|c| c.device_id == device)
            .unwrap()
            .node_id
    };
    let hmi = node_of(ping);
    let checks = admin.checks(hmi).await.unwrap().items;
    assert_eq!(checks.len(), 1, "{checks:?}");
    assert_eq!(
        checks[0].spec.to_string(),
        format!("tls:{}", plantnet::TLS_PORT_HOST.1)
    );
    assert!(imported.skipped.is_empty());
    let again = admin.import_devices(job.id, &selection).await.unwrap();
    assert!(again.created.is_empty());
    assert_eq!(again.skipped.len(), 2, "{again:?}");
    let node_id = node_of(cisco);
    let node = admin.get_node(node_id).await.unwrap();
    assert_eq!(node.name, devices["198.18.0.10"].sys_name.clone().unwrap());
    assert_eq!(node.address, "198.18.0.10");
    assert_eq!(node.template.as_deref(), Some("cisco-ios"));
    assert_eq!(node.collector.as_deref(), Some("local"));
    assert_eq!(node.node_type.as_str(), "network");
    assert_eq!(node.tags, vec!["discovered".to_owned()]);
    assert_eq!(node.credentials[0].name, "plant-public");
    let devices = all_devices(&admin, job.id).await;
    assert_eq!(devices["198.18.0.10"].status, DeviceStatus::Imported);
    assert_eq!(devices["198.18.0.10"].node_id, Some(node_id));

    // The collector then polls the imported node over SNMP.
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let series = admin
            .series(&plantwatch_shared::api::SeriesQuery {
                node_id: Some(node_id),
                q: Some("interface".into()),
                limit: Some(10),
            })
            .await
            .unwrap();
        if series.total > 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the imported node was not polled"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    // Dismiss one; a re-scan remembers it, and knows what it saw before.
    let dismissed = admin
        .dismiss_devices(
            job.id,
            &DeviceSelection {
                devices: vec![devices["198.18.0.32"].id],
                ..DeviceSelection::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(dismissed.dismissed, 1);
    let rescan = admin
        .create_job(&spec(
            &["198.18.0.10-198.18.0.12", "198.18.0.30-198.18.0.34"],
            &["plant-public"],
        ))
        .await
        .unwrap();
    let rescan = wait_finished(&admin, rescan.id, Duration::from_secs(60)).await;
    assert_eq!(rescan.state, JobState::Done);
    let again = all_devices(&admin, rescan.id).await;
    assert_eq!(again.len(), 3 + 5);
    assert_eq!(again["198.18.0.32"].status, DeviceStatus::Dismissed);
    assert_eq!(again["198.18.0.33"].status, DeviceStatus::New);
    assert!(
        again
            .values()
            .all(|d| d.seen_before && d.changes.is_empty()),
        "{again:?}"
    );
    assert_eq!(again["198.18.0.10"].node_id, Some(node_id));
    let unmonitored = admin
        .job_devices(
            rescan.id,
            &DeviceQuery {
                unmonitored: Some(true),
                status: Some(DeviceStatus::New),
                ..DeviceQuery::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(unmonitored.total, 8 - 2 - 1);
    // An import of "all" skips what is monitored or dismissed.
    let all = admin
        .import_devices(
            rescan.id,
            &DeviceSelection {
                all: true,
                ..DeviceSelection::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(all.created.len(), 5, "{all:?}");

    // The same from the command line, as a script runs it.
    let cli_bin = plantwatch_testkit::binary_beside(SERVER_BIN, "plantwatch");
    let config = tempfile::tempdir().unwrap();
    let cli = |args: &[&str], stdin: &str| {
        let mut command = std::process::Command::new(&cli_bin);
        command
            .args(args)
            .env("XDG_CONFIG_HOME", config.path())
            .env_remove("PLANTWATCH_CONTEXT")
            .env_remove("PLANTWATCH_CLIENT_CONFIG");
        plantwatch_testkit::run_with_input(command, stdin)
    };
    let url = app.server.url();
    let fingerprint = app.server.fingerprint.unwrap().to_string();
    plantwatch_testkit::ok(&cli(
        &[
            "login",
            &url,
            "--user",
            "admin",
            "--password-stdin",
            "--fingerprint",
            &fingerprint,
        ],
        &format!("{}\n", common::ADMIN_PASSWORD),
    ));
    let out = plantwatch_testkit::ok(&cli(
        &[
            "discovery",
            "run",
            "198.18.0.13-198.18.0.15",
            "--credential",
            "plant-public",
            "--no-dns",
            "--tcp-ports",
            "none",
            "--wait",
            "--output",
            "json",
        ],
        "",
    ));
    let document: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(document["job"]["state"], "done", "{out}");
    let templates: BTreeSet<&str> = document["devices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["template"].as_str().unwrap())
        .collect();
    assert_eq!(
        templates,
        BTreeSet::from(["paloalto-panos", "linux", "windows"])
    );
    let cli_job = document["job"]["id"].as_i64().unwrap().to_string();
    let listed = plantwatch_testkit::ok(&cli(&["discovery", "list"], ""));
    assert!(
        listed
            .lines()
            .any(|l| l.starts_with(&cli_job) && l.contains("done")),
        "{listed}"
    );
    let shown = plantwatch_testkit::ok(&cli(
        &["discovery", "show", &cli_job, "--search", "palo"],
        "",
    ));
    assert!(
        shown.contains("198.18.0.13") && !shown.contains("198.18.0.14"),
        "{shown}"
    );
    let firewall = document["devices"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["address"] == "198.18.0.13")
        .unwrap()["id"]
        .to_string();
    let out = plantwatch_testkit::ok(&cli(&["discovery", "import", &cli_job, &firewall], ""));
    assert!(out.contains("1 imported, 0 skipped"), "{out}");
    let again = cli(&["discovery", "import", &cli_job, &firewall], "");
    assert_eq!(again.status.code(), Some(1));
    assert!(plantwatch_testkit::stderr(&again).contains("nothing was imported"));
    let out = plantwatch_testkit::ok(&cli(&["discovery", "dismiss", &cli_job, "--all"], ""));
    assert!(out.contains("2 devices dismissed"), "{out}");
    let bad = cli(&["discovery", "run", "10.0.0.0/15"], "");
    assert_eq!(bad.status.code(), Some(1));
    assert!(plantwatch_testkit::stderr(&bad).contains("split the scan or force it"));

    // Cancel mid-scan: the collector stops and is free for the next job.
    let slow = admin
        .create_job(&JobSpec {
            options: ScanOptions {
                concurrency: 1,
                packets_per_second: 5,
                tcp_ports: vec![],
                reverse_dns: false,
                ..ScanOptions::default()
            },
            ..spec(&["198.18.0.0/24"], &[])
        })
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while admin.get_job(slow.id).await.unwrap().done < 2 {
        assert!(Instant::now() < deadline, "the slow job did not start");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let cancelled = admin.cancel_job(slow.id).await.unwrap();
    assert_eq!(cancelled.state, JobState::Cancelled);
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    let later = admin.get_job(slow.id).await.unwrap();
    assert_eq!(later.state, JobState::Cancelled);
    assert!(later.done < later.total, "{later:?}");
    let after = admin.get_job(slow.id).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    assert_eq!(admin.get_job(slow.id).await.unwrap().done, after.done);
    let next = admin
        .create_job(&spec(&["198.18.0.30"], &[]))
        .await
        .unwrap();
    assert_eq!(
        wait_finished(&admin, next.id, Duration::from_secs(30))
            .await
            .hosts_found,
        1
    );
    let refused = admin.cancel_job(next.id).await.unwrap_err();
    assert_eq!(refused.code(), Some(ErrorCode::JobFinished));

    // Oversized scans are refused.
    let too_big = admin
        .create_job(&spec(&["10.0.0.0/15"], &[]))
        .await
        .unwrap_err();
    assert_eq!(
        too_big.code(),
        Some(ErrorCode::TooManyAddresses),
        "{too_big}"
    );
    let never = admin
        .create_job(&JobSpec {
            force: true,
            ..spec(&["10.0.0.0/7"], &[])
        })
        .await
        .unwrap_err();
    assert_eq!(never.code(), Some(ErrorCode::TooManyAddresses));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_remote_collector_scans_what_the_server_cannot_reach_and_resumes_after_a_restart() {
    let name = "a_remote_collector_scans_what_the_server_cannot_reach_and_resumes_after_a_restart";
    let Some(prefix) = plantnet::run_inside(name) else {
        return;
    };
    let remote_ns = PlantNet::ns(&prefix, "remote");
    let app = plant_server().await;
    let admin = app.admin().await;
    credentials(&admin).await;
    let collector_bin = plantwatch_testkit::binary_beside(SERVER_BIN, "plantwatch-collector");
    let state = tempfile::tempdir().unwrap();
    let code = plantwatch_testkit::daemon::join_code(&admin).await;
    let enroll = {
        let mut command = plantwatch_testkit::daemon::daemon(&collector_bin, state.path());
        command.args([
            "enroll",
            "--name",
            "far-north",
            "--machine-id",
            "far-north-1",
        ]);
        plantnet::in_namespace(&remote_ns, &command)
    };
    let out = plantwatch_testkit::ok(&plantwatch_testkit::run_with_input(
        enroll,
        &format!("{code}\n"),
    ));
    let id: i64 = out.split_whitespace().nth(3).unwrap().parse().unwrap();
    admin.approve_component(id).await.unwrap();
    let start = |log: &std::path::Path| {
        let mut command = plantwatch_testkit::daemon::daemon(&collector_bin, state.path());
        command
            .arg("run")
            .env("PLANTWATCH_DISCOVERY_POLL_MS", "300");
        let log = std::fs::File::create(log).unwrap();
        plantnet::in_namespace(&remote_ns, &command)
            .stdout(std::process::Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap()
    };
    let logs = tempfile::tempdir().unwrap();
    let mut collector = start(&logs.path().join("1.log"));

    // The server's own collector has no route to the far plant.
    // The remote collector's own address (.1) is excluded.
    let far = |collector: Option<&str>| JobSpec {
        collector: collector.map(str::to_owned),
        exclusions: vec!["198.18.2.1".into()],
        ..spec(&["198.18.2.0/28"], &["plant-public"])
    };
    let local = admin.create_job(&far(None)).await.unwrap();
    let local = wait_finished(&admin, local.id, Duration::from_secs(60)).await;
    assert_eq!(local.state, JobState::Done);
    assert_eq!(local.hosts_found, 0, "{local:?}");

    // The remote collector reaches it.
    let remote = admin.create_job(&far(Some("far-north"))).await.unwrap();
    assert_eq!(remote.collector_id, id);
    let remote = wait_finished(&admin, remote.id, Duration::from_secs(60)).await;
    assert_eq!(remote.state, JobState::Done, "{remote:?}");
    let devices = all_devices(&admin, remote.id).await;
    let found: BTreeSet<&str> = devices.keys().map(String::as_str).collect();
    let expected: BTreeSet<&str> = FAR_SNMP
        .iter()
        .map(|d| d.address)
        .chain(FAR_PING_ONLY.iter().copied())
        .collect();
    assert_eq!(found, expected);
    let ups = &devices[FAR_SNMP[0].address];
    assert_eq!(ups.template.as_deref(), Some(FAR_SNMP[0].template));
    assert_eq!(ups.credential.as_deref(), Some("plant-public"));

    // Imported devices belong to the collector that found them.
    let imported = admin
        .import_devices(
            remote.id,
            &DeviceSelection {
                devices: vec![ups.id],
                ..DeviceSelection::default()
            },
        )
        .await
        .unwrap();
    let node = admin.get_node(imported.created[0].node_id).await.unwrap();
    assert_eq!(node.collector_id, Some(id));

    // The server goes away mid-scan: the collector scans on, keeps what it finds, and
    // delivers it once the server is back.
    let outage = admin
        .create_job(&JobSpec {
            collector: Some("far-north".into()),
            options: slow(),
            ..spec(&["198.18.2.2-198.18.2.20"], &["plant-public"])
        })
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while admin.get_job(outage.id).await.unwrap().done < 1 {
        assert!(Instant::now() < deadline, "the job did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let listen: std::net::SocketAddr = app
        .server
        .url()
        .trim_start_matches("https://")
        .parse()
        .unwrap();
    let TestApp { server, dir } = app;
    server.shutdown().await.unwrap();
    // Down while the scan passes .10 and .11 (about 4 addresses a second).
    tokio::time::sleep(Duration::from_secs(5)).await;
    let mut config = common::test_config(dir.path());
    plant_config(&mut config, listen);
    let server = plantwatch_server::server::start(config).await.unwrap();
    // Kept to the end: dropping it would stop the server.
    let _app = TestApp { server, dir };
    let outage = wait_finished(&admin, outage.id, Duration::from_secs(60)).await;
    assert_eq!(outage.state, JobState::Done, "{outage:?}");
    assert_eq!((outage.done, outage.total), (19, 19));
    let found: BTreeSet<String> = all_devices(&admin, outage.id).await.into_keys().collect();
    assert_eq!(
        found,
        BTreeSet::from(["198.18.2.10".to_owned(), "198.18.2.11".to_owned()])
    );

    // A collector killed mid-scan resumes the job where it stopped when it comes back.
    let slow = admin
        .create_job(&JobSpec {
            collector: Some("far-north".into()),
            options: slow(),
            exclusions: vec!["198.18.2.1".into()],
            ..spec(&["198.18.2.0/27"], &[])
        })
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while admin.get_job(slow.id).await.unwrap().done < 12 {
        assert!(Instant::now() < deadline, "the slow job did not progress");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    collector.kill().unwrap();
    collector.wait().unwrap();
    let stopped = admin.get_job(slow.id).await.unwrap();
    assert_eq!(stopped.state, JobState::Running, "{stopped:?}");
    let mut collector = start(&logs.path().join("2.log"));
    let slow = wait_finished(&admin, slow.id, Duration::from_secs(60)).await;
    assert_eq!(slow.state, JobState::Done, "{slow:?}");
    assert_eq!(slow.done, slow.total);
    assert_eq!(slow.hosts_found, 2);
    let log = std::fs::read_to_string(logs.path().join("2.log")).unwrap();
    let resumed = log
        .lines()
        .find(|l| l.contains("Discovery job started"))
        .unwrap_or_else(|| panic!("{log}"));
    let at: u64 = resumed
        .split("resume_at=")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{resumed}"));
    assert!(
        at >= 10 && at <= stopped.done,
        "resumed at {at}, stopped at {}",
        stopped.done
    );
    plantwatch_testkit::terminate(&mut collector);
}

/// A job document as JSON, for the role matrix.
/// A job for collector `west`, which no process runs: it stays queued, nothing is scanned.
fn on_west(targets: &[&str], credentials: &[&str]) -> JobSpec {
    JobSpec {
        collector: Some("west".into()),
        ..spec(targets, credentials)
    }
}

fn queued_job() -> String {
    serde_json::to_string(&on_west(&["192.0.2.1"], &[])).unwrap()
}

#[tokio::test]
async fn discovery_routes_check_roles_input_and_ownership() {
    use common::{keyed, register, token};
    use plantwatch_shared::api::{ComponentKind, Found, ResultBatch};
    use reqwest::Method;

    let app = common::spawn_app().await;
    let admin = app.admin().await;
    admin
        .create_credential(&community("plant-public", "public"))
        .await
        .unwrap();
    admin
        .create_credential(&CreateCredentialRequest {
            name: "shell".into(),
            kind: CredentialKind::Ssh,
            params: CredentialParams {
                username: Some("root".into()),
                ..CredentialParams::default()
            },
            secrets: BTreeMap::from([("password".to_owned(), "pw".into())]),
            networks: Vec::new(),
        })
        .await
        .unwrap();

    // This server's local collector does not scan (as in every test outside a namespace).
    let local = admin
        .create_job(&spec(&["127.0.0.1"], &[]))
        .await
        .unwrap_err();
    assert_eq!(local.code(), Some(ErrorCode::LocalDiscoveryOff));
    let enrollment = token(&admin, "plant").await;
    let west = register(&app, &enrollment, ComponentKind::Collector, "west", "w-1").await;
    admin.approve_component(west.component_id).await.unwrap();

    // Roles: anyone signed in reads; operators and admins scan, import and dismiss.
    let job = admin
        .create_job(&serde_json::from_str(&queued_job()).unwrap())
        .await
        .unwrap();
    let mut failures = Vec::new();
    let selection = r#"{"all": true}"#.to_owned();
    for (who, client) in app.callers(&admin).await {
        let (read, write, created) = match who {
            "anonymous" => (401, 401, 401),
            "viewer" => (200, 403, 403),
            _ => (200, 200, 201),
        };
        let jobs = "/api/v1/discovery/jobs";
        let one = format!("{jobs}/{}", job.id);
        for path in [jobs.to_owned(), one.clone(), format!("{one}/devices")] {
            app.expect_status(&mut failures, who, &client, Method::GET, &path, None, read)
                .await;
        }
        app.expect_status(
            &mut failures,
            who,
            &client,
            Method::POST,
            jobs,
            Some(queued_job()),
            created,
        )
        .await;
        for action in ["import", "dismiss"] {
            let path = format!("{one}/{action}");
            let body = Some(selection.clone());
            app.expect_status(
                &mut failures,
                who,
                &client,
                Method::POST,
                &path,
                body,
                write,
            )
            .await;
        }
        // Sessions are not collectors.
        let claim = "/api/v1/remote-collectors/1/discovery/claim";
        app.expect_status(&mut failures, who, &client, Method::POST, claim, None, 401)
            .await;
    }
    assert!(failures.is_empty(), "{failures:#?}");

    // Bad input is refused with the reason and the field.
    let refused = |spec: JobSpec| {
        let admin = admin.clone();
        async move { admin.create_job(&spec).await.unwrap_err() }
    };
    let error = refused(spec(&["10.0.0.300"], &[])).await;
    assert_eq!(error.code(), Some(ErrorCode::InvalidTargets));
    assert!(error.to_string().contains("10.0.0.300"), "{error}");
    assert_eq!(
        refused(spec(&[], &[])).await.code(),
        Some(ErrorCode::InvalidTargets)
    );
    let error = refused(spec(&["10.0.0.1/24"], &[])).await;
    assert!(error.to_string().contains("10.0.0.0/24"), "{error}");
    assert_eq!(
        refused(JobSpec {
            collector: Some("nowhere".into()),
            ..on_west(&["192.0.2.1"], &[])
        })
        .await
        .code(),
        Some(ErrorCode::UnknownCollector)
    );
    assert_eq!(
        refused(on_west(&["192.0.2.1"], &["missing"])).await.code(),
        Some(ErrorCode::UnknownCredential)
    );
    assert_eq!(
        refused(on_west(&["192.0.2.1"], &["shell"])).await.code(),
        Some(ErrorCode::InvalidCredentials)
    );
    let mut bad_options = on_west(&["192.0.2.1"], &[]);
    bad_options.options.concurrency = 0;
    assert_eq!(
        refused(bad_options).await.code(),
        Some(ErrorCode::InvalidOptions)
    );
    let mut too_often = on_west(&["192.0.2.1"], &[]);
    too_often.every_s = Some(10);
    assert_eq!(
        refused(too_often).await.code(),
        Some(ErrorCode::InvalidSchedule)
    );
    assert_eq!(
        admin.get_job(999_999).await.unwrap_err().code(),
        Some(ErrorCode::JobNotFound)
    );

    // Collectors: each claims and reports only its own jobs; secrets go to that one only.
    let north = register(&app, &enrollment, ComponentKind::Collector, "north", "n-1").await;
    let south = register(&app, &enrollment, ComponentKind::Collector, "south", "s-1").await;
    let pending = keyed(&app, &north)
        .claim_job(north.component_id)
        .await
        .unwrap_err();
    assert_eq!(pending.status(), Some(403));
    admin.approve_component(north.component_id).await.unwrap();
    admin.approve_component(south.component_id).await.unwrap();
    let (north_client, south_client) = (keyed(&app, &north), keyed(&app, &south));
    let job = admin
        .create_job(&JobSpec {
            collector: Some("north".into()),
            every_s: Some(3_600),
            ..spec(&["192.0.2.0/29"], &["plant-public"])
        })
        .await
        .unwrap();
    let stolen = south_client
        .claim_job(north.component_id)
        .await
        .unwrap_err();
    assert_eq!(stolen.status(), Some(403));
    assert!(
        south_client
            .claim_job(south.component_id)
            .await
            .unwrap()
            .job
            .is_none()
    );
    let claimed = north_client
        .claim_job(north.component_id)
        .await
        .unwrap()
        .job
        .unwrap();
    assert_eq!(claimed.id, job.id);
    assert_eq!(
        claimed.credentials[0].secrets["community"].expose(),
        "public"
    );
    assert!(
        claimed
            .templates
            .iter()
            .any(|t| t.name == "cisco-ios" && !t.fingerprints.is_empty())
    );
    assert!(
        claimed
            .templates
            .iter()
            .all(|t| t.scalars.is_empty() && t.tables.is_empty())
    );
    assert_eq!(
        admin.get_job(job.id).await.unwrap().state,
        JobState::Running
    );
    let batch = ResultBatch {
        done: 3,
        resume_at: 3,
        devices: vec![Found {
            address: "192.0.2.2".into(),
            sys_name: Some("rtu-7".into()),
            sys_object_id: Some("1.3.6.1.4.1.9.1.1".into()),
            found_by: Some(FoundBy::Icmp),
            open_ports: vec![502, 8443],
            ..Found::default()
        }],
        ..ResultBatch::default()
    };
    let foreign = south_client.send_results(job.id, &batch).await.unwrap_err();
    assert_eq!(foreign.status(), Some(403));
    let mut bad = batch.clone();
    bad.devices[0].address = "not-an-address".into();
    assert_eq!(
        north_client
            .send_results(job.id, &bad)
            .await
            .unwrap_err()
            .code(),
        Some(ErrorCode::InvalidResult)
    );
    assert!(
        !north_client
            .send_results(job.id, &batch)
            .await
            .unwrap()
            .stop
    );
    // A restarted collector gets its running job back, with where to resume.
    let again = north_client
        .claim_job(north.component_id)
        .await
        .unwrap()
        .job
        .unwrap();
    assert_eq!((again.id, again.resume_at), (job.id, 3));
    let progress = admin.get_job(job.id).await.unwrap();
    assert_eq!(
        (
            progress.done,
            progress.hosts_found,
            progress.snmp_identified
        ),
        (3, 1, 1)
    );
    assert!(progress.eta_s.is_some() || progress.rate.is_none());
    let last = ResultBatch {
        done: 6,
        resume_at: 6,
        finished: true,
        ..ResultBatch::default()
    };
    assert!(!north_client.send_results(job.id, &last).await.unwrap().stop);
    let finished = admin.get_job(job.id).await.unwrap();
    assert_eq!(finished.state, JobState::Done);
    let next_run = finished.next_run_at.unwrap();
    assert_eq!(
        next_run,
        finished.finished_at.unwrap() + time::Duration::hours(1)
    );
    assert!(north_client.send_results(job.id, &last).await.unwrap().stop);

    // The schedule: once due, the next claim runs it again as a new job.
    common::db(&app)
        .execute(
            "UPDATE discovery_jobs SET next_run_at = 1 WHERE id = ?1",
            [job.id],
        )
        .unwrap();
    let repeat = north_client
        .claim_job(north.component_id)
        .await
        .unwrap()
        .job
        .unwrap();
    assert_ne!(repeat.id, job.id);
    let repeat = admin.get_job(repeat.id).await.unwrap();
    assert_eq!(repeat.repeat_of, Some(job.id));
    assert_eq!(repeat.every_s, Some(3_600));
    assert!(admin.get_job(job.id).await.unwrap().next_run_at.is_none());

    // Cancelling stops the run (the collector is told at its next batch) and the schedule.
    let cancelled = admin.cancel_job(repeat.id).await.unwrap();
    assert_eq!(cancelled.state, JobState::Cancelled);
    assert!(cancelled.every_s.is_none());
    assert!(
        north_client
            .send_results(repeat.id, &batch)
            .await
            .unwrap()
            .stop
    );

    // A collector that goes silent mid-scan: its job fails, with its results kept.
    let silent = admin
        .create_job(&JobSpec {
            collector: Some("south".into()),
            ..spec(&["192.0.2.0/29"], &[])
        })
        .await
        .unwrap();
    south_client
        .claim_job(south.component_id)
        .await
        .unwrap()
        .job
        .unwrap();
    south_client.send_results(silent.id, &batch).await.unwrap();
    common::db(&app)
        .execute(
            "UPDATE discovery_jobs SET progress_at = 1 WHERE id = ?1",
            [silent.id],
        )
        .unwrap();
    let failed = wait_finished(&admin, silent.id, Duration::from_secs(30)).await;
    assert_eq!(failed.state, JobState::Failed);
    assert!(failed.error.unwrap().contains("stopped reporting"));
    assert_eq!(failed.hosts_found, 1);

    // The device answered on 8443: imported, its node gets a tls check for that port.
    let imported = admin
        .import_devices(
            silent.id,
            &DeviceSelection {
                all: true,
                ..DeviceSelection::default()
            },
        )
        .await
        .unwrap();
    let node = imported.created[0].node_id;
    let checks = admin.checks(node).await.unwrap().items;
    let checks: Vec<String> = checks.iter().map(|c| c.spec.to_string()).collect();
    assert_eq!(checks, vec!["tls:8443".to_owned()]);
}
