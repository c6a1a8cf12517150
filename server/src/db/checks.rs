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

/// The id of every check.
pub fn ids(conn: &Connection) -> rusqlite::Result<std::collections::HashSet<i64>> {
    conn.prepare_cached("SELECT id FROM checks")?
        .query_map([], |r| r.get(0))?
        .collect()
}

/// Every check, by node and id.
pub fn all(conn: &Connection) -> rusqlite::Result<Vec<Check>> {
    conn.prepare_cached("SELECT id, node_id, spec, created_at FROM checks ORDER BY node_id, id")?
        .query_map([], check_row)?
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

/// Makes node `node_id`'s checks what `change` says: adds, replacements, removals.
pub fn apply_change(
    conn: &Connection,
    node_id: i64,
    change: &ChecksChange,
    now: i64,
) -> rusqlite::Result<()> {
    for id in &change.remove {
        delete(conn, node_id, *id)?;
    }
    for (id, spec) in &change.replace {
        replace(conn, node_id, *id, spec)?;
    }
    for spec in &change.add {
        insert(conn, node_id, spec, now)?;
    }
    Ok(())
}

/// What making a node's checks a wanted list does.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ChecksChange {
    pub add: Vec<CheckSpec>,
    /// Checks whose settings change: (id, new spec).
    pub replace: Vec<(i64, CheckSpec)>,
    pub remove: Vec<i64>,
}

impl ChecksChange {
    /// The change from `existing` to `wanted`. A wanted check is the existing one with the same
    /// short form (`tls:443`); `by_short_form` (a CSV cell, which holds only the short form)
    /// keeps that check's other settings, otherwise (a JSON document) they become the wanted
    /// ones. Existing checks not wanted are removed.
    pub fn between(existing: &[Check], wanted: &[CheckSpec], by_short_form: bool) -> ChecksChange {
        let mut unmatched: Vec<&Check> = existing.iter().collect();
        let mut change = ChecksChange::default();
        for spec in wanted {
            let short = spec.to_string();
            match unmatched.iter().position(|c| c.spec.to_string() == short) {
                Some(index) => {
                    let check = unmatched.remove(index);
                    if !by_short_form && check.spec != *spec {
                        change.replace.push((check.id, spec.clone()));
                    }
                }
                None => change.add.push(spec.clone()),
            }
        }
        change.remove = unmatched.iter().map(|c| c.id).collect();
        change
    }

    pub fn is_empty(&self) -> bool {
        self.add.is_empty() && self.replace.is_empty() && self.remove.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::{MIGRATIONS, apply_migrations};

    #[test]
    fn checks_and_their_certificates_survive_the_dns_migration() {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.pragma_update(None, "foreign_keys", "ON").unwrap();
        let before_dns = MIGRATIONS
            .iter()
            .position(|(name, _)| *name == "0010_dns_checks")
            .unwrap();
        apply_migrations(&mut conn, "mem", &MIGRATIONS[..before_dns]).unwrap();
        conn.execute_batch(
            "INSERT INTO nodes (id, name, address, node_type, created_at, updated_at)
                 VALUES (1, 'hmi', '10.0.0.5', 'server', 0, 0);
             INSERT INTO checks (id, node_id, kind, spec, created_at)
                 VALUES (7, 1, 'tls', '{\"kind\":\"tls\"}', 0);
             INSERT INTO certificates (check_id, not_after, finding, checked_at)
                 VALUES (7, 100, '{}', 5);",
        )
        .unwrap();
        let refused = conn.execute(
            "INSERT INTO checks (node_id, kind, spec, created_at) VALUES (1, 'dns', '{}', 0)",
            [],
        );
        assert!(refused.is_err(), "0009 knows no dns checks");
        apply_migrations(&mut conn, "mem", MIGRATIONS).unwrap();
        let kept: (i64, i64) = conn
            .query_row(
                "SELECT k.id, c.not_after FROM checks k JOIN certificates c ON c.check_id = k.id",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        assert_eq!(kept, (7, 100));
        let dns: CheckSpec = "dns:historian.plant.local".parse().unwrap();
        insert(&conn, 1, &dns, 0).unwrap();
        assert_eq!(of_node(&conn, 1).unwrap().len(), 2);
        // The certificates still follow their check, and their node.
        delete(&conn, 1, 7).unwrap();
        let left: i64 = conn
            .query_row("SELECT count(*) FROM certificates", [], |r| r.get(0))
            .unwrap();
        assert_eq!(left, 0);
        conn.execute("DELETE FROM nodes WHERE id = 1", []).unwrap();
        let left: i64 = conn
            .query_row("SELECT count(*) FROM checks", [], |r| r.get(0))
            .unwrap();
        assert_eq!(left, 0);
    }

    #[test]
    fn a_wanted_list_keeps_matching_checks_and_changes_the_rest() {
        let check = |id: i64, text: &str| Check {
            id,
            node_id: 1,
            spec: text.parse().unwrap(),
            created_at: time::OffsetDateTime::UNIX_EPOCH,
        };
        let mut slow = check(2, "http:80/health");
        slow.spec.interval_s = Some(300);
        let existing = [check(1, "tls:443"), slow, check(3, "tcp:502")];
        let wanted: Vec<CheckSpec> = ["tls:443", "http:80/health", "dns:plant.local"]
            .iter()
            .map(|t| t.parse().unwrap())
            .collect();
        // A CSV cell: the http check keeps its interval; tcp goes, dns comes.
        let change = ChecksChange::between(&existing, &wanted, true);
        assert_eq!(change.add, wanted[2..]);
        assert_eq!((change.replace.len(), change.remove.clone()), (0, vec![3]));
        // A JSON document says every setting: the interval goes back to the default.
        let change = ChecksChange::between(&existing, &wanted, false);
        assert_eq!(change.replace, [(2, wanted[1].clone())]);
        assert!(ChecksChange::between(&existing, &[], true).remove.len() == 3);
        assert!(ChecksChange::between(&existing[..1], &wanted[..1], false).is_empty());
    }
}
