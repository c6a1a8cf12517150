//! Nodes: the inventory. Filter and sort; operators create, edit and delete (with a
//! confirmation), mark rows with Space and attach a credential to them; everyone opens a node's
//! details: its fields, its credentials (names and kinds, never secrets), its parent and its
//! history.

use plantwatch_shared::api::{
    AuditEntry, BulkNodesRequest, ComponentKind, ComponentQuery, CertificateFinding, CertificateQuery, Check, CheckSpec, Credential, CredentialQuery,
    HostWatch, ListResponse, MAX_PAGE_LIMIT, Node, NodeQuery, NodeSpec, NodeType, Role, UpdateNodeRequest,
};
use plantwatch_shared::rules::{
    MAX_NODE_NAME_LEN, address_problem, interval_problem, name_problem, notes_problem, split_list,
    tag_problem,
};
use plantwatch_shared::{Client, Error};
use ratatui::Frame;
use ratatui::crossterm::event::KeyCode;
use ratatui::layout::{Constraint, Rect};

use super::resource::Resource;
use super::{Ctx, Effect, Navigate, View, ViewSpec};
use crate::cells::time_cell;
use crate::event::{Reply, Task, task};
use crate::keymap::{Action, Binding, Key};
use crate::overlay::{Confirm, Overlay};
use crate::bulk::{self, BulkEdit};
use crate::widgets::node_charts::{NodeCharts, Outcome};
use crate::widgets::form::{Field, Form, Purpose};
use crate::widgets::table::{Column, caseless};

// The fields of this view's forms: a label is written once, and a field is read by its id.
crate::field_ids! {
    Name = "Name",
    Address = "Address",
    Type = "Type",
    Tags = "Tags",
    Credentials = "Credentials",
    IntervalS = "Interval s",
    Credential = "Credential",
    Priority = "Priority",
    Collector = "Collector",
    Template = "Template",
    Parent = "Parent",
    Notes = "Notes",
    Check = "Check",
    AddTags = "Add tags",
    RemoveTags = "Remove tags",
    Services = "Services",
    Processes = "Processes",
}

pub const SPEC: ViewSpec = ViewSpec {
    name: "nodes",
    aliases: &["no", "node", "inventory"],
    about: "devices and servers being monitored",
    min_role: Role::Viewer,
    make: || Box::new(NodesView::new()),
};

crate::asks!(
    CREATE,
    EDIT,
    DELETE,
    ATTACH,
    ADD_CHECK,
    BULK_EDIT,
    BULK_CONFIRM,
    MUST_RUN,
);

const TYPES: &[&str] = &[
    "other", "network", "server", "storage", "ups", "plc", "hmi", "printer",
];

/// Time of day (UTC) of a recent moment: when a node was last polled.
fn clock_cell(at: Option<time::OffsetDateTime>) -> String {
    let format = time::macros::format_description!("[hour]:[minute]:[second]");
    at.and_then(|t| t.format(&format).ok())
        .unwrap_or_else(|| "-".to_owned())
}

fn or_dash(value: Option<&str>) -> String {
    value.unwrap_or("-").to_owned()
}

/// The STATUS column's index: the default sort.
const STATUS_COLUMN: usize = 1;

static COLUMNS: &[Column<Node>] = &[
    Column {
        title: "NAME",
        sort_key: 'n',
        width: Constraint::Fill(2),
        cell: |n| n.name.clone(),
        cmp: |a, b| caseless(&a.name, &b.name),
    },
    Column {
        title: "STATUS",
        sort_key: 's',
        width: Constraint::Length(11),
        cell: |n| n.status.to_string(),
        // Problems first (critical, offline, warning), ties by name.
        cmp: |a, b| {
            a.status
                .urgency()
                .cmp(&b.status.urgency())
                .then_with(|| caseless(&a.name, &b.name))
        },
    },
    Column {
        title: "POLLED",
        sort_key: 'l',
        width: Constraint::Length(8),
        cell: |n| clock_cell(n.last_sample_at),
        cmp: |a, b| a.last_sample_at.cmp(&b.last_sample_at),
    },
    Column {
        title: "RTT",
        sort_key: 'r',
        width: Constraint::Length(7),
        cell: |n| n.rtt_ms.map_or_else(|| "-".to_owned(), |ms| format!("{ms:.1} ms")),
        cmp: |a, b| a.rtt_ms.partial_cmp(&b.rtt_ms).unwrap_or(std::cmp::Ordering::Equal),
    },
    Column {
        title: "ADDRESS",
        sort_key: 'a',
        width: Constraint::Fill(2),
        cell: |n| n.address.clone(),
        cmp: |a, b| caseless(&a.address, &b.address),
    },
    Column {
        title: "TYPE",
        sort_key: 't',
        width: Constraint::Length(8),
        cell: |n| n.node_type.to_string(),
        cmp: |a, b| a.node_type.cmp(&b.node_type),
    },
    Column {
        title: "COLLECTOR",
        sort_key: 'c',
        width: Constraint::Fill(1),
        cell: |n| or_dash(n.collector.as_deref()),
        cmp: |a, b| a.collector.cmp(&b.collector),
    },
    Column {
        title: "TAGS",
        sort_key: 'x',
        width: Constraint::Fill(1),
        cell: |n| n.tags.join(";"),
        cmp: |a, b| a.tags.cmp(&b.tags),
    },
];

