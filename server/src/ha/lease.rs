//! The lease and the members' status files in the pair's shared directory.
//!
//! `lease.json` says who is active and in which term. Every change is a read-modify-write
//! under an exclusive `flock` of `lease.lock`, written to a temporary file, flushed and
//! renamed, so two servers never both take it and a crash leaves the old lease or the new.
//! Expiry is judged by the standby's own monotonic clock (the lease has not changed for 15 s),
//! never by comparing the two servers' wall clocks.

use std::path::{Path, PathBuf};

use plantwatch_shared::Fingerprint;
use plantwatch_shared::api::ha::HaRole;
use serde::{Deserialize, Serialize};

/// The lease of the pair.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    /// Raised by every takeover; a server acts only in the term it took.
    pub term: u64,
    /// The active server's name; `None` once it released the lease (a planned switch-over).
    pub holder: Option<String>,
    /// How many times the holder renewed it in this term: what the standby watches.
    pub renewals: u64,
    /// Wall-clock time of the last renewal (for people reading `ha status`, not for expiry).
    pub renewed_at_ms: u64,
    /// A planned switch-over asked for: the name of the server to hand over to, or `*` for
    /// whichever standby is there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handover_to: Option<String>,
}

/// What a server of the pair writes about itself every second (`members/NAME.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Member {
    pub name: String,
    pub url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<Fingerprint>,
    pub role: HaRole,
    pub term: u64,
    pub updated_at_ms: u64,
    /// A standby: the replication beacon its copy holds (the active writes one a second).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub beacon_seq: Option<u64>,
    /// A standby: how old the newest beacon in its copy is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lag_ms: Option<u64>,
}

impl Member {
    /// Where clients reach this member.
    pub fn address(&self) -> plantwatch_shared::api::ha::ServerAddress {
        plantwatch_shared::api::ha::ServerAddress {
            url: self.url.clone(),
            fingerprint: self.fingerprint,
        }
    }
}

pub const LEASE_FILE: &str = "lease.json";
/// Marks a directory as a pair's, with the pair's id: written once when the pair is set up.
pub const PAIR_FILE: &str = "pair.json";
/// In each server's data directory: the id of the pair it belongs to.
pub const JOINED_FILE: &str = "ha-pair";
const LOCK_FILE: &str = "lease.lock";
const MEMBERS_DIR: &str = "members";

pub fn now_ms() -> u64 {
    crate::clock::unix_ms().max(0) as u64
}

/// Reads the lease; `None` before any server took one.
pub fn read(dir: &Path) -> anyhow::Result<Option<Lease>> {
    let path = dir.join(LEASE_FILE);
    match std::fs::read(&path) {
        Ok(bytes) => {
            Ok(Some(serde_json::from_slice(&bytes).map_err(|e| {
                anyhow::anyhow!("{} is damaged: {e}", path.display())
            })?))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(anyhow::anyhow!("reading {}: {e}", path.display())),
    }
}

/// The pair's id, or an error when `dir` is not (or no longer) the pair's directory: an
/// unmounted share shows an empty folder, in which no server may take a lease or write.
pub fn pair_id(dir: &Path) -> anyhow::Result<String> {
    let path = dir.join(PAIR_FILE);
    let text = std::fs::read_to_string(&path).map_err(|e| {
        anyhow::anyhow!(
            "{} is not the pair's shared directory ({}: {e}); is it mounted?",
            dir.display(),
            PAIR_FILE
        )
    })?;
    let value: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| anyhow::anyhow!("{} is damaged: {e}", path.display()))?;
    value["id"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| anyhow::anyhow!("{} names no pair id", path.display()))
}

/// What [`join`] found.
#[derive(Debug, PartialEq, Eq)]
pub enum Joined {
    /// The shared directory is the pair's this server belongs to (or now joined).
    Pair(String),
    /// This server belonged to a pair but the directory does not hold it (not mounted,
    /// wiped, or another pair's): it must not act until it does.
    Missing(String),
}

