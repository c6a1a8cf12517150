//! `node_identities` and `neighbours`: what the nodes' neighbour tables said at their walks.

use plantwatch_shared::api::{AutoParents, NeighbourReport, NeighbourRow};
use rusqlite::{Connection, OptionalExtension as _};

use super::{json_column, to_json};

/// A neighbour row not reported for this long is deleted (until then it shows as gone).
pub const GONE_KEPT_S: i64 = 7 * 86_400;

/// What a node says of itself.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Identity {
    pub node_id: i64,
    pub chassis_id: Option<String>,
    pub sys_name: Option<String>,
    pub walked_at: i64,
}

/// A stored neighbour row.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredRow {
    pub node_id: i64,
    pub row: NeighbourRow,
    pub first_seen: i64,
    pub last_seen: i64,
}

/// What names a neighbour in its node's table.
fn remote_key(row: &NeighbourRow) -> String {
    [&row.chassis_id, &row.sys_name, &row.address, &row.port]
        .into_iter()
        .flatten()
        .next()
        .cloned()
        .unwrap_or_else(|| "?".into())
}

/// Stores a walk of `report.node_id`'s neighbour tables at `now`; rows it no longer has keep
/// their last sighting (gone), those gone for a week are deleted. A node deleted meanwhile is
/// skipped.
pub fn store_report(conn: &Connection, report: &NeighbourReport, now: i64) -> rusqlite::Result<()> {
    let exists = conn
        .query_row(
            "SELECT 1 FROM nodes WHERE id = ?1",
            [report.node_id],
            |_| Ok(()),
        )
        .optional()?
        .is_some();
    if !exists {
        return Ok(());
    }
    conn.prepare_cached(
        "INSERT INTO node_identities (node_id, chassis_id, sys_name, walked_at)
         VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (node_id) DO UPDATE SET chassis_id = excluded.chassis_id,
             sys_name = excluded.sys_name, walked_at = excluded.walked_at",
    )?
    .execute((report.node_id, &report.chassis_id, &report.sys_name, now))?;
    let mut upsert = conn.prepare_cached(
        "INSERT INTO neighbours (node_id, protocol, local_port, remote_key, doc, first_seen,
                                 last_seen)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)
         ON CONFLICT (node_id, protocol, local_port, remote_key)
             DO UPDATE SET doc = excluded.doc, last_seen = excluded.last_seen",
    )?;
    for row in &report.rows {
        upsert.execute((
            report.node_id,
            row.protocol.as_str(),
            &row.local_port,
            remote_key(row),
            to_json(row),
            now,
        ))?;
    }
    conn.prepare_cached("DELETE FROM neighbours WHERE node_id = ?1 AND last_seen < ?2")?
        .execute((report.node_id, now - GONE_KEPT_S))?;
    Ok(())
}

/// Every identity and every stored neighbour row.
pub fn load(conn: &Connection) -> rusqlite::Result<(Vec<Identity>, Vec<StoredRow>)> {
    let identities = conn
        .prepare_cached("SELECT node_id, chassis_id, sys_name, walked_at FROM node_identities")?
        .query_map([], |r| {
            Ok(Identity {
                node_id: r.get(0)?,
                chassis_id: r.get(1)?,
                sys_name: r.get(2)?,
                walked_at: r.get(3)?,
            })
        })?
        .collect::<rusqlite::Result<_>>()?;
    let rows = conn
        .prepare_cached(
            "SELECT node_id, doc, first_seen, last_seen FROM neighbours ORDER BY node_id, id",
        )?
        .query_map([], |r| {
            Ok(StoredRow {
                node_id: r.get(0)?,
                row: json_column(r, 1)?,
                first_seen: r.get(2)?,
                last_seen: r.get(3)?,
            })
        })?
        .collect::<rusqlite::Result<_>>()?;
    Ok((identities, rows))
}

/// Every collector's automatic parents (`root_id` None: off).
pub fn auto_parents(conn: &Connection) -> rusqlite::Result<Vec<AutoParents>> {
    conn.prepare_cached(
        "SELECT c.id, c.name, c.parents_root, n.name FROM remote_components c
         LEFT JOIN nodes n ON n.id = c.parents_root
         WHERE c.kind = 'collector' ORDER BY c.name",
    )?
    .query_map([], |r| {
        Ok(AutoParents {
            collector_id: r.get(0)?,
            collector: r.get(1)?,
            root_id: r.get(2)?,
            root: r.get(3)?,
            applied: Vec::new(),
        })
    })?
    .collect()
}

/// Sets (or with `None` ends) a collector's automatic parents.
pub fn set_auto_parents(
    conn: &Connection,
    collector_id: i64,
    root_id: Option<i64>,
) -> rusqlite::Result<()> {
    conn.prepare_cached("UPDATE remote_components SET parents_root = ?2 WHERE id = ?1")?
        .execute((collector_id, root_id))?;
    Ok(())
}

/// When the last neighbour walk was stored (0: none yet) — `None` when no collector has
/// automatic parents, so there is nothing to do.
pub fn last_walk_to_apply(conn: &Connection) -> rusqlite::Result<Option<i64>> {
    conn.query_row(
        "SELECT (SELECT coalesce(max(walked_at), 0) FROM node_identities)
          WHERE EXISTS (SELECT 1 FROM remote_components WHERE parents_root IS NOT NULL)",
        [],
        |r| r.get(0),
    )
    .optional()
}