pub struct NodesView {
    pub table: Resource<Node>,
    /// Credential names and ids, for the attach form.
    credentials: Vec<Credential>,
    /// The nodes the attach form attaches to.
    attach_to: Vec<Node>,
    /// The charts of one node, shown instead of the table while open.
    pub charts: Option<NodeCharts>,
    /// The change to many nodes waiting for its confirmation.
    bulk: Option<BulkNodesRequest>,
    /// Template and collector names, for the node form's completion.
    templates: Vec<String>,
    collectors: Vec<String>,
}

impl NodesView {
    pub fn new() -> Self {
        let mut table = Resource::new("node", COLUMNS, |n: &Node| n.id.to_string());
        // Problems first, as an engineer opening the list wants them.
        table.table.sort_by(STATUS_COLUMN);
        NodesView {
            table,
            credentials: Vec::new(),
            attach_to: Vec::new(),
            charts: None,
            bulk: None,
            templates: Vec::new(),
            collectors: Vec::new(),
        }
    }
}

impl Default for NodesView {
    fn default() -> Self {
        Self::new()
    }
}

fn name_check(value: &str) -> Result<(), String> {
    name_problem(value, MAX_NODE_NAME_LEN).map_or(Ok(()), Err)
}

fn address_check(value: &str) -> Result<(), String> {
    address_problem(value).map_or(Ok(()), Err)
}

fn tags_check(value: &str) -> Result<(), String> {
    split_tags(value)
        .iter()
        .find_map(|t| tag_problem(t))
        .map_or(Ok(()), Err)
}

fn interval_check(value: &str) -> Result<(), String> {
    let seconds: u32 = value
        .trim()
        .parse()
        .map_err(|_| "a whole number of seconds".to_owned())?;
    interval_problem(seconds).map_or(Ok(()), Err)
}

fn notes_check(value: &str) -> Result<(), String> {
    notes_problem(value).map_or(Ok(()), Err)
}

fn check_check(value: &str) -> Result<(), String> {
    value.parse::<CheckSpec>().map(drop)
}

fn priority_check(value: &str) -> Result<(), String> {
    value
        .trim()
        .parse::<i64>()
        .map(drop)
        .map_err(|_| "a whole number (lower is tried first)".to_owned())
}

/// Tags typed as `a;b`, `a, b` or `a b`.
fn split_tags(value: &str) -> Vec<String> {
    value
        .split([';', ',', ' '])
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
        .collect()
}

fn optional(value: &str) -> Option<String> {
    Some(value.trim().to_owned()).filter(|v| !v.is_empty())
}

/// The node form, filled from `spec`.
/// The names the node form's fields complete to: the real nodes, collectors, templates and
/// credentials.
#[derive(Debug, Clone, Default)]
pub struct Names {
    pub nodes: Vec<String>,
    pub collectors: Vec<String>,
    pub templates: Vec<String>,
    pub credentials: Vec<String>,
}

fn node_form(title: String, purpose: Purpose, spec: &NodeSpec, names: &Names) -> Form {
    let node_type = spec.node_type.unwrap_or(NodeType::Other).as_str();
    let text = |label: FieldId, value: Option<&String>| {
        Field::text(label)
            .with_value(value.cloned().unwrap_or_default())
            .optional()
    };
    Form::new(
        title,
        purpose,
        vec![
            Field::text(FieldId::Name)
                .with_value(spec.name.clone())
                .checked(name_check),
            Field::text(FieldId::Address)
                .with_value(spec.address.clone())
                .checked(address_check),
            Field::choice(FieldId::Type, TYPES, node_type),
            Field::text(FieldId::Tags)
                .with_value(spec.tags.join(";"))
                .optional()
                .checked(tags_check),
            text(FieldId::Parent, spec.parent.as_ref()).suggest(names.nodes.clone()),
            text(FieldId::Collector, spec.collector.as_ref()).suggest(names.collectors.clone()),
            text(FieldId::Template, spec.template.as_ref()).suggest(names.templates.clone()),
            Field::text(FieldId::Credentials)
                .with_value(spec.credentials.join(";"))
                .optional()
                .suggest(names.credentials.clone()),
            Field::text(FieldId::IntervalS)
                .with_value(spec.interval_s.map(|s| s.to_string()).unwrap_or_default())
                .optional()
                .checked(interval_check),
            text(FieldId::Notes, spec.notes.as_ref()).checked(notes_check),
        ],
    )
}

/// The document a filled node form describes.
fn spec_of(form: &Form) -> NodeSpec {
    NodeSpec {
        name: form.value(FieldId::Name).trim().to_owned(),
        address: form.value(FieldId::Address).trim().to_owned(),
        node_type: form.value(FieldId::Type).parse().ok(),
        tags: split_tags(form.value(FieldId::Tags)),
        collector: optional(form.value(FieldId::Collector)),
        template: optional(form.value(FieldId::Template)),
        credentials: split_list(form.value(FieldId::Credentials)),
        parent: optional(form.value(FieldId::Parent)),
        interval_s: form.value(FieldId::IntervalS).trim().parse().ok(),
        // Set from the command line (`nodes update --modbus-unit`); the form leaves it be.
        modbus_unit: None,
        notes: optional(form.value(FieldId::Notes)),
        checks: None,
    }
}

