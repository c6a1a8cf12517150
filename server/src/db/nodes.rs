//! The `nodes`, `node_tags` and `node_credentials` tables.

use plantwatch_shared::api::{AttachedCredential, Node, NodeQuery, NodeType};
use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension as _, Row, params_from_iter};

use super::to_time;

/// A node's columns, references resolved to ids: what create, update and import write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeFields {
    pub name: String,
    pub address: String,
    pub node_type: NodeType,
    /// Sorted, without duplicates.
    pub tags: Vec<String>,
    pub collector_id: Option<i64>,
    pub template_id: Option<i64>,
    /// In priority order.
    pub credential_ids: Vec<i64>,
    pub parent_id: Option<i64>,
    pub interval_s: Option<u32>,
    pub modbus_unit: Option<u8>,
    pub notes: Option<String>,
}

/// `SELECT … FROM nodes n` with everything [`from_row`] reads.
const SELECT: &str = "
SELECT n.id, n.name, n.address, n.node_type, n.collector_id, c.name, n.template_id, t.name,
       n.interval_secs, n.parent_id, p.name, n.notes, n.health, n.health_reason, n.created_at,
       n.updated_at,
       (SELECT group_concat(tag, ';' ORDER BY tag) FROM node_tags WHERE node_id = n.id),
       (SELECT json_group_array(json_array(cr.id, cr.name, cr.kind, nc.priority)
                                ORDER BY nc.priority, cr.name)
          FROM node_credentials nc JOIN credentials cr ON cr.id = nc.credential_id
         WHERE nc.node_id = n.id),
       (SELECT json_group_array(op.name ORDER BY op.name)
          FROM node_parents np JOIN nodes op ON op.id = np.parent_id
         WHERE np.node_id = n.id),
       n.modbus_unit
  FROM nodes n
  LEFT JOIN remote_components c ON c.id = n.collector_id
  LEFT JOIN device_templates t ON t.id = n.template_id
  LEFT JOIN nodes p ON p.id = n.parent_id";

fn conversion<E: std::error::Error + Send + Sync + 'static>(
    column: usize,
    e: E,
) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(column, rusqlite::types::Type::Text, Box::new(e))
}

fn from_row(row: &Row<'_>) -> rusqlite::Result<Node> {
    let node_type: String = row.get(3)?;
    let status: String = row.get(12)?;
    let tags: Option<String> = row.get(16)?;
    let credentials: Vec<(i64, String, String, i64)> = super::json_column(row, 17)?;
    let other_parents: Vec<String> = super::json_column(row, 18)?;
    Ok(Node {
        id: row.get(0)?,
        name: row.get(1)?,
        address: row.get(2)?,
        node_type: node_type.parse().map_err(|e| conversion(3, e))?,
        collector_id: row.get(4)?,
        collector: row.get(5)?,
        template_id: row.get(6)?,
        template: row.get(7)?,
        interval_s: row.get(8)?,
        parent_id: row.get(9)?,
        parent: row.get(10)?,
        other_parents,
        notes: row.get(11)?,
        status: status.parse().map_err(|e| conversion(12, e))?,
        status_reason: row.get(13)?,
        created_at: to_time(row.get(14)?),
        updated_at: to_time(row.get(15)?),
        tags: tags
            .map(|t| t.split(';').map(str::to_owned).collect())
            .unwrap_or_default(),
        credentials: credentials
            .into_iter()
            .map(|(id, name, kind, priority)| {
                Ok(AttachedCredential {
                    id,
                    name,
                    kind: kind.parse().map_err(|e| conversion(17, e))?,
                    priority,
                })
            })
            .collect::<rusqlite::Result<_>>()?,
        modbus_unit: row.get(19)?,
        last_sample_at: None,
        rtt_ms: None,
    })
}

/// A node by id.
pub fn get(conn: &Connection, id: i64) -> rusqlite::Result<Option<Node>> {
    conn.prepare_cached(&format!("{SELECT} WHERE n.id = ?1"))?
        .query_row([id], from_row)
        .optional()
}

/// The name of node `id`, if it exists.
pub fn name_of(conn: &Connection, id: i64) -> rusqlite::Result<Option<String>> {
    conn.prepare_cached("SELECT name FROM nodes WHERE id = ?1")?
        .query_row([id], |r| r.get(0))
        .optional()
}

