//! The `credentials` table. Secrets are stored sealed by the vault, as JSON of
//! `{field: base64(nonce ‖ ciphertext)}`; this module never sees them in clear.

use plantwatch_shared::api::{CredentialKind, CredentialParams};
use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension as _, Row, params_from_iter};

use super::to_time;

/// A credential row with its sealed secrets.
#[derive(Debug, Clone)]
pub struct CredentialRow {
    pub id: i64,
    pub name: String,
    pub kind: CredentialKind,
    pub params: CredentialParams,
    /// Sealed secrets as stored.
    pub secrets: String,
    pub nodes: u64,
    /// CIDRs it may be attached to and sent to (empty: admins only, anywhere).
    pub networks: Vec<String>,
    pub created_at: time::OffsetDateTime,
    pub updated_at: time::OffsetDateTime,
}

const SELECT: &str = "SELECT c.id, c.name, c.kind, c.params, c.secrets,
       (SELECT count(*) FROM node_credentials nc WHERE nc.credential_id = c.id),
       c.created_at, c.updated_at, c.networks
  FROM credentials c";

fn from_row(row: &Row<'_>) -> rusqlite::Result<CredentialRow> {
    let kind: String = row.get(2)?;
    let invalid = |column, e: Box<dyn std::error::Error + Send + Sync>| {
        rusqlite::Error::FromSqlConversionFailure(column, rusqlite::types::Type::Text, e)
    };
    Ok(CredentialRow {
        id: row.get(0)?,
        name: row.get(1)?,
        kind: kind.parse().map_err(|e| invalid(2, Box::new(e)))?,
        params: super::json_column(row, 3)?,
        secrets: row.get(4)?,
        nodes: row.get::<_, i64>(5)?.max(0) as u64,
        created_at: to_time(row.get(6)?),
        updated_at: to_time(row.get(7)?),
        networks: super::json_column(row, 8)?,
    })
}

/// A credential by id.
pub fn get(conn: &Connection, id: i64) -> rusqlite::Result<Option<CredentialRow>> {
    conn.query_row(&format!("{SELECT} WHERE c.id = ?1"), [id], from_row)
        .optional()
}

/// A page of credentials by name, and how many match.
pub fn list(
    conn: &Connection,
    kind: Option<CredentialKind>,
    text: Option<&str>,
    limit: u32,
    offset: u32,
) -> rusqlite::Result<(Vec<CredentialRow>, u64)> {
    let filter = " WHERE (?1 IS NULL OR c.kind = ?1)
                     AND (?2 IS NULL OR instr(lower(c.name), lower(?2)) > 0)";
    let kind = kind
        .map(|k| Value::Text(k.as_str().to_owned()))
        .unwrap_or(Value::Null);
    let text = text
        .map(|t| Value::Text(t.to_owned()))
        .unwrap_or(Value::Null);
    let total: i64 = conn.query_row(
        &format!("SELECT count(*) FROM credentials c{filter}"),
        params_from_iter([&kind, &text]),
        |r| r.get(0),
    )?;
    let items = conn
        .prepare(&format!(
            "{SELECT}{filter} ORDER BY c.name COLLATE NOCASE, c.id LIMIT ?3 OFFSET ?4"
        ))?
        .query_map(
            params_from_iter([
                kind,
                text,
                Value::Integer(limit.into()),
                Value::Integer(offset.into()),
            ]),
            from_row,
        )?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok((items, total.max(0) as u64))
}

/// Every credential's id by name (for resolving names in node documents).
pub fn ids_by_name(conn: &Connection) -> rusqlite::Result<Vec<(String, i64)>> {
    conn.prepare("SELECT name, id FROM credentials")?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect()
}

/// Creates a credential without secrets (they are sealed with its id, see [`set_secrets`]).
pub fn insert(
    conn: &Connection,
    name: &str,
    kind: CredentialKind,
    params: &CredentialParams,
    now: i64,
) -> rusqlite::Result<i64> {
    let params = serde_json::to_string(params).unwrap_or_else(|_| "{}".to_owned());
    conn.execute(
        "INSERT INTO credentials (name, kind, params, secrets, created_at, updated_at)
         VALUES (?1, ?2, ?3, '{}', ?4, ?4)",
        (name, kind.as_str(), params, now),
    )?;
    Ok(conn.last_insert_rowid())
}

/// Replaces the name and non-secret fields.
pub fn update(
    conn: &Connection,
    id: i64,
    name: &str,
    params: &CredentialParams,
    now: i64,
) -> rusqlite::Result<()> {
    let params = serde_json::to_string(params).unwrap_or_else(|_| "{}".to_owned());
    conn.execute(
        "UPDATE credentials SET name = ?2, params = ?3, updated_at = ?4 WHERE id = ?1",
        (id, name, params, now),
    )?;
    Ok(())
}

/// Replaces the networks.
pub fn set_networks(conn: &Connection, id: i64, networks: &[String]) -> rusqlite::Result<()> {
    let networks = serde_json::to_string(networks).unwrap_or_else(|_| "[]".to_owned());
    conn.execute(
        "UPDATE credentials SET networks = ?2 WHERE id = ?1",
        (id, networks),
    )?;
    Ok(())
}

/// The (name, address) of every node a credential is attached to.
pub fn attached_addresses(conn: &Connection, id: i64) -> rusqlite::Result<Vec<(String, String)>> {
    conn.prepare(
        "SELECT n.name, n.address FROM node_credentials nc JOIN nodes n ON n.id = nc.node_id
          WHERE nc.credential_id = ?1 ORDER BY n.name",
    )?
    .query_map([id], |r| Ok((r.get(0)?, r.get(1)?)))?
    .collect()
}

/// Every credential's networks by id (for checking attachments).
pub fn networks_by_id(
    conn: &Connection,
) -> rusqlite::Result<std::collections::HashMap<i64, (String, Vec<String>)>> {
    conn.prepare("SELECT id, name, networks FROM credentials")?
        .query_map([], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                (r.get::<_, String>(1)?, super::json_column(r, 2)?),
            ))
        })?
        .collect()
}

/// Replaces the sealed secrets document.
pub fn set_secrets(conn: &Connection, id: i64, sealed: &str) -> rusqlite::Result<()> {
    conn.execute(
        "UPDATE credentials SET secrets = ?2 WHERE id = ?1",
        (id, sealed),
    )?;
    Ok(())
}

/// Deletes a credential; it is detached from every node.
pub fn delete(conn: &Connection, id: i64) -> rusqlite::Result<usize> {
    conn.execute("DELETE FROM credentials WHERE id = ?1", [id])
}