/// Only what changed from `before` to `after`.
fn changes(before: &NodeSpec, after: NodeSpec) -> UpdateNodeRequest {
    let changed = |a: &Option<String>, b: Option<String>| (*a != b).then_some(b);
    UpdateNodeRequest {
        name: (before.name != after.name).then_some(after.name),
        address: (before.address != after.address).then_some(after.address),
        node_type: (before.node_type != after.node_type)
            .then_some(after.node_type)
            .flatten(),
        tags: (before.tags != after.tags).then_some(after.tags),
        collector: changed(&before.collector, after.collector),
        template: changed(&before.template, after.template),
        credentials: (before.credentials != after.credentials).then_some(after.credentials),
        parent: changed(&before.parent, after.parent),
        interval_s: (before.interval_s != after.interval_s).then_some(after.interval_s),
        modbus_unit: None,
        notes: changed(&before.notes, after.notes),
    }
}

/// Every node, a page at a time.
pub async fn all_nodes(client: &Client) -> Result<ListResponse<Node>, Error> {
    let mut query = NodeQuery {
        limit: Some(MAX_PAGE_LIMIT),
        offset: Some(0),
        ..NodeQuery::default()
    };
    let mut all = client.list_nodes(&query).await?;
    while (all.items.len() as u64) < all.total {
        query.offset = u32::try_from(all.items.len()).ok();
        let page = client.list_nodes(&query).await?;
        if page.items.is_empty() {
            break;
        }
        all.items.extend(page.items);
    }
    Ok(all)
}

/// Most objects of a vCenter listed in its node's details.
const MAX_VSPHERE_LINES: usize = 200;

/// A vCenter's inventory: counts, then hosts, VMs and datastores one a line with their state,
/// problems first (disconnected, powered off, inaccessible, gone).
/// An agent's machine (`Host`) and what the node must run (`Must run`), when there is any.
pub fn host_lines(host: &plantwatch_shared::api::NodeHost) -> Vec<(String, String)> {
    let mut lines = Vec::new();
    if let Some(inventory) = &host.inventory {
        let mut parts: Vec<String> = Vec::new();
        let os = [&inventory.os, &inventory.os_build]
            .into_iter()
            .flatten()
            .cloned()
            .collect::<Vec<_>>();
        if !os.is_empty() {
            parts.push(os.join(" build "));
        }
        let hardware = [&inventory.manufacturer, &inventory.model]
            .into_iter()
            .flatten()
            .cloned()
            .collect::<Vec<_>>();
        if !hardware.is_empty() {
            parts.push(hardware.join(" "));
        }
        if let Some(serial) = &inventory.serial {
            parts.push(format!("serial {serial}"));
        }
        if let Some(n) = inventory.hotfixes {
            parts.push(format!("{n} hotfixes"));
        }
        if let Some(kernel) = &inventory.kernel {
            parts.push(format!("kernel {kernel}"));
        }
        if let Some(problem) = &inventory.problem {
            parts.push(format!("({problem})"));
        }
        lines.push(("Host".into(), parts.join(" · ")));
    }
    let watch = &host.watch;
    if !watch.services.is_empty() || !watch.processes.is_empty() {
        let mut parts = Vec::new();
        if !watch.services.is_empty() {
            parts.push(format!("services {}", watch.services.join(", ")));
        }
        if !watch.processes.is_empty() {
            parts.push(format!("processes {}", watch.processes.join(", ")));
        }
        lines.push(("Must run".into(), parts.join(" · ")));
    }
    lines
}

pub fn vsphere_text(objects: &[plantwatch_shared::api::vsphere::VsphereObject]) -> String {
    if objects.is_empty() {
        return "- no inventory yet (the collector polls every 300 s unless the node's \
                interval says)"
            .into();
    }
    let count = |kind: &str| objects.iter().filter(|o| o.kind == kind && o.state != "gone").count();
    let on = objects
        .iter()
        .filter(|o| o.kind == "vm" && o.state == "poweredOn")
        .count();
    let gone = objects.iter().filter(|o| o.state == "gone").count();
    let mut lines = vec![format!(
        "{} hosts, {} VMs ({on} on), {} datastores{}",
        count("host"),
        count("vm"),
        count("datastore"),
        if gone > 0 { format!(", {gone} gone") } else { String::new() }
    )];
    let fine = |o: &&plantwatch_shared::api::vsphere::VsphereObject| {
        matches!(o.state.as_str(), "poweredOn" | "accessible")
    };
    let mut sorted: Vec<_> = objects.iter().collect();
    // Problems first, then hosts, VMs, datastores, each by name.
    let rank = |kind: &str| match kind {
        "host" => 0,
        "vm" => 1,
        _ => 2,
    };
    sorted.sort_by(|a, b| {
        (fine(a), rank(&a.kind), &a.name).cmp(&(fine(b), rank(&b.kind), &b.name))
    });
    for object in sorted.iter().take(MAX_VSPHERE_LINES) {
        lines.push(format!(
            "{:<9} {:<24} {:<12} {}",
            object.kind, object.name, object.state, object.detail
        ));
    }
    if objects.len() > MAX_VSPHERE_LINES {
        lines.push(format!(
            "… and {} more (plantwatch nodes vsphere NODE)",
            objects.len() - MAX_VSPHERE_LINES
        ));
    }
    lines.join("\n")
}