/// The id of the node named `name` (case-insensitive).
pub fn id_by_name(conn: &Connection, name: &str) -> rusqlite::Result<Option<i64>> {
    conn.prepare_cached("SELECT id FROM nodes WHERE name = ?1")?
        .query_row([name], |r| r.get(0))
        .optional()
}

/// Every node, by name.
pub fn all(conn: &Connection) -> rusqlite::Result<Vec<Node>> {
    conn.prepare(&format!("{SELECT} ORDER BY n.name COLLATE NOCASE"))?
        .query_map([], from_row)?
        .collect()
}

/// Sort orders of the node list: (query name, SQL).
pub const SORTS: &[(&str, &str)] = &[
    ("name", "n.name COLLATE NOCASE"),
    ("address", "n.address"),
    ("type", "n.node_type"),
    ("status", "n.health"),
    ("collector", "c.name COLLATE NOCASE"),
    ("created_at", "n.created_at"),
    ("updated_at", "n.updated_at"),
];

/// A page of nodes matching `query`, and how many match. `order` is an entry of [`SORTS`]
/// (already checked); `collector_id` is the query's collector, resolved.
pub fn list(
    conn: &Connection,
    query: &NodeQuery,
    collector_id: Option<i64>,
    order: &str,
    descending: bool,
    limit: u32,
    offset: u32,
) -> rusqlite::Result<(Vec<Node>, u64)> {
    let mut filter = String::from(" WHERE 1 = 1");
    let mut args: Vec<Value> = Vec::new();
    if let Some(status) = query.status {
        filter.push_str(" AND n.health = ?");
        args.push(Value::Text(status.as_str().to_owned()));
    }
    if let Some(node_type) = query.node_type {
        filter.push_str(" AND n.node_type = ?");
        args.push(Value::Text(node_type.as_str().to_owned()));
    }
    if let Some(tag) = &query.tag {
        filter.push_str(
            " AND EXISTS (SELECT 1 FROM node_tags g WHERE g.node_id = n.id AND g.tag = ?)",
        );
        args.push(Value::Text(tag.clone()));
    }
    if let Some(id) = collector_id {
        filter.push_str(" AND n.collector_id = ?");
        args.push(Value::Integer(id));
    }
    if let Some(text) = query.q.as_deref().filter(|q| !q.is_empty()) {
        // instr() rather than LIKE: no wildcard characters to escape in the search text.
        filter.push_str(
            " AND (instr(lower(n.name), lower(?)) > 0 OR instr(lower(n.address), lower(?)) > 0)",
        );
        args.push(Value::Text(text.to_owned()));
        args.push(Value::Text(text.to_owned()));
    }
    let total: i64 = conn.query_row(
        &format!(
            "SELECT count(*) FROM nodes n
               LEFT JOIN remote_components c ON c.id = n.collector_id{filter}"
        ),
        params_from_iter(args.iter()),
        |r| r.get(0),
    )?;
    let direction = if descending { "DESC" } else { "ASC" };
    args.push(Value::Integer(limit.into()));
    args.push(Value::Integer(offset.into()));
    let items = conn
        .prepare(&format!(
            "{SELECT}{filter} ORDER BY {order} {direction}, n.id LIMIT ? OFFSET ?"
        ))?
        .query_map(params_from_iter(args.iter()), from_row)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok((items, total.max(0) as u64))
}

/// Creates a node (health Discovering) with its tags and credentials; returns its id.
pub fn insert(conn: &Connection, fields: &NodeFields, now: i64) -> rusqlite::Result<i64> {
    conn.prepare_cached(
        "INSERT INTO nodes (name, address, node_type, collector_id, template_id, interval_secs,
                            parent_id, notes, health, health_changed_at, created_at, updated_at,
                            modbus_unit)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 'discovering', ?9, ?9, ?9, ?10)",
    )?
    .execute((
        &fields.name,
        &fields.address,
        fields.node_type.as_str(),
        fields.collector_id,
        fields.template_id,
        fields.interval_s,
        fields.parent_id,
        &fields.notes,
        now,
        fields.modbus_unit,
    ))?;
    let id = conn.last_insert_rowid();
    set_tags(conn, id, &fields.tags)?;
    set_credentials(conn, id, &fields.credential_ids)?;
    Ok(id)
}

