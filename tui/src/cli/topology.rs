//! `plantwatch topology show|unmanaged`: the links the LLDP and CDP neighbour tables show, as
//! an indented tree, a Graphviz graph or JSON, and the neighbours no node matches.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write as _;
use std::io::Write as _;

use clap::{Subcommand, ValueEnum};
use plantwatch_shared::api::{Topology, TopologyLink, TopologyQuery};

use super::Session;
use super::nodes::find;
use super::output::Format;

#[derive(Debug, Subcommand)]
pub enum TopologyCommand {
    /// The links from a node (or every node), as a tree: each neighbour under the node it
    /// hangs off, with the ports on both ends and its health.
    Show {
        /// The root (name or id); without one, every group of linked nodes from its
        /// best-connected node.
        node: Option<String>,
        /// Links followed from the root.
        #[arg(long, default_value_t = 2)]
        depth: u32,
        /// tree, or dot for Graphviz (`| dot -Tsvg > map.svg`); `-o json` for the API's
        /// document.
        #[arg(long, value_enum, default_value_t = Shape::Tree)]
        format: Shape,
    },
    /// The map as an SVG drawing for a report (to standard output): the tree left to right,
    /// ports on the links, nodes coloured by health, gone links dashed.
    Export {
        /// The root (name or id); without one, every group of linked nodes.
        node: Option<String>,
        #[arg(long, default_value_t = 2)]
        depth: u32,
        /// svg.
        #[arg(long, value_enum, default_value_t = Drawing::Svg)]
        format: Drawing,
    },
    /// Neighbours no node matches: devices to import, with where they were seen.
    Unmanaged,
    /// Each node's parent from the links (the neighbour it hangs off, towards the root), where
    /// it differs from today's; `--apply` sets them all in one transaction (operators).
    SuggestParents {
        /// The node towards the collector (the core); by default each group's best-connected
        /// node.
        #[arg(long)]
        root: Option<String>,
        /// Set the suggested parents.
        #[arg(long)]
        apply: bool,
        /// Only these nodes' (names, comma-separated).
        #[arg(long, value_name = "NODE,…")]
        only: Option<String>,
        /// Do not ask before applying.
        #[arg(long, short = 'y')]
        yes: bool,
    },
    /// Automatic parents per collector: with `--root`, the server sets the parents of the
    /// collector's nodes from the links after each neighbour walk (at once too); `--off` ends
    /// it. Without options, shows every collector's.
    AutoParents {
        /// The collector (name or id).
        collector: Option<String>,
        /// The node towards the collector that the wiring is followed from (operators).
        #[arg(long, conflicts_with = "off")]
        root: Option<String>,
        /// Stop setting parents from the wiring; the parents stay as they are.
        #[arg(long)]
        off: bool,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Shape {
    Tree,
    Dot,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Drawing {
    Svg,
}

/// Text made safe inside SVG.
fn xml(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The fill of a node of `health`.
fn health_colour(health: &str) -> &'static str {
    match health {
        "healthy" => "#cdeccd",
        "warning" => "#fbe7a1",
        "critical" => "#f5b5b0",
        "offline" => "#d6d6d6",
        "maintenance" => "#c9def5",
        _ => "#eeeeee",
    }
}

/// The map drawn as SVG: the tree of [`tree_rows`] left to right (a column per depth, a row
/// per node), each tree link with the ports at its ends, the links outside the tree (a second
/// path) as grey curves; gone links dashed. Plain SVG with generic fonts: no system font or
/// browser needed to make it.
pub fn svg(map: &Topology, roots: &[i64]) -> String {
    const COLUMN: usize = 260;
    const ROW: usize = 44;
    const BOX_W: usize = 170;
    const BOX_H: usize = 30;
    let rows = tree_rows(map, roots);
    let place: HashMap<i64, (usize, usize)> = rows
        .iter()
        .enumerate()
        .map(|(i, r)| (r.node_id, (20 + r.depth * COLUMN, 20 + i * ROW)))
        .collect();
    let depth = rows.iter().map(|r| r.depth).max().unwrap_or(0);
    let (width, height) = (40 + (depth + 1) * COLUMN, 40 + rows.len().max(1) * ROW);
    let mut out = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" \
         viewBox=\"0 0 {width} {height}\" font-family=\"sans-serif\" font-size=\"12\">\n\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
    );
    // The tree's links: from the parent's right edge to the child's left edge.
    let mut parent_of: HashMap<i64, i64> = HashMap::new();
    let mut last_at_depth: Vec<i64> = Vec::new();
    for row in &rows {
        last_at_depth.truncate(row.depth);
        if let Some(&parent) = last_at_depth.last() {
            parent_of.insert(row.node_id, parent);
            let (px, py) = place[&parent];
            let (x, y) = place[&row.node_id];
            let dash = if row.gone {
                " stroke-dasharray=\"6 4\""
            } else {
                ""
            };
            let _ = writeln!(
                out,
                "<line x1=\"{}\" y1=\"{}\" x2=\"{x}\" y2=\"{}\" stroke=\"#555\"{dash}/>",
                px + BOX_W,
                py + BOX_H / 2,
                y + BOX_H / 2
            );
            let _ = writeln!(
                out,
                "<text x=\"{}\" y=\"{}\" fill=\"#333\">{}</text>",
                px + BOX_W + 4,
                py + BOX_H / 2 - 4,
                xml(port(row.parent_port.as_ref()))
            );
            let _ = writeln!(
                out,
                "<text x=\"{}\" y=\"{}\" text-anchor=\"end\" fill=\"#333\">{}</text>",
                x - 4,
                y + BOX_H / 2 - 4,
                xml(port(row.port.as_ref()))
            );
        }
        last_at_depth.push(row.node_id);
    }
    // Links outside the tree: a second path, drawn light.
    for link in &map.links {
        let in_tree =
            parent_of.get(&link.b) == Some(&link.a) || parent_of.get(&link.a) == Some(&link.b);
        let (Some(&(ax, ay)), Some(&(bx, by))) = (place.get(&link.a), place.get(&link.b)) else {
            continue;
        };
        if in_tree {
            continue;
        }
        let dash = if link.gone {
            " stroke-dasharray=\"6 4\""
        } else {
            ""
        };
        let _ = writeln!(
            out,
            "<path d=\"M {} {} C {} {} {} {} {} {}\" fill=\"none\" stroke=\"#aaa\"{dash}/>",
            ax + BOX_W / 2,
            ay + BOX_H,
            ax + BOX_W / 2 + 60,
            ay + BOX_H + 40,
            bx + BOX_W / 2 + 60,
            by - 40,
            bx + BOX_W / 2,
            by
        );
    }
    for row in &rows {
        let (x, y) = place[&row.node_id];
        let _ = writeln!(
            out,
            "<rect x=\"{x}\" y=\"{y}\" width=\"{BOX_W}\" height=\"{BOX_H}\" rx=\"5\" \
             fill=\"{}\" stroke=\"#444\"/>\n<text x=\"{}\" y=\"{}\">{}</text>",
            health_colour(&row.health),
            x + 8,
            y + 19,
            xml(&row.name)
        );
    }
    out.push_str("</svg>\n");
    out
}

/// `port`, or `?` when the neighbour table did not say.
fn port(port: Option<&String>) -> &str {
    port.map_or("?", String::as_str)
}

/// One line of the tree: a node, how deep it hangs, and the link it hangs off.
#[derive(Debug, Clone, PartialEq)]
pub struct TreeRow {
    /// Its place in the tree (rows sort back into tree order by it).
    pub order: usize,
    pub node_id: i64,
    pub name: String,
    pub health: String,
    /// 0 for a root.
    pub depth: usize,
    /// The parent's port, and the node's own, on the link it hangs off (roots: none).
    pub parent_port: Option<String>,
    pub port: Option<String>,
    pub both_ends: bool,
    pub gone: bool,
}

/// The tree of `map` from each root: each node under the neighbour nearest its root
/// (breadth first, neighbours by name), listed depth first; a node shows once.
pub fn tree_rows(map: &Topology, roots: &[i64]) -> Vec<TreeRow> {
    let names: HashMap<i64, &str> = map.nodes.iter().map(|n| (n.id, n.name.as_str())).collect();
    let health: HashMap<i64, String> = map
        .nodes
        .iter()
        .map(|n| (n.id, n.health.to_string()))
        .collect();
    // node → (neighbour, link, whether the node is the link's `a` end)
    let mut adjacent: BTreeMap<i64, Vec<(i64, &TopologyLink, bool)>> = BTreeMap::new();
    for link in &map.links {
        adjacent
            .entry(link.a)
            .or_default()
            .push((link.b, link, true));
        adjacent
            .entry(link.b)
            .or_default()
            .push((link.a, link, false));
    }
    for list in adjacent.values_mut() {
        list.sort_by_key(|(other, ..)| names.get(other).copied().unwrap_or_default());
    }
    let row = |order: usize, node: i64, depth: usize| TreeRow {
        order,
        node_id: node,
        name: names.get(&node).copied().unwrap_or("?").to_owned(),
        health: health.get(&node).cloned().unwrap_or_else(|| "?".into()),
        depth,
        parent_port: None,
        port: None,
        both_ends: true,
        gone: false,
    };
    let mut out = Vec::new();
    let mut seen: HashSet<i64> = HashSet::new();
    for &root in roots {
        if !seen.insert(root) {
            continue;
        }
        out.push(row(out.len(), root, 0));
        // Each node under the neighbour nearest the root...
        let mut children: HashMap<i64, Vec<(i64, &TopologyLink, bool)>> = HashMap::new();
        let mut queue = std::collections::VecDeque::from([root]);
        while let Some(node) = queue.pop_front() {
            for &(other, link, from_a) in adjacent.get(&node).map_or(&[][..], Vec::as_slice) {
                if seen.insert(other) {
                    children
                        .entry(node)
                        .or_default()
                        .push((other, link, from_a));
                    queue.push_back(other);
                }
            }
        }
        // ...listed depth first: (node, its depth, the next child to list).
        let mut stack: Vec<(i64, usize, usize)> = vec![(root, 1, 0)];
        while let Some(top) = stack.last_mut() {
            let (node, depth) = (top.0, top.1);
            let list = children.get(&node).map_or(&[][..], Vec::as_slice);
            let Some(&(other, link, from_a)) = list.get(top.2) else {
                stack.pop();
                continue;
            };
            top.2 += 1;
            let (parent_port, port) = if from_a {
                (&link.a_port, &link.b_port)
            } else {
                (&link.b_port, &link.a_port)
            };
            out.push(TreeRow {
                parent_port: parent_port.clone(),
                port: port.clone(),
                both_ends: link.both_ends,
                gone: link.gone,
                ..row(out.len(), other, depth)
            });
            stack.push((other, depth + 1, 0));
        }
    }
    out
}

/// The tree as text: `  Te1/1 → hall-a [Te0/1] (warning)`.
pub fn tree(map: &Topology, roots: &[i64]) -> String {
    let mut out = String::new();
    for row in tree_rows(map, roots) {
        if row.depth == 0 {
            let _ = writeln!(out, "{} ({})", row.name, row.health);
            continue;
        }
        let one_end = if row.both_ends { "" } else { " (one end)" };
        let gone = if row.gone { " [gone]" } else { "" };
        let _ = writeln!(
            out,
            "{}{} → {} [{}] ({}){one_end}{gone}",
            "  ".repeat(row.depth),
            port(row.parent_port.as_ref()),
            row.name,
            port(row.port.as_ref()),
            row.health,
        );
    }
    out
}

/// Graphviz: nodes by name, links labelled with their ports, gone links dashed.
pub fn dot(map: &Topology) -> String {
    let names: HashMap<i64, &str> = map.nodes.iter().map(|n| (n.id, n.name.as_str())).collect();
    let quote = |text: &str| format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""));
    let mut out = String::from("graph topology {\n");
    for node in &map.nodes {
        // Two lines: the name, Graphviz's `\n`, the health.
        let name = quote(&node.name);
        let open = &name[..name.len() - 1];
        let _ = writeln!(out, "  {name} [label={open}\\n{}\"];", node.health);
    }
    for link in &map.links {
        let style = if link.gone { ", style=dashed" } else { "" };
        let _ = writeln!(
            out,
            "  {} -- {} [taillabel={}, headlabel={}{style}];",
            quote(names.get(&link.a).copied().unwrap_or("?")),
            quote(names.get(&link.b).copied().unwrap_or("?")),
            quote(port(link.a_port.as_ref())),
            quote(port(link.b_port.as_ref())),
        );
    }
    out.push_str("}\n");
    out
}

