//! Alert rules: built-in ones first. Operators create (`c`) and edit (`e`) a rule in a form
//! whose first Enter previews which nodes match and their current values, and whose second
//! Enter saves; `E` creates an event rule (traps, syslog) in its own form, which `e` opens
//! for one; `x` disables or enables, `d` deletes a custom rule.

use std::collections::BTreeMap;

use plantwatch_shared::api::{
    AlertRule, BuiltinRule, Comparison, RuleAggregation, RulePreviewRow, RuleScope, RuleSpec, Role,
};
use ratatui::Frame;
use ratatui::crossterm::event::KeyCode;
use ratatui::layout::{Constraint, Rect};

use super::{Ctx, Effect, Navigate, View, ViewSpec, event_rule_form, lifecycle};
use crate::event::{Reply, Task, task};
use crate::keymap::{Action, Binding, Key};
use crate::overlay::Overlay;
use crate::widgets::form::{Field, FieldKey, Form, Purpose};
use crate::widgets::table::{Column, DataTable, caseless};

// The fields of this view's forms: a label is written once, and a field is read by its id.
crate::field_ids! {
    Name = "Name",
    Metric = "Metric",
    Tags = "Tags",
    Scope = "Scope",
    ScopeValue = "Scope value",
    Aggregation = "Aggregation",
    WindowS = "Window s",
    Comparison = "Comparison",
    Warning = "Warning",
    Critical = "Critical",
    Clear = "Clear",
    ForS = "For s",
}

pub const SPEC: ViewSpec = ViewSpec {
    name: "rules",
    aliases: &["ru", "alert-rules", "event-rules"],
    about: "alert rules: thresholds, event rules, built-in tuning",
    min_role: Role::Viewer,
    make: || Box::new(RulesView::new()),
};

crate::asks!(
    RULE_FORM,
    DELETE,
);

const SCOPES: &[&str] = &["all", "type", "tag", "template", "node"];
const AGGREGATIONS: &[&str] = &["last", "avg", "min", "max", "rate"];
const COMPARISONS: &[&str] = &[">", ">=", "<", "<="];

fn number(v: Option<f64>) -> String {
    v.map_or_else(|| "-".to_owned(), |v| v.to_string())
}

fn thresholds(r: &AlertRule) -> String {
    let s = &r.spec;
    if let Some(event) = &s.event {
        return format!(
            "{} expires {}",
            event.severity,
            crate::cli::event_rules::expiry_cell(event.expire_s)
        );
    }
    match (r.builtin, s.metric.as_deref().filter(|m| !m.is_empty())) {
        (Some(BuiltinRule::CollectorOutboxLag), None) => {
            return format!("lag s w {} c {}", number(s.warning), number(s.critical));
        }
        (Some(_), None) => return format!("silent {} s", s.window_s),
        _ => {}
    }
    format!(
        "{} w {} c {} clear {}",
        s.comparison,
        number(s.warning),
        number(s.critical),
        number(s.clear)
    )
}

/// What a rule reads: its metric, or an event rule's events.
fn metric(r: &AlertRule) -> String {
    match (&r.spec.event, &r.spec.metric) {
        (Some(event), _) => format!("events: {}", event.on.describe()),
        (None, Some(metric)) if !metric.is_empty() => metric.clone(),
        (None, _) => "-".into(),
    }
}

static COLUMNS: &[Column<AlertRule>] = &[
    Column {
        title: "NAME",
        sort_key: 'n',
        width: Constraint::Length(22),
        cell: |r| r.spec.name.clone(),
        cmp: |a, b| caseless(&a.spec.name, &b.spec.name),
    },
    Column {
        title: "KIND",
        sort_key: 'k',
        width: Constraint::Length(8),
        cell: |r| if r.builtin.is_some() { "built-in" } else { "custom" }.into(),
        cmp: |a, b| a.builtin.is_none().cmp(&b.builtin.is_none()),
    },
    Column {
        title: "ON",
        sort_key: 'o',
        width: Constraint::Length(3),
        cell: |r| if r.spec.enabled { "yes" } else { "no" }.into(),
        cmp: |a, b| a.spec.enabled.cmp(&b.spec.enabled),
    },
    Column {
        title: "METRIC",
        sort_key: 'm',
        width: Constraint::Fill(1),
        cell: metric,
        cmp: |a, b| metric(a).cmp(&metric(b)),
    },
    Column {
        title: "OVER",
        sort_key: 'w',
        width: Constraint::Length(9),
        cell: |r| match r.spec.metric.as_deref().filter(|m| !m.is_empty()) {
            Some(_) => format!("{} {}s", r.spec.aggregation, r.spec.window_s),
            None => "-".into(),
        },
        cmp: |a, b| a.spec.window_s.cmp(&b.spec.window_s),
    },
    Column {
        title: "THRESHOLDS",
        sort_key: 't',
        width: Constraint::Fill(1),
        cell: thresholds,
        cmp: |a, b| thresholds(a).cmp(&thresholds(b)),
    },
];

