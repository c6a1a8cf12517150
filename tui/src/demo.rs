//! `plantwatch demo`: a throwaway server on loopback with a generated admin, signed in, in the
//! console. It monitors this machine: the server's local collector pings it on 127.0.0.1 and a
//! `plantwatch-agent` (when one is next to this binary) sends its system metrics. The demo
//! plant's addresses are all on loopback (127.10.x.x), so the demo never sends to your network.
//! On exit the server and the agent stop and the folder is removed (unless `--keep`).

use std::fs::File;
use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use clap::Args;
use plantwatch_shared::{Client, Fingerprint, Secret};
use rand::Rng as _;
use rand::distr::Alphanumeric;

use crate::app::App;
use crate::profile::{Context, Profiles};
use crate::theme::Theme;

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Keep the demo server's folder (database, certificate, log) after exit.
    #[arg(long)]
    pub keep: bool,
    /// The plantwatch-server binary [default: the one next to this plantwatch].
    #[arg(long, value_name = "FILE")]
    pub server: Option<PathBuf>,
}

/// The demo's admin.
pub const DEMO_USER: &str = "admin";

/// A running demo server; stopping it (also on drop, so on panics too) cleans up.
pub struct DemoServer {
    child: Option<Child>,
    /// The demo's agent, once started.
    pub agent: Option<Child>,
    /// net-snmp's snmpd answering for the demo's SNMP devices, when it is installed.
    pub snmpd: Option<Child>,
    dir: Option<tempfile::TempDir>,
    keep: bool,
    pub url: String,
    pub fingerprint: Fingerprint,
    pub password: Secret,
}

/// `plantwatch-server` next to the running executable.
fn server_next_to_me() -> anyhow::Result<PathBuf> {
    let me = std::env::current_exe().context("finding this executable")?;
    let dir = me.parent().context("this executable has no folder")?;
    Ok(dir.join("plantwatch-server"))
}