/// Checks the shared directory against this server's data directory. A server that never
/// belonged to a pair sets up an empty (or missing) shared directory as a new pair, or joins
/// the pair it finds; one that did only goes on with that same pair.
pub fn join(dir: &Path, data_dir: &Path) -> anyhow::Result<Joined> {
    use std::os::unix::fs::PermissionsExt as _;
    let joined_path = data_dir.join(JOINED_FILE);
    let joined = std::fs::read_to_string(&joined_path)
        .ok()
        .map(|t| t.trim().to_owned());
    match (pair_id(dir), joined) {
        (Ok(id), Some(mine)) if id == mine => Ok(Joined::Pair(id)),
        (Ok(id), Some(mine)) => Ok(Joined::Missing(format!(
            "{} belongs to pair {id}, this server to pair {mine}",
            dir.display()
        ))),
        (Ok(id), None) => {
            write_atomically(&joined_path, format!("{id}\n").as_bytes())?;
            Ok(Joined::Pair(id))
        }
        (Err(error), Some(_)) => Ok(Joined::Missing(format!("{error:#}"))),
        (Err(_), None) => {
            if !dir.exists() {
                std::fs::create_dir_all(dir)
                    .map_err(|e| anyhow::anyhow!("creating {}: {e}", dir.display()))?;
                std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
                    .map_err(|e| anyhow::anyhow!("restricting {}: {e}", dir.display()))?;
            }
            if std::fs::read_dir(dir)
                .map(|mut d| d.next().is_some())
                .unwrap_or(true)
            {
                anyhow::bail!(
                    "{} is neither empty nor a pair's shared directory (no {PAIR_FILE})",
                    dir.display()
                );
            }
            // Two servers setting up at once: the one whose marker lands first wins.
            let id = hex_id();
            let marker = serde_json::json!({ "id": id, "created_at_ms": now_ms() });
            let temporary = dir.join(format!("{PAIR_FILE}.{id}"));
            std::fs::write(&temporary, marker.to_string())
                .map_err(|e| anyhow::anyhow!("writing {}: {e}", temporary.display()))?;
            let claimed = std::fs::hard_link(&temporary, dir.join(PAIR_FILE)).is_ok();
            let _ = std::fs::remove_file(&temporary);
            let id = if claimed { id } else { pair_id(dir)? };
            write_atomically(&joined_path, format!("{id}\n").as_bytes())?;
            Ok(Joined::Pair(id))
        }
    }
}

fn hex_id() -> String {
    rand::random::<[u8; 8]>()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Reads the lease under the lock and lets `change` decide: `Some(lease)` is written.
/// Returns what `change` returned besides. Refused when `dir` is not the pair's.
pub fn update<T>(
    dir: &Path,
    change: impl FnOnce(Option<&Lease>) -> (Option<Lease>, T),
) -> anyhow::Result<T> {
    pair_id(dir)?;
    let lock_path = dir.join(LOCK_FILE);
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|e| anyhow::anyhow!("opening {}: {e}", lock_path.display()))?;
    lock.lock()
        .map_err(|e| anyhow::anyhow!("locking {}: {e}", lock_path.display()))?;
    let current = read(dir)?;
    let (new, answer) = change(current.as_ref());
    if let Some(new) = new {
        write_atomically(&dir.join(LEASE_FILE), &serde_json::to_vec_pretty(&new)?)?;
    }
    drop(lock);
    Ok(answer)
}

/// Writes `bytes` to `path` privately (0600) and atomically: the daemons' own writer.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    Ok(plantwatch_shared::daemon::write_private(path, bytes)?)
}

/// Writes this server's status file (only into the pair's directory).
pub fn write_member(dir: &Path, member: &Member) -> anyhow::Result<()> {
    pair_id(dir)?;
    let members = dir.join(MEMBERS_DIR);
    std::fs::create_dir_all(&members)
        .map_err(|e| anyhow::anyhow!("creating {}: {e}", members.display()))?;
    write_atomically(
        &member_path(dir, &member.name),
        &serde_json::to_vec_pretty(member)?,
    )
}

fn member_path(dir: &Path, name: &str) -> PathBuf {
    dir.join(MEMBERS_DIR).join(format!("{name}.json"))
}

