//! Connections benchmark: a server started under the common soft open-file limit of 1,024 while
//! 2,000 TLS connections sit idle on it (kept alive after a request each, as a flood of idle
//! clients would), the latency of a normal request on a new connection — and how long the idle
//! ones are kept. Server and clients share this process, as they share the machine's cores.
//! Run with `cargo bench -p plantwatch-server --bench connections`.
#![allow(clippy::unwrap_used, clippy::expect_used)] // A benchmark fails loudly by design.

mod common;

use std::time::{Duration, Instant};

use plantwatch_shared::Client;

const IDLE: usize = 2_000;
const PROBES: usize = 50;

/// `plantwatch_http_connections_open` from `/metrics`.
async fn open_connections(admin: &Client) -> f64 {
    let (_, body) = admin
        .send_raw(reqwest::Method::GET, "/metrics", None, Vec::new())
        .await
        .unwrap();
    String::from_utf8(body)
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("plantwatch_http_connections_open "))
        .and_then(|v| v.parse().ok())
        .unwrap_or(f64::NAN)
}

#[tokio::main]
async fn main() {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    // The common default: soft 1,024 (the hard limit stays); the server raises it at start.
    let hard = getrlimit(Resource::Nofile).maximum;
    setrlimit(
        Resource::Nofile,
        Rlimit {
            current: Some(1_024),
            maximum: hard,
        },
    )
    .unwrap();
    let bench = common::start_with(|c| c.http_idle_timeout_secs = 20).await;
    let soft = getrlimit(Resource::Nofile).current;
    let url = bench.server.url();
    let fingerprint = bench.server.fingerprint;

    // 2,000 clients, each with one TLS connection kept alive and left idle.
    let started = Instant::now();
    let mut idle = Vec::with_capacity(IDLE);
    for _ in 0..IDLE {
        let client = Client::new(&url, fingerprint).unwrap();
        client.health().await.unwrap();
        idle.push(client);
    }
    let opened = started.elapsed();
    let open_with_idle = open_connections(&bench.admin).await;

    // A normal request on a new connection (TLS handshake included) while they sit there.
    let mut samples = Vec::with_capacity(PROBES);
    for _ in 0..PROBES {
        let client = Client::new(&url, fingerprint).unwrap();
        let t = Instant::now();
        client.health().await.unwrap();
        samples.push(t.elapsed());
    }
    samples.sort();

    // The idle ones are closed by the idle timeout (20 s here; HTTP/2 connections are not
    // covered by the header timeout).
    let waited = Instant::now();
    while open_connections(&bench.admin).await > 2.0 && waited.elapsed() < Duration::from_secs(40) {
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let closed_after = waited.elapsed();
    let left = open_connections(&bench.admin).await;

    println!("open-file limit: soft 1024 at start, {soft:?} once the server raised it");
    println!(
        "{IDLE} idle TLS connections opened in {:.1} s; the server counts {open_with_idle} open",
        opened.as_secs_f64()
    );
    println!(
        "a new request meanwhile (TLS handshake + GET /healthz), {PROBES} tries: p50 {:.1} ms, \
         p99 {:.1} ms, max {:.1} ms",
        common::percentile_ms(&samples, 0.5),
        common::percentile_ms(&samples, 0.99),
        common::percentile_ms(&samples, 1.0),
    );
    println!(
        "idle connections closed by the 20 s idle timeout {:.1} s after the probes; {left} left \
         open",
        closed_after.as_secs_f64()
    );
    drop(idle);
}
