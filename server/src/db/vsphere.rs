//! A vCenter's inventory kept as nodes: each host and VM is a node owned by the vCenter node,
//! found again by its managed object id (so a renamed VM keeps its node, history and alerts),
//! tagged with its cluster and datacenter, and marked (tag `vsphere-gone`), never deleted, when
//! it leaves the inventory. The last inventory is kept whole for the vCenter's screen.

use std::collections::HashMap;

use plantwatch_shared::api::NodeType;
use plantwatch_shared::api::vsphere::{GONE_TAG, VsphereInventory, VsphereObject, VsphereSync};
use rusqlite::{Connection, OptionalExtension as _};

use super::nodes::{self, NodeFields};

/// The tag every host and VM node carries.
pub const VSPHERE_TAG: &str = "vsphere";

/// The vCenter node `node_id` if collector `collector_id` polls it: (name, collector id).
pub fn vcenter_of_collector(
    conn: &Connection,
    collector_id: i64,
    node_id: i64,
) -> rusqlite::Result<Option<String>> {
    conn.query_row(
        "SELECT name FROM nodes
          WHERE id = ?1 AND collector_id = ?2 AND node_type IN ('vcenter', 'esxi')",
        (node_id, collector_id),
        |r| r.get(0),
    )
    .optional()
}

/// `kind:value` as a tag (spaces, commas and semicolons become `-`), at most 64 characters.
fn tag(kind: &str, value: &str) -> String {
    let cleaned: String = value
        .chars()
        .map(|c| {
            if c.is_whitespace() || c == ',' || c == ';' || c.is_control() {
                '-'
            } else {
                c
            }
        })
        .collect();
    format!("{kind}:{cleaned}").chars().take(64).collect()
}

/// An address a node may have (an IP address or a DNS name) for a host or VM: the first of
/// `candidates` that is one, else the first made one (lower case, other characters `-`:
/// `DC0_H0_VM0` → `dc0-h0-vm0`), else its moref. Hosts and VMs are read through their vCenter,
/// never at this address; it is what people see and search for.
fn usable_address(candidates: &[&str], moref: &str) -> String {
    if let Some(ok) = candidates
        .iter()
        .find(|c| plantwatch_shared::rules::address_problem(c).is_none())
    {
        return (*ok).to_owned();
    }
    let made = |text: &str| -> String {
        let label: String = text
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '.' {
                    c.to_ascii_lowercase()
                } else {
                    '-'
                }
            })
            .take(253)
            .collect();
        label
            .split('.')
            .map(|l| l.trim_matches('-'))
            .filter(|l| !l.is_empty())
            .map(|l| l.chars().take(63).collect::<String>())
            .collect::<Vec<_>>()
            .join(".")
    };
    candidates
        .iter()
        .chain([&moref])
        .map(|c| made(c))
        .find(|a| plantwatch_shared::rules::address_problem(a).is_none())
        .unwrap_or_else(|| "vsphere.invalid".to_owned())
}

/// A name no other node has: `wanted`, else `wanted (vcenter)`, else `wanted (moref)`.
fn free_name(
    conn: &Connection,
    wanted: &str,
    vcenter: &str,
    moref: &str,
    own: Option<i64>,
) -> rusqlite::Result<String> {
    let mut find = conn.prepare_cached("SELECT id FROM nodes WHERE name = ?1")?;
    for candidate in [
        wanted.to_owned(),
        format!("{wanted} ({vcenter})"),
        format!("{wanted} ({vcenter} {moref})"),
    ] {
        let holder: Option<i64> = find.query_row([&candidate], |r| r.get(0)).optional()?;
        if holder.is_none() || holder == own {
            return Ok(candidate);
        }
    }
    Ok(format!("{wanted} ({vcenter} {moref})"))
}

struct Known {
    id: i64,
    name: String,
    gone: bool,
}

/// One object to keep as a node.
struct Wanted<'a> {
    moref: &'a str,
    name: &'a str,
    address: String,
    parent: Option<&'a str>,
    tags: Vec<String>,
}

