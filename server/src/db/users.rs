//! The `users` table.

use plantwatch_shared::api::{Role, User};
use rusqlite::{Connection, OptionalExtension as _, Row};

use super::to_time;

/// The columns [`from_row`] reads, in order.
const COLUMNS: &str = "id, username, role, created_at, updated_at, last_login_at";

/// A user with their password hash, for login checks only.
#[derive(Clone)]
pub struct UserWithHash {
    pub user: User,
    pub password_hash: String,
}

fn role_of(text: &str) -> rusqlite::Result<Role> {
    text.parse().map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e))
    })
}

/// A user from the first six columns of `row`, as [`COLUMNS`] lists them.
pub(super) fn from_row(row: &Row<'_>) -> rusqlite::Result<User> {
    let role: String = row.get(2)?;
    Ok(User {
        id: row.get(0)?,
        username: row.get(1)?,
        role: role_of(&role)?,
        created_at: to_time(row.get(3)?),
        updated_at: to_time(row.get(4)?),
        last_login_at: row.get::<_, Option<i64>>(5)?.map(to_time),
    })
}

/// Number of users.
pub fn count(conn: &Connection) -> rusqlite::Result<i64> {
    conn.query_row("SELECT count(*) FROM users", [], |r| r.get(0))
}

/// Number of admins.
pub fn count_admins(conn: &Connection) -> rusqlite::Result<i64> {
    conn.query_row("SELECT count(*) FROM users WHERE role = 'admin'", [], |r| {
        r.get(0)
    })
}

/// Creates a user and returns it.
pub fn insert(
    conn: &Connection,
    username: &str,
    password_hash: &str,
    role: Role,
    now: i64,
) -> rusqlite::Result<User> {
    conn.execute(
        "INSERT INTO users (username, password_hash, role, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?4)",
        (username, password_hash, role.as_str(), now),
    )?;
    let id = conn.last_insert_rowid();
    get(conn, id)?.ok_or(rusqlite::Error::QueryReturnedNoRows)
}

/// A user by id.
pub fn get(conn: &Connection, id: i64) -> rusqlite::Result<Option<User>> {
    conn.query_row(
        &format!("SELECT {COLUMNS} FROM users WHERE id = ?1"),
        [id],
        from_row,
    )
    .optional()
}

/// A user and their password hash by name (case-insensitive).
pub fn by_username(conn: &Connection, username: &str) -> rusqlite::Result<Option<UserWithHash>> {
    conn.query_row(
        &format!("SELECT {COLUMNS}, password_hash FROM users WHERE username = ?1"),
        [username],
        |row| {
            Ok(UserWithHash {
                user: from_row(row)?,
                password_hash: row.get(6)?,
            })
        },
    )
    .optional()
}

/// The password hash of a user.
pub fn password_hash(conn: &Connection, id: i64) -> rusqlite::Result<Option<String>> {
    conn.query_row("SELECT password_hash FROM users WHERE id = ?1", [id], |r| {
        r.get(0)
    })
    .optional()
}

/// Sort orders of the user list: (query name, SQL).
pub const SORTS: &[(&str, &str)] = &[
    ("username", "username COLLATE NOCASE"),
    ("role", "role"),
    ("created_at", "created_at"),
    ("last_login_at", "last_login_at"),
];

/// A page of users matching `role` and `text`, and how many match. `order` is an entry of
/// [`SORTS`] (already checked).
pub fn list(
    conn: &Connection,
    role: Option<Role>,
    text: Option<&str>,
    order: &str,
    descending: bool,
    limit: u32,
    offset: u32,
) -> rusqlite::Result<(Vec<User>, u64)> {
    let direction = if descending { "DESC" } else { "ASC" };
    // instr() rather than LIKE: no wildcard characters to escape in the search text.
    let filter =
        "WHERE (?1 IS NULL OR role = ?1) AND (?2 IS NULL OR instr(lower(username), lower(?2)) > 0)";
    let role = role.map(Role::as_str);
    let total: i64 = conn.query_row(
        &format!("SELECT count(*) FROM users {filter}"),
        (role, text),
        |r| r.get(0),
    )?;
    let mut statement = conn.prepare(&format!(
        "SELECT {COLUMNS} FROM users {filter} ORDER BY {order} {direction}, id LIMIT ?3 OFFSET ?4"
    ))?;
    let items = statement
        .query_map((role, text, limit, offset), from_row)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok((items, total.max(0) as u64))
}

/// Changes a user's role.
pub fn set_role(conn: &Connection, id: i64, role: Role, now: i64) -> rusqlite::Result<usize> {
    conn.execute(
        "UPDATE users SET role = ?2, updated_at = ?3 WHERE id = ?1",
        (id, role.as_str(), now),
    )
}

/// Replaces a user's password hash.
pub fn set_password_hash(
    conn: &Connection,
    id: i64,
    password_hash: &str,
    now: i64,
) -> rusqlite::Result<usize> {
    conn.execute(
        "UPDATE users SET password_hash = ?2, updated_at = ?3 WHERE id = ?1",
        (id, password_hash, now),
    )
}

/// Records a successful login.
pub fn touch_login(conn: &Connection, id: i64, now: i64) -> rusqlite::Result<usize> {
    conn.execute(
        "UPDATE users SET last_login_at = ?2 WHERE id = ?1",
        (id, now),
    )
}

/// Deletes a user (their sessions go with them).
pub fn delete(conn: &Connection, id: i64) -> rusqlite::Result<usize> {
    conn.execute("DELETE FROM users WHERE id = ?1", [id])
}
