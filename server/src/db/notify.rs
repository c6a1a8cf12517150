//! `notification_channels`, the durable `notifications` queue (which is also the delivery
//! log), and `maintenance_windows`.

use plantwatch_shared::api::{
    Channel, ChannelKind, ChannelSettings, Delivery, MaintenanceScope, Recurrence, Severity,
};
use rusqlite::{Connection, OptionalExtension as _, Row};

use super::{parsed, to_json, to_time};
use crate::alerting::maintenance::WindowRow;

/// A channel as stored: its secrets still sealed.
#[derive(Debug, Clone)]
pub struct ChannelRow {
    pub channel: Channel,
    pub sealed_secrets: String,
}

const CHANNEL_SELECT: &str = "SELECT id, name, kind, config, secrets, min_severity, route_tags,
       route_collectors, repeat_secs, send_resolved, enabled FROM notification_channels";

fn channel_row(row: &Row<'_>) -> rusqlite::Result<ChannelRow> {
    let config: String = row.get(3)?;
    let sealed: String = row.get(4)?;
    let secret_names: Vec<String> =
        serde_json::from_str::<std::collections::BTreeMap<String, String>>(&sealed)
            .map(|m| m.into_keys().collect())
            .unwrap_or_default();
    let tags: String = row.get(6)?;
    let collectors: String = row.get(7)?;
    Ok(ChannelRow {
        channel: Channel {
            id: row.get(0)?,
            name: row.get(1)?,
            kind: parsed(row, 2)?,
            settings: serde_json::from_str(&config).unwrap_or_default(),
            secrets: secret_names,
            min_severity: parsed(row, 5)?,
            tags: serde_json::from_str(&tags).unwrap_or_default(),
            collectors: serde_json::from_str(&collectors).unwrap_or_default(),
            repeat_s: row.get(8)?,
            send_resolved: row.get(9)?,
            enabled: row.get(10)?,
        },
        sealed_secrets: sealed,
    })
}

pub fn list_channels(conn: &Connection) -> rusqlite::Result<Vec<ChannelRow>> {
    conn.prepare_cached(&format!("{CHANNEL_SELECT} ORDER BY name COLLATE NOCASE"))?
        .query_map([], channel_row)?
        .collect()
}

pub fn get_channel(conn: &Connection, id: i64) -> rusqlite::Result<Option<ChannelRow>> {
    conn.query_row(
        &format!("{CHANNEL_SELECT} WHERE id = ?1"),
        [id],
        channel_row,
    )
    .optional()
}

pub fn channel_by_name(conn: &Connection, name: &str) -> rusqlite::Result<Option<ChannelRow>> {
    conn.query_row(
        &format!("{CHANNEL_SELECT} WHERE name = ?1 COLLATE NOCASE"),
        [name],
        channel_row,
    )
    .optional()
}

/// The stored fields of a channel other than its secrets.
#[derive(Debug, Clone)]
pub struct ChannelFields<'a> {
    pub name: &'a str,
    pub kind: ChannelKind,
    pub settings: &'a ChannelSettings,
    pub min_severity: Severity,
    pub tags: &'a [String],
    pub collectors: &'a [String],
    pub repeat_s: u32,
    pub send_resolved: bool,
    pub enabled: bool,
}

pub fn insert_channel(
    conn: &Connection,
    fields: &ChannelFields<'_>,
    now: i64,
) -> rusqlite::Result<i64> {
    conn.execute(
        "INSERT INTO notification_channels (name, kind, config, min_severity, route_tags,
             route_collectors, repeat_secs, send_resolved, enabled, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?10)",
        rusqlite::params![
            fields.name,
            fields.kind.as_str(),
            to_json(fields.settings),
            fields.min_severity.as_str(),
            to_json(&fields.tags),
            to_json(&fields.collectors),
            fields.repeat_s,
            fields.send_resolved,
            fields.enabled,
            now
        ],
    )?;
    Ok(conn.last_insert_rowid())
}

pub fn update_channel(
    conn: &Connection,
    id: i64,
    fields: &ChannelFields<'_>,
    now: i64,
) -> rusqlite::Result<()> {
    conn.execute(
        "UPDATE notification_channels SET name = ?2, kind = ?3, config = ?4, min_severity = ?5,
             route_tags = ?6, route_collectors = ?7, repeat_secs = ?8, send_resolved = ?9,
             enabled = ?10, updated_at = ?11
         WHERE id = ?1",
        rusqlite::params![
            id,
            fields.name,
            fields.kind.as_str(),
            to_json(fields.settings),
            fields.min_severity.as_str(),
            to_json(&fields.tags),
            to_json(&fields.collectors),
            fields.repeat_s,
            fields.send_resolved,
            fields.enabled,
            now
        ],
    )?;
    Ok(())
}

pub fn set_channel_secrets(conn: &Connection, id: i64, sealed: &str) -> rusqlite::Result<()> {
    conn.execute(
        "UPDATE notification_channels SET secrets = ?2 WHERE id = ?1",
        rusqlite::params![id, sealed],
    )?;
    Ok(())
}

pub fn delete_channel(conn: &Connection, id: i64) -> rusqlite::Result<usize> {
    conn.execute("DELETE FROM notification_channels WHERE id = ?1", [id])
}

/// Queues one notification.
pub fn enqueue(
    conn: &Connection,
    channel_id: i64,
    alert_id: Option<i64>,
    event: &str,
    payload: &str,
    now: i64,
) -> rusqlite::Result<i64> {
    conn.prepare_cached(
        "INSERT INTO notifications (channel_id, alert_id, event, payload, next_attempt_at, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
    )?
    .execute(rusqlite::params![channel_id, alert_id, event, payload, now])?;
    Ok(conn.last_insert_rowid())
}

