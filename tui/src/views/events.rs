//! Events: the traps and syslog messages the collectors received, newest first, following live
//! (each second, what came since the newest shown, like `tail -f`); `p` pauses and resumes,
//! `/` filters, `Enter` shows one whole (every varbind).

use plantwatch_shared::api::{Event, EventQuery, Role};
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
    name: "events",
    aliases: &["traps", "syslog", "ev"],
    about: "traps and syslog messages the collectors received, following live",
    min_role: Role::Viewer,
    make: || Box::new(EventsView::new()),
};

/// Events the view holds at most (the oldest leave as new ones come).
pub const KEPT: usize = 1_000;

static COLUMNS: &[Column<Event>] = &[
    Column {
        title: "RECEIVED",
        sort_key: 'r',
        width: Constraint::Length(20),
        cell: |e| time_cell(Some(e.event.received_at)),
        cmp: |a, b| (a.event.received_at, a.id).cmp(&(b.event.received_at, b.id)),
    },
    Column {
        title: "SEVERITY",
        sort_key: 's',
        width: Constraint::Length(9),
        cell: |e| e.event.severity.to_string(),
        cmp: |a, b| b.event.severity.code().cmp(&a.event.severity.code()),
    },
    Column {
        title: "NODE",
        sort_key: 'n',
        width: Constraint::Length(22),
        cell: Event::sender,
        cmp: |a, b| crate::widgets::table::caseless(&a.sender(), &b.sender()),
    },
    Column {
        title: "KIND",
        sort_key: 'k',
        width: Constraint::Length(6),
        cell: |e| e.event.kind.to_string(),
        cmp: |a, b| a.event.kind.as_str().cmp(b.event.kind.as_str()),
    },
    Column {
        title: "WHAT",
        sort_key: 'w',
        width: Constraint::Length(18),
        cell: |e| e.event.what(),
        cmp: |a, b| a.event.what().cmp(&b.event.what()),
    },
    Column {
        title: "MESSAGE",
        sort_key: 'm',
        width: Constraint::Fill(1),
        cell: |e| e.event.message.replace(['\n', '\r'], " "),
        cmp: |a, b| a.event.message.cmp(&b.event.message),
    },
];

pub struct EventsView {
    pub table: DataTable<Event>,
    /// Not following: the list stays as it is until resumed.
    pub paused: bool,
    /// The newest event held: the next refresh asks for what came after it.
    newest: Option<i64>,
}

impl EventsView {
    pub fn new() -> Self {
        let mut table = DataTable::new(COLUMNS, |e| e.id.to_string());
        // Newest first.
        table.sort_by(0);
        table.sort_by(0);
        EventsView {
            table,
            paused: false,
            newest: None,
        }
    }

    /// Takes `events` (newest first, or, when following, oldest first), keeping the newest
    /// [`KEPT`].
    pub fn take(&mut self, events: &[Event]) {
        let mut rows: Vec<Event> = events.to_vec();
        rows.extend(self.table.rows().iter().cloned());
        rows.sort_by_key(|e| std::cmp::Reverse(e.id));
        rows.dedup_by_key(|e| e.id);
        rows.truncate(KEPT);
        self.newest = rows.first().map(|e| e.id).or(self.newest);
        self.table.set_rows(rows);
    }
}

impl Default for EventsView {
    fn default() -> Self {
        Self::new()
    }
}

/// Every field of an event, for the detail overlay.
pub fn detail_lines(e: &Event) -> Vec<(String, String)> {
    let ev = &e.event;
    let mut lines = vec![
        ("Received".to_owned(), time_cell(Some(ev.received_at))),
        ("From".to_owned(), format!("{} ({})", e.sender(), ev.source)),
        ("Collector".to_owned(), e.collector.clone()),
        ("Severity".to_owned(), ev.severity.to_string()),
        ("Message".to_owned(), ev.message.clone()),
    ];
    if let Some(trap) = &ev.trap {
        let kind = if trap.inform { "inform" } else { "trap" };
        lines.push(("Trap".into(), format!("{} {kind} {}", trap.version, trap.oid)));
        if let Some(name) = &trap.name {
            lines.push(("Name".into(), name.clone()));
        }
        if let Some(agent) = &trap.agent_address {
            lines.push(("Agent".into(), agent.clone()));
        }
        for varbind in &trap.varbinds {
            lines.push((
                varbind.oid.clone(),
                format!("{}: {}", varbind.value_type, varbind.value),
            ));
        }
    }
    if let Some(syslog) = &ev.syslog {
        lines.push(("Format".into(), syslog.format.clone()));
        lines.push(("Facility".into(), syslog.facility.clone()));
        for (label, value) in [
            ("Host", &syslog.hostname),
            ("Program", &syslog.program),
            ("Process", &syslog.procid),
            ("Message id", &syslog.msgid),
        ] {
            if let Some(value) = value {
                lines.push((label.into(), value.clone()));
            }
        }
        if syslog.sent_at.is_some() {
            lines.push(("Sent".into(), time_cell(syslog.sent_at)));
        }
    }
    lines
}

impl View for EventsView {
    fn title(&self) -> String {
        self.table.title("Events")
    }

    fn bindings(&self) -> Vec<Binding> {
        vec![
            Binding::new(
                &[Key::new(KeyCode::Enter)],
                Action::Open,
                "show the event whole (every varbind)",
            )
            .footer("details"),
            Binding::new(&[Key::ch('p')], Action::Pause, "pause or resume following")
                .footer(if self.paused { "resume" } else { "pause" }),
        ]
    }

    fn sort_keys(&self) -> Vec<(&'static str, char)> {
        self.table.sort_keys()
    }

    fn render(&self, frame: &mut Frame, area: Rect, ctx: &Ctx) {
        let title = if self.paused {
            "Events — paused (p resumes)"
        } else {
            "Events — following"
        };
        self.table.render(
            frame,
            area,
            title,
            "No events yet: turn on a collector's receivers \
             (plantwatch collectors receivers NAME --traps udp:162 --syslog udp:514).",
            ctx.theme,
        );
    }

    fn live(&self) -> bool {
        !self.paused
    }

    fn refresh(&self, ctx: &Ctx) -> Vec<Task> {
        let Some(client) = ctx.client.cloned() else {
            return Vec::new();
        };
        if self.paused {
            return Vec::new();
        }
        let query = EventQuery {
            after_id: self.newest,
            limit: Some(500),
            ..EventQuery::default()
        };
        vec![task("loading the events", async move {
            client.events(&query).await.map(Reply::Events)
        })]
    }

    fn on_action(&mut self, action: Action, _ctx: &Ctx) -> Vec<Effect> {
        match action {
            Action::Pause => {
                self.paused = !self.paused;
                if self.paused {
                    Vec::new()
                } else {
                    vec![Effect::Refresh]
                }
            }
            Action::Open => match self.table.selected() {
                Some(event) => vec![Effect::Open(Overlay::Detail {
                    title: format!("Event {} from {}", event.id, event.sender()),
                    lines: detail_lines(event),
                })],
                None => Vec::new(),
            },
            _ => Vec::new(),
        }
    }

    fn on_reply(&mut self, reply: &Reply, _ctx: &Ctx) -> Vec<Effect> {
        if let Reply::Events(list) = reply
            && !self.paused
        {
            self.take(&list.items);
        }
        Vec::new()
    }

    fn table(&mut self) -> Option<&mut dyn Navigate> {
        Some(&mut self.table)
    }
}
