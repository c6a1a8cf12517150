//! `alert_definitions`, `alerts`, `alert_events` and `health_changes`.

use std::collections::BTreeMap;

use plantwatch_shared::api::{
    Alert, AlertEvent, AlertQuery, AlertRule, AlertState, BuiltinRule, HealthChange, NodeStatus,
    RuleSpec, Severity,
};
use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension as _, Row};

use super::{parsed, parsed_opt, to_time};
use crate::alerting::rules::NodeFacts;

const RULE_SELECT: &str = "SELECT id, name, builtin, enabled, description, metric, tag_matchers,
       scope_kind, scope_value, aggregation, window_secs, comparison, warning, critical, clear,
       for_secs, created_at, updated_at, event
  FROM alert_definitions";

fn rule_row(row: &Row<'_>) -> rusqlite::Result<AlertRule> {
    let tags: String = row.get(6)?;
    let event: Option<String> = row.get(18)?;
    Ok(AlertRule {
        id: row.get(0)?,
        builtin: parsed_opt(row, 2)?,
        spec: RuleSpec {
            name: row.get(1)?,
            enabled: row.get(3)?,
            description: row.get(4)?,
            metric: row.get(5)?,
            tags: serde_json::from_str(&tags).unwrap_or_default(),
            scope: parsed(row, 7)?,
            scope_value: row.get(8)?,
            aggregation: parsed(row, 9)?,
            window_s: row.get(10)?,
            comparison: parsed(row, 11)?,
            warning: row.get(12)?,
            critical: row.get(13)?,
            clear: row.get(14)?,
            for_s: row.get(15)?,
            event: event.and_then(|e| serde_json::from_str(&e).ok()),
        },
        created_at: to_time(row.get(16)?),
        updated_at: to_time(row.get(17)?),
    })
}

/// Stores the built-in rules that are missing (a new server, or a new built-in). Existing
/// ones keep their tuning.
pub fn seed_builtins(
    conn: &Connection,
    defaults: &[(BuiltinRule, RuleSpec)],
    now: i64,
) -> rusqlite::Result<()> {
    for (builtin, spec) in defaults {
        let exists: bool = conn.query_row(
            "SELECT EXISTS (SELECT 1 FROM alert_definitions WHERE builtin = ?1)",
            [builtin.as_str()],
            |r| r.get(0),
        )?;
        if !exists {
            insert_rule(conn, spec, Some(*builtin), now)?;
        }
    }
    Ok(())
}

/// Every rule, built-in first, then by name.
pub fn list_rules(conn: &Connection) -> rusqlite::Result<Vec<AlertRule>> {
    conn.prepare_cached(&format!(
        "{RULE_SELECT} ORDER BY builtin IS NULL, name COLLATE NOCASE"
    ))?
    .query_map([], rule_row)?
    .collect()
}

pub fn get_rule(conn: &Connection, id: i64) -> rusqlite::Result<Option<AlertRule>> {
    conn.query_row(&format!("{RULE_SELECT} WHERE id = ?1"), [id], rule_row)
        .optional()
}

pub fn rule_by_name(conn: &Connection, name: &str) -> rusqlite::Result<Option<AlertRule>> {
    conn.query_row(
        &format!("{RULE_SELECT} WHERE name = ?1 COLLATE NOCASE"),
        [name],
        rule_row,
    )
    .optional()
}

