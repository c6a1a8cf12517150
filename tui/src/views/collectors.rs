//! Collectors and agents: status, version, last contact and configuration state, pending
//! approvals at the top. Admins approve (`a`), revoke (`r`), delete (`d`), and create an
//! enrollment token whose join code is shown ready to copy (`t`).

use plantwatch_shared::api::{
    ApproveRequest, Component, ComponentKind, ComponentQuery, ComponentStatus, CreateTokenRequest,
    MAX_PAGE_LIMIT, Role,
};
use ratatui::Frame;
use ratatui::crossterm::event::KeyCode;
use ratatui::layout::{Constraint, Rect};

use super::resource::Resource;
use super::{Ctx, Effect, Navigate, View, ViewSpec};
use crate::cells::{config_state, parse_duration};
use crate::cells::time_cell;
use crate::event::{Reply, Task, task};
use crate::keymap::{Action, Binding, Key};
use crate::overlay::{Confirm, Overlay};
use crate::widgets::form::{Field, Form, Purpose};
use crate::widgets::table::{Column, caseless};
use plantwatch_shared::api::ErrorCode;

// The fields of this view's forms: a label is written once, and a field is read by its id.
crate::field_ids! {
    Name = "Name",
    ExpiresIn = "Expires in",
    MaxUses = "Max uses",
    Node = "Node",
    Traps = "Traps",
    Syslog = "Syslog",
}

pub const SPEC: ViewSpec = ViewSpec {
    name: "collectors",
    aliases: &["co", "agents"],
    about: "collectors and agents: approval, status, join codes",
    min_role: Role::Viewer,
    make: || Box::new(CollectorsView::new()),
};

crate::asks!(
    NEW_TOKEN,
    REVOKE,
    DELETE,
    /// The node an agent reports for, asked when one matches its host.
    AGENT_NODE,
    /// A collector's event receivers.
    RECEIVERS,
);
/// Width of a join code's lines in the overlay (it fits the 72-column overlay's value column).
const CODE_LINE: usize = 54;

fn status_rank(status: ComponentStatus) -> u8 {
    match status {
        ComponentStatus::Pending => 0,
        ComponentStatus::Offline => 1,
        ComponentStatus::Revoked => 2,
        ComponentStatus::Online => 3,
    }
}

fn name_cell(c: &Component) -> String {
    if c.is_local {
        format!("{} (server)", c.name)
    } else {
        c.name.clone()
    }
}

/// Targets of a collector, the node of an agent.
fn polls_cell(c: &Component) -> String {
    match c.kind {
        ComponentKind::Collector => format!("{} targets", c.target_count.unwrap_or(0)),
        ComponentKind::Agent => c.node.clone().unwrap_or_else(|| "-".into()),
    }
}

static COLUMNS: &[Column<Component>] = &[
    Column {
        title: "STATUS",
        sort_key: 's',
        width: Constraint::Length(8),
        cell: |c| c.status.to_string(),
        cmp: |a, b| status_rank(a.status).cmp(&status_rank(b.status)),
    },
    Column {
        title: "KIND",
        sort_key: 'k',
        width: Constraint::Length(9),
        cell: |c| c.kind.to_string(),
        cmp: |a, b| a.kind.cmp(&b.kind),
    },
    Column {
        title: "NAME",
        sort_key: 'n',
        width: Constraint::Fill(2),
        cell: name_cell,
        cmp: |a, b| caseless(&a.name, &b.name),
    },
    Column {
        title: "LAST SEEN",
        sort_key: 'l',
        width: Constraint::Length(20),
        cell: |c| time_cell(c.last_seen_at),
        cmp: |a, b| a.last_seen_at.cmp(&b.last_seen_at),
    },
    Column {
        title: "POLLS",
        sort_key: 'p',
        width: Constraint::Fill(2),
        cell: polls_cell,
        cmp: |a, b| caseless(&polls_cell(a), &polls_cell(b)),
    },
    Column {
        title: "CONFIG",
        sort_key: 'c',
        width: Constraint::Length(11),
        cell: |c| config_state(c).to_owned(),
        cmp: |a, b| a.config_in_sync.cmp(&b.config_in_sync),
    },
];

pub struct CollectorsView {
    pub table: Resource<Component>,
    /// The agent whose node the open form asks for.
    choosing_node_for: Option<i64>,
    /// The collector whose receivers the open form sets.
    editing_receivers: Option<i64>,
}

impl CollectorsView {
    pub fn new() -> Self {
        CollectorsView {
            table: Resource::new("component", COLUMNS, |c| c.id.to_string()),
            choosing_node_for: None,
            editing_receivers: None,
        }
    }

