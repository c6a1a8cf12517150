//! The editor of an event rule (in `:rules`): the traps and syslog messages that open its
//! alert, those that clear it, what tells its alerts apart, its severity and expiry. A
//! built-in event rule shows only what can be tuned: severity, expiry and scope.

use plantwatch_shared::api::{
    EventKind, EventMatch, EventRuleSpec, EventSeverity, RuleScope, RuleSpec, SYSLOG_KEYS, oid_of,
};

use crate::widgets::form::{Field, FieldKey, Form, Purpose};

crate::field_ids! {
    Name = "Name",
    Traps = "Traps",
    Varbinds = "Varbinds",
    Kind = "Kind",
    MinSeverity = "Event at least",
    Program = "Program",
    Text = "Text",
    ClearTraps = "Clear traps",
    ClearText = "Clear text",
    Key = "Key",
    Severity = "Severity",
    ExpireS = "Expire s",
    Scope = "Scope",
    ScopeValue = "Scope value",
}

crate::asks!(
    /// The event rule editor's purpose, handled by the rules view.
    EVENT_RULE_FORM,
);

/// The purpose of the editor's form.
pub const PURPOSE: Purpose = Purpose::View(EVENT_RULE_FORM);

const KINDS: &[&str] = &["any", "trap", "syslog"];
const EVENT_SEVERITIES: &[&str] = &[
    "any",
    "emergency",
    "alert",
    "critical",
    "error",
    "warning",
    "notice",
    "info",
    "debug",
];
const SEVERITIES: &[&str] = &["warning", "critical"];
const SCOPES: &[&str] = &["all", "type", "tag", "template", "node"];

/// A new event rule's starting point.
pub fn new_spec() -> RuleSpec {
    let mut spec = RuleSpec::new("", "");
    spec.metric = None;
    spec.event = Some(EventRuleSpec::blank());
    spec
}

fn list(items: &[String]) -> String {
    items.join(", ")
}

