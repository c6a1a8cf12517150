//! Litestream, run as a child process: `replicate` on the active, `restore -f` (follow) on
//! the standby. Each term replicates to its own folder of the shared directory
//! (`replica/TERM/DB`), so a new active never writes into its predecessor's replica.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context as _, bail};
use tokio::process::{Child, Command};

/// How often Litestream ships the WAL (and a follower polls the replica).
pub const SYNC_INTERVAL: &str = "500ms";
/// File in the data directory with the PIDs of the Litestream processes this server started,
/// so a server restarted after a crash stops the ones it left behind.
const PIDS_FILE: &str = "litestream.pids";

/// The folder of one term's replica.
pub fn replica_dir(ha_dir: &Path, term: u64) -> PathBuf {
    ha_dir.join("replica").join(term.to_string())
}

fn replica_url(ha_dir: &Path, term: u64, db: &str) -> String {
    format!("file://{}", replica_dir(ha_dir, term).join(db).display())
}

/// Passes Litestream's output into this server's log: its warnings and errors as warnings,
/// the rest (a line per applied change, twice a second) at debug level.
fn relay(child: &mut Child) {
    use tokio::io::AsyncBufReadExt as _;
    fn lines<R: tokio::io::AsyncRead + Unpin + Send + 'static>(from: Option<R>) {
        let Some(from) = from else {
            return;
        };
        tokio::spawn(async move {
            let mut lines = tokio::io::BufReader::new(from).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                if line.contains("level=ERROR")
                    || line.contains("level=WARN")
                    || line.starts_with("Error")
                {
                    tracing::warn!(target: "litestream", "{line}");
                } else {
                    tracing::debug!(target: "litestream", "{line}");
                }
            }
        });
    }
    lines(child.stdout.take());
    lines(child.stderr.take());
}

fn spawn(binary: &Path, args: &[String], data_dir: &Path) -> anyhow::Result<Child> {
    let mut child = Command::new(binary)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| {
            format!(
                "starting {} (install Litestream, or set ha_litestream to its path)",
                binary.display()
            )
        })?;
    relay(&mut child);
    if let Some(pid) = child.id() {
        let path = data_dir.join(PIDS_FILE);
        let mut pids = std::fs::read_to_string(&path).unwrap_or_default();
        pids.push_str(&format!("{pid}\n"));
        let _ = std::fs::write(&path, pids);
    }
    Ok(child)
}

/// Stops Litestream processes a previous run of this server left behind (it was killed).
pub fn stop_leftovers(data_dir: &Path) {
    let path = data_dir.join(PIDS_FILE);
    let Ok(text) = std::fs::read_to_string(&path) else {
        return;
    };
    for pid in text.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
        let Some(pid) = rustix::process::Pid::from_raw(pid) else {
            continue;
        };
        // Only ours: a reused PID of another program is left alone.
        let ours = std::fs::read_to_string(format!("/proc/{}/cmdline", pid.as_raw_nonzero()))
            .is_ok_and(|cmdline| {
                cmdline.contains("litestream") && cmdline.contains(&*data_dir.to_string_lossy())
            });
        if ours {
            tracing::info!(
                pid = pid.as_raw_nonzero(),
                "Stopping a Litestream process left by an earlier run."
            );
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
        }
    }
    let _ = std::fs::remove_file(&path);
}

/// Asks `child` to stop (SIGTERM: Litestream finishes its current step), then kills it after
/// `patience`.
async fn stop_child(mut child: Child, patience: Duration) {
    if let Some(pid) = child
        .id()
        .and_then(|pid| rustix::process::Pid::from_raw(pid as i32))
    {
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
    }
    if tokio::time::timeout(patience, child.wait()).await.is_err() {
        let _ = child.kill().await;
    }
}

/// `litestream replicate` of the active's databases into this term's replica.
pub struct Replicator {
    child: Child,
}

impl Replicator {
    pub fn start(
        binary: &Path,
        data_dir: &Path,
        ha_dir: &Path,
        term: u64,
        dbs: &[&str],
    ) -> anyhow::Result<Replicator> {
        let mut yaml = String::from("dbs:\n");
        for db in dbs {
            // A new term replicates from scratch: Litestream's position in the previous
            // term's replica means nothing in this one.
            let _ = std::fs::remove_dir_all(data_dir.join(format!(".{db}-litestream")));
            yaml.push_str(&format!(
                "  - path: {}\n    replica:\n      url: {}\n      sync-interval: {SYNC_INTERVAL}\n",
                data_dir.join(db).display(),
                replica_url(ha_dir, term, db),
            ));
        }
        let config = data_dir.join("litestream.yml");
        super::lease::write_atomically(&config, yaml.as_bytes())?;
        let child = spawn(
            binary,
            &[
                "replicate".into(),
                "-config".into(),
                config.display().to_string(),
            ],
            data_dir,
        )?;
        Ok(Replicator { child })
    }

