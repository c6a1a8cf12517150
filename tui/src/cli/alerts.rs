//! `plantwatch alerts list|show|ack|unack`, `plantwatch rules
//! list|show|create|update|disable|enable|delete|preview`, `plantwatch maintenance
//! create|list|end` and `plantwatch notify list|create|delete|test`.

use std::path::PathBuf;

use anyhow::{Context as _, bail};
use clap::{Args, Subcommand};
use plantwatch_shared::api::{
    Alert, AlertQuery, AlertRule, ChannelSpec, Comparison, MAX_PAGE_LIMIT, MaintenanceScope,
    MaintenanceSpec, MaintenanceWindow, Recurrence, RuleAggregation, RuleScope, RuleSpec, Severity,
};
use time::OffsetDateTime;

use super::output::Format;
use super::usage;
use super::{Session, confirm};
use crate::cells::parse_duration;
use crate::cells::{channel_target, time_cell};

#[derive(Debug, Subcommand)]
pub enum AlertsCommand {
    /// List alerts: active ones (pending and firing) first by severity, newest first.
    #[command(alias = "ls")]
    List {
        #[command(flatten)]
        filters: AlertFilters,
    },
    /// Show an alert with its history and notification deliveries.
    Show { id: i64 },
    /// Acknowledge alerts (operators): repeats stop; who and when are recorded. Give their
    /// ids (`ack 3 4 5`), or `--all-matching` with the filters of `list`.
    Ack {
        #[arg(
            required_unless_present = "all_matching",
            conflicts_with = "all_matching"
        )]
        ids: Vec<i64>,
        /// Every alert that `list` shows with the same filters (not yet acknowledged).
        #[arg(long)]
        all_matching: bool,
        #[command(flatten)]
        filters: AlertFilters,
        /// Why, for the next shift.
        #[arg(long, short = 'm')]
        comment: Option<String>,
    },
    /// Take an acknowledgement back (operators).
    Unack { id: i64 },
    /// Leave the alert's series alone from now on (operators): an unused port, a scratch
    /// mount. The alert resolves; its rule no longer judges that series on that node.
    Ignore {
        id: i64,
        /// Why, for whoever wonders later.
        #[arg(long, short = 'm')]
        comment: Option<String>,
    },
    /// List the series the rules leave alone.
    Ignored,
    /// Judge an ignored series again (operators), by the id `alerts ignored` shows.
    Unignore { id: i64 },
}

/// The filters of `alerts list` (and `alerts ack --all-matching`).
#[derive(Debug, Clone, Args)]
pub struct AlertFilters {
    /// active (default), firing, pending, resolved or all.
    #[arg(long, default_value = "active")]
    pub state: String,
    /// Only this severity: warning or critical.
    #[arg(long)]
    pub severity: Option<Severity>,
    /// Only alerts of this node.
    #[arg(long)]
    pub node: Option<String>,
    /// Only alerts whose node, rule, series or message contains this text.
    #[arg(long)]
    pub search: Option<String>,
}

impl AlertFilters {
    /// Every alert matching, page by page.
    async fn all(&self, client: &plantwatch_shared::Client) -> anyhow::Result<Vec<Alert>> {
        let node_id = match &self.node {
            Some(name) => Some(client.node_by_name(name).await?.id),
            None => None,
        };
        let mut out = Vec::new();
        loop {
            let page = client
                .list_alerts(&AlertQuery {
                    state: Some(self.state.clone()),
                    severity: self.severity,
                    node_id,
                    q: self.search.clone(),
                    limit: Some(MAX_PAGE_LIMIT),
                    offset: Some(out.len() as u32),
                })
                .await?;
            let done = page.items.len() < MAX_PAGE_LIMIT as usize;
            out.extend(page.items);
            if done || out.len() as u64 >= page.total {
                return Ok(out);
            }
        }
    }
}