/// Replaces a node's fields, tags and credentials. A node moved to another collector starts
/// over as Discovering.
pub fn update(conn: &Connection, id: i64, fields: &NodeFields, now: i64) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "UPDATE nodes SET name = ?2, address = ?3, node_type = ?4, template_id = ?6,
                interval_secs = ?7, parent_id = ?8, notes = ?9, updated_at = ?10,
                modbus_unit = ?11,
                health = CASE WHEN collector_id IS ?5 THEN health ELSE 'discovering' END,
                health_reason = CASE WHEN collector_id IS ?5 THEN health_reason ELSE NULL END,
                health_changed_at = CASE WHEN collector_id IS ?5 THEN health_changed_at ELSE ?10 END,
                collector_id = ?5
          WHERE id = ?1",
    )?
    .execute((
        id,
        &fields.name,
        &fields.address,
        fields.node_type.as_str(),
        fields.collector_id,
        fields.template_id,
        fields.interval_s,
        fields.parent_id,
        &fields.notes,
        now,
        fields.modbus_unit,
    ))?;
    set_tags(conn, id, &fields.tags)?;
    set_credentials(conn, id, &fields.credential_ids)?;
    Ok(())
}

/// Sets only the parent of a node (the second pass of an import).
pub fn set_parent(conn: &Connection, id: i64, parent_id: Option<i64>) -> rusqlite::Result<()> {
    conn.prepare_cached("UPDATE nodes SET parent_id = ?2 WHERE id = ?1")?
        .execute((id, parent_id))?;
    Ok(())
}

fn set_tags(conn: &Connection, id: i64, tags: &[String]) -> rusqlite::Result<()> {
    conn.prepare_cached("DELETE FROM node_tags WHERE node_id = ?1")?
        .execute([id])?;
    let mut insert = conn.prepare_cached("INSERT INTO node_tags (node_id, tag) VALUES (?1, ?2)")?;
    for tag in tags {
        insert.execute((id, tag))?;
    }
    Ok(())
}

fn set_credentials(conn: &Connection, id: i64, credential_ids: &[i64]) -> rusqlite::Result<()> {
    conn.prepare_cached("DELETE FROM node_credentials WHERE node_id = ?1")?
        .execute([id])?;
    let mut insert = conn.prepare_cached(
        "INSERT INTO node_credentials (node_id, credential_id, priority) VALUES (?1, ?2, ?3)",
    )?;
    for (priority, credential_id) in credential_ids.iter().enumerate() {
        insert.execute((id, credential_id, priority as i64))?;
    }
    Ok(())
}

/// Attaches a credential at `priority` (after the others when `None`), or moves it there.
/// Returns whether anything changed.
pub fn attach(
    conn: &Connection,
    node_id: i64,
    credential_id: i64,
    priority: Option<i64>,
) -> rusqlite::Result<bool> {
    let current: Option<i64> = conn
        .query_row(
            "SELECT priority FROM node_credentials WHERE node_id = ?1 AND credential_id = ?2",
            (node_id, credential_id),
            |r| r.get(0),
        )
        .optional()?;
    let priority = match (priority, current) {
        (Some(p), _) => p,
        (None, Some(p)) => return Ok(current != Some(p)),
        (None, None) => conn.query_row(
            "SELECT ifnull(max(priority) + 1, 0) FROM node_credentials WHERE node_id = ?1",
            [node_id],
            |r| r.get(0),
        )?,
    };
    if current == Some(priority) {
        return Ok(false);
    }
    conn.execute(
        "INSERT INTO node_credentials (node_id, credential_id, priority) VALUES (?1, ?2, ?3)
         ON CONFLICT (node_id, credential_id) DO UPDATE SET priority = excluded.priority",
        (node_id, credential_id, priority),
    )?;
    Ok(true)
}

/// Detaches a credential; returns whether it was attached.
pub fn detach(conn: &Connection, node_id: i64, credential_id: i64) -> rusqlite::Result<bool> {
    conn.execute(
        "DELETE FROM node_credentials WHERE node_id = ?1 AND credential_id = ?2",
        (node_id, credential_id),
    )
    .map(|n| n > 0)
}

/// Marks a node's `updated_at`.
/// Number of nodes per health (`healthy`, `offline`, …).
pub fn count_by_health(
    conn: &Connection,
) -> rusqlite::Result<std::collections::BTreeMap<String, i64>> {
    conn.prepare_cached("SELECT health, count(*) FROM nodes GROUP BY health")?
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?
        .collect()
}

/// Ids of the nodes assigned to collector `collector_id`: what it may write metrics for.
pub fn ids_of_collector(conn: &Connection, collector_id: i64) -> rusqlite::Result<Vec<i64>> {
    conn.prepare_cached("SELECT id FROM nodes WHERE collector_id = ?1")?
        .query_map([collector_id], |row| row.get(0))?
        .collect()
}

