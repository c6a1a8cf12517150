//! The real `plantwatch-server` for the client's tests.
#![allow(dead_code, unused_imports, clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub use plantwatch_testkit::{ADMIN_PASSWORD, Server, ok, stderr};

pub const CLI: &str = env!("CARGO_BIN_EXE_plantwatch");

/// `plantwatch-server`, built beside `plantwatch` by `cargo test --workspace`.
pub fn server_bin() -> PathBuf {
    plantwatch_testkit::binary_beside(CLI, "plantwatch-server")
}

/// `plantwatch-server` on a temporary data dir with an admin from the environment.
pub fn server_command(data: &Path, listen: &str) -> Command {
    plantwatch_testkit::server_command(&server_bin(), data, listen)
}

pub fn start_server() -> Server {
    plantwatch_testkit::start_server(&server_bin())
}

/// `plantwatch-server` in `data` whose own collector polls, and pushes every second.
pub fn start_polling_server(data: &Path) -> Server {
    plantwatch_testkit::start_server_with(
        &server_bin(),
        data,
        "127.0.0.1:0",
        &[
            ("PLANTWATCH_LOCAL_POLLING", "true"),
            ("PLANTWATCH_PUSH_INTERVAL_SECS", "1"),
        ],
    )
}

/// `plantwatch-server` in `data` whose own collector pings the nodes (all on loopback) and
/// whose evaluator runs every second.
pub fn start_alerting_server(data: &Path) -> Server {
    let listen = format!("127.0.0.1:{}", plantwatch_testkit::free_port());
    plantwatch_testkit::start_server_with(
        &server_bin(),
        data,
        &listen,
        &[
            ("PLANTWATCH_ALERT_INTERVAL_SECS", "1"),
            ("PLANTWATCH_LOCAL_POLLING", "true"),
        ],
    )
}

/// `count` nodes `plc-1`… on `127.0.N.i`, pinged every 5 s, and a rule `pinged` that holds
/// for each pinged node: an alert per node.
#[allow(dead_code)] // Not every test binary uses every helper.
pub fn pinged_plcs(config: &Path, network: u8, count: u8) {
    for i in 1..=count {
        let address = format!("127.0.{network}.{i}");
        let name = format!("plc-{i}");
        let args = [
            "nodes",
            "create",
            &name,
            "--address",
            &address,
            "--interval",
            "5",
        ];
        ok(&plantwatch(config, &args, ""));
    }
    let rule = [
        "rules",
        "create",
        "pinged",
        "--metric",
        "ping.up",
        "--comparison",
        ">=",
        "--warning",
        "1",
    ];
    ok(&plantwatch(config, &rule, ""));
}

/// Runs `plantwatch` with its own config dir, feeding `stdin`.
pub fn plantwatch(config: &Path, args: &[&str], stdin: &str) -> Output {
    let mut command = Command::new(CLI);
    command
        .args(args)
        .env("XDG_CONFIG_HOME", config)
        .env_remove("PLANTWATCH_CONTEXT")
        .env_remove("PLANTWATCH_CLIENT_CONFIG");
    plantwatch_testkit::run_with_input(command, stdin)
}

pub fn login(server: &Server, config: &Path) -> Output {
    login_with(server, config, &server.fingerprint, ADMIN_PASSWORD)
}

/// `plantwatch login` as a script runs it: fingerprint on the command line, password on stdin.
pub fn login_with(server: &Server, config: &Path, fingerprint: &str, password: &str) -> Output {
    plantwatch(
        config,
        &[
            "login",
            &server.url,
            "--user",
            "admin",
            "--password-stdin",
            "--fingerprint",
            fingerprint,
        ],
        &format!("{password}\n"),
    )
}
