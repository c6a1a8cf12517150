//! One change to many nodes: which nodes (`tag=line-1`, `type=plc`, `name=press-*`), what to set
//! on all of them, tags to add or remove, and the plan — each node's own request, only what
//! really changes — with a preview line per node and field. The console's marked rows and
//! `plantwatch nodes update|delete --where` both send the plan as one request, one transaction.

use plantwatch_shared::api::{BulkNodeUpdate, Node, NodeType, UpdateNodeRequest};
use plantwatch_shared::rules::glob_matches;

/// A condition on a node: `key=pattern`, `*` matching any run of characters, without case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Condition {
    pub key: String,
    pub pattern: String,
}

/// The keys a condition may test.
pub const CONDITION_KEYS: &[&str] = &[
    "name",
    "address",
    "tag",
    "type",
    "status",
    "collector",
    "template",
    "parent",
];

impl Condition {
    /// `tag=line-1`; why not, when it is not one.
    pub fn parse(text: &str) -> Result<Condition, String> {
        let Some((key, pattern)) = text.split_once('=') else {
            return Err(format!("{text:?}: give KEY=VALUE, such as tag=line-1"));
        };
        let key = key.trim().to_ascii_lowercase();
        if !CONDITION_KEYS.contains(&key.as_str()) {
            return Err(format!(
                "{text:?}: {key} is not one of {}",
                CONDITION_KEYS.join(", ")
            ));
        }
        Ok(Condition {
            key,
            pattern: pattern.trim().to_lowercase(),
        })
    }

    pub fn matches(&self, node: &Node) -> bool {
        let test = |value: &str| glob_matches(&self.pattern, &value.to_lowercase());
        let optional = |value: &Option<String>| test(value.as_deref().unwrap_or(""));
        match self.key.as_str() {
            "name" => test(&node.name),
            "address" => test(&node.address),
            "tag" => node.tags.iter().any(|t| test(t)),
            "type" => test(node.node_type.as_str()),
            "status" => test(node.status.as_str()),
            "collector" => optional(&node.collector),
            "template" => optional(&node.template),
            "parent" => optional(&node.parent),
            _ => false,
        }
    }
}

/// Whether `node` meets every condition.
pub fn selected(node: &Node, conditions: &[Condition]) -> bool {
    conditions.iter().all(|c| c.matches(node))
}

/// What to do to every node chosen.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BulkEdit {
    /// Set on every node (never a name or an address: those are one node's).
    pub set: UpdateNodeRequest,
    pub add_tags: Vec<String>,
    pub remove_tags: Vec<String>,
}

impl BulkEdit {
    pub fn is_empty(&self) -> bool {
        self.set.is_empty() && self.add_tags.is_empty() && self.remove_tags.is_empty()
    }

    /// Sets one field from `field=value` (`interval_s=30`, `template=cisco-ios`; an empty value
    /// clears an optional field).
    pub fn set_field(&mut self, text: &str) -> Result<(), String> {
        let Some((field, value)) = text.split_once('=') else {
            return Err(format!("{text:?}: give FIELD=VALUE, such as interval_s=30"));
        };
        let value = value.trim();
        let optional = || Some(Some(value.to_owned()).filter(|v| !v.is_empty()));
        match field.trim().to_ascii_lowercase().replace('-', "_").as_str() {
            "interval_s" | "interval" => {
                self.set.interval_s = match value {
                    "" => Some(None),
                    text => Some(Some(text.parse::<u32>().map_err(|_| {
                        format!("interval_s {text:?} is not a whole number of seconds")
                    })?)),
                }
            }
            "modbus_unit" => {
                self.set.modbus_unit = match value {
                    "" => Some(None),
                    text => {
                        Some(Some(text.parse::<u8>().map_err(|_| {
                            format!("modbus_unit {text:?} is not 0 to 255")
                        })?))
                    }
                }
            }
            "template" => self.set.template = optional(),
            "collector" => self.set.collector = optional(),
            "parent" => self.set.parent = optional(),
            "notes" => self.set.notes = optional(),
            "tags" => self.set.tags = Some(plantwatch_shared::rules::split_list(value)),
            "credentials" => {
                self.set.credentials = Some(plantwatch_shared::rules::split_list(value))
            }
            "type" => {
                self.set.node_type = Some(
                    value
                        .parse::<NodeType>()
                        .map_err(|_| format!("type {value:?} is not a node type"))?,
                )
            }
            "name" | "address" => {
                return Err(format!(
                    "{field} is one node's own: change it with `nodes update NODE --{field}`"
                ));
            }
            other => {
                return Err(format!(
                    "{other} cannot be set here: use interval_s, template, collector, parent, \
                     tags, credentials, type, notes or modbus_unit"
                ));
            }
        }
        Ok(())
    }
}

/// One line of a plan's preview.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Change {
    pub node: String,
    pub field: &'static str,
    pub before: String,
    pub after: String,
}

fn shown(value: Option<&str>) -> String {
    value.filter(|v| !v.is_empty()).unwrap_or("-").to_owned()
}

