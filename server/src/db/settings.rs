//! The `settings` table: the configuration in force, recorded at start.

use plantwatch_shared::api::LdapSettings;
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

/// Sets one value (state the server keeps, such as a cursor).
pub fn set(conn: &Connection, key: &str, value: &str, now: i64) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO settings (key, value, updated_at) VALUES (?1, ?2, ?3)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
        (key, value, now),
    )?;
    Ok(())
}

/// One setting's value.
pub fn get(conn: &Connection, key: &str) -> rusqlite::Result<Option<String>> {
    conn.query_row("SELECT value FROM settings WHERE key = ?1", [key], |r| {
        r.get(0)
    })
    .optional()
}

/// Key of the directory settings (JSON of [`LdapSettings`], without the password).
const LDAP: &str = "ldap";
/// Key of the directory service account's password, sealed by the vault.
const LDAP_BIND_PASSWORD: &str = "ldap_bind_password";
/// The vault's associated data of the bind password.
pub const LDAP_BIND_PASSWORD_AAD: &str = "settings:ldap_bind_password";

/// The directory settings (defaults when never set) and the sealed bind password, if any.
pub fn ldap(conn: &Connection) -> rusqlite::Result<(LdapSettings, Option<String>)> {
    let settings = match get(conn, LDAP)? {
        Some(json) => serde_json::from_str(&json).map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, e.into())
        })?,
        None => LdapSettings::default(),
    };
    let sealed = get(conn, LDAP_BIND_PASSWORD)?;
    Ok((
        LdapSettings {
            bind_password_set: sealed.is_some(),
            ..settings
        },
        sealed,
    ))
}

/// Stores the directory settings and, when given, the newly sealed bind password.
pub fn set_ldap(
    conn: &Connection,
    settings: &LdapSettings,
    sealed_password: Option<&str>,
    now: i64,
) -> rusqlite::Result<()> {
    let json = serde_json::to_string(settings)
        .map_err(|e| rusqlite::Error::ToSqlConversionFailure(e.into()))?;
    let mut put = conn.prepare_cached(
        "INSERT INTO settings (key, value, updated_at) VALUES (?1, ?2, ?3)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
    )?;
    put.execute((LDAP, json, now))?;
    if let Some(sealed) = sealed_password {
        put.execute((LDAP_BIND_PASSWORD, sealed, now))?;
    }
    Ok(())
}
