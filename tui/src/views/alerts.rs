//! Alerts: active ones first by severity, newest first; `h` shows history (resolved too).
//! Enter opens an alert with its history and deliveries; operators acknowledge (`a`, with a
//! comment) and take it back (`u`); `n` jumps to the alert's node.

use plantwatch_shared::api::{Alert, AlertDetail, AlertQuery, AlertState, MAX_PAGE_LIMIT, Role, Severity};
use ratatui::Frame;
use ratatui::crossterm::event::KeyCode;
use ratatui::layout::{Constraint, Rect};

use super::resource::Resource;
use super::{Ctx, Effect, Navigate, View, ViewSpec};
use crate::cli::alerts::{flags, subject, value_cell};
use crate::cells::time_cell;
use crate::event::{Reply, Task, task};
use crate::keymap::{Action, Binding, Key};
use crate::overlay::Overlay;
use crate::widgets::form::{Field, Form, Purpose};
use crate::widgets::table::{Column, caseless};

// The fields of this view's forms: a label is written once, and a field is read by its id.
crate::field_ids! {
    Comment = "Comment",
}

pub const SPEC: ViewSpec = ViewSpec {
    name: "alerts",
    aliases: &["al", "alarms"],
    about: "active alerts, acknowledge, history",
    min_role: Role::Viewer,
    make: || Box::new(AlertsView::new()),
};

crate::asks!(
    ACK,
);

/// Active before resolved, critical before warning.
fn urgency(a: &Alert) -> (u8, u8) {
    let state = match a.state {
        AlertState::Firing => 0,
        AlertState::Pending => 1,
        AlertState::Resolved => 2,
    };
    let severity = match a.severity {
        Severity::Critical => 0,
        Severity::Warning => 1,
    };
    (state, severity)
}

static COLUMNS: &[Column<Alert>] = &[
    Column {
        title: "SEV",
        sort_key: 'v',
        width: Constraint::Length(8),
        cell: |a| a.severity.to_string(),
        cmp: |a, b| urgency(b).cmp(&urgency(a)),
    },
    Column {
        title: "STATE",
        sort_key: 's',
        width: Constraint::Length(8),
        cell: |a| a.state.to_string(),
        cmp: |a, b| a.state.cmp(&b.state),
    },
    Column {
        title: "NODE",
        sort_key: 'n',
        width: Constraint::Fill(1),
        cell: subject,
        cmp: |a, b| caseless(&subject(a), &subject(b)),
    },
    Column {
        title: "RULE",
        sort_key: 'r',
        width: Constraint::Length(18),
        cell: |a| a.rule.clone(),
        cmp: |a, b| a.rule.cmp(&b.rule),
    },
    Column {
        title: "MESSAGE",
        sort_key: 'm',
        width: Constraint::Fill(2),
        cell: |a| a.message.clone(),
        cmp: |a, b| a.message.cmp(&b.message),
    },
    Column {
        title: "SINCE",
        sort_key: 't',
        width: Constraint::Length(20),
        cell: |a| time_cell(Some(a.started_at)),
        cmp: |a, b| a.started_at.cmp(&b.started_at),
    },
    Column {
        title: "FLAGS",
        sort_key: 'f',
        width: Constraint::Length(10),
        cell: flags,
        cmp: |a, b| flags(a).cmp(&flags(b)),
    },
];

pub struct AlertsView {
    pub table: Resource<Alert>,
    /// Resolved alerts too.
    pub history: bool,
    /// The marked alerts the acknowledge form is for (empty: the selected one).
    marked_for_ack: Vec<i64>,
}

impl AlertsView {
    pub fn new() -> Self {
        let mut table = Resource::new("alert", COLUMNS, |a| a.id.to_string());
        table.sort_by(0);
        table.sort_by(0);
        AlertsView {
            table,
            history: false,
            marked_for_ack: Vec::new(),
        }
    }
}

impl Default for AlertsView {
    fn default() -> Self {
        Self::new()
    }
}