/// Makes the inventory's hosts and VMs nodes of the vCenter node `vcenter_id` (polled by
/// `collector_id`): new ones created, renamed ones renamed, missing ones marked gone, and the
/// inventory kept for the vCenter's screen.
pub fn sync(
    conn: &Connection,
    vcenter_id: i64,
    vcenter: &str,
    collector_id: i64,
    inventory: &VsphereInventory,
    now: i64,
) -> rusqlite::Result<VsphereSync> {
    let mut known: HashMap<String, Known> = HashMap::new();
    {
        let mut rows = conn.prepare_cached(
            "SELECT vsphere_moref, id, name, vsphere_gone_at IS NOT NULL FROM nodes
              WHERE vsphere_owner_id = ?1",
        )?;
        let mut rows = rows.query([vcenter_id])?;
        while let Some(row) = rows.next()? {
            known.insert(
                row.get(0)?,
                Known {
                    id: row.get(1)?,
                    name: row.get(2)?,
                    gone: row.get(3)?,
                },
            );
        }
    }
    let place = |datacenter: &Option<String>, cluster: &Option<String>| {
        let mut tags = vec![VSPHERE_TAG.to_owned()];
        tags.extend(datacenter.as_deref().map(|d| tag("datacenter", d)));
        tags.extend(cluster.as_deref().map(|c| tag("cluster", c)));
        tags
    };
    let hosts = inventory.hosts.iter().map(|h| Wanted {
        moref: &h.moref,
        name: &h.name,
        address: usable_address(&[&h.name], &h.moref),
        parent: None,
        tags: place(&h.datacenter, &h.cluster),
    });
    let vms = inventory.vms.iter().map(|v| Wanted {
        moref: &v.moref,
        name: &v.name,
        address: usable_address(&[v.ip.as_deref().unwrap_or_default(), &v.name], &v.moref),
        parent: v.host.as_deref(),
        tags: place(&v.datacenter, &v.cluster),
    });
    let mut answer = VsphereSync::default();
    let mut ids: HashMap<String, i64> = HashMap::new();
    // Hosts first: a VM's parent is its host's node.
    for wanted in hosts.chain(vms) {
        let parent_id = wanted
            .parent
            .and_then(|host| ids.get(host).copied())
            .unwrap_or(vcenter_id);
        let address = wanted.address.clone();
        match known.get(wanted.moref) {
            Some(node) => {
                if node.name != wanted.name {
                    let name = free_name(conn, wanted.name, vcenter, wanted.moref, Some(node.id))?;
                    if name != node.name {
                        answer.renamed += 1;
                    }
                    conn.prepare_cached(
                        "UPDATE nodes SET name = ?2, updated_at = ?3 WHERE id = ?1",
                    )?
                    .execute((node.id, &name, now))?;
                }
                // Address, parent and placement follow the inventory (a VM moved by vMotion).
                conn.prepare_cached(
                    "UPDATE nodes SET address = ?2, parent_id = ?3, vsphere_gone_at = NULL
                      WHERE id = ?1 AND (address <> ?2 OR parent_id IS NOT ?3 OR vsphere_gone_at IS NOT NULL)",
                )?
                .execute((node.id, &address, parent_id))?;
                set_placement(conn, node.id, &wanted.tags)?;
                ids.insert(wanted.moref.to_owned(), node.id);
            }
            None => {
                let name = free_name(conn, wanted.name, vcenter, wanted.moref, None)?;
                let mut tags = wanted.tags.clone();
                tags.sort();
                tags.dedup();
                let id = nodes::insert(
                    conn,
                    &NodeFields {
                        name,
                        address,
                        node_type: NodeType::Server,
                        tags,
                        collector_id: Some(collector_id),
                        template_id: None,
                        credential_ids: Vec::new(),
                        parent_id: Some(parent_id),
                        interval_s: None,
                        modbus_unit: None,
                        notes: None,
                    },
                    now,
                )?;
                conn.prepare_cached(
                    "UPDATE nodes SET vsphere_owner_id = ?2, vsphere_moref = ?3 WHERE id = ?1",
                )?
                .execute((id, vcenter_id, wanted.moref))?;
                answer.created += 1;
                ids.insert(wanted.moref.to_owned(), id);
            }
        }
    }
    for (moref, node) in &known {
        if ids.contains_key(moref) || node.gone {
            continue;
        }
        conn.prepare_cached(
            "UPDATE nodes SET vsphere_gone_at = ?2, updated_at = ?2 WHERE id = ?1",
        )?
        .execute((node.id, now))?;
        conn.prepare_cached("INSERT OR IGNORE INTO node_tags (node_id, tag) VALUES (?1, ?2)")?
            .execute((node.id, GONE_TAG))?;
        answer.gone += 1;
    }
    conn.prepare_cached(
        "INSERT INTO vsphere_inventories (node_id, doc, received_at) VALUES (?1, ?2, ?3)
         ON CONFLICT (node_id) DO UPDATE SET doc = excluded.doc, received_at = excluded.received_at",
    )?
    .execute((
        vcenter_id,
        serde_json::to_string(inventory).unwrap_or_default(),
        now,
    ))?;
    answer.nodes = ids.into_iter().collect();
    answer.nodes.sort();
    Ok(answer)
}

