//! `GET /metrics` of the real server over HTTPS: admin or scrape token only, parsed by
//! Prometheus's own `promtool`, and figures that move when traffic flows.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly by design.

mod common;

use common::{TestApp, approved_collector, promtool, spawn_app_with, spec};
use plantwatch_shared::Client;
use reqwest::Method;

const SCRAPE_TOKEN: &str = "scrape-0123456789abcdef";

async fn scrape(client: &Client) -> (u16, String) {
    let (status, body) = client
        .send_raw(Method::GET, "/metrics", None, Vec::new())
        .await
        .unwrap();
    (status, String::from_utf8(body).unwrap())
}

/// The value of the sample whose name and labels start with `prefix` (`name{a="b"` or `name `).
fn value(text: &str, prefix: &str) -> f64 {
    text.lines()
        .find(|line| line.starts_with(prefix))
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no sample {prefix} in\n{text}"))
}

async fn push(app: &TestApp, key: &plantwatch_shared::Secret, body: &str) -> u16 {
    let http = reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .build()
        .unwrap();
    http.post(format!(
        "{}/api/v1/ingest/influx?precision=ms",
        app.server.url()
    ))
    .header("x-api-key", key.expose())
    .body(body.to_owned())
    .send()
    .await
    .unwrap()
    .status()
    .as_u16()
}

#[tokio::test]
async fn self_metrics_are_for_admins_and_the_scrape_token_and_move_with_traffic() {
    let app = spawn_app_with(|config| config.scrape_token = Some(SCRAPE_TOKEN.into())).await;
    let admin = app.admin().await;
    let [(_, anonymous), (_, viewer), (_, operator), _] = app.callers(&admin).await;
    assert_eq!(scrape(&anonymous).await.0, 401);
    assert_eq!(scrape(&viewer).await.0, 403);
    assert_eq!(scrape(&operator).await.0, 403);
    let wrong = app
        .client()
        .with_token("scrape-not-the-right-one".to_owned());
    assert_eq!(scrape(&wrong).await.0, 401);
    let scraper = app.client().with_token(SCRAPE_TOKEN.to_owned());
    let (status, before) = scrape(&scraper).await;
    assert_eq!(status, 200, "{before}");
    promtool(&before);

    // Traffic: a collector pushes samples (one line refused), a chart is read.
    let north = approved_collector(&app, &admin, "north").await;
    let plc = admin
        .create_node(&spec("plc-1", "127.0.0.10", "north"))
        .await
        .unwrap();
    let now = plantwatch_server::clock::unix_ms();
    let lines = format!(
        "ping,node_id={id} rtt_avg_ms=1.5 {now}\nping,node_id={id} up=1 {now}\nnot a line\n",
        id = plc.id
    );
    assert_eq!(push(&app, &north.api_key, &lines).await, 400);
    for _ in 0..3 {
        admin
            .node_metrics(plc.id, &Default::default())
            .await
            .unwrap();
    }
    let (status, after) = scrape(&admin).await;
    assert_eq!(status, 200);
    promtool(&after);

    assert_eq!(value(&before, "plantwatch_ingest_samples_total "), 0.0);
    assert_eq!(value(&after, "plantwatch_ingest_samples_total "), 2.0);
    assert_eq!(
        value(&after, "plantwatch_ingest_rejected_lines_total "),
        1.0
    );
    assert!(value(&after, "plantwatch_store_write_seconds_count ") >= 1.0);
    assert_eq!(value(&after, "plantwatch_store_series "), 2.0);
    let charts = "plantwatch_http_requests_total{route=\"/api/v1/nodes/{id}/metrics\",method=\"GET\",status=\"200\"}";
    assert_eq!(value(&after, charts), 3.0);
    let ingest = "plantwatch_http_requests_total{route=\"/api/v1/ingest/influx\",method=\"POST\",status=\"400\"}";
    assert_eq!(value(&after, ingest), 1.0);
    let histogram = "plantwatch_http_request_duration_seconds_count{route=\"/api/v1/nodes/{id}/metrics\",method=\"GET\"}";
    assert_eq!(value(&after, histogram), 3.0);
    // The node's collector gets a new configuration once changes have paused for 5 s.
    let regenerations = "plantwatch_config_regenerations_total{collector=\"north\"}";
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while value(&scrape(&admin).await.1, regenerations) < 1.0 {
        assert!(
            std::time::Instant::now() < deadline,
            "no regeneration counted"
        );
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    assert!(
        value(
            &after,
            "plantwatch_collector_last_seen_age_seconds{collector=\"north\"}"
        ) >= 0.0
    );
    assert!(
        value(
            &after,
            "plantwatch_db_pool_connections{db=\"plantwatch\",state=\"idle\"}"
        ) >= 1.0
    );
    // Unknown paths count under one route, whatever a scanner asks for.
    anonymous
        .send_raw(Method::GET, "/wp-login.php", None, Vec::new())
        .await
        .unwrap();
    let (_, last) = scrape(&admin).await;
    assert!(!last.contains("wp-login"), "{last}");
    assert_eq!(
        value(
            &last,
            "plantwatch_http_requests_total{route=\"unmatched\",method=\"GET\",status=\"404\"}"
        ),
        1.0
    );
}