pub struct RulesView {
    pub table: DataTable<AlertRule>,
    /// The rule being edited (`None`: a new one).
    editing: Option<AlertRule>,
    /// The spec last previewed: submitting it unchanged saves it.
    previewed: Option<RuleSpec>,
    /// The form last submitted, reopened with the preview.
    form: Option<Form>,
}

impl RulesView {
    pub fn new() -> Self {
        let mut table = DataTable::new(COLUMNS, |r| r.id.to_string());
        table.sort_by(1);
        RulesView {
            table,
            editing: None,
            previewed: None,
            form: None,
        }
    }
}

impl RulesView {
    /// Saves `spec`: the rule edited, or a new one.
    fn save(
        &self,
        spec: RuleSpec,
        form: &mut Form,
        client: plantwatch_shared::Client,
    ) -> Vec<Effect> {
        let editing = self.editing.as_ref().map(|r| r.id);
        vec![Effect::Call(form.submit("saving the rule", async move {
            let rule = match editing {
                Some(id) => client.update_rule(id, &spec).await?,
                None => client.create_rule(&spec).await?,
            };
            Ok(Reply::RuleSaved(Box::new(rule)))
        }))]
    }
}

impl Default for RulesView {
    fn default() -> Self {
        Self::new()
    }
}

/// The editor's fields, filled from `spec`.
pub fn rule_form(title: String, spec: &RuleSpec, builtin: bool) -> Form {
    let opt = |v: Option<f64>| v.map(|v| v.to_string()).unwrap_or_default();
    let tags = spec
        .tags
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(";");
    let mut fields = vec![
        Field::text(FieldId::Name).with_value(spec.name.clone()),
        Field::text(FieldId::Metric).with_value(spec.metric.clone().unwrap_or_default()),
        Field::text(FieldId::Tags).with_value(tags).optional(),
        Field::choice(FieldId::Scope, SCOPES, spec.scope.as_str()),
        Field::text(FieldId::ScopeValue)
            .with_value(spec.scope_value.clone().unwrap_or_default())
            .optional(),
        Field::choice(FieldId::Aggregation, AGGREGATIONS, spec.aggregation.as_str()),
        Field::text(FieldId::WindowS).with_value(spec.window_s.to_string()).checked(seconds),
        Field::choice(FieldId::Comparison, COMPARISONS, spec.comparison.as_str()),
        Field::text(FieldId::Warning).with_value(opt(spec.warning)).optional().checked(decimal),
        Field::text(FieldId::Critical).with_value(opt(spec.critical)).optional().checked(decimal),
        Field::text(FieldId::Clear).with_value(opt(spec.clear)).optional().checked(decimal),
        Field::text(FieldId::ForS).with_value(spec.for_s.to_string()).checked(seconds),
    ];
    if builtin {
        // A built-in rule keeps its name and metric.
        fields.retain(|f| f.label != FieldId::Name.label() && f.label != FieldId::Metric.label());
        if spec.metric.is_none() {
            fields.retain(|f| f.label != FieldId::Tags.label() && f.label != FieldId::Aggregation.label());
        }
    }
    Form::new(title, Purpose::View(RULE_FORM), fields)
        .with_note("Enter previews the nodes it matches now; Enter again saves.")
}

fn seconds(text: &str) -> Result<(), String> {
    text.trim()
        .parse::<u32>()
        .map(drop)
        .map_err(|_| "a whole number of seconds".to_owned())
}

fn decimal(text: &str) -> Result<(), String> {
    if text.trim().is_empty() {
        return Ok(());
    }
    text.trim()
        .parse::<f64>()
        .map(drop)
        .map_err(|_| "a number, or empty".to_owned())
}

