//! What every server benchmark starts with: the real server in-process on `127.0.0.1:0` over
//! HTTPS with a temporary data dir, and a client signed in as its admin.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)] // A benchmark fails loudly by design.

use std::io::Write as _;
use std::time::Duration;

use plantwatch_server::config::{BootstrapAdmin, Config};
use plantwatch_server::server::{Running, start};
use plantwatch_shared::Client;
use plantwatch_shared::api::{
    ComponentKind, CreateTokenRequest, NodeSpec, RegisterRequest, Registration,
};
use plantwatch_shared::lineproto::Writer;
use plantwatch_testkit::engines::Engine;

pub const ADMIN_PASSWORD: &str = "bench-password";

pub struct Bench {
    pub server: Running,
    pub dir: tempfile::TempDir,
    /// A client without a session, pinned to the server's certificate.
    pub client: Client,
    /// The same, signed in as the admin.
    pub admin: Client,
}

/// Starts a server; `tweak` adjusts its configuration first.
pub async fn start_with(tweak: impl FnOnce(&mut Config)) -> Bench {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config {
        data_dir: dir.path().to_owned(),
        listen: "127.0.0.1:0".parse().unwrap(),
        bootstrap_admin: Some(BootstrapAdmin {
            username: "admin".into(),
            password: ADMIN_PASSWORD.into(),
        }),
        // Benchmark nodes have made-up addresses: the server must not send to them.
        local_polling: false,
        // Nor may it scan.
        local_discovery: false,
        ..Config::default()
    };
    tweak(&mut config);
    let server = start(config).await.unwrap();
    let client = Client::new(&server.url(), server.fingerprint).unwrap();
    let session = client.login("admin", ADMIN_PASSWORD).await.unwrap();
    let admin = client.clone().with_token(session.token);
    Bench {
        server,
        dir,
        client,
        admin,
    }
}

/// The `p` quantile of sorted samples, in milliseconds.
pub fn percentile_ms(sorted: &[Duration], p: f64) -> f64 {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index].as_secs_f64() * 1e3
}

/// Enrolls a collector called `name` with a new token and approves it, as `admin`.
pub async fn approved_collector(admin: &Client, name: &str) -> Registration {
    let token = admin
        .create_token(&CreateTokenRequest {
            name: "bench".into(),
            ..CreateTokenRequest::default()
        })
        .await
        .unwrap();
    let registration = admin
        .register(&RegisterRequest {
            token: token.secret,
            kind: ComponentKind::Collector,
            name: name.into(),
            machine_id: format!("bench-{name}"),
            version: "bench".into(),
            hostname: None,
        })
        .await
        .unwrap();
    admin
        .approve_component(registration.component_id)
        .await
        .unwrap();
    registration
}

/// The yardstick of the metric store: rows `(series_id, ts, value)` inserted one by one into
/// the first schema (one row per sample), one transaction per batch, synced as the store's
/// writer syncs. Samples per second and bytes per sample on disk.
pub fn bare_insert(dir: &std::path::Path, batches: &[Vec<(i64, i64, f64)>]) -> (f64, f64) {
    let path = dir.join("bare.db");
    let mut conn = rusqlite::Connection::open(&path).unwrap();
    conn.pragma_update(None, "journal_mode", "WAL").unwrap();
    conn.pragma_update(None, "synchronous", "FULL").unwrap();
    conn.execute_batch(include_str!("../../../migrations/metrics/0001_samples.sql"))
        .unwrap();
    let started = std::time::Instant::now();
    let mut total = 0usize;
    for rows in batches {
        let tx = conn.transaction().unwrap();
        {
            let mut insert = tx
                .prepare_cached(
                    "INSERT OR REPLACE INTO samples (series_id, ts, value) VALUES (?1, ?2, ?3)",
                )
                .unwrap();
            for (id, ts, value) in rows {
                insert.execute(rusqlite::params![id, ts, value]).unwrap();
            }
        }
        tx.commit().unwrap();
        total += rows.len();
    }
    let rate = total as f64 / started.elapsed().as_secs_f64();
    conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")
        .unwrap();
    let bytes = std::fs::metadata(&path).unwrap().len();
    (rate, bytes as f64 / total.max(1) as f64)
}

/// Fields of each line of [`interface_batch`].
pub const FIELDS: usize = 7;

/// Creates `count` switches polled by the collector `collector`; their ids.
pub async fn switches(admin: &Client, count: usize, collector: &str) -> Vec<i64> {
    let mut ids = Vec::with_capacity(count);
    for i in 0..count {
        let node = admin
            .create_node(&NodeSpec {
                name: format!("sw-{i}"),
                address: format!("127.0.1.{}", i + 1),
                collector: Some(collector.into()),
                ..NodeSpec::default()
            })
            .await
            .unwrap();
        ids.push(node.id);
    }
    ids
}

