//! All sites at once: every saved context side by side — reachable or not, nodes by health,
//! active alerts by severity, collectors offline —, each asked in parallel on every refresh,
//! the worst first; `Enter` switches to one. `Tab` shows the active alerts of every site in one
//! list, critical first, for the provider's on-call engineer.

use plantwatch_shared::api::Role;
use ratatui::Frame;
use ratatui::crossterm::event::KeyCode;
use ratatui::layout::{Constraint, Rect};

use super::{Ctx, Effect, Navigate, View, ViewSpec};
use crate::cells::time_cell;
use crate::event::{Reply, Task, task};
use crate::keymap::{Action, Binding, Key};
use crate::sites::{self, SiteAlert, SiteStatus};
use crate::widgets::table::{Column, DataTable, caseless};

pub const SPEC: ViewSpec = ViewSpec {
    name: "sites",
    aliases: &["all-sites", "site-alerts"],
    about: "every saved site side by side, and their alerts merged",
    min_role: Role::Viewer,
    make: || Box::new(SitesView::new()),
};

fn count(s: &SiteStatus, n: u64) -> String {
    if s.is_ok() { n.to_string() } else { "-".into() }
}

static COLUMNS: &[Column<SiteStatus>] = &[
    Column {
        title: "SITE",
        sort_key: 's',
        width: Constraint::Length(22),
        cell: |s| format!("{}{}", if s.current { "* " } else { "  " }, s.site),
        cmp: |a, b| caseless(&a.site, &b.site),
    },
    Column {
        title: "STATE",
        sort_key: 't',
        width: Constraint::Length(12),
        cell: |s| s.state.clone(),
        cmp: |a, b| a.urgency().cmp(&b.urgency()),
    },
    Column {
        title: "NODES",
        sort_key: 'n',
        width: Constraint::Length(28),
        cell: SiteStatus::nodes_cell,
        cmp: |a, b| a.node_count().cmp(&b.node_count()),
    },
    Column {
        title: "CRIT",
        sort_key: 'c',
        width: Constraint::Length(5),
        cell: |s| count(s, s.alerts_of("critical")),
        cmp: |a, b| a.alerts_of("critical").cmp(&b.alerts_of("critical")),
    },
    Column {
        title: "WARN",
        sort_key: 'w',
        width: Constraint::Length(5),
        cell: |s| count(s, s.alerts_of("warning")),
        cmp: |a, b| a.alerts_of("warning").cmp(&b.alerts_of("warning")),
    },
    Column {
        title: "COLL OFF",
        sort_key: 'o',
        width: Constraint::Length(8),
        cell: |s| {
            if s.is_ok() {
                format!("{}/{}", s.collectors_offline, s.collectors)
            } else {
                "-".into()
            }
        },
        cmp: |a, b| a.collectors_offline.cmp(&b.collectors_offline),
    },
    Column {
        title: "WHY / SERVER",
        sort_key: 'u',
        width: Constraint::Fill(1),
        cell: |s| s.problem.clone().unwrap_or_else(|| s.url.clone()),
        cmp: |a, b| a.url.cmp(&b.url),
    },
];

static ALERT_COLUMNS: &[Column<SiteAlert>] = &[
    Column {
        title: "SITE",
        sort_key: 's',
        width: Constraint::Length(12),
        cell: |a| a.site.clone(),
        cmp: |a, b| caseless(&a.site, &b.site),
    },
    Column {
        title: "SEVERITY",
        sort_key: 'v',
        width: Constraint::Length(9),
        cell: |a| a.alert.severity.to_string(),
        cmp: |a, b| a.alert.severity.as_str().cmp(b.alert.severity.as_str()),
    },
    Column {
        title: "STATE",
        sort_key: 't',
        width: Constraint::Length(8),
        cell: |a| a.alert.state.to_string(),
        cmp: |a, b| a.alert.state.as_str().cmp(b.alert.state.as_str()),
    },
    Column {
        title: "NODE",
        sort_key: 'n',
        width: Constraint::Length(14),
        cell: |a| a.alert.node.clone().unwrap_or_else(|| "-".into()),
        cmp: |a, b| a.alert.node.cmp(&b.alert.node),
    },
    Column {
        title: "MESSAGE",
        sort_key: 'm',
        width: Constraint::Fill(1),
        cell: |a| a.alert.message.clone(),
        cmp: |a, b| a.alert.message.cmp(&b.alert.message),
    },
    Column {
        title: "SINCE",
        sort_key: 'i',
        width: Constraint::Length(20),
        cell: |a| time_cell(Some(a.alert.started_at)),
        cmp: |a, b| a.alert.started_at.cmp(&b.alert.started_at),
    },
];

pub struct SitesView {
    pub table: DataTable<SiteStatus>,
    pub alerts: DataTable<SiteAlert>,
    /// Whether the merged alerts are shown instead of the sites.
    pub showing_alerts: bool,
    /// The sites that did not answer the alerts' question, with why.
    pub unread: Vec<(String, String)>,
    sites: Vec<SiteStatus>,
}

