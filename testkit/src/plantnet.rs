//! A simulated plant network in network namespaces, built by a test and torn down when dropped
//! (the project's own copy of the idea of `../shared/testbed/plantnet.sh`). Nothing in it has
//! a route to the host's networks: every packet a test sends stays in namespaces it created.
//!
//! ```text
//!  scan (S): the test itself, the server and its local collector
//!    s0 198.18.0.1/24 ──── plant (P): 198.18.0.10.. SNMP devices (snmpsim, real recordings),
//!    │                                 then ping-only hosts; every other address silent
//!    s2 198.18.3.1/24 ──── tcp (T):   198.18.3.10.. hosts that drop ICMP (TCP only)
//!    s1 198.18.1.1/30 ──── remote (C): a remote collector, c0 198.18.1.2/30
//!                                       c1 198.18.2.1/24 ──── far plant (Q): 198.18.2.10..
//! ```
//!
//! S routes only to P, T and C's link; it cannot reach Q (C does not forward), which only the
//! remote collector in C can scan. A test runs its body inside S with [`run_inside`]: the test
//! binary re-runs itself there, so the server, the CLI and the scans all use S's own loopback
//! and links.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// The variable that tells a re-run test it is inside the scan namespace; its value is the
/// plant's name prefix.
pub const INSIDE: &str = "PLANTWATCH_TEST_PLANT";

/// An SNMP device of the simulated plant.
#[derive(Debug, Clone)]
pub struct SnmpDevice<A = &'static str> {
    pub address: A,
    /// Recording in snmpsim-data.
    pub recording: &'static str,
    /// The community it answers (for SNMPv3: the context name).
    pub community: &'static str,
    /// The template discovery should match.
    pub template: &'static str,
}

/// Devices of the plant (P), answering SNMPv2c `public`, but for the last one, which answers
/// SNMPv3 only (user `simulator`, MD5 `auctoritas`, DES `privatus`, context `plant-v3`).
pub const PLANT_SNMP: &[SnmpDevice] = &[
    SnmpDevice {
        address: "198.18.0.10",
        recording: "network/switch/cisco-c3560",
        community: "public",
        template: "cisco-ios",
    },
    SnmpDevice {
        address: "198.18.0.11",
        recording: "UPS/eaton-93e-80",
        community: "public",
        template: "eaton-ups",
    },
    SnmpDevice {
        address: "198.18.0.12",
        recording: "iot/geist-temperature-sensor",
        community: "public",
        template: "geist-sensor",
    },
    SnmpDevice {
        address: "198.18.0.13",
        recording: "network/firewall/paloalto-pa-5000",
        community: "public",
        template: "paloalto-panos",
    },
    SnmpDevice {
        address: "198.18.0.14",
        recording: "os/linux/unknown-006",
        community: "public",
        template: "linux",
    },
    SnmpDevice {
        address: "198.18.0.15",
        recording: "os/windows/server-2003-5-2",
        community: "public",
        template: "windows",
    },
    SnmpDevice {
        address: "198.18.0.16",
        recording: "storage/isilon-onefs",
        community: "public",
        template: "isilon-onefs",
    },
    SnmpDevice {
        address: "198.18.0.17",
        recording: "UPS/apc-8641",
        community: "public",
        template: "apc-pdu",
    },
    SnmpDevice {
        address: "198.18.0.18",
        recording: "storage/netapp-fas3270",
        community: "plant-v3",
        template: "netapp-ontap",
    },
];
/// Hosts of P that answer ping only.
pub const PLANT_PING_ONLY: &[&str] = &[
    "198.18.0.30",
    "198.18.0.31",
    "198.18.0.32",
    "198.18.0.33",
    "198.18.0.34",
];
/// A host of P that answers ping and has a web console on 8443 (an HMI).
pub const TLS_PORT_HOST: (&str, u16) = ("198.18.0.31", 8443);
/// Hosts of T that drop ICMP: the first accepts TCP on 502 (Modbus), the second refuses.
pub const TCP_ONLY: &[&str] = &["198.18.3.10", "198.18.3.11"];
/// The far plant (Q), reachable from C only: an SNMP device and a ping-only host.
pub const FAR_SNMP: &[SnmpDevice] = &[SnmpDevice {
    address: "198.18.2.10",
    recording: "UPS/eaton-93e-80",
    community: "public",
    template: "eaton-ups",
}];
pub const FAR_PING_ONLY: &[&str] = &["198.18.2.11"];
/// The server's address on the S–C link, which the remote collector reaches it at.
pub const SERVER_ADDRESS: &str = "198.18.1.1";
/// Names the plant's hosts file gives (reverse DNS).
pub const HOST_NAMES: &[(&str, &str)] = &[
    ("198.18.0.30", "press-line-3.plant.example"),
    ("198.18.0.10", "core-switch.plant.example"),
];