fn items(text: &str) -> Vec<String> {
    text.split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Trap names: known ones, OIDs, or names as a template's MIB writes them (the server knows
/// the templates' and says when one is unknown).
fn names(text: &str) -> Result<(), String> {
    let name_like = |n: &str| {
        n.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
            && n.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    };
    match items(text)
        .into_iter()
        .find(|n| oid_of(n).is_none() && !name_like(n))
    {
        Some(bad) => Err(format!("{bad}: neither an OID nor a trap name")),
        None => Ok(()),
    }
}

fn keys(text: &str) -> Result<(), String> {
    match items(text)
        .into_iter()
        .find(|k| !SYSLOG_KEYS.contains(&k.as_str()) && oid_of(k).is_none())
    {
        Some(bad) => Err(format!(
            "{bad}: a varbind, program, host, facility or msgid"
        )),
        None => Ok(()),
    }
}

fn varbinds(text: &str) -> Result<(), String> {
    for pair in text.split(';').map(str::trim).filter(|p| !p.is_empty()) {
        match pair.split_once('=') {
            Some((name, _)) if oid_of(name.trim()).is_some() => {}
            _ => return Err(format!("{pair}: NAME=PATTERN, names known or OIDs")),
        }
    }
    Ok(())
}

fn seconds(text: &str) -> Result<(), String> {
    text.trim()
        .parse::<u32>()
        .map(drop)
        .map_err(|_| "a whole number of seconds (0: only a clearing event)".to_owned())
}

/// The editor's fields, filled from `spec` (an event rule).
pub fn form(title: String, spec: &RuleSpec, builtin: bool) -> Form {
    let event = spec.event.clone().unwrap_or_else(EventRuleSpec::blank);
    let on = &event.on;
    let clear = event.clear.clone().unwrap_or_default();
    let opt = |v: &Option<String>| v.clone().unwrap_or_default();
    let varbind_text = on
        .varbinds
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("; ");
    let mut fields = Vec::new();
    if !builtin {
        fields.extend([
            Field::text(FieldId::Name).with_value(spec.name.clone()),
            Field::text(FieldId::Traps)
                .with_value(list(&on.traps))
                .optional()
                .checked(names),
            Field::text(FieldId::Varbinds)
                .with_value(varbind_text)
                .optional()
                .checked(varbinds),
            Field::choice(
                FieldId::Kind,
                KINDS,
                on.kind.map_or("any", EventKind::as_str),
            ),
            Field::choice(
                FieldId::MinSeverity,
                EVENT_SEVERITIES,
                on.severity.map_or("any", EventSeverity::as_str),
            ),
            Field::text(FieldId::Program)
                .with_value(opt(&on.program))
                .optional(),
            Field::text(FieldId::Text)
                .with_value(opt(&on.text))
                .optional(),
            Field::text(FieldId::ClearTraps)
                .with_value(list(&clear.traps))
                .optional()
                .checked(names),
            Field::text(FieldId::ClearText)
                .with_value(opt(&clear.text))
                .optional(),
            Field::text(FieldId::Key)
                .with_value(list(&event.key))
                .optional()
                .checked(keys),
        ]);
    }
    fields.extend([
        Field::choice(FieldId::Severity, SEVERITIES, event.severity.as_str()),
        Field::text(FieldId::ExpireS)
            .with_value(event.expire_s.to_string())
            .checked(seconds),
        Field::choice(FieldId::Scope, SCOPES, spec.scope.as_str()),
        Field::text(FieldId::ScopeValue)
            .with_value(spec.scope_value.clone().unwrap_or_default())
            .optional(),
    ]);
    let note = if builtin {
        format!(
            "Built in: opens on {}, cleared by {}; tune its severity, expiry and scope. Enter on \
             the last field saves.",
            on.describe(),
            event
                .clear
                .as_ref()
                .map_or_else(|| "its expiry".to_owned(), EventMatch::describe)
        )
    } else {
        "Traps and key: names (linkDown, ifIndex) or OIDs, comma-separated; varbinds: \
         NAME=PATTERN, ;-separated. Enter on the last field saves."
            .to_owned()
    };
    Form::new(title, PURPOSE, fields).with_note(note)
}

/// The spec a filled editor describes, on top of `base`.
pub fn read(form: &Form, base: &RuleSpec) -> RuleSpec {
    let text = |id: FieldId| form.value(id).trim().to_owned();
    let has = |id: FieldId| form.fields.iter().any(|f| f.label == id.label());
    let some = |id: FieldId| Some(text(id)).filter(|t| !t.is_empty());
    let mut spec = base.clone();
    let mut event = spec.event.take().unwrap_or_else(EventRuleSpec::blank);
    if has(FieldId::Name) {
        spec.name = text(FieldId::Name);
        event.on = EventMatch {
            kind: text(FieldId::Kind).parse().ok(),
            traps: items(&text(FieldId::Traps)),
            varbinds: text(FieldId::Varbinds)
                .split(';')
                .filter_map(|pair| pair.split_once('='))
                .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
                .collect(),
            severity: text(FieldId::MinSeverity).parse().ok(),
            facility: event.on.facility.take(),
            program: some(FieldId::Program),
            text: some(FieldId::Text),
        };
        let clear = EventMatch {
            traps: items(&text(FieldId::ClearTraps)),
            text: some(FieldId::ClearText),
            ..event.clear.take().unwrap_or_default()
        };
        event.clear = (!clear.is_empty()).then_some(clear);
        event.key = items(&text(FieldId::Key));
    }
    event.severity = text(FieldId::Severity).parse().unwrap_or(event.severity);
    event.expire_s = text(FieldId::ExpireS).parse().unwrap_or(event.expire_s);
    spec.scope = text(FieldId::Scope).parse().unwrap_or(RuleScope::All);
    spec.scope_value = some(FieldId::ScopeValue);
    spec.event = Some(event);
    spec
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_editor_reads_back_what_it_shows() {
        let mut spec = new_spec();
        spec.name = "ups_alarm".into();
        spec.scope = RuleScope::Tag;
        spec.scope_value = Some("power".into());
        spec.event = Some(EventRuleSpec {
            on: EventMatch {
                kind: Some(EventKind::Trap),
                traps: vec![
                    "upsTrapAlarmEntryAdded".into(),
                    "1.3.6.1.4.1.318.0.5".into(),
                ],
                varbinds: [("upsAlarmDescr".to_owned(), "*battery*".to_owned())].into(),
                severity: Some(EventSeverity::Warning),
                ..EventMatch::default()
            },
            clear: Some(EventMatch {
                traps: vec!["upsTrapAlarmEntryRemoved".into()],
                ..EventMatch::default()
            }),
            key: vec!["upsAlarmDescr".into()],
            severity: plantwatch_shared::api::Severity::Critical,
            expire_s: 0,
        });
        let editor = form("x".into(), &spec, false);
        assert_eq!(read(&editor, &spec), spec);
        let builtin = form("x".into(), &spec, true);
        assert!(
            builtin
                .fields
                .iter()
                .all(|f| f.label != FieldId::Traps.label())
        );
        assert_eq!(read(&builtin, &spec), spec);
        assert!(names("linkDown, 1.3.6.1.2").is_ok());
        assert!(names("linkDown, fan failure").is_err());
        assert!(names("1.3.6.1..2").is_err());
        assert!(keys("ifIndex, program").is_ok() && keys("colour").is_err());
    }
}