impl SitesView {
    pub fn new() -> Self {
        SitesView {
            table: DataTable::new(COLUMNS, |s| s.site.clone()),
            alerts: DataTable::new(ALERT_COLUMNS, |a| format!("{} {}", a.site, a.alert.id)),
            showing_alerts: false,
            unread: Vec::new(),
            sites: Vec::new(),
        }
    }

    /// Takes one site's status; sites no longer saved drop out; the worst stay first.
    pub fn take(&mut self, status: SiteStatus, saved: &[String]) {
        self.sites.retain(|s| s.site != status.site && saved.contains(&s.site));
        self.sites.push(status);
        self.sites.sort_by(|a, b| {
            a.urgency()
                .cmp(&b.urgency())
                .then_with(|| caseless(&a.site, &b.site))
        });
        self.table.set_rows(self.sites.clone());
    }
}

impl Default for SitesView {
    fn default() -> Self {
        Self::new()
    }
}

impl View for SitesView {
    fn title(&self) -> String {
        if self.showing_alerts {
            self.alerts.title("Alerts of all sites")
        } else {
            self.table.title("Sites")
        }
    }

    fn bindings(&self) -> Vec<Binding> {
        vec![
            Binding::new(
                &[Key::new(KeyCode::Enter)],
                Action::Open,
                "switch to this site (signs in if needed)",
            )
            .footer("switch"),
            Binding::new(
                &[Key::new(KeyCode::Tab)],
                Action::NextPane,
                "every site's active alerts in one list (again: sites)",
            )
            .footer(if self.showing_alerts { "sites" } else { "all alerts" }),
        ]
    }

    fn sort_keys(&self) -> Vec<(&'static str, char)> {
        if self.showing_alerts {
            self.alerts.sort_keys()
        } else {
            self.table.sort_keys()
        }
    }

    fn render(&self, frame: &mut Frame, area: Rect, ctx: &Ctx) {
        if self.showing_alerts {
            let what = if self.unread.is_empty() {
                "Alerts of all sites".to_owned()
            } else {
                let names: Vec<&str> = self.unread.iter().map(|(s, _)| s.as_str()).collect();
                format!("Alerts of all sites (not read: {})", names.join(", "))
            };
            let empty = if self.alerts.is_loaded() {
                "No active alert on any site."
            } else {
                "Asking every site…"
            };
            self.alerts.render(frame, area, &what, empty, ctx.theme);
        } else {
            self.table.render(
                frame,
                area,
                "Sites",
                "No saved sites: add one in :contexts or with `plantwatch login`.",
                ctx.theme,
            );
        }
    }

    fn refresh(&self, ctx: &Ctx) -> Vec<Task> {
        let profiles = ctx.profiles.clone();
        if self.showing_alerts {
            return vec![task("asking every site for its alerts", async move {
                let (alerts, unread) = sites::alerts(&profiles).await;
                Ok(Reply::SiteAlerts { alerts, unread })
            })];
        }
        // One call per site, so a slow one shows late rather than holding the others up.
        profiles
            .contexts
            .iter()
            .map(|context| {
                let context = context.clone();
                // The context this console uses (`--context` may differ from the saved one).
                let current = ctx.context == Some(context.name.as_str());
                task("asking a site", async move {
                    Ok(Reply::Site(Box::new(
                        sites::status_of(&context, current).await,
                    )))
                })
            })
            .collect()
    }

    fn on_action(&mut self, action: Action, _ctx: &Ctx) -> Vec<Effect> {
        match action {
            Action::NextPane => {
                self.showing_alerts = !self.showing_alerts;
                vec![Effect::Refresh]
            }
            Action::Open => {
                let site = if self.showing_alerts {
                    self.alerts.selected().map(|a| a.site.clone())
                } else {
                    self.table.selected().map(|s| s.site.clone())
                };
                match site {
                    Some(site) => vec![Effect::SwitchContext(site)],
                    None => vec![Effect::Info("No site selected.".into())],
                }
            }
            _ => Vec::new(),
        }
    }

    fn on_reply(&mut self, reply: &Reply, ctx: &Ctx) -> Vec<Effect> {
        match reply {
            Reply::Site(status) => {
                let saved: Vec<String> =
                    ctx.profiles.contexts.iter().map(|c| c.name.clone()).collect();
                if saved.contains(&status.site) {
                    self.take((**status).clone(), &saved);
                }
            }
            Reply::SiteAlerts { alerts, unread } => {
                self.alerts.set_rows(alerts.clone());
                self.unread = unread.clone();
            }
            _ => {}
        }
        Vec::new()
    }

    fn table(&mut self) -> Option<&mut dyn Navigate> {
        if self.showing_alerts {
            Some(&mut self.alerts)
        } else {
            Some(&mut self.table)
        }
    }
}
