//! Dashboard: the server's status, nodes by health, samples ingested per second, the most
//! urgent active alerts, the collectors with their outbox, and who is signed in.

use plantwatch_shared::api::{Role, Severity, Summary};
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph, Wrap};

use super::{Ctx, Effect, View, ViewSpec};
use crate::cells::time_cell;
use crate::event::{Reply, Task, task};
use crate::keymap::{Action, Binding};

pub const SPEC: ViewSpec = ViewSpec {
    name: "dashboard",
    aliases: &["dash", "home", "d"],
    about: "server status and who is signed in",
    min_role: Role::Viewer,
    make: || Box::new(DashboardView::default()),
};

/// Active alerts listed on the dashboard.
const NEWEST_ALERTS: usize = 5;

#[derive(Default)]
pub struct DashboardView {
    summary: Option<Summary>,
}

impl View for DashboardView {
    fn title(&self) -> String {
        " Dashboard ".into()
    }

    fn bindings(&self) -> Vec<Binding> {
        Vec::new()
    }

    fn render(&self, frame: &mut Frame, area: Rect, ctx: &Ctx) {
        let theme = ctx.theme;
        let block = Block::default()
            .borders(Borders::ALL)
            .title(Span::styled(self.title(), theme.title()));
        let row = |label: &str, value: Span<'static>| {
            Line::from(vec![
                Span::styled(format!("{label:<12}"), theme.dim()),
                value,
            ])
        };
        let mut lines = vec![Line::styled("Server", theme.title())];
        match ctx.server {
            Some(server) => {
                lines.push(row("Address", Span::raw(server.url.clone())));
                let state = match (&server.unreachable, &server.health) {
                    (Some(down), _) => Span::styled(
                        format!("✖ unreachable since {}", time_cell(Some(down.since))),
                        theme.error(),
                    ),
                    (None, Some(health)) => Span::styled(
                        format!("✔ {} (version {})", health.status, health.version),
                        theme.ok(),
                    ),
                    (None, None) => Span::raw("… checking"),
                };
                lines.push(row("Status", state));
                if let Some(ha) = server.health.as_ref().and_then(|h| h.ha.as_ref()) {
                    lines.push(row("Pair", Span::raw(pair_line(ha))));
                }
                if let Some(latency) = server.latency {
                    lines.push(row(
                        "Response",
                        Span::raw(format!("{} ms", latency.as_millis())),
                    ));
                }
                if let Some(checked) = server.checked_at {
                    lines.push(row("Checked", Span::raw(time_cell(Some(checked)))));
                }
            }
            None => lines.push(Line::raw("not connected")),
        }
        if let Some(summary) = &self.summary {
            lines.push(Line::default());
            lines.push(Line::styled("Monitoring", theme.title()));
            let total: i64 = summary.nodes_by_health.values().sum();
            let health = summary
                .nodes_by_health
                .iter()
                .map(|(health, count)| format!("{count} {health}"))
                .collect::<Vec<_>>()
                .join(", ");
            lines.push(row(
                "Nodes",
                Span::raw(if total == 0 {
                    "none yet".to_owned()
                } else {
                    format!("{total}: {health}")
                }),
            ));
            let ingest = &summary.ingest;
            lines.push(row(
                "Ingest",
                Span::raw(format!(
                    "{:.0} samples/s, {} series, {} lines refused",
                    ingest.samples_per_second, ingest.series, ingest.rejected_lines
                )),
            ));
            if let Some(remote) = &summary.remote_write {
                lines.push(row("Metrics to", Span::raw(remote.url.clone())));
                let (text, style) = remote_backlog(remote);
                lines.push(row("Backlog", Span::styled(text, style(theme))));
            }
            lines.push(Line::default());
            let evaluated = summary
                .evaluator_cycle_ms
                .map(|ms| format!(", last evaluation {ms:.0} ms"))
                .unwrap_or_default();
            lines.push(Line::styled(
                format!("Alerts ({} active{evaluated})", summary.active_alerts),
                theme.title(),
            ));
            if summary.newest_alerts.is_empty() {
                lines.push(Line::styled("All quiet: no active alerts.", theme.ok()));
            }
            for alert in summary.newest_alerts.iter().take(NEWEST_ALERTS) {
                let style = match alert.severity {
                    Severity::Critical => theme.error(),
                    Severity::Warning => theme.title(),
                };
                let flags = crate::cli::alerts::flags(alert);
                lines.push(Line::from(vec![
                    Span::styled(format!("{:<9}", alert.severity.as_str()), style),
                    Span::raw(format!(
                        "{} {} — {}{}",
                        crate::cli::alerts::subject(alert),
                        alert.rule,
                        alert.message,
                        if flags.is_empty() { String::new() } else { format!(" [{flags}]") }
                    )),
                ]));
            }
            if summary.newest_alerts.len() > NEWEST_ALERTS || summary.active_alerts > NEWEST_ALERTS as u64 {
                lines.push(Line::styled("… :alerts for all of them", theme.dim()));
            }
            lines.push(Line::default());
            for collector in &summary.collectors {
                let outbox = collector.outbox.unwrap_or_default();
                let text = format!(
                    "{}  outbox {} batches ({} KiB), lag {} s",
                    collector.status,
                    outbox.batches,
                    outbox.bytes / 1024,
                    outbox.lag_s
                );
                let style = if outbox.lag_s >= 60 { theme.error() } else { theme.ok() };
                lines.push(row(&collector.name, Span::styled(text, style)));
            }
        }
        lines.push(Line::default());
        lines.push(Line::styled("You", theme.title()));
        if let Some(me) = ctx.me {
            lines.push(row("User", Span::raw(me.user.username.clone())));
            let access = match me.user.role {
                Role::Viewer => "viewer: read-only",
                Role::Operator => "operator: may change what is monitored",
                Role::Admin => "admin: full access, users and audit",
            };
            lines.push(row("Role", Span::raw(access)));
            lines.push(row(
                "Session",
                Span::raw(format!(
                    "ends {} at the latest",
                    time_cell(Some(me.session.expires_at))
                )),
            ));
        }
        lines.push(row(
            "Context",
            Span::raw(ctx.context.unwrap_or("(not saved)").to_owned()),
        ));
        lines.push(Line::default());
        lines.push(Line::styled(
            "Press : for the list of views, ? for every key.",
            theme.dim(),
        ));
        frame.render_widget(
            Paragraph::new(lines)
                .block(block)
                .wrap(Wrap { trim: false }),
            area,
        );
    }

    fn refresh(&self, ctx: &Ctx) -> Vec<Task> {
        // The console refreshes the server's health and the session for every view.
        let Some(client) = ctx.client.cloned() else {
            return Vec::new();
        };
        vec![task("loading the summary", async move {
            client.summary().await.map(|s| Reply::Summary(Box::new(s)))
        })]
    }

    fn on_action(&mut self, _action: Action, _ctx: &Ctx) -> Vec<Effect> {
        Vec::new()
    }

    fn on_reply(&mut self, reply: &Reply, _ctx: &Ctx) -> Vec<Effect> {
        if let Reply::Summary(summary) = reply {
            self.summary = Some((**summary).clone());
        }
        Vec::new()
    }
}

