//! Topology: the links LLDP and CDP show, as a tree from each group's first root — the port
//! on both ends and each node's health; `Enter` goes to the node. `p` lists the parents the
//! links suggest from the root, `a` sets them (the marked ones, else all) in one transaction.

use plantwatch_shared::api::{
    ParentChange, ParentChanges, ParentQuery, ParentSuggestion, Role, Topology, TopologyQuery,
};
use ratatui::Frame;
use ratatui::crossterm::event::KeyCode;
use ratatui::layout::{Constraint, Rect};

use super::{Ctx, Effect, Navigate, View, ViewSpec};
use crate::cli::topology::{TreeRow, tree_rows};
use crate::event::{Reply, Task, task};
use crate::keymap::{Action, Binding, Key};
use crate::overlay::{Confirm, Overlay};
use crate::widgets::table::{Column, DataTable};

crate::asks!(
    /// Setting the suggested parents.
    APPLY,
);

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

static PARENT_COLUMNS: &[Column<ParentSuggestion>] = &[
    Column {
        title: "NODE",
        sort_key: 'n',
        width: Constraint::Fill(2),
        cell: |s| s.node.clone(),
        cmp: |a, b| a.node.cmp(&b.node),
    },
    Column {
        title: "PARENT NOW",
        sort_key: 'c',
        width: Constraint::Fill(2),
        cell: |s| or_dash(&s.current_name),
        cmp: |a, b| a.current_name.cmp(&b.current_name),
    },
    Column {
        title: "SUGGESTED",
        sort_key: 's',
        width: Constraint::Fill(2),
        cell: |s| s.suggested_name.clone(),
        cmp: |a, b| a.suggested_name.cmp(&b.suggested_name),
    },
    Column {
        title: "ON PARENT PORT",
        sort_key: 'u',
        width: Constraint::Fill(1),
        cell: |s| or_dash(&s.via_port),
        cmp: |a, b| a.via_port.cmp(&b.via_port),
    },
];

pub struct TopologyView {
    pub table: DataTable<TreeRow>,
    /// The parents the links suggest from the root, while shown (`p`).
    parents: Option<DataTable<ParentSuggestion>>,
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
            parents: None,
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
        let mut starts = map.roots();
        if let Some((root, _)) = &self.root {
            starts.retain(|r| r != root);
            starts.insert(0, *root);
        }
        self.table.set_rows(tree_rows(map, &starts));
    }
}

impl TopologyView {
    /// Shows the parents the links suggest instead of the tree (marks kept).
    pub fn show_parents(&mut self, suggestions: Vec<ParentSuggestion>) {
        let parents = self.parents.get_or_insert_with(|| {
            let mut table = DataTable::new(PARENT_COLUMNS, |s| s.node_id.to_string());
            table.sort_by(0);
            table
        });
        parents.set_rows(suggestions);
    }

    /// Loads the parents the links suggest from the chosen root (else each group's).
    fn suggest(&self, client: plantwatch_shared::Client) -> Task {
        let query = ParentQuery {
            root: self.root.as_ref().map(|(id, _)| *id),
        };
        task("loading the parents the links suggest", async move {
            client
                .suggested_parents(&query)
                .await
                .map(Reply::ParentSuggestions)
        })
    }

