//! API key benchmark: sustained authenticated agent heartbeats per second with 1,000 distinct
//! keys, with the verified-key cache and with bcrypt on every request (the cache turned off),
//! against the real server over HTTPS on loopback (server and client share this process and
//! the machine's cores). Run with `cargo bench -p plantwatch-server --bench api_keys`.
#![allow(clippy::unwrap_used, clippy::expect_used)] // A benchmark fails loudly by design.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

mod common;

use plantwatch_shared::api::{ComponentKind, CreateTokenRequest, Heartbeat, RegisterRequest};
use plantwatch_shared::{API_KEY_HEADER, Client};
use reqwest::Method;

const AGENTS: usize = 1_000;
const CONCURRENCY: usize = 64;
/// Connections the load is spread over (agents each hold their own in real life).
const CONNECTIONS: usize = 16;
const CACHED_FOR: Duration = Duration::from_secs(10);
const UNCACHED_FOR: Duration = Duration::from_secs(20);

struct Agent {
    key: String,
    node_id: i64,
}

/// Sends heartbeats from every agent in turn for `duration`; returns (requests, latencies).
async fn load(
    clients: &[Client],
    agents: &Arc<Vec<Agent>>,
    duration: Duration,
) -> (usize, Vec<Duration>) {
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for worker in 0..CONCURRENCY {
        let client = clients[worker % clients.len()].clone();
        let (agents, next) = (agents.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            let mut samples = Vec::new();
            let body = Heartbeat {
                version: "bench".into(),
                uptime_s: None,
                inventory: None,
            };
            while started.elapsed() < duration {
                let agent = &agents[next.fetch_add(1, Ordering::Relaxed) % agents.len()];
                let path = format!("/api/v1/agents/heartbeat/{}", agent.node_id);
                let request = client
                    .request(Method::POST, &path)
                    .header(API_KEY_HEADER, &agent.key)
                    .json(&body);
                let t = Instant::now();
                let _: plantwatch_shared::api::HeartbeatAck = client.json(request).await.unwrap();
                samples.push(t.elapsed());
            }
            samples
        }));
    }
    let mut samples = Vec::new();
    for task in tasks {
        samples.extend(task.await.unwrap());
    }
    samples.sort();
    (samples.len(), samples)
}

#[tokio::main]
async fn main() {
    let common::Bench {
        server,
        client,
        admin,
        dir: _dir,
    } = common::start_with(|_| {}).await;
    let token = admin
        .create_token(&CreateTokenRequest {
            name: "bench".into(),
            ..CreateTokenRequest::default()
        })
        .await
        .unwrap()
        .secret;

    // 1,000 agents enrolled and approved (each approval gives the agent its node).
    let started = Instant::now();
    let mut registered = Vec::new();
    for chunk in (0..AGENTS).collect::<Vec<_>>().chunks(8) {
        let tasks: Vec<_> = chunk
            .iter()
            .map(|i| {
                let (client, token) = (client.clone(), token.clone());
                let i = *i;
                tokio::spawn(async move {
                    client
                        .register(&RegisterRequest {
                            token,
                            kind: ComponentKind::Agent,
                            name: format!("agent-{i}"),
                            machine_id: format!("machine-{i}"),
                            version: "bench".into(),
                            hostname: Some(format!("agent-{i}")),
                        })
                        .await
                        .unwrap()
                })
            })
            .collect();
        for task in tasks {
            registered.push(task.await.unwrap());
        }
    }
    let mut agents = Vec::new();
    for registration in &registered {
        let component = admin
            .approve_component(registration.component_id)
            .await
            .unwrap();
        agents.push(Agent {
            key: registration.api_key.expose().to_owned(),
            node_id: component.node_id.unwrap(),
        });
    }
    let agents = Arc::new(agents);
    println!(
        "enrolled and approved {AGENTS} agents in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let clients: Vec<Client> = (0..CONNECTIONS)
        .map(|_| Client::new(&server.url(), server.fingerprint).unwrap())
        .collect();

    // Warm the cache: each key pays bcrypt once (8 at a time).
    let started = Instant::now();
    let mut tasks = Vec::new();
    for (worker, client) in clients.iter().take(8).enumerate() {
        let (client, agents) = (client.clone(), agents.clone());
        tasks.push(tokio::spawn(async move {
            for agent in agents.iter().skip(worker).step_by(8) {
                let request = client
                    .request(Method::GET, "/api/v1/components/me")
                    .header(API_KEY_HEADER, &agent.key);
                client.empty(request).await.unwrap();
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    println!(
        "first check of {AGENTS} keys (bcrypt each, 8 at a time): {:.1} s",
        started.elapsed().as_secs_f64()
    );

    let (cached, cached_samples) = load(&clients, &agents, CACHED_FOR).await;
    let cached_rate = cached as f64 / CACHED_FOR.as_secs_f64();
    println!(
        "cached:  {cached} heartbeats in {:.0} s = {cached_rate:.0}/s, latency p50 {:.2} ms, p99 {:.2} ms ({CONCURRENCY} in flight, {AGENTS} keys)",
        CACHED_FOR.as_secs_f64(),
        common::percentile_ms(&cached_samples, 0.5),
        common::percentile_ms(&cached_samples, 0.99),
    );

    server.state.keys.set_enabled(false);
    let (uncached, uncached_samples) = load(&clients, &agents, UNCACHED_FOR).await;
    let uncached_rate = uncached as f64 / UNCACHED_FOR.as_secs_f64();
    println!(
        "bcrypt:  {uncached} heartbeats in {:.0} s = {uncached_rate:.1}/s, latency p50 {:.0} ms, p99 {:.0} ms (cost {})",
        UNCACHED_FOR.as_secs_f64(),
        common::percentile_ms(&uncached_samples, 0.5),
        common::percentile_ms(&uncached_samples, 0.99),
        plantwatch_server::auth::api_keys::API_KEY_BCRYPT_COST,
    );
    println!("speed-up: {:.0}x", cached_rate / uncached_rate);
    server.shutdown().await.unwrap();
}
