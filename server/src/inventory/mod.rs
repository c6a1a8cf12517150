//! Node documents checked and resolved: the rules every way of writing a node goes through
//! (create, update, batch import), so they cannot disagree.

pub mod import;

use std::collections::HashMap;

use plantwatch_shared::api::{
    CheckSpec, ImportProblem, MAX_CHECKS_PER_NODE, Node, NodeSpec, NodeType, UpdateNodeRequest,
};
use plantwatch_shared::rules::{
    MAX_NODE_NAME_LEN, address_problem, interval_problem, name_problem, notes_problem, tag_problem,
};
use rusqlite::Connection;

use crate::db::nodes::NodeFields;
use crate::db::{catalog, credentials};

/// The objects a node may refer to, by name.
#[derive(Debug, Default)]
pub struct Catalog {
    /// Collector ids by lower-case name (names of collectors need not be unique).
    collectors: HashMap<String, Vec<i64>>,
    /// The server's own collector: where a node goes when it names none.
    local_collector: Option<i64>,
    templates: HashMap<String, i64>,
    credentials: HashMap<String, i64>,
    /// Each credential's name and networks, by id.
    networks: HashMap<i64, (String, Vec<String>)>,
}

impl Catalog {
    /// Reads the catalog.
    pub fn load(conn: &Connection) -> rusqlite::Result<Catalog> {
        let mut catalog = Catalog::default();
        for (name, id, is_local) in catalog::collectors(conn)? {
            catalog
                .collectors
                .entry(name.to_lowercase())
                .or_default()
                .push(id);
            if is_local && catalog.local_collector.is_none() {
                catalog.local_collector = Some(id);
            }
        }
        catalog.templates = catalog::templates(conn)?
            .into_iter()
            .map(|(name, id)| (name.to_lowercase(), id))
            .collect();
        catalog.credentials = credentials::ids_by_name(conn)?.into_iter().collect();
        catalog.networks = credentials::networks_by_id(conn)?;
        Ok(catalog)
    }

    /// Why credentials may not go with `address`, if they may not: a credential with networks
    /// only ever goes to an address inside them; one without networks is attached only by
    /// admins. `already` lists the credentials the node had at the same address (an operator's
    /// edit of something else keeps an admin's attachment).
    pub fn credential_scope(
        &self,
        address: &str,
        credential_ids: &[i64],
        already: &[i64],
        admin: bool,
    ) -> Vec<ImportProblem> {
        let mut problems = Vec::new();
        for id in credential_ids {
            let Some((name, nets)) = self.networks.get(id) else {
                continue;
            };
            if nets.is_empty() {
                if !admin && !already.contains(id) {
                    problems.push(problem(
                        "credentials",
                        format!(
                            "credential {name:?} has no networks: only an admin may attach it \
                             (or an admin gives it networks that hold {address})"
                        ),
                    ));
                }
            } else if !plantwatch_shared::rules::address_in_networks(address, nets) {
                problems.push(problem(
                    "credentials",
                    format!(
                        "{address} is outside the networks of credential {name:?} ({})",
                        nets.join(", ")
                    ),
                ));
            }
        }
        problems
    }

    /// The collector named `name`.
    pub fn collector(&self, name: &str) -> Result<i64, String> {
        match self.collectors.get(&name.to_lowercase()).map(Vec::as_slice) {
            Some([id]) => Ok(*id),
            Some(ids) if ids.len() > 1 => Err(format!(
                "{} collectors are named {name:?}; rename one of them",
                ids.len()
            )),
            _ => Err(format!("there is no collector named {name:?}")),
        }
    }

    /// The server's own collector, once it exists.
    pub fn local(&self) -> Option<i64> {
        self.local_collector
    }

    /// The credential named `name`.
    pub fn credential(&self, name: &str) -> Result<i64, String> {
        self.credentials
            .get(name.trim())
            .copied()
            .ok_or_else(|| format!("there is no credential named {name:?}"))
    }

    /// The template named `name`.
    pub fn template(&self, name: &str) -> Option<i64> {
        self.templates.get(&name.to_lowercase()).copied()
    }
}

