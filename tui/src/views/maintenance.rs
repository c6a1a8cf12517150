//! Maintenance windows: under way first. Operators put a node, a tag or a collector into
//! maintenance from now or from a given time, once or repeating (`c`), and end one (`x`).

use plantwatch_shared::api::{MaintenanceScope, MaintenanceSpec, MaintenanceWindow, Recurrence, Role};
use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::resource::Resource;
use super::{Ctx, Effect, Navigate, View, ViewSpec};
use crate::cells::parse_duration;
use crate::cells::time_cell;
use crate::event::{Reply, Task, task};
use crate::keymap::{Action, Binding, Key};
use crate::overlay::{Confirm, Overlay};
use crate::widgets::form::{Field, Form, Purpose};
use crate::widgets::table::{Column, caseless};

// The fields of this view's forms: a label is written once, and a field is read by its id.
crate::field_ids! {
    Name = "Name",
    Covers = "Covers",
    Target = "Target",
    Duration = "Duration",
    Starts = "Starts",
    Repeats = "Repeats",
}

pub const SPEC: ViewSpec = ViewSpec {
    name: "maintenance",
    aliases: &["ma", "mw"],
    about: "maintenance windows: alerts held, no notifications",
    min_role: Role::Viewer,
    make: || Box::new(MaintenanceView::new()),
};

crate::asks!(
    CREATE,
    END,
);

fn state(w: &MaintenanceWindow) -> &'static str {
    if w.active {
        "active"
    } else if w.next_start.is_some() {
        "upcoming"
    } else {
        "over"
    }
}

fn covers(w: &MaintenanceWindow) -> String {
    format!("{} {}", w.scope, w.target)
}

static COLUMNS: &[Column<MaintenanceWindow>] = &[
    Column {
        title: "STATE",
        sort_key: 's',
        width: Constraint::Length(8),
        cell: |w| state(w).into(),
        cmp: |a, b| (!a.active, a.next_start.is_none()).cmp(&(!b.active, b.next_start.is_none())),
    },
    Column {
        title: "NAME",
        sort_key: 'n',
        width: Constraint::Fill(1),
        cell: |w| w.name.clone(),
        cmp: |a, b| caseless(&a.name, &b.name),
    },
    Column {
        title: "COVERS",
        sort_key: 'c',
        width: Constraint::Fill(1),
        cell: covers,
        cmp: |a, b| covers(a).cmp(&covers(b)),
    },
    Column {
        title: "STARTS",
        sort_key: 't',
        width: Constraint::Length(20),
        cell: |w| time_cell(w.next_start),
        cmp: |a, b| a.next_start.cmp(&b.next_start),
    },
    Column {
        title: "ENDS",
        sort_key: 'e',
        width: Constraint::Length(20),
        cell: |w| time_cell(w.next_end),
        cmp: |a, b| a.next_end.cmp(&b.next_end),
    },
    Column {
        title: "REPEATS",
        sort_key: 'r',
        width: Constraint::Length(8),
        cell: |w| w.recurrence.to_string(),
        cmp: |a, b| a.recurrence.cmp(&b.recurrence),
    },
];

pub struct MaintenanceView {
    pub table: Resource<MaintenanceWindow>,
}

impl MaintenanceView {
    pub fn new() -> Self {
        let mut table = Resource::new("maintenance window", COLUMNS, |w| w.id.to_string());
        table.sort_by(0);
        MaintenanceView {
            table,
        }
    }
}

impl Default for MaintenanceView {
    fn default() -> Self {
        Self::new()
    }
}

fn duration_check(text: &str) -> Result<(), String> {
    parse_duration(text).map(drop)
}

fn start_check(text: &str) -> Result<(), String> {
    if text.trim().is_empty() {
        return Ok(());
    }
    OffsetDateTime::parse(text.trim(), &Rfc3339)
        .map(drop)
        .map_err(|_| "RFC 3339, e.g. 2026-12-06T02:00:00+01:00 (empty: now)".into())
}

impl View for MaintenanceView {
    fn title(&self) -> String {
        self.table.title("Maintenance windows")
    }

    fn bindings(&self) -> Vec<Binding> {
        vec![
            Binding::new(&[Key::ch('c')], Action::Create, "put nodes into maintenance")
                .footer("new")
                .role(Role::Operator),
            Binding::new(&[Key::ch('x')], Action::Delete, "end the window now")
                .footer("end")
                .role(Role::Operator),
        ]
    }

