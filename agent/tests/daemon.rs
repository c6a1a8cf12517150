//! `plantwatch-agent` end to end against the real `plantwatch-server` over HTTPS on loopback:
//! enrollment with a join code, waiting for approval, its node assigned at approval, heartbeats,
//! and SIGTERM.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly by design.

use std::path::PathBuf;
use std::time::Duration;

use plantwatch_shared::api::{ComponentKind, ComponentQuery, ComponentStatus, SeriesQuery};
use plantwatch_testkit::daemon::{admin, daemon, enroll, join_code, state_of, status};
use plantwatch_testkit::{binary_beside, run_with_input, start_server, terminate, wait_until};

const AGENT: &str = env!("CARGO_BIN_EXE_plantwatch-agent");

fn server_bin() -> PathBuf {
    binary_beside(AGENT, "plantwatch-server")
}

#[tokio::test(flavor = "multi_thread")]
async fn an_agent_enrolls_gets_its_node_at_approval_and_sends_heartbeats() {
    let server = start_server(&server_bin());
    let admin = admin(&server).await;
    let code = join_code(&admin).await;
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("agent");
    let binary = PathBuf::from(AGENT);
    let id = enroll(&binary, &state, &code, "web-01", "machine-web");
    let log = std::fs::File::create(dir.path().join("agent.log")).unwrap();
    let mut child = daemon(&binary, &state)
        .args(["run", "--interval", "1", "--push-interval", "1"])
        .stdout(std::process::Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    wait_until(Duration::from_secs(20), "waiting for approval", || {
        (state_of(&status(&binary, &state)) == "waiting for approval").then_some(())
    });
    let approved = admin.approve_component(id).await.unwrap();
    let node_id = approved.node_id.unwrap();
    let status = wait_until(Duration::from_secs(25), "heartbeats", || {
        let status = status(&binary, &state);
        (status["status"]["last_heartbeat_at"].is_string()).then_some(status)
    });
    assert_eq!(status["status"]["node_id"], node_id);
    let agents = admin
        .list_components(&ComponentQuery {
            kind: Some(ComponentKind::Agent),
            ..ComponentQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(agents.items[0].status, ComponentStatus::Online);

    // Its system metrics land on its node: memory, CPU, file systems, interface counters.
    let series = wait_until(Duration::from_secs(30), "the agent's metrics", || {
        let series = tokio::task::block_in_place(|| {
            tokio::runtime::Handle::current().block_on(admin.series(&SeriesQuery {
                node_id: Some(node_id),
                limit: Some(1_000),
                ..SeriesQuery::default()
            }))
        })
        .unwrap();
        let has = |metric: &str| series.items.iter().any(|s| s.metric == metric);
        (has("memory.total_bytes")
            && has("cpu_total.usage_pct")
            && has("disk.used_pct")
            && has("net.rx_bytes_total")
            && has("load.load1"))
        .then_some(series)
    });
    let lo = series
        .items
        .iter()
        .find(|s| {
            s.metric == "net.rx_bytes_total"
                && s.tags.get("interface").map(String::as_str) == Some("lo")
        })
        .expect("loopback counters");
    assert_eq!(lo.kind, plantwatch_shared::api::SeriesKind::Counter);
    assert_eq!(terminate(&mut child), Some(0));

    // An agent's state dir is not a collector's.
    let mut command = daemon(&binary_beside(AGENT, "plantwatch-collector"), &state);
    command.arg("status");
    let out = run_with_input(command, "");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("kind agent, not collector"));
}
