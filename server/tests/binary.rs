//! The `plantwatch-server` binary as an operator runs it: start-up log, `fingerprint`,
//! refusals with clear messages, and graceful shutdown on SIGTERM.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly by design.

use std::io::{BufRead as _, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_plantwatch-server");

fn server(data_dir: &std::path::Path, extra: &[&str]) -> Command {
    let mut command = Command::new(BIN);
    command
        .arg("--data-dir")
        .arg(data_dir)
        .args(extra)
        .env_remove("PLANTWATCH_ADMIN_USER")
        .env_remove("PLANTWATCH_ADMIN_PASSWORD")
        .env_remove("PLANTWATCH_CONFIG")
        .env_remove("PLANTWATCH_VAULT_KEY")
        .env("NO_COLOR", "1");
    command
}

/// Reads stderr until the `listening on` line and returns it.
fn wait_until_listening(child: &mut Child) -> String {
    let stderr = child.stderr.take().expect("stderr piped");
    let mut lines = BufReader::new(stderr).lines();
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        match lines.next() {
            Some(Ok(line)) if line.contains("listening on") => {
                // Keep draining so the server never blocks on a full pipe.
                std::thread::spawn(move || for _ in lines {});
                return line;
            }
            Some(Ok(_)) => continue,
            _ => break,
        }
    }
    let _ = child.kill();
    panic!("the server never logged `listening on`");
}

fn stop(child: &mut Child) -> std::process::ExitStatus {
    let pid = child.id().to_string();
    Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(Instant::now() < deadline, "no exit after SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn logs_its_fingerprint_prints_it_and_stops_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = server(dir.path(), &["--listen", "127.0.0.1:0"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let line = wait_until_listening(&mut child);
    assert!(line.contains("https://127.0.0.1:"), "{line}");
    let logged = line
        .split("fingerprint ")
        .nth(1)
        .unwrap()
        .trim_end_matches(')')
        .to_owned();

    let printed = server(dir.path(), &["fingerprint"]).output().unwrap();
    assert!(printed.status.success());
    assert_eq!(String::from_utf8(printed.stdout).unwrap().trim(), logged);

    let status = stop(&mut child);
    assert!(status.success(), "exit status {status:?}");
    assert!(dir.path().join("plantwatch.db").exists());
    let code = std::fs::read_to_string(dir.path().join("setup-code")).unwrap();
    assert_eq!(code.trim().len(), 14);
}

#[test]
fn json_logs_are_one_object_per_line() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = server(
        dir.path(),
        &["--listen", "127.0.0.1:0", "--log-format", "json"],
    )
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let line = wait_until_listening(&mut child);
    let event: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert!(
        event["message"]
            .as_str()
            .unwrap()
            .starts_with("listening on https://")
    );
    stop(&mut child);
}

#[test]
fn refuses_a_database_newer_than_itself() {
    let dir = tempfile::tempdir().unwrap();
    let db = rusqlite::Connection::open(dir.path().join("plantwatch.db")).unwrap();
    db.pragma_update(None, "user_version", 999).unwrap();
    drop(db);
    let output = server(dir.path(), &["--listen", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("schema version 999"), "{stderr}");
    assert!(stderr.contains("newer"), "{stderr}");
}

#[test]
fn refuses_plain_http_off_loopback() {
    let dir = tempfile::tempdir().unwrap();
    let output = server(dir.path(), &["--listen", "0.0.0.0:0", "--insecure-http"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("only allowed on a loopback address"),
        "{stderr}"
    );
    assert!(!dir.path().join("plantwatch.db").exists(), "started anyway");
}

#[test]
fn fingerprint_of_a_supplied_certificate_and_a_bad_config_file() {
    let dir = tempfile::tempdir().unwrap();
    // A config file with a typo names the key.
    let config = dir.path().join("bad.toml");
    std::fs::write(&config, "listne = \"127.0.0.1:1\"\n").unwrap();
    let output = server(
        dir.path(),
        &["--config", config.to_str().unwrap(), "fingerprint"],
    )
    .output()
    .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("listne"));

    // A certificate that cannot be read is named.
    let output = server(
        dir.path(),
        &[
            "--listen",
            "127.0.0.1:0",
            "--tls-cert",
            "/nonexistent/server.crt",
            "--tls-key",
            "/nonexistent/server.key",
        ],
    )
    .output()
    .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("/nonexistent/server.crt"));

    // Half a TLS pair is a usage error.
    let output = server(dir.path(), &["--tls-cert", "/nonexistent.pem"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
}

#[test]
fn vault_rotate_refuses_while_the_server_runs_and_rotates_once_it_is_stopped() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = server(dir.path(), &["--listen", "127.0.0.1:0"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_until_listening(&mut child);
    let key_before = std::fs::read(dir.path().join("vault.key")).unwrap();
    let busy = server(dir.path(), &["vault", "rotate"]).output().unwrap();
    assert!(!busy.status.success());
    let text = String::from_utf8_lossy(&busy.stderr);
    assert!(
        text.contains("in use by a running plantwatch-server"),
        "{text}"
    );
    assert!(stop(&mut child).success());

    let done = server(dir.path(), &["vault", "rotate"]).output().unwrap();
    let text = String::from_utf8_lossy(&done.stdout);
    assert!(
        done.status.success(),
        "{text} {}",
        String::from_utf8_lossy(&done.stderr)
    );
    assert!(text.contains("Re-encrypted 0 secret(s)"), "{text}");
    assert_ne!(
        std::fs::read(dir.path().join("vault.key")).unwrap(),
        key_before
    );

    // A key from the environment: the new one is printed, as it is stored nowhere else.
    let env_dir = tempfile::tempdir().unwrap();
    let key = "ab".repeat(32);
    let mut child = server(env_dir.path(), &["--listen", "127.0.0.1:0"])
        .env("PLANTWATCH_VAULT_KEY", &key)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_until_listening(&mut child);
    assert!(stop(&mut child).success());
    assert!(!env_dir.path().join("vault.key").exists());
    let done = server(env_dir.path(), &["vault", "rotate"])
        .env("PLANTWATCH_VAULT_KEY", &key)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&done.stdout);
    let new_key = text.lines().last().unwrap_or_default();
    assert!(done.status.success() && new_key.len() == 44, "{text}");
    // The old key no longer opens the vault; the new one does.
    let mut child = server(env_dir.path(), &["--listen", "127.0.0.1:0"])
        .env("PLANTWATCH_VAULT_KEY", &key)
        .output()
        .unwrap();
    assert!(!child.status.success());
    let text = String::from_utf8_lossy(&child.stderr).to_string();
    assert!(text.contains("not the key"), "{text}");
    child = server(env_dir.path(), &["fingerprint"]).output().unwrap();
    assert!(child.status.success());
    let mut child = server(env_dir.path(), &["--listen", "127.0.0.1:0"])
        .env("PLANTWATCH_VAULT_KEY", new_key)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_until_listening(&mut child);
    assert!(stop(&mut child).success());
}

#[path = "ha/mod.rs"]
mod ha;
