//! A vCenter for tests: govmomi's simulator (`vcsim`), built from Debian's source package
//! (`golang-github-vmware-govmomi-dev`, with `golang-go`; `scripts/test` installs both) around
//! `simulator.VPX()` by the small Go program in `testkit/vcsim/main.go`, offline, once per
//! machine (kept under the target folder), and started on a loopback port over TLS with one
//! user and password and the inventory asked for.

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::Duration;

/// The simulator's user and password.
pub const USER: &str = "plant";
pub const PASSWORD: &str = "plant-pass-1";

/// The inventory to simulate (govmomi's model: per datacenter, per cluster, per host).
#[derive(Debug, Clone)]
pub struct Model {
    pub datacenters: u32,
    pub clusters: u32,
    pub hosts_per_cluster: u32,
    pub standalone_hosts: u32,
    /// VMs per host and per cluster.
    pub vms: u32,
    pub datastores: u32,
    /// Sessions idle this long expire.
    pub session_idle: Option<Duration>,
    /// A VM (by name, such as `DC0_H0_VM0`) powered off from the start.
    pub powered_off: Option<String>,
}

impl Default for Model {
    /// govmomi's VPX(): one datacenter, one cluster of three hosts, one standalone host, two
    /// VMs per host and per cluster, one datastore.
    fn default() -> Self {
        Model {
            datacenters: 1,
            clusters: 1,
            hosts_per_cluster: 3,
            standalone_hosts: 1,
            vms: 2,
            datastores: 1,
            session_idle: None,
            powered_off: None,
        }
    }
}

/// A running simulator, killed when dropped.
pub struct Vcsim {
    child: Child,
    /// `https://127.0.0.1:PORT/sdk`.
    pub url: String,
    /// `127.0.0.1:PORT`: a node's address.
    pub address: String,
    /// Its certificate's fingerprint (`SHA256:AA:BB:…`, hex).
    pub fingerprint: String,
}

impl Drop for Vcsim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The built simulator and its certificate and key (one for every run, so a restarted
/// simulator presents the same), built at most once at a time.
pub fn binary() -> (PathBuf, PathBuf, PathBuf) {
    static BUILD: Mutex<()> = Mutex::new(());
    let _one = BUILD.lock().unwrap_or_else(|e| e.into_inner());
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let source = root.join("testkit/vcsim/main.go");
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    let dir = target.join("vcsim");
    let binary = dir.join("vcsim");
    let fresh = |b: &Path| -> bool {
        let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
        matches!((modified(b), modified(&source)), (Some(b), Some(s)) if b >= s)
    };
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    if fresh(&binary) && cert.exists() {
        return (binary, cert, key);
    }
    std::fs::create_dir_all(&dir).unwrap();
    let built = dir.join("vcsim.new");
    let output = Command::new("go")
        .args(["build", "-o"])
        .arg(&built)
        .arg(&source)
        .env("GOPATH", "/usr/share/gocode")
        .env("GO111MODULE", "off")
        .env("GOFLAGS", "")
        .env("GOPROXY", "off")
        .env("GOCACHE", dir.join("cache"))
        .output()
        .expect("go (Debian golang-go; scripts/test installs it)");
    assert!(
        output.status.success(),
        "building vcsim failed (needs Debian's golang-go and golang-github-vmware-govmomi-dev): {}",
        String::from_utf8_lossy(&output.stderr)
    );
    std::fs::rename(&built, &binary).unwrap();
    let made = Command::new(&binary)
        .arg("-cert")
        .arg(&cert)
        .arg("-key")
        .arg(&key)
        .arg("-only-cert")
        .status()
        .unwrap();
    assert!(made.success(), "vcsim could not make its certificate");
    (binary, cert, key)
}

impl Vcsim {
    /// A simulator of `model` on a free loopback port.
    pub fn start(model: &Model) -> Vcsim {
        Vcsim::start_on("127.0.0.1:0", model)
    }

    /// A simulator of `model` listening on `listen` (a restarted one: the same address).
    pub fn start_on(listen: &str, model: &Model) -> Vcsim {
        let (binary, cert, key) = binary();
        let mut command = Command::new(binary);
        command
            .arg("-cert")
            .arg(cert)
            .arg("-key")
            .arg(key)
            .arg("-l")
            .arg(listen)
            .args(["-username", USER, "-password", PASSWORD])
            .args(["-dc", &model.datacenters.to_string()])
            .args(["-cluster", &model.clusters.to_string()])
            .args(["-cluster-host", &model.hosts_per_cluster.to_string()])
            .args(["-host", &model.standalone_hosts.to_string()])
            .args(["-vm", &model.vms.to_string()])
            .args(["-ds", &model.datastores.to_string()]);
        if let Some(vm) = &model.powered_off {
            command.args(["-power-off", vm]);
        }
        if let Some(idle) = model.session_idle {
            command.args(["-idle", &format!("{}ms", idle.as_millis())]);
        }
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let mut parts = line.split_whitespace();
        let (Some(url), Some(fingerprint)) = (parts.next(), parts.next()) else {
            let _ = child.kill();
            panic!("vcsim did not start: {line:?}");
        };
        let address = url
            .trim_start_matches("https://")
            .trim_end_matches("/sdk")
            .to_owned();
        Vcsim {
            child,
            url: url.to_owned(),
            address,
            fingerprint: fingerprint.to_owned(),
        }
    }

    /// Kills the simulator (the vCenter goes away; its sessions with it).
    pub fn kill(mut self) -> String {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.address.clone()
    }
}
