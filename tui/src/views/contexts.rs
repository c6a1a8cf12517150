//! Contexts: the servers this console knows; switch between them or add one.

use plantwatch_shared::api::Role;
use ratatui::Frame;
use ratatui::crossterm::event::KeyCode;
use ratatui::layout::{Constraint, Rect};

use super::{Ctx, Effect, Navigate, View, ViewSpec};
use crate::event::{Reply, Task, task};
use crate::keymap::{Action, Binding, Key};
use crate::overlay::{Confirm, Overlay};
use crate::profile::Context;
use crate::widgets::table::{Column, DataTable};

pub const SPEC: ViewSpec = ViewSpec {
    name: "contexts",
    aliases: &["ctx", "context"],
    about: "saved servers: switch or add",
    min_role: Role::Viewer,
    make: || Box::new(ContextsView::new()),
};

crate::asks!(
    REMOVE,
);

/// A context as listed, with whether it is the current one.
#[derive(Debug, Clone)]
pub struct Row {
    pub current: bool,
    pub context: Context,
}

static COLUMNS: &[Column<Row>] = &[
    Column {
        title: "CURRENT",
        sort_key: 'a',
        width: Constraint::Length(8),
        cell: |r| if r.current { "* yes" } else { "" }.to_owned(),
        cmp: |a, b| b.current.cmp(&a.current),
    },
    Column {
        title: "NAME",
        sort_key: 'n',
        width: Constraint::Fill(1),
        cell: |r| r.context.name.clone(),
        cmp: |a, b| a.context.name.cmp(&b.context.name),
    },
    Column {
        title: "SERVER",
        sort_key: 's',
        width: Constraint::Fill(2),
        cell: |r| r.context.url.clone(),
        cmp: |a, b| a.context.url.cmp(&b.context.url),
    },
    Column {
        title: "USER",
        sort_key: 'u',
        width: Constraint::Length(12),
        cell: |r| r.context.username.clone().unwrap_or_else(|| "-".into()),
        cmp: |a, b| a.context.username.cmp(&b.context.username),
    },
    Column {
        title: "SIGNED IN",
        sort_key: 'i',
        width: Constraint::Length(9),
        cell: |r| {
            if r.context.token.is_some() {
                "yes"
            } else {
                "no"
            }
            .to_owned()
        },
        cmp: |a, b| a.context.token.is_some().cmp(&b.context.token.is_some()),
    },
];

pub struct ContextsView {
    pub table: DataTable<Row>,
    target: Option<String>,
}

impl ContextsView {
    pub fn new() -> Self {
        ContextsView {
            table: DataTable::new(COLUMNS, |r| r.context.name.clone()),
            target: None,
        }
    }
}

impl Default for ContextsView {
    fn default() -> Self {
        Self::new()
    }
}

impl View for ContextsView {
    fn title(&self) -> String {
        self.table.title("Contexts")
    }

    fn bindings(&self) -> Vec<Binding> {
        vec![
            Binding::new(
                &[Key::new(KeyCode::Enter)],
                Action::Open,
                "switch to this context (signs in if needed)",
            )
            .footer("switch"),
            Binding::new(&[Key::ch('a')], Action::AddContext, "add a server").footer("add"),
            Binding::new(
                &[Key::ch('d'), Key::new(KeyCode::Delete)],
                Action::RemoveContext,
                "forget this context (asks first)",
            )
            .footer("remove"),
        ]
    }

    fn sort_keys(&self) -> Vec<(&'static str, char)> {
        self.table.sort_keys()
    }

    fn render(&self, frame: &mut Frame, area: Rect, ctx: &Ctx) {
        self.table.render(
            frame,
            area,
            "Contexts",
            "No saved servers. Press a to add one.",
            ctx.theme,
        );
    }

    fn refresh(&self, ctx: &Ctx) -> Vec<Task> {
        let profiles = ctx.profiles.clone();
        vec![task("reading the contexts", async move {
            Ok(Reply::Contexts(profiles))
        })]
    }

    fn on_action(&mut self, action: Action, _ctx: &Ctx) -> Vec<Effect> {
        if action == Action::AddContext {
            return vec![Effect::AddContext];
        }
        let Some(row) = self.table.selected().cloned() else {
            return vec![Effect::Info("No context selected.".into())];
        };
        match action {
            Action::Open => vec![Effect::SwitchContext(row.context.name)],
            Action::RemoveContext => {
                let question = format!(
                    "Forget context {} ({})? Its pinned certificate and session are removed \
                     from this machine; the server is not changed.",
                    row.context.name, row.context.url
                );
                self.target = Some(row.context.name);
                vec![Effect::Open(Overlay::Confirm(Confirm {
                    title: "Remove context".into(),
                    question,
                    yes: "remove",
                    tag: REMOVE,
                }))]
            }
            _ => Vec::new(),
        }
    }

    fn on_confirm(&mut self, tag: crate::widgets::form::Ask, _ctx: &Ctx) -> Vec<Effect> {
        match (tag, self.target.take()) {
            (REMOVE, Some(name)) => vec![Effect::RemoveContext(name)],
            _ => Vec::new(),
        }
    }

    fn on_reply(&mut self, reply: &Reply, _ctx: &Ctx) -> Vec<Effect> {
        if let Reply::Contexts(profiles) = reply {
            let rows = profiles
                .contexts
                .iter()
                .map(|c| Row {
                    current: profiles.current.as_deref() == Some(c.name.as_str()),
                    context: c.clone(),
                })
                .collect();
            self.table.set_rows(rows);
        }
        Vec::new()
    }

    fn table(&mut self) -> Option<&mut dyn Navigate> {
        Some(&mut self.table)
    }
}
