//! Links from the neighbour tables: each row is matched to a node (by chassis id, then
//! management address, then system name), a link reported from both ends is one link, and a
//! neighbour no node matches is an unmanaged neighbour, listed for import.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};

use plantwatch_shared::api::{
    AutoParents, NeighbourProtocol, NeighbourRow, NodeStatus, ParentSuggestion, Topology,
    TopologyLink, TopologyNode, UnmanagedNeighbour,
};
use rusqlite::Connection;
use serde_json::json;

use crate::db::topology::{Identity, StoredRow};
use crate::db::{audit, nodes, to_time};

/// A system name as compared: lowercase, without a serial in parentheses (`NX-01(SSI1837)`)
/// or a domain (`sw-1.plant.local`).
fn normalized(name: &str) -> String {
    let name = name.split('(').next().unwrap_or(name).trim().to_lowercase();
    if name.parse::<std::net::IpAddr>().is_ok() {
        return name;
    }
    name.split('.').next().unwrap_or(&name).to_owned()
}

/// An address's host: without a port or brackets.
fn host(address: &str) -> String {
    if let Ok(socket) = address.parse::<std::net::SocketAddr>() {
        return socket.ip().to_string();
    }
    address.trim_matches(['[', ']']).to_lowercase()
}

/// Finds the node a neighbour row names.
struct Matcher {
    chassis: HashMap<String, i64>,
    address: HashMap<String, i64>,
    name: HashMap<String, i64>,
}

impl Matcher {
    fn new(nodes: &[TopologyNode], identities: &[Identity]) -> Matcher {
        let mut matcher = Matcher {
            chassis: HashMap::new(),
            address: HashMap::new(),
            name: HashMap::new(),
        };
        let mut ambiguous = HashSet::new();
        for node in nodes {
            let host = host(&node.address);
            if matcher.address.insert(host.clone(), node.id).is_some() {
                ambiguous.insert(host);
            }
            matcher.name.insert(normalized(&node.name), node.id);
        }
        // Several nodes behind one address (agents on one host's ports) name none.
        for host in ambiguous {
            matcher.address.remove(&host);
        }
        for identity in identities {
            if let Some(chassis) = &identity.chassis_id {
                matcher
                    .chassis
                    .insert(chassis.to_lowercase(), identity.node_id);
            }
            if let Some(name) = &identity.sys_name {
                matcher.name.insert(normalized(name), identity.node_id);
            }
        }
        matcher
    }

    fn node_of(&self, row: &NeighbourRow) -> Option<i64> {
        let by_chassis = row
            .chassis_id
            .as_ref()
            .and_then(|c| self.chassis.get(&c.to_lowercase()));
        let by_address = row
            .address
            .as_ref()
            .and_then(|a| self.address.get(&host(a)));
        // A neighbour that names itself by its chassis id in its system name (LLDP
        // subtype local) is found by name too.
        let by_name = [&row.sys_name, &row.chassis_id]
            .into_iter()
            .flatten()
            .find_map(|n| self.name.get(&normalized(n)));
        by_chassis.or(by_address).or(by_name).copied()
    }
}

/// One end of a link: a node's port and what it says of the other end.
#[derive(Debug, Clone)]
struct End {
    local_port: String,
    /// The other end's port as this end names it (its id, its description).
    remote_ports: Vec<String>,
    protocols: Vec<NeighbourProtocol>,
    first_seen: i64,
    last_seen: i64,
    gone: bool,
}

impl End {
    fn names(&self, port: &str) -> bool {
        self.remote_ports
            .iter()
            .any(|p| p.eq_ignore_ascii_case(port))
    }
}

/// Adds `row` to the ends of one side, merging rows of the same local port.
fn add_end(ends: &mut Vec<End>, stored: &StoredRow, gone: bool) {
    let row = &stored.row;
    let remote: Vec<String> = [&row.port, &row.port_descr]
        .into_iter()
        .flatten()
        .filter(|p| !p.trim().is_empty())
        .cloned()
        .collect();
    match ends.iter_mut().find(|e| e.local_port == row.local_port) {
        Some(end) => {
            for port in remote {
                if !end.remote_ports.contains(&port) {
                    end.remote_ports.push(port);
                }
            }
            if !end.protocols.contains(&row.protocol) {
                end.protocols.push(row.protocol);
            }
            end.first_seen = end.first_seen.min(stored.first_seen);
            end.last_seen = end.last_seen.max(stored.last_seen);
            end.gone &= gone;
        }
        None => ends.push(End {
            local_port: row.local_port.clone(),
            remote_ports: remote,
            protocols: vec![row.protocol],
            first_seen: stored.first_seen,
            last_seen: stored.last_seen,
            gone,
        }),
    }
}

