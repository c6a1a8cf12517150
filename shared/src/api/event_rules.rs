//! Event rules: which traps and syslog messages open an alert, what clears it, and the trap
//! and varbind names rules may use instead of OIDs.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{EventKind, EventSeverity, Severity};

/// Traps known by name, with the severity an event of them gets: the standard ones
/// (SNMPv2-MIB), the UPS-MIB's (RFC 1628) and APC PowerNet's most common.
pub const TRAP_NAMES: &[(&str, &str, EventSeverity)] = &[
    ("1.3.6.1.6.3.1.1.5.1", "coldStart", EventSeverity::Notice),
    ("1.3.6.1.6.3.1.1.5.2", "warmStart", EventSeverity::Notice),
    ("1.3.6.1.6.3.1.1.5.3", "linkDown", EventSeverity::Warning),
    ("1.3.6.1.6.3.1.1.5.4", "linkUp", EventSeverity::Notice),
    (
        "1.3.6.1.6.3.1.1.5.5",
        "authenticationFailure",
        EventSeverity::Warning,
    ),
    (
        "1.3.6.1.6.3.1.1.5.6",
        "egpNeighborLoss",
        EventSeverity::Warning,
    ),
    (
        "1.3.6.1.2.1.33.2.1",
        "upsTrapOnBattery",
        EventSeverity::Critical,
    ),
    (
        "1.3.6.1.2.1.33.2.2",
        "upsTrapTestCompleted",
        EventSeverity::Notice,
    ),
    (
        "1.3.6.1.2.1.33.2.3",
        "upsTrapAlarmEntryAdded",
        EventSeverity::Warning,
    ),
    (
        "1.3.6.1.2.1.33.2.4",
        "upsTrapAlarmEntryRemoved",
        EventSeverity::Notice,
    ),
    (
        "1.3.6.1.4.1.318.0.5",
        "upsOnBattery",
        EventSeverity::Critical,
    ),
    (
        "1.3.6.1.4.1.318.0.9",
        "powerRestored",
        EventSeverity::Notice,
    ),
];

/// Varbinds known by name (the column; a varbind's OID is the column and its index).
pub const VARBIND_NAMES: &[(&str, &str)] = &[
    ("1.3.6.1.2.1.2.2.1.1", "ifIndex"),
    ("1.3.6.1.2.1.2.2.1.2", "ifDescr"),
    ("1.3.6.1.2.1.2.2.1.7", "ifAdminStatus"),
    ("1.3.6.1.2.1.2.2.1.8", "ifOperStatus"),
    ("1.3.6.1.2.1.31.1.1.1.1", "ifName"),
    ("1.3.6.1.2.1.31.1.1.1.18", "ifAlias"),
    ("1.3.6.1.2.1.33.1.6.2.1.2", "upsAlarmDescr"),
];

/// The known trap named `name` (case-insensitive): its OID and default severity.
pub fn trap_by_name(name: &str) -> Option<(&'static str, EventSeverity)> {
    TRAP_NAMES
        .iter()
        .find(|(_, n, _)| n.eq_ignore_ascii_case(name))
        .map(|(oid, _, severity)| (*oid, *severity))
}

/// The known trap with OID `oid`: its name and default severity.
pub fn trap_by_oid(oid: &str) -> Option<(&'static str, EventSeverity)> {
    TRAP_NAMES
        .iter()
        .find(|(o, ..)| *o == oid)
        .map(|(_, name, severity)| (*name, *severity))
}

/// The OID a rule means by `name_or_oid`: a known trap or varbind name, or a numeric OID
/// (a leading dot dropped). `None`: neither.
pub fn oid_of(name_or_oid: &str) -> Option<String> {
    let text = name_or_oid.trim();
    let numeric = text.strip_prefix('.').unwrap_or(text);
    if !numeric.is_empty()
        && numeric
            .split('.')
            .all(|arc| !arc.is_empty() && arc.bytes().all(|b| b.is_ascii_digit()))
    {
        return Some(numeric.to_owned());
    }
    trap_by_name(text)
        .map(|(oid, _)| oid.to_owned())
        .or_else(|| {
            VARBIND_NAMES
                .iter()
                .find(|(_, n)| n.eq_ignore_ascii_case(text))
                .map(|(oid, _)| (*oid).to_owned())
        })
}

