//! The daemons' store-and-forward push against the real server: while the server is down
//! batches wait in the outbox; when it is back, new data goes first and the backlog is replayed
//! oldest first at the configured pace; every line is stored once.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly by design.

mod common;

use std::time::{Duration, Instant};

use common::{approved_collector, spec, test_config};
use plantwatch_server::server::start;
use plantwatch_shared::Client;
use plantwatch_shared::push::{LineSender, Lines, PushOptions, Pusher};
use rusqlite::Connection;

fn stored(dir: &std::path::Path, since_ms: i64) -> Vec<i64> {
    let conn = Connection::open(dir.join("metrics.db")).unwrap();
    conn.busy_timeout(Duration::from_secs(5)).unwrap();
    let mut stamps: Vec<i64> = common::stored_samples(&conn, None, None, since_ms)
        .into_iter()
        .map(|(ts, _)| ts)
        .collect();
    stamps.sort_unstable();
    stamps
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn new_data_flows_while_the_backlog_is_replayed_at_its_pace() {
    let data = tempfile::tempdir().unwrap();
    let listen = format!("127.0.0.1:{}", plantwatch_testkit::free_port());
    let config = || {
        let mut config = test_config(data.path());
        config.listen = listen.parse().unwrap();
        config
    };
    let server = start(config()).await.unwrap();
    let app = common::TestApp {
        server,
        dir: tempfile::tempdir().unwrap(),
    };
    let admin = app.admin().await;
    let north = approved_collector(&app, &admin, "north").await;
    let node = admin
        .create_node(&spec("plc-1", "127.0.0.5", "north"))
        .await
        .unwrap()
        .id;
    let client = Client::new(&app.server.url(), app.server.fingerprint)
        .unwrap()
        .with_api_key(north.api_key.clone());
    let outbox = tempfile::tempdir().unwrap();
    let options = PushOptions {
        flush_every: Duration::from_millis(200),
        replay_per_second: 2,
        retry_min: Duration::from_millis(100),
        retry_max: Duration::from_millis(300),
        ..PushOptions::new(outbox.path().join("outbox"))
    };
    let (pusher, lines, status) = Pusher::spawn(client, options).unwrap();
    // One line every 50 ms, its timestamp counting milliseconds from `base`.
    let base = 1_700_000_000_000i64;
    let mut sent = 0i64;

    // The server goes away: 3 s of lines wait in the outbox.
    let server = app.server;
    server.shutdown().await.unwrap();
    let down_from = Instant::now();
    while down_from.elapsed() < Duration::from_secs(3) {
        send(&lines, node, base, &mut sent).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let backlog_lines = sent;
    let backlog = status.lock().unwrap().batches;
    assert!(backlog >= 8, "{backlog} batches waiting");

    // Back on the same address. New lines keep coming.
    let server = start(config()).await.unwrap();
    let back_at = Instant::now();
    let mut first_new_stored: Option<(Duration, usize)> = None;
    let mut backlog_done: Option<Duration> = None;
    while back_at.elapsed() < Duration::from_secs(30) {
        send(&lines, node, base, &mut sent).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
        let ts = stored(data.path(), base);
        let old = ts.iter().filter(|t| **t <= base + backlog_lines).count();
        if first_new_stored.is_none() && ts.iter().any(|t| *t > base + backlog_lines) {
            first_new_stored = Some((back_at.elapsed(), old));
        }
        if backlog_done.is_none() && old as i64 == backlog_lines {
            backlog_done = Some(back_at.elapsed());
        }
        if backlog_done.is_some()
            && first_new_stored.is_some()
            && status.lock().unwrap().batches == 0
        {
            break;
        }
    }
    let (new_at, old_by_then) = first_new_stored.expect("new data stored");
    let done = backlog_done.expect("the backlog replayed");
    // New data went through before the replay had finished...
    assert!(
        new_at < done,
        "new data at {new_at:?}, backlog done at {done:?}"
    );
    assert!(
        (old_by_then as i64) < backlog_lines,
        "{old_by_then} of {backlog_lines}"
    );
    // ... and the replay kept its pace: 2 batches a second.
    let least = Duration::from_secs_f64((backlog as f64 - 2.0) / 2.0);
    assert!(done >= least, "{backlog} batches replayed in {done:?}");

    // Nothing lost, nothing twice.
    pusher.stop().await;
    let ts = stored(data.path(), base);
    let waiting = status.lock().unwrap();
    let mut unique = ts.clone();
    unique.dedup();
    assert_eq!(unique.len(), ts.len());
    assert_eq!(
        ts.len() as u64 + lines_in(&outbox.path().join("outbox")),
        sent as u64,
        "{waiting:?}"
    );
    drop(server);
}

/// Sends line number `sent + 1` (its timestamp `base + n` ms).
async fn send(lines: &LineSender, node: i64, base: i64, sent: &mut i64) {
    *sent += 1;
    let text = format!(
        "counter,node_id={node} n={sent} {}\n",
        (base + *sent) * 1_000_000
    );
    lines.send(Lines { text, count: 1 }).await;
}

fn lines_in(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().to_string();
            name.strip_suffix(".lp.gz")?
                .split('-')
                .nth(2)?
                .parse::<u64>()
                .ok()
        })
        .sum()
}
