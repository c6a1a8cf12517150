//! The `events` table: traps and syslog messages the collectors received, each stored once
//! (by the collector's own id of it), matched to the node whose address sent it.

use plantwatch_shared::api::{CollectedEvent, Event, EventQuery, MAX_EVENT_PAGE, Receivers};
use rusqlite::{Connection, OptionalExtension as _, params_from_iter};

use super::{json_column, to_json};
use crate::alerting::kinds::events::RuleEvent;

/// Longest message kept, characters (the raw document keeps every varbind, bounded below).
pub const MAX_MESSAGE_CHARS: usize = 4_096;
/// Largest event document stored, bytes.
pub const MAX_DOC_BYTES: usize = 64 * 1024;

/// Stores the events collector `collector_id` sent; those it sent before are skipped. Returns
/// how many were new.
pub fn insert(
    conn: &Connection,
    collector_id: i64,
    events: &[CollectedEvent],
) -> rusqlite::Result<usize> {
    let mut node_of = conn.prepare_cached(
        "SELECT id FROM nodes
          WHERE address = ?1 OR address LIKE ?1 || ':%' OR address = '[' || ?1 || ']'
             OR address LIKE '[' || ?1 || ']:%'
          ORDER BY collector_id IS ?2 DESC, id LIMIT 1",
    )?;
    let mut insert = conn.prepare_cached(
        "INSERT INTO events (collector_id, uid, node_id, source, kind, severity, received_at,
                             summary, doc)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
         ON CONFLICT (collector_id, uid) DO NOTHING",
    )?;
    let mut stored = 0;
    // The templates' trap names, read once if a trap the collector could not name came.
    let mut template_traps = None;
    for event in events {
        let mut event = event.clone();
        if let Some(trap) = event.trap.as_mut()
            && trap.name.is_none()
            && !trap.oid.is_empty()
        {
            let names = match &template_traps {
                Some(names) => names,
                None => template_traps.insert(crate::templates::trap_names(conn)?),
            };
            if let Some((name, severity)) = names.get(&trap.oid) {
                trap.name = Some(name.clone());
                event.severity = *severity;
                if let Some(rest) = event.message.strip_prefix(trap.oid.as_str()) {
                    event.message = format!("{name}{rest}");
                }
            }
        }
        event.message = clean(&event.message);
        // A v1 trap names its agent in the PDU: the node is the one with that address, when
        // the sender (a proxy, a NAT) is not a node itself.
        let agent = event.trap.as_ref().and_then(|t| t.agent_address.clone());
        let node_id: Option<i64> = node_of
            .query_row((&event.source, collector_id), |r| r.get(0))
            .optional()?;
        let node_id = match (node_id, agent) {
            (None, Some(agent)) => node_of
                .query_row((&agent, collector_id), |r| r.get(0))
                .optional()?,
            (found, _) => found,
        };
        let mut doc = to_json(&event);
        if doc.len() > MAX_DOC_BYTES {
            // Thousands of varbinds: keep the message and what the trap was, not all of them.
            if let Some(trap) = &mut event.trap {
                trap.varbinds.truncate(64);
            }
            doc = to_json(&event);
        }
        stored += insert.execute((
            collector_id,
            &event.uid,
            node_id,
            &event.source,
            event.kind.as_str(),
            event.severity.code(),
            (event.received_at.unix_timestamp_nanos() / 1_000_000) as i64,
            summary(&event),
            doc,
        ))?;
    }
    Ok(stored)
}

/// The message as stored: characters a terminal must not be handed replaced, and bounded.
fn clean(message: &str) -> String {
    message
        .chars()
        .take(MAX_MESSAGE_CHARS)
        .map(|c| {
            if plantwatch_shared::rules::is_unsafe_char(c) {
                '\u{FFFD}'
            } else {
                c
            }
        })
        .collect()
}

/// What `q` searches: the message, the trap's name and OID, the program, the source.
fn summary(event: &CollectedEvent) -> String {
    let mut text = event.message.clone();
    if let Some(trap) = &event.trap {
        text.push(' ');
        text.push_str(&trap.oid);
        if let Some(name) = &trap.name {
            text.push(' ');
            text.push_str(name);
        }
    }
    if let Some(program) = event.syslog.as_ref().and_then(|s| s.program.as_ref()) {
        text.push(' ');
        text.push_str(program);
    }
    text.push(' ');
    text.push_str(&event.source);
    text
}

