//! Audit log (admins): who changed what, newest first; scroll, filter, open an entry.

use plantwatch_shared::api::{AuditEntry, AuditQuery, Role};
use ratatui::Frame;
use ratatui::crossterm::event::KeyCode;
use ratatui::layout::{Constraint, Rect};

use super::{Ctx, Effect, Navigate, View, ViewSpec};
use crate::cells::time_cell;
use crate::event::{Reply, Task, task};
use crate::keymap::{Action, Binding, Key};
use crate::overlay::Overlay;
use crate::widgets::table::{Column, DataTable};

pub const SPEC: ViewSpec = ViewSpec {
    name: "audit",
    aliases: &["au", "log"],
    about: "who changed what, and when",
    min_role: Role::Admin,
    make: || Box::new(AuditView::new()),
};

fn opt(value: &Option<String>) -> String {
    value.clone().unwrap_or_else(|| "-".into())
}

static COLUMNS: &[Column<AuditEntry>] = &[
    Column {
        title: "TIME",
        sort_key: 't',
        width: Constraint::Length(20),
        cell: |e| time_cell(Some(e.at)),
        cmp: |a, b| (a.at, a.id).cmp(&(b.at, b.id)),
    },
    Column {
        title: "ACTOR",
        sort_key: 'a',
        width: Constraint::Length(12),
        cell: |e| e.actor.clone(),
        cmp: |a, b| a.actor.cmp(&b.actor),
    },
    Column {
        title: "ACTION",
        sort_key: 'x',
        width: Constraint::Length(22),
        cell: |e| e.action.to_string(),
        cmp: |a, b| a.action.as_str().cmp(b.action.as_str()),
    },
    Column {
        title: "TARGET",
        sort_key: 'o',
        width: Constraint::Fill(1),
        cell: |e| opt(&e.target),
        cmp: |a, b| a.target.cmp(&b.target),
    },
    Column {
        title: "SOURCE",
        sort_key: 's',
        width: Constraint::Length(15),
        cell: |e| opt(&e.source),
        cmp: |a, b| a.source.cmp(&b.source),
    },
];

pub struct AuditView {
    pub table: DataTable<AuditEntry>,
}

impl AuditView {
    pub fn new() -> Self {
        let mut table = DataTable::new(COLUMNS, |e| e.id.to_string());
        // Newest first.
        table.sort_by(0);
        table.sort_by(0);
        AuditView { table }
    }
}

impl Default for AuditView {
    fn default() -> Self {
        Self::new()
    }
}

impl View for AuditView {
    fn title(&self) -> String {
        self.table.title("Audit log")
    }

    fn bindings(&self) -> Vec<Binding> {
        vec![
            Binding::new(
                &[Key::new(KeyCode::Enter)],
                Action::Open,
                "show the entry with its details",
            )
            .footer("details"),
        ]
    }

    fn sort_keys(&self) -> Vec<(&'static str, char)> {
        self.table.sort_keys()
    }

    fn render(&self, frame: &mut Frame, area: Rect, ctx: &Ctx) {
        self.table
            .render(frame, area, "Audit log", "Nothing recorded yet.", ctx.theme);
    }

    fn refresh(&self, ctx: &Ctx) -> Vec<Task> {
        let Some(client) = ctx.client.cloned() else {
            return Vec::new();
        };
        let query = AuditQuery {
            limit: Some(plantwatch_shared::api::MAX_PAGE_LIMIT),
            ..AuditQuery::default()
        };
        vec![task("loading the audit log", async move {
            client.audit(&query).await.map(Reply::Audit)
        })]
    }

    fn on_action(&mut self, action: Action, _ctx: &Ctx) -> Vec<Effect> {
        let (Action::Open, Some(entry)) = (action, self.table.selected()) else {
            return Vec::new();
        };
        let details = entry
            .details
            .as_ref()
            .and_then(|d| serde_json::to_string_pretty(d).ok())
            .unwrap_or_else(|| "-".into());
        vec![Effect::Open(Overlay::Detail {
            title: format!("Audit entry {}", entry.id),
            lines: vec![
                ("Time".into(), time_cell(Some(entry.at))),
                ("Actor".into(), entry.actor.clone()),
                ("Action".into(), entry.action.to_string()),
                ("Target".into(), opt(&entry.target)),
                ("Source".into(), opt(&entry.source)),
                ("Details".into(), details),
            ],
        })]
    }

    fn on_reply(&mut self, reply: &Reply, _ctx: &Ctx) -> Vec<Effect> {
        if let Reply::Audit(list) = reply {
            self.table.set_rows(list.items.clone());
        }
        Vec::new()
    }

    fn table(&mut self) -> Option<&mut dyn Navigate> {
        Some(&mut self.table)
    }
}