/// What an event must be for a rule to take it. Every condition given must hold; an empty
/// match takes every event.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventMatch {
    /// Only traps, or only syslog messages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<EventKind>,
    /// Trap OIDs or names (`linkDown`, `1.3.6.1.4.1.318.0.5`): any of them (a trap only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub traps: Vec<String>,
    /// Varbind (name or OID, the index left out) → pattern of its value (`*` any run).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub varbinds: BTreeMap<String, String>,
    /// The event at least this severe.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub severity: Option<EventSeverity>,
    /// Syslog facility (`local4`, `daemon`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub facility: Option<String>,
    /// Syslog program, a pattern (`sshd`, `plc*`), case-insensitive.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub program: Option<String>,
    /// Text the message contains, case-insensitive (`*` any run).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
}

impl EventMatch {
    pub fn is_empty(&self) -> bool {
        *self == EventMatch::default()
    }

    /// In a few words, for lists: `linkDown|linkUp ifIndex=3 ≥warning program=sshd
    /// "failed"`.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(kind) = self.kind
            && self.traps.is_empty()
        {
            parts.push(kind.to_string());
        }
        if !self.traps.is_empty() {
            parts.push(self.traps.join("|"));
        }
        for (varbind, pattern) in &self.varbinds {
            parts.push(format!("{varbind}={pattern}"));
        }
        if let Some(severity) = self.severity {
            parts.push(format!("≥{severity}"));
        }
        if let Some(facility) = &self.facility {
            parts.push(format!("facility={facility}"));
        }
        if let Some(program) = &self.program {
            parts.push(format!("program={program}"));
        }
        if let Some(text) = &self.text {
            parts.push(format!("{text:?}"));
        }
        parts.join(" ")
    }

    /// Why it cannot be used, if it cannot; `named` tells the trap names known beside the
    /// built-in ones (the templates').
    pub fn problem(&self, named: &dyn Fn(&str) -> bool) -> Option<String> {
        if self.traps.len() > 32 || self.varbinds.len() > 16 {
            return Some("at most 32 traps and 16 varbind conditions".into());
        }
        let trap_known = |name: &String| oid_of(name).is_some() || named(name);
        if let Some(name) = self.traps.iter().find(|n| n.len() > 128 || !trap_known(n)) {
            return Some(format!(
                "'{name}' is neither an OID nor a known trap (plantwatch event-rules names)"
            ));
        }
        for name in self.varbinds.keys() {
            if name.len() > 128 || oid_of(name).is_none() {
                return Some(format!(
                    "'{name}' is neither an OID nor a known name (plantwatch event-rules names)"
                ));
            }
        }
        let texts = self
            .varbinds
            .values()
            .chain(&self.facility)
            .chain(&self.program);
        if texts
            .chain(&self.text)
            .any(|t| t.is_empty() || t.len() > 256)
        {
            return Some("patterns must be 1 to 256 characters".into());
        }
        if self.kind == Some(EventKind::Syslog)
            && (!self.traps.is_empty() || !self.varbinds.is_empty())
        {
            return Some("a syslog match cannot name traps or varbinds".into());
        }
        if self.kind == Some(EventKind::Trap) && (self.facility.is_some() || self.program.is_some())
        {
            return Some("a trap match cannot name a facility or program".into());
        }
        None
    }
}

/// Key fields of syslog events: the parts of an event that tell its alerts apart.
pub const SYSLOG_KEYS: &[&str] = &["program", "host", "facility", "msgid"];

/// What makes an alert rule an event rule: the events that open its alert, those that clear
/// it, and how long it lasts without either.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventRuleSpec {
    /// The events that open (or refresh) the alert.
    pub on: EventMatch,
    /// The events that clear it (the clearing partner: `linkUp` for `linkDown`), for the same
    /// node and key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clear: Option<EventMatch>,
    /// What tells a node's alerts of this rule apart: varbinds (`ifIndex`: one alert per
    /// port) or syslog fields (`program`, `host`, `facility`, `msgid`). Empty: one alert per
    /// node.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub key: Vec<String>,
    pub severity: Severity,
    /// The alert resolves this long after the last event that opened or refreshed it
    /// (0: only a clearing event resolves it).
    #[serde(default)]
    pub expire_s: u32,
}

