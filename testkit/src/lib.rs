//! Test harness shared by the crates whose tests run the real binaries: `plantwatch-server` on a
//! temporary data dir, started and stopped like an operator would, and small helpers to run a
//! command with input and wait for a condition.
#![allow(clippy::unwrap_used, clippy::expect_used)] // A harness fails loudly by design.

pub mod daemon;
pub mod dns;
pub mod engines;
pub mod modbus;
pub mod pair;
pub mod plantnet;
pub mod polling;
pub mod slapd;
pub mod snmp;
pub mod tls;
pub mod vcsim;

use std::io::Write as _;
use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Password of the admin every test server starts with.
pub const ADMIN_PASSWORD: &str = "admin-password-1";

/// The binary `name`, built beside `sibling` (a `CARGO_BIN_EXE_…` path) by
/// `cargo test --workspace`.
pub fn binary_beside(sibling: &str, name: &str) -> PathBuf {
    let path = Path::new(sibling).with_file_name(name);
    assert!(
        path.exists(),
        "{} is missing: run the tests with `cargo test --workspace` (it builds every binary)",
        path.display()
    );
    path
}

/// A running `plantwatch-server`, killed when dropped.
pub struct Server {
    pub child: Child,
    pub url: String,
    pub fingerprint: String,
    pub data: PathBuf,
    _dir: Option<tempfile::TempDir>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// Stops the server with SIGTERM and waits for it.
    pub fn stop(mut self) {
        terminate(&mut self.child);
    }
}

/// Sends SIGTERM to `child` and waits up to 20 s for it to exit; returns its exit code.
pub fn terminate(child: &mut Child) -> Option<i32> {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            return status.code();
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("process {} did not stop on SIGTERM", child.id());
}

/// `plantwatch-server` on `data` with an admin from the environment.
pub fn server_command(server_bin: &Path, data: &Path, listen: &str) -> Command {
    let mut command = Command::new(server_bin);
    command
        .args(["--listen", listen, "--data-dir"])
        .arg(data)
        // Test nodes have made-up addresses: the server itself must not send to them.
        .env("PLANTWATCH_LOCAL_POLLING", "false")
        .env("PLANTWATCH_LOCAL_DISCOVERY", "false")
        .env("PLANTWATCH_ADMIN_USER", "admin")
        .env("PLANTWATCH_ADMIN_PASSWORD", ADMIN_PASSWORD)
        .env_remove("PLANTWATCH_CONFIG")
        .env_remove("PLANTWATCH_VAULT_KEY")
        .env("NO_COLOR", "1");
    command
}

/// Starts `plantwatch-server` on a new temporary data dir and an ephemeral port.
pub fn start_server(server_bin: &Path) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_owned();
    let mut server = start_server_on(server_bin, &data, "127.0.0.1:0");
    server._dir = Some(dir);
    server
}

/// Starts `plantwatch-server` on `data` (kept by the caller) listening on `listen`, and waits
/// for its `listening on` line.
pub fn start_server_on(server_bin: &Path, data: &Path, listen: &str) -> Server {
    start_server_with(server_bin, data, listen, &[])
}

/// [`start_server_on`] with further environment variables.
pub fn start_server_with(
    server_bin: &Path,
    data: &Path,
    listen: &str,
    env: &[(&str, &str)],
) -> Server {
    let mut command = server_command(server_bin, data, listen);
    command.envs(env.iter().copied());
    let mut child = command.stderr(Stdio::piped()).spawn().unwrap();
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
                data: data.to_owned(),
                _dir: None,
            };
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("plantwatch-server did not start");
}

/// A program pip installed: on the `PATH`, else in Python's scripts directory (where pip puts
/// it, also when no shim or symlink was made for it).
pub fn pip_program(name: &str) -> PathBuf {
    let on_path = Command::new("sh")
        .args(["-c", &format!("command -v {name}")])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()));
    if let Some(path) = on_path {
        return path;
    }
    let output = Command::new("python3")
        .args([
            "-c",
            "import sysconfig; print(sysconfig.get_path('scripts'))",
        ])
        .output()
        .expect("python3");
    PathBuf::from(String::from_utf8_lossy(&output.stdout).trim()).join(name)
}

/// A free TCP port on loopback (for a server that must come back on the same address).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A UDP port on 127.0.0.1 that was free a moment ago.
pub fn free_udp_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
/// Runs `command`, feeding `stdin`, and collects its output.
pub fn run_with_input(mut command: Command, stdin: &str) -> Output {
    let mut child = command
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

/// The standard output of a successful command; fails the test with everything otherwise.
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

/// Standard error as text.
pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Polls `check` every 200 ms until it gives a value; fails after `limit` naming `what`.
pub fn wait_until<T>(limit: Duration, what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let started = Instant::now();
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(started.elapsed() < limit, "{what}: not within {limit:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// (user + system CPU seconds, resident KiB, peak resident KiB) of this process.
pub fn usage() -> (f64, u64, u64) {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap()
        .split_whitespace()
        .collect();
    let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let kib = |key: &str| {
        status
            .lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (ticks / 100.0, kib("VmRSS:"), kib("VmHWM:"))
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    /// Every program the tests run (`Command::new("…")` in the test folders and this kit) is
    /// one `scripts/test` — the README's test command — installs when missing, or comes with
    /// every Debian system: a fresh machine passes the suite with that one command.
    #[test]
    fn the_test_command_installs_every_program_the_tests_run() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let script = std::fs::read_to_string(root.join("scripts/test")).unwrap();
        let base_system = ["sh", "id", "python3"];
        let folders = [
            "server/tests",
            "tui/tests",
            "collector/tests",
            "agent/tests",
            "testkit/src",
        ];
        let mut programs = std::collections::BTreeSet::new();
        for folder in folders {
            let mut stack = vec![root.join(folder)];
            while let Some(dir) = stack.pop() {
                for entry in std::fs::read_dir(&dir).unwrap() {
                    let path = entry.unwrap().path();
                    if path.is_dir() {
                        stack.push(path);
                        continue;
                    }
                    if path.extension().is_none_or(|e| e != "rs") {
                        continue;
                    }
                    let text = std::fs::read_to_string(&path).unwrap();
                    for part in text.split("Command::new(\"").skip(1) {
                        if let Some(name) = part.split('"').next().filter(|n| {
                            !n.is_empty()
                                && n.chars()
                                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
                        }) {
                            programs.insert(name.to_owned());
                        }
                    }
                }
            }
        }
        assert!(programs.contains("snmpd"), "found {programs:?}");
        let missing: Vec<&String> = programs
            .iter()
            .filter(|p| !base_system.contains(&p.as_str()))
            .filter(|p| !script.contains(&format!("command -v {p} ")))
            .collect();
        assert!(
            missing.is_empty(),
            "scripts/test does not install {missing:?}: add a `command -v NAME >/dev/null || \
             need+=(PACKAGE)` line"
        );
        // The Python tools, through pip.
        for module in ["snmpsim", "aiosmtpd"] {
            assert!(script.contains(&format!("import {module}")), "{module}");
        }
    }
}