/// The remote-write queue in one line, red while the engine does not take samples.
fn remote_backlog(
    remote: &plantwatch_shared::api::RemoteWriteStatus,
) -> (String, fn(crate::theme::Theme) -> ratatui::style::Style) {
    let mut text = if remote.queued_samples == 0 {
        "none: the engine has every sample".to_owned()
    } else {
        format!(
            "{} samples queued ({:.0} % of the queue), oldest {} s",
            remote.queued_samples,
            remote.queued_samples as f64 * 100.0 / remote.max_queued_samples.max(1) as f64,
            remote.oldest_queued_age_secs.unwrap_or(0)
        )
    };
    if remote.rejected_samples > 0 {
        text.push_str(&format!(", {} refused by the engine", remote.rejected_samples));
    }
    if remote.retrying {
        let error = remote.last_error.as_deref().unwrap_or("no answer");
        text.push_str(&format!(" — retrying: {error}"));
        (text, crate::theme::Theme::error)
    } else {
        (text, crate::theme::Theme::ok)
    }
}

/// One server of an active/standby pair and its peer: `plant-a active (term 3), standby
/// https://10.1.0.6:8443`.
fn pair_line(ha: &plantwatch_shared::api::ha::HaHealth) -> String {
    let own = ha.servers.first().map(|s| s.url.as_str());
    let others: Vec<&str> = ha
        .servers
        .iter()
        .map(|s| s.url.as_str())
        .filter(|url| Some(*url) != own)
        .collect();
    let peer = if others.is_empty() {
        "no peer seen".to_owned()
    } else {
        format!("peer {}", others.join(", "))
    };
    format!("{} {} (term {}), {peer}", ha.name, ha.role, ha.term)
}
