//! Auth benchmark: login throughput and the latency of an authenticated `GET /api/v1/auth/me`,
//! against the real server over HTTPS on loopback (server and client share this process and the
//! machine's cores). Run with `cargo bench -p plantwatch-server --bench auth`.
#![allow(clippy::unwrap_used, clippy::expect_used)] // A benchmark fails loudly by design.

use std::time::{Duration, Instant};

use plantwatch_server::config::{BootstrapAdmin, Config};
use plantwatch_server::server::start;
use plantwatch_shared::Client;

const LOGINS: usize = 48;
const LOGIN_CONCURRENCY: usize = 8;
const WARMUP: usize = 200;
const ME_REQUESTS: usize = 5_000;
const ME_CONCURRENCY: usize = 16;
const ME_CONCURRENT_REQUESTS: usize = 20_000;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index]
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

#[tokio::main]
async fn main() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(Config {
        data_dir: dir.path().to_owned(),
        listen: "127.0.0.1:0".parse().unwrap(),
        // The benchmark logs in far more often than the rate limiter allows one user.
        login_max_failures: 1_000_000,
        bootstrap_admin: Some(BootstrapAdmin {
            username: "admin".into(),
            password: "bench-password".into(),
        }),
        ..Config::default()
    })
    .await
    .unwrap();
    let client = Client::new(&server.url(), server.fingerprint).unwrap();

    // Login throughput: bcrypt (cost 12) dominates by design.
    let started = Instant::now();
    let mut remaining = LOGINS;
    while remaining > 0 {
        let batch = remaining.min(LOGIN_CONCURRENCY);
        let tasks: Vec<_> = (0..batch)
            .map(|_| {
                let client = client.clone();
                tokio::spawn(async move { client.login("admin", "bench-password").await.unwrap() })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
        remaining -= batch;
    }
    let login_secs = started.elapsed().as_secs_f64();

    // Sequential /auth/me on one keep-alive connection: the latency an interactive console sees.
    let session = client.login("admin", "bench-password").await.unwrap();
    let authed = client.clone().with_token(session.token);
    for _ in 0..WARMUP {
        authed.me().await.unwrap();
    }
    let mut samples = Vec::with_capacity(ME_REQUESTS);
    for _ in 0..ME_REQUESTS {
        let t = Instant::now();
        authed.me().await.unwrap();
        samples.push(t.elapsed());
    }
    samples.sort();

    // Concurrent /auth/me: throughput of authenticated requests.
    let started = Instant::now();
    let per_task = ME_CONCURRENT_REQUESTS / ME_CONCURRENCY;
    let tasks: Vec<_> = (0..ME_CONCURRENCY)
        .map(|_| {
            let authed = authed.clone();
            tokio::spawn(async move {
                for _ in 0..per_task {
                    authed.me().await.unwrap();
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let me_rate = (per_task * ME_CONCURRENCY) as f64 / started.elapsed().as_secs_f64();

    println!("auth benchmark (HTTPS on loopback, release build, server and client in one process)");
    println!(
        "login: {LOGINS} logins, {LOGIN_CONCURRENCY} concurrent: {:.1} logins/s ({:.0} ms each on average)",
        LOGINS as f64 / login_secs,
        login_secs * 1000.0 / LOGINS as f64
    );
    println!(
        "GET /api/v1/auth/me sequential, {ME_REQUESTS} requests: p50 {:.0} µs, p90 {:.0} µs, p99 {:.0} µs, max {:.0} µs",
        micros(percentile(&samples, 0.50)),
        micros(percentile(&samples, 0.90)),
        micros(percentile(&samples, 0.99)),
        micros(*samples.last().unwrap()),
    );
    println!("GET /api/v1/auth/me, {ME_CONCURRENCY} concurrent clients: {me_rate:.0} requests/s");
    server.shutdown().await.unwrap();
}
