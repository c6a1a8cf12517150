//! The alert evaluator: one cycle over 300,000 series and 50 rules (the built-in ten and 40
//! custom ones on the same metrics, with tag matchers and scopes), and the time from a threshold
//! crossing in ingested data to the webhook arriving, with the default 10 s cycle; and the
//! windows_service_stopped rule over 50,000 Windows services.
//! Run with `cargo bench -p plantwatch-server --bench alerting [-- PART]`.
#![allow(clippy::unwrap_used, clippy::expect_used)] // A benchmark fails loudly by design.

use std::io::Write as _;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

mod common;

use plantwatch_server::alerting::evaluate::{Evaluator, gather};
use plantwatch_server::alerting::{self, maintenance};
use plantwatch_shared::api::{
    ChannelKind, ChannelSettings, ChannelSpec, Comparison, NodeSpec, RuleAggregation, RuleScope,
    RuleSpec, Severity,
};
use plantwatch_shared::lineproto::Writer;

const NODES: usize = 1_000;
const INTERFACES: usize = 50;
/// Fields per interface line: 300 series per node, 300,000 in all.
const FIELDS: usize = 6;
/// Points per series (10 s apart), so windowed aggregations have work to do.
const POINTS: usize = 3;
const LINES_PER_BATCH: usize = 5_000;
const CUSTOM_RULES: usize = 40;
const CYCLES: usize = 5;

fn gzip(text: &str) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(text.as_bytes()).unwrap();
    encoder.finish().unwrap()
}

/// Every node's interfaces at `POINTS` polls ending now; one interface in a thousand has
/// errors, is down and busy, so rules fire.
fn batches(node_ids: &[i64], now_ms: i64) -> Vec<String> {
    let mut out = Vec::new();
    let mut writer = Writer::new();
    let mut lines = 0;
    for point in 0..POINTS {
        let ts = now_ms - ((POINTS - 1 - point) as i64) * 10_000;
        for (n, node) in node_ids.iter().enumerate() {
            let node = node.to_string();
            for interface in 0..INTERFACES {
                let bad = (n * INTERFACES + interface).is_multiple_of(1_000);
                let index = interface.to_string();
                let name = format!("Gi1/0/{interface}");
                writer
                    .line(
                        "interface",
                        &[("node_id", &node), ("ifIndex", &index), ("ifName", &name)],
                    )
                    .uint("in_octets_total", 1_000_000 * point as u64)
                    .uint("in_errors_total", if bad { 500 * point as u64 } else { 0 })
                    .float("admin_status", 1.0)
                    .float("oper_status", if bad { 2.0 } else { 1.0 })
                    .float("speed_mbps", 1_000.0)
                    .float("utilisation_pct", if bad { 97.0 } else { (n % 70) as f64 })
                    .finish(ts);
                lines += 1;
                if lines == LINES_PER_BATCH {
                    out.push(writer.take());
                    lines = 0;
                }
            }
        }
    }
    if lines > 0 {
        out.push(writer.take());
    }
    out
}

/// 40 custom rules over the interface metrics: thresholds, rates, tag matchers, scopes.
fn custom_rules() -> Vec<RuleSpec> {
    (0..CUSTOM_RULES)
        .map(|i| {
            let mut spec = match i % 4 {
                0 => RuleSpec {
                    aggregation: RuleAggregation::Rate,
                    window_s: 60,
                    warning: Some(1.0 + i as f64),
                    ..RuleSpec::new("", "interface.in_errors_total")
                },
                1 => RuleSpec {
                    aggregation: RuleAggregation::Avg,
                    window_s: 300,
                    comparison: Comparison::AtLeast,
                    warning: Some(80.0 + (i % 10) as f64),
                    critical: Some(95.0),
                    clear: Some(70.0),
                    ..RuleSpec::new("", "interface.utilisation_pct")
                },
                2 => RuleSpec {
                    comparison: Comparison::Below,
                    warning: Some(100.0),
                    ..RuleSpec::new("", "interface.speed_mbps")
                },
                _ => RuleSpec {
                    aggregation: RuleAggregation::Max,
                    window_s: 120,
                    warning: Some(1.0e12),
                    ..RuleSpec::new("", "interface.in_octets_total")
                },
            };
            spec.name = format!("custom_{i:02}");
            if i % 5 == 0 {
                spec.tags
                    .insert("ifName".into(), format!("Gi1/0/{}*", i % 5));
            }
            if i % 7 == 0 {
                spec.scope = RuleScope::Type;
                spec.scope_value = Some("network".into());
            }
            spec
        })
        .collect()
}