    fn sort_keys(&self) -> Vec<(&'static str, char)> {
        self.table.sort_keys()
    }

    fn render(&self, frame: &mut Frame, area: Rect, ctx: &Ctx) {
        self.table.render(
            frame,
            area,
            "Maintenance windows",
            "No maintenance windows.",
            ctx.theme,
        );
    }

    fn refresh(&self, ctx: &Ctx) -> Vec<Task> {
        let Some(client) = ctx.client.cloned() else {
            return Vec::new();
        };
        vec![task("loading maintenance windows", async move {
            client.list_maintenance().await.map(Reply::Maintenance)
        })]
    }

    fn on_action(&mut self, action: Action, _ctx: &Ctx) -> Vec<Effect> {
        match action {
            Action::Create => vec![Effect::Open(Overlay::Form(
                Form::new(
                    "New maintenance window",
                    Purpose::View(CREATE),
                    vec![
                        Field::text(FieldId::Name),
                        Field::choice(FieldId::Covers, &["node", "tag", "collector"], "node"),
                        Field::text(FieldId::Target),
                        Field::text(FieldId::Duration).with_value("2h").checked(duration_check),
                        Field::text(FieldId::Starts).optional().checked(start_check),
                        Field::choice(FieldId::Repeats, &["none", "weekly", "monthly"], "none"),
                    ],
                )
                .with_note("Alerts are still evaluated and shown as held; nothing is notified."),
            ))],
            Action::Delete => {
                let Some(window) = self.table.selected().cloned() else {
                    return vec![Effect::Info("No window selected.".into())];
                };
                let question = format!(
                    "End maintenance window {} now, with any later occurrences?",
                    window.name
                );
                self.table.target = Some(window);
                vec![Effect::Open(Overlay::Confirm(Confirm {
                    title: "End maintenance".into(),
                    question,
                    yes: "end",
                    tag: END,
                }))]
            }
            _ => Vec::new(),
        }
    }

    fn on_submit(&mut self, form: &mut Form, ctx: &Ctx) -> Vec<Effect> {
        let (Purpose::View(CREATE), Some(client)) = (form.purpose, ctx.client.cloned()) else {
            return Vec::new();
        };
        if !form.validate() {
            return Vec::new();
        }
        let starts_at = OffsetDateTime::parse(form.value(FieldId::Starts).trim(), &Rfc3339).ok();
        let spec = MaintenanceSpec {
            name: form.value(FieldId::Name).trim().to_owned(),
            scope: form.value(FieldId::Covers).parse().unwrap_or(MaintenanceScope::Node),
            target: form.value(FieldId::Target).trim().to_owned(),
            duration_s: parse_duration(form.value(FieldId::Duration)).ok(),
            starts_at,
            ends_at: None,
            recurrence: form.value(FieldId::Repeats).parse().unwrap_or(Recurrence::None),
        };
        vec![Effect::Call(form.submit("creating the window", async move {
            client
                .create_maintenance(&spec)
                .await
                .map(|w| Reply::MaintenanceChanged(Box::new(w)))
        }))]
    }

    fn on_confirm(&mut self, tag: crate::widgets::form::Ask, ctx: &Ctx) -> Vec<Effect> {
        let (END, Some(window), Some(client)) = (tag, &self.table.target, ctx.client.cloned()) else {
            return Vec::new();
        };
        let id = window.id;
        vec![Effect::Call(task("ending the window", async move {
            client
                .end_maintenance(id)
                .await
                .map(|w| Reply::MaintenanceChanged(Box::new(w)))
        }))]
    }

    fn on_reply(&mut self, reply: &Reply, _ctx: &Ctx) -> Vec<Effect> {
        match reply {
            Reply::Maintenance(list) => {
                self.table.set_rows(list.items.clone());
                Vec::new()
            }
            Reply::MaintenanceChanged(window) => vec![
                Effect::CloseOverlay,
                Effect::Info(format!("Maintenance window {} is {}.", window.name, state(window))),
                Effect::Refresh,
            ],
            _ => Vec::new(),
        }
    }

    fn table(&mut self) -> Option<&mut dyn Navigate> {
        Some(&mut *self.table)
    }
}
