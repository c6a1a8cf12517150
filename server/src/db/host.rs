//! The `node_host` table: an agent's inventory and what its node must run.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use plantwatch_shared::api::{HostInventory, HostWatch, NodeHost};
use rusqlite::{Connection, OptionalExtension as _};

use super::to_time;

/// A node's host details (empty lists and no inventory when none were ever set).
pub fn get(conn: &Connection, node_id: i64) -> rusqlite::Result<NodeHost> {
    let row = conn
        .prepare_cached(
            "SELECT inventory, inventory_at, required_services, watched_processes
               FROM node_host WHERE node_id = ?1",
        )?
        .query_row([node_id], |row| {
            let inventory: Option<String> = row.get(0)?;
            let at: Option<i64> = row.get(1)?;
            let services: String = row.get(2)?;
            let processes: String = row.get(3)?;
            Ok((inventory, at, services, processes))
        })
        .optional()?;
    let Some((inventory, at, services, processes)) = row else {
        return Ok(NodeHost {
            node_id,
            ..NodeHost::default()
        });
    };
    Ok(NodeHost {
        node_id,
        inventory: inventory.and_then(|json| serde_json::from_str(&json).ok()),
        inventory_at: at.map(to_time),
        watch: HostWatch {
            services: serde_json::from_str(&services).unwrap_or_default(),
            processes: serde_json::from_str(&processes).unwrap_or_default(),
        },
    })
}

/// Sets what node `node_id` must run.
pub fn set_watch(conn: &Connection, node_id: i64, watch: &HostWatch) -> rusqlite::Result<()> {
    let json = |names: &[String]| serde_json::to_string(names).unwrap_or_else(|_| "[]".into());
    conn.prepare_cached(
        "INSERT INTO node_host (node_id, required_services, watched_processes)
         VALUES (?1, ?2, ?3)
         ON CONFLICT (node_id) DO UPDATE
            SET required_services = excluded.required_services,
                watched_processes = excluded.watched_processes",
    )?
    .execute(rusqlite::params![
        node_id,
        json(&watch.services),
        json(&watch.processes)
    ])?;
    Ok(())
}

/// Keeps what the agent of node `node_id` reported at `now`.
pub fn set_inventory(
    conn: &Connection,
    node_id: i64,
    inventory: &HostInventory,
    now: i64,
) -> rusqlite::Result<()> {
    let json = serde_json::to_string(inventory).unwrap_or_else(|_| "{}".into());
    conn.prepare_cached(
        "INSERT INTO node_host (node_id, inventory, inventory_at) VALUES (?1, ?2, ?3)
         ON CONFLICT (node_id) DO UPDATE
            SET inventory = excluded.inventory, inventory_at = excluded.inventory_at",
    )?
    .execute(rusqlite::params![node_id, json, now])?;
    Ok(())
}

/// The processes node `node_id` watches.
pub fn watched_processes(conn: &Connection, node_id: i64) -> rusqlite::Result<Vec<String>> {
    let json: Option<String> = conn
        .prepare_cached("SELECT watched_processes FROM node_host WHERE node_id = ?1")?
        .query_row([node_id], |row| row.get(0))
        .optional()?;
    Ok(json
        .and_then(|j| serde_json::from_str(&j).ok())
        .unwrap_or_default())
}

/// Every node's required services (nodes with none left out).
pub fn required_services(conn: &Connection) -> rusqlite::Result<HashMap<i64, Vec<String>>> {
    let mut statement = conn.prepare_cached(
        "SELECT node_id, required_services FROM node_host WHERE required_services != '[]'",
    )?;
    let rows = statement.query_map([], |row| {
        Ok((row.get::<_, i64>(0)?, row.get::<_, String>(1)?))
    })?;
    let mut out = HashMap::new();
    for row in rows {
        let (id, json) = row?;
        out.insert(id, serde_json::from_str(&json).unwrap_or_default());
    }
    Ok(out)
}

/// Process names, shared between the cache and the answers.
pub type Names = Arc<[String]>;

/// How long a node's watched processes are answered from memory.
const WATCH_TTL: Duration = Duration::from_secs(60);

/// The processes each node watches, for the answer to every heartbeat (each agent every 10 s,
/// on a path otherwise answered from memory): read from the database at most once a minute per
/// node, and dropped at once when the node's lists are set.
#[derive(Debug, Default)]
pub struct WatchCache {
    /// Node → when read, the names.
    entries: Mutex<HashMap<i64, (Instant, Names)>>,
}

impl WatchCache {
    /// Node `node_id`'s processes if read less than a minute before `now`.
    pub fn get(&self, node_id: i64, now: Instant) -> Option<Arc<[String]>> {
        let entries = self.entries.lock().ok()?;
        let (at, names) = entries.get(&node_id)?;
        (now.duration_since(*at) < WATCH_TTL).then(|| names.clone())
    }

    /// Keeps what was read for node `node_id` at `now`.
    pub fn put(&self, node_id: i64, names: Arc<[String]>, now: Instant) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.retain(|_, (at, _)| now.duration_since(*at) < WATCH_TTL);
            entries.insert(node_id, (now, names));
        }
    }

    /// Forgets node `node_id`'s processes (its lists changed).
    pub fn forget(&self, node_id: i64) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.remove(&node_id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn watch_lists_and_inventory_are_kept_apart_and_go_with_the_node() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        std::fs::File::create(&path).unwrap();
        let conn = crate::db::open_connection(&path).unwrap();
        conn.execute(
            "INSERT INTO nodes (id, name, address, node_type, created_at, updated_at)
             VALUES (5, 'hmi-1', '10.0.0.5', 'server', 0, 0)",
            [],
        )
        .unwrap();
        assert_eq!(get(&conn, 5).unwrap().watch, HostWatch::default());
        let watch = HostWatch {
            services: vec!["Spooler".into()],
            processes: vec!["wincc.exe".into()],
        };
        set_watch(&conn, 5, &watch).unwrap();
        let inventory = HostInventory {
            os: Some("Microsoft Windows 10".into()),
            ..HostInventory::default()
        };
        set_inventory(&conn, 5, &inventory, 1_700_000_000).unwrap();
        let host = get(&conn, 5).unwrap();
        assert_eq!(host.watch, watch, "the inventory left the lists alone");
        assert_eq!(host.inventory, Some(inventory));
        assert_eq!(watched_processes(&conn, 5).unwrap(), ["wincc.exe"]);
        assert_eq!(required_services(&conn).unwrap()[&5], ["Spooler"]);
        conn.execute("DELETE FROM nodes WHERE id = 5", []).unwrap();
        assert!(required_services(&conn).unwrap().is_empty());
    }

    #[test]
    fn watched_processes_are_kept_a_minute_unless_forgotten() {
        let cache = WatchCache::default();
        let start = Instant::now();
        assert!(cache.get(5, start).is_none());
        cache.put(5, Arc::from(vec!["wincc.exe".to_owned()]), start);
        let later = start + Duration::from_secs(59);
        assert_eq!(cache.get(5, later).unwrap().as_ref(), ["wincc.exe"]);
        assert!(
            cache.get(5, start + WATCH_TTL).is_none(),
            "a minute old: read again"
        );
        cache.forget(5);
        assert!(
            cache.get(5, later).is_none(),
            "the lists changed: read again"
        );
    }
}
