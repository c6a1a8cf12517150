//! An active/standby pair of real `plantwatch-server` processes on loopback, sharing a
//! directory, replicated by Litestream (`docs/ha.md`): a SIGKILLed active is replaced within
//! 30 s while a pusher, a real agent and a real collector keep sending, nothing acknowledged is
//! lost, and a rule firing during the failover notifies once; a planned switch-over loses
//! nothing; a paused (SIGSTOP) active comes back as the standby, never as a second active.

use std::path::{Path, PathBuf};
use std::process::Child;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use plantwatch_shared::Client;
use plantwatch_shared::api::{
    Aggregation, ChannelKind, ChannelSettings, ChannelSpec, ComponentKind, JoinCode, MetricQuery,
    Notification, RuleSpec, Severity,
};
use plantwatch_shared::push::{Lines, PushOptions, Pusher};
use plantwatch_testkit::pair::{Pair, role_of, wait_active};
use plantwatch_testkit::{ADMIN_PASSWORD, binary_beside, ok, wait_until};

use super::BIN;

/// A webhook receiver counting what it gets.
async fn receiver() -> (Arc<Mutex<Vec<Notification>>>, String) {
    let received = Arc::new(Mutex::new(Vec::new()));
    let store = received.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |body: axum::body::Bytes| {
            let store = store.clone();
            async move {
                store
                    .lock()
                    .unwrap()
                    .push(serde_json::from_slice::<Notification>(&body).unwrap());
                axum::http::StatusCode::NO_CONTENT
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (received, url)
}

/// Sends `probe,src=test value=i` at a second apart in the past, every 40 ms, through the
/// daemons' own pusher, and `trigger value=…` at the present (what the rule watches).
struct Probe {
    sent: Arc<AtomicU64>,
    trigger: Arc<AtomicU64>,
    stop: tokio::sync::watch::Sender<bool>,
    done: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
    base_s: i64,
}

impl Probe {
    fn start(client: Client, outbox: PathBuf) -> Probe {
        let mut options = PushOptions::new(outbox);
        options.flush_every = Duration::from_millis(200);
        options.retry_min = Duration::from_millis(200);
        options.retry_max = Duration::from_secs(1);
        options.replay_per_second = 50;
        let (pusher, lines, _) = Pusher::spawn(client, options).unwrap();
        let sent = Arc::new(AtomicU64::new(0));
        let trigger = Arc::new(AtomicU64::new(0));
        let (stop, mut stopped) = tokio::sync::watch::channel(false);
        let (done, finished) = tokio::sync::oneshot::channel::<()>();
        let base_s = time::OffsetDateTime::now_utc().unix_timestamp() - 3_000;
        let (count, level) = (sent.clone(), trigger.clone());
        let task = tokio::spawn(async move {
            let mut every = tokio::time::interval(Duration::from_millis(40));
            let mut i = 0u64;
            loop {
                tokio::select! {
                    _ = every.tick() => {}
                    _ = stopped.changed() => break,
                }
                let now_ns = time::OffsetDateTime::now_utc().unix_timestamp_nanos();
                let text = format!(
                    "probe,src=test value={i} {}\ntrigger value={} {now_ns}\n",
                    (base_s + i as i64) as i128 * 1_000_000_000,
                    level.load(Ordering::SeqCst),
                );
                lines.send(Lines { text, count: 2 }).await;
                i += 1;
                count.store(i, Ordering::SeqCst);
            }
            // The pusher goes on delivering its outbox until the test ends.
            let _ = finished.await;
            pusher.stop().await;
        });
        Probe {
            sent,
            trigger,
            stop,
            done,
            task,
            base_s,
        }
    }

    /// Stops generating; returns how many probes were made, their base time, and what stops
    /// the pusher (which delivers its outbox until then).
    async fn finish(self) -> (u64, i64, impl FnOnce()) {
        let _ = self.stop.send(true);
        tokio::time::sleep(Duration::from_millis(100)).await;
        let (done, task) = (self.done, self.task);
        let stop = move || {
            let _ = done.send(());
            task.abort();
        };
        (self.sent.load(Ordering::SeqCst), self.base_s, stop)
    }
}

/// The probe values stored on `node` (one per second of probe time).
async fn stored(admin: &Client, node: i64, base_s: i64, n: u64) -> Vec<u64> {
    let answer = admin
        .node_metrics(
            node,
            &MetricQuery {
                metric: Some("probe.value".into()),
                from: Some(base_s - 1),
                to: Some(base_s + n as i64 + 1),
                step: Some(1),
                agg: Some(Aggregation::Last),
            },
        )
        .await
        .unwrap();
    let mut values: Vec<u64> = answer
        .items
        .iter()
        .flat_map(|s| s.points.iter().map(|(_, v)| *v as u64))
        .collect();
    values.sort_unstable();
    values
}

/// Enrolls a real daemon with `code`, approves it, and starts it.
async fn daemon(
    admin: &Client,
    binary: &Path,
    state: &Path,
    code: &str,
    name: &str,
) -> (Child, i64) {
    let id = plantwatch_testkit::daemon::enroll(binary, state, code, name, &format!("m-{name}"));
    let approved = admin.approve_component(id).await.unwrap();
    let child = plantwatch_testkit::daemon::start(binary, state, &state.with_extension("log"));
    (child, approved.node_id.unwrap_or(id))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_killed_active_is_replaced_within_30_s_and_nothing_acknowledged_is_lost() {
    let (mut pair, fa, fb) = Pair::start(Path::new(BIN)).await;
    let admin = Client::new(&pair.a.url(), Some(fa)).unwrap();
    let token = admin.login("admin", ADMIN_PASSWORD).await.unwrap().token;
    let admin = admin.with_token(token);
    let health = admin.health().await.unwrap();
    admin.learn(health.ha.as_ref().expect("the active names its pair"));
    assert_eq!(
        admin.servers().len(),
        2,
        "the admin's client knows both servers"
    );

    // The join code carries both servers, with their fingerprints.
    let code = plantwatch_testkit::daemon::join_code(&admin).await;
    let parsed: JoinCode = code.parse().unwrap();
    assert_eq!(parsed.alternates.len(), 1);
    assert_eq!(parsed.alternates[0].url, pair.b.url());
    assert_eq!(parsed.alternates[0].fingerprint, Some(fb));

    // A real agent and a real collector, and the daemons' pusher sending numbered probes.
    let agent_bin = binary_beside(BIN, "plantwatch-agent");
    let collector_bin = binary_beside(BIN, "plantwatch-collector");
    let daemons = pair.dir.path().join("daemons");
    let (mut agent, agent_node) =
        daemon(&admin, &agent_bin, &daemons.join("agent"), &code, "hmi-1").await;
    let (mut collector, collector_id) = daemon(
        &admin,
        &collector_bin,
        &daemons.join("collector"),
        &code,
        "north",
    )
    .await;
    let enrollment =
        plantwatch_shared::daemon::Enrollment::load(&daemons.join("agent"), ComponentKind::Agent)
            .unwrap();
    assert_eq!(
        enrollment.alternates.len(),
        1,
        "the agent keeps the standby's address"
    );
    let (hook, hook_url) = receiver().await;
    admin
        .create_channel(&ChannelSpec {
            name: "ops".into(),
            kind: ChannelKind::Webhook,
            settings: ChannelSettings {
                url: Some(hook_url),
                timeout_s: Some(2),
                ..ChannelSettings::default()
            },
            secrets: Default::default(),
            min_severity: Severity::Warning,
            tags: vec![],
            collectors: vec![],
            repeat_s: 0,
            send_resolved: false,
            enabled: true,
        })
        .await
        .unwrap();
    admin
        .create_rule(&RuleSpec {
            warning: Some(50.0),
            clear: Some(10.0),
            window_s: 30,
            ..RuleSpec::new("probe_tripped", "trigger.value")
        })
        .await
        .unwrap();
    let probe = Probe::start(enrollment.client().unwrap(), pair.dir.path().join("outbox"));
    tokio::time::sleep(Duration::from_secs(4)).await;
    pair.wait_following("plant-b").await;

    // The rule's condition starts just before the active dies.
    probe.trigger.store(100, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(50)).await;
    let killed_at = Instant::now();
    pair.a.kill();
    let took = wait_active(&pair.b.url(), fb, 30).await;
    println!("failover took {took:?}");
    assert!(killed_at.elapsed() < Duration::from_secs(30));

    // Everything keeps going to plant-b; then the pusher drains.
    tokio::time::sleep(Duration::from_secs(6)).await;
    let (n, base_s, stop_pusher) = probe.finish().await;
    let expected: Vec<u64> = (0..n).collect();
    let mut values = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(40);
    while Instant::now() < deadline {
        values = stored(&admin, agent_node, base_s, n).await;
        if values == expected {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let missing: Vec<u64> = expected
        .iter()
        .filter(|v| !values.contains(v))
        .copied()
        .collect();
    assert!(
        values == expected,
        "{n} probes sent, {} stored once each expected; missing {missing:?}; log:\n{}",
        values.len(),
        pair.b.log()
    );
    assert!(admin.base_url().contains(&pair.b.port.to_string()));
    stop_pusher();

    // The rule fired during the failover: one notification, from whichever server decided it.
    wait_until(
        Duration::from_secs(20),
        "the probe_tripped notification",
        || {
            hook.lock()
                .unwrap()
                .iter()
                .any(|n| n.rule == "probe_tripped")
                .then_some(())
        },
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    let fired: Vec<String> = hook
        .lock()
        .unwrap()
        .iter()
        .filter(|n| n.rule == "probe_tripped")
        .map(|n| n.event.clone())
        .collect();
    assert_eq!(fired, vec!["firing".to_owned()], "notified exactly once");

    // The real agent and collector moved to plant-b by themselves.
    let after = time::OffsetDateTime::now_utc();
    wait_until(
        Duration::from_secs(40),
        "the agent and the collector on plant-b",
        || {
            let seen = |id: i64| {
                tokio::task::block_in_place(|| {
                    tokio::runtime::Handle::current().block_on(admin.get_component(id))
                })
                .ok()
                .and_then(|c| c.last_seen_at)
                .is_some_and(|at| at > after)
            };
            let agent_id = enrollment.component_id;
            (seen(agent_id) && seen(collector_id)).then_some(())
        },
    );
    let _ = agent.kill();
    let _ = collector.kill();
    let _ = (agent.wait(), collector.wait());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_planned_switch_over_loses_nothing_and_a_paused_active_returns_as_standby() {
    let (mut pair, fa, fb) = Pair::start(Path::new(BIN)).await;
    let admin = Client::new(&pair.a.url(), Some(fa)).unwrap();
    let token = admin.login("admin", ADMIN_PASSWORD).await.unwrap().token;
    let admin = admin.with_token(token);
    admin.learn(admin.health().await.unwrap().ha.as_ref().unwrap());
    let code = plantwatch_testkit::daemon::join_code(&admin).await;
    let agent_bin = binary_beside(BIN, "plantwatch-agent");
    let state = pair.dir.path().join("agent");
    let id = plantwatch_testkit::daemon::enroll(&agent_bin, &state, &code, "hmi-2", "m-hmi-2");
    let node = admin.approve_component(id).await.unwrap().node_id.unwrap();
    let enrollment =
        plantwatch_shared::daemon::Enrollment::load(&state, ComponentKind::Agent).unwrap();
    let probe = Probe::start(enrollment.client().unwrap(), pair.dir.path().join("outbox"));
    tokio::time::sleep(Duration::from_secs(3)).await;

    // Planned: promote plant-b while probes flow.
    let out = pair.b.ha(&pair.shared(), "promote");
    let text = ok(&out);
    assert!(text.contains("plant-b is the active server now"), "{text}");
    wait_active(&pair.b.url(), fb, 10).await;
    pair.wait_following("plant-a").await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (n, base_s, stop_pusher) = probe.finish().await;
    let expected: Vec<u64> = (0..n).collect();
    wait_until(Duration::from_secs(40), "every probe on plant-b", || {
        let values = tokio::task::block_in_place(|| {
            tokio::runtime::Handle::current().block_on(stored(&admin, node, base_s, n))
        });
        (values == expected).then_some(())
    });
    stop_pusher();
    // The active tells a scraper its term and how far the standby's copy is behind.
    let (status, body) = admin
        .send_raw(reqwest::Method::GET, "/metrics", None, Vec::new())
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&body);
    assert_eq!(status, 200, "{text}");
    assert!(text.contains("plantwatch_ha_acting 1"), "{text}");
    assert!(
        text.contains("plantwatch_ha_replication_lag_seconds "),
        "{text}"
    );
    // Demote refuses on the standby.
    let out = pair.a.ha(&pair.shared(), "demote");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not the active server"));

    // plant-b freezes (SIGSTOP) for 20 s: plant-a takes over; plant-b, thawed, must step down.
    pair.b.signal("-STOP");
    let took = wait_active(&pair.a.url(), fa, 30).await;
    // The lease was renewed up to 5 s before the pause and expires 15 s after that renewal:
    // never before the paused server's own fence (10 s after it).
    assert!(
        took >= Duration::from_millis(9_500),
        "not before the lease expired: {took:?}"
    );
    tokio::time::sleep(Duration::from_secs(20) - took.min(Duration::from_secs(20))).await;
    pair.b.signal("-CONT");
    // From the moment it runs again it never answers as active.
    let thawed = Instant::now();
    while thawed.elapsed() < Duration::from_secs(8) {
        if let Some(ha) = role_of(&pair.b.url(), fb).await {
            assert_eq!(
                ha.role,
                plantwatch_shared::api::ha::HaRole::Standby,
                "plant-b answered as active after the takeover"
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(pair.b.log().contains("Another server holds the lease now"));
    pair.wait_following("plant-b").await;
    let out = pair.a.ha(&pair.shared(), "status");
    let text = ok(&out);
    assert_eq!(
        text.matches(" active ").count(),
        2,
        "one active member (and the header): {text}"
    );
    pair.a.kill();
    pair.b.kill();
}