fn median(mut values: Vec<Duration>) -> Duration {
    values.sort();
    values[values.len() / 2]
}

async fn evaluator_cycle() {
    // The background evaluator waits an hour: the benchmark runs the cycles itself.
    let bench = common::start_with(|c| c.alert_interval_secs = 3_600).await;
    let registration = common::approved_collector(&bench.admin, "north").await;
    let collector = bench.client.clone().with_api_key(registration.api_key);
    let mut node_ids = Vec::with_capacity(NODES);
    for i in 0..NODES {
        let node = bench
            .admin
            .create_node(&NodeSpec {
                name: format!("sw-{i:04}"),
                address: format!("127.1.{}.{}", i / 250, i % 250 + 1),
                collector: Some("north".into()),
                node_type: Some(if i % 2 == 0 {
                    plantwatch_shared::api::NodeType::Network
                } else {
                    plantwatch_shared::api::NodeType::Other
                }),
                ..NodeSpec::default()
            })
            .await
            .unwrap();
        node_ids.push(node.id);
    }
    for spec in custom_rules() {
        bench.admin.create_rule(&spec).await.unwrap();
    }
    let rules = bench.admin.list_rules().await.unwrap().total;
    let now_ms = time::OffsetDateTime::now_utc().unix_timestamp() * 1_000;
    let texts = batches(&node_ids, now_ms);
    let ingest_started = Instant::now();
    for (index, text) in texts.iter().enumerate() {
        collector
            .ingest_gzip(&format!("alerting-{index}"), gzip(text))
            .await
            .unwrap();
    }
    let ingest = ingest_started.elapsed();

    let state = bench.server.state.clone();
    let tz = maintenance::time_zone("UTC").unwrap();
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let mut evaluator = Evaluator::default();

    // The first cycle opens every alert; later ones find the same conditions (steady state).
    let started = Instant::now();
    let first = alerting::cycle(&state, &mut evaluator, &tz, now)
        .await
        .unwrap();
    let first_time = started.elapsed();
    let mut judge_times = Vec::new();
    let mut gather_times = Vec::new();
    let mut cycle_times = Vec::new();
    let mut series = 0;
    for _ in 0..CYCLES {
        let conn = state.db.get().unwrap();
        let started = Instant::now();
        let inputs = gather(&conn, &state.presence, &tz, now).unwrap();
        gather_times.push(started.elapsed());
        drop(conn);
        let started = Instant::now();
        let judgement = evaluator.judge(&inputs, &state.metrics.hot);
        judge_times.push(started.elapsed());
        series = judgement.series_seen;
        let started = Instant::now();
        let stats = alerting::cycle(&state, &mut evaluator, &tz, now)
            .await
            .unwrap();
        cycle_times.push(started.elapsed());
        assert_eq!(stats.opened, 0, "steady state opens nothing new");
    }
    println!(
        "evaluator: {series} series in the hot window ({NODES} nodes × {INTERFACES} interfaces × {FIELDS} fields), {rules} rules (ingested in {:.1} s)",
        ingest.as_secs_f64()
    );
    println!(
        "  first cycle (opens {} alerts, queues {} notifications): {:.0} ms",
        first.opened,
        first.queued,
        first_time.as_secs_f64() * 1e3
    );
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!(
        "  steady cycle, median of {CYCLES}: {:.0} ms in all = gather {:.1} ms + judge {:.0} ms + apply",
        ms(median(cycle_times.clone())),
        ms(median(gather_times)),
        ms(median(judge_times.clone()))
    );
    println!(
        "  share of the 10 s cycle on one core: {:.1} %",
        100.0 * median(cycle_times).as_secs_f64() / 10.0
    );
    bench.server.shutdown().await.unwrap();
}

/// Windows servers and services each in the windows_service_stopped benchmark.
const WINDOWS_NODES: usize = 200;
const SERVICES: usize = 250;

