//! Nodes: the devices and servers plantwatch monitors, and their batch import.

use serde::{Deserialize, Deserializer, Serialize};
use time::OffsetDateTime;

use super::{CheckSpec, CredentialKind};
use crate::named_enum;

named_enum! {
    /// What kind of device a node is.
    pub enum NodeType ("node type") {
        Network = "network",
        Server = "server",
        Storage = "storage",
        Ups = "ups",
        Plc = "plc",
        Hmi = "hmi",
        Printer = "printer",
        Other = "other",
        /// A vCenter Server, polled through the vSphere API with a `vsphere` credential.
        Vcenter = "vcenter",
        /// A standalone ESXi host, polled like a vCenter.
        Esxi = "esxi",
    }
}

impl NodeType {
    /// Whether nodes of this type are polled through the vSphere API.
    pub fn is_vsphere(self) -> bool {
        matches!(self, NodeType::Vcenter | NodeType::Esxi)
    }
}

named_enum! {
    /// Health status of a node (DESIGN §4), most urgent last but one.
    pub enum NodeStatus ("status") {
        /// Added or reassigned, no data yet.
        Discovering = "discovering",
        Healthy = "healthy",
        Warning = "warning",
        Critical = "critical",
        /// Unreachable for 300 s.
        Offline = "offline",
        /// In a maintenance window: alerts held, no notifications.
        Maintenance = "maintenance",
    }
}

impl NodeStatus {
    /// How urgent the status is, most first: critical, offline, warning, discovering,
    /// maintenance, healthy. What "problems first" sorts by.
    pub fn urgency(self) -> u8 {
        match self {
            NodeStatus::Critical => 0,
            NodeStatus::Offline => 1,
            NodeStatus::Warning => 2,
            NodeStatus::Discovering => 3,
            NodeStatus::Maintenance => 4,
            NodeStatus::Healthy => 5,
        }
    }
}

/// A node as every endpoint shows it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Node {
    pub id: i64,
    pub name: String,
    /// IPv4 or IPv6 address, or DNS name.
    pub address: String,
    #[serde(rename = "type")]
    pub node_type: NodeType,
    pub tags: Vec<String>,
    pub collector_id: Option<i64>,
    /// Name of the collector that polls the node.
    pub collector: Option<String>,
    pub template_id: Option<i64>,
    /// Name of the device template.
    pub template: Option<String>,
    /// Polling interval override in seconds; `None` uses the template's.
    pub interval_s: Option<u32>,
    /// The Modbus unit id it answers to (its template's profile says when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub modbus_unit: Option<u8>,
    pub parent_id: Option<i64>,
    /// Name of the parent node (the switch or collector the node hangs off).
    pub parent: Option<String>,
    /// Further parents (redundant uplinks): the node counts as cut off only when its parent
    /// and every one of these are down.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub other_parents: Vec<String>,
    pub notes: Option<String>,
    pub status: NodeStatus,
    pub status_reason: Option<String>,
    /// Credentials tried in this order.
    pub credentials: Vec<AttachedCredential>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
    /// When its newest sample was taken (since the server started), if any.
    #[serde(
        default,
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub last_sample_at: Option<OffsetDateTime>,
    /// Its latest ping round-trip time in ms, if it is pinged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rtt_ms: Option<f64>,
}

/// A credential attached to a node: its name and kind, never its secrets.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AttachedCredential {
    pub id: i64,
    pub name: String,
    pub kind: CredentialKind,
    /// Lower is tried first.
    pub priority: i64,
}

/// A node as a document: what `POST /nodes` takes, one row of an import and one row of an
/// export. References (collector, template, credentials, parent) are by name.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct NodeSpec {
    pub name: String,
    pub address: String,
    /// `other` when absent.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub node_type: Option<NodeType>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// The server's local collector when absent (once it exists).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub collector: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<String>,
    /// Credential names in priority order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub credentials: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval_s: Option<u32>,
    /// The Modbus unit id (0–255) of a device read over Modbus.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub modbus_unit: Option<u8>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notes: Option<String>,
    /// Service checks (`POST /nodes` and imports). Given, the node's checks become these: one
    /// with the same short form (`tls:443`) is kept — from a CSV cell, which holds only the
    /// short form, with its other settings — the others are added, and checks not listed are
    /// removed. Absent, the node's checks stay as they are.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checks: Option<Vec<CheckSpec>>,
}