/// A checked node document: every field valid and every reference but the parent resolved
/// (the parent may be another row of the same import).
#[derive(Debug, Clone)]
pub struct Checked {
    pub fields: NodeFields,
    pub parent: Option<String>,
    /// Whether the document named a collector (blank: the local one for a new node, the one
    /// it has for an existing node in an upsert, so an export imports back unchanged).
    pub collector_given: bool,
    /// The checks the node is to have, when the document says (each valid, no two alike).
    pub checks: Option<Vec<CheckSpec>>,
}

pub use plantwatch_shared::rules::{escape_cell, unescape_cell};

fn problem(column: &str, reason: impl Into<String>) -> ImportProblem {
    ImportProblem {
        column: Some(column.to_owned()),
        reason: reason.into(),
    }
}

fn blank_to_none(value: Option<&String>) -> Option<String> {
    value.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty())
}

/// Checks every field of `spec` and resolves its collector, template and credentials; returns
/// every problem found, not just the first.
pub fn check(spec: &NodeSpec, catalog: &Catalog) -> Result<Checked, Vec<ImportProblem>> {
    let mut problems = Vec::new();
    let name = spec.name.trim().to_owned();
    if let Some(reason) = name_problem(&name, MAX_NODE_NAME_LEN) {
        problems.push(problem("name", reason));
    }
    let address = spec.address.trim().to_owned();
    if let Some(reason) = address_problem(&address) {
        problems.push(problem("address", reason));
    }
    let mut tags: Vec<String> = spec
        .tags
        .iter()
        .map(|t| t.trim().to_owned())
        .filter(|t| !t.is_empty())
        .collect();
    tags.sort();
    tags.dedup();
    if let Some(reason) = tags.iter().find_map(|t| tag_problem(t)) {
        problems.push(problem("tags", reason));
    }
    let collector_id = match blank_to_none(spec.collector.as_ref()) {
        Some(name) => catalog.collector(&name).map(Some).unwrap_or_else(|reason| {
            problems.push(problem("collector", reason));
            None
        }),
        None => catalog.local_collector,
    };
    let template_id = match blank_to_none(spec.template.as_ref()) {
        Some(name) => match catalog.templates.get(&name.to_lowercase()) {
            Some(id) => Some(*id),
            None => {
                problems.push(problem(
                    "template",
                    format!("there is no device template named {name:?}"),
                ));
                None
            }
        },
        None => None,
    };
    let mut credential_ids = Vec::new();
    for name in spec
        .credentials
        .iter()
        .map(|c| c.trim())
        .filter(|c| !c.is_empty())
    {
        match catalog.credentials.get(name) {
            Some(id) if credential_ids.contains(id) => problems.push(problem(
                "credentials",
                format!("credential {name:?} is listed twice"),
            )),
            Some(id) => credential_ids.push(*id),
            None => problems.push(problem(
                "credentials",
                format!("there is no credential named {name:?}"),
            )),
        }
    }
    if let Some(reason) = spec.interval_s.and_then(interval_problem) {
        problems.push(problem("interval_s", reason));
    }
    let notes = blank_to_none(spec.notes.as_ref());
    if let Some(reason) = notes.as_deref().and_then(notes_problem) {
        problems.push(problem("notes", reason));
    }
    let parent = blank_to_none(spec.parent.as_ref());
    if parent
        .as_deref()
        .is_some_and(|p| p.eq_ignore_ascii_case(&name))
    {
        problems.push(problem("parent", "a node cannot be its own parent"));
    }
    if let Some(checks) = &spec.checks {
        problems.extend(checks_problem(checks).map(|reason| problem("checks", reason)));
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    Ok(Checked {
        fields: NodeFields {
            name,
            address,
            node_type: spec.node_type.unwrap_or(NodeType::Other),
            tags,
            collector_id,
            template_id,
            credential_ids,
            parent_id: None,
            interval_s: spec.interval_s,
            modbus_unit: spec.modbus_unit,
            notes,
        },
        parent,
        collector_given: blank_to_none(spec.collector.as_ref()).is_some(),
        checks: spec.checks.clone(),
    })
}

/// What is wrong with a node's list of checks: too many, one invalid, two alike.
fn checks_problem(checks: &[CheckSpec]) -> Option<String> {
    if checks.len() > MAX_CHECKS_PER_NODE {
        return Some(format!(
            "{} checks; a node has at most {MAX_CHECKS_PER_NODE}",
            checks.len()
        ));
    }
    let mut seen = std::collections::HashSet::new();
    checks.iter().find_map(|spec| {
        if let Some(problem) = spec.problem() {
            return Some(format!("{spec}: {problem}"));
        }
        (!seen.insert(spec.to_string())).then(|| format!("{spec} is listed twice"))
    })
}

/// The fields of a stored node, as [`check`] would resolve them.
pub fn fields_of(node: &Node) -> NodeFields {
    NodeFields {
        name: node.name.clone(),
        address: node.address.clone(),
        node_type: node.node_type,
        tags: node.tags.clone(),
        collector_id: node.collector_id,
        template_id: node.template_id,
        credential_ids: node.credentials.iter().map(|c| c.id).collect(),
        parent_id: node.parent_id,
        interval_s: node.interval_s,
        modbus_unit: node.modbus_unit,
        notes: node.notes.clone(),
    }
}

/// `node`'s document with `update` applied.
pub fn patched(node: &Node, update: UpdateNodeRequest) -> NodeSpec {
    let mut spec = NodeSpec::of(node);
    if let Some(name) = update.name {
        spec.name = name;
    }
    if let Some(address) = update.address {
        spec.address = address;
    }
    if let Some(node_type) = update.node_type {
        spec.node_type = Some(node_type);
    }
    if let Some(tags) = update.tags {
        spec.tags = tags;
    }
    if let Some(collector) = update.collector {
        spec.collector = collector;
    }
    if let Some(template) = update.template {
        spec.template = template;
    }
    if let Some(credentials) = update.credentials {
        spec.credentials = credentials;
    }
    if let Some(parent) = update.parent {
        spec.parent = parent;
    }
    if let Some(interval_s) = update.interval_s {
        spec.interval_s = interval_s;
    }
    if let Some(modbus_unit) = update.modbus_unit {
        spec.modbus_unit = modbus_unit;
    }
    if let Some(notes) = update.notes {
        spec.notes = notes;
    }
    spec
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(name: &str, address: &str) -> NodeSpec {
        NodeSpec {
            name: name.into(),
            address: address.into(),
            ..NodeSpec::default()
        }
    }

    fn columns(problems: &[ImportProblem]) -> Vec<&str> {
        problems
            .iter()
            .filter_map(|p| p.column.as_deref())
            .collect()
    }

    #[test]
    fn every_bad_field_is_reported_at_once() {
        let mut bad = spec("", "10.0.0.300");
        bad.tags = vec!["a b".into()];
        bad.interval_s = Some(0);
        bad.credentials = vec!["nope".into()];
        bad.collector = Some("far-away".into());
        let problems = check(&bad, &Catalog::default()).unwrap_err();
        assert_eq!(
            columns(&problems),
            [
                "name",
                "address",
                "tags",
                "collector",
                "credentials",
                "interval_s"
            ]
        );
    }

    #[test]
    fn tags_are_trimmed_sorted_and_deduplicated_and_type_defaults_to_other() {
        let mut good = spec("plc-1", "10.0.0.1");
        good.tags = vec![
            " line-2".into(),
            "line-1".into(),
            "line-2".into(),
            "".into(),
        ];
        let checked = check(&good, &Catalog::default()).unwrap();
        assert_eq!(checked.fields.tags, ["line-1", "line-2"]);
        assert_eq!(checked.fields.node_type, NodeType::Other);
    }

    #[test]
    fn a_node_cannot_be_its_own_parent() {
        let mut own = spec("sw1", "10.0.0.1");
        own.parent = Some("SW1".into());
        assert_eq!(
            columns(&check(&own, &Catalog::default()).unwrap_err()),
            ["parent"]
        );
    }
}
