//! The remote-write backend against real engines from Debian's packages, each started on a
//! loopback port with a temporary data directory: samples ingested by plantwatch arrive with
//! Prometheus names, labels, values and timestamps; chart queries answer the same points as the
//! embedded store for the same data; an engine stopped for a while — and a plantwatch restart
//! meanwhile — loses and duplicates nothing; data the engine refuses is counted, not retried
//! for ever.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly by design.

mod common;

use plantwatch_server::telemetry::registry::{figures, read};
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use common::{TestApp, approved_collector, spawn_app_with, spec, test_config};
use plantwatch_server::config::{Config, MetricsBackend};
use plantwatch_shared::Secret;
use plantwatch_shared::api::{Aggregation, MetricQuery, RemoteWriteStatus};
use plantwatch_testkit::engines::{Engine, EngineKind};
use serde_json::Value;

/// Points the console's chart would draw, per series: `(metric, tags) → points`.
type Chart = BTreeMap<(String, String), Vec<(i64, f64)>>;

fn remote(config: &mut Config, engine: &Engine) {
    config.metrics_backend = MetricsBackend::RemoteWrite;
    config.metrics_remote_write_url = Some(engine.write_url());
    config.metrics_query_url = Some(engine.base_url());
}

/// One push of line protocol at ms precision by a collector's key; the HTTP status.
async fn push(app: &TestApp, key: &Secret, body: String) -> u16 {
    reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .build()
        .unwrap()
        .post(format!(
            "{}/api/v1/ingest/influx?precision=ms",
            app.server.url()
        ))
        .header("x-api-key", key.expose())
        .body(body)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// What a test pushed: per Prometheus series (name and sorted labels but `node`), its points.
#[derive(Default)]
struct Truth(BTreeMap<String, BTreeMap<i64, f64>>);

impl Truth {
    fn samples(&self) -> usize {
        self.0.values().map(BTreeMap::len).sum()
    }
}

/// Line protocol for `node_id` at each of `timestamps` (ms): three interface counters (port 2
/// resets half-way), their status, and a float round-trip time; recorded into `truth`.
fn lines(node_id: i64, timestamps: &[i64], truth: &mut Truth) -> String {
    let mut out = String::new();
    for &ts in timestamps {
        let i = ts / 10_000 % 100_000;
        for port in 1..=3 {
            let mut octets = 1_000_000_000 * port + i * 1_500 * port + (i * 37 % 11);
            if port == 2 && i % 100 >= 50 {
                octets = i % 100 * 700;
            }
            out.push_str(&format!(
                "interface,node_id={node_id},ifName=Gi0/{port} in_octets_total={octets}i,oper_status=1i {ts}\n"
            ));
            let labels = format!("ifName=\"Gi0/{port}\",node_id=\"{node_id}\",");
            truth
                .0
                .entry(format!("plantwatch_interface_in_octets_total{{{labels}}}"))
                .or_default()
                .insert(ts, octets as f64);
            truth
                .0
                .entry(format!("plantwatch_interface_oper_status{{{labels}}}"))
                .or_default()
                .insert(ts, 1.0);
        }
        let rtt = 0.25 + (i * 7919 % 1000) as f64 / 1024.0;
        out.push_str(&format!("ping,node_id={node_id} rtt_avg_ms={rtt} {ts}\n"));
        truth
            .0
            .entry(format!(
                "plantwatch_ping_rtt_avg_ms{{node_id=\"{node_id}\",}}"
            ))
            .or_default()
            .insert(ts, rtt);
    }
    out
}

/// Every 10 s over `minutes` ending three minutes ago (the outage's samples come after, none
/// in the future: engines answer up to now).
fn timeline(minutes: i64) -> Vec<i64> {
    let end = (plantwatch_server::clock::unix_ms() - 180_000) / 10_000 * 10_000;
    (0..minutes * 6).rev().map(|k| end - k * 10_000).collect()
}

/// A server with a collector "north" and the node "core-sw" it polls.
async fn plant(app: &TestApp) -> (Secret, i64) {
    let admin = app.admin().await;
    let north = approved_collector(app, &admin, "north").await;
    let node = admin
        .create_node(&spec("core-sw", "127.0.0.10", "north"))
        .await
        .unwrap();
    (north.api_key, node.id)
}

async fn push_all(
    app: &TestApp,
    key: &Secret,
    node_id: i64,
    timestamps: &[i64],
    truth: &mut Truth,
) {
    for part in timestamps.chunks(30) {
        assert_eq!(push(app, key, lines(node_id, part, truth)).await, 204);
    }
}

async fn status(app: &TestApp) -> RemoteWriteStatus {
    app.admin()
        .await
        .summary()
        .await
        .unwrap()
        .remote_write
        .expect("the summary reports the remote-write backend")
}

/// Waits until the engine has taken everything queued.
async fn drained(app: &TestApp, limit: Duration) -> RemoteWriteStatus {
    let started = Instant::now();
    loop {
        let status = status(app).await;
        if status.queued_samples == 0 {
            return status;
        }
        assert!(
            started.elapsed() < limit,
            "the queue did not drain: {status:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Waits until the forwarder says it is retrying (the engine did not take a request).
async fn retrying(app: &TestApp) -> RemoteWriteStatus {
    let started = Instant::now();
    loop {
        let status = status(app).await;
        if status.retrying {
            return status;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the forwarder never retried: {status:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Every raw sample the engine holds of `node_id`, per series identity (as in [`Truth`]),
/// duplicates kept (a sample stored twice shows twice).
async fn engine_samples(engine: &Engine, node_id: i64) -> BTreeMap<String, Vec<(i64, f64)>> {
    let http = reqwest::Client::new();
    let selector = format!("{{node_id=\"{node_id}\"}}");
    let later = (plantwatch_server::clock::unix_secs() + 600).to_string();
    let mut out: BTreeMap<String, Vec<(i64, f64)>> = BTreeMap::new();
    let mut add = |metric: &serde_json::Map<String, Value>, points: Vec<(i64, f64)>| {
        let mut labels: Vec<(&String, &str)> = metric
            .iter()
            .filter(|(k, _)| *k != "__name__" && *k != "node")
            .map(|(k, v)| (k, v.as_str().unwrap()))
            .collect();
        labels.sort();
        let mut id = format!("{}{{", metric["__name__"].as_str().unwrap());
        for (k, v) in labels {
            id.push_str(&format!("{k}=\"{v}\","));
        }
        id.push('}');
        assert_eq!(metric["node"], "core-sw", "the node label names the node");
        out.entry(id).or_default().extend(points);
    };
    match engine.kind {
        // VictoriaMetrics' export: raw samples exactly as stored, duplicates included.
        EngineKind::VictoriaMetrics => {
            let text = http
                .get(format!("{}/api/v1/export", engine.base_url()))
                .query(&[("match[]", selector.as_str()), ("end", &later)])
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            for line in text.lines().filter(|l| !l.is_empty()) {
                let series: Value = serde_json::from_str(line).unwrap();
                let points = series["timestamps"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .zip(series["values"].as_array().unwrap())
                    .map(|(t, v)| (t.as_i64().unwrap(), v.as_f64().unwrap()))
                    .collect();
                add(series["metric"].as_object().unwrap(), points);
            }
        }
        // Prometheus: a range vector over the last two hours, raw samples.
        EngineKind::Prometheus => {
            let answer = engine.query(&format!("{selector}[2h]"), &later).await;
            for series in answer["data"]["result"].as_array().unwrap() {
                let points = series["values"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|p| {
                        let t = (p[0].as_f64().unwrap() * 1_000.0).round() as i64;
                        (t, p[1].as_str().unwrap().parse().unwrap())
                    })
                    .collect();
                add(series["metric"].as_object().unwrap(), points);
            }
        }
    }
    for points in out.values_mut() {
        points.sort_by_key(|p| p.0);
    }
    out
}

/// Waits until the engine answers with every sample of `truth`, then checks it holds exactly
/// those: the same series, and each sample once with its value.
async fn engine_holds_exactly(engine: &Engine, node_id: i64, truth: &Truth) {
    let started = Instant::now();
    let held = loop {
        let held = engine_samples(engine, node_id).await;
        if held.values().map(Vec::len).sum::<usize>() >= truth.samples()
            || started.elapsed() > Duration::from_secs(30)
        {
            break held;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    assert_eq!(
        held.keys().collect::<Vec<_>>(),
        truth.0.keys().collect::<Vec<_>>(),
        "series names and labels"
    );
    let counts: Vec<(usize, usize)> = held
        .iter()
        .map(|(id, points)| (points.len(), truth.0[id].len()))
        .collect();
    for (id, points) in &held {
        let expected: Vec<(i64, f64)> = truth.0[id].iter().map(|(t, v)| (*t, *v)).collect();
        assert_eq!(
            points.len(),
            expected.len(),
            "{id}: each sample exactly once (held, pushed per series: {counts:?})"
        );
        assert_eq!(points, &expected, "{id}: timestamps and values");
    }
}

async fn chart(app: &TestApp, node_id: i64, query: &MetricQuery) -> Chart {
    let answer = app
        .admin()
        .await
        .node_metrics(node_id, query)
        .await
        .unwrap();
    answer
        .items
        .into_iter()
        .map(|s| {
            let tags = format!("{:?}", s.tags);
            ((s.metric, tags), s.points)
        })
        .collect()
}

/// Charts of the remote app equal those of the embedded store for the same data.
async fn charts_match(remote: &TestApp, local: &TestApp, node_id: i64, from: i64, to: i64) {
    let queries = [
        MetricQuery::default(),
        MetricQuery {
            from: Some(from),
            to: Some(to),
            agg: Some(Aggregation::Max),
            ..MetricQuery::default()
        },
        MetricQuery {
            metric: Some("interface.*".into()),
            from: Some(from - 600),
            to: Some(to),
            step: Some(60),
            agg: Some(Aggregation::Last),
        },
        MetricQuery {
            from: Some(from + 7),
            to: Some(to - 13),
            step: Some(45),
            agg: Some(Aggregation::Min),
            ..MetricQuery::default()
        },
    ];
    for query in &queries {
        let there = chart(remote, node_id, query).await;
        let here = chart(local, node_id, query).await;
        assert_eq!(there.len(), if query.metric.is_some() { 6 } else { 7 });
        assert!(here.values().all(|points| !points.is_empty()), "{here:?}");
        assert_eq!(there, here, "{query:?}");
    }
}

/// A server on the remote-write backend with a node's samples, checked against a server on the
/// embedded store given the same samples.
struct Twins {
    remote_app: TestApp,
    key: Secret,
    node_id: i64,
    truth: Truth,
    timestamps: Vec<i64>,
}

/// [`Twins`] on `engine`, once the engine holds every sample and the two servers' charts have
/// been checked equal.
async fn twins(engine: &Engine, minutes: i64) -> Twins {
    let remote_app = spawn_app_with(|c| remote(c, engine)).await;
    let local_app = spawn_app_with(|_| {}).await;
    let (key, node_id) = plant(&remote_app).await;
    let (local_key, local_node) = plant(&local_app).await;
    assert_eq!(node_id, local_node);
    let mut truth = Truth::default();
    let timestamps = timeline(minutes);
    push_all(&remote_app, &key, node_id, &timestamps, &mut truth).await;
    let mut same = Truth::default();
    push_all(&local_app, &local_key, node_id, &timestamps, &mut same).await;
    let sent = drained(&remote_app, Duration::from_secs(30)).await;
    assert_eq!(sent.sent_samples as usize, truth.samples());
    engine_holds_exactly(engine, node_id, &truth).await;
    let (from, to) = (
        timestamps[0] / 1_000,
        timestamps[timestamps.len() - 1] / 1_000,
    );
    charts_match(&remote_app, &local_app, node_id, from, to).await;
    Twins {
        remote_app,
        key,
        node_id,
        truth,
        timestamps,
    }
}

#[tokio::test]
async fn victoria_metrics_gets_every_sample_once_across_an_outage_and_a_restart() {
    let mut engine = Engine::start(EngineKind::VictoriaMetrics);
    // 50 minutes of data, pushed to both servers.
    let Twins {
        remote_app,
        key,
        node_id,
        mut truth,
        timestamps,
        ..
    } = twins(&engine, 50).await;
    let to = timestamps[timestamps.len() - 1] / 1_000;

    // A 7-day chart is aggregated by the engine: the status gauge is 1 in every bucket.
    let week = MetricQuery {
        metric: Some("interface.oper_status".into()),
        from: Some(to - 7 * 86_400),
        to: Some(to),
        agg: Some(Aggregation::Max),
        ..MetricQuery::default()
    };
    let answer = chart(&remote_app, node_id, &week).await;
    assert_eq!(answer.len(), 3);
    for points in answer.values() {
        assert!(
            !points.is_empty() && points.iter().all(|(_, v)| *v == 1.0),
            "{points:?}"
        );
    }

    // The engine goes down: pushes are still acknowledged (queued on disk), the summary
    // shows the backlog and the error, the hot window (what alerting reads) keeps up.
    engine.stop();
    let outage: Vec<i64> = (1..=12).map(|k| to * 1_000 + k * 10_000).collect();
    push_all(&remote_app, &key, node_id, &outage[..6], &mut truth).await;
    let down = status(&remote_app).await;
    assert_eq!(down.queued_samples, 6 * 7);
    let down = retrying(&remote_app).await;
    assert!(down.failed_attempts > 0, "{down:?}");
    assert!(
        down.last_error
            .as_deref()
            .unwrap_or("")
            .contains("127.0.0.1"),
        "{down:?}"
    );
    let latest = remote_app
        .server
        .state
        .metrics
        .hot
        .latest(node_id, "ping.rtt_avg_ms")
        .unwrap();
    assert_eq!(latest.0, outage[5]);
    // So does the series list's newest sample (metrics.db keeps none with this backend).
    let listed = remote_app
        .admin()
        .await
        .series(&plantwatch_shared::api::SeriesQuery {
            node_id: Some(node_id),
            q: Some("rtt".into()),
            limit: None,
        })
        .await
        .unwrap();
    assert_eq!(listed.items.len(), 1);
    assert_eq!(
        listed.items[0].latest.map(|(ts, _)| ts),
        Some(outage[5] / 1_000)
    );
    // Charts say the engine is unreachable rather than showing nothing.
    let err = remote_app
        .admin()
        .await
        .node_metrics(node_id, &MetricQuery::default())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("metrics engine"), "{err}");

    // plantwatch itself restarts during the outage: the queue is on disk.
    let data = remote_app.dir;
    remote_app.server.shutdown().await.unwrap();
    let mut config = test_config(data.path());
    remote(&mut config, &engine);
    let restarted = TestApp {
        server: plantwatch_server::server::start(config).await.unwrap(),
        dir: data,
    };
    assert_eq!(status(&restarted).await.queued_samples, 6 * 7);
    push_all(&restarted, &key, node_id, &outage[6..], &mut truth).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(status(&restarted).await.queued_samples, 12 * 7);

    // The engine comes back: the backlog drains and every sample is there exactly once.
    engine.restart();
    let after = drained(&restarted, Duration::from_secs(60)).await;
    assert_eq!(after.sent_samples, 12 * 7);
    assert!(!after.retrying);
    engine_holds_exactly(&engine, node_id, &truth).await;
}

#[tokio::test]
async fn prometheus_receives_samples_and_answers_charts_like_the_embedded_store() {
    let engine = Engine::start(EngineKind::Prometheus);
    let Twins {
        remote_app,
        key,
        node_id,
        mut truth,
        timestamps,
        ..
    } = twins(&engine, 40).await;

    // A sample older than the series' newest is refused by Prometheus (out of order): it is
    // counted and dropped, and what follows still goes through.
    let late = format!(
        "ping,node_id={node_id} rtt_avg_ms=9.5 {}\n",
        timestamps[3] + 1
    );
    assert_eq!(push(&remote_app, &key, late).await, 204);
    let refused = drained(&remote_app, Duration::from_secs(30)).await;
    assert_eq!(refused.rejected_samples, 1, "{refused:?}");
    assert!(
        refused.last_error.as_deref().unwrap_or("").contains("400"),
        "{refused:?}"
    );
    let next = timestamps[timestamps.len() - 1] + 10_000;
    push_all(&remote_app, &key, node_id, &[next], &mut truth).await;
    let after = drained(&remote_app, Duration::from_secs(30)).await;
    assert_eq!(after.rejected_samples, 1);
    engine_holds_exactly(&engine, node_id, &truth).await;
    let names: BTreeSet<String> = engine_samples(&engine, node_id)
        .await
        .keys()
        .map(|k| k.split('{').next().unwrap().to_owned())
        .collect();
    assert_eq!(
        names,
        BTreeSet::from([
            "plantwatch_interface_in_octets_total".to_owned(),
            "plantwatch_interface_oper_status".to_owned(),
            "plantwatch_ping_rtt_avg_ms".to_owned(),
        ])
    );
}

#[tokio::test]
async fn an_engine_behind_https_and_basic_auth_takes_samples_only_with_the_right_password() {
    let certs = tempfile::tempdir().unwrap();
    let certified = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
    let (cert, key) = (certs.path().join("vm.pem"), certs.path().join("vm.key"));
    std::fs::write(&cert, certified.cert.pem()).unwrap();
    std::fs::write(&key, certified.signing_key.serialize_pem()).unwrap();
    let engine = Engine::start_with(
        EngineKind::VictoriaMetrics,
        &[
            "-tls".into(),
            format!("-tlsCertFile={}", cert.display()),
            format!("-tlsKeyFile={}", key.display()),
            "-httpAuth.username=plantwatch".into(),
            "-httpAuth.password=engine-password-1".into(),
        ],
    );
    assert!(engine.write_url().starts_with("https://"));
    let with = |password: &'static str| {
        let (engine, cert) = (&engine, cert.clone());
        move |config: &mut Config| {
            remote(config, engine);
            config.metrics_remote_ca_file = Some(cert);
            config.metrics_remote_username = Some("plantwatch".into());
            config.metrics_remote_password = Some(password.into());
        }
    };
    let good = spawn_app_with(with("engine-password-1")).await;
    let bad = spawn_app_with(with("not-the-password")).await;
    let (key, node_id) = plant(&good).await;
    let (bad_key, _) = plant(&bad).await;
    let mut truth = Truth::default();
    let timestamps = timeline(5);
    push_all(&good, &key, node_id, &timestamps, &mut truth).await;
    push_all(&bad, &bad_key, node_id, &timestamps, &mut Truth::default()).await;

    let sent = drained(&good, Duration::from_secs(30)).await;
    assert_eq!(sent.sent_samples as usize, truth.samples());
    // The chart comes back through the query API over the same TLS and credentials.
    let started = Instant::now();
    let answer = loop {
        let answer = chart(&good, node_id, &MetricQuery::default()).await;
        if answer.values().all(|p| !p.is_empty()) || started.elapsed() > Duration::from_secs(20) {
            break answer;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    assert_eq!(answer.len(), 7);
    assert!(answer.values().all(|p| !p.is_empty()), "{answer:?}");

    // Wrong password: nothing is lost, the samples wait and the error says why.
    let refused = retrying(&bad).await;
    assert_eq!(refused.queued_samples as usize, truth.samples());
    assert_eq!(refused.sent_samples, 0);
    assert!(
        refused.last_error.as_deref().unwrap_or("").contains("401"),
        "{refused:?}"
    );
}

#[tokio::test]
async fn a_full_queue_answers_503_so_senders_keep_their_batches() {
    // An engine that is not there: nothing listens on this port.
    let nowhere = plantwatch_testkit::free_port();
    let app = spawn_app_with(|c| {
        c.metrics_backend = MetricsBackend::RemoteWrite;
        c.metrics_remote_write_url = Some(format!("http://127.0.0.1:{nowhere}/api/v1/write"));
        c.metrics_query_url = Some(format!("http://127.0.0.1:{nowhere}"));
        c.metrics_remote_queue_max_samples = 10_000;
    })
    .await;
    let (key, node_id) = plant(&app).await;
    let mut truth = Truth::default();
    // 7 samples a timestamp: 1,435 timestamps fill the queue to 10,045.
    let timestamps = timeline(240);
    let mut refused = None;
    for (k, part) in timestamps.chunks(205).enumerate() {
        let status = push(&app, &key, lines(node_id, part, &mut truth)).await;
        if status == 503 {
            refused = Some(k);
            break;
        }
        assert_eq!(status, 204);
    }
    assert_eq!(
        refused,
        Some(7),
        "the push after the queue passed 10,000 samples"
    );
    let status = status(&app).await;
    assert_eq!(status.queued_samples, 7 * 205 * 7);
    assert_eq!(status.max_queued_samples, 10_000);
    // The server's own figures say so too.
    let (code, text) = app
        .admin()
        .await
        .send_raw(reqwest::Method::GET, "/metrics", None, Vec::new())
        .await
        .unwrap();
    assert_eq!(code, 200);
    let text = String::from_utf8(text).unwrap();
    common::promtool(&text);
    assert!(
        text.lines()
            .any(|l| l == format!("plantwatch_remote_write_queue_samples {}", 7 * 205 * 7)),
        "{text}"
    );
}

#[tokio::test]
async fn requests_larger_than_the_engine_takes_are_split_not_dropped() {
    // VictoriaMetrics refuses remote-write bodies over 1,500 bytes (packed) with a 400 that
    // says so; plantwatch's first request for this data is larger.
    let engine = Engine::start_with(
        EngineKind::VictoriaMetrics,
        &["-maxInsertRequestSize=1500".into()],
    );
    let app = spawn_app_with(|c| remote(c, &engine)).await;
    let (key, node_id) = plant(&app).await;
    let mut truth = Truth::default();
    push_all(&app, &key, node_id, &timeline(10), &mut truth).await;
    let sent = drained(&app, Duration::from_secs(30)).await;
    assert_eq!(sent.rejected_samples, 0, "{sent:?}");
    assert_eq!(sent.sent_samples as usize, truth.samples());
    engine_holds_exactly(&engine, node_id, &truth).await;
    let text = plantwatch_server::telemetry::render(&app.server.state).await;
    let requests = read(&text, &figures::REMOTE_REQUESTS).expect("the forwarder's requests");
    assert!(requests > 2.0, "the data went in {requests} requests");
}

#[tokio::test]
async fn alerts_fire_from_the_hot_window_while_the_engine_is_unreachable() {
    // No engine at all: nothing listens on this port.
    let nowhere = plantwatch_testkit::free_port();
    let app = spawn_app_with(|c| {
        c.metrics_backend = MetricsBackend::RemoteWrite;
        c.metrics_remote_write_url = Some(format!("http://127.0.0.1:{nowhere}/api/v1/write"));
        c.metrics_query_url = Some(format!("http://127.0.0.1:{nowhere}"));
        c.alert_interval_secs = 1;
    })
    .await;
    let (key, node_id) = plant(&app).await;
    let admin = app.admin().await;
    let rule = admin
        .create_rule(&plantwatch_shared::api::RuleSpec {
            warning: Some(5.0),
            window_s: 30,
            ..plantwatch_shared::api::RuleSpec::new("slow_ping", "ping.rtt_avg_ms")
        })
        .await
        .unwrap();
    let started = Instant::now();
    let alert = loop {
        let now = plantwatch_server::clock::unix_ms();
        let line = format!("ping,node_id={node_id} rtt_avg_ms=9.5 {now}\n");
        assert_eq!(push(&app, &key, line).await, 204);
        let alerts = admin
            .list_alerts(&plantwatch_shared::api::AlertQuery::default())
            .await
            .unwrap()
            .items;
        if let Some(alert) = alerts.into_iter().find(|a| a.rule_id == rule.id) {
            break alert;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "no alert while the engine is unreachable"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert_eq!(alert.severity, plantwatch_shared::api::Severity::Warning);
    let status = retrying(&app).await;
    assert!(
        status.queued_samples > 0 && status.sent_samples == 0,
        "{status:?}"
    );
}
