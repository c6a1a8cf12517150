//! Alerting end to end through the real server over HTTPS, with a one-second evaluator and
//! short windows: reachability going offline and back, thresholds with hysteresis, maintenance
//! holding notifications, parent and collector suppression, webhook bodies and signatures, a
//! restart with notifications queued, email to an SMTP sink (aiosmtpd), syslog over UDP, and
//! the role matrix of the new routes.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly by design.

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::http::HeaderMap;
use axum::routing::post;
use common::{TestApp, approved_collector, spawn_app_with, spec, test_config};
use hmac::{Hmac, Mac as _};
use plantwatch_shared::api::{
    AlertQuery, AlertState, ChannelKind, ChannelSettings, ChannelSpec, MaintenanceScope,
    MaintenanceSpec, NodeStatus, Notification, Recurrence, Role, RuleSpec, SIGNATURE_HEADER,
    Severity, UpdateNodeRequest,
};
use plantwatch_shared::{Client, Secret};
use reqwest::Method;
use sha2::Sha256;

const HMAC_KEY: &str = "webhook-key-1";

/// A webhook receiver on loopback that keeps every body whose signature checks out, and
/// counts the ones that do not.
#[derive(Clone, Default)]
struct Receiver {
    received: Arc<Mutex<Vec<Notification>>>,
    bad_signatures: Arc<Mutex<u32>>,
}

impl Receiver {
    async fn start_on(listener: tokio::net::TcpListener) -> Self {
        let receiver = Receiver::default();
        let state = receiver.clone();
        let app = Router::new().route(
            "/hook",
            post(move |headers: HeaderMap, body: Bytes| {
                let state = state.clone();
                async move {
                    let mut mac = Hmac::<Sha256>::new_from_slice(HMAC_KEY.as_bytes()).unwrap();
                    mac.update(&body);
                    let expected = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
                    let signature = headers
                        .get(SIGNATURE_HEADER)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default();
                    if signature != expected {
                        *state.bad_signatures.lock().unwrap() += 1;
                        return axum::http::StatusCode::UNAUTHORIZED;
                    }
                    let n: Notification = serde_json::from_slice(&body).unwrap();
                    state.received.lock().unwrap().push(n);
                    axum::http::StatusCode::NO_CONTENT
                }
            }),
        );
        tokio::spawn(async move { axum::serve(listener, app).await });
        receiver
    }

    async fn start() -> (Self, String) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        (Self::start_on(listener).await, url)
    }

    fn all(&self) -> Vec<Notification> {
        self.received.lock().unwrap().clone()
    }

    fn events(&self) -> Vec<(String, Severity, Option<String>)> {
        self.all()
            .into_iter()
            .map(|n| (n.event, n.severity, n.node))
            .collect()
    }
}

fn webhook(url: &str) -> ChannelSpec {
    ChannelSpec {
        name: "ops-hook".into(),
        kind: ChannelKind::Webhook,
        settings: ChannelSettings {
            url: Some(url.to_owned()),
            timeout_s: Some(2),
            ..ChannelSettings::default()
        },
        secrets: [("hmac_key".to_owned(), Secret::from(HMAC_KEY))].into(),
        min_severity: Severity::Warning,
        tags: vec![],
        collectors: vec![],
        repeat_s: 0,
        send_resolved: true,
        enabled: true,
    }
}

/// A server evaluating every second, with collector `north`.
struct Plant {
    app: TestApp,
    admin: Client,
    north: Client,
}

async fn plant() -> Plant {
    let app = spawn_app_with(|c| c.alert_interval_secs = 1).await;
    let admin = app.admin().await;
    let registration = approved_collector(&app, &admin, "north").await;
    let north = common::keyed(&app, &registration);
    Plant { app, admin, north }
}

impl Plant {
    /// Sends line protocol as collector `north` (timestamps: now).
    async fn push(&self, body: String) {
        let (status, answer) = self
            .north
            .send_raw(
                Method::POST,
                "/api/v1/ingest/influx",
                Some("text/plain"),
                body.into_bytes(),
            )
            .await
            .unwrap();
        assert_eq!(status, 204, "{}", String::from_utf8_lossy(&answer));
    }

    async fn tune(&self, name: &str, change: impl FnOnce(&mut RuleSpec)) {
        let rule = self.admin.rule_by_name(name).await.unwrap();
        let mut spec = rule.spec.clone();
        change(&mut spec);
        self.admin.update_rule(rule.id, &spec).await.unwrap();
    }

    async fn node(&self, name: &str, address: &str) -> i64 {
        self.admin
            .create_node(&spec(name, address, "north"))
            .await
            .unwrap()
            .id
    }

    async fn status(&self, id: i64) -> (NodeStatus, Option<String>) {
        let node = self.admin.get_node(id).await.unwrap();
        (node.status, node.status_reason)
    }
}