/// A queued notification that is due.
#[derive(Debug, Clone)]
pub struct Due {
    pub id: i64,
    pub channel_id: i64,
    pub payload: String,
    pub attempts: u32,
}

pub fn due(conn: &Connection, now: i64, limit: u32) -> rusqlite::Result<Vec<Due>> {
    conn.prepare_cached(
        "SELECT id, channel_id, payload, attempts FROM notifications
          WHERE state = 'queued' AND next_attempt_at <= ?1 ORDER BY id LIMIT ?2",
    )?
    .query_map(rusqlite::params![now, limit], |row| {
        Ok(Due {
            id: row.get(0)?,
            channel_id: row.get(1)?,
            payload: row.get(2)?,
            attempts: row.get(3)?,
        })
    })?
    .collect()
}

pub fn mark_sent(conn: &Connection, id: i64, now: i64) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "UPDATE notifications SET state = 'sent', attempts = attempts + 1, sent_at = ?2,
             last_error = NULL WHERE id = ?1",
    )?
    .execute(rusqlite::params![id, now])?;
    Ok(())
}

/// Records a failed attempt: retried at `next_attempt_at`, or given up (`failed`) when `None`.
pub fn mark_failed(
    conn: &Connection,
    id: i64,
    error: &str,
    next_attempt_at: Option<i64>,
) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "UPDATE notifications SET attempts = attempts + 1, last_error = ?2,
             state = CASE WHEN ?3 IS NULL THEN 'failed' ELSE 'queued' END,
             next_attempt_at = coalesce(?3, next_attempt_at)
          WHERE id = ?1",
    )?
    .execute(rusqlite::params![id, error, next_attempt_at])?;
    Ok(())
}

/// When an alert was last queued for a channel (for repeats).
pub fn last_queued(
    conn: &Connection,
    alert_id: i64,
    channel_id: i64,
) -> rusqlite::Result<Option<i64>> {
    conn.prepare_cached(
        "SELECT max(created_at) FROM notifications WHERE alert_id = ?1 AND channel_id = ?2",
    )?
    .query_row(rusqlite::params![alert_id, channel_id], |r| r.get(0))
}

/// The delivery log of an alert.
pub fn deliveries(conn: &Connection, alert_id: i64) -> rusqlite::Result<Vec<Delivery>> {
    conn.prepare(
        "SELECT q.id, c.name, q.event, q.state, q.attempts, q.last_error, q.created_at, q.sent_at
           FROM notifications q JOIN notification_channels c ON c.id = q.channel_id
          WHERE q.alert_id = ?1 ORDER BY q.id",
    )?
    .query_map([alert_id], |row| {
        Ok(Delivery {
            id: row.get(0)?,
            channel: row.get(1)?,
            event: row.get(2)?,
            state: row.get(3)?,
            attempts: row.get(4)?,
            last_error: row.get(5)?,
            created_at: to_time(row.get(6)?),
            sent_at: row.get::<_, Option<i64>>(7)?.map(to_time),
        })
    })?
    .collect()
}

const WINDOW_SELECT: &str = "SELECT id, name, scope_kind, scope_value, starts_at, ends_at,
       recurrence, ended_at, created_by FROM maintenance_windows";

fn window_row(row: &Row<'_>) -> rusqlite::Result<WindowRow> {
    Ok(WindowRow {
        id: row.get(0)?,
        name: row.get(1)?,
        scope: parsed::<MaintenanceScope>(row, 2)?,
        target: row.get(3)?,
        starts_at: row.get(4)?,
        ends_at: row.get(5)?,
        recurrence: parsed::<Recurrence>(row, 6)?,
        ended_at: row.get(7)?,
        created_by: row.get(8)?,
    })
}

/// Every window, newest first.
pub fn windows(conn: &Connection) -> rusqlite::Result<Vec<WindowRow>> {
    conn.prepare_cached(&format!("{WINDOW_SELECT} ORDER BY id DESC"))?
        .query_map([], window_row)?
        .collect()
}

/// Windows that may be under way at `now` or later (not ended by hand, not over).
pub fn live_windows(conn: &Connection, now: i64) -> rusqlite::Result<Vec<WindowRow>> {
    conn.prepare_cached(&format!(
        "{WINDOW_SELECT} WHERE (ended_at IS NULL OR ended_at > ?1)
            AND (recurrence <> 'none' OR ends_at > ?1)"
    ))?
    .query_map([now], window_row)?
    .collect()
}

pub fn get_window(conn: &Connection, id: i64) -> rusqlite::Result<Option<WindowRow>> {
    conn.query_row(&format!("{WINDOW_SELECT} WHERE id = ?1"), [id], window_row)
        .optional()
}

pub fn insert_window(conn: &Connection, window: &WindowRow, now: i64) -> rusqlite::Result<i64> {
    conn.execute(
        "INSERT INTO maintenance_windows (name, scope_kind, scope_value, starts_at, ends_at,
             recurrence, created_by, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        rusqlite::params![
            window.name,
            window.scope.as_str(),
            window.target,
            window.starts_at,
            window.ends_at,
            window.recurrence.as_str(),
            window.created_by,
            now
        ],
    )?;
    Ok(conn.last_insert_rowid())
}

/// Ends a window now (and its future occurrences).
pub fn end_window(conn: &Connection, id: i64, now: i64) -> rusqlite::Result<usize> {
    conn.execute(
        "UPDATE maintenance_windows SET ended_at = ?2 WHERE id = ?1 AND ended_at IS NULL",
        rusqlite::params![id, now],
    )
}
