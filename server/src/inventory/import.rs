//! Batch import of nodes: parse a CSV or JSON file into rows, plan what each row does (create,
//! update, unchanged, error), and apply the plan in one transaction.

use plantwatch_shared::api::AuditAction;
use std::collections::{BTreeSet, HashMap};

use plantwatch_shared::api::{
    Check, CheckSpec, ImportOutcome, ImportProblem, ImportQuery, ImportReport, ImportRow,
    ImportSummary, Node, NodeSpec,
};
use plantwatch_shared::rules::split_list;
use rusqlite::Connection;
use serde_json::json;

use super::{Catalog, Checked, check, fields_of};
use crate::db::audit::{self, Actor};
use crate::db::checks::{self, ChecksChange};
use crate::db::config_dirty;
use crate::db::nodes::{self, NodeFields};

/// Most rows one import takes.
pub const MAX_ROWS: usize = 100_000;
/// Largest import file.
pub const MAX_BYTES: usize = 50 * 1024 * 1024;

/// A file that cannot be read as rows at all.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("{0}")]
    Header(String),
    #[error("the file has more than {MAX_ROWS} rows; split it into several imports")]
    TooManyRows,
    #[error("the file is not valid JSON: {0}")]
    Json(String),
    #[error("the file is not valid CSV: {0}")]
    Csv(String),
}

/// One parsed row: its number, its name (when readable, even if the row is not), its
/// document as far as it could be read, and what is wrong with reading it (a type that is no
/// type, an interval that is no number): every problem of a row is reported at once.
#[derive(Debug)]
pub struct ParsedRow {
    pub row: u64,
    pub name: Option<String>,
    /// `None`: the row could not be read at all (wrong field count, invalid JSON object).
    pub spec: Option<NodeSpec>,
    pub problems: Vec<ImportProblem>,
    /// The row's checks are short forms (a CSV cell): a node's check of the same short form
    /// keeps its other settings.
    pub short_form_checks: bool,
}

/// Longest value an import report echoes back: a 10 MB name is not answered 10 MB long.
const ECHO_MAX_CHARS: usize = 80;

/// `text`, cut to [`ECHO_MAX_CHARS`] with `…` when longer.
pub fn echo(text: &str) -> String {
    if text.chars().count() <= ECHO_MAX_CHARS {
        text.to_owned()
    } else {
        let cut: String = text.chars().take(ECHO_MAX_CHARS - 1).collect();
        format!("{cut}…")
    }
}

fn problem(column: Option<&str>, reason: impl Into<String>) -> ImportProblem {
    ImportProblem {
        column: column.map(str::to_owned),
        reason: reason.into(),
    }
}

/// Reads CSV with a header of [`NodeSpec::COLUMNS`] (any order; `name` and `address`
/// required; unknown columns refused).
pub fn parse_csv(bytes: &[u8]) -> Result<Vec<ParsedRow>, FileError> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .from_reader(bytes);
    let header = reader
        .byte_headers()
        .map_err(|e| FileError::Csv(e.to_string()))?
        .clone();
    let mut columns = Vec::new();
    for (index, raw) in header.iter().enumerate() {
        let name = std::str::from_utf8(raw)
            .map_err(|_| FileError::Header(format!("header column {} is not UTF-8", index + 1)))?
            .trim()
            .to_lowercase();
        if !NodeSpec::COLUMNS.contains(&name.as_str()) {
            return Err(FileError::Header(format!(
                "unknown column {name:?} in the header; the columns are {}",
                NodeSpec::COLUMNS.join(", ")
            )));
        }
        if columns.contains(&name) {
            return Err(FileError::Header(format!(
                "column {name:?} appears twice in the header"
            )));
        }
        columns.push(name);
    }
    for required in ["name", "address"] {
        if !columns.iter().any(|c| c == required) {
            return Err(FileError::Header(format!(
                "the header has no {required:?} column (found: {})",
                columns.join(", ")
            )));
        }
    }
    let mut rows = Vec::new();
    let mut record = csv::ByteRecord::new();
    let mut number = 0u64;
    loop {
        match reader.read_byte_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {
                number += 1;
                if rows.len() == MAX_ROWS {
                    return Err(FileError::TooManyRows);
                }
                let (name, spec, problems) = csv_row(&columns, &record);
                rows.push(ParsedRow {
                    row: number,
                    name,
                    spec,
                    problems,
                    short_form_checks: true,
                });
            }
            Err(error) => {
                number += 1;
                rows.push(ParsedRow {
                    row: number,
                    name: None,
                    spec: None,
                    problems: vec![problem(None, format!("unreadable CSV: {error}"))],
                    short_form_checks: true,
                });
            }
        }
    }
    Ok(rows)
}

