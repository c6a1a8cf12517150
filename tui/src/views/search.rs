//! Search everything in one list: nodes (by name, address, tags), active alerts, rules,
//! credentials by name, collectors and agents, and the devices the newest discovery scans found.
//! `/` on the dashboard opens it with the filter ready; `Enter` goes to the view the hit lives
//! in, filtered to it.

use plantwatch_shared::Client;
use plantwatch_shared::api::{
    AlertQuery, ComponentQuery, CredentialQuery, DeviceQuery, JobQuery, MAX_PAGE_LIMIT, Role,
};
use ratatui::Frame;
use ratatui::crossterm::event::KeyCode;
use ratatui::layout::{Constraint, Rect};

use super::{Ctx, Effect, Navigate, View, ViewSpec};
use crate::event::{Reply, Task, task};
use crate::keymap::{Action, Binding, Key};
use crate::widgets::table::{Column, DataTable, caseless};

pub const SPEC: ViewSpec = ViewSpec {
    name: "search",
    aliases: &["find"],
    about: "find nodes, addresses, tags, alerts, rules, credentials, collectors, devices",
    min_role: Role::Viewer,
    make: || Box::new(SearchView::new()),
};

/// How many of the newest discovery scans' devices are searched.
const SCANS_SEARCHED: u32 = 5;

/// One thing found.
#[derive(Debug, Clone, PartialEq)]
pub struct Hit {
    /// `node`, `alert`, `rule`, `credential`, `collector`, `agent`, `device`.
    pub kind: &'static str,
    pub name: String,
    /// What else it is known by: address, tags, message, kind.
    pub detail: String,
    /// Where `Enter` goes, and the filter set there.
    pub view: &'static str,
    pub filter: String,
}

static COLUMNS: &[Column<Hit>] = &[
    Column {
        title: "KIND",
        sort_key: 'k',
        width: Constraint::Length(10),
        cell: |h| h.kind.to_owned(),
        cmp: |a, b| a.kind.cmp(b.kind).then_with(|| caseless(&a.name, &b.name)),
    },
    Column {
        title: "NAME",
        sort_key: 'n',
        width: Constraint::Length(24),
        cell: |h| h.name.clone(),
        cmp: |a, b| caseless(&a.name, &b.name),
    },
    Column {
        title: "DETAIL",
        sort_key: 'd',
        width: Constraint::Fill(1),
        cell: |h| h.detail.clone(),
        cmp: |a, b| caseless(&a.detail, &b.detail),
    },
];