/// Each node's request — only the fields that change for it — and the preview; a node nothing
/// changes for is left out.
pub fn plan(nodes: &[Node], edit: &BulkEdit) -> (Vec<BulkNodeUpdate>, Vec<Change>) {
    let mut updates = Vec::new();
    let mut changes = Vec::new();
    for node in nodes {
        let mut request = edit.set.clone();
        let mut lines: Vec<(&'static str, String, String)> = Vec::new();
        let mut tags = request.tags.clone().unwrap_or_else(|| node.tags.clone());
        for tag in &edit.add_tags {
            if !tags.contains(tag) {
                tags.push(tag.clone());
            }
        }
        tags.retain(|t| !edit.remove_tags.contains(t));
        request.tags = (tags != node.tags).then(|| {
            lines.push(("tags", node.tags.join(";"), tags.join(";")));
            tags
        });
        let mut optional =
            |field: &'static str, wanted: &mut Option<Option<String>>, now: Option<&str>| {
                if let Some(want) = wanted.as_ref() {
                    if want.as_deref() == now {
                        *wanted = None;
                    } else {
                        lines.push((field, shown(now), shown(want.as_deref())));
                    }
                }
            };
        optional(
            "collector",
            &mut request.collector,
            node.collector.as_deref(),
        );
        optional("template", &mut request.template, node.template.as_deref());
        optional("parent", &mut request.parent, node.parent.as_deref());
        optional("notes", &mut request.notes, node.notes.as_deref());
        if let Some(want) = request.interval_s {
            if want == node.interval_s {
                request.interval_s = None;
            } else {
                let text = |v: Option<u32>| v.map_or("template's".into(), |s| format!("{s} s"));
                lines.push(("interval_s", text(node.interval_s), text(want)));
            }
        }
        if let Some(want) = request.modbus_unit {
            if want == node.modbus_unit {
                request.modbus_unit = None;
            } else {
                let text = |v: Option<u8>| v.map_or("-".into(), |u| u.to_string());
                lines.push(("modbus_unit", text(node.modbus_unit), text(want)));
            }
        }
        if let Some(want) = request.node_type {
            if want == node.node_type {
                request.node_type = None;
            } else {
                lines.push(("type", node.node_type.to_string(), want.to_string()));
            }
        }
        if let Some(want) = &request.credentials {
            let now: Vec<String> = node.credentials.iter().map(|c| c.name.clone()).collect();
            if *want == now {
                request.credentials = None;
            } else {
                lines.push(("credentials", now.join(";"), want.join(";")));
            }
        }
        if request.is_empty() {
            continue;
        }
        changes.extend(lines.into_iter().map(|(field, before, after)| Change {
            node: node.name.clone(),
            field,
            before: if before.is_empty() {
                "-".into()
            } else {
                before
            },
            after: if after.is_empty() { "-".into() } else { after },
        }));
        updates.push(BulkNodeUpdate {
            id: node.id,
            changes: request,
        });
    }
    (updates, changes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(id: i64, name: &str, tags: &[&str], interval: Option<u32>) -> Node {
        let mut node: Node = serde_json::from_value(serde_json::json!({
            "id": id, "name": name, "address": format!("10.0.0.{id}"), "type": "plc",
            "tags": tags, "status": "healthy", "credentials": [],
            "created_at": "2026-12-04T00:00:00Z", "updated_at": "2026-12-04T00:00:00Z"
        }))
        .unwrap();
        node.interval_s = interval;
        node
    }

    #[test]
    fn conditions_select_by_tag_name_and_type_without_case() {
        let plc = node(1, "Press-PLC-1", &["line-1"], None);
        let cond = |t: &str| Condition::parse(t).unwrap();
        assert!(selected(
            &plc,
            &[cond("tag=line-1"), cond("name=press-*"), cond("type=PLC")]
        ));
        assert!(!selected(&plc, &[cond("tag=line-2")]));
        assert!(!selected(&plc, &[cond("collector=*x*")]));
        assert!(
            Condition::parse("colour=red")
                .unwrap_err()
                .contains("not one of")
        );
        assert!(Condition::parse("line-1").is_err());
    }

    #[test]
    fn a_plan_sends_only_what_changes_per_node() {
        let nodes = [
            node(1, "plc-1", &["line-1"], Some(30)),
            node(2, "plc-2", &["line-1", "old"], None),
        ];
        let mut edit = BulkEdit::default();
        edit.set_field("interval_s=30").unwrap();
        edit.add_tags = vec!["audited".into()];
        edit.remove_tags = vec!["old".into()];
        let (updates, changes) = plan(&nodes, &edit);
        assert_eq!(updates.len(), 2);
        assert_eq!(
            updates[0].changes.interval_s, None,
            "plc-1 already polls every 30 s"
        );
        assert_eq!(
            updates[0].changes.tags,
            Some(vec!["line-1".into(), "audited".into()])
        );
        assert_eq!(updates[1].changes.interval_s, Some(Some(30)));
        assert_eq!(
            updates[1].changes.tags,
            Some(vec!["line-1".into(), "audited".into()])
        );
        assert!(changes.contains(&Change {
            node: "plc-2".into(),
            field: "interval_s",
            before: "template's".into(),
            after: "30 s".into(),
        }));
        // Nothing to change: nothing sent.
        let mut same = BulkEdit::default();
        same.set_field("interval_s=30").unwrap();
        assert_eq!(plan(&nodes[..1], &same).0, vec![]);
        assert!(
            same.set_field("name=x")
                .unwrap_err()
                .contains("one node's own")
        );
        assert!(same.set_field("interval_s=soon").is_err());
    }
}
