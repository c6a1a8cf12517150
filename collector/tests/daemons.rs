//! The real binaries end to end: `plantwatch-server`, `plantwatch-collector` and
//! `plantwatch-agent` in temporary directories, talking HTTPS over loopback. Enrollment with a
//! join code, waiting for approval, the configuration pulled and followed, the saved
//! configuration used while the server is down, reconnection, heartbeats, and SIGTERM.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly by design.

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use plantwatch_shared::Client;
use plantwatch_shared::api::{
    ComponentKind, ComponentQuery, ComponentStatus, CreateTokenRequest, NodeSpec,
};
use plantwatch_testkit::{
    ADMIN_PASSWORD, Server, binary_beside, free_port, ok, run_with_input, start_server,
    start_server_on, terminate, wait_until,
};
use serde_json::Value;

const COLLECTOR: &str = env!("CARGO_BIN_EXE_plantwatch-collector");

fn server_bin() -> PathBuf {
    binary_beside(COLLECTOR, "plantwatch-server")
}

fn agent_bin() -> PathBuf {
    binary_beside(COLLECTOR, "plantwatch-agent")
}

async fn admin(server: &Server) -> Client {
    let client = Client::new(&server.url, Some(server.fingerprint.parse().unwrap())).unwrap();
    let session = client.login("admin", ADMIN_PASSWORD).await.unwrap();
    client.with_token(session.token)
}

async fn join_code(admin: &Client) -> String {
    admin
        .create_token(&CreateTokenRequest {
            name: "plant".into(),
            ..CreateTokenRequest::default()
        })
        .await
        .unwrap()
        .join_code
        .into_inner()
}

fn daemon(binary: &Path, state: &Path) -> Command {
    let mut command = Command::new(binary);
    command
        .arg("--state-dir")
        .arg(state)
        .env_remove("PLANTWATCH_MACHINE_ID")
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1");
    command
}

/// `enroll` with the join code on standard input; returns the component id it printed.
fn enroll(binary: &Path, state: &Path, code: &str, name: &str, machine: &str) -> i64 {
    let mut command = daemon(binary, state);
    command.args(["enroll", "--name", name, "--machine-id", machine]);
    let out = ok(&run_with_input(command, &format!("{code}\n")));
    // "Enrolled as collector 5 (north) with https://…"
    let id = out
        .split_whitespace()
        .nth(3)
        .and_then(|word| word.parse().ok())
        .unwrap_or_else(|| panic!("no id in {out:?}"));
    assert!(out.contains("Waiting for approval"), "{out}");
    id
}

fn start(binary: &Path, state: &Path, log: &Path) -> Child {
    let log = std::fs::File::create(log).unwrap();
    daemon(binary, state)
        .arg("run")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap()
}

fn status(binary: &Path, state: &Path) -> Value {
    let mut command = daemon(binary, state);
    command.args(["status", "--json"]);
    serde_json::from_str(&ok(&run_with_input(command, ""))).unwrap()
}

