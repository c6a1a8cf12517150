//! The `sessions` table. Tokens are stored as their SHA-256 only.

use plantwatch_shared::api::User;
use rusqlite::{Connection, OptionalExtension as _};

use super::users;

/// A live session row with its user.
#[derive(Clone)]
pub struct SessionRow {
    pub id: i64,
    pub user: User,
    pub last_seen_at: i64,
    pub expires_at: i64,
}

/// Creates a session.
pub fn insert(
    conn: &Connection,
    user_id: i64,
    token_hash: &str,
    now: i64,
    expires_at: i64,
    source: Option<&str>,
    user_agent: Option<&str>,
) -> rusqlite::Result<i64> {
    conn.execute(
        "INSERT INTO sessions (user_id, token_hash, created_at, last_seen_at, expires_at, source, user_agent)
         VALUES (?1, ?2, ?3, ?3, ?4, ?5, ?6)",
        (user_id, token_hash, now, expires_at, source, user_agent),
    )?;
    Ok(conn.last_insert_rowid())
}

/// The session with this token hash and its user, if any (expired or not). One indexed lookup:
/// this runs on every authenticated request.
pub fn by_token_hash(conn: &Connection, token_hash: &str) -> rusqlite::Result<Option<SessionRow>> {
    // The first columns are the user's, which users::from_row reads.
    const N: usize = users::COLUMN_COUNT;
    conn.prepare_cached(&format!(
        "SELECT {}, s.id, s.last_seen_at, s.expires_at
         FROM sessions s JOIN users u ON u.id = s.user_id
         WHERE s.token_hash = ?1",
        users::JOINED_COLUMNS
    ))?
    .query_row([token_hash], |row| {
        Ok(SessionRow {
            user: users::from_row(row)?,
            id: row.get(N)?,
            last_seen_at: row.get(N + 1)?,
            expires_at: row.get(N + 2)?,
        })
    })
    .optional()
}

/// Records activity on a session.
pub fn touch(conn: &Connection, id: i64, now: i64) -> rusqlite::Result<usize> {
    conn.execute(
        "UPDATE sessions SET last_seen_at = ?2 WHERE id = ?1",
        (id, now),
    )
}

/// Ends one session.
pub fn delete(conn: &Connection, id: i64) -> rusqlite::Result<usize> {
    conn.execute("DELETE FROM sessions WHERE id = ?1", [id])
}

/// Ends every session of a user except `keep`.
pub fn delete_for_user(
    conn: &Connection,
    user_id: i64,
    keep: Option<i64>,
) -> rusqlite::Result<usize> {
    conn.execute(
        "DELETE FROM sessions WHERE user_id = ?1 AND id IS NOT ?2",
        (user_id, keep),
    )
}

/// Removes sessions past their absolute or idle expiry.
pub fn delete_expired(conn: &Connection, now: i64, idle_secs: i64) -> rusqlite::Result<usize> {
    conn.execute(
        "DELETE FROM sessions WHERE expires_at <= ?1 OR last_seen_at + ?2 <= ?1",
        (now, idle_secs),
    )
}