fn rule_params(spec: &RuleSpec) -> Vec<Value> {
    let opt_text = |v: &Option<String>| v.clone().map_or(Value::Null, Value::Text);
    let opt_real = |v: Option<f64>| v.map_or(Value::Null, Value::Real);
    vec![
        Value::Text(spec.name.trim().to_owned()),
        Value::Integer(i64::from(spec.enabled)),
        opt_text(&spec.description),
        opt_text(&spec.metric),
        Value::Text(serde_json::to_string(&spec.tags).unwrap_or_else(|_| "{}".into())),
        Value::Text(spec.scope.as_str().to_owned()),
        opt_text(&spec.scope_value),
        Value::Text(spec.aggregation.as_str().to_owned()),
        Value::Integer(i64::from(spec.window_s)),
        Value::Text(spec.comparison.as_str().to_owned()),
        opt_real(spec.warning),
        opt_real(spec.critical),
        opt_real(spec.clear),
        Value::Integer(i64::from(spec.for_s)),
        spec.event
            .as_ref()
            .and_then(|e| serde_json::to_string(e).ok())
            .map_or(Value::Null, Value::Text),
    ]
}

pub fn insert_rule(
    conn: &Connection,
    spec: &RuleSpec,
    builtin: Option<BuiltinRule>,
    now: i64,
) -> rusqlite::Result<i64> {
    let mut params = rule_params(spec);
    params.push(builtin.map_or(Value::Null, |b| Value::Text(b.as_str().to_owned())));
    params.push(Value::Integer(now));
    conn.execute(
        "INSERT INTO alert_definitions (name, enabled, description, metric, tag_matchers,
             scope_kind, scope_value, aggregation, window_secs, comparison, warning, critical,
             clear, for_secs, event, builtin, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?17)",
        rusqlite::params_from_iter(params),
    )?;
    Ok(conn.last_insert_rowid())
}

pub fn update_rule(conn: &Connection, id: i64, spec: &RuleSpec, now: i64) -> rusqlite::Result<()> {
    let mut params = rule_params(spec);
    params.push(Value::Integer(now));
    params.push(Value::Integer(id));
    conn.execute(
        "UPDATE alert_definitions SET name = ?1, enabled = ?2, description = ?3, metric = ?4,
             tag_matchers = ?5, scope_kind = ?6, scope_value = ?7, aggregation = ?8,
             window_secs = ?9, comparison = ?10, warning = ?11, critical = ?12, clear = ?13,
             for_secs = ?14, event = ?15, updated_at = ?16
         WHERE id = ?17",
        rusqlite::params_from_iter(params),
    )?;
    Ok(())
}

pub fn delete_rule(conn: &Connection, id: i64) -> rusqlite::Result<usize> {
    conn.execute(
        "DELETE FROM alert_definitions WHERE id = ?1 AND builtin IS NULL",
        [id],
    )
}

/// What the evaluator keeps of an open alert.
#[derive(Debug, Clone, PartialEq)]
pub struct OpenAlert {
    pub id: i64,
    pub rule_id: i64,
    pub node_id: Option<i64>,
    pub collector_id: Option<i64>,
    pub series: String,
    pub state: AlertState,
    pub severity: Severity,
    pub value: Option<f64>,
    pub message: String,
    pub flapping: bool,
    pub held: bool,
    pub suppressed: bool,
    pub acked: bool,
    pub started_at: i64,
    pub fired_at: Option<i64>,
    pub notified_at: Option<i64>,
    /// An event rule's alert: the last event that opened or refreshed it (UNIX seconds).
    pub last_event_at: Option<i64>,
}

/// Every pending or firing alert (read once when the evaluator starts).
pub fn open_alerts(conn: &Connection) -> rusqlite::Result<Vec<OpenAlert>> {
    conn.prepare(
        "SELECT id, definition_id, node_id, collector_id, series, state, severity, value,
                message, flapping, held, suppressed, acked_at IS NOT NULL, started_at, fired_at,
                notified_at, last_event_at
           FROM alerts WHERE state <> 'resolved'",
    )?
    .query_map([], |row| {
        Ok(OpenAlert {
            id: row.get(0)?,
            rule_id: row.get(1)?,
            node_id: row.get(2)?,
            collector_id: row.get(3)?,
            series: row.get(4)?,
            state: parsed(row, 5)?,
            severity: parsed(row, 6)?,
            value: row.get(7)?,
            message: row.get(8)?,
            flapping: row.get(9)?,
            held: row.get(10)?,
            suppressed: row.get(11)?,
            acked: row.get(12)?,
            started_at: row.get(13)?,
            fired_at: row.get(14)?,
            notified_at: row.get(15)?,
            last_event_at: row.get(16)?,
        })
    })?
    .collect()
}

