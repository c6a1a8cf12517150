//! Parent suppression: a node is suppressed when every parent is down. A parent node is down
//! only when its reachability is: its newest ping and SNMP poll both failed, an offline rule
//! (node_unreachable, agent_heartbeat) holds for it, or it is itself suppressed — never for a
//! metric alert (snmp_unreachable included). A collector is down when it has been silent.

use std::collections::{HashMap, HashSet};

use rustc_hash::FxHashMap;

use super::kinds::{Cycle, Findings, kind_of, node_key};
use super::rules::NodeFacts;

/// Why each suppressed node is (every parent down), by node id.
pub fn suppressed(cycle: &Cycle<'_>, findings: &Findings) -> HashMap<i64, String> {
    let (inputs, nodes) = (cycle.inputs, &cycle.nodes);
    let offline_rules: Vec<i64> = inputs
        .rules
        .iter()
        .filter(|r| kind_of(r).offline())
        .map(|r| r.id)
        .collect();
    // Some(true): down; Some(false): its probes answer (up, whatever is above it); None:
    // nothing known, so it is down when it is itself cut off.
    let own_down = |id: i64| {
        let offline = offline_rules.iter().any(|rule_id| {
            findings
                .verdicts
                .get(&node_key(*rule_id, id))
                .is_some_and(|v| v.severity.is_some())
        });
        match findings.probes.get(&id) {
            Some(p) => Some(offline || p.down()),
            None => offline.then_some(true),
        }
    };
    let collectors = Collectors {
        names: inputs
            .collectors
            .iter()
            .map(|c| (c.id, c.name.as_str()))
            .collect(),
        remote: inputs
            .collectors
            .iter()
            .filter(|c| !c.is_local)
            .map(|c| c.id)
            .collect(),
        silent: &findings.collectors_silent,
    };
    let mut memo: HashMap<i64, Option<String>> = HashMap::new();
    for node in &inputs.nodes {
        suppression(node.id, nodes, &own_down, &collectors, &mut memo, 0);
    }
    memo.into_iter()
        .filter_map(|(id, reason)| reason.map(|r| (id, r)))
        .collect()
}

/// The collectors, as suppression sees them.
pub struct Collectors<'a> {
    pub names: HashMap<i64, &'a str>,
    pub remote: HashSet<i64>,
    pub silent: &'a HashSet<i64>,
}

/// Why node `id` is suppressed (every parent down), memoised; `None` when it is not.
pub fn suppression(
    id: i64,
    nodes: &FxHashMap<i64, &NodeFacts>,
    own_down: &dyn Fn(i64) -> Option<bool>,
    collectors: &Collectors<'_>,
    memo: &mut HashMap<i64, Option<String>>,
    depth: usize,
) -> Option<String> {
    if let Some(known) = memo.get(&id) {
        return known.clone();
    }
    let node = nodes.get(&id)?;
    let reason = if depth > 64 || own_down(id) == Some(false) {
        // A node whose own probes answer is reachable, whatever is said of its parents.
        None
    } else if let Some(parent_id) = node.parent_id {
        // Every parent must be down: one working uplink keeps the node reachable.
        let parents: Vec<i64> = std::iter::once(parent_id)
            .chain(node.other_parents.iter().copied())
            .collect();
        let mut all_down = true;
        for parent in &parents {
            let down = match own_down(*parent) {
                Some(down) => down,
                None => {
                    suppression(*parent, nodes, own_down, collectors, memo, depth + 1).is_some()
                }
            };
            if !down {
                all_down = false;
                break;
            }
        }
        all_down.then(|| {
            let names: Vec<&str> = parents
                .iter()
                .map(|p| nodes.get(p).map_or("?", |n| n.name.as_str()))
                .collect();
            if names.len() == 1 {
                format!("parent {} down", names[0])
            } else {
                format!("parents {} down", names.join(", "))
            }
        })
    } else {
        node.collector_id
            .filter(|c| collectors.remote.contains(c) && collectors.silent.contains(c))
            .map(|c| {
                format!(
                    "collector {} offline",
                    collectors.names.get(&c).copied().unwrap_or("?")
                )
            })
    };
    memo.insert(id, reason.clone());
    reason
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suppression_needs_every_parent_down_and_follows_the_chain() {
        let node = |id, parent: Option<i64>, others: Vec<i64>| NodeFacts {
            id,
            name: format!("n{id}"),
            parent_id: parent,
            other_parents: others,
            collector_id: Some(9),
            ..NodeFacts::default()
        };
        let facts = [
            node(1, None, vec![]),
            node(2, None, vec![]),
            node(3, Some(1), vec![2]),
            node(4, Some(3), vec![]),
        ];
        let nodes: FxHashMap<i64, &NodeFacts> = facts.iter().map(|n| (n.id, n)).collect();
        let run = |down: &[i64], silent: &[i64]| {
            let down: HashSet<i64> = down.iter().copied().collect();
            let silent: HashSet<i64> = silent.iter().copied().collect();
            let collectors = Collectors {
                names: HashMap::from([(9, "north")]),
                remote: HashSet::from([9]),
                silent: &silent,
            };
            let mut memo = HashMap::new();
            (1..=4)
                .map(|id| {
                    suppression(
                        id,
                        &nodes,
                        &|n| down.contains(&n).then_some(true),
                        &collectors,
                        &mut memo,
                        0,
                    )
                })
                .collect::<Vec<_>>()
        };
        // One uplink down: nothing suppressed below it.
        assert_eq!(run(&[1], &[]), [None, None, None, None]);
        // Both down: node 3 is cut off, and node 4 behind it too.
        let both = run(&[1, 2], &[]);
        assert_eq!(both[2].as_deref(), Some("parents n1, n2 down"));
        assert_eq!(both[3].as_deref(), Some("parent n3 down"));
        // The collector silent: the top nodes, and through them everything.
        let silent = run(&[], &[9]);
        assert_eq!(silent[0].as_deref(), Some("collector north offline"));
        assert!(silent.iter().all(Option::is_some));
    }
}
