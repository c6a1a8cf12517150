//! Device templates and Modbus profiles: what each polls, how often, how many nodes use it and
//! where it came from; `Enter` shows one whole as the server resolved it (parents included).

use plantwatch_shared::api::{Role, Template, TemplateDef};
use ratatui::Frame;
use ratatui::crossterm::event::KeyCode;
use ratatui::layout::{Constraint, Rect};

use super::{Ctx, Effect, Navigate, View, ViewSpec};
use crate::event::{Reply, Task, task};
use crate::keymap::{Action, Binding, Key};
use crate::overlay::Overlay;
use crate::widgets::table::{Column, DataTable, caseless};

pub const SPEC: ViewSpec = ViewSpec {
    name: "templates",
    aliases: &["tpl", "profiles"],
    about: "device templates and Modbus profiles",
    min_role: Role::Viewer,
    make: || Box::new(TemplatesView::new()),
};

static COLUMNS: &[Column<Template>] = &[
    Column {
        title: "NAME",
        sort_key: 'n',
        width: Constraint::Length(22),
        cell: |t| t.name.clone(),
        cmp: |a, b| caseless(&a.name, &b.name),
    },
    Column {
        title: "VENDOR",
        sort_key: 'v',
        width: Constraint::Length(14),
        cell: |t| t.vendor.clone().unwrap_or_else(|| "-".into()),
        cmp: |a, b| a.vendor.cmp(&b.vendor),
    },
    Column {
        title: "VALUES",
        sort_key: 'l',
        width: Constraint::Length(6),
        cell: |t| t.metric_count.to_string(),
        cmp: |a, b| a.metric_count.cmp(&b.metric_count),
    },
    Column {
        title: "EVERY",
        sort_key: 'e',
        width: Constraint::Length(6),
        cell: |t| format!("{} s", t.interval_s),
        cmp: |a, b| a.interval_s.cmp(&b.interval_s),
    },
    Column {
        title: "NODES",
        sort_key: 'o',
        width: Constraint::Length(5),
        cell: |t| t.node_count.to_string(),
        cmp: |a, b| a.node_count.cmp(&b.node_count),
    },
    Column {
        title: "SOURCE",
        sort_key: 's',
        width: Constraint::Fill(1),
        cell: |t| t.source.clone(),
        cmp: |a, b| a.source.cmp(&b.source),
    },
];

pub struct TemplatesView {
    pub table: DataTable<Template>,
}

impl TemplatesView {
    pub fn new() -> Self {
        TemplatesView {
            table: DataTable::new(COLUMNS, |t| t.name.clone()),
        }
    }
}

impl Default for TemplatesView {
    fn default() -> Self {
        Self::new()
    }
}

/// What a template reads, one line per value: `ups.load_pct  1.3.6.1.2.1.33.1.4.4.1.5`.
pub fn values_text(def: &TemplateDef) -> String {
    let mut lines: Vec<String> = Vec::new();
    for group in &def.scalars {
        for field in &group.fields {
            lines.push(format!("{}.{}  {}", group.measurement, field.name, field.oid));
        }
    }
    for table in &def.tables {
        for field in &table.fields {
            lines.push(format!("{}.{}  {} (table)", table.measurement, field.name, field.oid));
        }
    }
    if let Some(modbus) = &def.modbus {
        for point in &modbus.points {
            lines.push(format!(
                "{}  {} {} {}{}",
                point.name,
                point.function,
                point.address,
                point.data_type,
                point.unit.as_ref().map(|u| format!(" ({u})")).unwrap_or_default()
            ));
        }
    }
    if lines.is_empty() {
        "-".into()
    } else {
        lines.join("\n")
    }
}

fn detail_lines(template: &Template) -> Vec<(String, String)> {
    let or_dash = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
    let fingerprints = template
        .fingerprints
        .iter()
        .map(|f| match &f.sys_descr {
            Some(descr) => format!("{} with \"{descr}\"", f.sys_object_id),
            None => f.sys_object_id.clone(),
        })
        .collect::<Vec<_>>()
        .join("\n");
    let mut lines = vec![
        ("Name".into(), template.name.clone()),
        ("Vendor".into(), or_dash(&template.vendor)),
        ("About".into(), or_dash(&template.description)),
        ("Every".into(), format!("{} s", template.interval_s)),
        ("Nodes".into(), template.node_count.to_string()),
        ("Source".into(), template.source.clone()),
        (
            "Recognises".into(),
            if fingerprints.is_empty() { "-".into() } else { fingerprints },
        ),
    ];
    if let Some(def) = &template.definition {
        lines.push(("Reads".into(), values_text(def)));
    }
    lines
}

impl View for TemplatesView {
    fn title(&self) -> String {
        self.table.title("Templates")
    }

    fn bindings(&self) -> Vec<Binding> {
        vec![
            Binding::new(
                &[Key::new(KeyCode::Enter)],
                Action::Open,
                "the template whole: what it recognises and reads",
            )
            .footer("details"),
        ]
    }

    fn sort_keys(&self) -> Vec<(&'static str, char)> {
        self.table.sort_keys()
    }

    fn render(&self, frame: &mut Frame, area: Rect, ctx: &Ctx) {
        self.table
            .render(frame, area, "Templates", "The server has no templates.", ctx.theme);
    }

    fn refresh(&self, ctx: &Ctx) -> Vec<Task> {
        let Some(client) = ctx.client.cloned() else {
            return Vec::new();
        };
        vec![task("loading the templates", async move {
            client.list_templates().await.map(Reply::Templates)
        })]
    }

    fn on_action(&mut self, action: Action, ctx: &Ctx) -> Vec<Effect> {
        let (Action::Open, Some(template), Some(client)) =
            (action, self.table.selected(), ctx.client.cloned())
        else {
            return Vec::new();
        };
        let id = template.id;
        vec![Effect::Call(task("loading the template", async move {
            client
                .get_template(id)
                .await
                .map(|t| Reply::TemplateDetail(Box::new(t)))
        }))]
    }

    fn on_reply(&mut self, reply: &Reply, _ctx: &Ctx) -> Vec<Effect> {
        match reply {
            Reply::Templates(list) => {
                self.table.set_rows(list.items.clone());
                Vec::new()
            }
            Reply::TemplateDetail(template) => vec![Effect::Open(Overlay::Detail {
                title: format!("Template {}", template.name),
                lines: detail_lines(template),
            })],
            _ => Vec::new(),
        }
    }

    fn table(&mut self) -> Option<&mut dyn Navigate> {
        Some(&mut self.table)
    }
}