/// The row's name, if readable, its document as far as it reads, and its problems.
fn csv_row(
    columns: &[String],
    record: &csv::ByteRecord,
) -> (Option<String>, Option<NodeSpec>, Vec<ImportProblem>) {
    let name = columns
        .iter()
        .position(|c| c == "name")
        .and_then(|i| record.get(i))
        .and_then(|raw| std::str::from_utf8(raw).ok())
        .map(|name| crate::inventory::unescape_cell(name.trim()).to_owned())
        .filter(|name| !name.is_empty());
    let (spec, problems) = csv_spec(columns, record);
    (name, spec, problems)
}

fn csv_spec(
    columns: &[String],
    record: &csv::ByteRecord,
) -> (Option<NodeSpec>, Vec<ImportProblem>) {
    if record.len() != columns.len() {
        return (
            None,
            vec![problem(
                None,
                format!(
                    "the row has {} fields; the header has {}",
                    record.len(),
                    columns.len()
                ),
            )],
        );
    }
    let mut spec = NodeSpec::default();
    let mut problems = Vec::new();
    for (column, raw) in columns.iter().zip(record.iter()) {
        let Ok(text) = std::str::from_utf8(raw) else {
            problems.push(problem(
                Some(column),
                "not valid UTF-8 text (save the file as UTF-8)",
            ));
            continue;
        };
        let value = crate::inventory::unescape_cell(text.trim());
        let optional = || (!value.is_empty()).then(|| value.to_owned());
        match column.as_str() {
            "name" => spec.name = value.to_owned(),
            "address" => spec.address = value.to_owned(),
            "type" if value.is_empty() => {}
            "type" => match value.parse() {
                Ok(node_type) => spec.node_type = Some(node_type),
                Err(error) => problems.push(problem(Some(column), error.to_string())),
            },
            "tags" => spec.tags = split_list(value),
            "collector" => spec.collector = optional(),
            "template" => spec.template = optional(),
            "credentials" => spec.credentials = split_list(value),
            "parent" => spec.parent = optional(),
            "interval_s" if value.is_empty() => {}
            "interval_s" => match value.parse::<u32>() {
                Ok(seconds) => spec.interval_s = Some(seconds),
                Err(_) => problems.push(problem(
                    Some(column),
                    format!("{:?} is not a whole number of seconds", echo(value)),
                )),
            },
            "modbus_unit" if value.is_empty() => {}
            "modbus_unit" => match value.parse::<u8>() {
                Ok(unit) => spec.modbus_unit = Some(unit),
                Err(_) => problems.push(problem(
                    Some(column),
                    format!("{:?} is not a Modbus unit id (0 to 255)", echo(value)),
                )),
            },
            "notes" => spec.notes = optional(),
            "checks" => {
                let mut checks = Vec::new();
                for text in split_list(value) {
                    match text.parse::<CheckSpec>() {
                        Ok(check) => checks.push(check),
                        Err(reason) => problems.push(problem(Some(column), echo(&reason))),
                    }
                }
                spec.checks = Some(checks);
            }
            _ => {}
        }
    }
    (Some(spec), problems)
}

/// Reads a JSON array of node documents.
pub fn parse_json(bytes: &[u8]) -> Result<Vec<ParsedRow>, FileError> {
    let values: Vec<serde_json::Value> =
        serde_json::from_slice(bytes).map_err(|e| FileError::Json(e.to_string()))?;
    if values.len() > MAX_ROWS {
        return Err(FileError::TooManyRows);
    }
    Ok(values
        .into_iter()
        .enumerate()
        .map(|(index, value)| {
            let name = value
                .get("name")
                .and_then(|n| n.as_str())
                .map(|n| n.trim().to_owned());
            let (spec, problems) = match serde_json::from_value::<NodeSpec>(value) {
                Ok(spec) => (Some(spec), Vec::new()),
                Err(e) => (None, vec![problem(None, echo(&e.to_string()))]),
            };
            ParsedRow {
                row: index as u64 + 1,
                name,
                spec,
                problems,
                short_form_checks: false,
            }
        })
        .collect())
}

/// What applying a row does.
#[derive(Debug)]
enum Action {
    Create(Checked, ChecksChange),
    Update {
        id: i64,
        old_collector: Option<i64>,
        checked: Checked,
        checks: ChecksChange,
    },
    Unchanged,
}

/// A planned import.
#[derive(Debug)]
pub struct Plan {
    rows: Vec<(ImportRow, Option<Action>)>,
    existing: HashMap<String, Node>,
}

