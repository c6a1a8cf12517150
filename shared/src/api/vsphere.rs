//! vSphere: what a collector reads from a vCenter (or a standalone ESXi host) and sends the
//! server (`POST /remote-collectors/{id}/vsphere/{node_id}`), the node ids the server answers
//! with, and what `GET /nodes/{id}/vsphere` shows of a vCenter's inventory.

use serde::{Deserialize, Serialize};

/// Seconds between polls of a vCenter when its node names no interval.
pub const DEFAULT_VSPHERE_INTERVAL_S: u32 = 300;
/// Objects asked for per page of a property collector's answer.
pub const PAGE_SIZE: u32 = 500;
/// Most objects of each kind one inventory may carry.
pub const MAX_OBJECTS: usize = 50_000;
/// The tag on a vCenter node that keeps its VMs from becoming nodes (large estates): their
/// counts and the hosts' metrics still arrive.
pub const NO_VM_NODES_TAG: &str = "vsphere-no-vm-nodes";
/// The tag on a VM node that makes `vm_powered_off` watch it.
pub const MUST_RUN_TAG: &str = "must-run";
/// The tag on a host or VM node that has left its vCenter's inventory.
pub const GONE_TAG: &str = "vsphere-gone";

/// How a collector polls one vCenter node (in its target).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VsphereTarget {
    /// Seconds between polls: the node's interval, else 300.
    pub interval_s: u32,
    /// Whether its VMs become nodes (the vCenter node does not carry [`NO_VM_NODES_TAG`]).
    pub vm_nodes: bool,
}

/// A host of the inventory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VsphereHost {
    /// Managed object id (`host-21`): what keeps its node through renames.
    pub moref: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub datacenter: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
    /// `connected`, `disconnected`, `notResponding`.
    pub connection_state: String,
    /// `poweredOn`, `poweredOff`, `standBy`, `unknown`.
    pub power_state: String,
    #[serde(default)]
    pub maintenance: bool,
}

/// A VM of the inventory (templates are left out).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VsphereVm {
    pub moref: String,
    pub name: String,
    /// The moref of the host it runs on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub datacenter: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
    /// `poweredOn`, `poweredOff`, `suspended`.
    pub power_state: String,
    /// The guest's primary address, as VMware Tools report it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub guest_os: Option<String>,
}

/// A datastore of the inventory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VsphereDatastore {
    pub moref: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub datacenter: Option<String>,
    /// `VMFS`, `NFS`, `vsan`…
    #[serde(default)]
    pub kind: String,
    pub capacity_bytes: u64,
    pub free_bytes: u64,
    pub accessible: bool,
}

/// A vCenter's inventory as one poll read it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct VsphereInventory {
    /// What the server says it is (`VMware vCenter Server 8.0.2 build-…`).
    #[serde(default)]
    pub about: String,
    pub hosts: Vec<VsphereHost>,
    pub vms: Vec<VsphereVm>,
    pub datastores: Vec<VsphereDatastore>,
}

impl VsphereInventory {
    /// Why the server refuses it, if it does: sizes within bounds, names and morefs present.
    pub fn problem(&self) -> Option<String> {
        let counts = [
            ("hosts", self.hosts.len()),
            ("VMs", self.vms.len()),
            ("datastores", self.datastores.len()),
        ];
        if let Some((what, n)) = counts.iter().find(|(_, n)| *n > MAX_OBJECTS) {
            return Some(format!(
                "an inventory carries at most {MAX_OBJECTS} {what} ({n} sent)"
            ));
        }
        let texts = self
            .hosts
            .iter()
            .flat_map(|h| [&h.moref, &h.name])
            .chain(self.vms.iter().flat_map(|v| [&v.moref, &v.name]))
            .chain(self.datastores.iter().flat_map(|d| [&d.moref, &d.name]));
        for text in texts {
            if text.trim().is_empty() || text.chars().count() > 200 {
                return Some(format!(
                    "every object needs a moref and a name of 1 to 200 characters ({text:?})"
                ));
            }
        }
        None
    }
}

/// The server's answer to an inventory: the node of each host and VM by moref.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct VsphereSync {
    /// (moref, node id) of every host and VM that is a node.
    pub nodes: Vec<(String, i64)>,
    /// Nodes made, renamed and marked gone by this inventory.
    pub created: u32,
    pub renamed: u32,
    pub gone: u32,
}

/// One row of `GET /nodes/{id}/vsphere`: a host, VM or datastore of a vCenter node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VsphereObject {
    /// `host`, `vm` or `datastore`.
    pub kind: String,
    pub name: String,
    pub moref: String,
    /// Its node (hosts and VMs that are nodes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_id: Option<i64>,
    /// `connected`, `poweredOn`, `accessible`… or `gone`.
    pub state: String,
    /// A host's cluster, a VM's host, a datastore's fill (`71 % of 2.0 TiB`).
    #[serde(default)]
    pub detail: String,
}
