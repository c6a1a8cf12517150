//! Collection end to end with real devices: the server's local collector polls net-snmp's
//! `snmpd` (v2c, and v3 authPriv SHA-256/AES-128), a slow device behind a delaying UDP relay, a
//! dead SNMP port, and snmpsim serving recordings of real devices (Cisco, Eaton, Geist) and a
//! Counter32 that wraps; it pings loopback; samples arrive through the ingest into metrics.db.
//! Every address is on loopback.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly by design.

mod common;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{TestApp, spawn_app_with};
use plantwatch_shared::Client;
use plantwatch_shared::api::{
    AuthProtocol, CreateCredentialRequest, CredentialKind, CredentialParams, MetricQuery, NodeSpec,
    PrivProtocol, SeriesInfo, SeriesQuery,
};
use plantwatch_testkit::snmp;
use tokio::net::UdpSocket;

async fn polling_app() -> TestApp {
    spawn_app_with(|config| {
        config.local_polling = true;
        config.push_interval_secs = 1;
    })
    .await
}

async fn credential(
    admin: &Client,
    name: &str,
    kind: CredentialKind,
    params: CredentialParams,
    secrets: &[(&str, &str)],
) {
    admin
        .create_credential(&CreateCredentialRequest {
            name: name.into(),
            kind,
            params,
            secrets: secrets
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).into()))
                .collect::<BTreeMap<_, _>>(),
            networks: Vec::new(),
        })
        .await
        .unwrap();
}

async fn node(
    admin: &Client,
    name: &str,
    address: &str,
    template: &str,
    credentials: &[&str],
) -> i64 {
    admin
        .create_node(&NodeSpec {
            name: name.into(),
            address: address.into(),
            template: Some(template.into()),
            credentials: credentials.iter().map(|c| (*c).to_owned()).collect(),
            interval_s: Some(2),
            ..NodeSpec::default()
        })
        .await
        .unwrap()
        .id
}

async fn series(admin: &Client, node_id: i64) -> Vec<SeriesInfo> {
    admin
        .series(&SeriesQuery {
            node_id: Some(node_id),
            limit: Some(1_000),
            ..SeriesQuery::default()
        })
        .await
        .unwrap()
        .items
}

fn latest(series: &[SeriesInfo], metric: &str) -> Option<f64> {
    series
        .iter()
        .filter(|s| s.metric == metric)
        .filter_map(|s| s.latest.map(|(_, v)| v))
        .next()
}

/// Waits until `check` holds for the node's series.
async fn wait_for(
    admin: &Client,
    node_id: i64,
    what: &str,
    check: impl Fn(&[SeriesInfo]) -> bool,
) -> Vec<SeriesInfo> {
    let started = Instant::now();
    loop {
        let found = series(admin, node_id).await;
        if check(&found) {
            return found;
        }
        assert!(
            started.elapsed() < Duration::from_secs(90),
            "{what}: not within 90 s; node {node_id} has {:#?}",
            found
                .iter()
                .map(|s| (&s.metric, s.latest))
                .collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// A UDP relay on loopback that answers every request `delay` late: a slow device.
async fn slow_relay(device: SocketAddr, delay: Duration) -> SocketAddr {
    let front = Arc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap());
    let address = front.local_addr().unwrap();
    tokio::spawn(async move {
        let mut buf = vec![0u8; 65_536];
        loop {
            let Ok((len, client)) = front.recv_from(&mut buf).await else {
                return;
            };
            let request = buf[..len].to_vec();
            let front = front.clone();
            tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                let back = UdpSocket::bind("127.0.0.1:0").await.unwrap();
                back.send_to(&request, device).await.unwrap();
                let mut answer = vec![0u8; 65_536];
                if let Ok(Ok((len, _))) =
                    tokio::time::timeout(Duration::from_secs(2), back.recv_from(&mut answer)).await
                {
                    let _ = front.send_to(&answer[..len], client).await;
                }
            });
        }
    });
    address
}