/// Batch `index` of a collector's pushes: `lines` interface lines of [`FIELDS`] fields, every
/// node's `interfaces` in turn, one poll (10 s apart from `base_ms`) per pass over the nodes.
pub fn interface_batch(
    index: usize,
    node_ids: &[i64],
    lines: usize,
    interfaces: usize,
    base_ms: i64,
) -> String {
    interface_lines(index * lines, lines, node_ids, interfaces, base_ms)
}

/// Lines `first..first + count` of the sequence [`interface_batch`] cuts into batches.
pub fn interface_lines(
    first: usize,
    count: usize,
    node_ids: &[i64],
    interfaces: usize,
    base_ms: i64,
) -> String {
    let mut writer = Writer::new();
    let nodes = node_ids.len();
    for n in first..first + count {
        let node = node_ids[(n / interfaces) % nodes].to_string();
        let poll = n / (interfaces * nodes);
        let interface = n % interfaces;
        let index_tag = interface.to_string();
        let name = format!("Gi1/0/{interface}");
        writer
            .line(
                "interface",
                &[
                    ("node_id", &node),
                    ("ifIndex", &index_tag),
                    ("ifName", &name),
                ],
            )
            .uint("in_octets_total", 1_000_000 * poll as u64 + n as u64)
            .uint("out_octets_total", 2_000_000 * poll as u64 + n as u64)
            .uint("in_packets_total", 1_000 * poll as u64)
            .uint("out_packets_total", 2_000 * poll as u64)
            .uint("in_errors_total", 0)
            .float("oper_status", 1.0)
            .float("speed_mbps", 1_000.0)
            .finish(base_ms + poll as i64 * 10_000);
    }
    writer.take()
}

/// `text`, gzip-compressed (fast level, as the collector sends).
pub fn gzip(text: &str) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(text.as_bytes()).unwrap();
    encoder.finish().unwrap()
}

/// Posts every body with `concurrency` senders, each taking every `concurrency`-th body;
/// `send(index, body)` posts one.
pub async fn post_all<F, Fut>(bodies: std::sync::Arc<Vec<Vec<u8>>>, concurrency: usize, send: F)
where
    F: Fn(usize, Vec<u8>) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let mut tasks = Vec::new();
    for worker in 0..concurrency {
        let (bodies, send) = (bodies.clone(), send.clone());
        tasks.push(tokio::spawn(async move {
            for index in (worker..bodies.len()).step_by(concurrency) {
                send(index, bodies[index].clone()).await;
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
}

/// Posts every body to `engine`'s own `/write` (InfluxDB line protocol, gzip) with
/// `concurrency` senders until each is acknowledged; the seconds it took.
pub async fn post_to_engine(
    engine: &Engine,
    bodies: std::sync::Arc<Vec<Vec<u8>>>,
    concurrency: usize,
) -> f64 {
    let url = format!("{}/write", engine.base_url());
    let http = reqwest::Client::new();
    let started = std::time::Instant::now();
    post_all(bodies, concurrency, move |_, body| {
        let (http, url) = (http.clone(), url.clone());
        async move {
            let status = http
                .post(url)
                .header("Content-Encoding", "gzip")
                .body(body)
                .send()
                .await
                .unwrap()
                .status();
            assert!(status.is_success(), "{status}");
        }
    })
    .await;
    started.elapsed().as_secs_f64()
}

/// Posts every body to plantwatch's ingest as `collector` (batch ids `{name}-{index}`) with
/// `concurrency` senders until each is acknowledged; the seconds it took.
pub async fn post_as_collector(
    collector: &Client,
    bodies: std::sync::Arc<Vec<Vec<u8>>>,
    concurrency: usize,
    name: &'static str,
) -> f64 {
    let collector = collector.clone();
    let started = std::time::Instant::now();
    post_all(bodies, concurrency, move |index, body| {
        let collector = collector.clone();
        async move {
            collector
                .ingest_gzip(&format!("{name}-{index}"), body)
                .await
                .unwrap();
        }
    })
    .await;
    started.elapsed().as_secs_f64()
}

/// Samples VictoriaMetrics holds under `selector` at `at_s`, once it has flushed them.
pub async fn held(engine: &Engine, selector: &str, at_s: i64) -> f64 {
    let answer = engine
        .query(
            &format!("sum(count_over_time({selector}[30d]))"),
            &at_s.to_string(),
        )
        .await;
    answer["data"]["result"][0]["value"][1]
        .as_str()
        .map_or(0.0, |v| v.parse().unwrap())
}

/// Waits (at most a minute) until the engine holds `samples` samples under `selector`.
pub async fn wait_for(engine: &Engine, selector: &str, samples: f64, last_s: i64) {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let count = held(engine, selector, last_s + 1).await;
        if count == samples {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the engine holds {count} of {samples} samples"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Bytes of the files under `dir`, recursively.
pub fn dir_bytes(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir).map_or(0, |entries| {
        entries
            .flatten()
            .map(|entry| match entry.metadata() {
                Ok(m) if m.is_dir() => dir_bytes(&entry.path()),
                Ok(m) => m.len(),
                Err(_) => 0,
            })
            .sum()
    })
}
