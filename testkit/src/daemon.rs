//! The collector and agent daemons as an operator runs them: `enroll`, `run`, `status`.

use std::path::Path;
use std::process::{Child, Command, Stdio};

use plantwatch_shared::Client;
use plantwatch_shared::api::CreateTokenRequest;
use serde_json::Value;

use crate::{ADMIN_PASSWORD, Server, ok, run_with_input};

/// A client signed in as the test server's admin.
pub async fn admin(server: &Server) -> Client {
    let client = Client::new(&server.url, Some(server.fingerprint.parse().unwrap())).unwrap();
    let session = client.login("admin", ADMIN_PASSWORD).await.unwrap();
    client.with_token(session.token)
}

/// A new enrollment token's join code.
pub async fn join_code(admin: &Client) -> String {
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

/// `binary` (collector or agent) on state directory `state`, logging at info.
pub fn daemon(binary: &Path, state: &Path) -> Command {
    let mut command = Command::new(binary);
    command
        .arg("--state-dir")
        .arg(state)
        .env_remove("PLANTWATCH_MACHINE_ID")
        .env("RUST_LOG", "info")
        // Not NO_COLOR: their logs must be plain whenever they do not go to a terminal.
        .env_remove("NO_COLOR");
    command
}

/// `enroll` with the join code on standard input; returns the component id it printed.
pub fn enroll(binary: &Path, state: &Path, code: &str, name: &str, machine: &str) -> i64 {
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

/// `run`, logging to `log`.
pub fn start(binary: &Path, state: &Path, log: &Path) -> Child {
    let log = std::fs::File::create(log).unwrap();
    daemon(binary, state)
        .arg("run")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap()
}

/// `status --json`, parsed.
pub fn status(binary: &Path, state: &Path) -> Value {
    let mut command = daemon(binary, state);
    command.args(["status", "--json"]);
    serde_json::from_str(&ok(&run_with_input(command, ""))).unwrap()
}

/// The daemon's state word in a `status --json` document.
pub fn state_of(status: &Value) -> String {
    status["status"]["state"].as_str().unwrap_or("").to_owned()
}
