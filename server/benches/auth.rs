//! Auth benchmark: login throughput and the latency of an authenticated `GET /api/v1/auth/me`,
//! against the real server over HTTPS on loopback (server and client share this process and the
//! machine's cores); then sign-in through a real directory (slapd on loopback, LDAPS) against
//! local sign-in, and how the server answers while that directory hangs (SIGSTOP). Run with
//! `cargo bench -p plantwatch-server --bench auth`.
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
    directory(&client, &authed).await;
    server.shutdown().await.unwrap();
}

/// Sequential sign-ins as `user`: their latencies, sorted.
async fn sign_ins(client: &Client, user: &str, password: &str, count: usize) -> Vec<Duration> {
    let mut samples = Vec::with_capacity(count);
    for _ in 0..count {
        let t = Instant::now();
        client.login(user, password).await.unwrap();
        samples.push(t.elapsed());
    }
    samples.sort();
    samples
}

fn millis_line(what: &str, samples: &[Duration]) {
    println!(
        "{what}, {} sequential: p50 {:.1} ms, p99 {:.1} ms",
        samples.len(),
        micros(percentile(samples, 0.50)) / 1000.0,
        micros(percentile(samples, 0.99)) / 1000.0,
    );
}

const DIRECTORY_LOGINS: usize = 200;
const LOCAL_LOGINS: usize = 30;
const HUNG_LOGINS: usize = 32;
const DIRECTORY_TIMEOUT_SECS: u64 = 2;

/// Directory sign-in against local sign-in, and the server's answers while the directory hangs.
async fn directory(client: &Client, admin: &Client) {
    use plantwatch_shared::api::{GroupLookup, GroupRole, LdapSettingsUpdate, Role};
    use plantwatch_testkit::slapd::{self, Slapd};

    let directory = tokio::task::spawn_blocking(Slapd::start).await.unwrap();
    admin
        .set_ldap_settings(&LdapSettingsUpdate {
            enabled: true,
            urls: vec![directory.ldaps_url.clone()],
            starttls: false,
            ca_pem: Some(directory.ca_pem.clone()),
            fingerprint: None,
            bind_dn: slapd::BIND_DN.into(),
            bind_password: Some(slapd::BIND_PASSWORD.into()),
            user_base_dn: slapd::PEOPLE.into(),
            user_filter: "(uid={user})".into(),
            group_lookup: GroupLookup::MemberOf,
            group_base_dn: slapd::GROUPS.into(),
            group_filter: String::new(),
            nested: true,
            group_roles: vec![GroupRole {
                group: slapd::OPERATORS.into(),
                role: Role::Operator,
            }],
            default_role: None,
            timeout_secs: DIRECTORY_TIMEOUT_SECS,
        })
        .await
        .unwrap();
    let olaf = slapd::password("olaf");
    sign_ins(client, "olaf", &olaf, 10).await;
    let local = sign_ins(client, "admin", "bench-password", LOCAL_LOGINS).await;
    let remote = sign_ins(client, "olaf", &olaf, DIRECTORY_LOGINS).await;
    println!(
        "sign-in (LDAPS to slapd on loopback: connect, TLS, service bind, search, nested groups, user bind)"
    );
    millis_line("local user (bcrypt cost 12)", &local);
    millis_line("directory user (nested group)", &remote);
    // The chain alone, without the decoy bcrypt verify that a real sign-in runs beside it.
    let request = plantwatch_shared::api::LdapTestRequest {
        username: "olaf".into(),
        password: Some(olaf.clone().into()),
    };
    let mut chain = Vec::with_capacity(DIRECTORY_LOGINS);
    for _ in 0..DIRECTORY_LOGINS {
        let t = Instant::now();
        let report = admin.test_ldap(&request).await.unwrap();
        chain.push(t.elapsed());
        assert!(report.ok);
    }
    chain.sort();
    millis_line(
        "the directory chain alone (POST /settings/ldap/test)",
        &chain,
    );

    // The directory hangs: every directory sign-in waits for the step timeout; the server's
    // other answers must not.
    directory.pause();
    let started = Instant::now();
    let hung: Vec<_> = (0..HUNG_LOGINS)
        .map(|_| {
            let client = client.clone();
            let olaf = olaf.clone();
            tokio::spawn(async move {
                let t = Instant::now();
                let refused = client.login("olaf", &olaf).await.unwrap_err();
                assert_eq!(refused.status(), Some(503));
                t.elapsed()
            })
        })
        .collect();
    let mut me = Vec::new();
    while started.elapsed() < Duration::from_secs(DIRECTORY_TIMEOUT_SECS) {
        let t = Instant::now();
        admin.me().await.unwrap();
        me.push(t.elapsed());
    }
    let local_during = {
        let t = Instant::now();
        client.login("admin", "bench-password").await.unwrap();
        t.elapsed()
    };
    let mut waited = Vec::new();
    for task in hung {
        waited.push(task.await.unwrap());
    }
    directory.resume();
    waited.sort();
    me.sort();
    println!(
        "directory hung (SIGSTOP), {HUNG_LOGINS} concurrent directory sign-ins, step timeout {DIRECTORY_TIMEOUT_SECS} s: \
         answered 503 after p50 {:.2} s, max {:.2} s",
        percentile(&waited, 0.5).as_secs_f64(),
        waited.last().unwrap().as_secs_f64(),
    );
    println!(
        "meanwhile: GET /api/v1/auth/me {} sequential: p50 {:.0} µs, p99 {:.0} µs; a local sign-in {:.0} ms",
        me.len(),
        micros(percentile(&me, 0.50)),
        micros(percentile(&me, 0.99)),
        micros(local_during) / 1000.0,
    );
}
