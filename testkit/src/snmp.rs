//! Real SNMP agents for tests, on loopback ports: net-snmp's `snmpd` (v2c community and a v3
//! authPriv user) and `snmpsim` serving recordings of real devices. Both need their packages
//! (`snmpd`, `snmp`, and `pip install snmpsim snmpsim-data`), which `.ci/run` installs.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::{free_udp_port, wait_until};

/// Community of the test `snmpd`.
pub const COMMUNITY: &str = "plant-ro";
/// SNMPv3 user of the test `snmpd`: SHA-256 authentication, AES-128 privacy.
pub const V3_USER: &str = "pwv3";
pub const V3_AUTH: &str = "auth-pass-123";
pub const V3_PRIV: &str = "priv-pass-456";

/// A running agent, killed when dropped.
pub struct Agent {
    pub child: Child,
    pub port: u16,
    /// `127.0.0.1:port`.
    pub address: String,
    _dir: tempfile::TempDir,
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn answers(address: &str, community: &str) -> bool {
    Command::new("snmpget")
        .args([
            "-v2c", "-c", community, "-t", "0.5", "-r", "0", "-On", address,
        ])
        .arg("1.3.6.1.2.1.1.3.0")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("snmpget (package snmp) must be installed")
        .success()
}

/// net-snmp's `snmpd` on a free loopback port with the community [`COMMUNITY`] and the v3 user
/// [`V3_USER`].
pub fn snmpd() -> Agent {
    let dir = tempfile::tempdir().unwrap();
    let port = free_udp_port();
    let address = format!("127.0.0.1:{port}");
    let config = dir.path().join("snmpd.conf");
    std::fs::write(
        &config,
        format!(
            "rocommunity {COMMUNITY} 127.0.0.1\n\
             createUser {V3_USER} SHA-256 \"{V3_AUTH}\" AES \"{V3_PRIV}\"\n\
             rouser {V3_USER} priv\n\
             sysLocation plantwatch test\n\
             sysContact nobody\n"
        ),
    )
    .unwrap();
    let mut command = Command::new("snmpd");
    command
        .args(["-f", "-Lo", "-C", "-c"])
        .arg(&config)
        .arg(format!("udp:{address}"))
        .env("SNMP_PERSISTENT_DIR", dir.path())
        .env("MIBS", "");
    start(command, "snmpd (package snmpd)", dir, port, COMMUNITY)
}

/// Starts an agent on `port` and waits until it answers `community`.
fn start(
    mut command: Command,
    what: &str,
    dir: tempfile::TempDir,
    port: u16,
    community: &str,
) -> Agent {
    let address = format!("127.0.0.1:{port}");
    let child = command
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("{what} must be installed: {e}"));
    let mut agent = Agent {
        child,
        port,
        address,
        _dir: dir,
    };
    let limit = Duration::from_secs(60);
    wait_until(limit, &format!("{what} answering"), || {
        if let Ok(Some(status)) = agent.child.try_wait() {
            panic!("{what} exited: {status}");
        }
        answers(&agent.address, community).then_some(())
    });
    agent
}

/// The directory of the `snmpsim-data` recordings.
pub fn recordings_dir() -> PathBuf {
    let output = Command::new("python3")
        .args([
            "-c",
            "import os, snmpsim_data; print(os.path.join(os.path.dirname(snmpsim_data.__file__), 'data'))",
        ])
        .output()
        .expect("python3");
    assert!(
        output.status.success(),
        "snmpsim-data is not installed (pip install snmpsim snmpsim-data)"
    );
    PathBuf::from(String::from_utf8_lossy(&output.stdout).trim())
}

/// `snmpsim-command-responder`: on the `PATH`, else in Python's scripts directory (where pip
/// puts it, also when no shim or symlink was made for it).
pub fn snmpsim_binary() -> PathBuf {
    crate::pip_program("snmpsim-command-responder")
}

/// `snmpsim` serving every `.snmprec` file in `data` (each under the community named by its
/// file name without the extension).
pub fn snmpsim(data: &Path, check_community: &str) -> Agent {
    let dir = tempfile::tempdir().unwrap();
    let port = free_udp_port();
    let mut command = Command::new(snmpsim_binary());
    command
        .arg(format!("--data-dir={}", data.display()))
        .arg(format!("--cache-dir={}", dir.path().display()))
        .arg(format!("--agent-udpv4-endpoint=127.0.0.1:{port}"))
        .env("SNMPSIM_ALLOW_ROOT", "true");
    start(
        command,
        "snmpsim-command-responder (pip install snmpsim)",
        dir,
        port,
        check_community,
    )
}

/// Copies the part of recording `relative` under the OID `prefixes` into `into` as
/// `name.snmprec`: snmpsim indexes a recording when it starts, and the biggest (a Juniper
/// MX960's, 50 MB) take it most of a minute.
pub fn stage_recording_part(relative: &str, into: &Path, name: &str, prefixes: &[&str]) {
    stage_recording(relative, into, name);
    let path = into.join(format!("{name}.snmprec"));
    let text = std::fs::read_to_string(&path).unwrap();
    let kept: String = text
        .lines()
        .filter(|line| {
            let oid = line.split('|').next().unwrap_or_default();
            prefixes
                .iter()
                .any(|p| oid == *p || oid.starts_with(&format!("{p}.")))
        })
        .flat_map(|line| [line, "\n"])
        .collect();
    std::fs::write(&path, kept).unwrap();
}

/// Copies recording `relative` (`network/switch/cisco-c3560`, `.snmprec` or `.snmprec.bz2`)
/// from snmpsim-data into `into` as `name.snmprec`.
pub fn stage_recording(relative: &str, into: &Path, name: &str) {
    let source = recordings_dir().join(relative);
    let plain = source.with_extension("snmprec");
    let target = into.join(format!("{name}.snmprec"));
    if plain.exists() {
        std::fs::copy(&plain, &target).unwrap();
        return;
    }
    let compressed = PathBuf::from(format!("{}.snmprec.bz2", source.display()));
    let output = Command::new("bzcat")
        .arg(&compressed)
        .output()
        .expect("bzcat");
    assert!(output.status.success(), "no recording {relative}");
    std::fs::write(&target, output.stdout).unwrap();
}
