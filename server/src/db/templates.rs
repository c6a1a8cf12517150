//! `device_templates`: the loaded templates, as the API lists them.

use plantwatch_shared::api::{Template, TemplateDef};
use rusqlite::{Connection, OptionalExtension as _};

const SELECT: &str =
    "SELECT t.id, t.name, t.vendor, t.description, t.default_interval, t.definition,
        t.source_path, (SELECT count(*) FROM nodes n WHERE n.template_id = t.id)
   FROM device_templates t";

fn row(row: &rusqlite::Row<'_>, with_definition: bool) -> rusqlite::Result<Template> {
    let definition: String = row.get(5)?;
    let def: Option<TemplateDef> = serde_json::from_str(&definition).ok();
    Ok(Template {
        id: row.get(0)?,
        name: row.get(1)?,
        vendor: row.get(2)?,
        description: row.get(3)?,
        interval_s: row.get(4)?,
        fingerprints: def
            .as_ref()
            .map(|d| d.fingerprints.clone())
            .unwrap_or_default(),
        metric_count: def.as_ref().map_or(0, TemplateDef::metric_count),
        source: row.get::<_, Option<String>>(6)?.unwrap_or_default(),
        node_count: row.get(7)?,
        definition: if with_definition { def } else { None },
    })
}

/// Every template by name, without definitions.
pub fn list(conn: &Connection) -> rusqlite::Result<Vec<Template>> {
    conn.prepare(&format!("{SELECT} ORDER BY t.name"))?
        .query_map([], |r| row(r, false))?
        .collect()
}

/// One template with its resolved definition.
pub fn get(conn: &Connection, id: i64) -> rusqlite::Result<Option<Template>> {
    conn.query_row(&format!("{SELECT} WHERE t.id = ?1"), [id], |r| row(r, true))
        .optional()
}