/// windows_service_stopped over `WINDOWS_NODES` servers of `SERVICES` services each (3 points
/// apiece): one automatic service in fifty stopped, every tenth server requiring three services
/// of which one is not installed. The judge of that rule alone, cycle after cycle.
async fn windows_services_cycle() {
    use plantwatch_shared::api::{BuiltinRule, HostWatch};
    let bench = common::start_with(|c| c.alert_interval_secs = 3_600).await;
    let registration = common::approved_collector(&bench.admin, "north").await;
    let collector = bench.client.clone().with_api_key(registration.api_key);
    let mut node_ids = Vec::with_capacity(WINDOWS_NODES);
    for i in 0..WINDOWS_NODES {
        let node = bench
            .admin
            .create_node(&NodeSpec {
                name: format!("hmi-{i:03}"),
                address: format!("127.2.{}.{}", i / 250, i % 250 + 1),
                collector: Some("north".into()),
                node_type: Some(plantwatch_shared::api::NodeType::Server),
                ..NodeSpec::default()
            })
            .await
            .unwrap();
        if i % 10 == 0 {
            let watch = HostWatch {
                services: vec![
                    "svc-0001".into(),
                    "svc-0002".into(),
                    "PlantHistorian".into(),
                ],
                processes: Vec::new(),
            };
            bench.admin.set_node_host(node.id, &watch).await.unwrap();
        }
        node_ids.push(node.id);
    }
    let now_ms = time::OffsetDateTime::now_utc().unix_timestamp() * 1_000;
    let mut writer = Writer::new();
    for point in 0..POINTS {
        let ts = now_ms - ((POINTS - 1 - point) as i64) * 10_000;
        for (n, node) in node_ids.iter().enumerate() {
            let node = node.to_string();
            for service in 0..SERVICES {
                let name = format!("svc-{service:04}");
                let start = ["auto", "manual", "auto-trigger", "disabled"][service % 4];
                let stopped = start != "auto" || (n * SERVICES + service).is_multiple_of(50);
                writer
                    .line(
                        "windows_service",
                        &[("node_id", &node), ("service", &name), ("start", start)],
                    )
                    .float("state", if stopped { 1.0 } else { 4.0 })
                    .float("start_type", if start == "manual" { 3.0 } else { 2.0 })
                    .finish(ts);
            }
        }
    }
    let text = writer.take();
    for (index, chunk) in text
        .lines()
        .collect::<Vec<_>>()
        .chunks(LINES_PER_BATCH)
        .enumerate()
    {
        collector
            .ingest_gzip(
                &format!("services-{index}"),
                gzip(&(chunk.join("\n") + "\n")),
            )
            .await
            .unwrap();
    }
    let state = bench.server.state.clone();
    let tz = maintenance::time_zone("UTC").unwrap();
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let conn = state.db.get().unwrap();
    let mut inputs = gather(&conn, &state.presence, &tz, now).unwrap();
    drop(conn);
    inputs
        .rules
        .retain(|r| r.builtin == Some(BuiltinRule::WindowsServiceStopped));
    let evaluator = Evaluator::default();
    let mut times = Vec::new();
    let mut alerts = 0;
    for _ in 0..CYCLES {
        let started = Instant::now();
        let judgement = evaluator.judge(&inputs, &state.metrics.hot);
        times.push(started.elapsed());
        alerts = judgement
            .verdicts
            .values()
            .filter(|v| v.severity.is_some())
            .count();
    }
    println!(
        "windows_service_stopped: {} service series ({WINDOWS_NODES} servers × {SERVICES} services), {alerts} alerts",
        WINDOWS_NODES * SERVICES
    );
    println!(
        "  judge, median of {CYCLES}: {:.1} ms",
        median(times).as_secs_f64() * 1e3
    );
    bench.server.shutdown().await.unwrap();
}

/// Events judged per cycle in the event rules benchmark.
const EVENTS: usize = 20_000;
const EVENT_NODES: usize = 200;