/// Stores a new open alert and returns its id.
pub fn insert_alert(conn: &Connection, alert: &OpenAlert, now: i64) -> rusqlite::Result<i64> {
    conn.prepare_cached(
        "INSERT INTO alerts (definition_id, node_id, collector_id, series, state, severity, value,
             message, flapping, held, suppressed, started_at, fired_at, updated_at,
             last_event_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
    )?
    .execute(rusqlite::params![
        alert.rule_id,
        alert.node_id,
        alert.collector_id,
        alert.series,
        alert.state.as_str(),
        alert.severity.as_str(),
        alert.value,
        alert.message,
        alert.flapping,
        alert.held,
        alert.suppressed,
        alert.started_at,
        alert.fired_at,
        now,
        alert.last_event_at,
    ])?;
    Ok(conn.last_insert_rowid())
}

/// Writes the evaluator's view of an open alert back.
pub fn update_alert(conn: &Connection, alert: &OpenAlert, now: i64) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "UPDATE alerts SET state = ?2, severity = ?3, value = ?4, message = ?5, flapping = ?6,
             held = ?7, suppressed = ?8, fired_at = ?9, notified_at = ?10, updated_at = ?11,
             last_event_at = ?12
         WHERE id = ?1",
    )?
    .execute(rusqlite::params![
        alert.id,
        alert.state.as_str(),
        alert.severity.as_str(),
        alert.value,
        alert.message,
        alert.flapping,
        alert.held,
        alert.suppressed,
        alert.fired_at,
        alert.notified_at,
        now,
        alert.last_event_at,
    ])?;
    Ok(())
}

/// Resolves an alert and records it in its history (`why`, when it is not the value).
pub fn resolve_alert(
    conn: &Connection,
    id: i64,
    value: Option<f64>,
    why: Option<&str>,
    now: i64,
) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "UPDATE alerts SET state = 'resolved', resolved_at = ?2, value = coalesce(?3, value),
             updated_at = ?2 WHERE id = ?1",
    )?
    .execute(rusqlite::params![id, now, value])?;
    add_event(conn, id, now, "resolved", None, value, None, why)
}

/// Appends to an alert's history.
pub fn add_event(
    conn: &Connection,
    alert_id: i64,
    at: i64,
    event: &str,
    severity: Option<Severity>,
    value: Option<f64>,
    actor: Option<&str>,
    comment: Option<&str>,
) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO alert_events (alert_id, at, event, severity, value, actor, comment)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(rusqlite::params![
        alert_id,
        at,
        event,
        severity.map(Severity::as_str),
        value,
        actor,
        comment
    ])?;
    Ok(())
}

const ALERT_SELECT: &str = "SELECT a.id, a.definition_id, d.name, a.node_id, n.name,
       a.collector_id, c.name, a.series, a.state, a.severity, a.value, a.message, a.flapping,
       a.held, a.suppressed, a.acked_by, a.acked_at, a.ack_comment, a.started_at, a.fired_at,
       a.resolved_at
  FROM alerts a
  JOIN alert_definitions d ON d.id = a.definition_id
  LEFT JOIN nodes n ON n.id = a.node_id
  LEFT JOIN remote_components c ON c.id = a.collector_id";