impl NodeSpec {
    /// The columns of an import or export file, in this order.
    pub const COLUMNS: [&'static str; 12] = [
        "name",
        "address",
        "type",
        "tags",
        "collector",
        "template",
        "credentials",
        "parent",
        "interval_s",
        "notes",
        "checks",
        "modbus_unit",
    ];

    /// The spec that recreates `node`.
    pub fn of(node: &Node) -> NodeSpec {
        NodeSpec {
            name: node.name.clone(),
            address: node.address.clone(),
            node_type: Some(node.node_type),
            tags: node.tags.clone(),
            collector: node.collector.clone(),
            template: node.template.clone(),
            credentials: node.credentials.iter().map(|c| c.name.clone()).collect(),
            parent: node.parent.clone(),
            interval_s: node.interval_s,
            modbus_unit: node.modbus_unit,
            notes: node.notes.clone(),
            checks: None,
        }
    }
}

/// `PATCH /nodes/{id}`: absent fields stay; `null` clears an optional one.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct UpdateNodeRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub node_type: Option<NodeType>,
    /// Replaces every tag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<String>>,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Option::is_none"
    )]
    pub collector: Option<Option<String>>,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Option::is_none"
    )]
    pub template: Option<Option<String>>,
    /// Replaces the attached credentials, in priority order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials: Option<Vec<String>>,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Option::is_none"
    )]
    pub parent: Option<Option<String>>,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Option::is_none"
    )]
    pub interval_s: Option<Option<u32>>,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Option::is_none"
    )]
    pub modbus_unit: Option<Option<u8>>,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Option::is_none"
    )]
    pub notes: Option<Option<String>>,
}

/// One node's changes in a bulk request.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BulkNodeUpdate {
    pub id: i64,
    #[serde(flatten)]
    pub changes: UpdateNodeRequest,
}

/// Body of `POST /nodes/bulk`: every change and delete in one transaction, all or none.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BulkNodesRequest {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub update: Vec<BulkNodeUpdate>,
    /// Ids of nodes to delete.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub delete: Vec<i64>,
}

/// Answer of `POST /nodes/bulk`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BulkNodesAnswer {
    pub updated: Vec<Node>,
    /// Names of the nodes deleted.
    pub deleted: Vec<String>,
}

impl UpdateNodeRequest {
    /// Whether the request changes nothing.
    pub fn is_empty(&self) -> bool {
        *self == UpdateNodeRequest::default()
    }
}

/// A present field, possibly `null`: `Some(None)` clears, an absent field (`None`) keeps.
fn nullable<'de, T, D>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    T: Deserialize<'de>,
    D: Deserializer<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

/// Query of `GET /nodes`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct NodeQuery {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<NodeStatus>,
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub node_type: Option<NodeType>,
    /// Only nodes with this tag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    /// Only nodes polled by this collector (name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub collector: Option<String>,
    /// Only nodes whose name or address contains this text (case-insensitive).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub q: Option<String>,
    /// `name`, `address`, `type`, `status`, `collector`, `created_at` or `updated_at`; a
    /// leading `-` sorts descending.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sort: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset: Option<u32>,
}

/// `PUT /nodes/{id}/credentials/{credential_id}`: attach, or move to another priority.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AttachRequest {
    /// Lower is tried first; after the attached ones when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<i64>,
}

/// Query of `POST /nodes/import`. The body is CSV (`text/csv`) or a JSON array of
/// [`NodeSpec`] (`application/json`).
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq)]
pub struct ImportQuery {
    /// Check every row and answer the plan; write nothing.
    #[serde(default)]
    pub dry_run: bool,
    /// Rows whose name exists update that node (unchanged ones are left alone) instead of
    /// being rejected.
    #[serde(default)]
    pub upsert: bool,
    /// Apply the valid rows even when others are rejected.
    #[serde(default)]
    pub partial: bool,
}

named_enum! {
    /// What an import does, or would do, with one row.
    pub enum ImportOutcome ("outcome") {
        Create = "create",
        Update = "update",
        Unchanged = "unchanged",
        Error = "error",
    }
}

