//! The `users` table.

use plantwatch_shared::api::{Role, User, UserSource};
use rusqlite::{Connection, OptionalExtension as _, Row};

use super::to_time;

/// The columns [`from_row`] reads, in order.
const COLUMNS: &str =
    "id, username, role, created_at, updated_at, last_login_at, source, role_pinned";
/// [`COLUMNS`] of the `users` table aliased `u`, for joins.
pub(super) const JOINED_COLUMNS: &str = "u.id, u.username, u.role, u.created_at, u.updated_at, \
     u.last_login_at, u.source, u.role_pinned";
/// How many columns [`from_row`] reads.
pub(super) const COLUMN_COUNT: usize = 8;
/// The password hash of a directory user: not a bcrypt hash, so no password ever matches it.
const NO_LOCAL_PASSWORD: &str = "!directory";

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

/// A user from the first [`COLUMN_COUNT`] columns of `row`, as [`COLUMNS`] lists them.
pub(super) fn from_row(row: &Row<'_>) -> rusqlite::Result<User> {
    let role: String = row.get(2)?;
    let source: String = row.get(6)?;
    Ok(User {
        source: source.parse().map_err(|e: String| {
            rusqlite::Error::FromSqlConversionFailure(6, rusqlite::types::Type::Text, e.into())
        })?,
        role_pinned: row.get(7)?,
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
                password_hash: row.get(COLUMN_COUNT)?,
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

/// A directory user's shadow row after a sign-in or a session check: created on first sign-in
/// (with `role`), else its DN refreshed and its role set to `role` unless an admin pinned it.
/// Returns the user and the role it had before (`None` when created). A local user of that name
/// is never touched: `Ok(None)`.
pub fn upsert_directory_user(
    conn: &Connection,
    username: &str,
    dn: &str,
    role: Role,
    now: i64,
) -> rusqlite::Result<Option<(User, Option<Role>)>> {
    let existing = conn
        .query_row(
            &format!("SELECT {COLUMNS} FROM users WHERE username = ?1"),
            [username],
            from_row,
        )
        .optional()?;
    match existing {
        Some(user) if user.source == UserSource::Local => Ok(None),
        Some(user) => {
            conn.execute(
                "UPDATE users SET directory_dn = ?2,
                        role = CASE WHEN role_pinned THEN role ELSE ?3 END,
                        updated_at = CASE WHEN role_pinned OR role = ?3 THEN updated_at ELSE ?4 END
                 WHERE id = ?1",
                (user.id, dn, role.as_str(), now),
            )?;
            let updated = get(conn, user.id)?.ok_or(rusqlite::Error::QueryReturnedNoRows)?;
            Ok(Some((updated, Some(user.role))))
        }
        None => {
            conn.execute(
                "INSERT INTO users (username, password_hash, role, created_at, updated_at,
                                    source, directory_dn)
                 VALUES (?1, ?2, ?3, ?4, ?4, 'ldap', ?5)",
                (username, NO_LOCAL_PASSWORD, role.as_str(), now, dn),
            )?;
            let created =
                get(conn, conn.last_insert_rowid())?.ok_or(rusqlite::Error::QueryReturnedNoRows)?;
            Ok(Some((created, None)))
        }
    }
}

/// Pins a directory user's role (an admin's override) or hands it back to their groups.
pub fn set_role_pinned(
    conn: &Connection,
    id: i64,
    pinned: bool,
    now: i64,
) -> rusqlite::Result<usize> {
    conn.execute(
        "UPDATE users SET role_pinned = ?2, updated_at = ?3 WHERE id = ?1",
        (id, pinned, now),
    )
}

/// Directory users with at least one live session: (user, last known DN), for the periodic
/// role check.
pub fn directory_users_signed_in(conn: &Connection) -> rusqlite::Result<Vec<User>> {
    let mut statement = conn.prepare(&format!(
        "SELECT {COLUMNS} FROM users
         WHERE source = 'ldap' AND id IN (SELECT user_id FROM sessions)
         ORDER BY id"
    ))?;
    let users = statement
        .query_map([], from_row)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(users)
}
