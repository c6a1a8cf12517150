//! The `collector_config_dirty` flags: set, in the transaction of the change, for every
//! collector whose configuration a change affects. Config delivery reads and clears them.
//!
//! A flag keeps the time it was first set, so a burst of changes is regenerated once, 5 s after
//! its first change, rather than postponed by each new one.

use rusqlite::Connection;

/// Marks the collectors `ids` dirty (`None`s are ignored).
pub fn mark(
    conn: &Connection,
    ids: impl IntoIterator<Item = Option<i64>>,
    reason: &str,
    now: i64,
) -> rusqlite::Result<()> {
    let mut statement = conn.prepare_cached(
        "INSERT INTO collector_config_dirty (collector_id, dirty_since, reason)
         SELECT id, ?2, ?3 FROM remote_components WHERE id = ?1 AND kind = 'collector'
         ON CONFLICT (collector_id) DO UPDATE SET reason = excluded.reason",
    )?;
    let mut seen = std::collections::BTreeSet::new();
    for id in ids.into_iter().flatten() {
        if seen.insert(id) {
            statement.execute((id, now, reason))?;
        }
    }
    Ok(())
}

/// Marks dirty the collectors of every node the credential is attached to.
pub fn mark_for_credential(
    conn: &Connection,
    credential_id: i64,
    reason: &str,
    now: i64,
) -> rusqlite::Result<()> {
    let ids: Vec<Option<i64>> = conn
        .prepare(
            "SELECT DISTINCT n.collector_id FROM node_credentials nc JOIN nodes n ON n.id = nc.node_id
              WHERE nc.credential_id = ?1 AND n.collector_id IS NOT NULL",
        )?
        .query_map([credential_id], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    mark(conn, ids, reason, now)
}

/// The dirty flags: (collector id, since, reason).
pub fn all(conn: &Connection) -> rusqlite::Result<Vec<(i64, i64, Option<String>)>> {
    conn.prepare(
        "SELECT collector_id, dirty_since, reason FROM collector_config_dirty
          ORDER BY collector_id",
    )?
    .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
    .collect()
}
