//! Topology: the links LLDP and CDP show, as a tree from each group's best-connected node —
//! the port on both ends and each node's health; `Enter` goes to the node.

use plantwatch_shared::api::{Role, Topology, TopologyQuery};
use ratatui::Frame;
use ratatui::crossterm::event::KeyCode;
use ratatui::layout::{Constraint, Rect};

use super::{Ctx, Effect, Navigate, View, ViewSpec};
use crate::cli::topology::{TreeRow, roots, tree_rows};
use crate::event::{Reply, Task, task};
use crate::keymap::{Action, Binding, Key};
use crate::widgets::table::{Column, DataTable};

pub const SPEC: ViewSpec = ViewSpec {
    name: "topology",
    aliases: &["topo", "map", "lldp"],
    about: "links from LLDP and CDP as a tree, ports on both ends",
    min_role: Role::Viewer,
    make: || Box::new(TopologyView::new()),
};

fn or_dash(text: &Option<String>) -> String {
    text.clone().unwrap_or_else(|| "-".into())
}

static COLUMNS: &[Column<TreeRow>] = &[
    Column {
        title: "NODE",
        sort_key: 'n',
        width: Constraint::Fill(2),
        cell: |r| format!("{}{}", "  ".repeat(r.depth), r.name),
        cmp: |a, b| a.order.cmp(&b.order),
    },
    Column {
        title: "HEALTH",
        sort_key: 'h',
        width: Constraint::Length(12),
        cell: |r| r.health.clone(),
        cmp: |a, b| a.health.cmp(&b.health),
    },
    Column {
        title: "ITS PORT",
        sort_key: 'p',
        width: Constraint::Fill(1),
        cell: |r| or_dash(&r.port),
        cmp: |a, b| a.port.cmp(&b.port),
    },
    Column {
        title: "ON PARENT PORT",
        sort_key: 'u',
        width: Constraint::Fill(1),
        cell: |r| or_dash(&r.parent_port),
        cmp: |a, b| a.parent_port.cmp(&b.parent_port),
    },
    Column {
        title: "LINK",
        sort_key: 'l',
        width: Constraint::Length(10),
        cell: |r| match (r.depth, r.gone, r.both_ends) {
            (0, ..) => "root".into(),
            (_, true, _) => "gone".into(),
            (_, _, false) => "one end".into(),
            _ => "both ends".into(),
        },
        cmp: |a, b| (a.gone, a.both_ends).cmp(&(b.gone, b.both_ends)),
    },
];

pub struct TopologyView {
    pub table: DataTable<TreeRow>,
    /// The last map loaded.
    map: Option<Topology>,
    /// The node the tree is drawn from (`r`); `None`: each group's default root.
    root: Option<(i64, String)>,
}

impl TopologyView {
    pub fn new() -> Self {
        let mut table = DataTable::new(COLUMNS, |r| r.node_id.to_string());
        table.sort_by(0);
        TopologyView {
            table,
            map: None,
            root: None,
        }
    }

    /// Shows the map loaded: a tree from the chosen root (then the other groups), else from
    /// each group's default root.
    fn show(&mut self) {
        let Some(map) = &self.map else {
            return;
        };
        let mut starts = roots(map);
        if let Some((root, _)) = &self.root {
            starts.retain(|r| r != root);
            starts.insert(0, *root);
        }
        self.table.set_rows(tree_rows(map, &starts));
    }
}

impl Default for TopologyView {
    fn default() -> Self {
        Self::new()
    }
}

impl View for TopologyView {
    fn title(&self) -> String {
        self.table.title("Topology")
    }

    fn bindings(&self) -> Vec<Binding> {
        vec![
            Binding::new(&[Key::new(KeyCode::Enter)], Action::Open, "go to the node")
                .footer("node"),
            Binding::new(
                &[Key::ch('r')],
                Action::Reroot,
                "tree from the selected node (r again: default)",
            )
            .footer("root here"),
        ]
    }

    fn sort_keys(&self) -> Vec<(&'static str, char)> {
        self.table.sort_keys()
    }

    fn render(&self, frame: &mut Frame, area: Rect, ctx: &Ctx) {
        let mut name = match &self.root {
            Some((_, root)) => format!("Topology from {root}"),
            None => "Topology".to_owned(),
        };
        let unmanaged = self.map.as_ref().map_or(0, |m| m.unmanaged.len());
        if unmanaged > 0 {
            name.push_str(&format!(
                " · {unmanaged} unmanaged neighbours (plantwatch topology unmanaged)"
            ));
        }
        self.table.render(
            frame,
            area,
            &name,
            "No links yet: the collectors walk the LLDP/CDP tables of switches and routers every \
             15 minutes.",
            ctx.theme,
        );
    }

    fn refresh(&self, ctx: &Ctx) -> Vec<Task> {
        let Some(client) = ctx.client.cloned() else {
            return Vec::new();
        };
        vec![task("loading the topology", async move {
            client
                .topology(&TopologyQuery::default())
                .await
                .map(|map| Reply::Topology(Box::new(map)))
        })]
    }

    fn on_action(&mut self, action: Action, _ctx: &Ctx) -> Vec<Effect> {
        let Some(row) = self.table.selected() else {
            return Vec::new();
        };
        match action {
            Action::Open => vec![Effect::Goto {
                view: "nodes",
                filter: row.name.clone(),
            }],
            Action::Reroot => {
                let chosen = (row.node_id, row.name.clone());
                self.root = match &self.root {
                    Some((id, _)) if *id == chosen.0 => None,
                    _ => Some(chosen),
                };
                self.show();
                Vec::new()
            }
            _ => Vec::new(),
        }
    }

    fn on_reply(&mut self, reply: &Reply, _ctx: &Ctx) -> Vec<Effect> {
        if let Reply::Topology(map) = reply {
            self.map = Some((**map).clone());
            self.show();
        }
        Vec::new()
    }

    fn table(&mut self) -> Option<&mut dyn Navigate> {
        Some(&mut self.table)
    }
}
