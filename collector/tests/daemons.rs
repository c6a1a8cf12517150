//! The real binaries end to end: `plantwatch-server` and `plantwatch-collector` in temporary
//! directories, talking HTTPS over loopback. Enrollment with a join code, waiting for approval,
//! the configuration pulled and followed, the saved configuration used while the server is
//! down, reconnection, and SIGTERM.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly by design.

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use plantwatch_shared::api::{ComponentStatus, NodeSpec};
use plantwatch_testkit::daemon::{admin, daemon, enroll, join_code, start, state_of, status};
use plantwatch_testkit::{
    binary_beside, free_port, ok, run_with_input, start_server, start_server_on, terminate,
    wait_until,
};

const COLLECTOR: &str = env!("CARGO_BIN_EXE_plantwatch-collector");

fn server_bin() -> PathBuf {
    binary_beside(COLLECTOR, "plantwatch-server")
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
            address: "127.0.0.7".into(),
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
    assert!(saved.contains("127.0.0.7"), "{saved}");
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
            address: "127.0.1.1".into(),
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
    // A log that goes to a file (or journald) carries no colour escapes.
    assert!(
        !text.contains('\u{1b}'),
        "ANSI escapes in the log: {text:?}"
    );
    assert_eq!(terminate(&mut child), Some(0));
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
