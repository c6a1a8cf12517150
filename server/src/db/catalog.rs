//! Name lookups of the objects a node refers to: collectors and device templates.

use rusqlite::Connection;

/// Every collector as (name, id, is_local).
pub fn collectors(conn: &Connection) -> rusqlite::Result<Vec<(String, i64, bool)>> {
    conn.prepare(
        "SELECT name, id, is_local FROM remote_components WHERE kind = 'collector' ORDER BY id",
    )?
    .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
    .collect()
}

/// Every device template as (name, id).
pub fn templates(conn: &Connection) -> rusqlite::Result<Vec<(String, i64)>> {
    conn.prepare("SELECT name, id FROM device_templates")?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect()
}