    /// The suggestions to set: the marked ones, else all listed.
    fn chosen(&self) -> Vec<ParentSuggestion> {
        let Some(parents) = &self.parents else {
            return Vec::new();
        };
        let marked = parents.marked();
        if marked.is_empty() {
            parents.rows().to_vec()
        } else {
            marked.into_iter().cloned().collect()
        }
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
        if self.parents.is_some() {
            return vec![
                Binding::new(&[Key::new(KeyCode::Enter)], Action::Open, "go to the node")
                    .footer("node"),
                Binding::new(&[Key::ch(' ')], Action::Mark, "mark or unmark the parent to set")
                    .role(Role::Operator),
                Binding::new(&[Key::ch('a')], Action::ApplyParents, "set the marked parents (else all)")
                    .footer("set parents")
                    .role(Role::Operator),
                Binding::new(&[Key::ch('p')], Action::SuggestParents, "back to the tree")
                    .footer("tree"),
            ];
        }
        vec![
            Binding::new(&[Key::new(KeyCode::Enter)], Action::Open, "go to the node")
                .footer("node"),
            Binding::new(
                &[Key::ch('p')],
                Action::SuggestParents,
                "parents the links suggest from the root",
            )
            .footer("parents"),
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
        if let Some(parents) = &self.parents {
            let from = match &self.root {
                Some((_, root)) => format!("from {root}"),
                None => "from each group's root".to_owned(),
            };
            parents.render(
                frame,
                area,
                &format!("Parents the links suggest {from}"),
                "Every linked node's parent is the one the links suggest.",
                ctx.theme,
            );
            return;
        }
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
        let mut tasks = Vec::new();
        if self.parents.is_some() {
            tasks.push(self.suggest(client.clone()));
        }
        tasks.push(task("loading the topology", async move {
            client
                .topology(&TopologyQuery::default())
                .await
                .map(|map| Reply::Topology(Box::new(map)))
        }));
        tasks
    }

    fn on_action(&mut self, action: Action, ctx: &Ctx) -> Vec<Effect> {
        match action {
            Action::SuggestParents if self.parents.is_some() => {
                self.parents = None;
                return Vec::new();
            }
            Action::SuggestParents => {
                let Some(client) = ctx.client.cloned() else {
                    return Vec::new();
                };
                return vec![Effect::Call(self.suggest(client))];
            }
            _ => {}
        }
        if let Some(parents) = &mut self.parents {
            return match action {
                Action::Mark => {
                    parents.toggle_mark();
                    Vec::new()
                }
                Action::ApplyParents => {
                    let chosen = self.chosen();
                    if chosen.is_empty() {
                        return vec![Effect::Info("No parent to set.".into())];
                    }
                    let names: Vec<String> = chosen
                        .iter()
                        .map(|s| format!("{} under {}", s.node, s.suggested_name))
                        .take(3)
                        .collect();
                    let more = chosen.len().saturating_sub(names.len());
                    vec![Effect::Open(Overlay::Confirm(Confirm {
                        title: "Set parents".into(),
                        question: format!(
                            "Set {} parents ({}{})?",
                            chosen.len(),
                            names.join(", "),
                            if more > 0 { format!(", {more} more") } else { String::new() }
                        ),
                        yes: "set",
                        tag: APPLY,
                    }))]
                }
                Action::Open => parents.selected().map_or_else(Vec::new, |s| {
                    vec![Effect::Goto {
                        view: "nodes",
                        filter: s.node.clone(),
                    }]
                }),
                _ => Vec::new(),
            };
        }
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

    fn on_confirm(&mut self, tag: crate::widgets::form::Ask, ctx: &Ctx) -> Vec<Effect> {
        let Some(client) = ctx.client.cloned() else {
            return Vec::new();
        };
        if tag != APPLY {
            return Vec::new();
        }
        let changes = ParentChanges {
            parents: self
                .chosen()
                .iter()
                .map(|s| ParentChange {
                    node_id: s.node_id,
                    parent_id: s.suggested,
                })
                .collect(),
        };
        vec![Effect::Call(task("setting parents", async move {
            client.set_parents(&changes).await?;
            Ok(Reply::ParentsSet(changes.parents.len()))
        }))]
    }

    fn on_reply(&mut self, reply: &Reply, _ctx: &Ctx) -> Vec<Effect> {
        match reply {
            Reply::Topology(map) => {
                self.map = Some((**map).clone());
                self.show();
            }
            Reply::ParentSuggestions(list) => self.show_parents(list.items.clone()),
            Reply::ParentsSet(count) => {
                if let Some(parents) = &mut self.parents {
                    parents.clear_marks();
                }
                return vec![
                    Effect::Info(format!("Set {count} parents from the links.")),
                    Effect::Refresh,
                ];
            }
            _ => {}
        }
        Vec::new()
    }

    fn table(&mut self) -> Option<&mut dyn Navigate> {
        match &mut self.parents {
            Some(parents) => Some(parents),
            None => Some(&mut self.table),
        }
    }
}