/// Replaces a node's `vsphere`, `datacenter:` and `cluster:` tags (and drops `vsphere-gone`),
/// leaving the tags people gave it.
fn set_placement(conn: &Connection, node_id: i64, tags: &[String]) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "DELETE FROM node_tags WHERE node_id = ?1
            AND (tag = ?2 OR tag LIKE 'datacenter:%' OR tag LIKE 'cluster:%')",
    )?
    .execute((node_id, GONE_TAG))?;
    let mut insert =
        conn.prepare_cached("INSERT OR IGNORE INTO node_tags (node_id, tag) VALUES (?1, ?2)")?;
    for tag in tags {
        insert.execute((node_id, tag))?;
    }
    Ok(())
}

/// What a vCenter node's screen lists: its hosts, VMs and datastores from the last inventory,
/// with their nodes, then the nodes that have left it.
pub fn objects(conn: &Connection, vcenter_id: i64) -> rusqlite::Result<Vec<VsphereObject>> {
    let doc: Option<String> = conn
        .query_row(
            "SELECT doc FROM vsphere_inventories WHERE node_id = ?1",
            [vcenter_id],
            |r| r.get(0),
        )
        .optional()?;
    let inventory: VsphereInventory = doc
        .and_then(|d| serde_json::from_str(&d).ok())
        .unwrap_or_default();
    let mut nodes: HashMap<String, (i64, bool)> = HashMap::new();
    {
        let mut rows = conn.prepare_cached(
            "SELECT vsphere_moref, id, vsphere_gone_at IS NOT NULL FROM nodes WHERE vsphere_owner_id = ?1",
        )?;
        let mut rows = rows.query([vcenter_id])?;
        while let Some(row) = rows.next()? {
            nodes.insert(row.get(0)?, (row.get(1)?, row.get(2)?));
        }
    }
    let host_names: HashMap<&str, &str> = inventory
        .hosts
        .iter()
        .map(|h| (h.moref.as_str(), h.name.as_str()))
        .collect();
    let mut objects = Vec::new();
    for host in &inventory.hosts {
        let state = if host.maintenance {
            "maintenance".to_owned()
        } else if host.connection_state != "connected" {
            host.connection_state.clone()
        } else {
            host.power_state.clone()
        };
        objects.push(VsphereObject {
            kind: "host".into(),
            name: host.name.clone(),
            moref: host.moref.clone(),
            node_id: nodes.get(&host.moref).map(|n| n.0),
            state,
            detail: host.cluster.clone().unwrap_or_else(|| "standalone".into()),
        });
    }
    for vm in &inventory.vms {
        objects.push(VsphereObject {
            kind: "vm".into(),
            name: vm.name.clone(),
            moref: vm.moref.clone(),
            node_id: nodes.get(&vm.moref).map(|n| n.0),
            state: vm.power_state.clone(),
            detail: vm
                .host
                .as_deref()
                .map(|h| host_names.get(h).copied().unwrap_or(h).to_owned())
                .unwrap_or_default(),
        });
    }
    for store in &inventory.datastores {
        let used = if store.capacity_bytes > 0 {
            100.0 * store.capacity_bytes.saturating_sub(store.free_bytes) as f64
                / store.capacity_bytes as f64
        } else {
            0.0
        };
        objects.push(VsphereObject {
            kind: "datastore".into(),
            name: store.name.clone(),
            moref: store.moref.clone(),
            node_id: None,
            state: if store.accessible {
                "accessible"
            } else {
                "inaccessible"
            }
            .into(),
            detail: format!("{used:.0} % of {}", gib(store.capacity_bytes)),
        });
    }
    let mut gone: Vec<VsphereObject> = Vec::new();
    {
        let mut rows = conn.prepare_cached(
            "SELECT name, vsphere_moref, id FROM nodes
              WHERE vsphere_owner_id = ?1 AND vsphere_gone_at IS NOT NULL ORDER BY name",
        )?;
        let mut rows = rows.query([vcenter_id])?;
        while let Some(row) = rows.next()? {
            let moref: String = row.get(1)?;
            gone.push(VsphereObject {
                kind: if moref.starts_with("host-") {
                    "host"
                } else {
                    "vm"
                }
                .into(),
                name: row.get(0)?,
                moref,
                node_id: Some(row.get(2)?),
                state: "gone".into(),
                detail: String::new(),
            });
        }
    }
    objects.extend(gone);
    Ok(objects)
}

