//! The `enrollment_tokens` table: tokens stored as SHA-256 hashes, multi-use, with an optional
//! expiry and use limit.

use plantwatch_shared::api::{EnrollmentToken, TokenState};
use rusqlite::{Connection, OptionalExtension as _, Row};

use super::to_time;

/// A token row, as registration checks it.
#[derive(Debug, Clone)]
pub struct TokenRow {
    pub id: i64,
    pub name: String,
    pub expires_at: Option<i64>,
    pub max_uses: Option<i64>,
    pub uses: i64,
    pub revoked_at: Option<i64>,
}

impl TokenRow {
    /// Whether the token can enroll at `now`.
    pub fn state(&self, now: i64) -> TokenState {
        if self.revoked_at.is_some() {
            TokenState::Revoked
        } else if self.expires_at.is_some_and(|at| at <= now) {
            TokenState::Expired
        } else if self.max_uses.is_some_and(|max| self.uses >= max) {
            TokenState::Exhausted
        } else {
            TokenState::Active
        }
    }
}

const SELECT: &str = "SELECT t.id, t.name, t.expires_at, t.max_uses, t.uses, t.revoked_at,
       t.created_at, u.username
  FROM enrollment_tokens t LEFT JOIN users u ON u.id = t.created_by";

fn from_row(row: &Row<'_>) -> rusqlite::Result<(TokenRow, i64, Option<String>)> {
    Ok((
        TokenRow {
            id: row.get(0)?,
            name: row.get(1)?,
            expires_at: row.get(2)?,
            max_uses: row.get(3)?,
            uses: row.get(4)?,
            revoked_at: row.get(5)?,
        },
        row.get(6)?,
        row.get(7)?,
    ))
}

fn view(
    (row, created_at, created_by): (TokenRow, i64, Option<String>),
    now: i64,
) -> EnrollmentToken {
    EnrollmentToken {
        id: row.id,
        state: row.state(now),
        created_by,
        created_at: to_time(created_at),
        expires_at: row.expires_at.map(to_time),
        max_uses: row.max_uses.map(|n| n.clamp(0, i64::from(u32::MAX)) as u32),
        uses: row.uses.clamp(0, i64::from(u32::MAX)) as u32,
        revoked_at: row.revoked_at.map(to_time),
        name: row.name,
    }
}

/// Stores a new token by its hash; returns its id.
pub fn insert(
    conn: &Connection,
    name: &str,
    hash: &str,
    created_by: Option<i64>,
    expires_at: Option<i64>,
    max_uses: Option<u32>,
    now: i64,
) -> rusqlite::Result<i64> {
    conn.execute(
        "INSERT INTO enrollment_tokens (name, token_hash, created_by, created_at, expires_at, max_uses)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        (name, hash, created_by, now, expires_at, max_uses),
    )?;
    Ok(conn.last_insert_rowid())
}

/// A token as the API shows it.
pub fn get(conn: &Connection, id: i64, now: i64) -> rusqlite::Result<Option<EnrollmentToken>> {
    conn.query_row(&format!("{SELECT} WHERE t.id = ?1"), [id], from_row)
        .optional()
        .map(|found| found.map(|row| view(row, now)))
}

/// A page of tokens, newest first, and how many there are.
pub fn list(
    conn: &Connection,
    limit: u32,
    offset: u32,
    now: i64,
) -> rusqlite::Result<(Vec<EnrollmentToken>, u64)> {
    let total: i64 = conn.query_row("SELECT count(*) FROM enrollment_tokens", [], |r| r.get(0))?;
    let items = conn
        .prepare(&format!("{SELECT} ORDER BY t.id DESC LIMIT ?1 OFFSET ?2"))?
        .query_map((limit, offset), from_row)?
        .map(|row| row.map(|row| view(row, now)))
        .collect::<rusqlite::Result<_>>()?;
    Ok((items, total.max(0) as u64))
}

/// The token whose hash is `hash`.
pub fn by_hash(conn: &Connection, hash: &str) -> rusqlite::Result<Option<TokenRow>> {
    conn.query_row(
        &format!("{SELECT} WHERE t.token_hash = ?1"),
        [hash],
        from_row,
    )
    .optional()
    .map(|found| found.map(|(row, _, _)| row))
}

/// Counts one enrollment.
pub fn count_use(conn: &Connection, id: i64) -> rusqlite::Result<()> {
    conn.execute(
        "UPDATE enrollment_tokens SET uses = uses + 1 WHERE id = ?1",
        [id],
    )?;
    Ok(())
}

/// Revokes a token (kept for the record); false when there is none. Revoking twice keeps the
/// first time.
pub fn revoke(conn: &Connection, id: i64, now: i64) -> rusqlite::Result<bool> {
    let changed = conn.execute(
        "UPDATE enrollment_tokens SET revoked_at = coalesce(revoked_at, ?2) WHERE id = ?1",
        (id, now),
    )?;
    Ok(changed > 0)
}
