//! Dashboard: the server's status and who is signed in. Later issues add nodes, alerts and
//! collectors here.

use plantwatch_shared::api::Role;
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph, Wrap};

use super::{Ctx, Effect, View, ViewSpec};
use crate::cli::output::time_cell;
use crate::event::{Reply, Task};
use crate::keymap::{Action, Binding};

pub const SPEC: ViewSpec = ViewSpec {
    name: "dashboard",
    aliases: &["dash", "home", "d"],
    about: "server status and who is signed in",
    min_role: Role::Viewer,
    make: || Box::new(DashboardView),
};

pub struct DashboardView;

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
            "Nodes, alerts and collectors appear here once they are added.",
            theme.dim(),
        ));
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

    fn refresh(&self, _ctx: &Ctx) -> Vec<Task> {
        // The console refreshes the server's health and the session for every view.
        Vec::new()
    }

    fn on_action(&mut self, _action: Action, _ctx: &Ctx) -> Vec<Effect> {
        Vec::new()
    }

    fn on_reply(&mut self, _reply: &Reply, _ctx: &Ctx) -> Vec<Effect> {
        Vec::new()
    }
}