/// The lines of an alert's detail overlay: its fields, history and deliveries.
pub fn detail_lines(detail: &AlertDetail) -> Vec<(String, String)> {
    let a = &detail.alert;
    let mut lines = vec![
        ("Rule".into(), a.rule.clone()),
        ("On".into(), subject(a)),
        ("State".into(), format!("{} {}", a.severity, a.state)),
        ("Message".into(), a.message.clone()),
        ("Value".into(), value_cell(a.value)),
        ("Started".into(), time_cell(Some(a.started_at))),
    ];
    if !a.series.is_empty() {
        lines.insert(2, ("Series".into(), a.series.clone()));
    }
    if !flags(a).is_empty() {
        lines.push(("Flags".into(), flags(a)));
    }
    if let Some(by) = &a.acked_by {
        let comment = a.ack_comment.clone().map(|c| format!(": {c}")).unwrap_or_default();
        lines.push((
            "Acked".into(),
            format!("by {by} at {}{comment}", time_cell(a.acked_at)),
        ));
    }
    for (index, event) in detail.events.iter().enumerate() {
        let who = event.actor.clone().map(|w| format!(" by {w}")).unwrap_or_default();
        let comment = event.comment.clone().map(|c| format!(" ({c})")).unwrap_or_default();
        lines.push((
            if index == 0 { "History" } else { "" }.into(),
            format!("{} {}{who}{comment}", time_cell(Some(event.at)), event.event),
        ));
    }
    for (index, d) in detail.deliveries.iter().enumerate() {
        let error = d.last_error.clone().map(|e| format!(": {e}")).unwrap_or_default();
        lines.push((
            if index == 0 { "Notified" } else { "" }.into(),
            format!(
                "{} {} {} to {} after {} attempt(s){error}",
                time_cell(Some(d.created_at)),
                d.event,
                d.state,
                d.channel,
                d.attempts
            ),
        ));
    }

    lines
}

impl View for AlertsView {
    fn title(&self) -> String {
        self.table
            .title(if self.history { "Alerts (history)" } else { "Alerts" })
    }

    fn bindings(&self) -> Vec<Binding> {
        vec![
            Binding::new(&[Key::new(KeyCode::Enter)], Action::Open, "show history and deliveries")
                .footer("details"),
            Binding::new(&[Key::ch(' ')], Action::Mark, "mark or unmark for acknowledging several")
                .role(Role::Operator),
            Binding::new(&[Key::ch('*')], Action::MarkAll, "mark every alert shown, or unmark them")
                .role(Role::Operator),
            Binding::new(&[Key::ch('a')], Action::Acknowledge, "acknowledge (marked ones or this one)")
                .footer("ack")
                .role(Role::Operator),
            Binding::new(&[Key::ch('u')], Action::Unacknowledge, "take the acknowledgement back")
                .role(Role::Operator),
            Binding::new(&[Key::ch('h')], Action::History, "show resolved alerts too (again: active only)")
                .footer("history"),
            Binding::new(&[Key::ch('n')], Action::JumpToNode, "go to the alert's node")
                .footer("node"),
        ]
    }

    fn sort_keys(&self) -> Vec<(&'static str, char)> {
        self.table.sort_keys()
    }

    fn render(&self, frame: &mut Frame, area: Rect, ctx: &Ctx) {
        let what = if self.history { "Alerts (history)" } else { "Alerts" };
        self.table
            .render(frame, area, what, "No active alerts: all quiet.", ctx.theme);
    }

    fn refresh(&self, ctx: &Ctx) -> Vec<Task> {
        let Some(client) = ctx.client.cloned() else {
            return Vec::new();
        };
        let query = AlertQuery {
            state: Some(if self.history { "all" } else { "active" }.into()),
            limit: Some(MAX_PAGE_LIMIT),
            ..AlertQuery::default()
        };
        vec![task("loading alerts", async move {
            client.list_alerts(&query).await.map(Reply::Alerts)
        })]
    }

