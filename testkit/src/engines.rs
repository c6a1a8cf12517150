//! Metric engines from Debian's packages, for the remote-write tests and benchmark:
//! VictoriaMetrics (`victoria-metrics`) and Prometheus (`prometheus`, with its remote-write
//! receiver), each on a loopback port with a temporary data directory, stopped and restarted
//! on the same port and data like an operator would.

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Which engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EngineKind {
    VictoriaMetrics,
    Prometheus,
}

impl EngineKind {
    pub fn name(self) -> &'static str {
        match self {
            EngineKind::VictoriaMetrics => "victoria-metrics",
            EngineKind::Prometheus => "prometheus",
        }
    }
}

/// A running engine, killed when dropped.
pub struct Engine {
    pub kind: EngineKind,
    pub port: u16,
    child: Option<Child>,
    dir: tempfile::TempDir,
    /// Further command-line arguments.
    args: Vec<String>,
    /// Whether the engine serves HTTPS (set by `-tls` among `args`).
    tls: bool,
}

impl Engine {
    /// Starts `kind` on a free loopback port with an empty data directory and waits until it
    /// answers its readiness check.
    pub fn start(kind: EngineKind) -> Engine {
        Engine::start_with(kind, &[])
    }

    /// Starts `kind` with further arguments; with VictoriaMetrics' `-tls` the engine serves
    /// HTTPS and is taken as ready once its port accepts connections.
    pub fn start_with(kind: EngineKind, args: &[String]) -> Engine {
        let mut engine = Engine {
            kind,
            port: crate::free_port(),
            child: None,
            dir: tempfile::tempdir().unwrap(),
            args: args.to_vec(),
            tls: args.iter().any(|a| a == "-tls"),
        };
        engine.run();
        engine
    }

    /// `http(s)://127.0.0.1:port`: the query API's base.
    pub fn base_url(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://127.0.0.1:{}", self.port)
    }

    /// The remote-write endpoint.
    pub fn write_url(&self) -> String {
        format!("{}/api/v1/write", self.base_url())
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn run(&mut self) {
        let listen = format!("127.0.0.1:{}", self.port);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("engine.log"))
            .unwrap();
        let mut command = match self.kind {
            EngineKind::VictoriaMetrics => {
                let mut command = Command::new("victoria-metrics");
                command.args([
                    format!("-storageDataPath={}", self.data().display()),
                    format!("-httpListenAddr={listen}"),
                    "-retentionPeriod=100y".into(),
                    // Answer with what was just written, not 30 s behind.
                    "-search.latencyOffset=0s".into(),
                    "-search.disableCache".into(),
                    "-loggerLevel=ERROR".into(),
                ]);
                command
            }
            EngineKind::Prometheus => {
                let config = self.dir.path().join("prometheus.yml");
                std::fs::write(&config, "global:\n  scrape_interval: 1m\n").unwrap();
                let mut command = Command::new("prometheus");
                command.args([
                    format!("--config.file={}", config.display()),
                    format!("--storage.tsdb.path={}", self.data().display()),
                    format!("--web.listen-address={listen}"),
                    "--web.enable-remote-write-receiver".into(),
                    "--log.level=error".into(),
                ]);
                command
            }
        };
        let child = command
            .args(&self.args)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "{} (Debian package {0}) is needed: .ci/run installs it ({e})",
                    self.kind.name()
                )
            });
        self.child = Some(child);
        let ready = match self.kind {
            EngineKind::VictoriaMetrics => "/health",
            EngineKind::Prometheus => "/-/ready",
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        let up = |port| {
            if self.tls {
                TcpStream::connect(("127.0.0.1", port))
                    .is_ok()
                    .then_some(200)
            } else {
                get_status(port, ready)
            }
        };
        while up(self.port) != Some(200) {
            if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
                panic!("{} exited with {status}: {}", self.kind.name(), self.log());
            }
            assert!(
                Instant::now() < deadline,
                "{} did not become ready: {}",
                self.kind.name(),
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The engine's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("engine.log")).unwrap_or_default()
    }

    /// Stops the engine with SIGTERM (it flushes what it holds) and waits for it.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            crate::terminate(&mut child);
        }
    }

    /// Starts the engine again on the same port and data.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "stop the engine first");
        self.run();
    }

    /// The engine's answer to the PromQL `query` evaluated at `time` (UNIX seconds), through
    /// its Prometheus API (`/api/v1/query`); fails unless it answers `success`.
    pub async fn query(&self, query: &str, time: &str) -> serde_json::Value {
        let answer: serde_json::Value = reqwest::Client::new()
            .get(format!("{}/api/v1/query", self.base_url()))
            .query(&[("query", query), ("time", time)])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(answer["status"], "success", "{query}: {answer}");
        answer
    }

    /// CPU time (user + system) the running engine has used, in seconds.
    pub fn cpu_seconds(&self) -> f64 {
        self.child.as_ref().map_or(0.0, |c| cpu_seconds(c.id()))
    }

    pub fn data_dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The status code of `GET path` on loopback `port`, or `None` when nothing answers.
pub fn get_status(port: u16, path: &str) -> Option<u16> {
    let mut stream =
        TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_secs(1)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).ok()?;
    std::str::from_utf8(&head[9..12]).ok()?.parse().ok()
}

/// CPU time (user + system) process `pid` has used, in seconds (Linux `/proc`; 100 ticks a
/// second, as on every Linux this runs on).
pub fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces) in parentheses.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 of the whole line: 12 and 13 after the name.
    (ticks(11) + ticks(12)) / 100.0
}