fn gib(bytes: u64) -> String {
    const TIB: f64 = 1024.0 * 1024.0 * 1024.0 * 1024.0;
    const GIB: f64 = 1024.0 * 1024.0 * 1024.0;
    let b = bytes as f64;
    if b >= TIB {
        format!("{:.1} TiB", b / TIB)
    } else {
        format!("{:.1} GiB", b / GIB)
    }
}

#[cfg(test)]
mod tests {
    use plantwatch_shared::api::vsphere::{VsphereHost, VsphereVm};

    use super::*;
    use crate::db::{MIGRATIONS, apply_migrations};

    fn host(moref: &str, name: &str) -> VsphereHost {
        VsphereHost {
            moref: moref.into(),
            name: name.into(),
            datacenter: Some("Plant A".into()),
            cluster: Some("Line 1, Cell 2".into()),
            connection_state: "connected".into(),
            power_state: "poweredOn".into(),
            maintenance: false,
        }
    }

    fn vm(moref: &str, name: &str, host: &str) -> VsphereVm {
        VsphereVm {
            moref: moref.into(),
            name: name.into(),
            host: Some(host.into()),
            datacenter: None,
            cluster: None,
            power_state: "poweredOn".into(),
            ip: Some("10.1.2.3".into()),
            guest_os: None,
        }
    }

    fn id_of(sync: &VsphereSync, moref: &str) -> i64 {
        sync.nodes.iter().find(|(m, _)| m == moref).unwrap().1
    }

    fn tags(conn: &Connection, id: i64) -> Vec<String> {
        conn.prepare("SELECT tag FROM node_tags WHERE node_id = ?1 ORDER BY tag")
            .unwrap()
            .query_map([id], |r| r.get(0))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap()
    }