/// The links between `a` and `b` from the ends each reported: an end of `a` and one of `b`
/// that name each other's port are one link; the others pair up in port order; an end left
/// over is a link only one side reports.
fn pair(a: i64, mut a_ends: Vec<End>, b: i64, mut b_ends: Vec<End>) -> Vec<TopologyLink> {
    a_ends.sort_by(|x, y| x.local_port.cmp(&y.local_port));
    b_ends.sort_by(|x, y| x.local_port.cmp(&y.local_port));
    let mut links = Vec::new();
    let mut b_left: Vec<Option<End>> = b_ends.into_iter().map(Some).collect();
    let mut a_left = Vec::new();
    for end in a_ends {
        let found = b_left.iter().position(|b_end| {
            b_end
                .as_ref()
                .is_some_and(|b_end| end.names(&b_end.local_port) || b_end.names(&end.local_port))
        });
        match found {
            Some(at) => {
                let other = b_left[at].take();
                links.push(link(a, Some(end), b, other));
            }
            None => a_left.push(end),
        }
    }
    let mut b_rest = b_left.into_iter().flatten();
    for end in a_left {
        let other = b_rest.next();
        links.push(link(a, Some(end), b, other));
    }
    for end in b_rest {
        links.push(link(a, None, b, Some(end)));
    }
    links
}

fn link(a: i64, a_end: Option<End>, b: i64, b_end: Option<End>) -> TopologyLink {
    let ends: Vec<&End> = a_end.iter().chain(b_end.iter()).collect();
    let mut protocols: Vec<NeighbourProtocol> =
        ends.iter().flat_map(|e| e.protocols.clone()).collect();
    protocols.sort_by_key(|p| p.as_str());
    protocols.dedup();
    // An end's own port name wins; else what the other end calls it.
    let a_port = a_end
        .as_ref()
        .map(|e| e.local_port.clone())
        .or_else(|| b_end.as_ref().and_then(|e| e.remote_ports.first().cloned()));
    let b_port = b_end
        .as_ref()
        .map(|e| e.local_port.clone())
        .or_else(|| a_end.as_ref().and_then(|e| e.remote_ports.first().cloned()));
    TopologyLink {
        a,
        a_port,
        b,
        b_port,
        protocols,
        both_ends: a_end.is_some() && b_end.is_some(),
        first_seen: to_time(ends.iter().map(|e| e.first_seen).min().unwrap_or(0)),
        last_seen: to_time(ends.iter().map(|e| e.last_seen).max().unwrap_or(0)),
        gone: ends.iter().all(|e| e.gone),
    }
}

/// The whole map: every node, the links between them, the neighbours no node matches.
pub fn resolve(nodes: Vec<TopologyNode>, identities: &[Identity], rows: &[StoredRow]) -> Topology {
    let matcher = Matcher::new(&nodes, identities);
    let walked: HashMap<i64, i64> = identities
        .iter()
        .map(|i| (i.node_id, i.walked_at))
        .collect();
    let mut sides: BTreeMap<(i64, i64), (Vec<End>, Vec<End>)> = BTreeMap::new();
    let mut unmanaged: BTreeMap<(i64, String, String), UnmanagedNeighbour> = BTreeMap::new();
    for stored in rows {
        let gone = walked
            .get(&stored.node_id)
            .is_some_and(|&at| stored.last_seen < at);
        match matcher.node_of(&stored.row) {
            Some(other) if other == stored.node_id => {}
            Some(other) => {
                let key = (stored.node_id.min(other), stored.node_id.max(other));
                let (low, high) = sides.entry(key).or_default();
                let side = if stored.node_id == key.0 { low } else { high };
                add_end(side, stored, gone);
            }
            None if gone => {}
            None => {
                let key = (
                    stored.node_id,
                    stored.row.local_port.clone(),
                    [
                        &stored.row.chassis_id,
                        &stored.row.sys_name,
                        &stored.row.address,
                    ]
                    .into_iter()
                    .flatten()
                    .next()
                    .cloned()
                    .unwrap_or_default(),
                );
                unmanaged.entry(key).or_insert_with(|| UnmanagedNeighbour {
                    seen_by: stored.node_id,
                    neighbour: stored.row.clone(),
                    last_seen: to_time(stored.last_seen),
                });
            }
        }
    }
    let links = sides
        .into_iter()
        .flat_map(|((a, b), (a_ends, b_ends))| pair(a, a_ends, b, b_ends))
        .collect();
    Topology {
        nodes,
        links,
        unmanaged: unmanaged.into_values().collect(),
    }
}