impl Plan {
    /// The report of this plan; `applied` says whether it was written.
    pub fn report(&self, query: &ImportQuery, applied: bool) -> ImportReport {
        let mut summary = ImportSummary::default();
        for (row, _) in &self.rows {
            match row.outcome {
                ImportOutcome::Create => summary.create += 1,
                ImportOutcome::Update => summary.update += 1,
                ImportOutcome::Unchanged => summary.unchanged += 1,
                ImportOutcome::Error => summary.error += 1,
            }
        }
        ImportReport {
            applied,
            dry_run: query.dry_run,
            summary,
            rows: self.rows.iter().map(|(row, _)| row.clone()).collect(),
        }
    }

    /// Whether any row is rejected.
    pub fn has_errors(&self) -> bool {
        self.rows
            .iter()
            .any(|(row, _)| row.outcome == ImportOutcome::Error)
    }
}

/// Plans the import of `parsed` against the database as it is.
pub fn plan(
    conn: &Connection,
    parsed: Vec<ParsedRow>,
    upsert: bool,
    admin: bool,
) -> rusqlite::Result<Plan> {
    let catalog = Catalog::load(conn)?;
    let existing: HashMap<String, Node> = nodes::all(conn)?
        .into_iter()
        .map(|node| (node.name.to_lowercase(), node))
        .collect();
    let mut checks_of: HashMap<i64, Vec<Check>> = HashMap::new();
    for check in checks::all(conn)? {
        checks_of.entry(check.node_id).or_default().push(check);
    }
    let mut first_row_of: HashMap<String, u64> = HashMap::new();
    let mut rows: Vec<(ImportRow, Result<Checked, Vec<ImportProblem>>)> =
        Vec::with_capacity(parsed.len());
    // The parent each refused row names, checked too so its problems come all at once.
    let mut refused_parents: Vec<(usize, String)> = Vec::new();
    let mut short_form_checks = Vec::with_capacity(parsed.len());
    for ParsedRow {
        row: number,
        name,
        spec,
        mut problems,
        short_form_checks: short_form,
    } in parsed
    {
        short_form_checks.push(short_form);
        let mut checked = match spec {
            Some(spec) => {
                let checked = check(&spec, &catalog);
                if (checked.is_err() || !problems.is_empty())
                    && let Some(parent) = spec.parent.as_ref().filter(|p| !p.trim().is_empty())
                {
                    refused_parents.push((rows.len(), parent.trim().to_owned()));
                }
                match checked {
                    Ok(c) if problems.is_empty() => Ok(c),
                    Ok(_) => Err(problems),
                    Err(more) => {
                        problems.extend(more);
                        Err(problems)
                    }
                }
            }
            None => Err(problems),
        };
        if let (Ok(c), Some(name)) = (&checked, &name) {
            let key = name.to_lowercase();
            if let Some(first) = first_row_of.get(&key) {
                checked = Err(vec![problem(
                    Some("name"),
                    format!("duplicate name {:?}: row {first} has it too", echo(name)),
                )]);
            } else {
                first_row_of.insert(key.clone(), number);
                if !upsert && existing.contains_key(&key) {
                    checked = Err(vec![problem(
                        Some("name"),
                        format!(
                            "a node named {:?} already exists (import with upsert to update it)",
                            echo(&c.fields.name)
                        ),
                    )]);
                }
            }
        }
        let row = ImportRow {
            row: number,
            name: name.as_deref().map(echo),
            outcome: ImportOutcome::Error,
            errors: Vec::new(),
        };
        rows.push((row, checked));
    }
    // Parents: a node of the database or a valid row of the file; no cycles in the result.
    let mut parent_of: HashMap<String, Option<String>> = existing
        .values()
        .map(|n| {
            (
                n.name.to_lowercase(),
                n.parent.as_ref().map(|p| p.to_lowercase()),
            )
        })
        .collect();
    for (_, checked) in &rows {
        if let Ok(c) = checked {
            parent_of.insert(
                c.fields.name.to_lowercase(),
                c.parent.as_ref().map(|p| p.to_lowercase()),
            );
        }
    }
    loop {
        let valid: BTreeSet<String> = rows
            .iter()
            .filter_map(|(_, c)| c.as_ref().ok().map(|c| c.fields.name.to_lowercase()))
            .collect();
        let mut changed = false;
        for (_, checked) in &mut rows {
            let Ok(c) = checked else { continue };
            let Some(parent) = &c.parent else { continue };
            let key = parent.to_lowercase();
            let reason = if !valid.contains(&key) && !existing.contains_key(&key) {
                Some(if first_row_of.contains_key(&key) {
                    format!("parent {:?} is on a rejected row", echo(parent))
                } else {
                    format!("there is no node named {:?}", echo(parent))
                })
            } else {
                cycle(&parent_of, &c.fields.name.to_lowercase())
                    .map(|path| format!("parent {parent:?} would make a cycle: {path}"))
            };
            if let Some(reason) = reason {
                *checked = Err(vec![problem(Some("parent"), reason)]);
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
    // A refused row's parent is checked as well, so all of its problems come at once.
    for (index, parent) in refused_parents {
        let key = parent.to_lowercase();
        if !existing.contains_key(&key)
            && !first_row_of.contains_key(&key)
            && let Err(problems) = &mut rows[index].1
        {
            problems.push(problem(
                Some("parent"),
                format!("there is no node named {:?}", echo(&parent)),
            ));
        }
    }
    let rows = rows
        .into_iter()
        .zip(short_form_checks)
        .map(|((mut row, checked), short_form)| match checked {
            Err(errors) => {
                row.errors = errors;
                (row, None)
            }
            Ok(checked) => {
                let key = checked.fields.name.to_lowercase();
                let node = existing.get(&key);
                let checks = match &checked.checks {
                    None => ChecksChange::default(),
                    Some(wanted) => {
                        let existing = node.and_then(|n| checks_of.get(&n.id));
                        ChecksChange::between(
                            existing.map_or(&[][..], Vec::as_slice),
                            wanted,
                            short_form,
                        )
                    }
                };
                let action = match node {
                    None => Action::Create(checked, checks),
                    Some(node) => {
                        let mut checked = checked;
                        if !checked.collector_given {
                            // No collector named: the node keeps the one it has (an agent's
                            // node has none), rather than moving to the local one.
                            checked.fields.collector_id = node.collector_id;
                        }
                        let mut wanted = checked.fields.clone();
                        wanted.parent_id = checked
                            .parent
                            .as_ref()
                            .and_then(|p| existing.get(&p.to_lowercase()))
                            .map(|p| p.id);
                        let parent_is_new = checked
                            .parent
                            .as_ref()
                            .is_some_and(|p| !existing.contains_key(&p.to_lowercase()));
                        if !parent_is_new && wanted == fields_of(node) && checks.is_empty() {
                            Action::Unchanged
                        } else {
                            Action::Update {
                                id: node.id,
                                old_collector: node.collector_id,
                                checked,
                                checks,
                            }
                        }
                    }
                };
                row.outcome = match action {
                    Action::Create(..) => ImportOutcome::Create,
                    Action::Update { .. } => ImportOutcome::Update,
                    Action::Unchanged => ImportOutcome::Unchanged,
                };
                (row, Some(action))
            }
        })
        .collect::<Vec<(ImportRow, Option<Action>)>>();
    // Credentials go only where their networks allow; one without networks only by an admin.
    let mut rows = rows;
    for (row, action) in &mut rows {
        let (fields, already) = match action.as_ref() {
            Some(Action::Create(checked, _)) => (&checked.fields, Vec::new()),
            Some(Action::Update { id, checked, .. }) => {
                let node = existing.values().find(|n| n.id == *id);
                let already = node
                    .filter(|n| n.address == checked.fields.address)
                    .map(|n| n.credentials.iter().map(|c| c.id).collect())
                    .unwrap_or_default();
                (&checked.fields, already)
            }
            _ => continue,
        };
        let problems =
            catalog.credential_scope(&fields.address, &fields.credential_ids, &already, admin);
        if !problems.is_empty() {
            row.errors = problems;
            row.outcome = ImportOutcome::Error;
            *action = None;
        }
    }
    Ok(Plan { rows, existing })
}

/// The loop `name`'s parent chain runs into, if it does, as `a → b → a`.
fn cycle(parent_of: &HashMap<String, Option<String>>, name: &str) -> Option<String> {
    let mut path = vec![name.to_owned()];
    let mut current = name.to_owned();
    while let Some(Some(parent)) = parent_of.get(&current) {
        path.push(parent.clone());
        if parent == name {
            return Some(path.join(" → "));
        }
        if path.len() > parent_of.len() + 1 {
            // A loop further up that does not include `name`: reported on its own rows.
            return None;
        }
        current = parent.clone();
    }
    None
}

/// Writes the plan's creates and updates in `conn`'s open transaction: nodes first, then
/// parents (a parent may come later in the file), dirty flags and one audit entry per node.
pub fn apply(conn: &Connection, plan: &Plan, actor: &Actor, now: i64) -> rusqlite::Result<()> {
    let mut ids: HashMap<String, i64> = plan
        .existing
        .iter()
        .map(|(key, node)| (key.clone(), node.id))
        .collect();
    let mut dirty: BTreeSet<i64> = BTreeSet::new();
    let mut written: Vec<(i64, &Checked, &ChecksChange, AuditAction)> = Vec::new();
    for (_, action) in &plan.rows {
        match action {
            Some(Action::Create(checked, change)) => {
                let id = nodes::insert(conn, &without_parent(&checked.fields), now)?;
                checks::apply_change(conn, id, change, now)?;
                ids.insert(checked.fields.name.to_lowercase(), id);
                dirty.extend(checked.fields.collector_id);
                written.push((id, checked, change, AuditAction::NodeCreate));
            }
            Some(Action::Update {
                id,
                old_collector,
                checked,
                checks: change,
            }) => {
                nodes::update(conn, *id, &without_parent(&checked.fields), now)?;
                checks::apply_change(conn, *id, change, now)?;
                dirty.extend(checked.fields.collector_id);
                dirty.extend(*old_collector);
                written.push((*id, checked, change, AuditAction::NodeUpdate));
            }
            Some(Action::Unchanged) | None => {}
        }
    }
    for (id, checked, change, action) in written {
        let parent_id = checked
            .parent
            .as_ref()
            .and_then(|p| ids.get(&p.to_lowercase()).copied());
        nodes::set_parent(conn, id, parent_id)?;
        let mut details = json!({ "name": checked.fields.name, "via": "import" });
        if !change.is_empty() {
            details["checks"] = json!({
                "added": change.add.iter().map(ToString::to_string).collect::<Vec<_>>(),
                "changed": change.replace.len(),
                "removed": change.remove.len(),
            });
        }
        audit::record(
            conn,
            actor,
            action,
            Some(&format!("node:{id}")),
            Some(&details),
            now,
        )?;
    }
    config_dirty::mark(conn, dirty.into_iter().map(Some), "node import", now)
}

fn without_parent(fields: &NodeFields) -> NodeFields {
    NodeFields {
        parent_id: None,
        ..fields.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_headers_must_be_known_and_complete() {
        let err = parse_csv(b"name,address,colour\n").unwrap_err().to_string();
        assert!(err.contains("unknown column \"colour\""), "{err}");
        let err = parse_csv(b"name,type\n").unwrap_err().to_string();
        assert!(err.contains("no \"address\" column"), "{err}");
        let err = parse_csv(b"name,address,name\n").unwrap_err().to_string();
        assert!(err.contains("twice"), "{err}");
    }

    #[test]
    fn a_modbus_unit_id_is_read_and_a_bad_one_named() {
        let rows =
            parse_csv(b"name,address,modbus_unit\nmeter-3,10.0.0.5,3\nmeter-x,10.0.0.5,300\n")
                .unwrap();
        assert_eq!(rows[0].spec.as_ref().unwrap().modbus_unit, Some(3));
        assert_eq!(
            rows[1].problems[0].column.as_deref(),
            Some("modbus_unit"),
            "{:?}",
            rows[1].problems
        );
    }

    #[test]
    fn csv_rows_report_column_level_problems() {
        let rows = parse_csv(
            b"\xEF\xBB\xBFName,address,type,interval_s,tags\n\
              plc-1,10.0.0.1,plc,30,a;b\n\
              plc-2,10.0.0.2,robot,soon,\n\
              plc-\xff,10.0.0.3,plc,,\n\
              short,10.0.0.4\n",
        )
        .unwrap();
        let spec = rows[0].spec.as_ref().unwrap();
        assert_eq!((spec.interval_s, spec.tags.len()), (Some(30), 2));
        assert!(rows[0].problems.is_empty());
        let columns = |i: usize| -> Vec<Option<String>> {
            rows[i].problems.iter().map(|p| p.column.clone()).collect()
        };
        assert_eq!(
            columns(1),
            [Some("type".to_owned()), Some("interval_s".to_owned())]
        );
        assert_eq!(columns(2), [Some("name".to_owned())]);
        assert_eq!(columns(3), [None]);
        assert_eq!(rows[3].row, 4);
        assert_eq!(
            rows[1].name.as_deref(),
            Some("plc-2"),
            "named even when refused"
        );
    }

    #[test]
    fn cycles_are_found_along_the_parent_chain() {
        let parent_of: HashMap<String, Option<String>> = [
            ("a", Some("b")),
            ("b", Some("c")),
            ("c", Some("a")),
            ("d", Some("a")),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.map(str::to_owned)))
        .collect();
        assert_eq!(cycle(&parent_of, "a").as_deref(), Some("a → b → c → a"));
        assert_eq!(cycle(&parent_of, "d"), None);
    }
}