/// Polls `check` every 200 ms until it holds, for at most `secs`.
async fn eventually<F, Fut>(secs: u64, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < deadline {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("timed out waiting for: {what}");
}

#[tokio::test]
async fn a_node_whose_ping_stops_goes_offline_after_the_threshold_and_recovers() {
    let p = plant().await;
    p.tune("node_unreachable", |s| s.window_s = 3).await;
    let (receiver, url) = Receiver::start().await;
    p.admin.create_channel(&webhook(&url)).await.unwrap();
    let plc = p.node("plc-1", "127.0.0.10").await;
    assert_eq!(p.status(plc).await.0, NodeStatus::Discovering);

    p.push(format!("ping,node_id={plc} up=1,rtt_avg_ms=0.4"))
        .await;
    eventually(5, "plc-1 healthy", || async {
        p.status(plc).await.0 == NodeStatus::Healthy
    })
    .await;

    // The ping stops answering: probes keep arriving, all failed.
    let stopped = Instant::now();
    let pushing = {
        let north = p.north.clone();
        tokio::spawn(async move {
            loop {
                let line = format!("ping,node_id={plc} up=0,loss_pct=100");
                let _ = north
                    .send_raw(
                        Method::POST,
                        "/api/v1/ingest/influx",
                        None,
                        line.into_bytes(),
                    )
                    .await;
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        })
    };
    eventually(10, "plc-1 offline", || async {
        p.status(plc).await.0 == NodeStatus::Offline
    })
    .await;
    assert!(
        stopped.elapsed() >= Duration::from_secs(2),
        "offline before the 3 s threshold: {:?}",
        stopped.elapsed()
    );
    let (_, reason) = p.status(plc).await;
    assert!(reason.unwrap().contains("no successful ping"));
    let alerts = p.admin.list_alerts(&AlertQuery::default()).await.unwrap();
    assert_eq!(alerts.total, 1);
    let alert = &alerts.items[0];
    assert_eq!(
        (alert.rule.as_str(), alert.state, alert.severity),
        ("node_unreachable", AlertState::Firing, Severity::Critical)
    );
    pushing.abort();

    // Back: resolved, healthy, and the history shows every change.
    p.push(format!("ping,node_id={plc} up=1,rtt_avg_ms=0.5"))
        .await;
    eventually(5, "plc-1 healthy again", || async {
        p.status(plc).await.0 == NodeStatus::Healthy
    })
    .await;
    let detail = p.admin.get_alert(alert.id).await.unwrap();
    assert_eq!(detail.alert.state, AlertState::Resolved);
    let events: Vec<&str> = detail.events.iter().map(|e| e.event.as_str()).collect();
    assert_eq!(events, ["firing", "resolved"]);
    eventually(5, "firing and resolved delivered", || async {
        receiver.events().len() == 2
    })
    .await;
    assert_eq!(
        receiver.events(),
        [
            ("firing".into(), Severity::Critical, Some("plc-1".into())),
            ("resolved".into(), Severity::Critical, Some("plc-1".into())),
        ]
    );
    assert_eq!(*receiver.bad_signatures.lock().unwrap(), 0);
    let detail = p.admin.get_alert(alert.id).await.unwrap();
    assert!(
        detail.deliveries.iter().all(|d| d.state == "sent"),
        "{:?}",
        detail.deliveries
    );
    let changes = p.admin.node_health(plc).await.unwrap().items;
    let path: Vec<(NodeStatus, NodeStatus)> =
        changes.iter().rev().map(|c| (c.from, c.to)).collect();
    assert_eq!(
        path,
        [
            (NodeStatus::Discovering, NodeStatus::Healthy),
            (NodeStatus::Healthy, NodeStatus::Offline),
            (NodeStatus::Offline, NodeStatus::Healthy),
        ]
    );
}

#[tokio::test]
async fn a_value_crossing_warning_then_critical_then_below_clear_does_not_flap_at_the_threshold() {
    let p = plant().await;
    let (receiver, url) = Receiver::start().await;
    p.admin.create_channel(&webhook(&url)).await.unwrap();
    let oven = p.node("oven-1", "127.0.0.11").await;
    let rule = p
        .admin
        .create_rule(&RuleSpec {
            warning: Some(60.0),
            critical: Some(80.0),
            clear: Some(50.0),
            window_s: 30,
            ..RuleSpec::new("oven_hot", "temperature.celsius")
        })
        .await
        .unwrap();
    let set = |value: f64| {
        let p = &p;
        async move {
            p.push(format!(
                "temperature,node_id={oven},sensor=zone1 celsius={value}"
            ))
            .await;
            // Two evaluator cycles see each value.
            tokio::time::sleep(Duration::from_millis(2_200)).await;
        }
    };
    let open = || async {
        p.admin
            .list_alerts(&AlertQuery::default())
            .await
            .unwrap()
            .items
            .into_iter()
            .filter(|a| a.rule_id == rule.id)
            .collect::<Vec<_>>()
    };
    set(55.0).await;
    assert!(open().await.is_empty());
    set(65.0).await;
    // Transitions are waited for (a loaded machine may run a cycle late); the hovering below
    // must change nothing however long it is watched.
    eventually(5, "warning", || async { open().await.len() == 1 }).await;
    let first = open().await;
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].severity, Severity::Warning);
    assert_eq!(first[0].series, "temperature.celsius{sensor=zone1}");
    eventually(5, "node warning", || async {
        p.status(oven).await.0 == NodeStatus::Warning
    })
    .await;
    set(85.0).await;
    eventually(5, "critical", || async {
        open().await.first().map(|a| a.severity) == Some(Severity::Critical)
    })
    .await;
    let now_open = open().await;
    assert_eq!(now_open.len(), 1);
    assert_eq!(
        (now_open[0].id, now_open[0].severity),
        (first[0].id, Severity::Critical),
        "severity changes in place"
    );
    eventually(5, "node critical", || async {
        p.status(oven).await.0 == NodeStatus::Critical
    })
    .await;
    // Hovering around the warning threshold, above the clear one, changes nothing: the
    // scenarios in server/src/alerting/scenarios/thresholds.toml hold that cycle by cycle.
    set(58.0).await;
    assert_eq!(open().await[0].id, first[0].id);
    set(49.0).await;
    eventually(5, "resolved", || async { open().await.is_empty() }).await;
    let detail = p.admin.get_alert(first[0].id).await.unwrap();
    assert_eq!(detail.alert.state, AlertState::Resolved);
    eventually(5, "three notifications", || async {
        receiver.events().len() >= 3
    })
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let events: Vec<String> = receiver.all().into_iter().map(|n| n.event).collect();
    assert_eq!(events, ["firing", "escalated", "resolved"]);
    let alerts = p
        .admin
        .list_alerts(&AlertQuery {
            state: Some("all".into()),
            ..AlertQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(alerts.total, 1, "no alert was opened twice");
}

#[tokio::test]
async fn a_maintenance_window_holds_notifications_and_shows_maintenance() {
    let p = plant().await;
    let (receiver, url) = Receiver::start().await;
    p.admin.create_channel(&webhook(&url)).await.unwrap();
    let ups = p.node("ups-1", "127.0.0.12").await;
    p.admin
        .update_node(
            ups,
            &UpdateNodeRequest {
                tags: Some(vec!["hall-2".into()]),
                ..UpdateNodeRequest::default()
            },
        )
        .await
        .unwrap();
    let window = p
        .admin
        .create_maintenance(&MaintenanceSpec {
            name: "battery swap".into(),
            scope: MaintenanceScope::Tag,
            target: "hall-2".into(),
            duration_s: Some(3_600),
            starts_at: None,
            ends_at: None,
            recurrence: Recurrence::None,
        })
        .await
        .unwrap();
    assert!(window.active);
    p.push(format!("ups,node_id={ups} on_battery=1,battery_pct=97"))
        .await;
    eventually(5, "the alert held", || async {
        let alerts = p.admin.list_alerts(&AlertQuery::default()).await.unwrap();
        alerts
            .items
            .iter()
            .any(|a| a.rule == "ups_on_battery" && a.held)
    })
    .await;
    let (status, reason) = p.status(ups).await;
    assert_eq!(status, NodeStatus::Maintenance);
    assert!(reason.unwrap().contains("battery swap"));
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(receiver.all().is_empty(), "held alerts are not notified");

    // Ending the window releases the alert, which is then notified once.
    p.admin.end_maintenance(window.id).await.unwrap();
    eventually(5, "the released alert notified", || async {
        !receiver.all().is_empty()
    })
    .await;
    assert_eq!(p.status(ups).await.0, NodeStatus::Critical);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(receiver.events().len(), 1);
    assert_eq!(receiver.all()[0].rule, "ups_on_battery");
    let listed = p.admin.list_maintenance().await.unwrap().items;
    assert!(!listed[0].active && listed[0].ended_at.is_some());
    // A window of absurd length is refused, not overflowed.
    let error = p
        .admin
        .create_maintenance(&MaintenanceSpec {
            name: "forever".into(),
            scope: MaintenanceScope::Node,
            target: "ups-1".into(),
            duration_s: Some(u64::MAX),
            starts_at: None,
            ends_at: None,
            recurrence: Recurrence::None,
        })
        .await
        .unwrap_err();
    assert!(error.to_string().contains("31 days"), "{error}");
}

#[tokio::test]
async fn a_switch_down_suppresses_its_fifty_children_and_sends_one_notification() {
    let p = plant().await;
    p.tune("node_unreachable", |s| s.window_s = 3).await;
    let (receiver, url) = Receiver::start().await;
    p.admin.create_channel(&webhook(&url)).await.unwrap();
    let switch = p.node("sw-1", "127.0.1.1").await;
    let mut children = Vec::new();
    for i in 0..50 {
        let id = p
            .node(&format!("plc-{i:02}"), &format!("127.0.1.{}", i + 10))
            .await;
        p.admin
            .update_node(
                id,
                &UpdateNodeRequest {
                    parent: Some(Some("sw-1".into())),
                    ..UpdateNodeRequest::default()
                },
            )
            .await
            .unwrap();
        children.push(id);
    }
    let all = |up: u8| {
        std::iter::once(switch)
            .chain(children.iter().copied())
            .map(|id| format!("ping,node_id={id} up={up}"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    p.push(all(1)).await;
    eventually(5, "all healthy", || async {
        p.status(children[49]).await.0 == NodeStatus::Healthy
    })
    .await;
    // The switch dies: nothing behind it answers either.
    for _ in 0..12 {
        p.push(all(0)).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    eventually(5, "every child offline", || async {
        let alerts = p.admin.list_alerts(&AlertQuery::default()).await.unwrap();
        alerts
            .items
            .iter()
            .filter(|a| a.state == AlertState::Firing)
            .count()
            == 51
    })
    .await;
    let alerts = p
        .admin
        .list_alerts(&AlertQuery {
            limit: Some(100),
            ..AlertQuery::default()
        })
        .await
        .unwrap()
        .items;
    let suppressed = alerts.iter().filter(|a| a.suppressed).count();
    assert_eq!(suppressed, 50);
    assert!(
        alerts
            .iter()
            .any(|a| a.node.as_deref() == Some("sw-1") && !a.suppressed)
    );
    let (status, reason) = p.status(children[7]).await;
    assert_eq!(status, NodeStatus::Offline);
    assert_eq!(reason.as_deref(), Some("parent sw-1 down"));
    tokio::time::sleep(Duration::from_secs(3)).await;
    let sent = receiver.all();
    assert_eq!(sent.len(), 1, "{:?}", receiver.events());
    assert_eq!(sent[0].node.as_deref(), Some("sw-1"));
    assert_eq!(sent[0].affected_nodes, Some(50));
}

#[tokio::test]
async fn a_silent_collector_turns_its_nodes_offline_with_one_notification() {
    let p = plant().await;
    p.tune("collector_offline", |s| s.window_s = 3).await;
    p.tune("node_unreachable", |s| s.window_s = 4).await;
    let (receiver, url) = Receiver::start().await;
    p.admin.create_channel(&webhook(&url)).await.unwrap();
    let mut nodes = Vec::new();
    for i in 0..10 {
        nodes.push(
            p.node(&format!("rtu-{i}"), &format!("127.0.2.{}", i + 1))
                .await,
        );
    }
    let lines: Vec<String> = nodes
        .iter()
        .map(|id| format!("ping,node_id={id} up=1"))
        .collect();
    p.push(lines.join("\n")).await;
    // Then the site's uplink drops: nothing more from north.
    eventually(12, "every node offline", || async {
        let nodes = p.admin.list_nodes(&Default::default()).await.unwrap().items;
        nodes.iter().all(|n| n.status == NodeStatus::Offline)
    })
    .await;
    let (_, reason) = p.status(nodes[3]).await;
    assert_eq!(reason.as_deref(), Some("collector north offline"));
    // Past the nodes' own threshold too: still the one notification.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let sent = receiver.all();
    assert_eq!(sent.len(), 1, "{:?}", receiver.events());
    assert_eq!(sent[0].rule, "collector_offline");
    assert_eq!(sent[0].collector.as_deref(), Some("north"));
    assert_eq!(sent[0].affected_nodes, Some(10));
}

#[tokio::test]
async fn notifications_queued_across_a_restart_are_delivered_once() {
    let p = plant().await;
    // The receiver's port, closed for now: deliveries fail and stay queued.
    let parked = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = parked.local_addr().unwrap();
    drop(parked);
    let url = format!("http://{addr}/hook");
    p.admin.create_channel(&webhook(&url)).await.unwrap();
    let ups = p.node("ups-9", "127.0.0.19").await;
    p.push(format!("ups,node_id={ups} on_battery=1")).await;
    let db_path = p.app.dir.path().join("plantwatch.db");
    let attempts = || {
        let conn = rusqlite::Connection::open(&db_path).unwrap();
        conn.query_row(
            "SELECT count(*), coalesce(max(attempts), 0) FROM notifications WHERE state = 'queued'",
            [],
            |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?)),
        )
        .unwrap()
    };
    eventually(10, "a failed attempt", || async { attempts().1 >= 1 }).await;
    assert_eq!(attempts().0, 1);

    let Plant { app, .. } = p;
    let TestApp { server, dir } = app;
    server.shutdown().await.unwrap();
    let receiver = Receiver::start_on(tokio::net::TcpListener::bind(addr).await.unwrap()).await;
    let server = plantwatch_server::server::start(test_config(dir.path()))
        .await
        .unwrap();
    let app = TestApp { server, dir };
    // The retry is due 5 s after the first failure.
    eventually(15, "delivered after the restart", || async {
        !receiver.all().is_empty()
    })
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let sent = receiver.all();
    assert_eq!(sent.len(), 1, "{:?}", receiver.events());
    assert_eq!(
        (sent[0].event.as_str(), sent[0].rule.as_str()),
        ("firing", "ups_on_battery")
    );
    let admin = app.admin().await;
    let alert = &admin
        .list_alerts(&AlertQuery::default())
        .await
        .unwrap()
        .items[0];
    let detail = admin.get_alert(alert.id).await.unwrap();
    assert_eq!(detail.deliveries.len(), 1);
    assert_eq!(detail.deliveries[0].state, "sent");
    assert!(detail.deliveries[0].attempts >= 2);
}

/// Starts Python's aiosmtpd on a loopback port, saving mail into a maildir.
struct SmtpSink {
    child: std::process::Child,
    port: u16,
    maildir: tempfile::TempDir,
}

impl SmtpSink {
    fn start() -> Self {
        Self::start_with(&[])
    }

    /// aiosmtpd with extra options (`--tlscert`/`--tlskey` for STARTTLS, `--smtpscert`/
    /// `--smtpskey` for implicit TLS).
    fn start_with(options: &[&std::ffi::OsStr]) -> Self {
        let maildir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = std::process::Command::new("python3")
            .args(["-m", "aiosmtpd", "-n"])
            .args(options)
            .arg("-l")
            .arg(format!("127.0.0.1:{port}"))
            .args(["-c", "aiosmtpd.handlers.Mailbox"])
            .arg(maildir.path().join("mail"))
            .spawn()
            .expect("python3 -m aiosmtpd (pip install aiosmtpd; .ci/run installs it)");
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "aiosmtpd did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
        SmtpSink {
            child,
            port,
            maildir,
        }
    }

    fn messages(&self) -> Vec<String> {
        let new = self.maildir.path().join("mail").join("new");
        std::fs::read_dir(new)
            .map(|entries| {
                entries
                    .filter_map(|e| std::fs::read_to_string(e.ok()?.path()).ok())
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn email_reaches_an_smtp_sink_and_syslog_a_udp_listener() {
    let p = plant().await;
    let sink = SmtpSink::start();
    let email = p
        .admin
        .create_channel(&ChannelSpec {
            name: "plant-mail".into(),
            kind: ChannelKind::Email,
            settings: ChannelSettings {
                smtp_host: Some("127.0.0.1".into()),
                smtp_port: Some(sink.port),
                tls: Some("none".into()),
                from: Some("plantwatch@plant.example".into()),
                to: vec!["shift-lead@plant.example".into()],
                ..ChannelSettings::default()
            },
            secrets: Default::default(),
            ..webhook("http://unused")
        })
        .await
        .unwrap();
    let test = p.admin.test_channel(email.id).await.unwrap();
    assert!(test.delivered, "{:?}", test.error);
    let messages = sink.messages();
    assert_eq!(messages.len(), 1);
    assert!(
        messages[0].contains("Subject: [TEST] test on plantwatch"),
        "{}",
        messages[0]
    );
    assert!(messages[0].contains("To: shift-lead@plant.example"));

    // A real alert by email, too.
    let ups = p.node("ups-3", "127.0.0.13").await;
    p.push(format!("ups,node_id={ups} on_battery=1")).await;
    eventually(10, "the alert mailed", || async {
        sink.messages().len() == 2
    })
    .await;
    assert!(
        sink.messages()
            .iter()
            .any(|m| m.contains("[CRITICAL] ups_on_battery on ups-3"))
    );

    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let syslog = p
        .admin
        .create_channel(&ChannelSpec {
            name: "siem".into(),
            kind: ChannelKind::Syslog,
            settings: ChannelSettings {
                host: Some("127.0.0.1".into()),
                port: Some(socket.local_addr().unwrap().port()),
                ..ChannelSettings::default()
            },
            secrets: Default::default(),
            ..webhook("http://unused")
        })
        .await
        .unwrap();
    assert!(p.admin.test_channel(syslog.id).await.unwrap().delivered);
    let mut buffer = [0u8; 2048];
    let (n, _) = tokio::time::timeout(Duration::from_secs(5), socket.recv_from(&mut buffer))
        .await
        .unwrap()
        .unwrap();
    let message = String::from_utf8_lossy(&buffer[..n]);
    assert!(message.starts_with("<133>1 "), "{message}");
    assert!(message.contains("plantwatch - ALERT [plantwatch@32473 event=\"test\""));

    // A channel that cannot deliver says why.
    let refused = p
        .admin
        .create_channel(&ChannelSpec {
            name: "dead-relay".into(),
            kind: ChannelKind::Email,
            settings: ChannelSettings {
                smtp_port: Some(1),
                ..email_settings()
            },
            secrets: Default::default(),
            ..webhook("http://unused")
        })
        .await;
    let refused = p.admin.test_channel(refused.unwrap().id).await.unwrap();
    assert!(!refused.delivered);
    assert!(refused.error.unwrap().contains("SMTP"));
}

fn email_settings() -> ChannelSettings {
    ChannelSettings {
        smtp_host: Some("127.0.0.1".into()),
        from: Some("plantwatch@plant.example".into()),
        to: vec!["ops@plant.example".into()],
        ..ChannelSettings::default()
    }
}

#[tokio::test]
async fn built_in_rules_can_be_tuned_and_disabled_but_not_deleted_and_bad_rules_are_refused() {
    let p = plant().await;
    let rules = p.admin.list_rules().await.unwrap().items;
    let names: Vec<&str> = rules.iter().map(|r| r.spec.name.as_str()).collect();
    for builtin in [
        "node_unreachable",
        "agent_heartbeat",
        "collector_offline",
        "snmp_unreachable",
        "interface_down",
        "cpu_high",
        "memory_high",
        "disk_high",
        "ups_on_battery",
        "collector_outbox_lag",
    ] {
        assert!(names.contains(&builtin), "{builtin} missing from {names:?}");
    }
    let cpu = p.admin.rule_by_name("cpu_high").await.unwrap();
    let error = p.admin.delete_rule(cpu.id).await.unwrap_err();
    assert!(error.to_string().contains("disable it instead"), "{error}");
    let renamed = RuleSpec {
        name: "cpu".into(),
        ..cpu.spec.clone()
    };
    assert!(p.admin.update_rule(cpu.id, &renamed).await.is_err());
    let tuned = RuleSpec {
        enabled: false,
        warning: Some(88.0),
        ..cpu.spec.clone()
    };
    let after = p.admin.update_rule(cpu.id, &tuned).await.unwrap();
    assert!(!after.spec.enabled);
    assert_eq!(after.spec.warning, Some(88.0));
    // A warning threshold below the clear threshold (85) would never clear.
    let inverted = RuleSpec {
        warning: Some(70.0),
        ..cpu.spec.clone()
    };
    let error = p.admin.update_rule(cpu.id, &inverted).await.unwrap_err();
    assert!(error.to_string().contains("clear threshold"), "{error}");

    for (body, needle) in [
        (RuleSpec::new("no-threshold", "a.b"), "threshold"),
        (
            RuleSpec {
                warning: Some(1.0),
                ..RuleSpec::new("bad-metric", "nodot")
            },
            "measurement.field",
        ),
        (
            RuleSpec {
                warning: Some(1.0),
                window_s: 3_600,
                ..RuleSpec::new("too-long", "a.b")
            },
            "window_s",
        ),
    ] {
        let error = p.admin.create_rule(&body).await.unwrap_err();
        assert!(error.to_string().contains(needle), "{error}");
    }
    let custom = p
        .admin
        .create_rule(&RuleSpec {
            warning: Some(1.0),
            ..RuleSpec::new("custom", "a.b")
        })
        .await
        .unwrap();
    p.admin.delete_rule(custom.id).await.unwrap();
}

#[tokio::test]
async fn acknowledging_records_who_and_when_and_the_preview_shows_current_values() {
    let p = plant().await;
    let a = p.node("drive-1", "127.0.0.21").await;
    let b = p.node("drive-2", "127.0.0.22").await;
    p.push(format!(
        "drive,node_id={a} current_a=12.5\ndrive,node_id={b} current_a=3.0"
    ))
    .await;
    let spec = RuleSpec {
        warning: Some(10.0),
        ..RuleSpec::new("drive_current", "drive.current_a")
    };
    let preview = p.admin.preview_rule(&spec).await.unwrap().items;
    assert_eq!(preview.len(), 2);
    assert_eq!(preview[0].node, "drive-1");
    assert_eq!(
        (preview[0].value, preview[0].severity),
        (Some(12.5), Some(Severity::Warning))
    );
    assert_eq!((preview[1].value, preview[1].severity), (Some(3.0), None));
    p.admin.create_rule(&spec).await.unwrap();
    eventually(5, "the alert", || async {
        p.admin
            .list_alerts(&AlertQuery::default())
            .await
            .unwrap()
            .total
            == 1
    })
    .await;
    let alert = p
        .admin
        .list_alerts(&AlertQuery::default())
        .await
        .unwrap()
        .items[0]
        .clone();
    let acked = p
        .admin
        .ack_alert(alert.id, Some("drive being replaced".into()))
        .await
        .unwrap();
    assert_eq!(acked.acked_by.as_deref(), Some(common::ADMIN));
    assert!(acked.acked_at.is_some());
    assert_eq!(acked.ack_comment.as_deref(), Some("drive being replaced"));
    let unacked = p.admin.unack_alert(alert.id).await.unwrap();
    assert!(unacked.acked_by.is_none());
    let events: Vec<String> = p
        .admin
        .get_alert(alert.id)
        .await
        .unwrap()
        .events
        .into_iter()
        .map(|e| e.event)
        .collect();
    assert_eq!(events, ["firing", "acked", "unacked"]);
    // Several at once: one transaction; an id that is no alert is skipped and named.
    let answer = p
        .admin
        .ack_alerts(&[alert.id, 999_999], Some("shift handover".into()))
        .await
        .unwrap();
    assert_eq!(answer.acked.len(), 1);
    assert_eq!(
        answer.acked[0].ack_comment.as_deref(),
        Some("shift handover")
    );
    assert_eq!(answer.skipped.len(), 1);
    assert_eq!(answer.skipped[0].id, 999_999);
    assert!(
        answer.skipped[0].reason.contains("no alert 999999"),
        "{answer:?}"
    );
    let none = p.admin.ack_alerts(&[], None).await.unwrap_err();
    assert_eq!(none.status(), Some(400));
    p.admin.unack_alert(alert.id).await.unwrap();
    let summary = p.admin.summary().await.unwrap();
    assert_eq!(summary.active_alerts, 1);
    assert_eq!(summary.alerts_by_severity.get("warning"), Some(&1));
    assert_eq!(summary.newest_alerts[0].id, alert.id);
    assert_eq!(summary.nodes_by_health.get("warning"), Some(&1));
    assert!(summary.evaluator_cycle_ms.is_some_and(|ms| ms < 1_000.0));
}

#[tokio::test]
async fn every_alerting_route_answers_each_role_as_documented() {
    let p = plant().await;
    let admin = &p.admin;
    let node = p.node("plc-r", "127.0.0.30").await;
    p.push(format!("ups,node_id={node} on_battery=1")).await;
    eventually(5, "an alert", || async {
        admin
            .list_alerts(&AlertQuery::default())
            .await
            .unwrap()
            .total
            == 1
    })
    .await;
    let alert = admin
        .list_alerts(&AlertQuery::default())
        .await
        .unwrap()
        .items[0]
        .id;
    let channel = admin
        .create_channel(&webhook("http://127.0.0.1:9/x"))
        .await
        .unwrap()
        .id;
    let rule = admin.rule_by_name("cpu_high").await.unwrap();
    let rule_body = serde_json::to_string(&rule.spec).unwrap();
    let custom = serde_json::to_string(&RuleSpec {
        warning: Some(1.0),
        ..RuleSpec::new("role-{who}", "a.b")
    })
    .unwrap();
    let window = |who: &str| {
        format!(r#"{{"name": "w-{who}", "scope": "node", "target": "plc-r", "duration_s": 60}}"#)
    };
    let channel_body = |who: &str| {
        format!(
            r#"{{"name": "c-{who}", "kind": "webhook", "settings": {{"url": "http://127.0.0.1:9/{who}"}}}}"#
        )
    };
    let mut failures = Vec::new();
    for (who, client) in p.app.callers(admin).await {
        let (read, operate, administer) = match who {
            "anonymous" => (401, 401, 401),
            "viewer" => (200, 403, 403),
            "operator" => (200, 200, 403),
            _ => (200, 200, 200),
        };
        let created = |ok: u16| if ok == 200 { 201 } else { ok };
        let f = &mut failures;
        p.app
            .expect_status(f, who, &client, Method::GET, "/api/v1/alerts", None, read)
            .await;
        p.app
            .expect_status(
                f,
                who,
                &client,
                Method::GET,
                &format!("/api/v1/alerts/{alert}"),
                None,
                read,
            )
            .await;
        p.app
            .expect_status(
                f,
                who,
                &client,
                Method::POST,
                &format!("/api/v1/alerts/{alert}/ack"),
                Some("{}".into()),
                operate,
            )
            .await;
        p.app
            .expect_status(
                f,
                who,
                &client,
                Method::POST,
                "/api/v1/alerts/ack",
                Some(format!("{{\"ids\": [{alert}]}}")),
                operate,
            )
            .await;
        p.app
            .expect_status(
                f,
                who,
                &client,
                Method::POST,
                &format!("/api/v1/alerts/{alert}/unack"),
                None,
                operate,
            )
            .await;
        p.app
            .expect_status(
                f,
                who,
                &client,
                Method::POST,
                &format!("/api/v1/alerts/{alert}/ignore"),
                Some("{}".into()),
                operate,
            )
            .await;
        p.app
            .expect_status(
                f,
                who,
                &client,
                Method::GET,
                "/api/v1/ignored-series",
                None,
                read,
            )
            .await;
        p.app
            .expect_status(
                f,
                who,
                &client,
                Method::DELETE,
                "/api/v1/ignored-series/999999",
                None,
                if operate == 200 { 404 } else { operate },
            )
            .await;
        p.app
            .expect_status(
                f,
                who,
                &client,
                Method::GET,
                "/api/v1/alert-definitions",
                None,
                read,
            )
            .await;
        p.app
            .expect_status(
                f,
                who,
                &client,
                Method::GET,
                &format!("/api/v1/alert-definitions/{}", rule.id),
                None,
                read,
            )
            .await;
        p.app
            .expect_status(
                f,
                who,
                &client,
                Method::PUT,
                &format!("/api/v1/alert-definitions/{}", rule.id),
                Some(rule_body.clone()),
                operate,
            )
            .await;
        p.app
            .expect_status(
                f,
                who,
                &client,
                Method::POST,
                "/api/v1/alert-definitions",
                Some(custom.replace("{who}", who)),
                created(operate),
            )
            .await;
        p.app
            .expect_status(
                f,
                who,
                &client,
                Method::POST,
                "/api/v1/alert-definitions/preview",
                Some(rule_body.clone()),
                read,
            )
            .await;
        p.app
            .expect_status(
                f,
                who,
                &client,
                Method::GET,
                "/api/v1/maintenance-windows",
                None,
                read,
            )
            .await;
        p.app
            .expect_status(
                f,
                who,
                &client,
                Method::POST,
                "/api/v1/maintenance-windows",
                Some(window(who)),
                created(operate),
            )
            .await;
        p.app
            .expect_status(
                f,
                who,
                &client,
                Method::GET,
                "/api/v1/notification-channels",
                None,
                operate,
            )
            .await;
        p.app
            .expect_status(
                f,
                who,
                &client,
                Method::GET,
                &format!("/api/v1/notification-channels/{channel}"),
                None,
                operate,
            )
            .await;
        p.app
            .expect_status(
                f,
                who,
                &client,
                Method::POST,
                "/api/v1/notification-channels",
                Some(channel_body(who)),
                created(administer),
            )
            .await;
        p.app
            .expect_status(
                f,
                who,
                &client,
                Method::GET,
                &format!("/api/v1/nodes/{node}/health"),
                None,
                read,
            )
            .await;
        let channel_path = format!("/api/v1/notification-channels/{channel}");
        p.app
            .expect_status(
                f,
                who,
                &client,
                Method::PUT,
                &channel_path,
                Some(channel_body("put")),
                administer,
            )
            .await;
        let test_path = format!("{channel_path}/test");
        p.app
            .expect_status(f, who, &client, Method::POST, &test_path, None, administer)
            .await;
    }
    assert!(failures.is_empty(), "{failures:#?}");
    // Channel secrets are never answered, only their names.
    let listed = admin.list_channels().await.unwrap();
    let text = serde_json::to_string(&listed).unwrap();
    assert!(!text.contains(HMAC_KEY));
    // The admin's PUT renamed it and gave no secrets: its key is kept.
    let hook = listed.items.iter().find(|c| c.id == channel).unwrap();
    assert_eq!(hook.name, "c-put");
    assert_eq!(hook.secrets, ["hmac_key"]);
}

#[tokio::test]
async fn an_unacknowledged_critical_alert_repeats_until_acknowledged() {
    let p = plant().await;
    let (receiver, url) = Receiver::start().await;
    p.admin
        .create_channel(&ChannelSpec {
            repeat_s: 2,
            ..webhook(&url)
        })
        .await
        .unwrap();
    let ups = p.node("ups-7", "127.0.0.17").await;
    p.push(format!("ups,node_id={ups} on_battery=1")).await;
    eventually(10, "a repeat", || async {
        receiver.all().iter().any(|n| n.event == "repeat")
    })
    .await;
    let alert = p
        .admin
        .list_alerts(&AlertQuery::default())
        .await
        .unwrap()
        .items[0]
        .id;
    p.admin
        .ack_alert(alert, Some("on it".into()))
        .await
        .unwrap();
    // Let a cycle see the acknowledgement and the sender finish what was queued before it.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after_ack = receiver.all().len();
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(
        receiver.all().len(),
        after_ack,
        "no repeat once acknowledged"
    );
    assert_eq!(receiver.all()[0].event, "firing");
}

#[tokio::test]
async fn a_node_with_two_uplinks_is_suppressed_only_when_both_are_down() {
    let p = plant().await;
    p.tune("node_unreachable", |s| s.window_s = 2).await;
    let (receiver, url) = Receiver::start().await;
    p.admin.create_channel(&webhook(&url)).await.unwrap();
    let a = p.node("sw-a", "127.0.4.1").await;
    let b = p.node("sw-b", "127.0.4.2").await;
    let plc = p.node("plc-ring", "127.0.4.3").await;
    p.admin
        .update_node(
            plc,
            &UpdateNodeRequest {
                parent: Some(Some("sw-a".into())),
                ..UpdateNodeRequest::default()
            },
        )
        .await
        .unwrap();
    let node = p.admin.add_parent(plc, b).await.unwrap();
    assert_eq!(node.other_parents, ["sw-b"]);
    // Only operators may change parents; a parent of itself or a loop is refused.
    let (viewer, _) = p
        .app
        .user_with_role(&p.admin, "vic", plantwatch_shared::api::Role::Viewer)
        .await;
    assert_eq!(
        viewer.add_parent(plc, a).await.unwrap_err().status(),
        Some(403)
    );
    assert!(p.admin.add_parent(plc, plc).await.is_err());
    assert!(
        p.admin.add_parent(b, plc).await.is_err(),
        "b → plc → b is a loop"
    );

    let push = |a_up: u8, b_up: u8, plc_up: u8| {
        format!(
            "ping,node_id={a} up={a_up}\nping,node_id={b} up={b_up}\nping,node_id={plc} up={plc_up}"
        )
    };
    p.push(push(1, 1, 1)).await;
    // sw-a fails, and so (for the test's sake) does the PLC: sw-b still stands, so the PLC's
    // own alert is not suppressed and is notified.
    for _ in 0..8 {
        p.push(push(0, 1, 0)).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    eventually(5, "plc-ring notified", || async {
        receiver
            .all()
            .iter()
            .any(|n| n.node.as_deref() == Some("plc-ring"))
    })
    .await;
    let (status, reason) = p.status(plc).await;
    assert_eq!(status, NodeStatus::Offline);
    assert!(reason.unwrap().contains("no successful ping"));

    // Both uplinks down: the PLC's alert becomes suppressed and its reason names both.
    for _ in 0..6 {
        p.push(push(0, 0, 0)).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    eventually(5, "plc-ring suppressed", || async {
        p.status(plc).await.1.as_deref() == Some("parents sw-a, sw-b down")
    })
    .await;
    let alerts = p
        .admin
        .list_alerts(&AlertQuery::default())
        .await
        .unwrap()
        .items;
    let plc_alert = alerts.iter().find(|a| a.node_id == Some(plc)).unwrap();
    assert!(plc_alert.suppressed);

    p.admin.remove_parent(plc, b).await.unwrap();
    assert!(
        p.admin
            .get_node(plc)
            .await
            .unwrap()
            .other_parents
            .is_empty()
    );
    assert_eq!(
        p.admin.remove_parent(plc, b).await.unwrap_err().status(),
        Some(404)
    );
}

#[tokio::test]
async fn email_goes_over_starttls_and_implicit_tls_to_a_relay_with_its_own_certificate() {
    let p = plant().await;
    let certs = tempfile::tempdir().unwrap();
    let certified =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
            .unwrap();
    let cert_pem = certified.cert.pem();
    let (cert, key) = (
        certs.path().join("relay.crt"),
        certs.path().join("relay.key"),
    );
    std::fs::write(&cert, &cert_pem).unwrap();
    std::fs::write(&key, certified.signing_key.serialize_pem()).unwrap();
    let starttls = SmtpSink::start_with(&[
        "--tlscert".as_ref(),
        cert.as_os_str(),
        "--tlskey".as_ref(),
        key.as_os_str(),
    ]);
    let smtps = SmtpSink::start_with(&[
        "--smtpscert".as_ref(),
        cert.as_os_str(),
        "--smtpskey".as_ref(),
        key.as_os_str(),
    ]);
    let channel = |name: &str, port: u16, tls: &str, ca: Option<&str>| ChannelSpec {
        name: name.into(),
        kind: ChannelKind::Email,
        settings: ChannelSettings {
            smtp_port: Some(port),
            tls: Some(tls.into()),
            tls_ca_pem: ca.map(str::to_owned),
            ..email_settings()
        },
        secrets: Default::default(),
        ..webhook("http://unused")
    };
    for (name, sink, tls) in [
        ("mail-starttls", &starttls, "starttls"),
        ("mail-tls", &smtps, "tls"),
    ] {
        let created = p
            .admin
            .create_channel(&channel(name, sink.port, tls, Some(&cert_pem)))
            .await
            .unwrap();
        let outcome = p.admin.test_channel(created.id).await.unwrap();
        assert!(outcome.delivered, "{name}: {:?}", outcome.error);
        assert_eq!(sink.messages().len(), 1, "{name}");
    }
    // Without the relay's certificate the connection is refused, not silently trusted.
    let untrusted = p
        .admin
        .create_channel(&channel("mail-untrusted", starttls.port, "starttls", None))
        .await
        .unwrap();
    let outcome = p.admin.test_channel(untrusted.id).await.unwrap();
    assert!(!outcome.delivered);
    assert_eq!(starttls.messages().len(), 1);
    // A certificate that is not PEM is refused when the channel is saved.
    let error = p
        .admin
        .create_channel(&channel(
            "mail-bad-ca",
            starttls.port,
            "starttls",
            Some("not a pem"),
        ))
        .await
        .unwrap_err();
    assert!(error.to_string().contains("tls_ca_pem"), "{error}");
}

#[tokio::test]
async fn snmp_unreachable_resolves_once_snmp_answers_again_and_says_the_value_is_back() {
    let p = plant().await;
    p.tune("snmp_unreachable", |s| s.for_s = 0).await;
    let (receiver, url) = Receiver::start().await;
    p.admin.create_channel(&webhook(&url)).await.unwrap();
    let sw = p.node("sw-snmp", "127.0.1.2").await;
    p.push(format!("ping,node_id={sw} up=1\nsnmp,node_id={sw} up=0"))
        .await;
    eventually(5, "snmp_unreachable firing", || async {
        p.status(sw).await.0 == NodeStatus::Warning
    })
    .await;
    // snmpd restarted: snmp.up is exactly 1 again, the clear threshold.
    p.push(format!("ping,node_id={sw} up=1\nsnmp,node_id={sw} up=1"))
        .await;
    eventually(5, "healthy again", || async {
        p.status(sw).await.0 == NodeStatus::Healthy
    })
    .await;
    eventually(5, "resolved delivered", || async {
        receiver.events().len() == 2
    })
    .await;
    let resolved = &receiver.all()[1];
    assert_eq!(resolved.event, "resolved");
    assert_eq!(
        resolved.message,
        "snmp.up: last 1, back to normal (no longer below 1)"
    );
}

#[tokio::test]
async fn unused_ports_never_alert_and_ports_going_down_together_send_one_notification() {
    let p = plant().await;
    let (receiver, url) = Receiver::start().await;
    p.admin.create_channel(&webhook(&url)).await.unwrap();
    let sw = p.node("sw-c3560", "127.0.1.3").await;
    // 48 ports administratively up; 10 connected, 38 unused (operationally down).
    let ports = |connected_up: bool| {
        (1..=48)
            .map(|port| {
                let oper = if port <= 10 && connected_up { 1 } else { 2 };
                format!(
                    "interface,node_id={sw},ifIndex={port},ifName=Gi0/{port} \
                     admin_status=1i,oper_status={oper}i"
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    };
    for _ in 0..3 {
        p.push(ports(true)).await;
        tokio::time::sleep(Duration::from_millis(700)).await;
    }
    let alerts = p.admin.list_alerts(&AlertQuery::default()).await.unwrap();
    assert_eq!(alerts.total, 0, "unused ports alerted: {:?}", alerts.items);
    // The ten connected ports go down at once: ten alerts, one notification.
    p.push(ports(false)).await;
    eventually(5, "ten interface alerts", || async {
        let alerts = p.admin.list_alerts(&AlertQuery::default()).await.unwrap();
        alerts.total == 10
    })
    .await;
    eventually(5, "the notification", || async {
        !receiver.all().is_empty()
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let sent = receiver.all();
    let summary: Vec<_> = sent
        .iter()
        .map(|n| (n.alert_id, n.series.clone(), n.also.len()))
        .collect();
    assert_eq!(sent.len(), 1, "{summary:?}");
    assert_eq!(sent[0].rule, "interface_down");
    assert_eq!(sent[0].also.len(), 9);
    assert!(
        sent[0].message.ends_with("(+9 more)"),
        "{}",
        sent[0].message
    );
    let mut series: Vec<&str> = std::iter::once(sent[0].series.as_str())
        .chain(sent[0].also.iter().map(|a| a.series.as_str()))
        .collect();
    series.sort_unstable();
    series.dedup();
    assert_eq!(series.len(), 10);

    // An operator ignores one port (it was decommissioned): its alert resolves, the rule
    // leaves that series alone, and the list says who did it.
    let (operator, _) = p.app.user_with_role(&p.admin, "olga", Role::Operator).await;
    let alerts = p.admin.list_alerts(&AlertQuery::default()).await.unwrap();
    let port = alerts
        .items
        .iter()
        .find(|a| a.series.contains("ifName=Gi0/3}"))
        .unwrap()
        .clone();
    let ignored = operator
        .ignore_alert_series(port.id, Some("port decommissioned".into()))
        .await
        .unwrap();
    assert_eq!(ignored.series, port.series);
    assert_eq!(ignored.ignored_by, "olga");
    eventually(5, "the ignored port's alert resolved", || async {
        p.admin.get_alert(port.id).await.unwrap().alert.state == AlertState::Resolved
    })
    .await;
    p.push(ports(false)).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let open = p.admin.list_alerts(&AlertQuery::default()).await.unwrap();
    assert_eq!(open.total, 9, "the ignored port opened again");
    let listed = p.admin.ignored_series().await.unwrap();
    assert_eq!(listed.total, 1);
    // Judged again once un-ignored.
    operator.unignore_series(ignored.id).await.unwrap();
    assert_eq!(p.admin.ignored_series().await.unwrap().total, 0);
}