/// The parent each node reached from `roots` hangs off (its neighbour one link nearer a
/// root, through links not gone), where it differs from `current`.
pub fn suggest_parents(
    map: &Topology,
    roots: &[i64],
    current: &HashMap<i64, Option<i64>>,
) -> Vec<ParentSuggestion> {
    let names: HashMap<i64, &str> = map.nodes.iter().map(|n| (n.id, n.name.as_str())).collect();
    // node → (neighbour, the node's port on that link), in port order.
    let mut adjacent: BTreeMap<i64, Vec<(i64, Option<String>)>> = BTreeMap::new();
    for link in map.links.iter().filter(|l| !l.gone) {
        adjacent
            .entry(link.a)
            .or_default()
            .push((link.b, link.a_port.clone()));
        adjacent
            .entry(link.b)
            .or_default()
            .push((link.a, link.b_port.clone()));
    }
    let mut parent: BTreeMap<i64, (i64, Option<String>)> = BTreeMap::new();
    let mut seen: HashSet<i64> = HashSet::new();
    for &root in roots {
        if !seen.insert(root) {
            continue;
        }
        let mut queue = VecDeque::from([root]);
        while let Some(node) = queue.pop_front() {
            for (next, port) in adjacent.get(&node).map_or(&[][..], Vec::as_slice) {
                if seen.insert(*next) {
                    parent.insert(*next, (node, port.clone()));
                    queue.push_back(*next);
                }
            }
        }
    }
    parent
        .into_iter()
        .filter(|(node, (suggested, _))| current.get(node).copied().flatten() != Some(*suggested))
        .map(|(node, (suggested, via_port))| {
            let now = current.get(&node).copied().flatten();
            ParentSuggestion {
                node_id: node,
                node: names.get(&node).copied().unwrap_or("?").to_owned(),
                current: now,
                current_name: now.and_then(|p| names.get(&p).map(|n| (*n).to_owned())),
                suggested,
                suggested_name: names.get(&suggested).copied().unwrap_or("?").to_owned(),
                via_port,
            }
        })
        .collect()
}

/// Every node and every link, from the stored neighbour tables.
pub fn load(conn: &Connection) -> rusqlite::Result<Topology> {
    let nodes: Vec<TopologyNode> = conn
        .prepare_cached("SELECT id, name, address, health, parent_id FROM nodes ORDER BY name")?
        .query_map([], |r| {
            let health: String = r.get(3)?;
            Ok(TopologyNode {
                id: r.get(0)?,
                name: r.get(1)?,
                address: r.get(2)?,
                health: health.parse().unwrap_or(NodeStatus::Discovering),
                parent_id: r.get(4)?,
            })
        })?
        .collect::<rusqlite::Result<_>>()?;
    let (identities, rows) = crate::db::topology::load(conn)?;
    Ok(resolve(nodes, &identities, &rows))
}

/// Every node's parent today.
pub fn current_parents(conn: &Connection) -> rusqlite::Result<HashMap<i64, Option<i64>>> {
    conn.prepare_cached("SELECT id, parent_id FROM nodes")?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect()
}