/// Reads `log` until the server says where it listens: `(url, fingerprint)`.
fn wait_for_listen_line(log: &Path, child: &mut Child) -> anyhow::Result<(String, Fingerprint)> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let file = File::open(log).with_context(|| format!("reading {}", log.display()))?;
        for line in BufReader::new(file).lines() {
            let line = line?;
            if let Some(rest) = line.split("listening on ").nth(1)
                && let Some((url, tail)) = rest.split_once(" (fingerprint ")
            {
                let fingerprint = tail
                    .trim_end_matches(')')
                    .parse()
                    .map_err(|e| anyhow::anyhow!("{e}"))
                    .context("reading the demo server's fingerprint")?;
                return Ok((url.to_owned(), fingerprint));
            }
        }
        if let Some(status) = child.try_wait()? {
            let text = std::fs::read_to_string(log).unwrap_or_default();
            bail!("the demo server stopped at start ({status}):\n{text}");
        }
        if Instant::now() > deadline {
            bail!(
                "the demo server did not start within 60 s; its log is {}",
                log.display()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

impl DemoServer {
    /// Starts `server` (or the one next to this executable) in a new temporary folder.
    pub fn start(server: Option<PathBuf>, keep: bool) -> anyhow::Result<Self> {
        let binary = match server {
            Some(path) => path,
            None => server_next_to_me()?,
        };
        if !binary.is_file() {
            bail!(
                "{} not found: build it with `cargo build --release` (plantwatch demo runs the \
                 plantwatch-server next to it, or the one given with --server)",
                binary.display()
            );
        }
        let dir = tempfile::Builder::new()
            .prefix("plantwatch-demo-")
            .tempdir()
            .context("creating the demo folder")?;
        let password: String = rand::rng()
            .sample_iter(Alphanumeric)
            .take(20)
            .map(char::from)
            .collect();
        let log_path = dir.path().join("server.log");
        let log = File::create(&log_path).context("creating the demo server's log")?;
        let mut child = Command::new(&binary)
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .args(["--listen", "127.0.0.1:0"])
            .env("PLANTWATCH_ADMIN_USER", DEMO_USER)
            .env("PLANTWATCH_ADMIN_PASSWORD", &password)
            // Polling on (loopback only, see `seed`), and metrics on screen sooner.
            .env("PLANTWATCH_LOCAL_POLLING", "true")
            .env("PLANTWATCH_PUSH_INTERVAL_SECS", "5")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        let (url, fingerprint) = match wait_for_listen_line(&log_path, &mut child) {
            Ok(found) => found,
            Err(error) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(error);
            }
        };
        Ok(DemoServer {
            child: Some(child),
            agent: None,
            snmpd: None,
            dir: Some(dir),
            keep,
            url,
            fingerprint,
            password: password.into(),
        })
    }

    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_ref().map(tempfile::TempDir::path)
    }

    /// Stops the server (SIGTERM, then SIGKILL after 10 s) and removes or keeps the folder;
    /// returns where it was kept.
    pub fn stop(&mut self) -> Option<PathBuf> {
        let children = self.agent.take().into_iter().chain(self.snmpd.take());
        for mut child in children.chain(self.child.take()) {
            let pid = rustix::process::Pid::from_raw(i32::try_from(child.id()).unwrap_or(0));
            if let Some(pid) = pid {
                let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
            }
            let deadline = Instant::now() + Duration::from_secs(10);
            while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        let dir = self.dir.take()?;
        if self.keep { Some(dir.keep()) } else { None }
    }
}

impl Drop for DemoServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Runs the demo: server, sign-in, console, clean-up.
pub fn run(args: DemoArgs, theme: Theme) -> anyhow::Result<()> {
    crate::cli::require_terminal()?;
    eprintln!("Starting a demo plantwatch-server on loopback…");
    let mut server = DemoServer::start(args.server, args.keep)?;
    let dir = server.dir().map(Path::to_path_buf).unwrap_or_default();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let client = Client::new(&server.url, Some(server.fingerprint))?;
    let signed_in = runtime
        .block_on(client.login(DEMO_USER, server.password.expose()))
        .context("signing in to the demo server")?;
    let admin = client.with_token(signed_in.token.clone());
    let snmp = match start_snmpd(&dir) {
        Ok(found) => found,
        Err(error) => {
            eprintln!("The demo's devices do not answer SNMP: {error:#}");
            None
        }
    };
    let port = snmp.as_ref().map(|(_, port)| *port);
    server.snmpd = snmp.map(|(child, _)| child);
    runtime
        .block_on(seed(&admin, port))
        .context("adding the demo plant")?;
    match runtime.block_on(start_agent(&admin, &dir)) {
        Ok(agent) => server.agent = agent,
        Err(error) => eprintln!("The demo runs without an agent: {error:#}"),
    }
    drop(runtime);

    let mut profiles = Profiles::default();
    profiles.upsert_current(Context {
        name: "demo".into(),
        url: server.url.clone(),
        fingerprint: Some(server.fingerprint),
        username: Some(DEMO_USER.into()),
        token: Some(signed_in.token),
        alternates: Vec::new(),
    });
    // The demo's contexts live in its folder: the user's own configuration is not touched.
    let config = dir.join("client.toml");
    profiles.save(&config)?;
    let mut app = App::new(profiles, Some(config.clone()), theme);
    app.start(None);
    let result = crate::console::run(app);

    let password = server.password.clone();
    match server.stop() {
        Some(kept) => {
            let password_file = kept.join("admin-password");
            write_private(&password_file, password.expose())?;
            eprintln!(
                "Demo server stopped; its folder is kept: {}",
                kept.display()
            );
            eprintln!(
                "  restart it:   plantwatch-server --data-dir {} --listen 127.0.0.1:8443",
                kept.join("data").display()
            );
            eprintln!(
                "  sign in as {DEMO_USER}; the password is in {}",
                password_file.display()
            );
        }
        None => eprintln!("Demo server stopped and its folder removed."),
    }
    result
}

/// The demo devices net-snmp's snmpd answers for (each on its own loopback address).
const SNMP_DEVICES: [(&str, &str); 5] = [
    ("core-sw-1", "127.10.0.1"),
    ("hall-b-sw", "127.10.0.2"),
    ("historian", "127.10.0.20"),
    ("scada-01", "127.10.0.21"),
    ("nas-01", "127.10.0.30"),
];

/// Starts net-snmp's `snmpd` on a free UDP port of the demo devices' loopback addresses, with
/// the demo's community and SNMPv3 user; `None` when it is not installed.
fn start_snmpd(dir: &Path) -> anyhow::Result<Option<(Child, u16)>> {
    let Some(binary) = ["/usr/sbin/snmpd", "/usr/bin/snmpd", "/usr/local/sbin/snmpd"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
    else {
        return Ok(None);
    };
    let port = std::net::UdpSocket::bind("127.10.0.1:0")
        .and_then(|s| s.local_addr())
        .context("finding a free UDP port on 127.10.0.1")?
        .port();
    let addresses: Vec<String> = SNMP_DEVICES
        .iter()
        .map(|(_, ip)| format!("udp:{ip}:{port}"))
        .collect();
    let persist = dir.join("snmpd-state");
    std::fs::create_dir_all(&persist)?;
    let config = dir.join("snmpd.conf");
    std::fs::write(
        &config,
        format!(
            "agentaddress {}\n\
             rocommunity demo-community 127.0.0.0/8\n\
             createUser monitor SHA-256 demo-auth-pass\n\
             rouser monitor auth\n\
             sysLocation plantwatch demo (loopback)\n\
             sysContact plantwatch demo\n",
            addresses.join(",")
        ),
    )?;
    let child = Command::new(&binary)
        .args(["-f", "-C", "-Lf"])
        .arg(dir.join("snmpd.log"))
        .arg("-c")
        .arg(&config)
        .arg("-p")
        .arg(dir.join("snmpd.pid"))
        .env("SNMP_PERSISTENT_DIR", &persist)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| format!("starting {}", binary.display()))?;
    Ok(Some((child, port)))
}

/// The demo plant as CSV: every address on loopback; the devices snmpd answers for on its port
/// with their SNMP credentials, the others without (nothing would answer them); and one
/// explained problem — `hall-b-sw` polled with an outdated community.
fn demo_plant(snmp_port: Option<u16>) -> anyhow::Result<Vec<u8>> {
    let text = include_str!("../../docs/examples/demo-plant.csv")
        .replace(",10.10.", ",127.10.")
        .replace(",eng-ws-1.plant.example,", ",127.10.0.50,");
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let header = reader.headers()?.clone();
    let column = |name: &str| header.iter().position(|h| h == name).unwrap_or(usize::MAX);
    let (name_at, address_at, credentials_at, notes_at) = (
        column("name"),
        column("address"),
        column("credentials"),
        column("notes"),
    );
    let mut writer = csv::Writer::from_writer(Vec::new());
    writer.write_record(&header)?;
    for record in reader.records() {
        let mut row: Vec<String> = record?.iter().map(str::to_owned).collect();
        let name = row.get(name_at).cloned().unwrap_or_default();
        let served = SNMP_DEVICES.iter().any(|(device, _)| *device == name);
        if let (Some(port), true) = (snmp_port, served) {
            row[address_at] = format!("{}:{port}", row[address_at]);
            if name == "hall-b-sw" {
                row[credentials_at] = "old-ro".into();
                row[notes_at] = "Demo problem: polled with an outdated community, so SNMP \
                                 fails while ping answers. Fix it: plantwatch credentials \
                                 attach plant-ro hall-b-sw; plantwatch credentials detach \
                                 old-ro hall-b-sw"
                    .into();
            }
        } else {
            // Nothing answers SNMP there: no SNMP credentials, only pings (and Windows ones).
            let kept: Vec<&str> = row[credentials_at]
                .split(';')
                .filter(|c| *c == "windows-svc")
                .collect();
            row[credentials_at] = kept.join(";");
        }
        writer.write_record(&row)?;
    }
    Ok(writer.into_inner()?)
}

/// The demo plant: a few credentials and the nodes of `docs/examples/demo-plant.csv`, imported
/// the way a script would.
async fn seed(client: &Client, snmp_port: Option<u16>) -> anyhow::Result<()> {
    use plantwatch_shared::api::{
        CreateCredentialRequest, CredentialKind, CredentialParams, ImportQuery,
    };
    let secret = |field: &str, value: &str| {
        std::collections::BTreeMap::from([(field.to_owned(), value.into())])
    };
    let credentials = [
        CreateCredentialRequest {
            name: "plant-ro".into(),
            kind: CredentialKind::SnmpV2c,
            params: CredentialParams::default(),
            secrets: secret("community", "demo-community"),
            networks: vec!["127.0.0.0/8".into()],
        },
        CreateCredentialRequest {
            name: "plant-v3".into(),
            kind: CredentialKind::SnmpV3,
            params: CredentialParams {
                username: Some("monitor".into()),
                auth_protocol: "sha256".parse().ok(),
                ..CredentialParams::default()
            },
            secrets: secret("auth_password", "demo-auth-pass"),
            networks: vec!["127.0.0.0/8".into()],
        },
        CreateCredentialRequest {
            name: "windows-svc".into(),
            kind: CredentialKind::Windows,
            params: CredentialParams {
                username: Some("svc-monitor".into()),
                domain: Some("PLANT".into()),
                ..CredentialParams::default()
            },
            secrets: secret("password", "demo-windows-pass"),
            networks: vec!["127.0.0.0/8".into()],
        },
        CreateCredentialRequest {
            name: "old-ro".into(),
            kind: CredentialKind::SnmpV2c,
            params: CredentialParams::default(),
            secrets: secret("community", "outdated-community"),
            networks: vec!["127.0.0.0/8".into()],
        },
    ];
    for credential in &credentials {
        client.create_credential(credential).await?;
    }
    // The server's local collector polls what is assigned to it: keep every address on
    // loopback, where pings are answered and nothing leaves this machine.
    let plant = demo_plant(snmp_port)?;
    let report = client
        .import_nodes(plant, false, &ImportQuery::default())
        .await?;
    anyhow::ensure!(report.applied, "the demo plant was refused: {report:?}");
    // This machine, named like its host so that the demo's agent reports onto it.
    let host = this_host();
    client
        .create_node(&plantwatch_shared::api::NodeSpec {
            name: host,
            address: "127.0.0.1".into(),
            node_type: Some(plantwatch_shared::api::NodeType::Server),
            notes: Some("This machine: pinged by the server, metrics from the demo's agent".into()),
            ..Default::default()
        })
        .await?;
    Ok(())
}

/// This machine's host name, as the agent reports it.
fn this_host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .ok()
        .filter(|h| plantwatch_shared::rules::address_problem(h).is_none())
        .unwrap_or_else(|| "localhost".to_owned())
}