/// Every member's last status, by name.
pub fn members(dir: &Path) -> Vec<Member> {
    let mut members: Vec<Member> = std::fs::read_dir(dir.join(MEMBERS_DIR))
        .into_iter()
        .flatten()
        .flatten()
        .filter(|entry| entry.path().extension().is_some_and(|e| e == "json"))
        .filter_map(|entry| std::fs::read(entry.path()).ok())
        .filter_map(|bytes| serde_json::from_slice(&bytes).ok())
        .collect();
    members.sort_by(|a, b| a.name.cmp(&b.name));
    members
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_one_of_two_racing_servers_takes_a_free_lease() {
        let dir = tempfile::tempdir().unwrap();
        let data = tempfile::tempdir().unwrap();
        join(dir.path(), data.path()).unwrap();
        let take = |name: &'static str, dir: PathBuf| {
            std::thread::spawn(move || {
                update(&dir, |current| match current {
                    None => (
                        Some(Lease {
                            term: 1,
                            holder: Some(name.into()),
                            renewals: 0,
                            renewed_at_ms: now_ms(),
                            handover_to: None,
                        }),
                        true,
                    ),
                    Some(_) => (None, false),
                })
                .unwrap()
            })
        };
        let (a, b) = (
            take("a", dir.path().to_owned()),
            take("b", dir.path().to_owned()),
        );
        let (a, b) = (a.join().unwrap(), b.join().unwrap());
        assert!(a ^ b, "exactly one took it: a {a}, b {b}");
        let lease = read(dir.path()).unwrap().unwrap();
        assert_eq!(lease.holder.as_deref(), Some(if a { "a" } else { "b" }));
        assert_eq!(lease.term, 1);
    }

    #[test]
    fn members_round_trip_and_a_damaged_lease_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let data = tempfile::tempdir().unwrap();
        join(dir.path(), data.path()).unwrap();
        let member = Member {
            name: "plant-b".into(),
            url: "https://127.0.0.1:8443".into(),
            fingerprint: None,
            role: HaRole::Standby,
            term: 3,
            updated_at_ms: 5,
            beacon_seq: Some(9),
            lag_ms: Some(800),
        };
        write_member(dir.path(), &member).unwrap();
        assert_eq!(members(dir.path()), vec![member]);
        std::fs::write(dir.path().join(LEASE_FILE), b"{not json").unwrap();
        let error = read(dir.path()).unwrap_err().to_string();
        assert!(error.contains("damaged"), "{error}");
    }
}

#[cfg(test)]
mod joining {
    use super::*;

    #[test]
    fn an_unmounted_share_is_never_taken_for_a_new_pair() {
        let share = tempfile::tempdir().unwrap();
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let dir = share.path().join("pair");
        // The first server sets the pair up; the second joins it.
        let Joined::Pair(id) = join(&dir, a.path()).unwrap() else {
            panic!("a new pair")
        };
        assert_eq!(join(&dir, b.path()).unwrap(), Joined::Pair(id.clone()));
        // The share is unmounted: an empty folder. Neither may start a pair in it, and no
        // lease or status can be written there.
        std::fs::rename(&dir, share.path().join("elsewhere")).unwrap();
        std::fs::create_dir(&dir).unwrap();
        for data in [a.path(), b.path()] {
            assert!(matches!(join(&dir, data).unwrap(), Joined::Missing(_)));
        }
        let refused = update(&dir, |_| (None, ())).unwrap_err().to_string();
        assert!(refused.contains("is it mounted"), "{refused}");
        assert!(
            std::fs::read_dir(&dir).unwrap().next().is_none(),
            "nothing written"
        );
        // Mounted again: both go on with their pair.
        std::fs::remove_dir(&dir).unwrap();
        std::fs::rename(share.path().join("elsewhere"), &dir).unwrap();
        assert_eq!(join(&dir, a.path()).unwrap(), Joined::Pair(id));
        // Another pair's directory is refused too; a folder with foreign files is no new pair.
        let other = tempfile::tempdir().unwrap();
        join(other.path(), tempfile::tempdir().unwrap().path()).unwrap();
        assert!(matches!(
            join(other.path(), a.path()).unwrap(),
            Joined::Missing(_)
        ));
        let busy = tempfile::tempdir().unwrap();
        std::fs::write(busy.path().join("notes.txt"), b"x").unwrap();
        assert!(join(busy.path(), tempfile::tempdir().unwrap().path()).is_err());
    }
}