/// Automatic parents: for each collector that has them (or only `collector_id`), sets the
/// parents of its nodes that the links from its root suggest. A node's parent set by hand is
/// replaced; a node the links do not reach keeps its own; a change that would close a loop
/// through parents set otherwise is skipped. Audited as the system; returns what was set.
pub fn apply_auto_parents(
    tx: &Connection,
    collector_id: Option<i64>,
    now: i64,
) -> rusqlite::Result<Vec<AutoParents>> {
    let mut settings: Vec<AutoParents> = crate::db::topology::auto_parents(tx)?
        .into_iter()
        .filter(|a| a.root_id.is_some() && collector_id.is_none_or(|id| id == a.collector_id))
        .collect();
    if settings.is_empty() {
        return Ok(settings);
    }
    let map = load(tx)?;
    let collector_of: HashMap<i64, Option<i64>> = tx
        .prepare_cached("SELECT id, collector_id FROM nodes")?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    for setting in &mut settings {
        let root = setting.root_id.unwrap_or_default();
        let current = current_parents(tx)?;
        for change in suggest_parents(&map, &[root], &current) {
            if collector_of.get(&change.node_id).copied().flatten() != Some(setting.collector_id)
                || nodes::would_cycle(tx, change.node_id, change.suggested)?
            {
                continue;
            }
            nodes::set_parent(tx, change.node_id, Some(change.suggested))?;
            setting.applied.push(change);
        }
        if !setting.applied.is_empty() {
            audit::record(
                tx,
                &audit::Actor::system(),
                plantwatch_shared::api::AuditAction::NodeUpdate,
                Some(&format!("component:{}", setting.collector_id)),
                Some(&json!({
                    "automatic_parents": setting.collector,
                    "parents": setting.applied.iter().map(|c| json!({
                        "node": c.node, "parent": c.suggested_name,
                    })).collect::<Vec<_>>(),
                })),
                now,
            )?;
        }
    }
    Ok(settings)
}

/// Applies the collectors' automatic parents after each neighbour walk stored (checked every
/// minute by one read; a write only when a collector has them and a walk came), until
/// `shutdown`.
pub async fn auto_parents_every(
    db: crate::db::Db,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    let mut every = tokio::time::interval(AUTO_PARENTS_EVERY);
    let mut judged_walk = 0;
    loop {
        tokio::select! {
            _ = every.tick() => {
                let walk = db
                    .call(|conn| {
                        crate::db::topology::last_walk_to_apply(conn)
                            .map_err(crate::db::DbError::from)
                    })
                    .await;
                let walk = match walk {
                    Ok(Some(walk)) if walk != judged_walk => walk,
                    Ok(_) => continue,
                    Err(error) => {
                        tracing::warn!(%error, "Reading the neighbour walks failed.");
                        continue;
                    }
                };
                let applied = db
                    .write(move |tx| -> Result<_, crate::db::DbError> {
                        Ok(apply_auto_parents(tx, None, crate::clock::unix_secs())?)
                    })
                    .await;
                match applied {
                    Ok(applied) => {
                        judged_walk = walk;
                        for setting in applied.iter().filter(|a| !a.applied.is_empty()) {
                            tracing::info!(
                                collector = setting.collector,
                                count = setting.applied.len(),
                                "Set parents from the wiring."
                            );
                        }
                    }
                    Err(error) => tracing::warn!(%error, "Setting parents from the wiring failed."),
                }
            }
            _ = shutdown.changed() => return,
        }
    }
}

/// How often the automatic parents look for a new neighbour walk.
const AUTO_PARENTS_EVERY: std::time::Duration = std::time::Duration::from_secs(60);