impl EventRuleSpec {
    /// A new rule's starting point: nothing matched yet, a warning that lasts an hour after
    /// its last event unless told otherwise.
    pub fn blank() -> EventRuleSpec {
        EventRuleSpec {
            on: EventMatch::default(),
            clear: None,
            key: Vec::new(),
            severity: Severity::Warning,
            expire_s: 3_600,
        }
    }
}

/// A duration in the largest whole unit: "1 d", "2 h", "15 min", "90 s".
pub fn duration_words(seconds: u32) -> String {
    match seconds {
        s if s % 86_400 == 0 && s > 0 => format!("{} d", s / 86_400),
        s if s % 3_600 == 0 && s > 0 => format!("{} h", s / 3_600),
        s if s % 60 == 0 && s > 0 => format!("{} min", s / 60),
        s => format!("{s} s"),
    }
}

/// Longest expiry, seconds (30 days).
pub const MAX_EVENT_EXPIRY_S: u32 = 30 * 86_400;

impl EventRuleSpec {
    /// Why it cannot be used, if it cannot; `named` tells the trap names known beside the
    /// built-in ones (the templates').
    pub fn problem(&self, named: &dyn Fn(&str) -> bool) -> Option<String> {
        if self.on.is_empty() {
            return Some("an event rule needs at least one condition to open its alert".into());
        }
        if let Some(problem) = self.on.problem(named) {
            return Some(problem);
        }
        match &self.clear {
            Some(clear) if clear.is_empty() => {
                return Some("a clearing match needs at least one condition".into());
            }
            Some(clear) => {
                if let Some(problem) = clear.problem(named) {
                    return Some(format!("clear: {problem}"));
                }
            }
            None if self.expire_s == 0 => {
                return Some(
                    "an alert that nothing clears would stay open for ever: give a clearing \
                     match or an expiry"
                        .into(),
                );
            }
            None => {}
        }
        if self.expire_s > MAX_EVENT_EXPIRY_S {
            return Some(format!(
                "expire_s must be at most {MAX_EVENT_EXPIRY_S} (30 days)"
            ));
        }
        if self.key.len() > 4 {
            return Some("at most 4 key fields".into());
        }
        for key in &self.key {
            if !SYSLOG_KEYS.contains(&key.as_str()) && (key.len() > 128 || oid_of(key).is_none()) {
                return Some(format!(
                    "key '{key}' is neither a varbind (name or OID) nor one of {}",
                    SYSLOG_KEYS.join(", ")
                ));
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_oids_resolve() {
        assert_eq!(oid_of("linkDown").as_deref(), Some("1.3.6.1.6.3.1.1.5.3"));
        assert_eq!(oid_of("LINKUP").as_deref(), Some("1.3.6.1.6.3.1.1.5.4"));
        assert_eq!(oid_of("ifIndex").as_deref(), Some("1.3.6.1.2.1.2.2.1.1"));
        assert_eq!(oid_of(".1.3.6.1.4.1.9").as_deref(), Some("1.3.6.1.4.1.9"));
        assert_eq!(oid_of("linkSideways"), None);
        assert_eq!(oid_of("1.3..6"), None);
        assert_eq!(oid_of(""), None);
    }

    #[test]
    fn a_rule_that_nothing_clears_is_refused() {
        let mut spec = EventRuleSpec {
            on: EventMatch {
                traps: vec!["linkDown".into()],
                ..EventMatch::default()
            },
            clear: None,
            key: vec!["ifIndex".into()],
            severity: Severity::Warning,
            expire_s: 0,
        };
        assert!(spec.problem(&|_| false).unwrap().contains("for ever"));
        spec.expire_s = 3_600;
        assert_eq!(spec.problem(&|_| false), None);
        spec.key.push("ifColour".into());
        assert!(spec.problem(&|_| false).unwrap().contains("ifColour"));
        spec.key.pop();
        spec.on.traps.push("nonsense".into());
        assert!(spec.problem(&|_| false).unwrap().contains("nonsense"));
        spec.on = EventMatch::default();
        assert!(
            spec.problem(&|_| false)
                .unwrap()
                .contains("at least one condition")
        );
    }
}