    /// Whether Litestream still runs.
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Stops replicating; SIGTERM lets Litestream ship what it has read of the WAL first.
    pub async fn stop(self) {
        stop_child(self.child, Duration::from_secs(10)).await;
    }
}

/// One last sync of every database into this term's replica (`replicate -once`), after the
/// server has closed them: a planned switch-over hands over everything.
pub async fn sync_once(binary: &Path, data_dir: &Path) -> anyhow::Result<()> {
    let config = data_dir.join("litestream.yml");
    let mut command = Command::new(binary);
    command.args(["replicate", "-once", "-config"]).arg(&config);
    run_once(command, binary, "replicate -once").await
}

/// `litestream restore -f`: the standby's live copy of each database, in its data directory.
pub struct Follower {
    children: Vec<Child>,
    pub term: u64,
}

impl Follower {
    pub fn start(
        binary: &Path,
        data_dir: &Path,
        ha_dir: &Path,
        term: u64,
        dbs: &[&str],
        fresh: bool,
    ) -> anyhow::Result<Follower> {
        let mut children = Vec::new();
        for db in dbs {
            let output = data_dir.join(db);
            if fresh {
                // Following a term's replica from its start: this server's own copy (from an
                // earlier term, or from when it was active) is replaced; Litestream follows
                // only into a database it restored itself.
                for suffix in ["", "-wal", "-shm", "-txid"] {
                    let path = data_dir.join(format!("{db}{suffix}"));
                    match std::fs::remove_file(&path) {
                        Ok(()) => {}
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                        Err(e) => bail!("removing {}: {e}", path.display()),
                    }
                }
            }
            children.push(spawn(
                binary,
                &[
                    "restore".into(),
                    "-f".into(),
                    "-follow-interval".into(),
                    SYNC_INTERVAL.into(),
                    "-force".into(),
                    "-o".into(),
                    output.display().to_string(),
                    replica_url(ha_dir, term, db),
                ],
                data_dir,
            )?);
        }
        Ok(Follower { children, term })
    }

    /// Whether every follower still runs (one stops when the replica does not exist yet).
    pub fn alive(&mut self) -> bool {
        self.children
            .iter_mut()
            .all(|child| matches!(child.try_wait(), Ok(None)))
    }

    pub async fn stop(self) {
        for child in self.children {
            stop_child(child, Duration::from_secs(5)).await;
        }
    }
}

/// The transaction a follower has applied to `db` (Litestream's `DB-txid` file).
pub fn applied_txid(data_dir: &Path, db: &str) -> Option<u64> {
    let text = std::fs::read_to_string(data_dir.join(format!("{db}-txid"))).ok()?;
    u64::from_str_radix(text.trim(), 16).ok()
}

/// The newest transaction in a term's replica of `db`: the largest `MAX` of its
/// `ltx/LEVEL/MIN-MAX.ltx` files.
pub fn replica_txid(ha_dir: &Path, term: u64, db: &str) -> Option<u64> {
    let ltx = replica_dir(ha_dir, term).join(db).join("ltx");
    std::fs::read_dir(ltx)
        .ok()?
        .flatten()
        .filter_map(|level| std::fs::read_dir(level.path()).ok())
        .flatten()
        .flatten()
        .filter_map(|file| {
            let name = file.file_name().into_string().ok()?;
            let (_, max) = name.strip_suffix(".ltx")?.split_once('-')?;
            u64::from_str_radix(max, 16).ok()
        })
        .max()
}

/// Restores `db` from a term's replica into the data directory, replacing what is there.
pub async fn restore(
    binary: &Path,
    data_dir: &Path,
    ha_dir: &Path,
    term: u64,
    db: &str,
) -> anyhow::Result<()> {
    let mut command = Command::new(binary);
    command
        .args(["restore", "-force", "-o"])
        .arg(data_dir.join(db))
        .arg(replica_url(ha_dir, term, db));
    run_once(command, binary, "restore").await
}

/// Runs a one-shot Litestream command; its output is the error when it fails.
async fn run_once(mut command: Command, binary: &Path, what: &str) -> anyhow::Result<()> {
    let output = command
        .stdin(Stdio::null())
        .output()
        .await
        .with_context(|| format!("running {}", binary.display()))?;
    if !output.status.success() {
        let text = String::from_utf8_lossy(&output.stderr);
        let last = text
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("");
        bail!("litestream {what} failed ({}): {last}", output.status);
    }
    Ok(())
}