/// Events matching `query`: newest first, or oldest first after `after_id`; and how many
/// match in all (not counted when following).
pub fn list(conn: &Connection, query: &EventQuery) -> rusqlite::Result<(Vec<Event>, u64)> {
    let mut filters = Vec::new();
    let mut values: Vec<rusqlite::types::Value> = Vec::new();
    let mut bind = |filter: &str, value: rusqlite::types::Value| {
        values.push(value);
        filters.push(filter.replace('?', &format!("?{}", values.len())));
    };
    if let Some(node_id) = query.node_id {
        bind("e.node_id = ?", node_id.into());
    }
    if let Some(severity) = query.severity {
        bind("e.severity <= ?", i64::from(severity.code()).into());
    }
    if let Some(kind) = query.kind {
        bind("e.kind = ?", kind.as_str().to_owned().into());
    }
    if let Some(q) = query.q.as_deref().map(str::trim).filter(|q| !q.is_empty()) {
        let pattern = format!(
            "%{}%",
            q.replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_")
        );
        bind("e.summary LIKE ? ESCAPE '\\'", pattern.into());
    }
    if let Some(from) = query.from {
        bind(
            "e.received_at >= ?",
            ((from.unix_timestamp_nanos() / 1_000_000) as i64).into(),
        );
    }
    if let Some(to) = query.to {
        bind(
            "e.received_at < ?",
            ((to.unix_timestamp_nanos() / 1_000_000) as i64).into(),
        );
    }
    if let Some(after) = query.after_id {
        bind("e.id > ?", after.into());
    }
    if query.unknown == Some(true) {
        filters.push("e.node_id IS NULL".into());
    }
    let filter = if filters.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", filters.join(" AND "))
    };
    let limit = query.limit.unwrap_or(100).clamp(1, MAX_EVENT_PAGE);
    let order = if query.after_id.is_some() {
        "e.id ASC"
    } else {
        "e.received_at DESC, e.id DESC"
    };
    let sql = format!(
        "SELECT e.id, e.node_id, n.name, e.collector_id, c.name, e.doc FROM events e
           LEFT JOIN nodes n ON n.id = e.node_id
           JOIN remote_components c ON c.id = e.collector_id
         {filter} ORDER BY {order} LIMIT {limit}"
    );
    let items = conn
        .prepare(&sql)?
        .query_map(params_from_iter(values.iter()), |r| {
            Ok(Event {
                id: r.get(0)?,
                node_id: r.get(1)?,
                node: r.get(2)?,
                collector_id: r.get(3)?,
                collector: r.get(4)?,
                event: json_column(r, 5)?,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let total = if query.after_id.is_some() {
        items.len() as u64
    } else {
        conn.prepare(&format!("SELECT count(*) FROM events e {filter}"))?
            .query_row(params_from_iter(values.iter()), |r| r.get::<_, i64>(0))? as u64
    };
    Ok((items, total))
}

/// The settings key of the last event the event rules judged.
const RULES_CURSOR: &str = "event_rules_cursor";

/// The events the event rules have not judged yet, oldest first, at most `limit`, and the
/// cursor to store once they are (`None`: unchanged). Without event rules none are read and
/// the cursor moves past them all.
pub fn for_rules(
    conn: &Connection,
    wanted: bool,
    limit: usize,
) -> rusqlite::Result<(Vec<RuleEvent>, Option<i64>)> {
    let stored: i64 = super::settings::get(conn, RULES_CURSOR)?
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let newest: i64 =
        conn.query_row("SELECT coalesce(max(id), 0) FROM events", [], |r| r.get(0))?;
    // Retention emptied the table and ids began again: judge from the start.
    let cursor = if newest < stored { 0 } else { stored };
    if !wanted {
        return Ok((Vec::new(), (newest != stored).then_some(newest)));
    }
    let events = conn
        .prepare_cached(
            "SELECT id, node_id, collector_id, doc FROM events WHERE id > ?1 ORDER BY id LIMIT ?2",
        )?
        .query_map((cursor, limit as i64), |r| {
            Ok(RuleEvent {
                id: r.get(0)?,
                node_id: r.get(1)?,
                collector_id: r.get(2)?,
                event: json_column(r, 3)?,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let next = events.last().map_or(cursor, |e| e.id);
    Ok((events, (next != stored).then_some(next)))
}

/// Stores the event rules' cursor.
pub fn set_rules_cursor(conn: &Connection, cursor: i64, now: i64) -> rusqlite::Result<()> {
    super::settings::set(conn, RULES_CURSOR, &cursor.to_string(), now)
}

/// Deletes events received before `before_ms`, then the oldest beyond `max_rows`; how many.
pub fn sweep(conn: &Connection, before_ms: i64, max_rows: u64) -> rusqlite::Result<usize> {
    let mut deleted = conn.execute("DELETE FROM events WHERE received_at < ?1", [before_ms])?;
    let count: i64 = conn.query_row("SELECT count(*) FROM events", [], |r| r.get(0))?;
    let over = count - i64::try_from(max_rows).unwrap_or(i64::MAX);
    if over > 0 {
        deleted += conn.execute(
            "DELETE FROM events WHERE id IN
                (SELECT id FROM events ORDER BY received_at, id LIMIT ?1)",
            [over],
        )?;
    }
    Ok(deleted)
}

/// The receivers of collector `id`.
pub fn receivers(conn: &Connection, id: i64) -> rusqlite::Result<Receivers> {
    let text: Option<String> = conn
        .query_row(
            "SELECT receivers FROM remote_components WHERE id = ?1",
            [id],
            |r| r.get(0),
        )
        .optional()?
        .flatten();
    Ok(text
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default())
}

/// Sets the receivers of collector `id`; whether it exists.
pub fn set_receivers(conn: &Connection, id: i64, receivers: &Receivers) -> rusqlite::Result<bool> {
    let text = (!receivers.is_empty()).then(|| to_json(receivers));
    Ok(conn.execute(
        "UPDATE remote_components SET receivers = ?2 WHERE id = ?1 AND kind = 'collector'",
        (id, text),
    )? > 0)
}

#[cfg(test)]
mod tests {
    use plantwatch_shared::api::{EventKind, EventSeverity};

    use super::*;

    fn event(uid: &str, source: &str, message: &str) -> CollectedEvent {
        CollectedEvent {
            uid: uid.into(),
            kind: EventKind::Syslog,
            source: source.into(),
            severity: EventSeverity::Warning,
            message: message.into(),
            received_at: time::OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap(),
            trap: None,
            syslog: None,
        }
    }

    #[test]
    fn an_event_sent_twice_is_stored_once_and_matched_by_address() {
        let mut conn = Connection::open_in_memory().unwrap();
        crate::db::migrate(&mut conn, "mem").unwrap();
        conn.execute_batch(
            "INSERT INTO remote_components (id, kind, name, machine_id, api_key_hash, created_at)
                 VALUES (1, 'collector', 'hall-a', 'm1', 'x', 0);
             INSERT INTO nodes (id, name, address, node_type, collector_id, created_at, updated_at)
                 VALUES (5, 'plc-gw', '10.0.0.5:161', 'plc', 1, 0, 0);",
        )
        .unwrap();
        let batch = [
            event("a-1", "10.0.0.5", "link lost\u{1b}[2J"),
            event("a-2", "10.0.0.99", "who am I"),
        ];
        assert_eq!(insert(&conn, 1, &batch).unwrap(), 2);
        // The outbox resends the batch: nothing new.
        assert_eq!(insert(&conn, 1, &batch).unwrap(), 0);
        let (all, total) = list(&conn, &EventQuery::default()).unwrap();
        assert_eq!(total, 2);
        let plc = all.iter().find(|e| e.event.uid == "a-1").unwrap();
        assert_eq!(
            (plc.node_id, plc.node.as_deref()),
            (Some(5), Some("plc-gw"))
        );
        assert_eq!(
            plc.event.message, "link lost\u{FFFD}[2J",
            "no escape reaches a terminal"
        );
        let unknown = all.iter().find(|e| e.event.uid == "a-2").unwrap();
        assert_eq!(unknown.node_id, None);
        // A trap the collector could not name gets its template's name and severity.
        crate::templates::load_at_start(
            &mut conn,
            &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("templates"),
        )
        .unwrap();
        let mut low = event("a-3", "10.0.0.5", "1.3.6.1.4.1.318.0.7 battery");
        low.kind = EventKind::Trap;
        low.severity = EventSeverity::Notice;
        low.trap = Some(plantwatch_shared::api::TrapInfo {
            version: "v1".into(),
            inform: false,
            oid: "1.3.6.1.4.1.318.0.7".into(),
            name: None,
            uptime: None,
            agent_address: None,
            varbinds: Vec::new(),
        });
        assert_eq!(insert(&conn, 1, &[low]).unwrap(), 1);
        let named = list(
            &conn,
            &EventQuery {
                q: Some("lowBattery".into()),
                ..EventQuery::default()
            },
        )
        .unwrap()
        .0;
        assert_eq!(named.len(), 1, "found by its name");
        let low = &named[0].event;
        assert_eq!(
            (low.trap.as_ref().unwrap().name.as_deref(), low.severity),
            (Some("lowBattery"), EventSeverity::Critical)
        );
        assert_eq!(low.message, "lowBattery battery");
        conn.execute("DELETE FROM events WHERE uid = 'a-3'", [])
            .unwrap();
        // Retention: by age, then by count, oldest first.
        assert_eq!(sweep(&conn, 0, 1).unwrap(), 1);
        assert_eq!(list(&conn, &EventQuery::default()).unwrap().1, 1);
        assert_eq!(sweep(&conn, 1_900_000_000_000, 100).unwrap(), 1);
    }
}
