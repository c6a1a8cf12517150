//! The `checks` and `certificates` tables: service checks of nodes, and what each `tls` check
//! last found.

use plantwatch_shared::api::{CertificateFinding, Check, CheckSpec, TargetCheck};
use rusqlite::{Connection, OptionalExtension as _, Row};

use super::{json_column, to_json, to_time};

fn check_row(row: &Row) -> rusqlite::Result<Check> {
    Ok(Check {
        id: row.get(0)?,
        node_id: row.get(1)?,
        spec: json_column(row, 2)?,
        created_at: to_time(row.get(3)?),
    })
}

/// The checks of node `node_id`, oldest first.
pub fn of_node(conn: &Connection, node_id: i64) -> rusqlite::Result<Vec<Check>> {
    conn.prepare_cached(
        "SELECT id, node_id, spec, created_at FROM checks WHERE node_id = ?1 ORDER BY id",
    )?
    .query_map([node_id], check_row)?
    .collect()
}

/// Check `id` of node `node_id`.
pub fn get(conn: &Connection, node_id: i64, id: i64) -> rusqlite::Result<Option<Check>> {
    conn.prepare_cached(
        "SELECT id, node_id, spec, created_at FROM checks WHERE node_id = ?1 AND id = ?2",
    )?
    .query_row((node_id, id), check_row)
    .optional()
}

pub fn insert(
    conn: &Connection,
    node_id: i64,
    spec: &CheckSpec,
    now: i64,
) -> rusqlite::Result<Check> {
    conn.prepare_cached(
        "INSERT INTO checks (node_id, kind, spec, created_at) VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute((node_id, spec.kind.as_str(), to_json(spec), now))?;
    Ok(Check {
        id: conn.last_insert_rowid(),
        node_id,
        spec: spec.clone(),
        created_at: to_time(now),
    })
}

/// Replaces check `id`'s spec; whether it existed. A changed kind drops what it found.
pub fn replace(
    conn: &Connection,
    node_id: i64,
    id: i64,
    spec: &CheckSpec,
) -> rusqlite::Result<bool> {
    let changed = conn
        .prepare_cached("UPDATE checks SET kind = ?3, spec = ?4 WHERE node_id = ?1 AND id = ?2")?
        .execute((node_id, id, spec.kind.as_str(), to_json(spec)))?;
    conn.prepare_cached(
        "DELETE FROM certificates WHERE check_id = ?1
            AND NOT EXISTS (SELECT 1 FROM checks WHERE id = ?1 AND kind = 'tls')",
    )?
    .execute([id])?;
    Ok(changed > 0)
}

pub fn delete(conn: &Connection, node_id: i64, id: i64) -> rusqlite::Result<bool> {
    Ok(conn
        .prepare_cached("DELETE FROM checks WHERE node_id = ?1 AND id = ?2")?
        .execute((node_id, id))?
        > 0)
}

/// The checks of every node of collector `collector_id`, by node: what its configuration
/// carries.
pub fn of_collector(
    conn: &Connection,
    collector_id: i64,
) -> rusqlite::Result<Vec<(i64, TargetCheck)>> {
    conn.prepare_cached(
        "SELECT k.id, k.node_id, k.spec, k.created_at FROM checks k
           JOIN nodes n ON n.id = k.node_id
          WHERE n.collector_id = ?1 ORDER BY k.node_id, k.id",
    )?
    .query_map([collector_id], check_row)?
    .map(|check| {
        check.map(|c| {
            (
                c.node_id,
                TargetCheck {
                    id: c.id,
                    spec: c.spec,
                },
            )
        })
    })
    .collect()
}

/// The `tls` check `check_id` with its node, if collector `collector_id` runs it: (node id,
/// node name, port).
pub fn tls_check_of_collector(
    conn: &Connection,
    collector_id: i64,
    check_id: i64,
) -> rusqlite::Result<Option<(i64, String, CheckSpec)>> {
    conn.prepare_cached(
        "SELECT n.id, n.name, k.spec FROM checks k JOIN nodes n ON n.id = k.node_id
          WHERE k.id = ?1 AND n.collector_id = ?2 AND k.kind = 'tls'",
    )?
    .query_row((check_id, collector_id), |r| {
        Ok((r.get(0)?, r.get(1)?, json_column(r, 2)?))
    })
    .optional()
}

/// Stores what a `tls` check found, replacing what it found before.
pub fn record_finding(conn: &Connection, finding: &CertificateFinding) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO certificates (check_id, not_after, finding, checked_at)
         VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (check_id) DO UPDATE
            SET not_after = excluded.not_after, finding = excluded.finding,
                checked_at = excluded.checked_at",
    )?
    .execute((
        finding.check_id,
        finding.not_after.map(|t| t.unix_timestamp()),
        to_json(finding),
        finding.checked_at.unix_timestamp(),
    ))?;
    Ok(())
}

/// Every certificate found, soonest expiry first (those without one — no handshake — first of
/// all); only those expiring before `before` (unix seconds) when given, and of one node.
pub fn certificates(
    conn: &Connection,
    before: Option<i64>,
    node_id: Option<i64>,
) -> rusqlite::Result<Vec<CertificateFinding>> {
    conn.prepare_cached(
        "SELECT c.finding, n.id, n.name FROM certificates c
           JOIN checks k ON k.id = c.check_id JOIN nodes n ON n.id = k.node_id
          WHERE (?1 IS NULL OR c.not_after IS NULL OR c.not_after < ?1)
            AND (?2 IS NULL OR n.id = ?2)
          ORDER BY c.not_after IS NOT NULL, c.not_after, n.name COLLATE NOCASE",
    )?
    .query_map((before, node_id), |r| {
        let mut finding: CertificateFinding = json_column(r, 0)?;
        finding.node_id = r.get(1)?;
        finding.node = r.get(2)?;
        Ok(finding)
    })?
    .collect()
}