/// Table rows of parent changes: node, parent now, suggested, on the parent's port.
fn suggestion_rows(items: &[plantwatch_shared::api::ParentSuggestion]) -> Vec<Vec<String>> {
    items
        .iter()
        .map(|s| {
            vec![
                s.node.clone(),
                s.current_name.clone().unwrap_or_else(|| "-".into()),
                s.suggested_name.clone(),
                s.via_port.clone().unwrap_or_else(|| "?".into()),
            ]
        })
        .collect()
}

/// A collector's automatic parents in a word: `off` or `from core-1`.
fn auto_state(setting: &plantwatch_shared::api::AutoParents) -> String {
    setting
        .root
        .as_deref()
        .map_or_else(|| "off".into(), |r| format!("from {r}"))
}

/// The map within `depth` links of `node` (a name or id), or the whole map; and the root.
async fn map_from(
    client: &plantwatch_shared::Client,
    node: Option<&str>,
    depth: u32,
) -> anyhow::Result<(Option<i64>, Topology)> {
    let root = match node {
        Some(name) => Some(find(client, name).await?.id),
        None => None,
    };
    let map = client
        .topology(&TopologyQuery {
            node_id: root,
            depth: Some(depth),
        })
        .await?;
    Ok((root, map))
}

pub async fn run(session: &Session, command: TopologyCommand) -> anyhow::Result<()> {
    let (_, client) = session.client()?;
    match command {
        TopologyCommand::Show {
            node,
            depth,
            format,
        } => {
            let (root, map) = map_from(&client, node.as_deref(), depth).await?;
            let text = match (session.format, format) {
                (Format::Json, _) => super::output::json::render(&map)?,
                (_, Shape::Dot) => dot(&map),
                (_, Shape::Tree) => {
                    let roots = root.map_or_else(|| map.roots(), |r| vec![r]);
                    if roots.is_empty() || map.links.is_empty() {
                        eprintln!(
                            "No links known yet: the collectors walk the neighbour tables of \
                             switches and routers every 15 minutes (docs/topology.md)."
                        );
                    }
                    tree(&map, &roots)
                }
            };
            std::io::stdout().lock().write_all(text.as_bytes())?;
            Ok(())
        }
        TopologyCommand::Export {
            node,
            depth,
            format: Drawing::Svg,
        } => {
            let (root, map) = map_from(&client, node.as_deref(), depth).await?;
            let roots = root.map_or_else(|| map.roots(), |r| vec![r]);
            std::io::stdout()
                .lock()
                .write_all(svg(&map, &roots).as_bytes())?;
            Ok(())
        }
        TopologyCommand::SuggestParents {
            root,
            apply,
            only,
            yes,
        } => {
            let root = match &root {
                Some(name) => Some(find(&client, name).await?.id),
                None => None,
            };
            let mut list = client
                .suggested_parents(&plantwatch_shared::api::ParentQuery { root })
                .await?;
            if let Some(only) = only {
                let names: Vec<&str> = only.split(',').map(str::trim).collect();
                if let Some(missing) = names
                    .iter()
                    .find(|n| !list.items.iter().any(|s| s.node.eq_ignore_ascii_case(n)))
                {
                    super::usage!("--only: the links suggest no other parent for {missing:?}");
                }
                list.items
                    .retain(|s| names.iter().any(|n| s.node.eq_ignore_ascii_case(n)));
                list.total = list.items.len() as u64;
            }
            let rows = suggestion_rows(&list.items);
            session.print(
                &list,
                &["NODE", "PARENT NOW", "SUGGESTED", "ON PARENT'S PORT"],
                rows,
            )?;
            if list.items.is_empty() {
                eprintln!("Every linked node's parent is the one the links suggest.");
                return Ok(());
            }
            if !apply {
                eprintln!(
                    "{} parents differ; --apply sets them (one transaction).",
                    list.items.len()
                );
                return Ok(());
            }
            super::confirm(yes, &format!("Set {} parents?", list.items.len()))?;
            let changes = plantwatch_shared::api::ParentChanges {
                parents: list
                    .items
                    .iter()
                    .map(|s| plantwatch_shared::api::ParentChange {
                        node_id: s.node_id,
                        parent_id: s.suggested,
                    })
                    .collect(),
            };
            client.set_parents(&changes).await?;
            eprintln!("Set {} parents.", changes.parents.len());
            Ok(())
        }
        TopologyCommand::AutoParents {
            collector,
            root,
            off,
        } => {
            let Some(collector) = collector else {
                if root.is_some() || off {
                    super::usage!(
                        "name the collector: topology auto-parents COLLECTOR --root NODE"
                    );
                }
                let list = client.auto_parents().await?;
                let rows = list
                    .items
                    .iter()
                    .map(|a| vec![a.collector.clone(), auto_state(a)])
                    .collect();
                return session.print(&list, &["COLLECTOR", "AUTOMATIC PARENTS"], rows);
            };
            let found = super::components::find(
                &client,
                plantwatch_shared::api::ComponentKind::Collector,
                &collector,
            )
            .await?;
            let setting = match (&root, off) {
                (Some(root), _) => {
                    let root = find(&client, root).await?;
                    client.set_auto_parents(found.id, Some(root.id)).await?
                }
                (None, true) => client.set_auto_parents(found.id, None).await?,
                (None, false) => client
                    .auto_parents()
                    .await?
                    .items
                    .into_iter()
                    .find(|a| a.collector_id == found.id)
                    .unwrap_or_default(),
            };
            if root.is_some() {
                let root = setting.root.as_deref().unwrap_or("?");
                eprintln!(
                    "The parents of collector {:?}'s nodes follow the wiring from {root}: {} set \
                     now, changes after each neighbour walk; nodes no link from {root} reaches \
                     keep theirs.",
                    found.name,
                    setting.applied.len()
                );
            } else if off {
                eprintln!(
                    "Automatic parents off for {:?}; the parents stay as they are.",
                    found.name
                );
            }
            let rows = suggestion_rows(&setting.applied);
            if setting.applied.is_empty() {
                let rows = vec![vec![found.name, auto_state(&setting)]];
                return session.print(&setting, &["COLLECTOR", "AUTOMATIC PARENTS"], rows);
            }
            session.print(
                &setting,
                &["NODE", "PARENT BEFORE", "PARENT NOW", "ON PARENT'S PORT"],
                rows,
            )
        }
        TopologyCommand::Unmanaged => {
            let map = client.topology(&TopologyQuery::default()).await?;
            let names: HashMap<i64, &str> =
                map.nodes.iter().map(|n| (n.id, n.name.as_str())).collect();
            let rows = map
                .unmanaged
                .iter()
                .map(|u| {
                    let n = &u.neighbour;
                    vec![
                        names.get(&u.seen_by).copied().unwrap_or("?").to_owned(),
                        n.local_port.clone(),
                        n.protocol.to_string(),
                        n.sys_name.clone().unwrap_or_else(|| "-".into()),
                        n.address.clone().unwrap_or_else(|| "-".into()),
                        n.chassis_id.clone().unwrap_or_else(|| "-".into()),
                        n.port.clone().unwrap_or_else(|| "-".into()),
                        n.platform.clone().unwrap_or_else(|| "-".into()),
                    ]
                })
                .collect();
            session.print(
                &map.unmanaged,
                &[
                    "SEEN BY", "PORT", "VIA", "NAME", "ADDRESS", "CHASSIS", "ITS PORT", "PLATFORM",
                ],
                rows,
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use plantwatch_shared::api::{NeighbourProtocol, NodeStatus, TopologyNode};
    use time::OffsetDateTime;

    use super::*;

    fn map() -> Topology {
        let node = |id, name: &str, health| TopologyNode {
            id,
            name: name.into(),
            address: format!("10.0.0.{id}"),
            health,
            parent_id: None,
        };
        let link = |a, a_port: &str, b, b_port: &str, both_ends, gone| TopologyLink {
            a,
            a_port: Some(a_port.into()),
            b,
            b_port: Some(b_port.into()),
            protocols: vec![NeighbourProtocol::Lldp],
            both_ends,
            first_seen: OffsetDateTime::UNIX_EPOCH,
            last_seen: OffsetDateTime::UNIX_EPOCH,
            gone,
        };
        Topology {
            nodes: vec![
                node(1, "core", NodeStatus::Healthy),
                node(2, "hall-a", NodeStatus::Warning),
                node(3, "plc-1", NodeStatus::Healthy),
                node(4, "hall-b", NodeStatus::Healthy),
            ],
            links: vec![
                link(1, "Te1/1", 2, "Te0/1", true, false),
                link(2, "Gi0/7", 3, "eth0", false, false),
                link(1, "Te1/2", 4, "Te0/1", true, true),
                // A second path to the PLC: shown once, where it is first reached.
                link(4, "Gi0/3", 3, "eth1", true, false),
            ],
            unmanaged: Vec::new(),
        }
    }

    #[test]
    fn the_tree_hangs_each_node_once_under_the_port_it_is_on() {
        assert_eq!(
            tree(&map(), &[1]),
            "core (healthy)\n\
             \x20 Te1/1 → hall-a [Te0/1] (warning)\n\
             \x20   Gi0/7 → plc-1 [eth0] (healthy) (one end)\n\
             \x20 Te1/2 → hall-b [Te0/1] (healthy) [gone]\n"
        );
        // Without a root: the best connected first (links gone do not count), ties by name;
        // once parents are set, the nodes without one first.
        assert_eq!(map().roots(), [2, 3, 1, 4]);
        let mut parented = map();
        for node in &mut parented.nodes {
            node.parent_id = (node.name != "hall-b").then_some(4);
        }
        assert_eq!(parented.roots()[0], 4);
    }

    #[test]
    fn the_svg_draws_every_node_and_port_escaped() {
        let mut map = map();
        map.nodes[2].name = "plc <1> & co".into();
        let drawing = svg(&map, &[1]);
        assert!(drawing.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""));
        for text in [
            "core",
            "hall-a",
            "hall-b",
            "plc &lt;1&gt; &amp; co",
            "Te1/1",
            "Gi0/7",
            "eth0",
        ] {
            assert!(
                drawing.contains(&format!(">{text}</text>")),
                "{text}: {drawing}"
            );
        }
        // Gone links dashed; the PLC's second path (via hall-b) drawn outside the tree.
        assert_eq!(drawing.matches("stroke-dasharray").count(), 1, "{drawing}");
        assert_eq!(drawing.matches("<path ").count(), 1, "{drawing}");
        // Well formed: every element opened is closed.
        assert_eq!(
            drawing.matches("<text").count(),
            drawing.matches("</text>").count()
        );
        assert!(drawing.trim_end().ends_with("</svg>"));
    }

    #[test]
    fn dot_names_the_ports_and_dashes_gone_links() {
        let text = dot(&map());
        assert!(text.starts_with("graph topology {\n"), "{text}");
        assert!(
            text.contains(
                "  \"core\" -- \"hall-b\" [taillabel=\"Te1/2\", headlabel=\"Te0/1\", style=dashed];"
            ),
            "{text}"
        );
        assert!(
            text.contains("  \"plc-1\" [label=\"plc-1\\nhealthy\"];\n"),
            "{text}"
        );
    }
}