/// The part of `map` within `depth` links of `root`.
pub fn around(map: Topology, root: i64, depth: u32) -> Topology {
    let mut adjacent: HashMap<i64, Vec<i64>> = HashMap::new();
    for link in &map.links {
        adjacent.entry(link.a).or_default().push(link.b);
        adjacent.entry(link.b).or_default().push(link.a);
    }
    let mut within: HashSet<i64> = HashSet::from([root]);
    let mut queue = VecDeque::from([(root, 0)]);
    while let Some((node, distance)) = queue.pop_front() {
        if distance == depth {
            continue;
        }
        for &next in adjacent.get(&node).map_or(&[][..], Vec::as_slice) {
            if within.insert(next) {
                queue.push_back((next, distance + 1));
            }
        }
    }
    Topology {
        nodes: map
            .nodes
            .into_iter()
            .filter(|n| within.contains(&n.id))
            .collect(),
        links: map
            .links
            .into_iter()
            .filter(|l| within.contains(&l.a) && within.contains(&l.b))
            .collect(),
        unmanaged: map
            .unmanaged
            .into_iter()
            .filter(|u| within.contains(&u.seen_by))
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use plantwatch_shared::api::{NeighbourReport, NodeStatus};

    use super::*;

    fn node(id: i64, name: &str) -> TopologyNode {
        TopologyNode {
            id,
            name: name.into(),
            address: format!("127.0.0.1:{}", 1000 + id),
            health: NodeStatus::Healthy,
            parent_id: None,
        }
    }

    fn lldp(node_id: i64, local: &str, sys_name: &str, port: &str, seen: i64) -> StoredRow {
        StoredRow {
            node_id,
            row: NeighbourRow {
                protocol: NeighbourProtocol::Lldp,
                local_port: local.into(),
                chassis_id: None,
                port: Some(port.into()),
                port_descr: None,
                sys_name: Some(sys_name.into()),
                address: None,
                platform: None,
            },
            first_seen: 100,
            last_seen: seen,
        }
    }

    fn identity(node_id: i64, sys_name: &str) -> Identity {
        Identity {
            node_id,
            chassis_id: None,
            sys_name: Some(sys_name.into()),
            walked_at: 200,
        }
    }

    #[test]
    fn a_link_seen_from_both_ends_is_one_and_a_stranger_is_unmanaged() {
        let nodes = vec![node(1, "core-a"), node(2, "core-b"), node(3, "plc-7")];
        let identities = [identity(1, "re0-CORE-A"), identity(2, "core-b.plant.local")];
        let rows = [
            lldp(1, "xe-0/0/1", "core-b", "xe-0/0/9", 200),
            lldp(2, "xe-0/0/9", "re0-core-a", "xe-0/0/1", 200),
            // A second link between them, one end reporting it only.
            lldp(1, "xe-0/0/2", "CORE-B(SSI1234)", "", 200),
            // The PLC is a node by name, though it never walks.
            lldp(2, "ge-1/0/3", "plc-7", "eth0", 200),
            // A camera nobody monitors.
            lldp(2, "ge-1/0/4", "cam-22", "1", 200),
            // A link the last walk did not see any more: gone.
            lldp(1, "xe-0/0/5", "plc-7", "eth1", 150),
        ];
        let map = resolve(nodes, &identities, &rows);
        let found: Vec<_> = map
            .links
            .iter()
            .map(|l| {
                (
                    l.a,
                    l.a_port.as_deref().unwrap_or("-"),
                    l.b,
                    l.b_port.as_deref().unwrap_or("-"),
                    l.both_ends,
                    l.gone,
                )
            })
            .collect();
        assert_eq!(
            found,
            [
                (1, "xe-0/0/1", 2, "xe-0/0/9", true, false),
                (1, "xe-0/0/2", 2, "-", false, false),
                (1, "xe-0/0/5", 3, "eth1", false, true),
                (2, "ge-1/0/3", 3, "eth0", false, false),
            ]
        );
        assert_eq!(map.unmanaged.len(), 1);
        assert_eq!(
            (
                map.unmanaged[0].seen_by,
                map.unmanaged[0].neighbour.local_port.as_str()
            ),
            (2, "ge-1/0/4")
        );
        // Around the PLC, one link deep: the PLC, both cores and what core-b sees; none deep:
        // the PLC alone.
        let near = around(map.clone(), 3, 1);
        let mut ids: Vec<i64> = near.nodes.iter().map(|n| n.id).collect();
        ids.sort_unstable();
        assert_eq!(ids, [1, 2, 3]);
        assert_eq!(near.links.len(), 4);
        assert_eq!(near.unmanaged.len(), 1);
        let alone = around(map.clone(), 3, 0);
        assert_eq!((alone.nodes.len(), alone.links.len()), (1, 0));
        // Parents from core-a (the best connected, links gone left out): core-b under it,
        // the PLC under core-b (its link to core-a is gone); core-b's parent already right.
        assert_eq!(map.roots()[0], 2);
        let current = HashMap::from([(2, Some(1)), (3, None)]);
        let suggested: Vec<_> = suggest_parents(&map, &[1], &current)
            .into_iter()
            .map(|s| (s.node_id, s.suggested, s.via_port))
            .collect();
        assert_eq!(suggested, [(3, 2, Some("ge-1/0/3".to_owned()))]);
    }

    #[test]
    fn automatic_parents_follow_the_wiring_of_their_collectors_nodes_only() {
        let mut conn = Connection::open_in_memory().unwrap();
        crate::db::migrate(&mut conn, "mem").unwrap();
        // Hall A's collector watches core-a, sw-2 and plc-7 (its parent set by hand to core-a);
        // hall B's watches plc-9, also wired to sw-2. plc-4 hangs off nothing known.
        conn.execute_batch(
            "INSERT INTO remote_components (id, kind, name, machine_id, api_key_hash, created_at)
                 VALUES (1, 'collector', 'hall-a', 'm1', 'x', 0),
                        (2, 'collector', 'hall-b', 'm2', 'x', 0);
             INSERT INTO nodes (id, name, address, node_type, collector_id, created_at, updated_at)
                 VALUES (1, 'core-a', '10.0.0.1', 'network', 1, 0, 0),
                        (2, 'sw-2', '10.0.0.2', 'network', 1, 0, 0),
                        (3, 'plc-7', '10.0.0.7', 'plc', 1, 0, 0),
                        (4, 'plc-4', '10.0.0.4', 'plc', 1, 0, 0),
                        (9, 'plc-9', '10.0.0.9', 'plc', 2, 0, 0);
             UPDATE nodes SET parent_id = 1 WHERE id IN (3, 4);",
        )
        .unwrap();
        let report = |node_id: i64, sys_name: &str, rows: Vec<StoredRow>| NeighbourReport {
            node_id,
            chassis_id: None,
            sys_name: Some(sys_name.into()),
            rows: rows.into_iter().map(|r| r.row).collect(),
        };
        let tx = conn.transaction().unwrap();
        for walk in [
            report(1, "core-a", vec![lldp(1, "xe-0/0/1", "sw-2", "Te0/1", 0)]),
            report(
                2,
                "sw-2",
                vec![
                    lldp(2, "Gi0/7", "plc-7", "eth0", 0),
                    lldp(2, "Gi0/9", "plc-9", "eth0", 0),
                ],
            ),
        ] {
            crate::db::topology::store_report(&tx, &walk, 500).unwrap();
        }
        // Off: nothing changes.
        assert!(apply_auto_parents(&tx, None, 600).unwrap().is_empty());
        crate::db::topology::set_auto_parents(&tx, 1, Some(1)).unwrap();
        crate::db::topology::set_auto_parents(&tx, 2, None).unwrap();
        let applied = apply_auto_parents(&tx, None, 600).unwrap();
        let set: Vec<_> = applied
            .iter()
            .flat_map(|a| {
                a.applied.iter().map(|c| {
                    (
                        a.collector.as_str(),
                        c.node.as_str(),
                        c.suggested_name.as_str(),
                        c.via_port.as_deref(),
                    )
                })
            })
            .collect();
        assert_eq!(
            set,
            [
                ("hall-a", "sw-2", "core-a", Some("xe-0/0/1")),
                ("hall-a", "plc-7", "sw-2", Some("Gi0/7")),
            ]
        );
        let parents = current_parents(&tx).unwrap();
        assert_eq!(
            parents[&3],
            Some(2),
            "the parent set by hand follows the wiring"
        );
        assert_eq!(
            parents[&4],
            Some(1),
            "a node the links do not reach keeps its own"
        );
        assert_eq!(parents[&9], None, "hall B's node is not hall A's to set");
        // Applied again: nothing more to do, nothing more audited.
        let audited = |tx: &Connection| -> i64 {
            tx.query_row(
                "SELECT count(*) FROM audit_log WHERE actor = 'system'",
                [],
                |r| r.get(0),
            )
            .unwrap()
        };
        assert_eq!(audited(&tx), 1);
        assert!(
            apply_auto_parents(&tx, None, 700).unwrap()[0]
                .applied
                .is_empty()
        );
        assert_eq!(audited(&tx), 1);
    }
}