static NEXT: AtomicU32 = AtomicU32::new(0);

/// Runs snmpsim-command-responder with more open data files, every index loaded at start.
const BOOTSTRAP: &str = "\
import sys
from snmpsim import datafile
datafile.DataFile.max_queue_entries = 1024
_index_text = datafile.DataFile.index_text
def _index_and_open(self, *args, **kwargs):
    result = _index_text(self, *args, **kwargs)
    self.get_handles()
    return result
datafile.DataFile.index_text = _index_and_open
from snmpsim.commands.responder import main
sys.argv[0] = 'snmpsim-command-responder'
sys.exit(main())
";

/// A plant: its namespaces and the processes serving it, removed when dropped.
pub struct PlantNet {
    pub prefix: String,
    children: Vec<Child>,
    namespaces: Vec<String>,
    _dir: tempfile::TempDir,
}

impl PlantNet {
    /// The namespace of one part: `scan`, `plant`, `tcp`, `remote`, `far`.
    pub fn ns(prefix: &str, part: &str) -> String {
        format!("{prefix}-{part}")
    }

    /// Builds the plant the tests use and starts its devices; panics (the test fails) when it
    /// cannot.
    pub fn up() -> PlantNet {
        let snmp: Vec<SnmpDevice<String>> = PLANT_SNMP.iter().map(SnmpDevice::owned).collect();
        let ping: Vec<String> = PLANT_PING_ONLY.iter().map(|a| (*a).to_owned()).collect();
        PlantNet::with(&snmp, &ping)
    }

