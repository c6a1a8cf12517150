//! The `settings` table: the configuration in force, recorded at start.

use rusqlite::{Connection, OptionalExtension as _};

/// Records `settings`, replacing earlier values, and the time of the first start if unset.
pub fn record(
    conn: &mut Connection,
    settings: &[(&str, String)],
    now: i64,
) -> rusqlite::Result<()> {
    let tx = conn.transaction()?;
    for (key, value) in settings {
        tx.execute(
            "INSERT INTO settings (key, value, updated_at) VALUES (?1, ?2, ?3)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at
             WHERE value <> excluded.value",
            (key, value, now),
        )?;
    }
    tx.execute(
        "INSERT OR IGNORE INTO settings (key, value, updated_at) VALUES ('first_started_at', ?1, ?1)",
        [now],
    )?;
    tx.commit()
}

/// One setting's value.
pub fn get(conn: &Connection, key: &str) -> rusqlite::Result<Option<String>> {
    conn.query_row("SELECT value FROM settings WHERE key = ?1", [key], |r| {
        r.get(0)
    })
    .optional()
}
