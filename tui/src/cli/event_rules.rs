//! `plantwatch event-rules`: which traps and syslog messages open an alert, and what clears
//! it. Event rules are alert rules (`plantwatch rules` lists them too); these commands show
//! and set their events.

use clap::{Args, Subcommand};
use plantwatch_shared::api::{
    AlertRule, EventKind, EventMatch, EventRuleSpec, EventSeverity, RuleScope, RuleSpec, Severity,
    TRAP_NAMES, VARBIND_NAMES, duration_words,
};

use super::alerts::{RulesCommand, blank_rule, rules};
use super::{Session, usage};
use crate::cells::parse_duration;

#[derive(Debug, Subcommand)]
pub enum EventRulesCommand {
    /// List event rules, built-in first.
    #[command(alias = "ls")]
    List,
    /// Show one event rule.
    Show { name: String },
    /// Create an event rule (operators).
    Create {
        name: String,
        #[command(flatten)]
        fields: EventRuleArgs,
        /// Create it disabled.
        #[arg(long)]
        disabled: bool,
    },
    /// Change an event rule (operators): only the options given change (conditions given
    /// replace those of their kind). Built-in rules keep their events: tune their severity,
    /// expiry or scope.
    Update {
        name: String,
        #[command(flatten)]
        fields: EventRuleArgs,
    },
    /// Disable a rule (operators): its open alerts resolve.
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
    /// The trap and varbind names rules may use instead of OIDs.
    Names,
}

/// An event rule's fields on the command line.
#[derive(Debug, Clone, Default, Args)]
pub struct EventRuleArgs {
    /// A trap that opens the alert (name or OID); repeat for several.
    #[arg(long = "trap", value_name = "NAME|OID")]
    pub traps: Vec<String>,
    /// A varbind's value the trap must have: `ifIndex=3`, `1.3.6.1.4.1.9.2.1=*fan*`.
    #[arg(long = "varbind", value_name = "NAME=PATTERN")]
    pub varbinds: Vec<String>,
    /// Only traps, or only syslog messages.
    #[arg(long)]
    pub kind: Option<EventKind>,
    /// The event at least this severe: emergency, alert, critical, error, warning, notice,
    /// info, debug.
    #[arg(long)]
    pub min_severity: Option<EventSeverity>,
    /// Syslog facility (local4, daemon, …).
    #[arg(long)]
    pub facility: Option<String>,
    /// Syslog program, a pattern (`*` any text), case-insensitive.
    #[arg(long)]
    pub program: Option<String>,
    /// Text the message contains, case-insensitive (`*` any text).
    #[arg(long)]
    pub text: Option<String>,
    /// A trap that clears the alert (its clearing partner); repeat for several.
    #[arg(long = "clear-trap", value_name = "NAME|OID")]
    pub clear_traps: Vec<String>,
    /// Text of a message that clears the alert.
    #[arg(long)]
    pub clear_text: Option<String>,
    /// What tells a node's alerts apart: a varbind (`ifIndex`) or program, host, facility,
    /// msgid; repeat for several (`none` for one alert per node).
    #[arg(long = "key", value_name = "FIELD")]
    pub key: Vec<String>,
    /// The alert's severity: warning or critical.
    #[arg(long)]
    pub severity: Option<Severity>,
    /// Resolve the alert this long after the last event that opened or refreshed it: 10m,
    /// 1h, 1d (0: only a clearing event resolves it).
    #[arg(long, value_parser = parse_expiry)]
    pub expire: Option<u32>,
    /// all, type, tag, template or node.
    #[arg(long)]
    pub scope: Option<RuleScope>,
    /// The type, tag, template or node name the scope names.
    #[arg(long)]
    pub scope_value: Option<String>,
    #[arg(long)]
    pub description: Option<String>,
}

fn parse_expiry(text: &str) -> Result<u32, String> {
    if text.trim() == "0" {
        return Ok(0);
    }
    let seconds = parse_duration(text)?;
    u32::try_from(seconds).map_err(|_| "too long".to_owned())
}

impl EventRuleArgs {
    fn apply(self, spec: &mut RuleSpec) -> anyhow::Result<()> {
        let event = spec.event.get_or_insert_with(EventRuleSpec::blank);
        let on = &mut event.on;
        if !self.traps.is_empty() {
            on.traps = self.traps;
        }
        if !self.varbinds.is_empty() {
            on.varbinds.clear();
            for pair in self.varbinds {
                let Some((name, pattern)) = pair.split_once('=') else {
                    usage!("--varbind takes NAME=PATTERN, not {pair:?}");
                };
                on.varbinds
                    .insert(name.trim().to_owned(), pattern.trim().to_owned());
            }
        }
        if self.kind.is_some() {
            on.kind = self.kind;
        }
        if self.min_severity.is_some() {
            on.severity = self.min_severity;
        }
        if self.facility.is_some() {
            on.facility = self.facility;
        }
        if self.program.is_some() {
            on.program = self.program;
        }
        if self.text.is_some() {
            on.text = self.text;
        }
        if !self.clear_traps.is_empty() || self.clear_text.is_some() {
            let clear = event.clear.get_or_insert_with(EventMatch::default);
            if !self.clear_traps.is_empty() {
                clear.traps = self.clear_traps;
            }
            if self.clear_text.is_some() {
                clear.text = self.clear_text;
            }
        }
        if self.key == ["none"] {
            event.key.clear();
        } else if !self.key.is_empty() {
            event.key = self.key;
        }
        if let Some(severity) = self.severity {
            event.severity = severity;
        }
        if let Some(expire) = self.expire {
            event.expire_s = expire;
        }
        if let Some(scope) = self.scope {
            spec.scope = scope;
        }
        if self.scope_value.is_some() {
            spec.scope_value = self.scope_value;
        }
        if self.description.is_some() {
            spec.description = self.description;
        }
        Ok(())
    }
}

