//! The `audit_log` table: one row for every write, in the same transaction as the write.

use plantwatch_shared::api::{AuditAction, AuditEntry, AuditQuery};
use rusqlite::{Connection, params_from_iter, types::Value};

use super::to_time;

/// Who did something, from where.
#[derive(Debug, Clone)]
pub struct Actor {
    pub user_id: Option<i64>,
    pub name: String,
    pub source: Option<String>,
}

impl Actor {
    /// The server itself, for what it does on its own.
    pub fn system() -> Actor {
        Actor {
            user_id: None,
            name: "system".to_owned(),
            source: None,
        }
    }
}

/// Appends one entry.
pub fn record(
    conn: &Connection,
    actor: &Actor,
    action: AuditAction,
    target: Option<&str>,
    details: Option<&serde_json::Value>,
    now: i64,
) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO audit_log (at, user_id, actor, action, target, source, details)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        (
            now,
            actor.user_id,
            &actor.name,
            action.as_str(),
            target,
            &actor.source,
            details.map(|d| d.to_string()),
        ),
    )?;
    Ok(())
}

/// A page of entries, newest first, and the number matching.
pub fn list(
    conn: &Connection,
    query: &AuditQuery,
    limit: u32,
    offset: u32,
) -> rusqlite::Result<(Vec<AuditEntry>, u64)> {
    let mut filter = String::from(" WHERE 1 = 1");
    let mut args: Vec<Value> = Vec::new();
    if let Some(action) = &query.action {
        // `user` matches `user.create`, `user.delete`, …; `user.create` matches itself.
        filter.push_str(" AND (action = ? OR action LIKE ? || '.%')");
        args.push(Value::Text(action.clone()));
        args.push(Value::Text(action.clone()));
    }
    if let Some(target) = &query.target {
        filter.push_str(" AND target = ?");
        args.push(Value::Text(target.clone()));
    }
    if let Some(actor) = &query.actor {
        filter.push_str(" AND actor = ? COLLATE NOCASE");
        args.push(Value::Text(actor.clone()));
    }
    let total: i64 = conn.query_row(
        &format!("SELECT count(*) FROM audit_log{filter}"),
        params_from_iter(args.iter()),
        |r| r.get(0),
    )?;
    let sql = format!(
        "SELECT id, at, user_id, actor, action, target, source, details FROM audit_log{filter}
         ORDER BY id DESC LIMIT ? OFFSET ?"
    );
    args.push(Value::Integer(limit.into()));
    args.push(Value::Integer(offset.into()));
    let mut statement = conn.prepare(&sql)?;
    let items = statement
        .query_map(params_from_iter(args.iter()), |row| {
            let details: Option<String> = row.get(7)?;
            Ok(AuditEntry {
                id: row.get(0)?,
                at: to_time(row.get(1)?),
                user_id: row.get(2)?,
                actor: row.get(3)?,
                action: AuditAction::parse(&row.get::<_, String>(4)?),
                target: row.get(5)?,
                source: row.get(6)?,
                details: details.and_then(|d| serde_json::from_str(&d).ok()),
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok((items, total.max(0) as u64))
}