fn alert_row(row: &Row<'_>) -> rusqlite::Result<Alert> {
    Ok(Alert {
        id: row.get(0)?,
        rule_id: row.get(1)?,
        rule: row.get(2)?,
        node_id: row.get(3)?,
        node: row.get(4)?,
        collector_id: row.get(5)?,
        collector: row.get(6)?,
        series: row.get(7)?,
        state: parsed(row, 8)?,
        severity: parsed(row, 9)?,
        value: row.get(10)?,
        message: row.get(11)?,
        flapping: row.get(12)?,
        held: row.get(13)?,
        suppressed: row.get(14)?,
        acked_by: row.get(15)?,
        acked_at: row.get::<_, Option<i64>>(16)?.map(to_time),
        ack_comment: row.get(17)?,
        started_at: to_time(row.get(18)?),
        fired_at: row.get::<_, Option<i64>>(19)?.map(to_time),
        resolved_at: row.get::<_, Option<i64>>(20)?.map(to_time),
    })
}

/// Active (pending and firing) alerts per severity: what the sites view counts.
pub fn count_active_by_severity(
    conn: &Connection,
) -> rusqlite::Result<std::collections::BTreeMap<String, u64>> {
    conn.prepare_cached(
        "SELECT severity, count(*) FROM alerts WHERE state <> 'resolved' GROUP BY severity",
    )?
    .query_map([], |row| {
        Ok((row.get(0)?, row.get::<_, i64>(1)?.max(0) as u64))
    })?
    .collect()
}

/// Alerts for the list: active ones first by severity, then newest first.
pub fn list_alerts(
    conn: &Connection,
    query: &AlertQuery,
    limit: u32,
    offset: u32,
) -> rusqlite::Result<(Vec<Alert>, u64)> {
    let mut filter = String::from(" WHERE 1 = 1");
    let mut args: Vec<Value> = Vec::new();
    match query.state.as_deref().unwrap_or("active") {
        "all" => {}
        "resolved" => filter.push_str(" AND a.state = 'resolved'"),
        "firing" => filter.push_str(" AND a.state = 'firing'"),
        "pending" => filter.push_str(" AND a.state = 'pending'"),
        _ => filter.push_str(" AND a.state <> 'resolved'"),
    }
    if let Some(severity) = query.severity {
        filter.push_str(" AND a.severity = ?");
        args.push(Value::Text(severity.as_str().to_owned()));
    }
    if let Some(node_id) = query.node_id {
        filter.push_str(" AND a.node_id = ?");
        args.push(Value::Integer(node_id));
    }
    if let Some(text) = query.q.as_deref().filter(|q| !q.is_empty()) {
        filter.push_str(
            " AND (instr(lower(coalesce(n.name, c.name, '')), lower(?)) > 0
                OR instr(lower(d.name), lower(?)) > 0
                OR instr(lower(a.series), lower(?)) > 0
                OR instr(lower(a.message), lower(?)) > 0)",
        );
        for _ in 0..4 {
            args.push(Value::Text(text.to_owned()));
        }
    }
    let total: i64 = conn.query_row(
        &format!(
            "SELECT count(*) FROM alerts a JOIN alert_definitions d ON d.id = a.definition_id
               LEFT JOIN nodes n ON n.id = a.node_id
               LEFT JOIN remote_components c ON c.id = a.collector_id{filter}"
        ),
        rusqlite::params_from_iter(args.iter()),
        |r| r.get(0),
    )?;
    args.push(Value::Integer(i64::from(limit)));
    args.push(Value::Integer(i64::from(offset)));
    let sql = format!(
        "{ALERT_SELECT}{filter}
         ORDER BY a.state = 'resolved', a.state = 'pending', a.severity = 'warning',
                  a.started_at DESC, a.id DESC
         LIMIT ? OFFSET ?"
    );
    let items = conn
        .prepare(&sql)?
        .query_map(rusqlite::params_from_iter(args.iter()), alert_row)?
        .collect::<rusqlite::Result<_>>()?;
    Ok((items, total as u64))
}

pub fn get_alert(conn: &Connection, id: i64) -> rusqlite::Result<Option<Alert>> {
    conn.query_row(&format!("{ALERT_SELECT} WHERE a.id = ?1"), [id], alert_row)
        .optional()
}