    /// The frame's title: what the view lists, and how many wait for an admin.
    fn what(&self) -> String {
        let pending = self
            .table
            .rows()
            .iter()
            .filter(|c| c.status == ComponentStatus::Pending)
            .count();
        match pending {
            0 => "Collectors and agents".to_owned(),
            n => format!("Collectors and agents, {n} waiting for approval"),
        }
    }
}

impl Default for CollectorsView {
    fn default() -> Self {
        Self::new()
    }
}

fn duration_check(value: &str) -> Result<(), String> {
    parse_duration(value).map(drop)
}

fn listens_check(value: &str) -> Result<(), String> {
    plantwatch_shared::api::parse_listens(value).map(drop)
}

fn uses_check(value: &str) -> Result<(), String> {
    match value.trim().parse::<u32>() {
        Ok(n) if n > 0 => Ok(()),
        _ => Err("a whole number, at least 1".into()),
    }
}

/// The lines of the component's detail overlay.
fn detail_lines(c: &Component) -> Vec<(String, String)> {
    let mut lines = vec![
        ("Name".into(), name_cell(c)),
        ("Kind".into(), c.kind.to_string()),
        ("Status".into(), c.status.to_string()),
        ("ID".into(), c.id.to_string()),
        ("Host".into(), c.hostname.clone().unwrap_or_else(|| "-".into())),
        ("Machine id".into(), c.machine_id.clone()),
        ("Version".into(), c.version.clone().unwrap_or_else(|| "-".into())),
        ("Enrolled".into(), time_cell(Some(c.created_at))),
        ("Token".into(), c.enrolled_with.clone().unwrap_or_else(|| "-".into())),
        ("Approved".into(), time_cell(c.approved_at)),
        ("Last seen".into(), time_cell(c.last_seen_at)),
    ];
    match c.kind {
        ComponentKind::Collector => {
            lines.push(("Targets".into(), c.target_count.unwrap_or(0).to_string()));
            lines.push(("Config".into(), config_state(c).to_owned()));
            if let Some(sha) = &c.config_sha256 {
                lines.push(("Config hash".into(), sha.chars().take(16).collect()));
            }
            if let Some(events) = c.events {
                lines.push((
                    "Events".into(),
                    format!(
                        "{} received, {} over a sender's rate dropped, {} unreadable, {} informs \
                         acknowledged",
                        events.received, events.rate_limited, events.malformed, events.acknowledged
                    ),
                ));
            }
            if !c.last_errors.is_empty() {
                lines.push(("Errors".into(), c.last_errors.join("\n")));
            }
        }
        ComponentKind::Agent => {
            lines.push(("Node".into(), c.node.clone().unwrap_or_else(|| "-".into())));
        }
    }
    lines
}

/// A long code cut into lines the overlay shows whole (whitespace is ignored when pasted).
fn chunked(code: &str) -> String {
    code.as_bytes()
        .chunks(CODE_LINE)
        .map(|part| String::from_utf8_lossy(part).into_owned())
        .collect::<Vec<_>>()
        .join("\n")
}

impl View for CollectorsView {
    fn title(&self) -> String {
        self.table.title(&self.what())
    }

    fn bindings(&self) -> Vec<Binding> {
        vec![
            Binding::new(&[Key::ch('a')], Action::Approve, "approve the selected one")
                .footer("approve")
                .role(Role::Admin),
            Binding::new(&[Key::ch('r')], Action::Revoke, "revoke its key (asks first)")
                .footer("revoke")
                .role(Role::Admin),
            Binding::new(
                &[Key::ch('d'), Key::new(KeyCode::Delete)],
                Action::Delete,
                "delete it (asks first)",
            )
            .role(Role::Admin),
            Binding::new(
                &[Key::ch('t')],
                Action::NewToken,
                "new enrollment token and join code",
            )
            .footer("join code")
            .role(Role::Admin),
            Binding::new(
                &[Key::ch('e')],
                Action::Edit,
                "a collector's event receivers (traps, syslog)",
            )
            .footer("receivers")
            .role(Role::Admin),
            Binding::new(&[Key::new(KeyCode::Enter)], Action::Open, "show details"),
        ]
    }

    fn sort_keys(&self) -> Vec<(&'static str, char)> {
        self.table.sort_keys()
    }

    fn render(&self, frame: &mut Frame, area: Rect, ctx: &Ctx) {
        self.table.render(
            frame,
            area,
            &self.what(),
            "None yet. Press t for a join code and enroll one with `plantwatch-collector enroll`.",
            ctx.theme,
        );
    }

    fn refresh(&self, ctx: &Ctx) -> Vec<Task> {
        let Some(client) = ctx.client.cloned() else {
            return Vec::new();
        };
        let query = ComponentQuery {
            limit: Some(MAX_PAGE_LIMIT),
            ..ComponentQuery::default()
        };
        vec![task("loading collectors and agents", async move {
            client.list_components(&query).await.map(Reply::Components)
        })]
    }

