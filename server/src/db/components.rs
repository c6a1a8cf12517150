//! The `remote_components` table (collectors and agents) and the stored collector
//! configurations they are compared with.

use plantwatch_shared::api::{CollectorReport, ComponentKind};
use rusqlite::{Connection, OptionalExtension as _, Row};

/// A component row with what lists show about it.
#[derive(Debug, Clone)]
pub struct ComponentRow {
    pub id: i64,
    pub kind: ComponentKind,
    pub name: String,
    pub machine_id: String,
    pub hostname: Option<String>,
    pub version: Option<String>,
    pub approved: bool,
    pub revoked: bool,
    pub is_local: bool,
    pub enrolled_with: Option<String>,
    pub node_id: Option<i64>,
    pub node: Option<String>,
    pub created_at: i64,
    pub approved_at: Option<i64>,
    pub last_seen_at: Option<i64>,
    pub target_count: i64,
    pub config_sha256: Option<String>,
    pub reported_sha256: Option<String>,
    pub report: Option<CollectorReport>,
}

const SELECT: &str = "
SELECT c.id, c.kind, c.name, c.machine_id, c.hostname, c.version, c.approved, c.revoked,
       c.is_local, t.name, c.node_id, n.name, c.created_at, c.approved_at, c.last_seen_at,
       (SELECT count(*) FROM nodes WHERE collector_id = c.id), cc.sha256, cc.reported_sha256,
       c.report
  FROM remote_components c
  LEFT JOIN enrollment_tokens t ON t.id = c.enrolled_with
  LEFT JOIN nodes n ON n.id = c.node_id
  LEFT JOIN collector_configs cc ON cc.collector_id = c.id";

fn from_row(row: &Row<'_>) -> rusqlite::Result<ComponentRow> {
    let report: Option<String> = row.get(18)?;
    Ok(ComponentRow {
        id: row.get(0)?,
        kind: super::parsed(row, 1)?,
        name: row.get(2)?,
        machine_id: row.get(3)?,
        hostname: row.get(4)?,
        version: row.get(5)?,
        approved: row.get(6)?,
        revoked: row.get(7)?,
        is_local: row.get(8)?,
        enrolled_with: row.get(9)?,
        node_id: row.get(10)?,
        node: row.get(11)?,
        created_at: row.get(12)?,
        approved_at: row.get(13)?,
        last_seen_at: row.get(14)?,
        target_count: row.get(15)?,
        config_sha256: row.get(16)?,
        reported_sha256: row.get(17)?,
        // A report that no longer parses is shown as none rather than failing the list.
        report: report.and_then(|text| serde_json::from_str(&text).ok()),
    })
}

/// A component by id.
pub fn get(conn: &Connection, id: i64) -> rusqlite::Result<Option<ComponentRow>> {
    conn.prepare_cached(&format!("{SELECT} WHERE c.id = ?1"))?
        .query_row([id], from_row)
        .optional()
}

/// Every component of `kind` (or all), by id.
pub fn all(conn: &Connection, kind: Option<ComponentKind>) -> rusqlite::Result<Vec<ComponentRow>> {
    conn.prepare_cached(&format!(
        "{SELECT} WHERE ?1 IS NULL OR c.kind = ?1 ORDER BY c.id"
    ))?
    .query_map([kind.map(|k| k.as_str())], from_row)?
    .collect()
}

/// The component that enrolled from `machine_id` as `kind`: (id, is_local).
pub fn by_machine(
    conn: &Connection,
    kind: ComponentKind,
    machine_id: &str,
) -> rusqlite::Result<Option<(i64, bool)>> {
    conn.query_row(
        "SELECT id, is_local FROM remote_components WHERE kind = ?1 AND machine_id = ?2",
        (kind.as_str(), machine_id),
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
    .optional()
}

/// Whether another component of `kind` is called `name` (case-insensitive).
pub fn name_taken(
    conn: &Connection,
    kind: ComponentKind,
    name: &str,
    except: Option<i64>,
) -> rusqlite::Result<bool> {
    conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM remote_components
                         WHERE kind = ?1 AND name = ?2 COLLATE NOCASE AND id IS NOT ?3)",
        (kind.as_str(), name, except),
        |r| r.get(0),
    )
}