pub fn events(conn: &Connection, alert_id: i64) -> rusqlite::Result<Vec<AlertEvent>> {
    conn.prepare(
        "SELECT at, event, severity, value, actor, comment FROM alert_events
          WHERE alert_id = ?1 ORDER BY id",
    )?
    .query_map([alert_id], |row| {
        Ok(AlertEvent {
            at: to_time(row.get(0)?),
            event: row.get(1)?,
            severity: parsed_opt(row, 2)?,
            value: row.get(3)?,
            actor: row.get(4)?,
            comment: row.get(5)?,
        })
    })?
    .collect()
}

/// Acknowledges (or, with `who` `None`, unacknowledges) an open alert. Returns whether an
/// open alert was changed.
pub fn set_ack(
    conn: &Connection,
    id: i64,
    who: Option<&str>,
    comment: Option<&str>,
    now: i64,
) -> rusqlite::Result<bool> {
    let changed = conn.execute(
        "UPDATE alerts SET acked_by = ?2, acked_at = CASE WHEN ?2 IS NULL THEN NULL ELSE ?4 END,
             ack_comment = ?3, updated_at = ?4
          WHERE id = ?1 AND state <> 'resolved'",
        rusqlite::params![id, who, comment, now],
    )?;
    Ok(changed > 0)
}

/// Whether alert `id` is stored (a deleted rule or node takes its alerts with it).
pub fn exists(conn: &Connection, id: i64) -> rusqlite::Result<bool> {
    conn.prepare_cached("SELECT EXISTS (SELECT 1 FROM alerts WHERE id = ?1)")?
        .query_row([id], |r| r.get(0))
}

/// Ids of the open alerts someone acknowledged.
pub fn acked_open(conn: &Connection) -> rusqlite::Result<std::collections::HashSet<i64>> {
    conn.prepare_cached("SELECT id FROM alerts WHERE state <> 'resolved' AND acked_at IS NOT NULL")?
        .query_map([], |r| r.get(0))?
        .collect()
}

/// The series operators told rules to leave alone: (rule, node, series).
pub fn ignored_series(
    conn: &Connection,
) -> rusqlite::Result<std::collections::HashSet<(i64, i64, String)>> {
    conn.prepare_cached("SELECT definition_id, node_id, series FROM ignored_series")?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect()
}

/// Ignores the series of alert `alert_id` for its rule and node; the row's id (`None` when
/// the alert has no node or no series to ignore).
pub fn ignore_series_of(
    conn: &Connection,
    alert_id: i64,
    by: &str,
    comment: Option<&str>,
    now: i64,
) -> rusqlite::Result<Option<i64>> {
    let changed = conn.execute(
        "INSERT OR IGNORE INTO ignored_series
             (definition_id, node_id, series, ignored_by, comment, created_at)
         SELECT definition_id, node_id, series, ?2, ?3, ?4 FROM alerts
          WHERE id = ?1 AND node_id IS NOT NULL AND series <> ''",
        rusqlite::params![alert_id, by, comment, now],
    )?;
    if changed == 0 {
        return conn
            .query_row(
                "SELECT i.id FROM ignored_series i JOIN alerts a
                   ON a.definition_id = i.definition_id AND a.node_id = i.node_id
                  AND a.series = i.series WHERE a.id = ?1",
                [alert_id],
                |r| r.get(0),
            )
            .optional();
    }
    Ok(Some(conn.last_insert_rowid()))
}

