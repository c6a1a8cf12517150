//! Drawing the console: header, banner, the current view, status line, footer and overlays.
//! Pure functions of `&App`.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use crate::app::{App, Screen};
use crate::keymap::Binding;
use crate::overlay::Overlay;
use crate::widgets::centered;

pub fn render(app: &App, frame: &mut Frame) {
    match &app.screen {
        Screen::Login(form) | Screen::Setup(form) => render_entry(app, form, frame),
        Screen::Main => render_main(app, frame),
    }
    if let Some(overlay) = &app.overlay {
        overlay.render(frame, app);
    }
}

fn render_entry(app: &App, form: &crate::widgets::form::Form, frame: &mut Frame) {
    let area = frame.area();
    let [title, body, status] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Fill(1),
        Constraint::Length(1),
    ])
    .areas(area);
    frame.render_widget(
        Paragraph::new(Line::styled(
            format!(" plantwatch {}", env!("CARGO_PKG_VERSION")),
            app.theme.header(),
        ))
        .style(app.theme.header()),
        title,
    );
    let width = body.width.saturating_sub(4).min(76);
    form.render(frame, centered(body, width, form.height(width)), app.theme);
    render_status(app, frame, status, "Ctrl+C quits");
}

fn render_main(app: &App, frame: &mut Frame) {
    let down = app.server.as_ref().and_then(|s| s.unreachable.as_ref());
    let [header, banner, body, status, footer] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(u16::from(down.is_some())),
        Constraint::Fill(1),
        Constraint::Length(1),
        Constraint::Length(1),
    ])
    .areas(frame.area());
    render_header(app, frame, header);
    if let Some(down) = down {
        let clock = time::macros::format_description!("[hour]:[minute]:[second]");
        let text = format!(
            " ✖ Server unreachable since {} UTC; retrying every {} s; last data shown. {}",
            down.since.format(&clock).unwrap_or_default(),
            crate::app::RETRY_EVERY.whole_seconds(),
            down.reason
        );
        frame.render_widget(
            Paragraph::new(Line::styled(text, app.theme.banner())).style(app.theme.banner()),
            banner,
        );
    }
    app.view().render(frame, body, &app.ctx());
    match &app.overlay {
        Some(Overlay::Filter { input, .. }) => render_input(
            app,
            frame,
            status,
            ("/", input),
            "Enter keeps · Esc clears · ! first inverts",
        ),
        Some(Overlay::Palette { input }) => render_input(
            app,
            frame,
            status,
            (":", input),
            "Tab completes · Enter goes · Esc cancels",
        ),
        _ => render_status(app, frame, status, ""),
    }
    render_footer(app, frame, footer);
}

/// A line being typed (`/filter`, `:view`) with its cursor and a hint.
fn render_input(
    app: &App,
    frame: &mut Frame,
    area: Rect,
    (prompt, input): (&str, &str),
    hint: &str,
) {
    let line = Line::from(vec![
        Span::styled(prompt.to_owned(), app.theme.key()),
        Span::raw(input.to_owned()),
        Span::styled("▏", app.theme.key()),
        Span::styled(format!("   {hint}"), app.theme.dim()),
    ]);
    frame.render_widget(Paragraph::new(line), area);
}

fn render_header(app: &App, frame: &mut Frame, area: Rect) {
    let theme = app.theme;
    let mut spans = vec![Span::raw(" plantwatch")];
    if let Some(session) = &app.session {
        let context = if session.saved {
            session.context.name.as_str()
        } else {
            "(trusted once)"
        };
        spans.push(Span::raw(format!("  ctx {context}")));
        match &session.me {
            Some(me) => {
                let read_only = if me.user.role == plantwatch_shared::api::Role::Viewer {
                    ", read-only"
                } else {
                    ""
                };
                spans.push(Span::raw(format!(
                    "  {} ({}{read_only})",
                    me.user.username, me.user.role
                )));
            }
            None => spans.push(Span::raw("  …")),
        }
    }
    let online = match &app.server {
        Some(server) if server.unreachable.is_some() => "✖ offline",
        Some(server) if server.health.is_some() => "● online",
        _ => "… connecting",
    };
    let clock = time::macros::format_description!("[hour]:[minute]:[second]");
    let label = if area.width >= 100 {
        "server time "
    } else {
        ""
    };
    let right = format!(
        "{online}  {label}{} UTC ",
        app.server_time().format(&clock).unwrap_or_default()
    );
    let [left_area, right_area] = Layout::horizontal([
        Constraint::Fill(1),
        Constraint::Length(u16::try_from(right.chars().count()).unwrap_or(0)),
    ])
    .areas(area);
    frame.render_widget(
        Paragraph::new(Line::from(spans)).style(theme.header()),
        left_area,
    );
    frame.render_widget(
        Paragraph::new(Line::raw(right)).style(theme.header()),
        right_area,
    );
}

fn render_status(app: &App, frame: &mut Frame, area: Rect, idle: &str) {
    let line = match &app.status {
        Some(status) if status.error => {
            Line::styled(format!("✖ {}", status.text), app.theme.error())
        }
        Some(status) => Line::raw(status.text.clone()),
        None => Line::styled(idle.to_owned(), app.theme.dim()),
    };
    frame.render_widget(Paragraph::new(line), area);
}

fn key_spans(binding: &Binding, theme: crate::theme::Theme, label: &str) -> Vec<Span<'static>> {
    let key = binding
        .keys
        .first()
        .map(ToString::to_string)
        .unwrap_or_default();
    vec![
        Span::styled(format!("<{key}>"), theme.key()),
        Span::raw(format!("{label} ")),
    ]
}

fn render_footer(app: &App, frame: &mut Frame, area: Rect) {
    let spans: Vec<Span> = app
        .bindings()
        .iter()
        .filter_map(|b| b.footer.map(|label| key_spans(b, app.theme, label)))
        .flatten()
        .collect();
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
}
