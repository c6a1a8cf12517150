//! `plantwatch-agent` end to end against the real `plantwatch-server` over HTTPS on loopback:
//! enrollment with a join code, waiting for approval, its node assigned at approval, heartbeats,
//! and SIGTERM.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly by design.
#![cfg(unix)] // Run from Linux; the Windows agent is driven under Wine from here too.

use std::path::PathBuf;
use std::time::Duration;

use plantwatch_shared::api::{ComponentKind, ComponentQuery, ComponentStatus, SeriesQuery};
use plantwatch_testkit::daemon::{admin, daemon, enroll, join_code, state_of, status};
use plantwatch_testkit::{binary_beside, run_with_input, start_server, terminate, wait_until};

const AGENT: &str = env!("CARGO_BIN_EXE_plantwatch-agent");

fn server_bin() -> PathBuf {
    binary_beside(AGENT, "plantwatch-server")
}

/// The series of node `node_id`, asked from inside a `wait_until` on a multi-thread runtime.
fn series_of(
    admin: &plantwatch_shared::Client,
    node_id: i64,
) -> plantwatch_shared::api::ListResponse<plantwatch_shared::api::SeriesInfo> {
    tokio::task::block_in_place(|| {
        tokio::runtime::Handle::current().block_on(admin.series(&SeriesQuery {
            node_id: Some(node_id),
            limit: Some(1_000),
            ..SeriesQuery::default()
        }))
    })
    .unwrap()
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
        let series = series_of(&admin, node_id);
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

/// `scripts/windows`: builds the Windows agent and runs Windows programs in its Wine prefix.
const WINDOWS_SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/windows");

/// The Windows build (`scripts/windows build`; `scripts/test` builds it and sets
/// `PLANTWATCH_WINDOWS_AGENT`), run under Wine through `scripts/windows wine`.
fn windows_agent() -> PathBuf {
    let exe = std::env::var_os("PLANTWATCH_WINDOWS_AGENT").unwrap_or_else(|| {
        panic!(
            "PLANTWATCH_WINDOWS_AGENT is not set: build the Windows agent with \
             `scripts/windows build` and point it at the .exe (scripts/test does both)"
        )
    });
    let exe = PathBuf::from(exe);
    assert!(exe.is_file(), "no Windows agent at {}", exe.display());
    exe
}

/// A program that runs the Windows agent under Wine with the arguments it is given, so the
/// Linux helpers drive it like the Linux agent.
fn wine_wrapper(dir: &std::path::Path) -> PathBuf {
    use std::os::unix::fs::PermissionsExt as _;
    let script = WINDOWS_SCRIPT;
    let wrapper = dir.join("plantwatch-agent-wine");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\nexec {script} wine {} \"$@\"\n",
            windows_agent().display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
    wrapper
}

#[tokio::test(flavor = "multi_thread")]
async fn the_windows_agent_runs_as_a_service_under_wine_and_reports_services_processes_and_inventory()
 {
    use plantwatch_shared::api::{AlertQuery, HostWatch};
    use plantwatch_testkit::{ok, start_server_with};
    let dir = tempfile::tempdir().unwrap();
    let server = start_server_with(
        &server_bin(),
        dir.path(),
        "127.0.0.1:0",
        &[("PLANTWATCH_ALERT_INTERVAL_SECS", "1")],
    );
    // Wine ends its services when its last ordinary process exits: a console waiting on its
    // input keeps the session alive for the test. It starts first, so Wine's own background
    // processes (wineserver, services.exe) do not hold the output pipes of a command below.
    let mut session = std::process::Command::new(WINDOWS_SCRIPT)
        .args(["wine", "cmd.exe"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(3));
    let admin = admin(&server).await;
    let code = join_code(&admin).await;
    let agent = wine_wrapper(dir.path());
    let state = dir.path().join("win-agent");
    let id = enroll(&agent, &state, &code, "hmi-01", "machine-hmi-01");
    let node_id = admin.approve_component(id).await.unwrap().node_id.unwrap();
    // The node requires Wine's RPC service (running) and one that no Windows has, and
    // watches the agent's own process.
    admin
        .set_node_host(
            node_id,
            &HostWatch {
                services: vec!["RpcSs".into(), "PlantHistorian".into()],
                processes: vec!["plantwatch-agent.exe".into()],
            },
        )
        .await
        .unwrap();

    let agent_cmd = |args: &[&str]| {
        let mut command = daemon(&agent, &state);
        command.args(args);
        run_with_input(command, "")
    };
    // Not enrolled elsewhere: install refuses a state directory without an enrollment.
    let refused = {
        let mut command = daemon(&agent, &dir.path().join("empty"));
        command.args(["install"]);
        run_with_input(command, "")
    };
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("enroll first"),
        "{refused:?}"
    );
    // The Wine prefix outlives test runs: a service an interrupted run left goes first.
    let _ = agent_cmd(&["uninstall"]);
    let installed = ok(&agent_cmd(&[
        "install",
        "--interval",
        "1",
        "--push-interval",
        "1",
    ]));
    assert!(
        installed.contains("Installed the service plantwatch-agent"),
        "{installed}"
    );
    let started = ok(&agent_cmd(&["start"]));
    assert!(started.contains("is running"), "{started}");

    // The service reports: heartbeats, the SCM's services, the watched process, the machine.
    let running = wait_until(
        Duration::from_secs(60),
        "heartbeats from the service",
        || {
            let status = status(&agent, &state);
            (status["status"]["last_heartbeat_at"].is_string()).then_some(status)
        },
    );
    assert_eq!(running["status"]["node_id"], node_id);
    let series = wait_until(Duration::from_secs(60), "the service's metrics", || {
        let series = series_of(&admin, node_id);
        let has = |metric: &str, tag: &str, value: &str| {
            series
                .items
                .iter()
                .any(|s| s.metric == metric && s.tags.get(tag).map(String::as_str) == Some(value))
        };
        (has("windows_service.state", "service", "RpcSs")
            && has("process.count", "name", "plantwatch-agent")
            && series
                .items
                .iter()
                .any(|s| s.metric == "cpu_total.usage_pct"))
        .then_some(series)
    });
    assert!(
        series
            .items
            .iter()
            .any(|s| s.metric == "windows_service.start_type"),
        "{series:?}"
    );
    let host = admin.node_host(node_id).await.unwrap();
    let inventory = host.inventory.expect("the agent's inventory");
    assert!(inventory.os.unwrap().contains("Windows"));
    assert_eq!(inventory.model.as_deref(), Some("Wine"), "WMI under Wine");
    assert!(inventory.memory_bytes.unwrap() > 0);

    // The required service that is not installed is a critical alert; the running one and
    // the watched process are not alerts. (Only these two rules: a loaded test machine may
    // rightly raise cpu_high on the agent's node meanwhile.)
    let alerts = wait_until(Duration::from_secs(60), "the service alert", || {
        let mut alerts = tokio::task::block_in_place(|| {
            tokio::runtime::Handle::current().block_on(admin.list_alerts(&AlertQuery {
                node_id: Some(node_id),
                ..AlertQuery::default()
            }))
        })
        .unwrap();
        alerts
            .items
            .retain(|a| a.rule == "windows_service_stopped" || a.rule == "process_missing");
        (!alerts.items.is_empty()).then_some(alerts)
    });
    let messages: Vec<&str> = alerts.items.iter().map(|a| a.message.as_str()).collect();
    assert_eq!(
        messages,
        ["service PlantHistorian required by the node is not installed"]
    );

    // A clean stop through the SCM: the agent says so in its status and its log file.
    let stopped = ok(&agent_cmd(&["stop"]));
    assert!(stopped.contains("is stopped"), "{stopped}");
    assert_eq!(state_of(&status(&agent, &state)), "stopped");
    let log = std::fs::read_dir(state.join("logs"))
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
        .collect::<String>();
    assert!(log.contains("Service started."), "{log}");
    assert!(
        log.contains("Stop requested by the Service Control Manager."),
        "{log}"
    );
    let removed = ok(&agent_cmd(&["uninstall"]));
    assert!(removed.contains("Removed the service"), "{removed}");
    let gone = agent_cmd(&["start"]);
    assert!(!gone.status.success());
    assert!(
        String::from_utf8_lossy(&gone.stderr).contains("install it first"),
        "{gone:?}"
    );
    use std::io::Write as _;
    let _ = session.stdin.take().unwrap().write_all(b"exit\r\n");
    let _ = session.wait();
}