    fn on_action(&mut self, action: Action, ctx: &Ctx) -> Vec<Effect> {
        if action == Action::NewToken {
            let form = Form::new(
                "New enrollment token",
                Purpose::View(NEW_TOKEN),
                vec![
                    Field::text(FieldId::Name),
                    Field::text(FieldId::ExpiresIn)
                        .with_value("7d")
                        .optional()
                        .checked(duration_check),
                    Field::text(FieldId::MaxUses).optional().checked(uses_check),
                ],
            )
            .with_note("Empty: never expires / any number. The join code is shown once.");
            return vec![Effect::Open(Overlay::Form(form))];
        }
        let Some(component) = self.table.selected().cloned() else {
            return vec![Effect::Info("Nothing selected.".into())];
        };
        let Some(client) = ctx.client.cloned() else {
            return Vec::new();
        };
        let id = component.id;
        match action {
            Action::Approve => {
                if component.status != ComponentStatus::Pending {
                    return vec![Effect::Info(format!(
                        "{} is {}, not waiting for approval.",
                        component.name, component.status
                    ))];
                }
                let name = component.name.clone();
                vec![
                    Effect::Call(task("approving", async move {
                        match client.approve_component(id).await {
                            Ok(component) => Ok(Reply::ComponentChanged {
                                component: Box::new(component),
                                what: "approved",
                            }),
                            // A node matches the agent's host: someone must say which.
                            Err(error) if error.is(ErrorCode::NodeChoiceNeeded) => {
                                Ok(Reply::AgentNodeChoice {
                                    id,
                                    name,
                                    message: error.to_string(),
                                })
                            }
                            Err(error) => Err(error),
                        }
                    })),
                    Effect::Info("Approving…".into()),
                ]
            }
            Action::Revoke | Action::Delete => {
                let (title, question, yes, tag) = if action == Action::Revoke {
                    (
                        "Revoke",
                        format!(
                            "Revoke {} {}? Its key stops working at once; it must enroll again.",
                            component.kind, component.name
                        ),
                        "revoke",
                        REVOKE,
                    )
                } else {
                    (
                        "Delete",
                        format!("Delete {} {}? This cannot be undone.", component.kind, component.name),
                        "delete",
                        DELETE,
                    )
                };
                self.table.target = Some(component);
                vec![Effect::Open(Overlay::Confirm(Confirm {
                    title: title.into(),
                    question,
                    yes,
                    tag,
                }))]
            }
            Action::Open => vec![Effect::Open(Overlay::Detail {
                title: format!("{} {}", component.kind, component.name),
                lines: detail_lines(&component),
            })],
            Action::Edit if component.kind != ComponentKind::Collector => vec![Effect::Info(
                "Receivers are a collector's; agents have none.".into(),
            )],
            Action::Edit => {
                let name = component.name.clone();
                vec![Effect::Call(task("loading the receivers", async move {
                    let receivers = client.receivers(id).await?;
                    Ok(Reply::Receivers { id, name, receivers })
                }))]
            }
            _ => Vec::new(),
        }
    }

    fn on_submit(&mut self, form: &mut Form, ctx: &Ctx) -> Vec<Effect> {
        let Some(client) = ctx.client.cloned() else {
            return Vec::new();
        };
        if form.purpose == Purpose::View(AGENT_NODE) {
            let Some(id) = self.choosing_node_for.take() else {
                return Vec::new();
            };
            let node = form.value(FieldId::Node).trim().to_owned();
            let choice = if node.is_empty() || node.eq_ignore_ascii_case("new") {
                ApproveRequest {
                    new_node: true,
                    ..ApproveRequest::default()
                }
            } else {
                ApproveRequest {
                    node: Some(node),
                    ..ApproveRequest::default()
                }
            };
            return vec![Effect::Call(form.submit("approving", async move {
                let component = client.approve_agent(id, &choice).await?;
                Ok(Reply::ComponentChanged {
                    component: Box::new(component),
                    what: "approved",
                })
            }))];
        }
        if form.purpose == Purpose::View(RECEIVERS) {
            let Some(id) = self.editing_receivers.take() else {
                return Vec::new();
            };
            if !form.validate() {
                self.editing_receivers = Some(id);
                return Vec::new();
            }
            let listens = |field| {
                plantwatch_shared::api::parse_listens(form.value(field)).unwrap_or_default()
            };
            let receivers = plantwatch_shared::api::Receivers {
                traps: listens(FieldId::Traps),
                syslog: listens(FieldId::Syslog),
            };
            return vec![Effect::Call(form.submit("setting the receivers", async move {
                client.set_receivers(id, &receivers).await?;
                let component = client.get_component(id).await?;
                Ok(Reply::ComponentChanged {
                    component: Box::new(component),
                    what: "receivers set (taken with its next configuration)",
                })
            }))];
        }
        if form.purpose != Purpose::View(NEW_TOKEN) || !form.validate() {
            return Vec::new();
        }
        let expires = form.value(FieldId::ExpiresIn).trim();
        let uses = form.value(FieldId::MaxUses).trim();
        let request = CreateTokenRequest {
            name: form.value(FieldId::Name).trim().to_owned(),
            expires_in_s: (!expires.is_empty()).then(|| parse_duration(expires).ok()).flatten(),
            max_uses: uses.parse().ok(),
            server_url: Some(client.base_url().to_owned()),
        };
        vec![Effect::Call(form.submit("creating the token", async move {
            let created = client.create_token(&request).await?;
            Ok(Reply::TokenCreated(Box::new(created)))
        }))]
    }