/// Enrolls and starts the `plantwatch-agent` next to this binary, approved at once; `None`
/// when there is none.
async fn start_agent(admin: &Client, dir: &Path) -> anyhow::Result<Option<Child>> {
    let me = std::env::current_exe().context("finding this executable")?;
    let binary = me.with_file_name("plantwatch-agent");
    if !binary.is_file() {
        return Ok(None);
    }
    let token = admin
        .create_token(&plantwatch_shared::api::CreateTokenRequest {
            name: "demo-agent".into(),
            ..Default::default()
        })
        .await?;
    let state = dir.join("agent");
    let mut enroll = Command::new(&binary)
        .arg("--state-dir")
        .arg(&state)
        .args(["enroll", "--name", "demo-agent"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| format!("starting {}", binary.display()))?;
    if let Some(mut stdin) = enroll.stdin.take() {
        use std::io::Write as _;
        writeln!(stdin, "{}", token.join_code.expose())?;
    }
    anyhow::ensure!(enroll.wait()?.success(), "the agent could not enroll");
    let pending = admin
        .list_components(&plantwatch_shared::api::ComponentQuery {
            kind: Some(plantwatch_shared::api::ComponentKind::Agent),
            ..Default::default()
        })
        .await?;
    // It reports onto this machine's node (made in `seed`), which the server also pings.
    let choice = plantwatch_shared::api::ApproveRequest {
        node: Some(this_host()),
        ..Default::default()
    };
    for agent in pending.items.iter().filter(|a| a.name == "demo-agent") {
        admin.approve_agent(agent.id, &choice).await?;
    }
    let log = File::create(dir.join("agent.log"))?;
    let child = Command::new(&binary)
        .arg("--state-dir")
        .arg(&state)
        .args(["run", "--interval", "5", "--push-interval", "5"])
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()?;
    Ok(Some(child))
}

/// Writes `text` to a new file only its owner can read.
fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    writeln!(file, "{text}").with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(csv: &[u8]) -> Vec<Vec<String>> {
        csv::Reader::from_reader(csv)
            .records()
            .map(|r| r.unwrap().iter().map(str::to_owned).collect())
            .collect()
    }

    #[test]
    fn without_snmpd_no_demo_node_has_an_snmp_credential() {
        for row in rows(&demo_plant(None).unwrap()) {
            let credentials = &row[6];
            assert!(
                credentials.is_empty() || credentials == "windows-svc",
                "{row:?}"
            );
            assert!(row[1].starts_with("127.10."), "{row:?}");
        }
    }

    #[test]
    fn with_snmpd_its_devices_are_polled_on_its_port_and_one_problem_is_explained() {
        let rows = rows(&demo_plant(Some(16161)).unwrap());
        let row = |name: &str| rows.iter().find(|r| r[0] == name).unwrap().clone();
        assert_eq!(row("core-sw-1")[1], "127.10.0.1:16161");
        assert_eq!(row("core-sw-1")[6], "plant-ro");
        assert_eq!(row("historian")[1], "127.10.0.20:16161");
        assert_eq!(row("hall-b-sw")[6], "old-ro");
        assert!(row("hall-b-sw")[9].contains("outdated community"));
        // Devices nothing answers SNMP for: pinged only.
        assert_eq!(row("press-plc-1")[6], "");
        assert_eq!(row("press-plc-1")[1], "127.10.2.11");
    }
}