/// Every ignored series: (id, rule, node, series, by, comment, at).
pub fn list_ignored(
    conn: &Connection,
) -> rusqlite::Result<Vec<plantwatch_shared::api::IgnoredSeries>> {
    conn.prepare_cached(
        "SELECT i.id, d.name, n.name, i.series, i.ignored_by, i.comment, i.created_at
           FROM ignored_series i
           JOIN alert_definitions d ON d.id = i.definition_id
           JOIN nodes n ON n.id = i.node_id
          ORDER BY n.name, d.name, i.series",
    )?
    .query_map([], |r| {
        Ok(plantwatch_shared::api::IgnoredSeries {
            id: r.get(0)?,
            rule: r.get(1)?,
            node: r.get(2)?,
            series: r.get(3)?,
            ignored_by: r.get(4)?,
            comment: r.get(5)?,
            at: super::to_time(r.get(6)?),
        })
    })?
    .collect()
}

/// Judges a series again; whether it was ignored.
pub fn unignore(conn: &Connection, id: i64) -> rusqlite::Result<bool> {
    Ok(conn.execute("DELETE FROM ignored_series WHERE id = ?1", [id])? > 0)
}

/// What the evaluator needs of every node.
pub fn node_facts(conn: &Connection) -> rusqlite::Result<Vec<NodeFacts>> {
    let mut other_parents = super::nodes::other_parents(conn)?;
    let mut required = super::host::required_services(conn)?;
    let mut tags: BTreeMap<i64, Vec<String>> = BTreeMap::new();
    {
        let mut statement = conn.prepare_cached("SELECT node_id, tag FROM node_tags")?;
        let rows = statement.query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get(1)?)))?;
        for row in rows {
            let (id, tag) = row?;
            tags.entry(id).or_default().push(tag);
        }
    }
    conn.prepare_cached(
        "SELECT n.id, n.name, n.address, n.node_type, t.name, n.collector_id, n.parent_id,
                n.health, n.health_reason
           FROM nodes n LEFT JOIN device_templates t ON t.id = n.template_id",
    )?
    .query_map([], |row| {
        let id: i64 = row.get(0)?;
        Ok(NodeFacts {
            id,
            name: row.get(1)?,
            address: row.get(2)?,
            node_type: row.get(3)?,
            tags: tags.get(&id).cloned().unwrap_or_default(),
            template: row.get(4)?,
            collector_id: row.get(5)?,
            parent_id: row.get(6)?,
            other_parents: other_parents.remove(&id).unwrap_or_default(),
            health: row.get(7)?,
            health_reason: row.get(8)?,
            required_services: required.remove(&id).unwrap_or_default(),
        })
    })?
    .collect()
}

/// Sets a node's health; a change of status (not only of reason) is recorded.
pub fn set_health(
    conn: &Connection,
    node_id: i64,
    from: NodeStatus,
    to: NodeStatus,
    reason: Option<&str>,
    now: i64,
) -> rusqlite::Result<()> {
    if from != to {
        conn.prepare_cached(
            "INSERT INTO health_changes (node_id, at, from_health, to_health, reason)
             VALUES (?1, ?2, ?3, ?4, ?5)",
        )?
        .execute(rusqlite::params![
            node_id,
            now,
            from.as_str(),
            to.as_str(),
            reason
        ])?;
        conn.prepare_cached(
            "UPDATE nodes SET health = ?2, health_reason = ?3, health_changed_at = ?4 WHERE id = ?1",
        )?
        .execute(rusqlite::params![node_id, to.as_str(), reason, now])?;
    } else {
        conn.prepare_cached("UPDATE nodes SET health_reason = ?2 WHERE id = ?1")?
            .execute(rusqlite::params![node_id, reason])?;
    }
    Ok(())
}

/// A node's health changes, newest first.
pub fn health_changes(conn: &Connection, node_id: i64) -> rusqlite::Result<Vec<HealthChange>> {
    conn.prepare(
        "SELECT at, from_health, to_health, reason FROM health_changes
          WHERE node_id = ?1 ORDER BY id DESC LIMIT 500",
    )?
    .query_map([node_id], |row| {
        Ok(HealthChange {
            at: to_time(row.get(0)?),
            from: parsed(row, 1)?,
            to: parsed(row, 2)?,
            reason: row.get(3)?,
        })
    })?
    .collect()
}
