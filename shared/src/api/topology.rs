//! Topology: the LLDP and CDP neighbours the collectors read from the devices, and the links
//! the server resolves from them (`GET /api/v1/topology`).

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::named_enum;

named_enum! {
    /// How a device learned its neighbour.
    pub enum NeighbourProtocol ("neighbour protocol") {
        Lldp = "lldp",
        Cdp = "cdp",
    }
}

/// One row of a device's neighbour table, as read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NeighbourRow {
    pub protocol: NeighbourProtocol,
    /// The device's own port the neighbour is on (its name or description).
    pub local_port: String,
    /// The neighbour's chassis id (a MAC as `aa:bb:cc:dd:ee:ff`, or its text).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chassis_id: Option<String>,
    /// The neighbour's port id (CDP: its port name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port_descr: Option<String>,
    /// The neighbour's system name (CDP: its device id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sys_name: Option<String>,
    /// Its management address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// CDP: its platform (`cisco WS-C3750G-24PS`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<String>,
}

/// What a collector sends of one node after walking its neighbour tables (one `neighbours`
/// line of its outbox, field `doc`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NeighbourReport {
    pub node_id: i64,
    /// The device's own LLDP chassis id and system name: how its neighbours name it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chassis_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sys_name: Option<String>,
    pub rows: Vec<NeighbourRow>,
}

/// Most rows one report may carry.
pub const MAX_NEIGHBOUR_ROWS: usize = 4_096;

/// A node on the map.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TopologyNode {
    pub id: i64,
    pub name: String,
    pub address: String,
    pub health: super::NodeStatus,
    /// Its parent today (maps start from the nodes without one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_id: Option<i64>,
}

/// A link between two monitored nodes, once however many ends report it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TopologyLink {
    pub a: i64,
    pub a_port: Option<String>,
    pub b: i64,
    pub b_port: Option<String>,
    pub protocols: Vec<NeighbourProtocol>,
    /// Whether both ends report it.
    pub both_ends: bool,
    #[serde(with = "time::serde::rfc3339")]
    pub first_seen: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub last_seen: OffsetDateTime,
    /// No longer reported by the last walk of either end: shown as gone, kept a while.
    pub gone: bool,
}

/// A neighbour no node matches: a device to import.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UnmanagedNeighbour {
    /// The node that sees it (on the row's `local_port`).
    pub seen_by: i64,
    #[serde(flatten)]
    pub neighbour: NeighbourRow,
    #[serde(with = "time::serde::rfc3339")]
    pub last_seen: OffsetDateTime,
}

/// `GET /api/v1/topology`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Topology {
    pub nodes: Vec<TopologyNode>,
    pub links: Vec<TopologyLink>,
    pub unmanaged: Vec<UnmanagedNeighbour>,
}

impl Topology {
    /// Where trees of the whole map start: the linked nodes without a parent first (once
    /// parents are set, the tree follows them), then by links not gone, best connected first,
    /// then by name; a tree from each group's first covers the map.
    pub fn roots(&self) -> Vec<i64> {
        let mut degree: std::collections::HashMap<i64, usize> = Default::default();
        for link in &self.links {
            for end in [link.a, link.b] {
                *degree.entry(end).or_default() += usize::from(!link.gone);
            }
        }
        let mut linked: Vec<&TopologyNode> = self
            .nodes
            .iter()
            .filter(|n| degree.contains_key(&n.id))
            .collect();
        linked.sort_by(|a, b| {
            (a.parent_id.is_some(), degree[&b.id], &a.name).cmp(&(
                b.parent_id.is_some(),
                degree[&a.id],
                &b.name,
            ))
        });
        linked.into_iter().map(|n| n.id).collect()
    }
}

/// Query of `GET /api/v1/topology`: around one node (within `depth` links), or everything.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TopologyQuery {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_id: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub depth: Option<u32>,
}

/// A parent the links suggest for a node: the neighbour it hangs off, towards the root.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ParentSuggestion {
    pub node_id: i64,
    pub node: String,
    /// Its parent today.
    pub current: Option<i64>,
    pub current_name: Option<String>,
    pub suggested: i64,
    pub suggested_name: String,
    /// The suggested parent's port the node is on.
    pub via_port: Option<String>,
}

/// Query of `GET /api/v1/topology/parents`: the root (the node towards the collector); by
/// default each group of linked nodes' best-connected node.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ParentQuery {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root: Option<i64>,
}

/// One parent to set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ParentChange {
    pub node_id: i64,
    pub parent_id: i64,
}

/// `POST /api/v1/topology/parents`: parents set in one transaction.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ParentChanges {
    pub parents: Vec<ParentChange>,
}

/// Most parents set in one request.
pub const MAX_PARENT_CHANGES: usize = 10_000;

/// A collector's automatic parents: with a root (the node towards the collector), the server
/// sets the parents of the collector's nodes from the wiring after each neighbour walk.
/// `GET /api/v1/topology/auto-parents` lists every collector's;
/// `PUT /api/v1/topology/auto-parents/{collector_id}` sets one (`root_id` null: off).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AutoParents {
    #[serde(default)]
    pub collector_id: i64,
    #[serde(default)]
    pub collector: String,
    pub root_id: Option<i64>,
    #[serde(default)]
    pub root: Option<String>,
    /// What the server set at once, in the answer to a `PUT`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub applied: Vec<ParentSuggestion>,
}