fn state_of(status: &Value) -> String {
    status["status"]["state"].as_str().unwrap_or("").to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_collector_enrolls_waits_for_approval_follows_its_config_and_stops_on_sigterm() {
    let server = start_server(&server_bin());
    let admin = admin(&server).await;
    let code = join_code(&admin).await;
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let binary = Path::new(COLLECTOR);

    let id = enroll(binary, &state, &code, "north", "machine-north");
    let mode = std::fs::metadata(state.join("state.json"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "the state file holds the key");
    let mut child = start(binary, &state, &dir.path().join("collector.log"));
    wait_until(Duration::from_secs(20), "waiting for approval", || {
        (state_of(&status(binary, &state)) == "waiting for approval").then_some(())
    });
    let pending = admin.get_component(id).await.unwrap();
    assert_eq!(pending.status, ComponentStatus::Pending);

    admin.approve_component(id).await.unwrap();
    let first = wait_until(Duration::from_secs(25), "first configuration", || {
        let status = status(binary, &state);
        (state_of(&status) == "connected")
            .then(|| status["saved_config_sha256"].as_str().map(str::to_owned))?
    });

    // A node for it: a new configuration within the debounce and one pull interval.
    admin
        .create_node(&NodeSpec {
            name: "plc-7".into(),
            address: "10.0.0.7".into(),
            collector: Some("north".into()),
            ..NodeSpec::default()
        })
        .await
        .unwrap();
    wait_until(
        Duration::from_secs(25),
        "the configuration with the new node",
        || {
            let status = status(binary, &state);
            let sha = status["saved_config_sha256"].as_str()?;
            (sha != first && status["saved_targets"] == 1).then_some(())
        },
    );
    let saved = std::fs::read_to_string(state.join("config.json")).unwrap();
    assert!(saved.contains("10.0.0.7"), "{saved}");
    // The server sees it in sync (its report follows every change).
    let seen = wait_until(Duration::from_secs(10), "the report", || {
        let component = futures_block(admin.get_component(id)).unwrap();
        (component.config_in_sync == Some(true)).then_some(component)
    });
    assert_eq!(seen.status, ComponentStatus::Online);
    assert_eq!(seen.target_count, Some(1));

    assert_eq!(terminate(&mut child), Some(0), "clean exit on SIGTERM");
    assert_eq!(state_of(&status(binary, &state)), "stopped");
    let human = ok(&run_with_input(
        {
            let mut command = daemon(binary, &state);
            command.arg("status");
            command
        },
        "",
    ));
    assert!(
        human.contains(&format!("collector     {id} (north)")),
        "{human}"
    );
    assert!(human.contains("1 targets"), "{human}");
}

/// Runs a future to completion from synchronous polling code inside a multi-thread runtime.
fn futures_block<F: std::future::Future>(future: F) -> F::Output {
    tokio::task::block_in_place(|| tokio::runtime::Handle::current().block_on(future))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_collector_started_while_the_server_is_down_uses_its_saved_config_and_reconnects() {
    let data = tempfile::tempdir().unwrap();
    let listen = format!("127.0.0.1:{}", free_port());
    let server = start_server_on(&server_bin(), data.path(), &listen);
    let admin = admin(&server).await;
    let code = join_code(&admin).await;
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let binary = Path::new(COLLECTOR);
    let id = enroll(binary, &state, &code, "south", "machine-south");
    admin
        .create_node(&NodeSpec {
            name: "rtu-1".into(),
            address: "10.0.1.1".into(),
            collector: Some("south".into()),
            ..NodeSpec::default()
        })
        .await
        .unwrap();
    admin.approve_component(id).await.unwrap();
    let mut child = start(binary, &state, &dir.path().join("first.log"));
    let saved = wait_until(Duration::from_secs(25), "first configuration", || {
        let status = status(binary, &state);
        (status["saved_targets"] == 1).then(|| status["saved_config_sha256"].clone())
    });
    assert_eq!(terminate(&mut child), Some(0));
    server.stop();

    // Server down: the collector starts from the saved configuration and says why it waits.
    let log = dir.path().join("second.log");
    let mut child = start(binary, &state, &log);
    let down = wait_until(Duration::from_secs(15), "unreachable state", || {
        let status = status(binary, &state);
        (state_of(&status) == "unreachable").then_some(status)
    });
    assert_eq!(
        down["status"]["config_sha256"], saved,
        "polls with the saved configuration"
    );
    assert_eq!(down["status"]["target_count"], 1);
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.contains("Starting with the saved configuration"),
        "{text}"
    );
    assert!(text.contains("Cannot get the configuration"), "{text}");

    // The server comes back on the same address: the collector reconnects by itself.
    let server = start_server_on(&server_bin(), data.path(), &listen);
    wait_until(Duration::from_secs(40), "reconnection", || {
        (state_of(&status(binary, &state)) == "connected").then_some(())
    });
    let admin = self::admin(&server).await;
    let component = admin.get_component(id).await.unwrap();
    assert_eq!(component.status, ComponentStatus::Online);
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("Connected to the server again"), "{text}");
    assert_eq!(terminate(&mut child), Some(0));
}

#[tokio::test(flavor = "multi_thread")]
async fn an_agent_enrolls_gets_its_node_at_approval_and_sends_heartbeats() {
    let server = start_server(&server_bin());
    let admin = admin(&server).await;
    let code = join_code(&admin).await;
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("agent");
    let binary = agent_bin();
    let id = enroll(&binary, &state, &code, "web-01", "machine-web");
    let mut child = start(&binary, &state, &dir.path().join("agent.log"));
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
    assert_eq!(terminate(&mut child), Some(0));

    // A collector's state dir is not an agent's.
    let mut command = daemon(Path::new(COLLECTOR), &state);
    command.arg("status");
    let out = run_with_input(command, "");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("kind agent, not collector"));
}

#[test]
fn bad_join_codes_and_missing_enrollment_are_explained() {
    let dir = tempfile::tempdir().unwrap();
    let binary = Path::new(COLLECTOR);
    let mut command = daemon(binary, dir.path());
    command.args(["enroll", "pwj1_garbage", "--name", "x", "--machine-id", "m"]);
    let out = run_with_input(command, "");
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(text.contains("not a plantwatch join code"), "{text}");

    let mut command = daemon(binary, dir.path());
    command.arg("run");
    let out = run_with_input(command, "");
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(text.contains("not enrolled"), "{text}");
}