/// `EVENTS` events from the event nodes (and one sender in fifty unknown): link traps of
/// 48 ports going down and up, UPS traps, syslog lines of a few programs.
fn event_batch(
    round: usize,
    now: time::OffsetDateTime,
) -> Vec<plantwatch_shared::api::CollectedEvent> {
    use plantwatch_shared::api::{
        CollectedEvent, EventKind, EventSeverity, SyslogInfo, TrapInfo, Varbind, trap_by_name,
    };
    (0..EVENTS)
        .map(|i| {
            let node = i % EVENT_NODES;
            let source = if i % 50 == 0 {
                format!("127.9.0.{}", i % 200 + 1)
            } else {
                format!("127.2.{}.{}", node / 250, node % 250 + 1)
            };
            let uid = format!("bench-{round}-{i}");
            if i % 3 == 2 {
                let program = ["runtime", "historian", "sshd", "kernel"][i % 4];
                let severity = EventSeverity::of_code((i % 8) as u8);
                return CollectedEvent {
                    uid,
                    kind: EventKind::Syslog,
                    source,
                    severity,
                    message: format!("{program}: tag {i} bad quality"),
                    received_at: now,
                    trap: None,
                    syslog: Some(SyslogInfo {
                        format: "rfc5424".into(),
                        facility: "local4".into(),
                        hostname: None,
                        program: Some(program.into()),
                        procid: None,
                        msgid: None,
                        sent_at: None,
                    }),
                };
            }
            let name = match i % 7 {
                0 => "upsTrapOnBattery",
                1 | 3 => "linkUp",
                _ => "linkDown",
            };
            let (oid, severity) = trap_by_name(name).unwrap();
            let port = (i / EVENT_NODES + round) % 48;
            CollectedEvent {
                uid,
                kind: EventKind::Trap,
                source,
                severity,
                message: format!("{name} ifIndex={port}"),
                received_at: now,
                trap: Some(TrapInfo {
                    version: "v2c".into(),
                    inform: false,
                    oid: oid.into(),
                    name: Some(name.into()),
                    uptime: Some(12_345),
                    agent_address: None,
                    varbinds: vec![
                        Varbind {
                            oid: "1.3.6.1.6.3.1.1.4.1.0".into(),
                            value_type: "oid".into(),
                            value: oid.into(),
                        },
                        Varbind {
                            oid: format!("1.3.6.1.2.1.2.2.1.1.{port}"),
                            value_type: "integer".into(),
                            value: port.to_string(),
                        },
                    ],
                }),
                syslog: None,
            }
        })
        .collect()
}

/// One evaluator cycle judging `EVENTS` new events against the built-in event rules and 20
/// custom ones (programs, texts, varbind values, scopes).
async fn event_rules_cycle() {
    use plantwatch_shared::api::{EventKind, EventMatch, EventRuleSpec};
    let bench = common::start_with(|c| c.alert_interval_secs = 3_600).await;
    let registration = common::approved_collector(&bench.admin, "north").await;
    for i in 0..EVENT_NODES {
        bench
            .admin
            .create_node(&NodeSpec {
                name: format!("plc-{i:04}"),
                address: format!("127.2.{}.{}", i / 250, i % 250 + 1),
                collector: Some("north".into()),
                tags: if i % 2 == 0 {
                    vec!["line-1".into()]
                } else {
                    Vec::new()
                },
                ..NodeSpec::default()
            })
            .await
            .unwrap();
    }
    for i in 0..20 {
        let mut spec = RuleSpec::new(&format!("event_{i:02}"), "");
        spec.metric = None;
        spec.event = Some(EventRuleSpec {
            on: EventMatch {
                kind: Some(EventKind::Syslog),
                program: Some(["runtime", "histor*", "ssh*", "kern*"][i % 4].into()),
                text: Some(format!("tag *{i} bad")),
                ..EventMatch::default()
            },
            clear: (i % 2 == 0).then(|| EventMatch {
                text: Some("quality good".into()),
                ..EventMatch::default()
            }),
            key: vec!["program".into()],
            severity: Severity::Warning,
            expire_s: 600,
        });
        if i % 3 == 0 {
            spec.scope = RuleScope::Tag;
            spec.scope_value = Some("line-1".into());
        }
        bench.admin.create_rule(&spec).await.unwrap();
    }
    let state = bench.server.state.clone();
    let tz = maintenance::time_zone("UTC").unwrap();
    let mut evaluator = Evaluator::default();
    let mut insert_times = Vec::new();
    let mut cycle_times = Vec::new();
    let mut opened = 0;
    for round in 0..CYCLES {
        let now = time::OffsetDateTime::now_utc();
        let events = event_batch(round, now);
        let started = Instant::now();
        {
            let mut conn = state.db.get().unwrap();
            let tx = conn.transaction().unwrap();
            let stored =
                plantwatch_server::db::events::insert(&tx, registration.component_id, &events)
                    .unwrap();
            assert_eq!(stored, EVENTS);
            tx.commit().unwrap();
        }
        insert_times.push(started.elapsed());
        let started = Instant::now();
        let stats = alerting::cycle(&state, &mut evaluator, &tz, now.unix_timestamp())
            .await
            .unwrap();
        cycle_times.push(started.elapsed());
        opened += stats.opened;
    }
    let open = evaluator.memory.open.len();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let cycle = median(cycle_times);
    println!(
        "event rules: {EVENTS} events a cycle from {EVENT_NODES} nodes, built-in event rules + 20 custom"
    );
    println!(
        "  stored (one transaction): {:.0} ms median; cycle judging them: {:.0} ms median = {:.0} events/s; {opened} alerts opened over {CYCLES} cycles, {open} open",
        ms(median(insert_times)),
        ms(cycle),
        EVENTS as f64 / cycle.as_secs_f64()
    );
    bench.server.shutdown().await.unwrap();
}