/// The spec a filled editor describes, on top of `base`.
pub fn read_rule_form(form: &Form, base: &RuleSpec) -> RuleSpec {
    let text = |label: FieldId| form.value(label).trim().to_owned();
    let has = |label: FieldId| form.fields.iter().any(|f| f.label == label.label());
    let number = |label: FieldId| text(label).parse::<f64>().ok();
    let mut spec = base.clone();
    if has(FieldId::Name) {
        spec.name = text(FieldId::Name);
        spec.metric = Some(text(FieldId::Metric)).filter(|m| !m.is_empty());
    }
    if has(FieldId::Tags) {
        spec.tags = text(FieldId::Tags)
            .split(';')
            .filter_map(|pair| pair.split_once('='))
            .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
            .collect::<BTreeMap<_, _>>();
    }
    spec.scope = text(FieldId::Scope).parse().unwrap_or(RuleScope::All);
    spec.scope_value = Some(text(FieldId::ScopeValue)).filter(|v| !v.is_empty());
    if has(FieldId::Aggregation) {
        spec.aggregation = text(FieldId::Aggregation).parse().unwrap_or(RuleAggregation::Last);
    }
    spec.window_s = text(FieldId::WindowS).parse().unwrap_or(spec.window_s);
    spec.comparison = text(FieldId::Comparison).parse().unwrap_or(Comparison::Above);
    spec.warning = number(FieldId::Warning);
    spec.critical = number(FieldId::Critical);
    spec.clear = number(FieldId::Clear);
    spec.for_s = text(FieldId::ForS).parse().unwrap_or(spec.for_s);
    spec
}

/// The preview as the form's note: how many series match, how many breach now, and the
/// first few with their values.
pub fn preview_note(rows: &[RulePreviewRow]) -> String {
    if rows.is_empty() {
        return "No node has data for this metric now. Enter saves anyway.".into();
    }
    let breaching = rows.iter().filter(|r| r.severity.is_some()).count();
    let shown: Vec<String> = rows
        .iter()
        .take(PREVIEW_ROWS)
        .map(|row| {
let value = crate::cli::alerts::value_cell(row.value);
            let state = row.severity.map_or_else(|| "ok".to_owned(), |s| s.to_string());
            format!("{} {value} {state}", row.node)
        })
        .collect();
    let more = rows.len().saturating_sub(PREVIEW_ROWS);
    format!(
        "Matches {} series, {breaching} breaching now: {}{}. Enter saves.",
        rows.len(),
        shown.join(", "),
        if more > 0 { format!(" and {more} more") } else { String::new() }
    )
}

/// Series named in the preview note.
const PREVIEW_ROWS: usize = 4;

impl View for RulesView {
    fn title(&self) -> String {
        self.table.title("Alert rules")
    }

    fn bindings(&self) -> Vec<Binding> {
        vec![
            Binding::new(&[Key::ch('c')], Action::Create, "new rule (previewed before saving)")
                .footer("new")
                .role(Role::Operator),
            Binding::new(&[Key::ch('E')], Action::NewEventRule, "new event rule (traps, syslog)")
                .footer("event rule")
                .role(Role::Operator),
            Binding::new(&[Key::ch('e'), Key::new(KeyCode::Enter)], Action::Edit, "edit the rule")
                .footer("edit")
                .role(Role::Operator),
            Binding::new(&[Key::ch('x')], Action::Toggle, "disable or enable the rule")
                .footer("on/off")
                .role(Role::Operator),
            Binding::new(&[Key::ch('d')], Action::Delete, "delete a custom rule")
                .role(Role::Operator),
        ]
    }

    fn sort_keys(&self) -> Vec<(&'static str, char)> {
        self.table.sort_keys()
    }

    fn render(&self, frame: &mut Frame, area: Rect, ctx: &Ctx) {
        self.table
            .render(frame, area, "Alert rules", "No rules.", ctx.theme);
    }

    fn refresh(&self, ctx: &Ctx) -> Vec<Task> {
        let Some(client) = ctx.client.cloned() else {
            return Vec::new();
        };
        vec![task("loading alert rules", async move {
            client.list_rules().await.map(Reply::Rules)
        })]
    }

