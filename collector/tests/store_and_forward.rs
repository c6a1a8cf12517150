//! Store and forward with the real binaries: the server is killed (SIGKILL) while a collector
//! pushes, the collector keeps its metrics in the outbox, the server comes back on the same
//! address, the outbox is replayed, and every line the collector produced is stored exactly
//! once. All targets are on loopback.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly by design.

use std::path::{Path, PathBuf};
use std::time::Duration;

use plantwatch_shared::api::NodeSpec;
use plantwatch_testkit::daemon::{admin, daemon, enroll, join_code, status};
use plantwatch_testkit::{binary_beside, free_port, start_server_on, terminate, wait_until};
use rusqlite::Connection;

const COLLECTOR: &str = env!("CARGO_BIN_EXE_plantwatch-collector");

fn server_bin() -> PathBuf {
    binary_beside(COLLECTOR, "plantwatch-server")
}

/// Ping lines stored: each ping line has exactly one `ping.sent` sample. The server's head (as
/// it reads it back from its log at start; a rewritten timestamp counts once) plus the samples
/// its compactor sealed into raw chunks (row id: series << 32 | resolution << 28).
fn stored_lines(data: &Path) -> i64 {
    let Ok(conn) = Connection::open(data.join("metrics.db")) else {
        return 0;
    };
    conn.busy_timeout(Duration::from_secs(5)).unwrap();
    let Ok((head, _)) = plantwatch_server::metrics_store::head::replay(&conn) else {
        return 0;
    };
    let ids: Vec<i64> = conn
        .prepare("SELECT id FROM series WHERE metric = 'ping.sent'")
        .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect())
        .unwrap_or_default();
    let in_head: usize = ids
        .iter()
        .map(|&id| head.points(id, 0, i64::MAX, i64::MAX).len())
        .sum();
    let sealed: i64 = conn
        .query_row(
            "SELECT coalesce(sum(c.points), 0) FROM chunks c JOIN series r ON r.id = c.id >> 32
              WHERE r.metric = 'ping.sent' AND (c.id >> 28) & 15 = 0",
            [],
            |r| r.get(0),
        )
        .unwrap_or(0);
    in_head as i64 + sealed
}

/// Lines in the batches waiting in the outbox (their count is in the file name).
fn outbox_lines(state: &Path) -> u64 {
    std::fs::read_dir(state.join("outbox"))
        .unwrap()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().to_string();
            let stem = name.strip_suffix(".lp.gz")?.to_owned();
            stem.split('-').nth(2)?.parse::<u64>().ok()
        })
        .sum()
}

/// Syslog messages stored, by message text: how many times each.
fn stored_events(data: &Path) -> std::collections::BTreeMap<String, i64> {
    let Ok(conn) = Connection::open(data.join("plantwatch.db")) else {
        return Default::default();
    };
    conn.busy_timeout(Duration::from_secs(5)).unwrap();
    conn.prepare("SELECT json_extract(doc, '$.message'), count(*) FROM events GROUP BY 1")
        .and_then(|mut s| {
            s.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<rusqlite::Result<_>>()
        })
        .unwrap_or_default()
}

/// One syslog line over UDP to the collector's receiver.
fn syslog(port: u16, message: &str) {
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    socket
        .send_to(
            format!("<13>Dec  4 10:00:00 plc-1 runtime: {message}").as_bytes(),
            ("127.0.0.1", port),
        )
        .unwrap();
}

fn outbox(state: &Path) -> serde_json::Value {
    status(Path::new(COLLECTOR), state)["status"]["outbox"].clone()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_killed_server_loses_nothing_and_duplicates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("server");
    let listen = format!("127.0.0.1:{}", free_port());
    let server = start_server_on(&server_bin(), &data, &listen);
    let admin = admin(&server).await;
    let code = join_code(&admin).await;
    let state = dir.path().join("collector");
    let binary = Path::new(COLLECTOR);
    let id = enroll(binary, &state, &code, "north", "machine-north");
    admin.approve_component(id).await.unwrap();
    for i in 0..20 {
        admin
            .create_node(&NodeSpec {
                name: format!("host-{i}"),
                address: format!("127.0.0.{}", 10 + i),
                collector: Some("north".into()),
                interval_s: Some(1),
                ..NodeSpec::default()
            })
            .await
            .unwrap();
    }
    // Its syslog receiver on: events travel through the same outbox.
    let syslog_port = free_port();
    admin
        .set_receivers(
            id,
            &plantwatch_shared::api::Receivers {
                traps: Vec::new(),
                syslog: plantwatch_shared::api::parse_listens(&format!("udp:{syslog_port}"))
                    .unwrap(),
            },
        )
        .await
        .unwrap();
    let log = std::fs::File::create(dir.path().join("collector.log")).unwrap();
    let mut collector = daemon(binary, &state)
        .args(["run", "--push-interval", "1"])
        .stdout(std::process::Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    wait_until(Duration::from_secs(40), "first metrics stored", || {
        (stored_lines(&data) >= 40).then_some(())
    });
    wait_until(Duration::from_secs(40), "a first event stored", || {
        syslog(syslog_port, "before the outage");
        std::thread::sleep(Duration::from_millis(300));
        (!stored_events(&data).is_empty()).then_some(())
    });

    // SIGKILL: no chance to finish a commit or answer a push in flight.
    let mut server = server;
    server.child.kill().unwrap();
    server.child.wait().unwrap();
    wait_until(
        Duration::from_secs(20),
        "metrics waiting in the outbox",
        || (outbox(&state)["batches"].as_u64().unwrap_or(0) >= 4).then_some(()),
    );
    let lag = outbox(&state)["lag_s"].as_u64().unwrap();
    assert!(lag >= 2, "lag {lag}");
    // Events received while the server is down wait in the outbox with the metrics.
    for i in 0..30 {
        syslog(syslog_port, &format!("during the outage {i}"));
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_secs(2));

    let restarted = start_server_on(&server_bin(), &data, &listen);
    wait_until(Duration::from_secs(60), "the outbox replayed", || {
        let outbox = outbox(&state);
        (outbox["batches"].as_u64() == Some(0)).then_some(())
    });
    terminate(&mut collector);
    let sealed = outbox(&state)["sealed_lines"].as_u64().unwrap();
    let stored = stored_lines(&data) as u64;
    let events = stored_events(&data);
    let waiting = outbox_lines(&state);
    assert!(stored > 100, "{stored}");
    // Every event of the outage arrived once.
    for i in 0..30 {
        let message = format!("during the outage {i}");
        assert_eq!(events.get(&message), Some(&1), "{message}: {events:?}");
    }
    let events: u64 = events.values().map(|n| *n as u64).sum();
    assert_eq!(
        stored + events + waiting,
        sealed,
        "produced {sealed} lines: {stored} samples and {events} events stored, {waiting} still \
         in the outbox"
    );
    drop(restarted);
    assert_eq!(outbox(&state)["dropped_batches"], 0);
}