/// One row of an import plan.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ImportRow {
    /// 1 for the first data row (the line after a CSV header, the first element of JSON).
    pub row: u64,
    pub name: Option<String>,
    pub outcome: ImportOutcome,
    /// Why the row is rejected: empty unless `outcome` is `error`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<ImportProblem>,
}

/// Why one field of a row is refused.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ImportProblem {
    /// The column at fault, when one is.
    pub column: Option<String>,
    pub reason: String,
}

/// Counts of an import plan.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq)]
pub struct ImportSummary {
    pub create: u64,
    pub update: u64,
    pub unchanged: u64,
    pub error: u64,
}

/// Answer of `POST /nodes/import`: the plan, and whether it was written.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ImportReport {
    /// True when the changes were committed.
    pub applied: bool,
    pub dry_run: bool,
    pub summary: ImportSummary,
    pub rows: Vec<ImportRow>,
}

/// Query of `GET /nodes/export`.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq)]
pub struct ExportQuery {
    #[serde(default)]
    pub format: ExportFormat,
}

/// File format of an export.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "lowercase")]
pub enum ExportFormat {
    #[default]
    Csv,
    Json,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_types_parse_case_insensitively_and_list_the_choices() {
        assert_eq!("PLC".parse::<NodeType>().unwrap(), NodeType::Plc);
        let err = "router".parse::<NodeType>().unwrap_err().to_string();
        assert!(err.contains("network, server, storage"), "{err}");
    }

    #[test]
    fn update_tells_absent_from_null() {
        let update: UpdateNodeRequest =
            serde_json::from_str(r#"{"parent": null, "notes": "x"}"#).unwrap();
        assert_eq!(update.parent, Some(None));
        assert_eq!(update.notes, Some(Some("x".to_owned())));
        assert_eq!(update.template, None);
        assert!(!update.is_empty());
        let back = serde_json::to_value(&update).unwrap();
        assert!(back["parent"].is_null() && back.get("template").is_none());
    }

    #[test]
    fn unknown_fields_of_a_spec_are_refused() {
        let err = serde_json::from_str::<NodeSpec>(r#"{"name":"a","address":"b","colour":1}"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("colour"), "{err}");
    }
}

/// Most names a node's service or process list holds.
pub const MAX_HOST_NAMES: usize = 100;
/// Longest service or process name.
pub const MAX_HOST_NAME_LEN: usize = 256;

/// What a node's agent must have running: `PUT /nodes/{id}/host`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostWatch {
    /// Windows services (by service name, `Spooler`) whose stop is a critical alert whatever
    /// their start type; one not installed is one too.
    #[serde(default)]
    pub services: Vec<String>,
    /// Processes counted by name (`process.count`, `process.cpu_pct`), `.exe` optional.
    #[serde(default)]
    pub processes: Vec<String>,
}

impl HostWatch {
    /// Trimmed, without duplicates (case-insensitively), sorted; what is wrong with the lists.
    pub fn normalized(self) -> Result<HostWatch, String> {
        let clean = |what: &str, names: Vec<String>| -> Result<Vec<String>, String> {
            let mut out: Vec<String> = Vec::new();
            for name in names {
                let name = name.trim().to_owned();
                if name.is_empty() || name.len() > MAX_HOST_NAME_LEN {
                    return Err(format!(
                        "a {what} name must have 1 to {MAX_HOST_NAME_LEN} bytes"
                    ));
                }
                if name.chars().any(char::is_control) {
                    return Err(format!("the {what} name {name:?} has control characters"));
                }
                if !out.iter().any(|n| n.eq_ignore_ascii_case(&name)) {
                    out.push(name);
                }
            }
            if out.len() > MAX_HOST_NAMES {
                return Err(format!("at most {MAX_HOST_NAMES} {what} names"));
            }
            out.sort_by_key(|n| n.to_lowercase());
            Ok(out)
        };
        Ok(HostWatch {
            services: clean("service", self.services)?,
            processes: clean("process", self.processes)?,
        })
    }
}

/// A node's machine as its agent reported it, and what it must run: `GET /nodes/{id}/host`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NodeHost {
    pub node_id: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inventory: Option<super::HostInventory>,
    /// When the agent sent it.
    #[serde(
        default,
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub inventory_at: Option<OffsetDateTime>,
    #[serde(flatten)]
    pub watch: HostWatch,
}