/// What registration writes.
#[derive(Debug, Clone)]
pub struct Enrolled<'a> {
    pub kind: ComponentKind,
    pub name: &'a str,
    pub machine_id: &'a str,
    pub hostname: Option<&'a str>,
    pub version: &'a str,
    pub key_hash: &'a str,
    pub token_id: i64,
}

/// A new, pending component; returns its id.
pub fn insert(conn: &Connection, enrolled: &Enrolled<'_>, now: i64) -> rusqlite::Result<i64> {
    conn.execute(
        "INSERT INTO remote_components
             (kind, name, machine_id, hostname, version, api_key_hash, enrolled_with, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        (
            enrolled.kind.as_str(),
            enrolled.name,
            enrolled.machine_id,
            enrolled.hostname,
            enrolled.version,
            enrolled.key_hash,
            enrolled.token_id,
            now,
        ),
    )?;
    Ok(conn.last_insert_rowid())
}

/// Enrollment again from the same machine: a new key, pending approval again.
pub fn re_enroll(conn: &Connection, id: i64, enrolled: &Enrolled<'_>) -> rusqlite::Result<()> {
    conn.execute(
        "UPDATE remote_components
            SET name = ?2, hostname = ?3, version = ?4, api_key_hash = ?5, enrolled_with = ?6,
                approved = 0, approved_at = NULL, revoked = 0, revoked_at = NULL
          WHERE id = ?1",
        (
            id,
            enrolled.name,
            enrolled.hostname,
            enrolled.version,
            enrolled.key_hash,
            enrolled.token_id,
        ),
    )?;
    Ok(())
}

/// What a key check needs to know about a component.
#[derive(Debug, Clone)]
pub struct KeyRow {
    pub kind: ComponentKind,
    pub name: String,
    pub api_key_hash: String,
    pub approved: bool,
    pub revoked: bool,
    pub is_local: bool,
    pub node_id: Option<i64>,
}

/// The key hash and state of component `id`.
pub fn key_row(conn: &Connection, id: i64) -> rusqlite::Result<Option<KeyRow>> {
    conn.prepare_cached(
        "SELECT kind, name, api_key_hash, approved, revoked, is_local, node_id
           FROM remote_components WHERE id = ?1",
    )?
    .query_row([id], |r| {
        Ok(KeyRow {
            kind: super::parsed(r, 0)?,
            name: r.get(1)?,
            api_key_hash: r.get(2)?,
            approved: r.get(3)?,
            revoked: r.get(4)?,
            is_local: r.get(5)?,
            node_id: r.get(6)?,
        })
    })
    .optional()
}

/// The agents that report for node `node_id`.
pub fn agents_of_node(conn: &Connection, node_id: i64) -> rusqlite::Result<Vec<i64>> {
    conn.prepare_cached("SELECT id FROM remote_components WHERE node_id = ?1")?
        .query_map([node_id], |r| r.get(0))?
        .collect()
}

/// Records the version a component runs.
pub fn set_version(conn: &Connection, id: i64, version: &str) -> rusqlite::Result<()> {
    conn.execute(
        "UPDATE remote_components SET version = ?2 WHERE id = ?1",
        (id, version),
    )?;
    Ok(())
}

/// Replaces a component's key hash.
pub fn set_key_hash(conn: &Connection, id: i64, hash: &str) -> rusqlite::Result<()> {
    conn.execute(
        "UPDATE remote_components SET api_key_hash = ?2 WHERE id = ?1",
        (id, hash),
    )?;
    Ok(())
}

/// Approves a component (and gives an agent its node).
pub fn approve(conn: &Connection, id: i64, node_id: Option<i64>, now: i64) -> rusqlite::Result<()> {
    conn.execute(
        "UPDATE remote_components
            SET approved = 1, approved_at = ?2, node_id = coalesce(?3, node_id)
          WHERE id = ?1",
        (id, now, node_id),
    )?;
    Ok(())
}

/// Revokes a component: its key hash is wiped, so no key of it ever works again; it must
/// enroll anew and be approved.
pub fn revoke(conn: &Connection, id: i64, now: i64) -> rusqlite::Result<()> {
    conn.execute(
        "UPDATE remote_components
            SET revoked = 1, revoked_at = ?2, approved = 0, api_key_hash = ''
          WHERE id = ?1",
        (id, now),
    )?;
    Ok(())
}

/// Deletes a component; its nodes lose their collector.
pub fn delete(conn: &Connection, id: i64) -> rusqlite::Result<usize> {
    conn.execute("DELETE FROM remote_components WHERE id = ?1", [id])
}

/// Records when components were last heard from (never moving a time back).
pub fn record_seen(conn: &Connection, seen: &[(i64, i64)]) -> rusqlite::Result<()> {
    let mut statement = conn.prepare_cached(
        "UPDATE remote_components SET last_seen_at = max(coalesce(last_seen_at, 0), ?2)
          WHERE id = ?1",
    )?;
    for (id, at) in seen {
        statement.execute((id, at))?;
    }
    Ok(())
}

/// Stores a collector's status report.
pub fn record_report(
    conn: &Connection,
    id: i64,
    report: &CollectorReport,
    now: i64,
) -> rusqlite::Result<()> {
    let stored = serde_json::to_string(report).unwrap_or_default();
    conn.execute(
        "UPDATE remote_components SET version = ?2, report = ?3 WHERE id = ?1",
        (id, &report.version, stored),
    )?;
    conn.execute(
        "UPDATE collector_configs SET reported_sha256 = ?2, reported_at = ?3
          WHERE collector_id = ?1",
        (id, &report.config_sha256, now),
    )?;
    Ok(())
}

/// The server's own collector: its id, creating it (approved) on first start.
pub fn ensure_local(
    conn: &Connection,
    key_hash: &str,
    version: &str,
    now: i64,
) -> rusqlite::Result<i64> {
    let existing: Option<i64> = conn
        .query_row(
            "SELECT id FROM remote_components WHERE is_local = 1 AND kind = 'collector'",
            [],
            |r| r.get(0),
        )
        .optional()?;
    if let Some(id) = existing {
        conn.execute(
            "UPDATE remote_components
                SET api_key_hash = ?2, version = ?3, approved = 1, revoked = 0, revoked_at = NULL
              WHERE id = ?1",
            (id, key_hash, version),
        )?;
        return Ok(id);
    }
    conn.execute(
        "INSERT INTO remote_components
             (kind, name, machine_id, hostname, version, api_key_hash, approved, is_local,
              created_at, approved_at)
         VALUES ('collector', ?1, ?1, ?2, ?3, ?4, 1, 1, ?5, ?5)",
        (
            LOCAL_NAME,
            plantwatch_shared::daemon::hostname(),
            version,
            key_hash,
            now,
        ),
    )?;
    Ok(conn.last_insert_rowid())
}

/// Name (and machine id) of the server's own collector; no other collector may take it.
pub const LOCAL_NAME: &str = "local";

/// Ids of approved, unrevoked collectors.
pub fn approved_collectors(conn: &Connection) -> rusqlite::Result<Vec<i64>> {
    conn.prepare(
        "SELECT id FROM remote_components
          WHERE kind = 'collector' AND approved = 1 AND revoked = 0 ORDER BY id",
    )?
    .query_map([], |r| r.get(0))?
    .collect()
}