/// A node's checks, one a line, each `tls` check with what it found.
pub fn checks_text(checks: &[Check], certificates: &[CertificateFinding]) -> String {
    if checks.is_empty() {
        return "- (plantwatch checks add NODE tls:443 http:80/ tcp:502)".into();
    }
    let now = time::OffsetDateTime::now_utc();
    checks
        .iter()
        .map(|check| {
            let found = certificates.iter().find(|c| c.check_id == check.id);
            let what = match found {
                None => String::new(),
                Some(cert) => match (&cert.error, cert.days_left(now)) {
                    (Some(error), _) => format!(" — {error}"),
                    (None, Some(days)) => format!(
                        " — {days} days left, {}, {}{}",
                        if cert.trusted { "trusted" } else { "untrusted" },
                        if cert.name_matches { "name ok" } else { "WRONG NAME" },
                        cert.tls_version
                            .as_deref()
                            .map(|v| format!(", {v}"))
                            .unwrap_or_default()
                    ),
                    (None, None) => String::new(),
                },
            };
            format!("{} (every {} s){what}", check.spec, check.spec.interval_s())
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The detail overlay's lines of a node.
pub fn detail_lines(node: &Node, history: &[AuditEntry]) -> Vec<(String, String)> {
    let credentials = if node.credentials.is_empty() {
        "-".to_owned()
    } else {
        node.credentials
            .iter()
            .map(|c| format!("{} ({}, secret hidden)", c.name, c.kind))
            .collect::<Vec<_>>()
            .join("\n")
    };
    let status = match &node.status_reason {
        Some(reason) => format!("{} — {reason}", node.status),
        None => node.status.to_string(),
    };
    let mut lines = vec![
        ("Name", node.name.clone()),
        ("Address", node.address.clone()),
        ("Type", node.node_type.to_string()),
        ("Status", status),
        ("Tags", node.tags.join(";")),
        ("Parent", or_dash(node.parent.as_deref())),
        ("Collector", or_dash(node.collector.as_deref())),
        ("Template", or_dash(node.template.as_deref())),
        (
            "Interval",
            node.interval_s
                .map_or("template default".to_owned(), |s| format!("{s} s")),
        ),
        ("Credentials", credentials),
        ("Notes", or_dash(node.notes.as_deref())),
        ("Created", time_cell(Some(node.created_at))),
    ];
    if let Some(unit) = node.modbus_unit {
        lines.insert(9, ("Modbus unit", unit.to_string()));
    }
    let history = history
        .iter()
        .take(5)
        .map(|e| format!("{}  {}  {}", time_cell(Some(e.at)), e.actor, e.action))
        .collect::<Vec<_>>()
        .join("\n");
    lines.push(("History", if history.is_empty() { "-".into() } else { history }));
    lines
        .into_iter()
        .map(|(label, value)| (label.to_owned(), value))
        .collect()
}

impl View for NodesView {
    fn title(&self) -> String {
        self.table.title("Nodes")
    }

    fn bindings(&self) -> Vec<Binding> {
        if let Some(charts) = &self.charts {
            return charts.bindings();
        }
        vec![
            Binding::new(&[Key::ch('c')], Action::Create, "add a node")
                .footer("create")
                .role(Role::Operator),
            Binding::new(&[Key::ch('e')], Action::Edit, "edit the node")
                .footer("edit")
                .role(Role::Operator),
            Binding::new(
                &[Key::ch('d'), Key::new(KeyCode::Delete)],
                Action::Delete,
                "delete the node (asks first)",
            )
            .footer("delete")
            .role(Role::Operator),
            Binding::new(
                &[Key::ch(' ')],
                Action::Mark,
                "mark or unmark the node for attach",
            )
            .role(Role::Operator),
            Binding::new(
                &[Key::ch('*')],
                Action::MarkAll,
                "mark every node shown (the filter's), or unmark them",
            )
            .role(Role::Operator),
            Binding::new(
                &[Key::ch('b')],
                Action::BulkEdit,
                "change the marked nodes: tags, template, interval…",
            )
            .footer("bulk")
            .role(Role::Operator),
            Binding::new(
                &[Key::ch('a')],
                Action::Attach,
                "attach a credential to the marked nodes (or this one)",
            )
            .footer("attach")
            .role(Role::Operator),
            Binding::new(
                &[Key::ch('s')],
                Action::AddCheck,
                "add a service check: tls:443, http:80/health, tcp:502",
            )
            .role(Role::Operator),
            Binding::new(
                &[Key::ch('w')],
                Action::MustRun,
                "what it must run: Windows services, processes",
            )
            .role(Role::Operator),
            Binding::new(
                &[Key::new(KeyCode::Enter)],
                Action::Open,
                "details: credentials, parent, history, checks",
            )
            .footer("details"),
            Binding::new(
                &[Key::ch('m')],
                Action::Charts,
                "charts: ping, CPU, memory, disks, traffic, interfaces",
            )
            .footer("charts"),
        ]
    }

    fn sort_keys(&self) -> Vec<(&'static str, char)> {
        self.table.sort_keys()
    }

    fn render(&self, frame: &mut Frame, area: Rect, ctx: &Ctx) {
        if let Some(charts) = &self.charts {
            charts.render(frame, area, ctx.theme);
            return;
        }
        let empty = if ctx.role() >= Role::Operator {
            "No nodes yet: c adds one, or import a file with `plantwatch nodes import`."
        } else {
            "No nodes yet."
        };
        self.table.render(frame, area, "Nodes", empty, ctx.theme);
    }

    fn refresh(&self, ctx: &Ctx) -> Vec<Task> {
        let Some(client) = ctx.client.cloned() else {
            return Vec::new();
        };
        let credentials = client.clone();
        let (templates, collectors) = (client.clone(), client.clone());
        let mut tasks: Vec<Task> = self
            .charts
            .as_ref()
            .map(|charts| load_charts(&client, charts, ctx))
            .into_iter()
            .collect();
        tasks.extend([
            task("loading the nodes", async move {
                all_nodes(&client).await.map(Reply::Nodes)
            }),
            task("loading the templates", async move {
                templates.list_templates().await.map(Reply::Templates)
            }),
            task("loading the collectors", async move {
                let query = ComponentQuery {
                    kind: Some(ComponentKind::Collector),
                    ..ComponentQuery::default()
                };
                collectors.list_components(&query).await.map(Reply::Components)
            }),
            task("loading the credentials", async move {
                let query = CredentialQuery {
                    limit: Some(MAX_PAGE_LIMIT),
                    ..CredentialQuery::default()
                };
                credentials
                    .list_credentials(&query)
                    .await
                    .map(Reply::Credentials)
            }),
        ]);
        tasks
    }

    fn on_action(&mut self, action: Action, ctx: &Ctx) -> Vec<Effect> {
        match action {
            _ if self.charts.is_some() => return self.charts_action(action, ctx),
            Action::Create => {
                let form = node_form(
                    "New node".into(),
                    Purpose::View(CREATE),
                    &NodeSpec::default(),
                    &self.names(),
                );
                return vec![Effect::Open(Overlay::Form(form))];
            }
            Action::Mark => {
                self.table.toggle_mark();
                return Vec::new();
            }
            Action::MarkAll => {
                self.table.toggle_mark_all();
                return Vec::new();
            }
            Action::BulkEdit => {
                let count = self.table.marked().len();
                if count == 0 {
                    return vec![Effect::Info(
                        "Mark nodes first: Space marks one, * every node shown.".into(),
                    )];
                }
                return vec![Effect::Open(Overlay::Form(bulk_form(count, &self.names())))];
            }
            Action::Delete if !self.table.marked().is_empty() => {
                let marked: Vec<&Node> = self.table.marked();
                let names: Vec<&str> = marked.iter().map(|n| n.name.as_str()).collect();
                self.bulk = Some(BulkNodesRequest {
                    delete: marked.iter().map(|n| n.id).collect(),
                    ..BulkNodesRequest::default()
                });
                return vec![Effect::Open(Overlay::Confirm(Confirm {
                    title: format!("Delete {} marked nodes", names.len()),
                    question: format!(
                        "Delete {}? Their collectors stop polling them and their children lose \
                         their parent. This cannot be undone.",
                        names.join(", ")
                    ),
                    yes: "delete",
                    tag: BULK_CONFIRM,
                }))];
            }
            Action::Attach => {
                let marked: Vec<Node> = self.table.marked().into_iter().cloned().collect();
                self.attach_to = if marked.is_empty() {
                    self.table.selected().cloned().into_iter().collect()
                } else {
                    marked
                };
                if self.attach_to.is_empty() {
                    return vec![Effect::Info("No node selected.".into())];
                }
                let names: Vec<&str> = self.credentials.iter().map(|c| c.name.as_str()).collect();
                let note = if names.is_empty() {
                    "There are no credentials yet: an admin adds them in :credentials.".to_owned()
                } else {
                    format!("Credentials: {}", names.join(", "))
                };
                let form = Form::new(
                    format!("Attach a credential to {} node(s)", self.attach_to.len()),
                    Purpose::View(ATTACH),
                    vec![
                        Field::text(FieldId::Credential),
                        Field::text(FieldId::Priority).optional().checked(priority_check),
                    ],
                )
                .with_note(note);
                return vec![Effect::Open(Overlay::Form(form))];
            }
            _ => {}
        }
        let Some(node) = self.table.selected().cloned() else {
            return vec![Effect::Info("No node selected.".into())];
        };
        let effects = match action {
            Action::Edit => {
                let form = node_form(
                    format!("Edit {}", node.name),
                    Purpose::View(EDIT),
                    &NodeSpec::of(&node),
                    &self.names(),
                );
                vec![Effect::Open(Overlay::Form(form))]
            }
            Action::AddCheck => {
                let form = Form::new(
                    format!("Add a check to {}", node.name),
                    Purpose::View(ADD_CHECK),
                    vec![
                        Field::text(FieldId::Check).checked(check_check),
                        Field::text(FieldId::IntervalS)
                            .optional()
                            .checked(interval_check),
                    ],
                )
                .with_note(
                    "tls:443, tls:8443@name, http:80/health, https:8443/login or tcp:502. \
                     The interval defaults to 300 s for tls, 60 s for the others.",
                );
                vec![Effect::Open(Overlay::Form(form))]
            }
            Action::MustRun => {
                let Some(client) = ctx.client.cloned() else {
                    return Vec::new();
                };
                let (id, name) = (node.id, node.name.clone());
                vec![Effect::Call(task("loading what the node must run", async move {
                    let host = client.node_host(id).await?;
                    Ok(Reply::NodeHost {
                        node: name,
                        host: Box::new(host),
                        saved: false,
                    })
                }))]
            }
            Action::Delete => self.table.ask_delete(
                &format!("{} ({})", node.name, node.address),
                "Its collector stops polling it and its children lose their parent. This cannot \
                 be undone.",
                DELETE,
            ),
            Action::Charts => {
                let charts = NodeCharts::new(node.clone());
                let effects = match ctx.client {
                    Some(client) => {
                        let rules = client.clone();
                        vec![
                            Effect::Call(load_charts(client, &charts, ctx)),
                            // The thresholds a picked chart draws.
                            Effect::Call(task("loading the rules", async move {
                                rules.list_rules().await.map(Reply::Rules)
                            })),
                        ]
                    }
                    None => Vec::new(),
                };
                self.charts = Some(charts);
                effects
            }
            Action::Open => {
                let Some(client) = ctx.client.cloned() else {
                    return Vec::new();
                };
                let id = node.id;
                vec![
                    Effect::Call(task("loading the node", async move {
                        let node = client.get_node(id).await?;
                        let history = client.node_history(id).await?.items;
                        let checks = client.checks(id).await?.items;
                        let certificates = client
                            .certificates(&CertificateQuery {
                                node_id: Some(id),
                                ..CertificateQuery::default()
                            })
                            .await?
                            .items;
                        let vsphere = if node.node_type.is_vsphere() {
                            client.vsphere_objects(id).await?.items
                        } else {
                            Vec::new()
                        };
                        let host = Box::new(client.node_host(id).await?);
                        Ok(Reply::NodeDetail {
                            node: Box::new(node),
                            history,
                            checks,
                            certificates,
                            vsphere,
                            host,
                        })
                    })),
                    Effect::Info("Loading…".into()),
                ]
            }
            _ => return Vec::new(),
        };
        self.table.target = Some(node);
        effects
    }

    fn on_submit(&mut self, form: &mut Form, ctx: &Ctx) -> Vec<Effect> {
        let Some(client) = ctx.client.cloned() else {
            return Vec::new();
        };
        if !form.validate() {
            return Vec::new();
        }
        let call = match form.purpose {
            Purpose::View(CREATE) => {
                let spec = spec_of(form);
                form.submit("creating the node", async move {
                    let node = client.create_node(&spec).await?;
                    Ok(Reply::NodeSaved {
                        node: Box::new(node),
                        created: true,
                    })
                })
            }
            Purpose::View(EDIT) => {
                let Some(target) = &self.table.target else {
                    return Vec::new();
                };
                let request = changes(&NodeSpec::of(target), spec_of(form));
                if request.is_empty() {
                    return vec![Effect::CloseOverlay, Effect::Info("Nothing changed.".into())];
                }
                let id = target.id;
                form.submit("saving the node", async move {
                    let node = client.update_node(id, &request).await?;
                    Ok(Reply::NodeSaved {
                        node: Box::new(node),
                        created: false,
                    })
                })
            }
            Purpose::View(MUST_RUN) => {
                let Some(node) = self.table.target.clone() else {
                    return Vec::new();
                };
                let watch = HostWatch {
                    services: split_list(form.value(FieldId::Services)),
                    processes: split_list(form.value(FieldId::Processes)),
                };
                form.submit("saving what the node must run", async move {
                    let host = client.set_node_host(node.id, &watch).await?;
                    Ok(Reply::NodeHost {
                        node: node.name,
                        host: Box::new(host),
                        saved: true,
                    })
                })
            }
            Purpose::View(ADD_CHECK) => {
                let Some(node) = self.table.target.clone() else {
                    return Vec::new();
                };
                let Ok(mut spec) = form.value(FieldId::Check).parse::<CheckSpec>() else {
                    return Vec::new();
                };
                spec.interval_s = form.value(FieldId::IntervalS).trim().parse().ok();
                form.submit("adding the check", async move {
                    let check = client.add_check(node.id, &spec).await?;
                    Ok(Reply::CheckAdded {
                        node: node.name,
                        check: Box::new(check),
                    })
                })
            }
            Purpose::View(BULK_EDIT) => {
                let edit = match bulk_edit_of(form) {
                    Ok(edit) => edit,
                    Err((field, problem)) => {
                        form.fail(field, problem);
                        return Vec::new();
                    }
                };
                let marked: Vec<Node> = self.table.marked().into_iter().cloned().collect();
                let (update, changes) = bulk::plan(&marked, &edit);
                if update.is_empty() {
                    return vec![
                        Effect::CloseOverlay,
                        Effect::Info(format!(
                            "Nothing to change: the {} marked node(s) already have it.",
                            marked.len()
                        )),
                    ];
                }
                let count = update.len();
                self.bulk = Some(BulkNodesRequest {
                    update,
                    ..BulkNodesRequest::default()
                });
                return vec![
                    Effect::CloseOverlay,
                    Effect::Open(Overlay::Confirm(Confirm {
                        title: format!("Change {count} nodes"),
                        question: preview_text(&changes),
                        yes: "change",
                        tag: BULK_CONFIRM,
                    })),
                ];
            }
            Purpose::View(ATTACH) => {
                let name = form.value(FieldId::Credential).trim().to_owned();
                let Some(credential) = self.credentials.iter().find(|c| c.name == name) else {
                    form.fail(FieldId::Credential, format!("there is no credential named {name:?}"));
                    return Vec::new();
                };
                let (credential_id, credential) = (credential.id, credential.name.clone());
                let priority = form.value(FieldId::Priority).trim().parse().ok();
                let nodes: Vec<i64> = self.attach_to.iter().map(|n| n.id).collect();
                form.submit("attaching the credential", async move {
                    for node in &nodes {
                        client
                            .attach_credential(*node, credential_id, priority)
                            .await?;
                    }
                    Ok(Reply::Attached {
                        credential,
                        nodes: nodes.len(),
                    })
                })
            }
            _ => return Vec::new(),
        };
        vec![Effect::Call(call)]
    }

    fn on_confirm(&mut self, tag: crate::widgets::form::Ask, ctx: &Ctx) -> Vec<Effect> {
        if tag == BULK_CONFIRM {
            let (Some(request), Some(client)) = (self.bulk.take(), ctx.client.cloned()) else {
                return Vec::new();
            };
            return vec![
                Effect::Call(task("changing the nodes", async move {
                    client
                        .bulk_nodes(&request)
                        .await
                        .map(|answer| Reply::NodesChanged(Box::new(answer)))
                })),
                Effect::Info("Changing…".into()),
            ];
        }
        match (tag, self.table.target.clone(), ctx.client.cloned()) {
            (DELETE, Some(node), Some(client)) => vec![
                Effect::Call(task("deleting the node", async move {
                    client.delete_node(node.id).await?;
                    Ok(Reply::NodeDeleted(node.name))
                })),
                Effect::Info("Deleting…".into()),
            ],
            _ => Vec::new(),
        }
    }

    fn on_reply(&mut self, reply: &Reply, _ctx: &Ctx) -> Vec<Effect> {
        match reply {
            Reply::NodeMetrics {
                node_id,
                generation,
                answer,
            } => {
                if let Some(charts) = &mut self.charts
                    && charts.node.id == *node_id
                    && charts.generation == *generation
                {
                    charts.set_answer((**answer).clone());
                    if answer.truncated {
                        return vec![Effect::Info(format!(
                            "Charts read the first {} of {} series of this node.",
                            answer.items.len(),
                            answer.total
                        ))];
                    }
                }
                Vec::new()
            }
            Reply::Rules(list) => {
                if let Some(charts) = &mut self.charts {
                    charts.rules = list.items.clone();
                }
                Vec::new()
            }
            Reply::Nodes(list) => {
                self.table.set_rows(list.items.clone());
                Vec::new()
            }
            Reply::Credentials(list) => {
                self.credentials = list.items.clone();
                Vec::new()
            }
            Reply::Templates(list) => {
                self.templates = list.items.iter().map(|t| t.name.clone()).collect();
                Vec::new()
            }
            Reply::Components(list) => {
                self.collectors = list
                    .items
                    .iter()
                    .filter(|c| c.kind == ComponentKind::Collector)
                    .map(|c| c.name.clone())
                    .collect();
                Vec::new()
            }
            Reply::NodeSaved { node, created } => self.table.saved(&node.name, *created),
            Reply::NodeDeleted(name) => self.table.deleted(name),
            Reply::NodesChanged(answer) => {
                self.table.clear_marks();
                let mut done = Vec::new();
                if !answer.updated.is_empty() {
                    done.push(format!("{} changed", answer.updated.len()));
                }
                if !answer.deleted.is_empty() {
                    done.push(format!("{} deleted", answer.deleted.len()));
                }
                vec![
                    Effect::Info(format!(
                        "✔ Nodes {} in one transaction.",
                        done.join(", ")
                    )),
                    Effect::Refresh,
                ]
            }
            Reply::Attached { credential, nodes } => {
                self.table.clear_marks();
                vec![
                    Effect::CloseOverlay,
                    Effect::Info(format!("✔ {credential} attached to {nodes} node(s).")),
                    Effect::Refresh,
                ]
            }
            Reply::CheckAdded { node, check } => vec![Effect::Info(format!(
                "✔ {node}: check {} added (every {} s).",
                check.spec,
                check.spec.interval_s()
            ))],
            Reply::NodeHost {
                node,
                host,
                saved: false,
            } => {
                let form = Form::new(
                    format!("What {node} must run"),
                    Purpose::View(MUST_RUN),
                    vec![
                        Field::text(FieldId::Services)
                            .optional()
                            .with_value(host.watch.services.join("; ")),
                        Field::text(FieldId::Processes)
                            .optional()
                            .with_value(host.watch.processes.join("; ")),
                    ],
                )
                .with_note(
                    "Separated by ';'. Services: Windows service names (Spooler); a required \
                     one stopped or missing is a critical alert. Processes: names (wincc.exe) \
                     counted by the node's agent; none running is an alert.",
                );
                vec![Effect::Info(String::new()), Effect::Open(Overlay::Form(form))]
            }
            Reply::NodeHost {
                node,
                host,
                saved: true,
            } => {
                let list = |names: &[String]| {
                    if names.is_empty() {
                        "none".to_owned()
                    } else {
                        names.join(", ")
                    }
                };
                vec![
                    Effect::CloseOverlay,
                    Effect::Info(format!(
                        "✔ {node} must run services: {}; processes: {}.",
                        list(&host.watch.services),
                        list(&host.watch.processes)
                    )),
                ]
            }
            Reply::NodeDetail {
                node,
                history,
                checks,
                certificates,
                vsphere,
                host,
            } => {
                let mut lines = detail_lines(node, history);
                lines.push(("Checks".into(), checks_text(checks, certificates)));
                if node.node_type.is_vsphere() {
                    lines.push(("vSphere".into(), vsphere_text(vsphere)));
                }
                lines.extend(host_lines(host));
                vec![
                    Effect::Info(String::new()),
                    Effect::Open(Overlay::Detail {
                        title: format!("Node {}", node.name),
                        lines,
                    }),
                ]
            }
            _ => Vec::new(),
        }
    }

    fn table(&mut self) -> Option<&mut dyn Navigate> {
        match &mut self.charts {
            Some(charts) => charts.navigate(),
            None => Some(&mut *self.table),
        }
    }
}

impl NodesView {
    /// What the node form completes to.
    fn names(&self) -> Names {
        Names {
            nodes: self.table.rows().iter().map(|n| n.name.clone()).collect(),
            collectors: self.collectors.clone(),
            templates: self.templates.clone(),
            credentials: self.credentials.iter().map(|c| c.name.clone()).collect(),
        }
    }

    /// An action while a node's charts are open.
    fn charts_action(&mut self, action: Action, ctx: &Ctx) -> Vec<Effect> {
        let Some(charts) = &mut self.charts else {
            return Vec::new();
        };
        match charts.on_action(action) {
            Outcome::Done => Vec::new(),
            Outcome::Close => {
                self.charts = None;
                Vec::new()
            }
            Outcome::Info(text) => vec![Effect::Info(text)],
            Outcome::Reload => match ctx.client {
                Some(client) => vec![Effect::Call(load_charts(client, charts, ctx))],
                None => Vec::new(),
            },
        }
    }
}

/// The form for the marked nodes: what to set on all of them.
fn bulk_form(count: usize, names: &Names) -> Form {
    Form::new(
        format!("Change the {count} marked nodes"),
        Purpose::View(BULK_EDIT),
        vec![
            Field::text(FieldId::AddTags).optional(),
            Field::text(FieldId::RemoveTags).optional(),
            Field::text(FieldId::Collector)
                .optional()
                .suggest(names.collectors.clone()),
            Field::text(FieldId::Template)
                .optional()
                .suggest(names.templates.clone()),
            Field::text(FieldId::IntervalS).optional(),
            Field::text(FieldId::Parent)
                .optional()
                .suggest(names.nodes.clone()),
        ],
    )
    .with_note(
        "Empty fields change nothing; - clears one (the template's interval, no parent). \
         You see every change before it is made.",
    )
}

/// What the bulk form asks for; the field at fault and why.
fn bulk_edit_of(form: &Form) -> Result<BulkEdit, (FieldId, String)> {
    let mut edit = BulkEdit {
        add_tags: split_tags(form.value(FieldId::AddTags)),
        remove_tags: split_tags(form.value(FieldId::RemoveTags)),
        ..BulkEdit::default()
    };
    for (id, field) in [
        (FieldId::Collector, "collector"),
        (FieldId::Template, "template"),
        (FieldId::IntervalS, "interval_s"),
        (FieldId::Parent, "parent"),
    ] {
        let value = form.value(id).trim();
        if value.is_empty() {
            continue;
        }
        let value = if value == "-" { "" } else { value };
        edit.set_field(&format!("{field}={value}"))
            .map_err(|problem| (id, problem))?;
    }
    if edit.is_empty() {
        return Err((FieldId::AddTags, "fill in at least one field".into()));
    }
    Ok(edit)
}

/// The changes a confirmation lists: a line per node and field, the first 12.
fn preview_text(changes: &[bulk::Change]) -> String {
    const SHOWN: usize = 12;
    let mut lines: Vec<String> = changes
        .iter()
        .take(SHOWN)
        .map(|c| format!("{}: {} {} → {}", c.node, c.field, c.before, c.after))
        .collect();
    if changes.len() > SHOWN {
        lines.push(format!("… and {} more changes", changes.len() - SHOWN));
    }
    lines.join("\n")
}

/// Loads the metrics the charts show.
fn load_charts(client: &Client, charts: &NodeCharts, ctx: &Ctx) -> Task {
    let client = client.clone();
    let (node_id, generation) = (charts.node.id, charts.generation);
    let queries = charts.queries(ctx.now.unix_timestamp());
    task("loading the node's metrics", async move {
        // A picked chart's metric and its other direction: one answer of both.
        let mut answer: Option<plantwatch_shared::api::MetricsAnswer> = None;
        for query in &queries {
            let part = client.node_metrics(node_id, query).await?;
            match &mut answer {
                None => answer = Some(part),
                Some(whole) => {
                    whole.items.extend(part.items);
                    whole.total += part.total;
                    whole.truncated |= part.truncated;
                }
            }
        }
        let answer = answer.ok_or_else(|| plantwatch_shared::Error::Decode("no query".into()))?;
        Ok(Reply::NodeMetrics {
            node_id,
            generation,
            answer: Box::new(answer),
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_edit_sends_only_what_changed() {
        let before = NodeSpec {
            name: "plc".into(),
            address: "10.0.0.1".into(),
            node_type: Some(NodeType::Plc),
            tags: vec!["a".into()],
            parent: Some("sw".into()),
            ..NodeSpec::default()
        };
        let mut after = before.clone();
        after.parent = None;
        after.tags = vec!["a".into(), "b".into()];
        let request = changes(&before, after);
        assert_eq!(request.parent, Some(None));
        assert_eq!(request.tags, Some(vec!["a".into(), "b".into()]));
        assert_eq!((request.name, request.address), (None, None));
        assert!(changes(&before, before.clone()).is_empty());
    }

    #[test]
    fn tags_split_on_any_separator() {
        assert_eq!(split_tags("a;b, c d"), ["a", "b", "c", "d"]);
    }
}