/// "1 h", "10 min", "never".
pub fn expiry_cell(seconds: u32) -> String {
    match seconds {
        0 => "never".into(),
        s => duration_words(s),
    }
}

const HEADERS: [&str; 9] = [
    "ID", "NAME", "KIND", "ENABLED", "ON", "CLEAR", "KEY", "SEVERITY", "EXPIRES",
];

fn row(rule: &AlertRule) -> Vec<String> {
    let Some(event) = &rule.spec.event else {
        return Vec::new();
    };
    vec![
        rule.id.to_string(),
        rule.spec.name.clone(),
        if rule.builtin.is_some() {
            "built-in"
        } else {
            "custom"
        }
        .to_owned(),
        if rule.spec.enabled { "yes" } else { "no" }.to_owned(),
        event.on.describe(),
        event
            .clear
            .as_ref()
            .map_or_else(|| "-".to_owned(), EventMatch::describe),
        if event.key.is_empty() {
            "node".to_owned()
        } else {
            event.key.join(",")
        },
        event.severity.to_string(),
        expiry_cell(event.expire_s),
    ]
}

pub async fn run(session: &Session, command: EventRulesCommand) -> anyhow::Result<()> {
    let (_, client) = session.client()?;
    let event_rule = |name: String| {
        let client = client.clone();
        async move {
            let rule = client.rule_by_name(&name).await?;
            if rule.spec.event.is_none() {
                usage!(
                    "{} is a metric rule: see plantwatch rules show {}",
                    rule.spec.name,
                    rule.spec.name
                );
            }
            anyhow::Ok(rule)
        }
    };
    match command {
        EventRulesCommand::List => {
            let mut list = client.list_rules().await?;
            list.items.retain(|r| r.spec.event.is_some());
            list.total = list.items.len() as u64;
            let rows = list.items.iter().map(row).collect();
            session.print(&list, &HEADERS, rows)
        }
        EventRulesCommand::Show { name } => {
            let rule = event_rule(name).await?;
            session.print(&rule, &HEADERS, vec![row(&rule)])
        }
        EventRulesCommand::Create {
            name,
            fields,
            disabled,
        } => {
            let mut spec = blank_rule(&name, !disabled);
            fields.apply(&mut spec)?;
            let rule = client.create_rule(&spec).await?;
            eprintln!("Created event rule {} (id {}).", rule.spec.name, rule.id);
            Ok(())
        }
        EventRulesCommand::Update { name, fields } => {
            let rule = event_rule(name).await?;
            let mut spec = rule.spec.clone();
            fields.apply(&mut spec)?;
            let rule = client.update_rule(rule.id, &spec).await?;
            let cells = row(&rule);
            eprintln!(
                "Updated event rule {}: on {}, clear {}, {} for {}.",
                rule.spec.name, cells[4], cells[5], cells[7], cells[8]
            );
            Ok(())
        }
        EventRulesCommand::Disable { name } => {
            event_rule(name.clone()).await?;
            rules(session, RulesCommand::Disable { name }).await
        }
        EventRulesCommand::Enable { name } => {
            event_rule(name.clone()).await?;
            rules(session, RulesCommand::Enable { name }).await
        }
        EventRulesCommand::Delete { name, yes } => {
            event_rule(name.clone()).await?;
            rules(session, RulesCommand::Delete { name, yes }).await
        }
        EventRulesCommand::Names => {
            let mut rows: Vec<Vec<String>> = TRAP_NAMES
                .iter()
                .map(|(oid, name, severity)| {
                    vec![
                        (*name).to_owned(),
                        "trap".to_owned(),
                        (*oid).to_owned(),
                        severity.to_string(),
                    ]
                })
                .collect();
            rows.extend(VARBIND_NAMES.iter().map(|(oid, name)| {
                vec![
                    (*name).to_owned(),
                    "varbind".to_owned(),
                    (*oid).to_owned(),
                    "-".to_owned(),
                ]
            }));
            let json: Vec<_> = rows
                .iter()
                .map(|r| {
                    serde_json::json!({"name": r[0], "kind": r[1], "oid": r[2], "severity": r[3]})
                })
                .collect();
            session.print(&json, &["NAME", "KIND", "OID", "EVENT SEVERITY"], rows)
        }
    }
}