pub fn touch(conn: &Connection, id: i64, now: i64) -> rusqlite::Result<()> {
    conn.execute("UPDATE nodes SET updated_at = ?2 WHERE id = ?1", (id, now))?;
    Ok(())
}

/// Adds `parent_id` to the further parents of `id`; false when it already was one.
pub fn add_parent(conn: &Connection, id: i64, parent_id: i64) -> rusqlite::Result<bool> {
    conn.execute(
        "INSERT OR IGNORE INTO node_parents (node_id, parent_id) VALUES (?1, ?2)",
        (id, parent_id),
    )
    .map(|n| n > 0)
}

/// Removes `parent_id` from the further parents of `id`; false when it was none.
pub fn remove_parent(conn: &Connection, id: i64, parent_id: i64) -> rusqlite::Result<bool> {
    conn.execute(
        "DELETE FROM node_parents WHERE node_id = ?1 AND parent_id = ?2",
        (id, parent_id),
    )
    .map(|n| n > 0)
}

/// Every node's further parents, by node id.
pub fn other_parents(
    conn: &Connection,
) -> rusqlite::Result<std::collections::HashMap<i64, Vec<i64>>> {
    let mut out: std::collections::HashMap<i64, Vec<i64>> = Default::default();
    let mut statement = conn.prepare_cached("SELECT node_id, parent_id FROM node_parents")?;
    let rows = statement.query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?)))?;
    for row in rows {
        let (node, parent) = row?;
        out.entry(node).or_default().push(parent);
    }
    Ok(out)
}

/// Deletes a node; its children lose their parent.
pub fn delete(conn: &Connection, id: i64) -> rusqlite::Result<usize> {
    conn.execute("DELETE FROM nodes WHERE id = ?1", [id])
}

/// Whether making `parent_id` a parent of `id` closes a loop: `id` is `parent_id` or one of
/// its ancestors (through parents and further parents).
pub fn would_cycle(conn: &Connection, id: i64, parent_id: i64) -> rusqlite::Result<bool> {
    conn.query_row(
        "WITH RECURSIVE up(id) AS (
             SELECT ?1
             UNION
             SELECT n.parent_id FROM nodes n JOIN up ON n.id = up.id WHERE n.parent_id IS NOT NULL
             UNION
             SELECT np.parent_id FROM node_parents np JOIN up ON np.node_id = up.id
         )
         SELECT count(*) FROM up WHERE id = ?2",
        (parent_id, id),
        |r| r.get::<_, i64>(0),
    )
    .map(|n| n > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(n: usize) -> NodeFields {
        NodeFields {
            name: format!("node-{:02}", (n * 37) % 50),
            address: format!("10.0.{}.{}", n % 3, (n * 11) % 50),
            node_type: NodeType::ALL[n % NodeType::ALL.len()],
            tags: vec![format!("t{}", n % 4)],
            collector_id: None,
            template_id: None,
            credential_ids: Vec::new(),
            parent_id: None,
            interval_s: None,
            modbus_unit: None,
            notes: None,
        }
    }

    #[test]
    fn pages_in_every_order_add_up_to_the_whole_list() {
        let mut conn = Connection::open_in_memory().unwrap();
        crate::db::migrate(&mut conn, "mem").unwrap();
        for n in 0..50 {
            insert(&conn, &fields(n), n as i64).unwrap();
        }
        let query = NodeQuery {
            tag: Some("t1".into()),
            ..NodeQuery::default()
        };
        for (_, order) in SORTS {
            for descending in [false, true] {
                let (whole, total) = list(&conn, &query, None, order, descending, 1000, 0).unwrap();
                assert_eq!(total, 13);
                let mut paged = Vec::new();
                for offset in (0..13).step_by(4) {
                    let (page, _) =
                        list(&conn, &query, None, order, descending, 4, offset).unwrap();
                    paged.extend(page.into_iter().map(|n| n.id));
                }
                let whole: Vec<i64> = whole.into_iter().map(|n| n.id).collect();
                assert_eq!(paged, whole, "{order} descending={descending}");
            }
        }
        let (by_name, _) =
            list(&conn, &NodeQuery::default(), None, SORTS[0].1, false, 3, 0).unwrap();
        let names: Vec<&str> = by_name.iter().map(|n| n.name.as_str()).collect();
        assert_eq!(names, ["node-00", "node-01", "node-02"]);
    }
}