    /// A plant whose P holds `snmp` devices and `ping_only` hosts (T, C and Q as in [`up`]).
    pub fn with(snmp: &[SnmpDevice<String>], ping_only: &[String]) -> PlantNet {
        let prefix = format!(
            "pwt{}x{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let dir = tempfile::tempdir().unwrap();
        let mut net = PlantNet {
            prefix: prefix.clone(),
            children: vec![],
            namespaces: vec![],
            _dir: dir,
        };
        let ns = |part: &str| PlantNet::ns(&prefix, part);
        for part in ["scan", "plant", "tcp", "remote", "far"] {
            ip(&["netns", "add", &ns(part)]);
            net.namespaces.push(ns(part));
            ip(&["-n", &ns(part), "link", "set", "lo", "up"]);
            sysctl(&ns(part), "net.ipv6.conf.all.disable_ipv6=1");
        }
        // The veth pairs are created inside S (or C): never in the host's namespace.
        link(&ns("scan"), "s0", "198.18.0.1/24", &ns("plant"), "p0", None);
        link(&ns("scan"), "s2", "198.18.3.1/24", &ns("tcp"), "t0", None);
        link(
            &ns("scan"),
            "s1",
            "198.18.1.1/30",
            &ns("remote"),
            "c0",
            Some("198.18.1.2/30"),
        );
        link(&ns("remote"), "c1", "198.18.2.1/24", &ns("far"), "q0", None);
        // One batch: a big plant has hundreds of addresses.
        let batch: String = snmp
            .iter()
            .map(|d| d.address.as_str())
            .chain(ping_only.iter().map(String::as_str))
            .map(|address| format!("addr add {address}/24 dev p0\n"))
            .collect();
        let mut add = Command::new("ip")
            .args(["-n", &ns("plant"), "-batch", "-"])
            .stdin(Stdio::piped())
            .spawn()
            .unwrap();
        std::io::Write::write_all(&mut add.stdin.take().unwrap(), batch.as_bytes()).unwrap();
        assert!(
            add.wait().unwrap().success(),
            "adding the plant's addresses"
        );
        for address in TCP_ONLY {
            ip(&[
                "-n",
                &ns("tcp"),
                "addr",
                "add",
                &format!("{address}/24"),
                "dev",
                "t0",
            ]);
        }
        for address in FAR_SNMP
            .iter()
            .map(|d| d.address)
            .chain(FAR_PING_ONLY.iter().copied())
        {
            ip(&[
                "-n",
                &ns("far"),
                "addr",
                "add",
                &format!("{address}/24"),
                "dev",
                "q0",
            ]);
        }
        // T's hosts drop ICMP echo; C does not forward between S and Q.
        sysctl(&ns("tcp"), "net.ipv4.icmp_echo_ignore_all=1");
        sysctl(&ns("remote"), "net.ipv4.ip_forward=0");
        // One shared kernel answers for every plant host: lift the per-peer ICMP error limit.
        sysctl(&ns("plant"), "net.ipv4.icmp_ratelimit=0");
        check_isolation(
            &ns("scan"),
            &["198.18.0.0/24", "198.18.1.0/30", "198.18.3.0/24"],
        );
        check_isolation(&ns("remote"), &["198.18.1.0/30", "198.18.2.0/24"]);
        // Resolver files `ip netns exec` mounts: names from a hosts file, DNS to loopback only.
        for part in ["scan", "remote"] {
            let etc = PathBuf::from("/etc/netns").join(ns(part));
            std::fs::create_dir_all(&etc).unwrap();
            let mut hosts = String::from("127.0.0.1 localhost\n");
            for (address, name) in HOST_NAMES {
                hosts.push_str(&format!("{address} {name}\n"));
            }
            std::fs::write(etc.join("hosts"), hosts).unwrap();
            std::fs::write(
                etc.join("resolv.conf"),
                "nameserver 127.0.0.1\noptions timeout:1 attempts:1\n",
            )
            .unwrap();
        }
        net.listen(&ns("tcp"), TCP_ONLY[0], 502);
        net.listen(&ns("plant"), TLS_PORT_HOST.0, TLS_PORT_HOST.1);
        let data = net._dir.path().to_owned();
        net.snmpsim(&ns("plant"), snmp, &data.join("plant"));
        let far: Vec<SnmpDevice<String>> = FAR_SNMP.iter().map(SnmpDevice::owned).collect();
        net.snmpsim(&ns("far"), &far, &data.join("far"));
        net
    }

    /// A TCP port in `namespace` that accepts (and closes) every connection.
    fn listen(&mut self, namespace: &str, address: &str, port: u16) {
        let child = Command::new("ip")
            .args(["netns", "exec", namespace, "python3", "-c"])
            .arg(format!(
                "import socket, time\ns = socket.socket()\ns.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\ns.bind(('{address}', {port}))\ns.listen(64)\nwhile True:\n    c, _ = s.accept()\n    c.close()\n"
            ))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        self.children.push(child);
    }

    /// One snmpsim process in `namespace` with an engine per device.
    fn snmpsim(&mut self, namespace: &str, devices: &[SnmpDevice<String>], dir: &Path) {
        let mut args = String::new();
        for device in devices {
            let data = dir.join(&device.address);
            std::fs::create_dir_all(&data).unwrap();
            crate::snmp::stage_recording(device.recording, &data, device.community);
            args.push_str(&format!(
                "--v3-engine-id=auto --data-dir={} --agent-udpv4-endpoint={}:161\n",
                data.display(),
                device.address
            ));
        }
        let args_file = dir.join("args");
        std::fs::write(&args_file, args).unwrap();
        // Index files are kept between runs: snmpsim indexes a recording once.
        let cache = std::env::temp_dir().join("plantwatch-snmpsim-cache");
        std::fs::create_dir_all(&cache).unwrap();
        // snmpsim keeps at most 32 data files open (a FIFO): with more devices every request
        // re-reads an index and answers late. A bootstrap raises the limit and opens every
        // index at start (as ../shared/testbed/plantnet.sh does); the package is untouched.
        let bootstrap = dir.join("snmpsim-bootstrap.py");
        std::fs::write(&bootstrap, BOOTSTRAP).unwrap();
        let child = Command::new("ip")
            .args(["netns", "exec", namespace])
            // The python3 that has snmpsim (pip installed it for python3).
            .arg("python3")
            .arg(&bootstrap)
            .arg(format!("--args-from-file={}", args_file.display()))
            .arg(format!("--cache-dir={}", cache.display()))
            .arg("--log-level=error")
            .env("SNMPSIM_ALLOW_ROOT", "true")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("snmpsim.log")).unwrap())
            .spawn()
            .unwrap();
        self.children.push(child);
        // Ready when every engine answers sysName (v3 with its context).
        let deadline = Instant::now() + Duration::from_secs(180);
        for device in devices {
            loop {
                let mut get = Command::new("ip");
                get.args([
                    "netns", "exec", namespace, "snmpget", "-t", "1", "-r", "0", "-Oqv",
                ]);
                if device.community == "plant-v3" {
                    get.args([
                        "-v3",
                        "-u",
                        "simulator",
                        "-l",
                        "authPriv",
                        "-a",
                        "MD5",
                        "-A",
                        "auctoritas",
                        "-x",
                        "DES",
                        "-X",
                        "privatus",
                        "-n",
                        device.community,
                    ]);
                } else {
                    get.args(["-v2c", "-c", device.community]);
                }
                let answered = get
                    .args([device.address.as_str(), "1.3.6.1.2.1.1.5.0"])
                    .output()
                    .is_ok_and(|o| o.status.success());
                if answered {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "snmpsim did not answer for {}: {}",
                    device.address,
                    std::fs::read_to_string(dir.join("snmpsim.log")).unwrap_or_default()
                );
                std::thread::sleep(Duration::from_millis(300));
            }
        }
    }
}

