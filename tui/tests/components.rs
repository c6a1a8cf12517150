//! `plantwatch tokens`, `plantwatch collectors` and `plantwatch agents` against the real server,
//! with a real `plantwatch-collector` enrolling in between.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly by design.

mod common;

use std::process::Command;

use common::{CLI, login, ok, plantwatch, start_server, stderr};
use plantwatch_shared::api::JoinCode;
use serde_json::Value;

#[test]
fn tokens_collectors_and_agents_from_the_command_line() {
    let server = start_server();
    let config = tempfile::tempdir().unwrap();
    ok(&login(&server, config.path()));
    let cli = |args: &[&str]| plantwatch(config.path(), args, "");

    let created = cli(&[
        "tokens",
        "create",
        "plant 4",
        "--expires",
        "7d",
        "--max-uses",
        "3",
    ]);
    let code = ok(&created);
    assert_eq!(
        code.lines().count(),
        1,
        "only the join code on stdout: {code}"
    );
    let join: JoinCode = code.trim().parse().unwrap();
    assert_eq!(join.url, server.url);
    assert_eq!(join.fingerprint.unwrap().to_string(), server.fingerprint);
    assert!(
        stderr(&created).contains("shown only now"),
        "{}",
        stderr(&created)
    );
    let tokens = ok(&cli(&["tokens", "list"]));
    assert!(tokens.contains("plant 4"), "{tokens}");
    assert!(tokens.contains("active"), "{tokens}");
    assert!(tokens.contains("0/3"), "{tokens}");
    assert!(
        !tokens.contains(join.token.expose()),
        "the token is never listed"
    );

    // A real collector enrolls with it.
    let state = tempfile::tempdir().unwrap();
    let collector = plantwatch_testkit::binary_beside(CLI, "plantwatch-collector");
    let mut enroll = Command::new(collector);
    enroll.arg("--state-dir").arg(state.path()).args([
        "enroll",
        "--name",
        "north",
        "--machine-id",
        "m-north",
    ]);
    ok(&plantwatch_testkit::run_with_input(enroll, &code));

    let listed = ok(&cli(&["collectors", "list"]));
    let north = listed.lines().find(|l| l.contains("north")).unwrap();
    assert!(north.contains("pending"), "{listed}");
    assert!(listed.contains("local (server)"), "{listed}");
    let approved = cli(&["collectors", "approve", "NORTH"]);
    ok(&approved);
    assert!(stderr(&approved).contains("Approved collector \"north\""));
    let json: Value =
        serde_json::from_str(&ok(&cli(&["collectors", "list", "-o", "json"]))).unwrap();
    let north = json["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "north")
        .unwrap();
    assert_eq!(north["status"], "online", "registration counts as contact");
    let pending = ok(&cli(&["collectors", "list", "--status", "pending"]));
    assert!(!pending.contains("north"), "{pending}");

    let revoked = cli(&["collectors", "revoke", "north", "--yes"]);
    ok(&revoked);
    let listed = ok(&cli(&["collectors", "list"]));
    assert!(
        listed
            .lines()
            .any(|l| l.contains("north") && l.contains("revoked")),
        "{listed}"
    );
    ok(&cli(&["collectors", "delete", "north", "--yes"]));
    assert!(!ok(&cli(&["collectors", "list"])).contains("north"));

    let missing = cli(&["collectors", "approve", "nosuch"]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(stderr(&missing).contains("there is no collector \"nosuch\""));
    let local = cli(&["collectors", "revoke", "local", "--yes"]);
    assert_eq!(local.status.code(), Some(1));
    assert!(
        stderr(&local).contains("own collector"),
        "{}",
        stderr(&local)
    );

    let agents = ok(&cli(&["agents", "list"]));
    assert!(agents.starts_with("ID"), "{agents}");
    assert!(agents.contains("NODE"), "{agents}");

    ok(&cli(&["tokens", "revoke", "plant 4"]));
    let tokens = ok(&cli(&["tokens", "list"]));
    assert!(tokens.contains("revoked"), "{tokens}");
    let bad = cli(&["tokens", "create", "x", "--expires", "5y"]);
    assert_eq!(bad.status.code(), Some(2), "a usage error");
}
