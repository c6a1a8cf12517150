//! Metric ingest, queries and templates through the real server over HTTPS: node scoping of
//! collectors and agents, refused lines named, batch ids stored once, gzip, precisions,
//! Telegraf's write path, limits, range queries with counter rates, template reload, and the
//! role matrix of the new routes.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly by design.

mod common;

use plantwatch_shared::api::ErrorCode;
use std::io::Write as _;

use common::{TestApp, approved_collector, register, spec, token};
use plantwatch_shared::Client;
use plantwatch_shared::api::{
    Aggregation, ComponentKind, IngestRejection, MetricQuery, NodeSpec, SeriesKind, SeriesQuery,
};
use reqwest::Method;
use serde_json::Value;

/// Posts `body` to the ingest route with extra headers; returns status and JSON (if any).
async fn push(
    app: &TestApp,
    key: &plantwatch_shared::Secret,
    path: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> (u16, Value) {
    let http = reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .build()
        .unwrap();
    let mut request = http
        .post(format!("{}{path}", app.server.url()))
        .header("x-api-key", key.expose())
        .body(body);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

struct Fixture {
    app: TestApp,
    admin: Client,
    collector_key: plantwatch_shared::Secret,
    plc: i64,
    foreign: i64,
}

/// A server with an approved collector `north` polling node `plc-1`, and node `hmi-1` on the
/// local collector.
async fn fixture() -> Fixture {
    fixture_with(|_| {}).await
}

async fn fixture_with(tweak: impl FnOnce(&mut plantwatch_server::config::Config)) -> Fixture {
    let app = common::spawn_app_with(tweak).await;
    let admin = app.admin().await;
    let north = approved_collector(&app, &admin, "north").await;
    let plc = admin
        .create_node(&spec("plc-1", "127.0.0.10", "north"))
        .await
        .unwrap()
        .id;
    let foreign = admin
        .create_node(&NodeSpec {
            name: "hmi-1".into(),
            address: "127.0.0.11".into(),
            ..NodeSpec::default()
        })
        .await
        .unwrap()
        .id;
    Fixture {
        app,
        admin,
        collector_key: north.api_key,
        plc,
        foreign,
    }
}

fn now_s() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

#[tokio::test]
async fn a_collector_writes_for_its_targets_only_and_refused_lines_are_named() {
    let f = fixture().await;
    let now = now_s();
    let body = format!(
        "ping,node_id={plc} rtt_avg_ms=1.5,up=1 {now}\n\
         ping,node_id={foreign} rtt_avg_ms=9 {now}\n\
         # a comment\n\
         ping,node_id={plc} rtt_avg_ms=oops {now}\n\
         ping rtt_avg_ms=2 {now}\n",
        plc = f.plc,
        foreign = f.foreign,
    );
    let (status, answer) = push(
        &f.app,
        &f.collector_key,
        "/api/v1/ingest/influx?precision=s",
        &[],
        body.into_bytes(),
    )
    .await;
    assert_eq!(status, 400, "{answer}");
    assert_eq!(answer["error"]["code"], "invalid_lines");
    let details: IngestRejection =
        serde_json::from_value(answer["error"]["details"].clone()).unwrap();
    assert_eq!((details.accepted, details.rejected), (1, 3));
    let lines: Vec<usize> = details.errors.iter().map(|e| e.line).collect();
    assert_eq!(lines, vec![2, 4, 5]);
    assert!(
        details.errors[0]
            .message
            .contains("not a target of this collector")
    );
    assert!(details.errors[1].message.contains("invalid field value"));
    assert!(details.errors[2].message.contains("no node_id"));

    // The good line was stored; nothing landed on the node the collector does not poll.
    let answer = f
        .admin
        .node_metrics(
            f.plc,
            &MetricQuery {
                metric: Some("ping.*".into()),
                from: Some(now - 60),
                to: Some(now + 60),
                step: Some(1),
                agg: Some(Aggregation::Last),
            },
        )
        .await
        .unwrap();
    let metrics: Vec<_> = answer.items.iter().map(|s| s.metric.as_str()).collect();
    assert_eq!(metrics, vec!["ping.rtt_avg_ms", "ping.up"]);
    assert_eq!(answer.items[0].points, vec![(now, 1.5)]);
    let foreign = f
        .admin
        .series(&SeriesQuery {
            node_id: Some(f.foreign),
            ..SeriesQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(foreign.total, 0);
    let summary = f.admin.summary().await.unwrap();
    assert_eq!(summary.nodes_by_health.get("discovering"), Some(&2));
    let north = summary
        .collectors
        .iter()
        .find(|c| c.name == "north")
        .unwrap();
    assert_eq!(north.target_count, Some(1));
    assert_eq!(summary.ingest.rejected_lines, 3);
    assert_eq!(summary.ingest.samples_total, 2);
}

#[tokio::test]
async fn an_agent_writes_for_its_own_node_only() {
    let f = fixture().await;
    let token = token(&f.admin, "a").await;
    let agent = register(&f.app, &token, ComponentKind::Agent, "srv-1", "m-agent").await;
    let approved = f.admin.approve_component(agent.component_id).await.unwrap();
    let own = approved.node_id.unwrap();
    let body = format!(
        "memory used_pct=41.5\nmemory,node_id={own} used_pct=42\nmemory,node_id={} used_pct=43\n",
        f.plc
    );
    let (status, answer) = push(
        &f.app,
        &agent.api_key,
        "/api/v1/ingest/influx",
        &[],
        body.into_bytes(),
    )
    .await;
    assert_eq!(status, 400, "{answer}");
    assert_eq!(answer["error"]["details"]["accepted"], 2);
    assert!(
        answer["error"]["details"]["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("not this agent's node")
    );
    let series = f
        .admin
        .series(&SeriesQuery {
            node_id: Some(own),
            ..SeriesQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(series.items.len(), 1);
    assert_eq!(series.items[0].metric, "memory.used_pct");
    assert_eq!(series.items[0].latest.map(|(_, v)| v), Some(42.0));
}

#[tokio::test]
async fn a_batch_sent_twice_is_stored_once_and_gzip_and_telegrafs_path_work() {
    let f = fixture().await;
    let now = now_s();
    let text = format!(
        "ifstat,node_id={},ifName=eth0 in_octets_total=1000u {now}000\n",
        f.plc
    );
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(text.as_bytes()).unwrap();
    let body = gz.finish().unwrap();
    let headers = [("content-encoding", "gzip"), ("x-batch-id", "abc-1")];
    for _ in 0..2 {
        let (status, answer) = push(
            &f.app,
            &f.collector_key,
            "/api/v1/ingest/influx?precision=ms",
            &headers,
            body.clone(),
        )
        .await;
        assert_eq!(status, 204, "{answer}");
    }
    let summary = f.admin.summary().await.unwrap();
    assert_eq!(summary.ingest.duplicate_batches, 1);
    assert_eq!(summary.ingest.samples_total, 1);
    let conn = common::metrics_db(&f.app);
    assert_eq!(common::stored_samples(&conn, None, None, 0).len(), 1);

    // Telegraf's influxdb output appends /write and sends nanoseconds.
    let line = format!(
        "ifstat,node_id={},ifName=eth0 in_octets_total=3000u {}\n",
        f.plc,
        (now + 10) * 1_000_000_000
    );
    let (status, _) = push(
        &f.app,
        &f.collector_key,
        "/api/v1/ingest/influx/write?db=telegraf",
        &[],
        line.into_bytes(),
    )
    .await;
    assert_eq!(status, 204);
    // A counter is answered as a per-second rate: 2000 over 10 s.
    let answer = f
        .admin
        .node_metrics(
            f.plc,
            &MetricQuery {
                metric: Some("ifstat.in_octets_total".into()),
                from: Some(now - 30),
                to: Some(now + 30),
                step: Some(60),
                agg: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(answer.items.len(), 1);
    assert_eq!(answer.items[0].kind, SeriesKind::Counter);
    assert_eq!(answer.items[0].tags["ifName"], "eth0");
    let values: Vec<f64> = answer.items[0].points.iter().map(|(_, v)| *v).collect();
    assert_eq!(values, vec![200.0]);
}

#[tokio::test]
async fn bad_requests_are_refused_whole() {
    let f = fixture().await;
    let key = &f.collector_key;
    let path = "/api/v1/ingest/influx";
    let (status, answer) = push(
        &f.app,
        key,
        "/api/v1/ingest/influx?precision=h",
        &[],
        b"x v=1".to_vec(),
    )
    .await;
    assert_eq!(
        (
            status,
            answer["error"]["code"].as_str().map(ErrorCode::parse)
        ),
        (400, Some(ErrorCode::InvalidPrecision))
    );
    let (status, answer) = push(
        &f.app,
        key,
        path,
        &[("content-encoding", "gzip")],
        b"not gzip".to_vec(),
    )
    .await;
    assert_eq!(
        (
            status,
            answer["error"]["code"].as_str().map(ErrorCode::parse)
        ),
        (400, Some(ErrorCode::InvalidBody))
    );
    let (status, _) = push(
        &f.app,
        key,
        path,
        &[("content-encoding", "br")],
        b"x v=1".to_vec(),
    )
    .await;
    assert_eq!(status, 415);
    let (status, answer) = push(
        &f.app,
        key,
        path,
        &[("x-batch-id", "has space")],
        b"x v=1".to_vec(),
    )
    .await;
    assert_eq!(
        (
            status,
            answer["error"]["code"].as_str().map(ErrorCode::parse)
        ),
        (400, Some(ErrorCode::InvalidBatchId))
    );
    // Larger than the 16 MiB body limit: 413, as a JSON error like every other.
    let huge = vec![b'a'; 17 * 1024 * 1024];
    let (status, answer) = push(&f.app, key, path, &[], huge).await;
    assert_eq!(status, 413);
    assert_eq!(answer["error"]["code"], "payload_too_large", "{answer}");
    // An address longer than 8 KiB: 414 in JSON.
    let long_path = format!("{path}?precision=s&x={}", "a".repeat(9_000));
    let (status, answer) = push(&f.app, key, &long_path, &[], b"x v=1".to_vec()).await;
    assert_eq!(status, 414);
    assert_eq!(answer["error"]["code"], "uri_too_long", "{answer}");
    // A line over 64 KiB is refused by number, the body is not.
    let long = format!("x,node_id={} v=1,s=\"{}\"\n", f.plc, "y".repeat(70 * 1024));
    let (status, answer) = push(&f.app, key, path, &[], long.into_bytes()).await;
    assert_eq!(status, 400);
    assert!(
        answer["error"]["message"]
            .as_str()
            .unwrap()
            .contains("line too long"),
        "{answer}"
    );
    // Without a key, or with a session instead: 401.
    let (status, _) = push(&f.app, &"pwk_1_nope".into(), path, &[], b"x v=1".to_vec()).await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn queries_check_their_range_and_node() {
    let f = fixture().await;
    let error = f
        .admin
        .node_metrics(
            f.plc,
            &MetricQuery {
                from: Some(100),
                to: Some(50),
                ..MetricQuery::default()
            },
        )
        .await
        .unwrap_err();
    assert_eq!(error.code(), Some(ErrorCode::InvalidRange));
    let error = f
        .admin
        .node_metrics(9_999, &MetricQuery::default())
        .await
        .unwrap_err();
    assert_eq!(error.code(), Some(ErrorCode::NodeNotFound));
}

#[tokio::test]
async fn templates_are_listed_and_reloaded_from_the_data_dir() {
    let f = fixture().await;
    let list = f.admin.list_templates().await.unwrap();
    assert!(list.total >= 27, "{}", list.total);
    let linux = list.items.iter().find(|t| t.name == "linux").unwrap();
    assert!(linux.metric_count > 10);
    assert!(linux.source.starts_with("built-in"));
    let detail = f.admin.get_template(linux.id).await.unwrap();
    let def = detail.definition.unwrap();
    assert!(def.tables.iter().any(|t| t.measurement == "interface"));

    // A bad file: refused, nothing changes.
    let dir = f.app.dir.path().join("templates");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("bad.toml"), "name = 'bad'\nbogus = 1\n").unwrap();
    let error = f.admin.reload_templates().await.unwrap_err();
    assert_eq!(error.code(), Some(ErrorCode::InvalidTemplate));
    assert!(error.to_string().contains("bad.toml"), "{error}");

    // A good one: loaded, and the collectors' configurations are regenerated.
    std::fs::remove_file(dir.join("bad.toml")).unwrap();
    std::fs::write(
        dir.join("plc.toml"),
        "name = 'siemens-s7'\nextends = ['generic']\ninterval_s = 30\n\
         [[fingerprint]]\nsys_object_id = '1.3.6.1.4.1.4329'\n",
    )
    .unwrap();
    let reload = f.admin.reload_templates().await.unwrap();
    assert_eq!(reload.changed, vec!["siemens-s7"]);
    assert_eq!(reload.collectors_marked, 2); // north and the local collector
    let again = f.admin.reload_templates().await.unwrap();
    assert!(again.changed.is_empty());
    let list = f.admin.list_templates().await.unwrap();
    let s7 = list.items.iter().find(|t| t.name == "siemens-s7").unwrap();
    assert_eq!(s7.interval_s, 30);
    assert_eq!(s7.fingerprints[0].sys_object_id, "1.3.6.1.4.1.4329");
}

#[tokio::test]
async fn role_matrix_of_metrics_and_templates() {
    let f = fixture().await;
    let callers = f.app.callers(&f.admin).await;
    let node = f.plc;
    let routes: Vec<(Method, String, [u16; 4])> = vec![
        (
            Method::GET,
            format!("/api/v1/nodes/{node}/metrics"),
            [401, 200, 200, 200],
        ),
        (
            Method::GET,
            "/api/v1/metrics/series".into(),
            [401, 200, 200, 200],
        ),
        (Method::GET, "/api/v1/summary".into(), [401, 200, 200, 200]),
        (
            Method::GET,
            "/api/v1/templates".into(),
            [401, 200, 200, 200],
        ),
        (
            Method::GET,
            "/api/v1/templates/1".into(),
            [401, 200, 200, 200],
        ),
        (
            Method::POST,
            "/api/v1/templates/reload".into(),
            [401, 403, 403, 200],
        ),
        // Sessions cannot push metrics: only component keys can.
        (
            Method::POST,
            "/api/v1/ingest/influx".into(),
            [401, 401, 401, 401],
        ),
    ];
    let mut failures = Vec::new();
    for (method, path, expected) in &routes {
        for ((who, client), status) in callers.iter().zip(expected) {
            f.app
                .expect_status(
                    &mut failures,
                    who,
                    client,
                    method.clone(),
                    path,
                    None,
                    *status,
                )
                .await;
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

fn gzip(text: &str) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(text.as_bytes()).unwrap();
    encoder.finish().unwrap()
}

#[tokio::test]
async fn every_member_of_a_multi_member_gzip_body_is_stored() {
    let f = fixture().await;
    let mut body = gzip(&format!("first,node_id={} v=1\n", f.plc));
    body.extend(gzip(&format!("second,node_id={} v=2\n", f.plc)));
    let (status, answer) = push(
        &f.app,
        &f.collector_key,
        "/api/v1/ingest/influx",
        &[("content-encoding", "gzip")],
        body,
    )
    .await;
    assert_eq!(status, 204, "{answer}");
    let series = f
        .admin
        .series(&SeriesQuery {
            node_id: Some(f.plc),
            ..SeriesQuery::default()
        })
        .await
        .unwrap();
    let mut metrics: Vec<&str> = series.items.iter().map(|s| s.metric.as_str()).collect();
    metrics.sort_unstable();
    assert_eq!(metrics, ["first.v", "second.v"]);
}

#[tokio::test]
async fn new_series_past_a_limit_are_refused_with_a_4xx_naming_it_and_counted() {
    let f = fixture_with(|c| {
        c.max_series_per_node = 100;
        c.max_new_series_per_hour = 1_000;
    })
    .await;
    let path = "/api/v1/ingest/influx";
    // 150 series for one node: 100 stored, 50 refused.
    let lines: String = (0..150)
        .map(|i| format!("junk,node_id={},n={i} v=1\n", f.plc))
        .collect();
    let (status, answer) = push(&f.app, &f.collector_key, path, &[], lines.into_bytes()).await;
    assert_eq!(status, 400, "{answer}");
    assert_eq!(answer["error"]["code"], "series_limit");
    let message = answer["error"]["message"].as_str().unwrap();
    assert!(message.contains("max_series_per_node 100"), "{message}");
    assert!(message.starts_with("50 samples"), "{message}");
    let series = f
        .admin
        .series(&SeriesQuery {
            node_id: Some(f.plc),
            limit: Some(1_000),
            ..SeriesQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(series.total, 100);
    // The series it has keep being written.
    let known = format!("junk,node_id={},n=0 v=2\n", f.plc);
    let (status, _) = push(&f.app, &f.collector_key, path, &[], known.into_bytes()).await;
    assert_eq!(status, 204);
    let metrics = f
        .admin
        .send_raw(Method::GET, "/metrics", None, Vec::new())
        .await
        .unwrap();
    let text = String::from_utf8(metrics.1).unwrap();
    assert!(
        text.contains("plantwatch_ingest_series_limited_samples_total 50"),
        "{text}"
    );
}

#[tokio::test]
async fn a_chart_past_the_series_limit_says_it_is_truncated_and_bad_limits_are_refused() {
    let f = fixture().await;
    let lines: String = (0..501)
        .map(|i| format!("port,node_id={},n={i:03} v=1\n", f.plc))
        .collect();
    let (status, answer) = push(
        &f.app,
        &f.collector_key,
        "/api/v1/ingest/influx",
        &[],
        lines.into_bytes(),
    )
    .await;
    assert_eq!(status, 204, "{answer}");
    let answer = f
        .admin
        .node_metrics(f.plc, &MetricQuery::default())
        .await
        .unwrap();
    assert_eq!(answer.items.len(), 500);
    assert_eq!((answer.total, answer.truncated), (501, true));
    let of_metric = |metric: &'static str| {
        let query = MetricQuery {
            metric: Some(metric.into()),
            ..MetricQuery::default()
        };
        let admin = f.admin.clone();
        async move { admin.node_metrics(f.plc, &query).await.unwrap() }
    };
    let narrowed = of_metric("port.v").await;
    assert_eq!((narrowed.total, narrowed.truncated), (501, true));
    let one = of_metric("nothing.here").await;
    assert_eq!((one.total, one.truncated), (0, false));
    for limit in ["-1", "0", "1001"] {
        let (status, body) = f
            .admin
            .send_raw(
                Method::GET,
                &format!("/api/v1/metrics/series?limit={limit}"),
                None,
                Vec::new(),
            )
            .await
            .unwrap();
        let body: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(status, 400, "limit {limit}: {body}");
        assert_eq!(body["error"]["code"], "invalid_limit");
    }
}

#[tokio::test]
async fn an_agent_bound_to_a_polled_node_cannot_write_what_its_collector_measures() {
    let f = fixture().await;
    f.admin
        .create_credential(&common::community("ro", "public-ro"))
        .await
        .unwrap();
    // plc-1 (polled by north) becomes an SNMP-polled Linux host.
    f.admin
        .update_node(
            f.plc,
            &plantwatch_shared::api::UpdateNodeRequest {
                template: Some(Some("linux".into())),
                credentials: Some(vec!["ro".into()]),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let token = token(&f.admin, "a").await;
    let agent = register(&f.app, &token, ComponentKind::Agent, "plc-1", "m-plc").await;
    let approved = f
        .admin
        .approve_agent(
            agent.component_id,
            &plantwatch_shared::api::ApproveRequest {
                node: Some("plc-1".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(approved.node_id, Some(f.plc));
    let body = "ping up=0\nsnmp up=0\nmemory available_pct=3\ncpu_total usage_pct=12\n";
    let (status, answer) = push(
        &f.app,
        &agent.api_key,
        "/api/v1/ingest/influx",
        &[],
        body.as_bytes().to_vec(),
    )
    .await;
    assert_eq!(status, 400, "{answer}");
    assert_eq!(answer["error"]["details"]["accepted"], 1, "{answer}");
    assert_eq!(answer["error"]["details"]["rejected"], 3, "{answer}");
    let series = f
        .admin
        .series(&SeriesQuery {
            node_id: Some(f.plc),
            ..SeriesQuery::default()
        })
        .await
        .unwrap();
    let metrics: Vec<&str> = series.items.iter().map(|s| s.metric.as_str()).collect();
    assert_eq!(metrics, ["cpu_total.usage_pct"]);
}

#[tokio::test]
async fn a_full_head_answers_503_until_the_compactor_has_sealed_it() {
    let f = fixture_with(|c| c.metrics_head_max_samples = 100).await;
    let path = "/api/v1/ingest/influx";
    // Half an hour ago: sealed by the next pass.
    let ts = (now_s() - 1_800) * 1_000_000_000;
    let body = |from: usize| -> Vec<u8> {
        (from..from + 150)
            .map(|i| format!("tank,node_id={},n={i} level_pct=50 {ts}\n", f.plc))
            .collect::<String>()
            .into_bytes()
    };
    let (status, answer) = push(&f.app, &f.collector_key, path, &[], body(0)).await;
    assert_eq!(status, 204, "{answer}");
    // The head now holds 150 samples, past its limit: the sender keeps its batch.
    let http = reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .build()
        .unwrap();
    let response = http
        .post(format!("{}{path}", f.app.server.url()))
        .header("x-api-key", f.collector_key.expose())
        .body(body(150))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 503);
    assert_eq!(response.headers()["retry-after"], "5");
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer["error"]["code"], "ingest_busy");
    let message = answer["error"]["message"].as_str().unwrap();
    assert!(message.contains("metrics_head_max_samples"), "{message}");
    // Once sealed, the same batch goes in.
    let store = &f.app.server.state.metrics;
    store.compact(now_s() * 1_000).await.unwrap();
    assert!(store.head.is_empty());
    let (status, answer) = push(&f.app, &f.collector_key, path, &[], body(150)).await;
    assert_eq!(status, 204, "{answer}");
    let stored = common::stored_samples(&common::metrics_db(&f.app), Some(f.plc), None, 0);
    assert_eq!(stored.len(), 300);
}