    fn on_action(&mut self, action: Action, ctx: &Ctx) -> Vec<Effect> {
        self.previewed = None;
        if action == Action::Create {
            self.editing = None;
            let mut spec = RuleSpec::new("", "");
            spec.metric = None;
            return vec![Effect::Open(Overlay::Form(
                rule_form("New alert rule".into(), &spec, false).focus_first_empty(),
            ))];
        }
        if action == Action::NewEventRule {
            self.editing = None;
            return vec![Effect::Open(Overlay::Form(
                event_rule_form::form("New event rule".into(), &event_rule_form::new_spec(), false)
                    .focus_first_empty(),
            ))];
        }
        let Some(rule) = self.table.selected().cloned() else {
            return vec![Effect::Info("No rule selected.".into())];
        };
        let Some(client) = ctx.client.cloned() else {
            return Vec::new();
        };
        let effects = match action {
            Action::Edit if rule.spec.event.is_some() => {
                vec![Effect::Open(Overlay::Form(event_rule_form::form(
                    format!("Event rule {}", rule.spec.name),
                    &rule.spec,
                    rule.builtin.is_some(),
                )))]
            }
            Action::Edit => vec![Effect::Open(Overlay::Form(rule_form(
                format!("Rule {}", rule.spec.name),
                &rule.spec,
                rule.builtin.is_some(),
            )))],
            Action::Toggle => {
                let spec = RuleSpec {
                    enabled: !rule.spec.enabled,
                    ..rule.spec.clone()
                };
                let id = rule.id;
                vec![Effect::Call(task("switching the rule", async move {
                    let rule = client.update_rule(id, &spec).await?;
                    Ok(Reply::RuleSaved(Box::new(rule)))
                }))]
            }
            Action::Delete if rule.builtin.is_some() => vec![Effect::Info(format!(
                "{} is built in: press x to disable it instead.",
                rule.spec.name
            ))],
            Action::Delete => lifecycle::ask_delete(
                "rule",
                &rule.spec.name,
                "Its alerts and their history go with it.",
                DELETE,
            ),
            _ => return Vec::new(),
        };
        self.editing = Some(rule);
        effects
    }

    fn on_submit(&mut self, form: &mut Form, ctx: &Ctx) -> Vec<Effect> {
        let Some(client) = ctx.client.cloned() else {
            return Vec::new();
        };
        if form.purpose == event_rule_form::PURPOSE && form.validate() {
            let base = self
                .editing
                .as_ref()
                .map_or_else(event_rule_form::new_spec, |r| r.spec.clone());
            let spec = event_rule_form::read(form, &base);
            return self.save(spec, form, client);
        }
        if form.purpose != Purpose::View(RULE_FORM) || !form.validate() {
            return Vec::new();
        }
        let base = self.editing.as_ref().map_or_else(
            || {
                let mut spec = RuleSpec::new("", "");
                spec.metric = None;
                spec
            },
            |r| r.spec.clone(),
        );
        let spec = read_rule_form(form, &base);
        if self.previewed.as_ref() != Some(&spec) {
            self.previewed = Some(spec.clone());
            self.form = Some(form.clone());
            return vec![Effect::Call(form.submit("previewing the rule", async move {
                client
                    .preview_rule(&spec)
                    .await
                    .map(|list| Reply::RulePreview(list.items))
            }))];
        }
        self.save(spec, form, client)
    }

    fn on_confirm(&mut self, tag: crate::widgets::form::Ask, ctx: &Ctx) -> Vec<Effect> {
        let (DELETE, Some(rule), Some(client)) = (tag, &self.editing, ctx.client.cloned()) else {
            return Vec::new();
        };
        let (id, name) = (rule.id, rule.spec.name.clone());
        vec![Effect::Call(task("deleting the rule", async move {
            client.delete_rule(id).await.map(|()| Reply::RuleDeleted(name))
        }))]
    }

    fn on_reply(&mut self, reply: &Reply, _ctx: &Ctx) -> Vec<Effect> {
        match reply {
            Reply::Rules(list) => {
                self.table.set_rows(list.items.clone());
                Vec::new()
            }
            Reply::RulePreview(rows) => {
                let Some(mut form) = self.form.take() else {
                    return Vec::new();
                };
                form.busy = None;
                form.note = Some(preview_note(rows));
                vec![Effect::Open(Overlay::Form(form))]
            }
            Reply::RuleSaved(rule) => {
                self.previewed = None;
                lifecycle::saved("rule", &rule.spec.name, false)
            }
            Reply::RuleDeleted(name) => lifecycle::deleted("rule", name),
            _ => Vec::new(),
        }
    }

    fn table(&mut self) -> Option<&mut dyn Navigate> {
        Some(&mut self.table)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_editor_reads_back_what_it_shows() {
        let mut spec = RuleSpec {
            warning: Some(80.0),
            critical: Some(90.0),
            clear: Some(70.0),
            window_s: 300,
            for_s: 60,
            scope: RuleScope::Tag,
            scope_value: Some("line-1".into()),
            aggregation: RuleAggregation::Avg,
            ..RuleSpec::new("hot", "temperature.celsius")
        };
        spec.tags.insert("sensor".into(), "zone*".into());
        let form = rule_form("x".into(), &spec, false);
        assert_eq!(read_rule_form(&form, &spec), spec);
        let builtin = rule_form("x".into(), &spec, true);
        assert!(builtin.fields.iter().all(|f| f.label != FieldId::Name.label()));
        assert_eq!(read_rule_form(&builtin, &spec), spec);
    }
}