    #[test]
    fn the_vsphere_migration_keeps_every_node_credential_and_reference() {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.pragma_update(None, "foreign_keys", "ON").unwrap();
        let before = MIGRATIONS
            .iter()
            .position(|(name, _)| *name == "0016_vsphere")
            .unwrap();
        apply_migrations(&mut conn, "mem", &MIGRATIONS[..before]).unwrap();
        conn.execute_batch(
            "INSERT INTO credentials (id, name, kind, params, secrets, created_at, updated_at, networks)
                 VALUES (3, 'plant-ro', 'snmp_v2c', '{}', '{\"community\":\"sealed\"}', 1, 2, '[\"10.0.0.0/8\"]');
             INSERT INTO nodes (id, name, address, node_type, created_at, updated_at, modbus_unit)
                 VALUES (1, 'sw1', '10.0.0.1', 'network', 1, 1, NULL),
                        (2, 'plc', '10.0.0.2', 'plc', 1, 1, 7),
                        (9, 'old', '10.0.0.9', 'other', 1, 1, NULL);
             UPDATE nodes SET parent_id = 1 WHERE id = 2;
             DELETE FROM nodes WHERE id = 9;
             INSERT INTO node_tags (node_id, tag) VALUES (2, 'line-1');
             INSERT INTO node_credentials (node_id, credential_id, priority) VALUES (2, 3, 0);",
        )
        .unwrap();
        apply_migrations(&mut conn, "mem", MIGRATIONS).unwrap();
        let foreign_keys: i64 = conn
            .pragma_query_value(None, "foreign_keys", |r| r.get(0))
            .unwrap();
        assert_eq!(foreign_keys, 1, "enforced again after the migrations");
        let plc: (String, Option<i64>, Option<i64>) = conn
            .query_row(
                "SELECT name, parent_id, modbus_unit FROM nodes WHERE id = 2",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .unwrap();
        assert_eq!(plc, ("plc".into(), Some(1), Some(7)));
        assert_eq!(tags(&conn, 2), ["line-1"]);
        let attached: i64 = conn
            .query_row(
                "SELECT count(*) FROM node_credentials WHERE node_id = 2 AND credential_id = 3",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(
            attached, 1,
            "the attachment survived both tables being rebuilt"
        );
        let networks: String = conn
            .query_row("SELECT networks FROM credentials WHERE id = 3", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(networks, "[\"10.0.0.0/8\"]");
        // Ids go on after the highest ever used (9, deleted), not the highest left (2).
        conn.execute(
            "INSERT INTO nodes (name, address, node_type, created_at, updated_at) VALUES ('vc01', 'vc01', 'vcenter', 5, 5)",
            [],
        )
        .unwrap();
        assert_eq!(conn.last_insert_rowid(), 10);
        conn.execute(
            "INSERT INTO credentials (name, kind, created_at, updated_at) VALUES ('vc', 'vsphere', 5, 5)",
            [],
        )
        .unwrap();
        // Deleting still cascades.
        conn.execute("DELETE FROM credentials WHERE id = 3", [])
            .unwrap();
        let attached: i64 = conn
            .query_row("SELECT count(*) FROM node_credentials", [], |r| r.get(0))
            .unwrap();
        assert_eq!(attached, 0);
    }

    #[test]
    fn renamed_vms_keep_their_node_and_removed_ones_are_marked_not_deleted() {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.pragma_update(None, "foreign_keys", "ON").unwrap();
        apply_migrations(&mut conn, "mem", MIGRATIONS).unwrap();
        conn.execute_batch(
            "INSERT INTO remote_components (id, kind, name, machine_id, api_key_hash, created_at)
                 VALUES (5, 'collector', 'plant-a', 'm', 'h', 0);
             INSERT INTO nodes (id, name, address, node_type, collector_id, created_at, updated_at)
                 VALUES (1, 'vc01', 'vc01.plant', 'vcenter', 5, 0, 0),
                        (2, 'historian', '10.9.9.9', 'server', 5, 0, 0);",
        )
        .unwrap();
        assert_eq!(
            vcenter_of_collector(&conn, 5, 1).unwrap().as_deref(),
            Some("vc01")
        );
        assert_eq!(
            vcenter_of_collector(&conn, 5, 2).unwrap(),
            None,
            "not a vCenter"
        );
        assert_eq!(
            vcenter_of_collector(&conn, 6, 1).unwrap(),
            None,
            "not its collector"
        );

        let mut inventory = VsphereInventory {
            hosts: vec![host("host-1", "esx01")],
            // A VM named like a node that exists already.
            vms: vec![
                vm("vm-1", "historian", "host-1"),
                vm("vm-2", "hmi-01", "host-1"),
            ],
            ..VsphereInventory::default()
        };
        let first = sync(&conn, 1, "vc01", 5, &inventory, 100).unwrap();
        assert_eq!((first.created, first.renamed, first.gone), (3, 0, 0));
        let (esx, historian, hmi) = (
            id_of(&first, "host-1"),
            id_of(&first, "vm-1"),
            id_of(&first, "vm-2"),
        );
        let node = |id: i64| {
            conn.query_row(
                "SELECT name, address, parent_id, collector_id, vsphere_gone_at FROM nodes WHERE id = ?1",
                [id],
                |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, Option<i64>>(2)?, r.get::<_, Option<i64>>(3)?, r.get::<_, Option<i64>>(4)?)),
            )
            .unwrap()
        };
        assert_eq!(
            node(esx),
            ("esx01".into(), "esx01".into(), Some(1), Some(5), None)
        );
        assert_eq!(
            node(historian).0,
            "historian (vc01)",
            "the name in use stays its owner's"
        );
        assert_eq!(
            node(hmi),
            ("hmi-01".into(), "10.1.2.3".into(), Some(esx), Some(5), None)
        );
        assert_eq!(
            tags(&conn, esx),
            ["cluster:Line-1--Cell-2", "datacenter:Plant-A", "vsphere"]
        );

        // The same again changes nothing.
        let again = sync(&conn, 1, "vc01", 5, &inventory, 200).unwrap();
        assert_eq!((again.created, again.renamed, again.gone), (0, 0, 0));
        assert_eq!(again.nodes, first.nodes);

        // hmi-01 renamed in vCenter, historian removed: one node renamed, one marked.
        conn.execute(
            "INSERT INTO node_tags (node_id, tag) VALUES (?1, 'must-run')",
            [hmi],
        )
        .unwrap();
        inventory.vms = vec![vm("vm-2", "hmi-01-new", "host-1")];
        let third = sync(&conn, 1, "vc01", 5, &inventory, 300).unwrap();
        assert_eq!((third.created, third.renamed, third.gone), (0, 1, 1));
        assert_eq!(id_of(&third, "vm-2"), hmi, "renamed, same node");
        assert_eq!(node(hmi).0, "hmi-01-new");
        assert!(
            tags(&conn, hmi).contains(&"must-run".to_owned()),
            "people's tags stay"
        );
        assert_eq!(node(historian).4, Some(300), "marked, not deleted");
        assert!(tags(&conn, historian).contains(&GONE_TAG.to_owned()));
        let listed = objects(&conn, 1).unwrap();
        let gone: Vec<_> = listed
            .iter()
            .filter(|o| o.state == "gone")
            .map(|o| o.name.as_str())
            .collect();
        assert_eq!(gone, ["historian (vc01)"]);

        // Back in the inventory: no longer gone.
        inventory.vms.push(vm("vm-1", "historian", "host-1"));
        let fourth = sync(&conn, 1, "vc01", 5, &inventory, 400).unwrap();
        assert_eq!((fourth.created, fourth.gone), (0, 0));
        assert_eq!(node(historian).4, None);
        assert!(!tags(&conn, historian).contains(&GONE_TAG.to_owned()));

        // Names that are no address make one that is.
        assert_eq!(usable_address(&["", "DC0_H0_VM0"], "vm-1"), "dc0-h0-vm0");
        assert_eq!(
            usable_address(&["SCADA Server #1"], "vm-1"),
            "scada-server--1"
        );
        assert_eq!(usable_address(&["fe80::5", "x"], "vm-1"), "fe80::5");
        assert_eq!(usable_address(&["___"], "vm-57"), "vm-57");

        // Deleting the vCenter node deletes what it owned.
        conn.execute("DELETE FROM nodes WHERE id = 1", []).unwrap();
        let left: i64 = conn
            .query_row("SELECT count(*) FROM nodes", [], |r| r.get(0))
            .unwrap();
        assert_eq!(left, 1, "only the historian node of its own is left");
    }
}