fn samples_of(app: &TestApp, node_id: i64, metric: &str) -> Vec<(i64, f64)> {
    common::stored_samples(&common::metrics_db(app), Some(node_id), Some(metric), 0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn snmpd_v2c_and_v3_a_slow_and_a_dead_device_are_polled_side_by_side() {
    let agent = tokio::task::spawn_blocking(snmp::snmpd).await.unwrap();
    let device: SocketAddr = agent.address.parse().unwrap();
    let slow = slow_relay(device, Duration::from_millis(1_500)).await;
    let dead = format!("127.0.0.1:{}", plantwatch_testkit::free_udp_port());
    let app = polling_app().await;
    let admin = app.admin().await;
    credential(
        &admin,
        "wrong",
        CredentialKind::SnmpV2c,
        CredentialParams::default(),
        &[("community", "not-it")],
    )
    .await;
    credential(
        &admin,
        "plant",
        CredentialKind::SnmpV2c,
        CredentialParams::default(),
        &[("community", snmp::COMMUNITY)],
    )
    .await;
    credential(
        &admin,
        "v3",
        CredentialKind::SnmpV3,
        CredentialParams {
            username: Some(snmp::V3_USER.into()),
            auth_protocol: Some(AuthProtocol::Sha256),
            priv_protocol: Some(PrivProtocol::Aes128),
            ..CredentialParams::default()
        },
        &[
            ("auth_password", snmp::V3_AUTH),
            ("priv_password", snmp::V3_PRIV),
        ],
    )
    .await;
    // The wrong community comes first: it is tried, then the working one is kept.
    let v2c = node(
        &admin,
        "linux-v2c",
        &agent.address,
        "linux",
        &["wrong", "plant"],
    )
    .await;
    let v3 = node(&admin, "linux-v3", &agent.address, "linux", &["v3"]).await;
    let slow = node(&admin, "slow", &slow.to_string(), "generic", &["plant"]).await;
    let dead = node(&admin, "dead", &dead, "generic", &["plant"]).await;

    let found = wait_for(&admin, v2c, "v2c values", |s| {
        latest(s, "memory.total_bytes").is_some_and(|v| v > 0.0)
            && latest(s, "snmp.up") == Some(1.0)
            && latest(s, "ping.rtt_avg_ms").is_some()
            && s.iter().any(|s| {
                s.metric == "interface.in_octets_total"
                    && s.tags.get("ifName").map(String::as_str) == Some("lo")
            })
            && s.iter().any(|s| s.metric == "storage.used_pct")
            && s.iter().any(|s| s.metric == "memory_storage.used_pct")
            && latest(s, "load.load1").is_some()
            && latest(s, "system.uptime_s").is_some_and(|v| v > 0.0)
    })
    .await;
    assert_eq!(latest(&found, "ping.up"), Some(1.0));
    // net-snmp's memory areas ("Cached memory", "Shared memory" at 100 %) are not disks:
    // disk_high, which reads storage.used_pct, never sees them.
    let descr = |metric: &str| -> Vec<String> {
        found
            .iter()
            .filter(|s| s.metric == metric)
            .filter_map(|s| s.tags.get("descr").cloned())
            .collect()
    };
    let disks = descr("storage.used_pct");
    assert!(disks.iter().any(|d| d == "/"), "{disks:?}");
    assert!(
        disks.iter().all(|d| !d.to_lowercase().contains("memory")),
        "{disks:?}"
    );
    let memory = descr("memory_storage.used_pct");
    assert!(memory.iter().any(|d| d == "Physical memory"), "{memory:?}");
    assert_eq!(latest(&found, "ping.loss_pct"), Some(0.0));
    wait_for(&admin, v3, "v3 values", |s| {
        latest(s, "snmp.up") == Some(1.0) && latest(s, "memory.available_pct").is_some()
    })
    .await;
    let found = wait_for(&admin, slow, "the slow device's values", |s| {
        latest(s, "snmp.up") == Some(1.0) && latest(s, "system.uptime_s").is_some()
    })
    .await;
    assert!(latest(&found, "snmp.poll_duration_ms").unwrap() >= 1_500.0);
    let found = wait_for(&admin, dead, "the dead device's snmp.up", |s| {
        latest(s, "snmp.up").is_some()
    })
    .await;
    assert_eq!(latest(&found, "snmp.up"), Some(0.0));
    // Loopback answers pings even where no SNMP agent listens.
    assert_eq!(latest(&found, "ping.up"), Some(1.0));

    // Over the next 12 s the healthy device keeps its 2 s interval although the dead one's
    // polls take 4 s (timeout, one retry) and the slow one's 1.5 s a request; and once found,
    // the working community is used first (no 4 s timeout on the wrong one).
    let since = samples_of(&app, v2c, "snmp.up").last().unwrap().0;
    tokio::time::sleep(Duration::from_secs(12)).await;
    let polls: Vec<_> = samples_of(&app, v2c, "snmp.up")
        .into_iter()
        .filter(|(ts, _)| *ts > since)
        .collect();
    assert!(
        polls.len() >= 5,
        "only {} polls in 12 s: {polls:?}",
        polls.len()
    );
    assert!(polls.iter().all(|(_, up)| *up == 1.0));
    let durations: Vec<f64> = samples_of(&app, v2c, "snmp.poll_duration_ms")
        .into_iter()
        .filter(|(ts, _)| *ts > since)
        .map(|(_, v)| v)
        .collect();
    assert!(durations.iter().all(|ms| *ms < 1_000.0), "{durations:?}");
    let dead_polls = samples_of(&app, dead, "snmp.up");
    assert!(dead_polls.iter().all(|(_, up)| *up == 0.0));

    // Interface counters come back as rates.
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let answer = admin
        .node_metrics(
            v2c,
            &MetricQuery {
                metric: Some("interface.in_octets_total".into()),
                from: Some(now - 60),
                to: Some(now),
                step: Some(2),
                agg: None,
            },
        )
        .await
        .unwrap();
    let lo = answer
        .items
        .iter()
        .find(|s| s.tags.get("ifName").map(String::as_str) == Some("lo"))
        .unwrap();
    assert!(lo.points.len() >= 3, "{lo:?}");
    assert!(lo.points.iter().all(|(_, rate)| *rate >= 0.0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn recordings_of_real_devices_and_a_wrapping_counter() {
    let data = tempfile::tempdir().unwrap();
    snmp::stage_recording("network/switch/cisco-c3560", data.path(), "cisco");
    snmp::stage_recording("UPS/eaton-93e-80", data.path(), "eaton");
    snmp::stage_recording("iot/geist-temperature-sensor", data.path(), "geist");
    // A 32-bit ifInOctets counting 100,000 a second that wraps 25 s after snmpsim starts,
    // and no 64-bit ifXTable: the template falls back to the 32-bit column.
    let wrap_at = 25.0;
    let initial = f64::from(u32::MAX) - 100_000.0 * wrap_at;
    std::fs::write(
        data.path().join("wrap32.snmprec"),
        format!(
            "1.3.6.1.2.1.1.1.0|4|wrap test device\n\
             1.3.6.1.2.1.1.2.0|6|1.3.6.1.4.1.8072.3.2.10\n\
             1.3.6.1.2.1.1.3.0|67|100000\n\
             1.3.6.1.2.1.2.2.1.1.1|2|1\n\
             1.3.6.1.2.1.2.2.1.2.1|4|eth0\n\
             1.3.6.1.2.1.2.2.1.8.1|2|1\n\
             1.3.6.1.2.1.2.2.1.10.1|65:numeric|rate=100000,wrap=1,initial={initial}\n\
             1.3.6.1.2.1.2.2.1.16.1|65|12345\n"
        ),
    )
    .unwrap();
    let path = data.path().to_owned();
    let sim = tokio::task::spawn_blocking(move || snmp::snmpsim(&path, "wrap32"))
        .await
        .unwrap();
    let started = Instant::now();
    let app = polling_app().await;
    let admin = app.admin().await;
    for community in ["cisco", "eaton", "geist", "wrap32"] {
        credential(
            &admin,
            community,
            CredentialKind::SnmpV2c,
            CredentialParams::default(),
            &[("community", community)],
        )
        .await;
    }
    let cisco = node(&admin, "sw-1", &sim.address, "cisco-ios", &["cisco"]).await;
    let eaton = node(&admin, "ups-1", &sim.address, "eaton-ups", &["eaton"]).await;
    let geist = node(&admin, "env-1", &sim.address, "geist-sensor", &["geist"]).await;
    let wrap = node(&admin, "wrap-1", &sim.address, "generic", &["wrap32"]).await;

    let found = wait_for(&admin, cisco, "the Cisco switch's values", |s| {
        latest(s, "cpu.load_pct").is_some()
            && s.iter().any(|s| {
                s.metric == "memory_pool.used_bytes"
                    && s.tags.get("name").map(String::as_str) == Some("Processor")
            })
            && s.iter().any(|s| {
                s.metric == "interface.in_octets_total"
                    && s.tags.get("ifName").map(String::as_str) == Some("Vl1")
            })
    })
    .await;
    assert_eq!(latest(&found, "cpu.load_pct"), Some(28.0));
    let found = wait_for(&admin, eaton, "the Eaton UPS's values", |s| {
        latest(s, "ups.battery_pct").is_some() && latest(s, "ups.on_battery").is_some()
    })
    .await;
    assert_eq!(latest(&found, "ups.battery_pct"), Some(100.0));
    assert_eq!(latest(&found, "ups.load_pct"), Some(21.0));
    // xupsOutputSource is 3 (normal), not battery (5).
    assert_eq!(latest(&found, "ups.on_battery"), Some(0.0));
    let found = wait_for(&admin, geist, "the Geist sensor's values", |s| {
        latest(s, "environment.temperature_celsius").is_some()
    })
    .await;
    let celsius = latest(&found, "environment.temperature_celsius").unwrap();
    assert!((10.0..=30.0).contains(&celsius), "{celsius}");

    // The wrapping counter: stored values keep rising past 2^32, rates stay near 100,000/s.
    let limit = Duration::from_secs_f64(wrap_at + 30.0);
    loop {
        let samples = samples_of(&app, wrap, "interface.in_octets_total");
        if samples
            .last()
            .is_some_and(|(_, v)| *v > f64::from(u32::MAX) + 200_000.0)
        {
            break;
        }
        assert!(
            started.elapsed() < limit,
            "no sample after the wrap: {samples:?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let samples = samples_of(&app, wrap, "interface.in_octets_total");
    assert!(samples.windows(2).all(|w| w[1].1 > w[0].1), "{samples:?}");
    assert!(samples[0].1 < f64::from(u32::MAX), "{samples:?}");
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let answer = admin
        .node_metrics(
            wrap,
            &MetricQuery {
                metric: Some("interface.in_octets_total".into()),
                from: Some(now - 120),
                to: Some(now),
                step: Some(1),
                agg: None,
            },
        )
        .await
        .unwrap();
    let rates: Vec<f64> = answer.items[0].points.iter().map(|(_, v)| *v).collect();
    assert!(rates.len() >= 2, "{rates:?}");
    assert!(
        rates.iter().all(|r| (60_000.0..=140_000.0).contains(r)),
        "rates around the wrap: {rates:?}"
    );
}

/// An HTTP server on loopback answering `/` with 200.
async fn web() -> SocketAddr {
    let app = axum::Router::new().route("/", axum::routing::get(|| async { "ok" }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    address
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_checks_run_on_the_nodes_collector_and_expiring_certificates_alert() {
    use plantwatch_shared::api::{
        CertificateQuery, CheckSpec, ErrorCode, NodeType, Role, Severity,
    };
    use plantwatch_testkit::tls::{self, Pki};

    let app = polling_app().await;
    let admin = app.admin().await;
    let (viewer, _) = app.user_with_role(&admin, "val", Role::Viewer).await;
    let (operator, _) = app.user_with_role(&admin, "otto", Role::Operator).await;

    // The HMI: a certificate from the plant's CA that expires in 5 days, a web page, and a
    // Modbus port that is closed.
    let pki = Pki::new();
    let soon = pki.leaf(&["localhost"], tls::days(-300), tls::days(5));
    let tls_port = tls::serve(vec![soon.cert, pki.intermediate_der()], soon.key)
        .await
        .port();
    let web_port = web().await.port();
    let closed = plantwatch_testkit::free_port();
    let node = admin
        .create_node(&NodeSpec {
            name: "hmi-1".into(),
            address: "127.0.0.1".into(),
            node_type: Some(NodeType::Other),
            ..NodeSpec::default()
        })
        .await
        .unwrap()
        .id;

    let spec = |text: String| text.parse::<CheckSpec>().unwrap();
    let tls_check = spec(format!("tls:{tls_port}@localhost"));
    // Viewers read checks but cannot add them; operators can; bad and duplicate checks are
    // refused with what is wrong.
    assert_eq!(
        viewer
            .add_check(node, &tls_check)
            .await
            .unwrap_err()
            .status(),
        Some(403)
    );
    let added = operator.add_check(node, &tls_check).await.unwrap();
    assert_eq!(added.spec.interval_s(), 300);
    let duplicate = operator.add_check(node, &tls_check).await.unwrap_err();
    assert_eq!(duplicate.status(), Some(409));
    let mut bad = CheckSpec::new(plantwatch_shared::api::CheckKind::Tcp);
    bad.interval_s = Some(1);
    let refused = operator.add_check(node, &bad).await.unwrap_err();
    assert_eq!(refused.code(), Some(ErrorCode::InvalidCheck));
    let mut web_check = spec(format!("http:{web_port}/"));
    web_check.interval_s = Some(10);
    operator.add_check(node, &web_check).await.unwrap();
    let mut port_check = spec(format!("tcp:{closed}"));
    port_check.interval_s = Some(10);
    let port_check = operator.add_check(node, &port_check).await.unwrap();
    assert_eq!(viewer.checks(node).await.unwrap().total, 3);

    // The local collector gets them with its next configuration and runs them.
    let found = wait_for(&admin, node, "the checks' first runs", |s| {
        let up = |kind: &str| {
            s.iter()
                .find(|x| {
                    x.metric == "check.up" && x.tags.get("kind").map(String::as_str) == Some(kind)
                })
                .and_then(|x| x.latest.map(|(_, v)| v))
        };
        up("tls") == Some(1.0) && up("http") == Some(1.0) && up("tcp") == Some(0.0)
    })
    .await;
    let days = latest(&found, "check.cert_days_left").unwrap();
    // Whole days, rounded down: a little less than 5 is 4.
    assert_eq!(days, 4.0);
    assert_eq!(latest(&found, "check.cert_valid"), Some(1.0));
    // The plant's CA is not in the server's trust store.
    assert_eq!(latest(&found, "check.cert_trusted"), Some(0.0));
    assert_eq!(latest(&found, "check.http_status"), Some(200.0));

    // The certificate, listed by what expires first.
    let started = Instant::now();
    let certificate = loop {
        let list = viewer
            .certificates(&CertificateQuery::default())
            .await
            .unwrap();
        if let Some(found) = list.items.into_iter().next() {
            break found;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no certificate listed"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert_eq!(
        (certificate.node.as_str(), certificate.port),
        ("hmi-1", tls_port)
    );
    assert!(
        certificate.issuer.contains("Plant Issuing CA"),
        "{certificate:?}"
    );
    assert!(certificate.name_matches && !certificate.trusted);
    assert_eq!(certificate.chain_length, 2);
    let expiring = |days| CertificateQuery {
        expiring_days: Some(days),
        ..CertificateQuery::default()
    };
    assert_eq!(viewer.certificates(&expiring(30)).await.unwrap().total, 1);
    assert_eq!(viewer.certificates(&expiring(3)).await.unwrap().total, 0);

    // cert_expiring fires, critical: 5 days is within the 7-day threshold.
    let alert = alert_of(&admin, node, "cert_expiring").await;
    assert_eq!(alert.severity, Severity::Critical);

    // Removing a check stops it; its certificate goes with a removed tls check.
    operator.remove_check(node, port_check.id).await.unwrap();
    operator.remove_check(node, added.id).await.unwrap();
    assert_eq!(viewer.checks(node).await.unwrap().total, 1);
    assert_eq!(
        viewer
            .certificates(&CertificateQuery::default())
            .await
            .unwrap()
            .total,
        0
    );
    assert_eq!(
        operator
            .remove_check(node, added.id)
            .await
            .unwrap_err()
            .code(),
        Some(ErrorCode::CheckNotFound)
    );

    // The plant's CA given on a check: the same certificate is trusted now.
    let mut with_ca = spec(format!("tls:{tls_port}@localhost"));
    with_ca.ca_pem = Some(pki.root_pem());
    with_ca.interval_s = Some(10);
    operator.add_check(node, &with_ca).await.unwrap();
    let mut not_pem = with_ca.clone();
    not_pem.ca_pem = Some("-----BEGIN CERTIFICATE-----\nnope\n".into());
    let refused = operator.add_check(node, &not_pem).await.unwrap_err();
    assert_eq!(refused.code(), Some(ErrorCode::InvalidCheck), "{refused}");

    // A DNS check: the node is the name server asked. It answers, but not what is expected:
    // dns_down opens (tuned here to fire at once rather than after two runs).
    let dns = plantwatch_testkit::dns::Dnsmasq::start(
        "plant.test",
        &["--host-record=historian.plant.test,10.0.0.5"],
    );
    let mut dns_check = spec(format!(
        "dns:{}:historian.plant.test=10.0.0.9",
        dns.address.port()
    ));
    dns_check.interval_s = Some(10);
    operator.add_check(node, &dns_check).await.unwrap();
    let rule = admin.rule_by_name("dns_down").await.unwrap();
    let mut tuned = rule.spec.clone();
    tuned.for_s = 0;
    admin.update_rule(rule.id, &tuned).await.unwrap();
    let found = wait_for(&admin, node, "the dns check and the CA's verdict", |s| {
        let kind_is =
            |x: &&SeriesInfo, kind: &str| x.tags.get("kind").map(String::as_str) == Some(kind);
        let dns_down = s.iter().any(|x| {
            x.metric == "check.up" && kind_is(&x, "dns") && x.latest.map(|(_, v)| v) == Some(0.0)
        });
        let trusted = s
            .iter()
            .any(|x| x.metric == "check.cert_trusted" && x.latest.map(|(_, v)| v) == Some(1.0));
        dns_down && trusted
    })
    .await;
    assert!(latest(&found, "check.time_ms").is_some());
    alert_of(&admin, node, "dns_down").await;
}

/// Waits (a minute at most) for an alert of `rule` on node `node_id`.
async fn alert_of(admin: &Client, node_id: i64, rule: &str) -> plantwatch_shared::api::Alert {
    let started = Instant::now();
    loop {
        let alerts = admin
            .list_alerts(&plantwatch_shared::api::AlertQuery {
                node_id: Some(node_id),
                ..Default::default()
            })
            .await
            .unwrap();
        if let Some(alert) = alerts.items.into_iter().find(|a| a.rule == rule) {
            return alert;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no {rule} alert on node {node_id}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_local_collector_receives_traps_and_syslog_and_the_server_files_them_by_node() {
    use plantwatch_shared::api::{
        EventKind, EventQuery, EventSeverity, NodeType, Receivers, Role, parse_listens,
    };

    let app = polling_app().await;
    let admin = app.admin().await;
    let (operator, _) = app.user_with_role(&admin, "otto", Role::Operator).await;
    let hmi = admin
        .create_node(&NodeSpec {
            name: "hmi-1".into(),
            address: "127.0.0.2".into(),
            node_type: Some(NodeType::Hmi),
            ..NodeSpec::default()
        })
        .await
        .unwrap()
        .id;
    let local = local_collector(&admin).await;
    // Off by default; only admins turn them on; a bad one is refused.
    assert!(admin.receivers(local).await.unwrap().is_empty());
    let (trap_port, syslog_port) = (
        plantwatch_testkit::free_port(),
        plantwatch_testkit::free_port(),
    );
    let receivers = Receivers {
        traps: parse_listens(&format!("udp:{trap_port}")).unwrap(),
        syslog: parse_listens(&format!("udp:{syslog_port},tcp:{syslog_port}")).unwrap(),
    };
    let refused = operator.set_receivers(local, &receivers).await.unwrap_err();
    assert_eq!(refused.status(), Some(403));
    let tcp_traps = Receivers {
        traps: parse_listens("tcp:1162").unwrap(),
        syslog: Vec::new(),
    };
    let refused = admin.set_receivers(local, &tcp_traps).await.unwrap_err();
    assert_eq!(refused.status(), Some(400));
    admin.set_receivers(local, &receivers).await.unwrap();

    // A v1 trap relayed from 127.0.0.1 naming the HMI as its agent, a syslog line from the HMI,
    // and one from an address no node has; resent until the collector has its receivers.
    let udp = |from: &str, port: u16, bytes: &[u8]| {
        let socket = std::net::UdpSocket::bind((from, 0)).unwrap();
        socket.send_to(bytes, ("127.0.0.1", port)).unwrap();
    };
    let started = Instant::now();
    let events = loop {
        let trap = std::process::Command::new("snmptrap")
            .args([
                "-v",
                "1",
                "-c",
                "plant",
                &format!("udp:127.0.0.1:{trap_port}"),
            ])
            .args([
                "1.3.6.1.4.1.9",
                "127.0.0.2",
                "2",
                "0",
                "",
                "1.3.6.1.2.1.2.2.1.1.3",
            ])
            .args(["i", "3"])
            .status()
            .unwrap();
        assert!(trap.success());
        udp(
            "127.0.0.2",
            syslog_port,
            b"<11>Dec  4 10:00:00 hmi-1 runtime: tag A1 bad quality",
        );
        udp("127.0.0.3", syslog_port, b"<14>printer: toner low");
        tokio::time::sleep(Duration::from_secs(1)).await;
        let events = operator.events(&EventQuery::default()).await.unwrap();
        let kinds = |kind: EventKind| events.items.iter().filter(|e| e.event.kind == kind).count();
        if kinds(EventKind::Trap) > 0 && kinds(EventKind::Syslog) >= 2 {
            break events;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no events: {:?}",
            events.items
        );
    };
    let trap = events
        .items
        .iter()
        .find(|e| e.event.kind == EventKind::Trap)
        .unwrap();
    assert_eq!(trap.node_id, Some(hmi), "matched by the v1 agent address");
    assert_eq!(trap.event.source, "127.0.0.1");
    assert_eq!(
        trap.event.trap.as_ref().unwrap().name.as_deref(),
        Some("linkDown")
    );
    assert_eq!(trap.collector, "local");
    // Filters: by node, severity, unknown senders, text.
    let of_hmi = operator
        .events(&EventQuery {
            node_id: Some(hmi),
            kind: Some(EventKind::Syslog),
            ..EventQuery::default()
        })
        .await
        .unwrap();
    assert!(!of_hmi.items.is_empty());
    let line = &of_hmi.items[0].event;
    assert_eq!(
        (line.severity, line.message.as_str()),
        (EventSeverity::Error, "tag A1 bad quality")
    );
    let unknown = operator
        .events(&EventQuery {
            unknown: Some(true),
            ..EventQuery::default()
        })
        .await
        .unwrap();
    assert!(
        unknown
            .items
            .iter()
            .all(|e| e.node_id.is_none() && e.event.source == "127.0.0.3")
    );
    assert!(!unknown.items.is_empty());
    let errors = operator
        .events(&EventQuery {
            severity: Some(EventSeverity::Error),
            ..EventQuery::default()
        })
        .await
        .unwrap();
    assert!(
        errors
            .items
            .iter()
            .all(|e| e.event.severity.at_least(EventSeverity::Error))
    );
    let toner = operator
        .events(&EventQuery {
            q: Some("toner".into()),
            ..EventQuery::default()
        })
        .await
        .unwrap();
    assert!(
        !toner.items.is_empty()
            && toner
                .items
                .iter()
                .all(|e| e.event.message.contains("toner"))
    );
    // Following: only what came after the newest seen.
    let newest = events.items[0].id;
    let after = operator
        .events(&EventQuery {
            after_id: Some(newest),
            ..EventQuery::default()
        })
        .await
        .unwrap();
    assert!(after.items.iter().all(|e| e.id > newest));

    // Turned off: the ports close with the next configuration.
    admin
        .set_receivers(local, &Receivers::default())
        .await
        .unwrap();
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", syslog_port)).is_ok() {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the syslog port stays open"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // Its report (sent with the new configuration) counts what the receivers did.
    let started = Instant::now();
    loop {
        let local = admin.get_component(local).await.unwrap();
        if let Some(counts) = local.events
            && counts.received >= 3
        {
            assert_eq!(counts.rate_limited, 0);
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no event counts reported"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// The local collector's id.
async fn local_collector(admin: &Client) -> i64 {
    use plantwatch_shared::api::{ComponentKind, ComponentQuery};
    admin
        .list_components(&ComponentQuery {
            kind: Some(ComponentKind::Collector),
            ..ComponentQuery::default()
        })
        .await
        .unwrap()
        .items
        .into_iter()
        .find(|c| c.is_local)
        .unwrap()
        .id
}

/// Sends a v2c trap from net-snmp's `snmptrap`: `oid` with an ifIndex varbind.
fn v2c_link_trap(port: u16, oid: &str, if_index: u32) {
    let status = std::process::Command::new("snmptrap")
        .args([
            "-v",
            "2c",
            "-c",
            "plant",
            &format!("udp:127.0.0.1:{port}"),
            "",
        ])
        .arg(oid)
        .arg(format!("1.3.6.1.2.1.2.2.1.1.{if_index}"))
        .args(["i", &if_index.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_rules_open_alerts_from_real_traps_and_syslog_and_the_partner_clears_them() {
    use plantwatch_shared::api::{
        AlertQuery, AlertState, EventKind, EventMatch, EventRuleSpec, Receivers, RuleSpec,
        Severity, parse_listens,
    };
    let app = spawn_app_with(|config| {
        config.local_polling = true;
        config.push_interval_secs = 1;
        config.alert_interval_secs = 1;
    })
    .await;
    let admin = app.admin().await;
    let switch = admin
        .create_node(&NodeSpec {
            name: "sw-1".into(),
            address: "127.0.0.1".into(),
            ..NodeSpec::default()
        })
        .await
        .unwrap()
        .id;
    let local = local_collector(&admin).await;
    let (trap_port, syslog_port) = (
        plantwatch_testkit::free_port(),
        plantwatch_testkit::free_port(),
    );
    admin
        .set_receivers(
            local,
            &Receivers {
                traps: parse_listens(&format!("udp:{trap_port}")).unwrap(),
                syslog: parse_listens(&format!("udp:{syslog_port}")).unwrap(),
            },
        )
        .await
        .unwrap();
    // A custom rule: the runtime's bad-quality lines, one alert per program, for 10 minutes.
    let custom = admin
        .create_rule(&RuleSpec {
            metric: None,
            event: Some(EventRuleSpec {
                on: EventMatch {
                    kind: Some(EventKind::Syslog),
                    program: Some("runtime".into()),
                    text: Some("bad quality".into()),
                    ..EventMatch::default()
                },
                clear: None,
                key: vec!["program".into()],
                severity: Severity::Critical,
                expire_s: 600,
            }),
            ..RuleSpec::new("runtime_bad_quality", "")
        })
        .await
        .unwrap();
    assert_eq!(custom.spec.event.as_ref().unwrap().expire_s, 600);
    // One that nothing would clear is refused; a built-in's events stay, its expiry is tuned.
    let mut never = custom.spec.clone();
    never.name = "never".into();
    never.event.as_mut().unwrap().expire_s = 0;
    assert_eq!(
        admin.create_rule(&never).await.unwrap_err().status(),
        Some(400)
    );
    // A trap name a template knows (apc-ups: PowerNet's lowBattery) is accepted; one nobody
    // knows is refused.
    let mut low = custom.spec.clone();
    low.name = "ups_low".into();
    low.event.as_mut().unwrap().on = EventMatch {
        traps: vec!["lowBattery".into()],
        ..EventMatch::default()
    };
    admin.create_rule(&low).await.unwrap();
    low.name = "odd".into();
    low.event.as_mut().unwrap().on.traps = vec!["noSuchTrap".into()];
    let odd = admin.create_rule(&low).await.unwrap_err();
    assert_eq!(odd.status(), Some(400));
    assert!(odd.to_string().contains("noSuchTrap"), "{odd}");
    let rules = admin.list_rules().await.unwrap().items;
    let link = rules
        .iter()
        .find(|r| r.spec.name == "trap_link_down")
        .unwrap();
    let mut changed = link.spec.clone();
    changed.event.as_mut().unwrap().on.traps = vec!["coldStart".into()];
    let refused = admin.update_rule(link.id, &changed).await.unwrap_err();
    assert_eq!(refused.status(), Some(400));
    let mut tuned = link.spec.clone();
    tuned.event.as_mut().unwrap().expire_s = 7_200;
    admin.update_rule(link.id, &tuned).await.unwrap();

    // Port 3 goes down (snmptrap v2c linkDown; resent until the receiver is open): one alert
    // for that port.
    let link_down = "1.3.6.1.6.3.1.1.5.3";
    let started = Instant::now();
    let alert = loop {
        v2c_link_trap(trap_port, link_down, 3);
        tokio::time::sleep(Duration::from_secs(1)).await;
        let alerts = admin
            .list_alerts(&AlertQuery {
                node_id: Some(switch),
                ..AlertQuery::default()
            })
            .await
            .unwrap();
        if let Some(alert) = alerts
            .items
            .into_iter()
            .find(|a| a.rule == "trap_link_down")
        {
            break alert;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no trap_link_down alert"
        );
    };
    assert_eq!(alert.series, "event{ifIndex=3}");
    assert_eq!(alert.severity, Severity::Warning);
    assert_eq!(alert.state, AlertState::Firing);
    assert!(alert.message.starts_with("linkDown"), "{}", alert.message);
    // Port 5's linkUp does not clear port 3; port 3's does.
    v2c_link_trap(trap_port, "1.3.6.1.6.3.1.1.5.4", 5);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let still = admin.list_alerts(&AlertQuery::default()).await.unwrap();
    assert!(still.items.iter().any(|a| a.id == alert.id));
    v2c_link_trap(trap_port, "1.3.6.1.6.3.1.1.5.4", 3);
    let started = Instant::now();
    loop {
        let detail = admin.get_alert(alert.id).await.unwrap();
        if detail.alert.state == AlertState::Resolved {
            let resolved = detail.events.last().unwrap();
            let why = resolved.comment.as_deref().unwrap_or_default();
            assert!(why.starts_with("cleared by linkUp"), "{detail:?}");
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the linkUp did not clear it"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    // A syslog line from the switch: the custom rule's critical alert.
    let socket = std::net::UdpSocket::bind(("127.0.0.1", 0)).unwrap();
    socket
        .send_to(
            b"<14>Dec  4 10:00:00 sw-1 runtime: tag A1 bad quality",
            ("127.0.0.1", syslog_port),
        )
        .unwrap();
    let alert = alert_of(&admin, switch, "runtime_bad_quality").await;
    assert_eq!(
        (alert.series.as_str(), alert.severity),
        ("event{program=runtime}", Severity::Critical)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lldp_neighbours_of_real_devices_become_links_seen_once_from_both_ends() {
    use plantwatch_shared::api::{ParentChange, ParentChanges, ParentQuery, TopologyQuery};
    // Recordings of real devices (snmpsim-data): four Juniper MX960 cores in a ring by LLDP,
    // a Nexus 5548 and the ProCurve blade switch on its Ethernet1/19.
    let devices = [
        (
            "yt-core-1",
            "network/router/juniper-mx960-12-3r6-6",
            "juniper-junos",
        ),
        (
            "ca-core-1",
            "network/router/juniper-mx960-13-3r9-13",
            "juniper-junos",
        ),
        (
            "ca-core-2",
            "network/router/juniper-mx960-16-1r6-7-a",
            "juniper-junos",
        ),
        (
            "yt-core-2",
            "network/router/juniper-mx960-16-1r6-7-b",
            "juniper-junos",
        ),
        ("nx-5548", "network/switch/cisco-n5000", "cisco-nxos"),
        (
            "procurve-1",
            "network/switch/hpe-procurve-516733-b21",
            "hpe-procurve",
        ),
    ];
    let data = tempfile::tempdir().unwrap();
    // The parts LLDP needs: the system group, interface names, LLDP-MIB.
    for (name, recording, _) in devices {
        snmp::stage_recording_part(
            recording,
            data.path(),
            name,
            &["1.3.6.1.2.1.1", "1.3.6.1.2.1.31.1.1.1.1", "1.0.8802.1.1.2"],
        );
    }
    let path = data.path().to_owned();
    let sim = tokio::task::spawn_blocking(move || snmp::snmpsim(&path, "yt-core-1"))
        .await
        .unwrap();
    let app = polling_app().await;
    let admin = app.admin().await;
    let mut ids = BTreeMap::new();
    for (name, _, template) in devices {
        credential(
            &admin,
            name,
            CredentialKind::SnmpV2c,
            CredentialParams::default(),
            &[("community", name)],
        )
        .await;
        ids.insert(
            name,
            node(&admin, name, &sim.address, template, &[name]).await,
        );
    }
    let names: BTreeMap<i64, &str> = ids.iter().map(|(n, id)| (*id, *n)).collect();
    let expected = [
        "ca-core-1 xe-0/2/0 — ca-core-2 xe-3/0/0",
        "ca-core-1 xe-1/2/0 — yt-core-1 xe-1/2/0",
        "ca-core-2 xe-3/1/1 — yt-core-2 xe-1/2/0",
        "nx-5548 Ethernet1/19 — procurve-1 17",
        "yt-core-1 xe-0/2/0 — yt-core-2 xe-0/2/0",
    ];
    let started = Instant::now();
    let map = loop {
        let map = admin.topology(&TopologyQuery::default()).await.unwrap();
        let mut links: Vec<String> = map
            .links
            .iter()
            .filter(|l| l.both_ends)
            .map(|l| {
                let mut ends = [
                    format!("{} {}", names[&l.a], l.a_port.as_deref().unwrap_or("?")),
                    format!("{} {}", names[&l.b], l.b_port.as_deref().unwrap_or("?")),
                ];
                ends.sort();
                ends.join(" — ")
            })
            .collect();
        links.sort();
        if links == expected {
            break map;
        }
        assert!(
            started.elapsed() < Duration::from_secs(90),
            "links {links:#?} of {:#?}",
            map.links
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    };
    // Each link once, though both ends report it; none reported by one end only between
    // monitored nodes.
    assert_eq!(map.links.len(), 5, "{:#?}", map.links);
    assert!(map.links.iter().all(|l| !l.gone));
    // The Nexus's peer is no node: an unmanaged neighbour, with where it was seen.
    let peer = map
        .unmanaged
        .iter()
        .find(|u| u.neighbour.sys_name.as_deref() == Some("NWPU-CA-5548-02"))
        .expect("the 5548-02 listed as unmanaged");
    assert_eq!(peer.seen_by, ids["nx-5548"]);
    // Around one core, one link deep: it and its two ring neighbours.
    let near = admin
        .topology(&TopologyQuery {
            node_id: Some(ids["yt-core-1"]),
            depth: Some(1),
        })
        .await
        .unwrap();
    let mut around: Vec<&str> = near.nodes.iter().map(|n| n.name.as_str()).collect();
    around.sort_unstable();
    assert_eq!(around, ["ca-core-1", "yt-core-1", "yt-core-2"]);
    let refused = admin
        .topology(&TopologyQuery {
            node_id: Some(ids["yt-core-1"]),
            depth: Some(99),
        })
        .await
        .unwrap_err();
    assert_eq!(refused.status(), Some(400));

    // Parents from the links, with yt-core-1 towards the collector: the ring hangs off it.
    let suggested = admin
        .suggested_parents(&ParentQuery {
            root: Some(ids["yt-core-1"]),
        })
        .await
        .unwrap()
        .items;
    let found: Vec<(&str, &str, &str)> = suggested
        .iter()
        .map(|s| {
            (
                s.node.as_str(),
                s.suggested_name.as_str(),
                s.via_port.as_deref().unwrap_or("?"),
            )
        })
        .collect();
    assert_eq!(
        found,
        [
            ("ca-core-1", "yt-core-1", "xe-1/2/0"),
            ("ca-core-2", "ca-core-1", "xe-0/2/0"),
            ("yt-core-2", "yt-core-1", "xe-0/2/0"),
        ]
    );
    // A batch closing a loop is refused whole: nothing of it is set.
    let looped = ParentChanges {
        parents: vec![
            ParentChange {
                node_id: ids["procurve-1"],
                parent_id: ids["nx-5548"],
            },
            ParentChange {
                node_id: ids["ca-core-1"],
                parent_id: ids["ca-core-2"],
            },
            ParentChange {
                node_id: ids["ca-core-2"],
                parent_id: ids["ca-core-1"],
            },
        ],
    };
    let refused = admin.set_parents(&looped).await.unwrap_err();
    assert_eq!(refused.status(), Some(400), "{refused}");
    assert_eq!(
        admin.get_node(ids["procurve-1"]).await.unwrap().parent,
        None
    );
    let changes = ParentChanges {
        parents: suggested
            .iter()
            .map(|s| ParentChange {
                node_id: s.node_id,
                parent_id: s.suggested,
            })
            .collect(),
    };
    admin.set_parents(&changes).await.unwrap();
    assert_eq!(
        admin
            .get_node(ids["ca-core-2"])
            .await
            .unwrap()
            .parent
            .as_deref(),
        Some("ca-core-1")
    );
    let left = admin
        .suggested_parents(&ParentQuery {
            root: Some(ids["yt-core-1"]),
        })
        .await
        .unwrap();
    assert_eq!(left.total, 0, "{:?}", left.items);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn modbus_devices_behind_one_gateway_become_metrics_and_a_tank_level_alerts() {
    use plantwatch_shared::api::modbus::ByteOrder;
    use plantwatch_shared::api::{RuleSpec, Severity};
    use plantwatch_testkit::modbus::{Memory, Plant, laid_out, serve};

    let app = polling_app().await;
    let admin = app.admin().await;
    // Unit 3: an Eastron SDM630 (input registers, f32 ABCD) on 230.5 / 231 / 229.5 V, 12 A,
    // 8.1 kW, 50 Hz; unit 4: a tank level in tenths of a per cent (85.0 %), holding 0.
    let mut meter = Memory::default();
    let mut put = |address: u16, value: f32| {
        for (i, word) in laid_out(&value.to_be_bytes(), ByteOrder::Abcd)
            .into_iter()
            .enumerate()
        {
            meter.input.insert(address + i as u16, word);
        }
    };
    for (address, value) in [
        (0, 230.5),
        (2, 231.0),
        (4, 229.5),
        (6, 12.0),
        (8, 12.0),
        (10, 12.0),
        (52, 8_100.0),
        (62, 0.95),
        (70, 50.0),
        (72, 1_234.5),
        (74, 0.0),
    ] {
        put(address, value);
    }
    let tank = Memory {
        holding: BTreeMap::from([(0, 850)]).into_iter().collect(),
        ..Memory::default()
    };
    let gateway = serve(Plant {
        units: [(3, meter), (4, tank)].into_iter().collect(),
        ..Plant::default()
    })
    .await;
    // A profile of the plant's own, dropped beside the templates and reloaded.
    let templates = app.dir.path().join("templates");
    std::fs::create_dir_all(&templates).unwrap();
    std::fs::write(
        templates.join("tank-level.toml"),
        "name = \"tank-level\"\n\
         [[modbus.points]]\n\
         name = \"tank.level_pct\"\n\
         function = \"holding\"\n\
         address = 0\n\
         scale = 0.1\n\
         unit = \"%\"\n",
    )
    .unwrap();
    admin.reload_templates().await.unwrap();
    let mut ids = BTreeMap::new();
    // Unit 5 is not on the line: the gateway answers for it with exception 0x0B.
    for (name, template, unit) in [
        ("meter-3", "eastron-sdm630", 3),
        ("tank-4", "tank-level", 4),
        ("meter-5", "eastron-sdm630", 5),
    ] {
        let created = admin
            .create_node(&NodeSpec {
                name: name.into(),
                address: gateway.to_string(),
                template: Some(template.into()),
                modbus_unit: Some(unit),
                interval_s: Some(2),
                ..NodeSpec::default()
            })
            .await
            .unwrap();
        assert_eq!(created.modbus_unit, Some(unit));
        ids.insert(name, created.id);
    }
    let found = wait_for(&admin, ids["meter-3"], "the meter's points", |s| {
        latest(s, "meter.frequency_hz").is_some() && latest(s, "modbus.up") == Some(1.0)
    })
    .await;
    let voltages: BTreeMap<String, f64> = found
        .iter()
        .filter(|s| s.metric == "meter.voltage")
        .map(|s| (s.tags["phase"].clone(), s.latest.unwrap().1))
        .collect();
    assert_eq!(
        voltages,
        BTreeMap::from([
            ("L1".to_owned(), 230.5),
            ("L2".to_owned(), 231.0),
            ("L3".to_owned(), 229.5)
        ])
    );
    assert_eq!(latest(&found, "meter.power_w"), Some(8_100.0));
    assert_eq!(latest(&found, "meter.frequency_hz"), Some(50.0));
    assert_eq!(latest(&found, "modbus.exceptions_total"), Some(0.0));
    let tank = wait_for(&admin, ids["tank-4"], "the tank level", |s| {
        latest(s, "tank.level_pct").is_some()
    })
    .await;
    assert_eq!(latest(&tank, "tank.level_pct"), Some(85.0));
    // The point alerts like any metric: above 80 % warns.
    admin
        .create_rule(&RuleSpec {
            warning: Some(80.0),
            critical: Some(95.0),
            window_s: 10,
            ..RuleSpec::new("tank_high", "tank.level_pct")
        })
        .await
        .unwrap();
    let alert = alert_of(&admin, ids["tank-4"], "tank_high").await;
    assert_eq!(alert.severity, Severity::Warning);
    // The dead meter: down by Modbus while its gateway answers ping, its own alert.
    let dead = wait_for(&admin, ids["meter-5"], "the dead meter's state", |s| {
        latest(s, "modbus.up").is_some()
    })
    .await;
    assert_eq!(latest(&dead, "modbus.up"), Some(0.0));
    assert!(latest(&dead, "meter.voltage").is_none());
    let alert = alert_of(&admin, ids["meter-5"], "modbus_unreachable").await;
    assert_eq!(alert.severity, Severity::Warning);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vcenters_hosts_and_vms_become_nodes_with_metrics_and_a_wrong_password_alerts() {
    use plantwatch_shared::api::NodeType;
    use plantwatch_testkit::vcsim::{Model, PASSWORD, USER, Vcsim};

    let sim = Vcsim::start(&Model {
        powered_off: Some("DC0_H0_VM0".into()),
        ..Model::default()
    });
    let app = polling_app().await;
    let admin = app.admin().await;
    // datastore_full tuned to fire on any use: the simulator's datastore is a temporary folder.
    let mut full = admin.rule_by_name("datastore_full").await.unwrap();
    full.spec.warning = Some(0.01);
    full.spec.critical = None;
    full.spec.clear = Some(0.0);
    admin.update_rule(full.id, &full.spec).await.unwrap();
    let params = CredentialParams {
        username: Some(USER.into()),
        fingerprint: Some(sim.fingerprint.clone()),
        ..CredentialParams::default()
    };
    credential(
        &admin,
        "vc-plant",
        CredentialKind::Vsphere,
        params.clone(),
        &[("password", PASSWORD)],
    )
    .await;
    credential(
        &admin,
        "vc-wrong",
        CredentialKind::Vsphere,
        params,
        &[("password", "not-it")],
    )
    .await;
    let vcenter = |name: &str, credential: &str| NodeSpec {
        name: name.into(),
        address: sim.address.clone(),
        node_type: Some(NodeType::Vcenter),
        credentials: vec![credential.into()],
        interval_s: Some(10),
        ..NodeSpec::default()
    };
    let vc = admin
        .create_node(&vcenter("vc01", "vc-plant"))
        .await
        .unwrap()
        .id;
    let wrong = admin
        .create_node(&vcenter("vc02", "vc-wrong"))
        .await
        .unwrap()
        .id;

    // Every host and VM of the simulator becomes a node of its own, once.
    let started = Instant::now();
    let objects = loop {
        let objects = admin.vsphere_objects(vc).await.unwrap().items;
        if objects.iter().filter(|o| o.node_id.is_some()).count() == 8 {
            break objects;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "{objects:#?}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let count = |kind: &str| objects.iter().filter(|o| o.kind == kind).count();
    assert_eq!((count("host"), count("vm"), count("datastore")), (4, 4, 1));
    let host = objects.iter().find(|o| o.name == "DC0_C0_H0").unwrap();
    assert_eq!(
        (host.state.as_str(), host.detail.as_str()),
        ("poweredOn", "DC0_C0")
    );
    let host_node = admin.get_node(host.node_id.unwrap()).await.unwrap();
    assert_eq!(host_node.node_type, NodeType::Server);
    assert_eq!(host_node.parent_id, Some(vc));
    assert!(
        host_node.tags.contains(&"cluster:DC0_C0".to_owned()),
        "{:?}",
        host_node.tags
    );
    assert!(
        host_node.tags.contains(&"datacenter:DC0".to_owned()),
        "{:?}",
        host_node.tags
    );
    let vm = objects
        .iter()
        .find(|o| o.kind == "vm" && o.state == "poweredOn")
        .unwrap();
    let vm_node = admin.get_node(vm.node_id.unwrap()).await.unwrap();
    let its_host = objects
        .iter()
        .find(|o| o.kind == "host" && o.name == vm.detail)
        .unwrap();
    assert_eq!(
        vm_node.parent_id, its_host.node_id,
        "a VM hangs off its host"
    );
    // The wrong password's vCenter made no nodes.
    assert!(admin.vsphere_objects(wrong).await.unwrap().items.is_empty());

    // Metrics: the vCenter's and its datastore's on its node; CPU and memory on each host and
    // VM, where cpu_high and memory_high read them.
    let found = wait_for(&admin, vc, "vsphere.up", |s| {
        latest(s, "vsphere.up") == Some(1.0) && latest(s, "vsphere_datastore.used_pct").is_some()
    })
    .await;
    assert_eq!(latest(&found, "vsphere.hosts"), Some(4.0));
    assert_eq!(latest(&found, "vsphere.vms"), Some(4.0));
    assert_eq!(latest(&found, "vsphere.vms_powered_on"), Some(3.0));
    let alert = alert_of(&admin, vc, "datastore_full").await;
    assert!(alert.series.contains("LocalDS_0"), "{alert:?}");
    let found = wait_for(&admin, host_node.id, "host metrics", |s| {
        latest(s, "cpu.load_pct").is_some() && latest(s, "memory.used_pct").is_some()
    })
    .await;
    assert_eq!(latest(&found, "vsphere_host.connected"), Some(1.0));
    wait_for(&admin, vm_node.id, "VM metrics", |s| {
        latest(s, "vsphere_vm.powered_on") == Some(1.0) && latest(s, "cpu.load_pct").is_some()
    })
    .await;

    // The powered-off VM: nothing until it is tagged must-run, then vm_powered_off.
    let off = objects.iter().find(|o| o.name == "DC0_H0_VM0").unwrap();
    assert_eq!(off.state, "poweredOff");
    let off = off.node_id.unwrap();
    wait_for(&admin, off, "powered off", |s| {
        latest(s, "vsphere_vm.powered_on") == Some(0.0)
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let alerts = admin
        .list_alerts(&plantwatch_shared::api::AlertQuery {
            node_id: Some(off),
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(alerts.items.is_empty(), "not must-run: {:#?}", alerts.items);
    admin
        .update_node(
            off,
            &plantwatch_shared::api::UpdateNodeRequest {
                tags: Some(vec!["must-run".into()]),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let alert = alert_of(&admin, off, "vm_powered_off").await;
    assert_eq!(alert.severity, plantwatch_shared::api::Severity::Critical);

    // The refused login: vsphere.up 0 on its node, and an alert saying so.
    wait_for(&admin, wrong, "vsphere.up 0", |s| {
        latest(s, "vsphere.up") == Some(0.0)
    })
    .await;
    let alert = alert_of(&admin, wrong, "vsphere_unreachable").await;
    assert_eq!(alert.severity, plantwatch_shared::api::Severity::Warning);
    // Why, in words, among the collector's reported problems (its next report: 60 s at most).
    let local = local_collector(&admin).await;
    let started = Instant::now();
    loop {
        let errors = admin.get_component(local).await.unwrap().last_errors;
        if errors.iter().any(|e| {
            e == "vCenter vc02: the vCenter refused the login for \"plant\": wrong user name or password"
        }) {
            assert!(!errors.iter().any(|e| e.contains("not-it")), "no password in {errors:?}");
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(90), "{errors:?}");
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    // No host or VM is pinged (they are read through the vCenter), so none is unreachable.
    let alerts = admin
        .list_alerts(&plantwatch_shared::api::AlertQuery::default())
        .await
        .unwrap();
    assert!(
        alerts.items.iter().all(|a| a.rule != "node_unreachable"),
        "{:#?}",
        alerts.items
    );
}