    fn on_action(&mut self, action: Action, ctx: &Ctx) -> Vec<Effect> {
        if action == Action::History {
            self.history = !self.history;
            return vec![Effect::Refresh];
        }
        if action == Action::Mark {
            self.table.toggle_mark();
            return Vec::new();
        }
        if action == Action::MarkAll {
            self.table.toggle_mark_all();
            return Vec::new();
        }
        let marked: Vec<i64> = self.table.marked().iter().map(|a| a.id).collect();
        if action == Action::Acknowledge && !marked.is_empty() {
            self.marked_for_ack = marked;
            return vec![Effect::Open(Overlay::Form(
                Form::new(
                    format!("Acknowledge {} alerts", self.marked_for_ack.len()),
                    Purpose::View(ACK),
                    vec![Field::text(FieldId::Comment).optional()],
                )
                .with_note(format!(
                    "Alerts {}",
                    self.marked_for_ack
                        .iter()
                        .map(i64::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                )),
            ))];
        }
        let Some(alert) = self.table.selected().cloned() else {
            return vec![Effect::Info("No alert selected.".into())];
        };
        let Some(client) = ctx.client.cloned() else {
            return Vec::new();
        };
        let effects = match action {
            Action::Open => {
                let id = alert.id;
                vec![Effect::Call(task("loading the alert", async move {
                    client.get_alert(id).await.map(|d| Reply::AlertDetail(Box::new(d)))
                }))]
            }
            Action::Acknowledge => {
                self.marked_for_ack.clear();
                vec![Effect::Open(Overlay::Form(
                Form::new(
                    format!("Acknowledge alert {}", alert.id),
                    Purpose::View(ACK),
                    vec![Field::text(FieldId::Comment).optional()],
                )
                .with_note(format!("{} on {}: {}", alert.rule, subject(&alert), alert.message)),
            ))]
            }
            Action::Unacknowledge => {
                let id = alert.id;
                vec![Effect::Call(task("unacknowledging the alert", async move {
                    client
                        .unack_alert(id)
                        .await
                        .map(|a| Reply::AlertChanged { alert: Box::new(a), what: "unacknowledged" })
                }))]
            }
            Action::JumpToNode => match &alert.node {
                Some(node) => vec![Effect::Goto {
                    view: "nodes",
                    filter: node.clone(),
                }],
                None => vec![Effect::Info("That alert is about a collector, not a node.".into())],
            },
            _ => return Vec::new(),
        };
        self.table.target = Some(alert);
        effects
    }

    fn on_submit(&mut self, form: &mut Form, ctx: &Ctx) -> Vec<Effect> {
        let comment = Some(form.value(FieldId::Comment).trim().to_owned()).filter(|c| !c.is_empty());
        if let (Purpose::View(ACK), false, Some(client)) =
            (form.purpose, self.marked_for_ack.is_empty(), ctx.client.cloned())
        {
            let ids = std::mem::take(&mut self.marked_for_ack);
            self.table.clear_marks();
            // One request, one transaction; alerts resolved meanwhile are skipped and counted.
            return vec![Effect::Call(form.submit("acknowledging the alerts", async move {
                let answer = client.ack_alerts(&ids, comment).await?;
                Ok(Reply::AlertsAcked {
                    count: answer.acked.len(),
                    skipped: answer.skipped.len(),
                    last: answer.acked.last().cloned().map(Box::new),
                })
            }))];
        }
        let (Purpose::View(ACK), Some(target), Some(client)) =
            (form.purpose, &self.table.target, ctx.client.cloned())
        else {
            return Vec::new();
        };
        let id = target.id;
        vec![Effect::Call(form.submit("acknowledging the alert", async move {
            client
                .ack_alert(id, comment)
                .await
                .map(|a| Reply::AlertChanged { alert: Box::new(a), what: "acknowledged" })
        }))]
    }

    fn on_reply(&mut self, reply: &Reply, _ctx: &Ctx) -> Vec<Effect> {
        match reply {
            Reply::Alerts(list) => {
                self.table.set_rows(list.items.clone());
                Vec::new()
            }
            Reply::AlertDetail(detail) => vec![Effect::Open(Overlay::Detail {
                title: format!("Alert {}", detail.alert.id),
                lines: detail_lines(detail),
            })],
            Reply::AlertChanged { alert, what } => vec![
                Effect::CloseOverlay,
                Effect::Info(format!("Alert {} {what}.", alert.id)),
                Effect::Refresh,
            ],
            Reply::AlertsAcked { count, skipped, .. } => vec![
                Effect::CloseOverlay,
                Effect::Info(if *skipped == 0 {
                    format!("{count} alerts acknowledged.")
                } else {
                    format!("{count} alerts acknowledged; {skipped} resolved meanwhile, left alone.")
                }),
                Effect::Refresh,
            ],
            _ => Vec::new(),
        }
    }

    fn table(&mut self) -> Option<&mut dyn Navigate> {
        Some(&mut *self.table)
    }
}