/// The fields of a rule on the command line; on `update`, only those given change.
#[derive(Debug, Clone, Default, Args)]
pub struct RuleArgs {
    /// measurement.field; alternatives separated by `|`.
    #[arg(long)]
    pub metric: Option<String>,
    /// Tag matcher `key=pattern` (`*` matches any text); repeat for several.
    #[arg(long = "match", value_name = "KEY=PATTERN")]
    pub matchers: Vec<String>,
    /// all, type, tag, template or node.
    #[arg(long)]
    pub scope: Option<RuleScope>,
    /// The type, tag, template or node name the scope names.
    #[arg(long)]
    pub scope_value: Option<String>,
    /// last, avg, min, max or rate.
    #[arg(long)]
    pub aggregation: Option<RuleAggregation>,
    /// Window the aggregation covers: 60s, 5m, … (at most 15m).
    #[arg(long, value_parser = parse_duration)]
    pub window: Option<u64>,
    /// `>`, `>=`, `<` or `<=`.
    #[arg(long, allow_hyphen_values = true)]
    pub comparison: Option<Comparison>,
    #[arg(long, allow_hyphen_values = true)]
    pub warning: Option<f64>,
    #[arg(long, allow_hyphen_values = true)]
    pub critical: Option<f64>,
    /// Resolve only once the value is back past this (hysteresis).
    #[arg(long, allow_hyphen_values = true)]
    pub clear: Option<f64>,
    /// How long the condition must hold before the alert fires: 0, 30s, 5m, …
    #[arg(long = "for", value_parser = parse_for)]
    pub for_s: Option<u64>,
    #[arg(long)]
    pub description: Option<String>,
}

fn parse_for(text: &str) -> Result<u64, String> {
    if text.trim() == "0" {
        Ok(0)
    } else {
        parse_duration(text)
    }
}

impl RuleArgs {
    fn apply(self, spec: &mut RuleSpec) -> anyhow::Result<()> {
        if let Some(metric) = self.metric {
            spec.metric = Some(metric);
        }
        for matcher in self.matchers {
            let Some((key, pattern)) = matcher.split_once('=') else {
                usage!("--match takes KEY=PATTERN (or KEY!=PATTERN to exclude), not {matcher:?}");
            };
            spec.tags
                .insert(key.trim().to_owned(), pattern.trim().to_owned());
        }
        if let Some(scope) = self.scope {
            spec.scope = scope;
        }
        if self.scope_value.is_some() {
            spec.scope_value = self.scope_value;
        }
        if let Some(aggregation) = self.aggregation {
            spec.aggregation = aggregation;
        }
        if let Some(window) = self.window {
            spec.window_s = match u32::try_from(window) {
                Ok(window) => window,
                Err(_) => usage!("--window is too long"),
            };
        }
        if let Some(comparison) = self.comparison {
            spec.comparison = comparison;
        }
        if self.warning.is_some() {
            spec.warning = self.warning;
        }
        if self.critical.is_some() {
            spec.critical = self.critical;
        }
        if self.clear.is_some() {
            spec.clear = self.clear;
        }
        if let Some(for_s) = self.for_s {
            spec.for_s = match u32::try_from(for_s) {
                Ok(for_s) => for_s,
                Err(_) => usage!("--for is too long"),
            };
        }
        if self.description.is_some() {
            spec.description = self.description;
        }
        Ok(())
    }
}

