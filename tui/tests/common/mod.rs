//! The real `plantwatch-server` for the client's tests.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::io::Write as _;
use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const CLI: &str = env!("CARGO_BIN_EXE_plantwatch");
pub const ADMIN_PASSWORD: &str = "admin-password-1";

/// `plantwatch-server`, built beside `plantwatch` by `cargo test --workspace`.
pub fn server_bin() -> PathBuf {
    let path = Path::new(CLI).with_file_name("plantwatch-server");
    assert!(
        path.exists(),
        "{} is missing: run the tests with `cargo test --workspace` (it builds the server too)",
        path.display()
    );
    path
}

pub struct Server {
    pub child: Child,
    pub url: String,
    pub fingerprint: String,
    pub data: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `plantwatch-server` on a temporary data dir with an admin from the environment.
pub fn server_command(data: &Path, listen: &str) -> Command {
    let mut command = Command::new(server_bin());
    command
        .args(["--listen", listen, "--data-dir"])
        .arg(data)
        .env("PLANTWATCH_ADMIN_USER", "admin")
        .env("PLANTWATCH_ADMIN_PASSWORD", ADMIN_PASSWORD)
        .env_remove("PLANTWATCH_CONFIG")
        .env_remove("PLANTWATCH_VAULT_KEY")
        .env("NO_COLOR", "1");
    command
}

pub fn start_server() -> Server {
    let data = tempfile::tempdir().unwrap();
    let mut child = server_command(data.path(), "127.0.0.1:0")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        let Some(Ok(line)) = lines.next() else { break };
        // listening on https://127.0.0.1:PORT (fingerprint SHA256:…)
        if let Some(rest) = line.split("listening on ").nth(1) {
            let (url, fingerprint) = rest.split_once(" (fingerprint ").unwrap();
            std::thread::spawn(move || for _ in lines {});
            return Server {
                child,
                url: url.to_owned(),
                fingerprint: fingerprint.trim_end_matches(')').to_owned(),
                data,
            };
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("plantwatch-server did not start");
}

/// Runs `plantwatch` with its own config dir, feeding `stdin`.
pub fn plantwatch(config: &Path, args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(CLI)
        .args(args)
        .env("XDG_CONFIG_HOME", config)
        .env_remove("PLANTWATCH_CONTEXT")
        .env_remove("PLANTWATCH_CLIENT_CONFIG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

pub fn ok(output: &Output) -> String {
    assert!(
        output.status.success(),
        "exit {:?}\nstdout: {}\nstderr: {}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout.clone()).unwrap()
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
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