impl SnmpDevice {
    /// The same device with an owned address.
    pub fn owned(&self) -> SnmpDevice<String> {
        SnmpDevice {
            address: self.address.to_owned(),
            recording: self.recording,
            community: self.community,
            template: self.template,
        }
    }
}

impl Drop for PlantNet {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
        for namespace in &self.namespaces {
            // Whatever a test left running in a namespace goes with it.
            if let Ok(out) = Command::new("ip")
                .args(["netns", "pids", namespace])
                .output()
            {
                for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                    let _ = Command::new("kill").args(["-KILL", pid]).status();
                }
            }
            let _ = Command::new("ip")
                .args(["netns", "del", namespace])
                .status();
            let _ = std::fs::remove_dir_all(PathBuf::from("/etc/netns").join(namespace));
        }
    }
}

fn ip(args: &[&str]) {
    let status = Command::new("ip").args(args).status().unwrap();
    assert!(status.success(), "ip {}", args.join(" "));
}

fn sysctl(namespace: &str, setting: &str) {
    let status = Command::new("ip")
        .args(["netns", "exec", namespace, "sysctl", "-q", "-w", setting])
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "sysctl {setting} in {namespace}");
}

/// A veth pair from `a` (created there) to `b`, with addresses, both ends up.
fn link(a: &str, a_if: &str, a_addr: &str, b: &str, b_if: &str, b_addr: Option<&str>) {
    ip(&[
        "-n", a, "link", "add", a_if, "type", "veth", "peer", "name", b_if, "netns", b,
    ]);
    ip(&["-n", a, "addr", "add", a_addr, "dev", a_if]);
    if let Some(b_addr) = b_addr {
        ip(&["-n", b, "addr", "add", b_addr, "dev", b_if]);
    }
    ip(&["-n", a, "link", "set", a_if, "up"]);
    ip(&["-n", b, "link", "set", b_if, "up"]);
}

/// Panics unless `namespace` routes exactly `subnets` (no default route, nothing else).
fn check_isolation(namespace: &str, subnets: &[&str]) {
    let out = Command::new("ip")
        .args(["-n", namespace, "-4", "route", "show"])
        .output()
        .unwrap();
    let routes = String::from_utf8_lossy(&out.stdout);
    let mut found: Vec<&str> = routes
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    found.sort_unstable();
    let mut wanted = subnets.to_vec();
    wanted.sort_unstable();
    assert_eq!(found, wanted, "{namespace} is not isolated:\n{routes}");
}

/// Runs the calling test's body inside the scan namespace of a new plant. Returns `Some(prefix)`
/// in the re-run inside (run the body), `None` in the outer run after the inner one passed.
pub fn run_inside(test: &str) -> Option<String> {
    rerun_inside(
        PlantNet::up,
        &["--exact", test, "--nocapture", "--test-threads", "1"],
    )
}

/// Re-runs this program with `args` inside the scan namespace of the plant `build` makes.
/// Returns `Some(prefix)` in the re-run inside, `None` in the outer run once the inner one
/// passed.
pub fn rerun_inside(build: impl FnOnce() -> PlantNet, args: &[&str]) -> Option<String> {
    if let Ok(prefix) = std::env::var(INSIDE) {
        return Some(prefix);
    }
    assert!(
        is_root(),
        "the simulated plant needs network namespaces: run as root (CI does)"
    );
    let plant = build();
    let exe = std::env::current_exe().unwrap();
    let status = Command::new("ip")
        .args(["netns", "exec", &PlantNet::ns(&plant.prefix, "scan")])
        .arg(exe)
        .args(args)
        .env(INSIDE, &plant.prefix)
        .status()
        .unwrap();
    drop(plant);
    assert!(status.success(), "the run inside the plant network failed");
    None
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// `command`, run inside `namespace`.
pub fn in_namespace(namespace: &str, command: &Command) -> Command {
    let mut wrapped = Command::new("ip");
    wrapped
        .args(["netns", "exec", namespace])
        .arg(command.get_program())
        .args(command.get_args());
    for (key, value) in command.get_envs() {
        match value {
            Some(value) => wrapped.env(key, value),
            None => wrapped.env_remove(key),
        };
    }
    if let Some(dir) = command.get_current_dir() {
        wrapped.current_dir(dir);
    }
    wrapped
}