/// Everything the server lets this user list, as hits; a list that cannot be read (a role
/// that may not) is left out rather than failing the search.
pub async fn gather(client: &Client) -> Vec<Hit> {
    let alert_query = AlertQuery {
        limit: Some(MAX_PAGE_LIMIT),
        ..AlertQuery::default()
    };
    let credential_query = CredentialQuery {
        limit: Some(MAX_PAGE_LIMIT),
        ..CredentialQuery::default()
    };
    let component_query = ComponentQuery::default();
    let nodes = super::nodes::all_nodes(client);
    let alerts = client.list_alerts(&alert_query);
    let rules = client.list_rules();
    let credentials = client.list_credentials(&credential_query);
    let components = client.list_components(&component_query);
    let devices = async {
        let jobs = client
            .list_jobs(&JobQuery {
                limit: Some(SCANS_SEARCHED),
                ..JobQuery::default()
            })
            .await?;
        let mut found = Vec::new();
        for job in jobs.items {
            let query = DeviceQuery {
                limit: Some(MAX_PAGE_LIMIT),
                ..DeviceQuery::default()
            };
            let devices = client.job_devices(job.id, &query).await?;
            found.extend(devices.items.into_iter().map(|d| (job.targets.join(","), d)));
        }
        Ok::<_, plantwatch_shared::Error>(found)
    };
    let (nodes, alerts, rules, credentials, components, devices) =
        tokio::join!(nodes, alerts, rules, credentials, components, devices);
    let mut hits = Vec::new();
    for node in nodes.map(|l| l.items).unwrap_or_default() {
        hits.push(Hit {
            kind: "node",
            detail: format!(
                "{} · {} · {}{}",
                node.address,
                node.node_type,
                node.status,
                if node.tags.is_empty() {
                    String::new()
                } else {
                    format!(" · tags {}", node.tags.join(", "))
                }
            ),
            view: "nodes",
            filter: node.name.clone(),
            name: node.name,
        });
    }
    for alert in alerts.map(|l| l.items).unwrap_or_default() {
        let node = alert.node.clone().unwrap_or_else(|| "-".into());
        hits.push(Hit {
            kind: "alert",
            name: format!("{} {}", alert.severity, alert.rule),
            detail: format!("{node}: {}", alert.message),
            view: "alerts",
            filter: node,
        });
    }
    for rule in rules.map(|l| l.items).unwrap_or_default() {
        hits.push(Hit {
            kind: "rule",
            detail: rule
                .spec
                .description
                .clone()
                .or(rule.spec.metric.clone())
                .unwrap_or_default(),
            view: "rules",
            filter: rule.spec.name.clone(),
            name: rule.spec.name,
        });
    }
    for credential in credentials.map(|l| l.items).unwrap_or_default() {
        hits.push(Hit {
            kind: "credential",
            detail: format!("{} · {} node(s)", credential.kind, credential.nodes),
            view: "credentials",
            filter: credential.name.clone(),
            name: credential.name,
        });
    }
    for component in components.map(|l| l.items).unwrap_or_default() {
        hits.push(Hit {
            kind: if component.kind == plantwatch_shared::api::ComponentKind::Agent {
                "agent"
            } else {
                "collector"
            },
            detail: format!(
                "{} · {}",
                component.status,
                component.hostname.clone().unwrap_or_default()
            ),
            view: "collectors",
            filter: component.name.clone(),
            name: component.name,
        });
    }
    for (targets, device) in devices.unwrap_or_default() {
        let name = device
            .sys_name
            .clone()
            .or(device.dns_name.clone())
            .unwrap_or_else(|| device.address.clone());
        hits.push(Hit {
            kind: "device",
            detail: format!(
                "{} · {}{}",
                device.address,
                device.vendor.clone().unwrap_or_else(|| "unknown vendor".into()),
                device
                    .node
                    .as_ref()
                    .map(|n| format!(" · node {n}"))
                    .unwrap_or_default()
            ),
            view: "discovery",
            filter: targets,
            name,
        });
    }
    hits
}

pub struct SearchView {
    pub table: DataTable<Hit>,
}

impl SearchView {
    pub fn new() -> Self {
        SearchView {
            table: DataTable::new(COLUMNS, |h| format!("{} {}", h.kind, h.name)),
        }
    }
}

impl Default for SearchView {
    fn default() -> Self {
        Self::new()
    }
}

impl View for SearchView {
    fn title(&self) -> String {
        self.table.title("Search")
    }

    fn bindings(&self) -> Vec<Binding> {
        vec![
            Binding::new(
                &[Key::new(KeyCode::Enter)],
                Action::Open,
                "go to it: its view, filtered to it",
            )
            .footer("go to"),
        ]
    }

    fn sort_keys(&self) -> Vec<(&'static str, char)> {
        self.table.sort_keys()
    }

    fn render(&self, frame: &mut Frame, area: Rect, ctx: &Ctx) {
        let empty = if self.table.filter().is_empty() {
            "Nothing to search yet."
        } else {
            "Nothing matches: / changes the search."
        };
        self.table.render(frame, area, "Search", empty, ctx.theme);
    }

    fn refresh(&self, ctx: &Ctx) -> Vec<Task> {
        let Some(client) = ctx.client.cloned() else {
            return Vec::new();
        };
        vec![task("gathering what to search", async move {
            Ok(Reply::SearchHits(gather(&client).await))
        })]
    }

    fn on_action(&mut self, action: Action, _ctx: &Ctx) -> Vec<Effect> {
        match (action, self.table.selected()) {
            (Action::Open, Some(hit)) => vec![Effect::Goto {
                view: hit.view,
                filter: hit.filter.clone(),
            }],
            (Action::Open, None) => vec![Effect::Info("Nothing selected.".into())],
            _ => Vec::new(),
        }
    }

    fn on_reply(&mut self, reply: &Reply, _ctx: &Ctx) -> Vec<Effect> {
        if let Reply::SearchHits(hits) = reply {
            self.table.set_rows(hits.clone());
        }
        Vec::new()
    }

    fn table(&mut self) -> Option<&mut dyn Navigate> {
        Some(&mut self.table)
    }
}