/// A webhook receiver that notes when each notification arrived, by node.
async fn receiver() -> (String, Arc<Mutex<Vec<(String, Instant)>>>) {
    let arrived: Arc<Mutex<Vec<(String, Instant)>>> = Arc::default();
    let state = arrived.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |body: axum::body::Bytes| {
            let state = state.clone();
            async move {
                let n: plantwatch_shared::api::Notification =
                    serde_json::from_slice(&body).unwrap();
                if n.event == "firing" {
                    state
                        .lock()
                        .unwrap()
                        .push((n.node.unwrap_or_default(), Instant::now()));
                }
                axum::http::StatusCode::NO_CONTENT
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, arrived)
}

const CROSSINGS: usize = 8;

async fn crossing_to_webhook() {
    // The default 10 s evaluator.
    let bench = common::start_with(|_| {}).await;
    let registration = common::approved_collector(&bench.admin, "north").await;
    let collector = bench.client.clone().with_api_key(registration.api_key);
    let (url, arrived) = receiver().await;
    bench
        .admin
        .create_channel(&ChannelSpec {
            name: "bench-hook".into(),
            kind: ChannelKind::Webhook,
            settings: ChannelSettings {
                url: Some(url),
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
    bench
        .admin
        .create_rule(&RuleSpec {
            warning: Some(80.0),
            ..RuleSpec::new("tank_level", "tank.level_pct")
        })
        .await
        .unwrap();
    let mut latencies = Vec::new();
    for i in 0..CROSSINGS {
        let node = bench
            .admin
            .create_node(&NodeSpec {
                name: format!("tank-{i}"),
                address: format!("127.0.3.{}", i + 1),
                collector: Some("north".into()),
                ..NodeSpec::default()
            })
            .await
            .unwrap();
        // Each wait ends just after a webhook, i.e. just after a cycle: waiting a different
        // share of the cycle each time puts the crossings at different points of it.
        tokio::time::sleep(Duration::from_millis(300 + (i as u64 * 1_250) % 10_000)).await;
        let line = format!("tank,node_id={} level_pct=91", node.id);
        let crossed = Instant::now();
        let (status, _) = collector
            .send_raw(
                reqwest::Method::POST,
                "/api/v1/ingest/influx",
                None,
                line.into_bytes(),
            )
            .await
            .unwrap();
        assert_eq!(status, 204);
        let name = node.name.clone();
        let deadline = Instant::now() + Duration::from_secs(30);
        let at = loop {
            if let Some((_, at)) = arrived.lock().unwrap().iter().find(|(n, _)| *n == name) {
                break *at;
            }
            assert!(Instant::now() < deadline, "no webhook for {name}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        latencies.push(at - crossed);
    }
    latencies.sort();
    let seconds: Vec<String> = latencies
        .iter()
        .map(|d| format!("{:.1}", d.as_secs_f64()))
        .collect();
    println!("threshold crossing → webhook ({CROSSINGS} crossings, 10 s evaluator):");
    println!("  each (s): {}", seconds.join(" "));
    println!(
        "  median {:.1} s, worst {:.1} s",
        median(latencies.clone()).as_secs_f64(),
        latencies.last().unwrap().as_secs_f64()
    );
    bench.server.shutdown().await.unwrap();
}

#[tokio::main]
async fn main() {
    // `cargo bench -p plantwatch-server --bench alerting -- windows` runs the parts whose name
    // holds a word given; none given runs all.
    let words: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let run = |name: &str| words.is_empty() || words.iter().any(|w| name.contains(w.as_str()));
    if run("windows_services") {
        windows_services_cycle().await;
    }
    if run("event_rules") {
        event_rules_cycle().await;
    }
    if run("evaluator") {
        evaluator_cycle().await;
    }
    if run("crossing_to_webhook") {
        crossing_to_webhook().await;
    }
}