    fn on_confirm(&mut self, tag: crate::widgets::form::Ask, ctx: &Ctx) -> Vec<Effect> {
        let (Some(component), Some(client)) = (self.table.target.clone(), ctx.client.cloned()) else {
            return Vec::new();
        };
        let id = component.id;
        let call = match tag {
            REVOKE => task("revoking", async move {
                let component = client.revoke_component(id).await?;
                Ok(Reply::ComponentChanged {
                    component: Box::new(component),
                    what: "revoked",
                })
            }),
            DELETE => task("deleting", async move {
                client.delete_component(id).await?;
                Ok(Reply::ComponentDeleted(component.name))
            }),
            _ => return Vec::new(),
        };
        vec![Effect::Call(call)]
    }

    fn on_reply(&mut self, reply: &Reply, _ctx: &Ctx) -> Vec<Effect> {
        match reply {
            Reply::Components(list) => {
                self.table.set_rows(list.items.clone());
                Vec::new()
            }
            Reply::AgentNodeChoice { id, name, message } => {
                self.choosing_node_for = Some(*id);
                let suggested = message
                    .split("node(s) ")
                    .nth(1)
                    .and_then(|rest| rest.split([',', ' ']).next())
                    .unwrap_or_default()
                    .to_owned();
                vec![Effect::Open(Overlay::Form(
                    Form::new(
                        format!("Approve agent {name}"),
                        Purpose::View(AGENT_NODE),
                        vec![Field::text(FieldId::Node).with_value(suggested).optional()],
                    )
                    .with_note(format!(
                        "{message}. Keep the node's name to report for it, or type \"new\" \
                         (or leave it empty) for a node of its own."
                    )),
                ))]
            }
            Reply::Receivers {
                id,
                name,
                receivers,
            } => {
                self.editing_receivers = Some(*id);
                let list = |l: &[plantwatch_shared::api::Listen]| {
                    l.iter().map(ToString::to_string).collect::<Vec<_>>().join(",")
                };
                vec![Effect::Open(Overlay::Form(
                    Form::new(
                        format!("Event receivers of {name}"),
                        Purpose::View(RECEIVERS),
                        vec![
                            Field::text(FieldId::Traps)
                                .with_value(list(&receivers.traps))
                                .optional()
                                .checked(listens_check),
                            Field::text(FieldId::Syslog)
                                .with_value(list(&receivers.syslog))
                                .optional()
                                .checked(listens_check),
                        ],
                    )
                    .with_note(
                        "Ports to listen on, e.g. traps udp:162, syslog udp:514,tcp:601; \
                         empty turns one off.",
                    ),
                ))]
            }
            Reply::ComponentChanged { component, what } => vec![
                Effect::Info(format!("✔ {} {} {what}.", component.kind, component.name)),
                Effect::Refresh,
            ],
            Reply::ComponentDeleted(name) => {
                vec![Effect::Info(format!("✔ {name} deleted.")), Effect::Refresh]
            }
            Reply::TokenCreated(created) => {
                let mut lines = vec![
                    ("Token".into(), created.token.name.clone()),
                    (
                        "Expires".into(),
                        created
                            .token
                            .expires_at
                            .map_or("never".into(), |at| time_cell(Some(at))),
                    ),
                    ("Join code".into(), chunked(created.join_code.expose())),
                ];
                lines.push((
                    "On the box".into(),
                    "plantwatch-collector enroll   (or plantwatch-agent enroll)\nthen paste the code; line breaks do not matter.\nIt is shown only now."
                        .into(),
                ));
                vec![
                    Effect::CloseOverlay,
                    Effect::Open(Overlay::Detail {
                        title: "Join code".into(),
                        lines,
                    }),
                ]
            }
            _ => Vec::new(),
        }
    }

    fn table(&mut self) -> Option<&mut dyn Navigate> {
        Some(&mut *self.table)
    }
}