#[derive(Debug, Subcommand)]
pub enum RulesCommand {
    /// List alert rules, built-in first.
    #[command(alias = "ls")]
    List,
    /// Show one rule.
    Show { name: String },
    /// Create a custom rule (operators).
    Create {
        name: String,
        #[command(flatten)]
        fields: RuleArgs,
        /// Create it disabled.
        #[arg(long)]
        disabled: bool,
    },
    /// Change a rule (operators): only the options given change. Built-in rules keep their
    /// name and metric.
    Update {
        name: String,
        #[command(flatten)]
        fields: RuleArgs,
    },
    /// Disable a rule (operators): its open alerts resolve; built-in rules can only be
    /// disabled, not deleted.
    Disable { name: String },
    /// Enable a rule again (operators).
    Enable { name: String },
    /// Delete a custom rule (operators).
    #[command(alias = "rm")]
    Delete {
        name: String,
        #[arg(long, short = 'y')]
        yes: bool,
    },
    /// Show which nodes a rule would match now, with their current values.
    Preview {
        /// An existing rule, changed by the options given (or a new one named so).
        name: String,
        #[command(flatten)]
        fields: RuleArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum MaintenanceCommand {
    /// Put a node, a tag or a collector's nodes into maintenance (operators): alerts are held,
    /// nothing is notified, health shows maintenance.
    Create {
        /// What the window is for.
        name: String,
        /// One node, by name.
        #[arg(long, group = "target")]
        node: Option<String>,
        /// Every node with this tag.
        #[arg(long, group = "target")]
        tag: Option<String>,
        /// Every node of this collector, and the collector.
        #[arg(long, group = "target")]
        collector: Option<String>,
        /// How long: 30m, 2h, …; from now unless --start is given.
        #[arg(long, value_parser = parse_duration)]
        duration: Option<u64>,
        /// When it starts (RFC 3339, e.g. 2026-12-06T02:00:00+01:00).
        #[arg(long, value_parser = crate::cells::parse_time)]
        start: Option<OffsetDateTime>,
        /// When it ends (RFC 3339), instead of --duration.
        #[arg(long, value_parser = crate::cells::parse_time)]
        end: Option<OffsetDateTime>,
        /// Repeat weekly or monthly (in the server's time zone).
        #[arg(long, default_value = "none")]
        every: Recurrence,
    },
    /// List maintenance windows, under way first.
    #[command(alias = "ls")]
    List,
    /// End a window now, with all its later occurrences (operators).
    End { id: i64 },
}

#[derive(Debug, Subcommand)]
pub enum NotifyCommand {
    /// List notification channels (operators); secrets are never shown.
    #[command(alias = "ls")]
    List,
    /// Create a channel from a JSON file (admins), e.g.
    /// {"name": "ops", "kind": "webhook", "settings": {"url": "https://…"},
    ///  "secrets": {"hmac_key": "…"}, "min_severity": "critical"}.
    Create {
        /// The channel document; `-` reads standard input.
        file: PathBuf,
    },
    /// One channel whole (operators); its secrets are named, never shown.
    Show { channel: String },
    /// Change a channel from a JSON file (admins) holding only what changes, e.g.
    /// {"min_severity": "critical", "settings": {"url": "https://…"}}; secrets left out keep
    /// their value; `settings` given replace the channel's whole.
    Update {
        channel: String,
        /// The changes; `-` reads standard input.
        file: PathBuf,
    },
    /// Delete a channel (admins).
    #[command(alias = "rm")]
    Delete {
        channel: String,
        #[arg(long, short = 'y')]
        yes: bool,
    },
    /// Send a test notification through a channel now (admins).
    Test { channel: String },
}

/// A value rounded to two decimals, `-` when there is none.
pub fn value_cell(value: Option<f64>) -> String {
    value.map_or_else(
        || "-".to_owned(),
        |v| format!("{}", (v * 100.0).round() / 100.0),
    )
}

/// Acknowledged, held, suppressed, flapping: what changes how the alert is handled.
pub fn flags(a: &Alert) -> String {
    [
        (a.acked_by.is_some(), "acked"),
        (a.held, "held"),
        (a.suppressed, "suppressed"),
        (a.flapping, "flapping"),
    ]
    .iter()
    .filter(|(on, _)| *on)
    .map(|(_, name)| *name)
    .collect::<Vec<_>>()
    .join(",")
}

/// What an alert is about: its node, or its collector.
pub fn subject(a: &Alert) -> String {
    a.node
        .clone()
        .or_else(|| a.collector.as_ref().map(|c| format!("collector {c}")))
        .unwrap_or_default()
}

pub fn alert_row(a: &Alert) -> Vec<String> {
    vec![
        a.id.to_string(),
        a.severity.to_string(),
        a.state.to_string(),
        subject(a),
        a.rule.clone(),
        a.series.clone(),
        value_cell(a.value),
        time_cell(Some(a.started_at)),
        flags(a),
    ]
}

pub const ALERT_HEADERS: [&str; 9] = [
    "ID", "SEVERITY", "STATE", "NODE", "RULE", "SERIES", "VALUE", "SINCE", "FLAGS",
];

pub async fn alerts(session: &Session, command: AlertsCommand) -> anyhow::Result<()> {
    let (_, client) = session.client()?;
    match command {
        AlertsCommand::List { filters } => {
            let node_id = match &filters.node {
                Some(name) => Some(client.node_by_name(name).await?.id),
                None => None,
            };
            let list = client
                .list_alerts(&AlertQuery {
                    state: Some(filters.state),
                    severity: filters.severity,
                    node_id,
                    q: filters.search,
                    limit: Some(MAX_PAGE_LIMIT),
                    offset: None,
                })
                .await?;
            let rows = list.items.iter().map(alert_row).collect();
            session.print(&list, &ALERT_HEADERS, rows)
        }
        AlertsCommand::Show { id } => {
            let detail = client.get_alert(id).await?;
            if session.format != Format::Table {
                return session.print(&detail, &[], Vec::new());
            }
            let a = &detail.alert;
            println!("Alert {} — {} {} ({})", a.id, a.severity, a.rule, a.state);
            println!("  on:      {}", subject(a));
            if !a.series.is_empty() {
                println!("  series:  {}", a.series);
            }
            println!("  value:   {}", value_cell(a.value));
            println!("  message: {}", a.message);
            if let Some(by) = &a.acked_by {
                println!(
                    "  acked:   by {by} at {}{}",
                    time_cell(a.acked_at),
                    a.ack_comment
                        .as_ref()
                        .map(|c| format!(": {c}"))
                        .unwrap_or_default()
                );
            }
            println!("History:");
            for e in &detail.events {
                println!(
                    "  {}  {:<11} {}{}",
                    time_cell(Some(e.at)),
                    e.event,
                    e.actor.as_deref().unwrap_or(""),
                    e.comment
                        .as_ref()
                        .map(|c| format!(" {c}"))
                        .unwrap_or_default()
                );
            }
            println!("Notifications:");
            if detail.deliveries.is_empty() {
                println!("  none");
            }
            for d in &detail.deliveries {
                println!(
                    "  {}  {:<9} {:<12} {} ({} attempt(s)){}",
                    time_cell(Some(d.created_at)),
                    d.event,
                    d.channel,
                    d.state,
                    d.attempts,
                    d.last_error
                        .as_ref()
                        .map(|e| format!(": {e}"))
                        .unwrap_or_default()
                );
            }
            Ok(())
        }
        AlertsCommand::Ack {
            ids,
            all_matching,
            filters,
            comment,
        } => {
            let ids: Vec<i64> = if all_matching {
                filters
                    .all(&client)
                    .await?
                    .into_iter()
                    .filter(|a| a.acked_by.is_none())
                    .map(|a| a.id)
                    .collect()
            } else {
                ids
            };
            if ids.is_empty() {
                eprintln!("No unacknowledged alert matches.");
                return Ok(());
            }
            // One request and one transaction for all of them.
            let answer = client.ack_alerts(&ids, comment).await?;
            for alert in &answer.acked {
                eprintln!(
                    "Acknowledged alert {} ({} on {}).",
                    alert.id,
                    alert.rule,
                    subject(alert)
                );
            }
            for skipped in &answer.skipped {
                eprintln!("Alert {}: {}", skipped.id, skipped.reason);
            }
            if ids.len() > 1 {
                eprintln!("{} of {} acknowledged.", answer.acked.len(), ids.len());
            }
            if !answer.skipped.is_empty() {
                bail!("{} alert(s) not acknowledged", answer.skipped.len());
            }
            Ok(())
        }
        AlertsCommand::Ignore { id, comment } => {
            let ignored = client.ignore_alert_series(id, comment).await?;
            eprintln!(
                "{} on {} is now left alone by {} (ignored series {}; `plantwatch alerts \
                 unignore {}` undoes it).",
                ignored.series, ignored.node, ignored.rule, ignored.id, ignored.id
            );
            Ok(())
        }
        AlertsCommand::Ignored => {
            let list = client.ignored_series().await?;
            let rows = list
                .items
                .iter()
                .map(|i| {
                    vec![
                        i.id.to_string(),
                        i.node.clone(),
                        i.rule.clone(),
                        i.series.clone(),
                        i.ignored_by.clone(),
                        time_cell(Some(i.at)),
                        i.comment.clone().unwrap_or_default(),
                    ]
                })
                .collect();
            session.print(
                &list,
                &["ID", "NODE", "RULE", "SERIES", "BY", "SINCE", "COMMENT"],
                rows,
            )
        }
        AlertsCommand::Unignore { id } => {
            client.unignore_series(id).await?;
            eprintln!("Ignored series {id} is judged again.");
            Ok(())
        }
        AlertsCommand::Unack { id } => {
            let alert = client.unack_alert(id).await?;
            eprintln!("Alert {} is no longer acknowledged.", alert.id);
            Ok(())
        }
    }
}

fn threshold_cell(rule: &AlertRule) -> String {
    let s = &rule.spec;
    if let Some(event) = &s.event {
        return format!(
            "{} expires {}",
            event.severity,
            super::event_rules::expiry_cell(event.expire_s)
        );
    }
    let value = |v: Option<f64>| v.map_or_else(|| "-".to_owned(), |v| v.to_string());
    format!(
        "{} w:{} c:{} clear:{}",
        s.comparison,
        value(s.warning),
        value(s.critical),
        value(s.clear)
    )
}

const RULE_HEADERS: [&str; 9] = [
    "ID",
    "NAME",
    "KIND",
    "ENABLED",
    "METRIC",
    "SCOPE",
    "OVER",
    "THRESHOLDS",
    "FOR",
];

fn rule_row(r: &AlertRule) -> Vec<String> {
    let s = &r.spec;
    vec![
        r.id.to_string(),
        s.name.clone(),
        if r.builtin.is_some() {
            "built-in"
        } else {
            "custom"
        }
        .to_owned(),
        if s.enabled { "yes" } else { "no" }.to_owned(),
        match &s.event {
            Some(event) => format!("events: {}", event.on.describe()),
            None => s.metric.clone().unwrap_or_else(|| "-".into()),
        },
        match &s.scope_value {
            Some(v) => format!("{} {v}", s.scope),
            None => s.scope.to_string(),
        },
        format!("{} {}s", s.aggregation, s.window_s),
        threshold_cell(r),
        format!("{}s", s.for_s),
    ]
}

/// A new rule named `name` with nothing set yet (the options fill it).
pub fn blank_rule(name: &str, enabled: bool) -> RuleSpec {
    RuleSpec {
        metric: None,
        enabled,
        ..RuleSpec::new(name, "")
    }
}

pub async fn rules(session: &Session, command: RulesCommand) -> anyhow::Result<()> {
    let (_, client) = session.client()?;
    let set_enabled = |enabled: bool, name: String| {
        let client = client.clone();
        async move {
            let rule = client.rule_by_name(&name).await?;
            let spec = RuleSpec {
                enabled,
                ..rule.spec
            };
            client.update_rule(rule.id, &spec).await?;
            eprintln!(
                "{} rule {name}.",
                if enabled { "Enabled" } else { "Disabled" }
            );
            anyhow::Ok(())
        }
    };
    match command {
        RulesCommand::List => {
            let list = client.list_rules().await?;
            let rows = list.items.iter().map(rule_row).collect();
            session.print(&list, &RULE_HEADERS, rows)
        }
        RulesCommand::Show { name } => {
            let rule = client.rule_by_name(&name).await?;
            session.print(&rule, &RULE_HEADERS, vec![rule_row(&rule)])
        }
        RulesCommand::Create {
            name,
            fields,
            disabled,
        } => {
            let mut spec = blank_rule(&name, !disabled);
            fields.apply(&mut spec)?;
            let rule = client.create_rule(&spec).await?;
            eprintln!("Created rule {} (id {}).", rule.spec.name, rule.id);
            Ok(())
        }
        RulesCommand::Update { name, fields } => {
            let rule = client.rule_by_name(&name).await?;
            let mut spec = rule.spec.clone();
            fields.apply(&mut spec)?;
            let rule = client.update_rule(rule.id, &spec).await?;
            eprintln!(
                "Updated rule {}: {}.",
                rule.spec.name,
                threshold_cell(&rule)
            );
            Ok(())
        }
        RulesCommand::Disable { name } => set_enabled(false, name).await,
        RulesCommand::Enable { name } => set_enabled(true, name).await,
        RulesCommand::Delete { name, yes } => {
            let rule = client.rule_by_name(&name).await?;
            confirm(yes, &format!("Delete rule {}?", rule.spec.name))?;
            client.delete_rule(rule.id).await?;
            eprintln!("Deleted rule {}.", rule.spec.name);
            Ok(())
        }
        RulesCommand::Preview { name, fields } => {
            let mut spec = match client.rule_by_name(&name).await {
                Ok(rule) => rule.spec,
                Err(_) => {
                    let mut spec = RuleSpec::new(&name, "");
                    spec.metric = None;
                    spec
                }
            };
            fields.apply(&mut spec)?;
            let list = client.preview_rule(&spec).await?;
            let rows = list
                .items
                .iter()
                .map(|r| {
                    vec![
                        r.node.clone(),
                        r.series.clone(),
                        value_cell(r.value),
                        r.severity
                            .map_or_else(|| "ok".to_owned(), |s| s.to_string()),
                    ]
                })
                .collect();
            session.print(&list, &["NODE", "SERIES", "VALUE", "WOULD BE"], rows)
        }
    }
}

fn window_row(w: &MaintenanceWindow) -> Vec<String> {
    let state = if w.active {
        "active"
    } else if w.next_start.is_some() {
        "upcoming"
    } else {
        "over"
    };
    vec![
        w.id.to_string(),
        w.name.clone(),
        format!("{} {}", w.scope, w.target),
        state.to_owned(),
        time_cell(w.next_start),
        time_cell(w.next_end),
        w.recurrence.to_string(),
        w.created_by.clone().unwrap_or_default(),
    ]
}

pub async fn maintenance(session: &Session, command: MaintenanceCommand) -> anyhow::Result<()> {
    let (_, client) = session.client()?;
    match command {
        MaintenanceCommand::Create {
            name,
            node,
            tag,
            collector,
            duration,
            start,
            end,
            every,
        } => {
            let (scope, target) = match (node, tag, collector) {
                (Some(n), _, _) => (MaintenanceScope::Node, n),
                (_, Some(t), _) => (MaintenanceScope::Tag, t),
                (_, _, Some(c)) => (MaintenanceScope::Collector, c),
                _ => usage!("say what goes into maintenance: --node, --tag or --collector"),
            };
            if duration.is_none() && end.is_none() {
                usage!("say how long: --duration (e.g. 2h) or --start and --end");
            }
            let window = client
                .create_maintenance(&MaintenanceSpec {
                    name,
                    scope,
                    target,
                    duration_s: duration,
                    starts_at: start,
                    ends_at: end,
                    recurrence: every,
                })
                .await?;
            if session.format == Format::Json {
                return session.print(&window, &[], Vec::new());
            }
            eprintln!(
                "Maintenance window {} (id {}) {} until {}.",
                window.name,
                window.id,
                if window.active {
                    "is under way"
                } else {
                    "starts"
                },
                time_cell(window.next_end)
            );
            Ok(())
        }
        MaintenanceCommand::List => {
            let list = client.list_maintenance().await?;
            let rows = list.items.iter().map(window_row).collect();
            session.print(
                &list,
                &[
                    "ID", "NAME", "COVERS", "STATE", "STARTS", "ENDS", "REPEATS", "BY",
                ],
                rows,
            )
        }
        MaintenanceCommand::End { id } => {
            let window = client.end_maintenance(id).await?;
            eprintln!("Ended maintenance window {} ({}).", window.id, window.name);
            Ok(())
        }
    }
}

pub async fn notify(session: &Session, command: NotifyCommand) -> anyhow::Result<()> {
    let (_, client) = session.client()?;
    match command {
        NotifyCommand::List => {
            let list = client.list_channels().await?;
            let rows = list
                .items
                .iter()
                .map(|c| {
                    let target = channel_target(c);
                    let mut routes: Vec<String> = vec![format!(">= {}", c.min_severity)];
                    routes.extend(c.tags.iter().map(|t| format!("tag {t}")));
                    routes.extend(c.collectors.iter().map(|t| format!("collector {t}")));
                    vec![
                        c.id.to_string(),
                        c.name.clone(),
                        c.kind.to_string(),
                        target,
                        routes.join(", "),
                        if c.repeat_s > 0 {
                            format!("{}s", c.repeat_s)
                        } else {
                            "-".into()
                        },
                        if c.enabled { "yes" } else { "no" }.to_owned(),
                    ]
                })
                .collect();
            session.print(
                &list,
                &[
                    "ID", "NAME", "KIND", "TARGET", "ROUTES", "REPEAT", "ENABLED",
                ],
                rows,
            )
        }
        NotifyCommand::Create { file } => {
            let text = read_document(&file)?;
            let spec: ChannelSpec = serde_json::from_str(&text)
                .with_context(|| format!("{} is not a channel document", file.display()))?;
            let channel = client.create_channel(&spec).await?;
            eprintln!(
                "Created {} channel {} (id {}).",
                channel.kind, channel.name, channel.id
            );
            Ok(())
        }
        NotifyCommand::Show { channel } => {
            let found = client.channel_by_name(&channel).await?;
            if session.format != Format::Table {
                return session.print(&found, &[], Vec::new());
            }
            println!("Channel {} ({}, id {})", found.name, found.kind, found.id);
            println!("  sends to: {}", channel_target(&found));
            println!("  takes:    {}", crate::views::channels::routes(&found));
            println!(
                "  resolved: {}",
                if found.send_resolved {
                    "sent"
                } else {
                    "not sent"
                }
            );
            println!("  enabled:  {}", if found.enabled { "yes" } else { "no" });
            let secrets = if found.secrets.is_empty() {
                "-".to_owned()
            } else {
                format!("{} (set, not shown)", found.secrets.join(", "))
            };
            println!("  secrets:  {secrets}");
            Ok(())
        }
        NotifyCommand::Update { channel, file } => {
            let found = client.channel_by_name(&channel).await?;
            let changes: serde_json::Value = serde_json::from_str(&read_document(&file)?)
                .with_context(|| format!("{} is not a JSON document", file.display()))?;
            let Some(changes) = changes.as_object() else {
                usage!(
                    "{}: give a JSON object of the fields to change",
                    file.display()
                );
            };
            // The channel as it is (secrets left out: they keep their value), the changes over it.
            let mut spec = serde_json::to_value(ChannelSpec {
                name: found.name.clone(),
                kind: found.kind,
                settings: found.settings.clone(),
                secrets: Default::default(),
                min_severity: found.min_severity,
                tags: found.tags.clone(),
                collectors: found.collectors.clone(),
                repeat_s: found.repeat_s,
                send_resolved: found.send_resolved,
                enabled: found.enabled,
            })?;
            if let Some(object) = spec.as_object_mut() {
                for (key, value) in changes {
                    object.insert(key.clone(), value.clone());
                }
            }
            let spec: ChannelSpec = serde_json::from_value(spec)
                .with_context(|| format!("{}: not a channel's fields", file.display()))?;
            let channel = client.update_channel(found.id, &spec).await?;
            let names: Vec<&String> = changes.keys().collect();
            eprintln!(
                "Updated channel {}: {}.",
                channel.name,
                names
                    .iter()
                    .map(|n| n.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            Ok(())
        }
        NotifyCommand::Delete { channel, yes } => {
            let found = client.channel_by_name(&channel).await?;
            confirm(yes, &format!("Delete channel {}?", found.name))?;
            client.delete_channel(found.id).await?;
            eprintln!("Deleted channel {}.", found.name);
            Ok(())
        }
        NotifyCommand::Test { channel } => {
            let found = client.channel_by_name(&channel).await?;
            let outcome = client.test_channel(found.id).await?;
            if session.format == Format::Json {
                return session.print(&outcome, &[], Vec::new());
            }
            match outcome.error {
                None => {
                    eprintln!("Sent a test notification through {}.", found.name);
                    Ok(())
                }
                Some(error) => bail!("the test through {} failed: {error}", found.name),
            }
        }
    }
}

/// A document from a file, or standard input for `-`.
fn read_document(file: &std::path::Path) -> anyhow::Result<String> {
    if file.as_os_str() == "-" {
        std::io::read_to_string(std::io::stdin()).context("reading standard input")
    } else {
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))
    }
}
