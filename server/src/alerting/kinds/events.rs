//! Event rules: traps and syslog messages that open an alert, the clearing partner that
//! resolves it (linkUp for the linkDown of the same port), or an expiry after the last event.
//!
//! Each cycle hands the rules the events stored since the last one, oldest first; a rule
//! replays them in order per key, so a port that went down and came back within one cycle
//! ends where the last event left it.

use std::collections::HashMap;

use plantwatch_shared::api::{
    AlertRule, CollectedEvent, EventMatch, EventRuleSpec, RuleScope, canonical_tags,
    duration_words, oid_of,
};

use super::{Cycle, Findings, Judge, RuleKind};
use crate::alerting::evaluate::{AlertKey, Verdict};
use plantwatch_shared::rules::glob_matches;

/// An event as the rules see it: stored, matched to its node (or not).
#[derive(Debug, Clone)]
pub struct RuleEvent {
    pub id: i64,
    pub node_id: Option<i64>,
    pub collector_id: i64,
    pub event: CollectedEvent,
}

pub struct EventRule;

impl RuleKind for EventRule {
    fn judge<'a>(&self, rule: &'a AlertRule) -> Box<dyn Judge<'a> + 'a> {
        Box::new(EventJudge(rule))
    }

    fn parent_suppressed(&self) -> bool {
        true
    }
}

struct EventJudge<'a>(&'a AlertRule);

/// Where one key ended in this cycle's events.
struct Outcome<'e> {
    /// The event that opened or refreshed it last, and how many did in this cycle; `None`
    /// when a clearing event came after them.
    last: Option<&'e RuleEvent>,
    count: u32,
    clear: Option<&'e RuleEvent>,
}

impl<'a> Judge<'a> for EventJudge<'a> {
    fn finish(self: Box<Self>, cycle: &Cycle<'a>, out: &mut Findings) {
        let rule = self.0;
        let Some(spec) = &rule.spec.event else {
            return;
        };
        let mut outcomes: HashMap<AlertKey, Outcome<'_>> = HashMap::new();
        for event in &cycle.inputs.events {
            let opens = matches(&spec.on, &event.event);
            let clears = !opens
                && spec
                    .clear
                    .as_ref()
                    .is_some_and(|c| matches(c, &event.event));
            if !opens && !clears {
                continue;
            }
            let Some(key) = key_of(cycle, rule, spec, event) else {
                continue;
            };
            let outcome = outcomes.entry(key).or_insert(Outcome {
                last: None,
                count: 0,
                clear: None,
            });
            if opens {
                outcome.last = Some(event);
                outcome.count += 1;
                outcome.clear = None;
            } else {
                outcome.last = None;
                outcome.clear = Some(event);
            }
        }
        let now = cycle.inputs.now;
        for (key, outcome) in outcomes {
            let open = cycle.open.get(&key);
            match (outcome.last, outcome.clear) {
                (Some(last), _) => {
                    let before = open.and_then(|a| a.value).unwrap_or(0.0);
                    let at = last.event.received_at.unix_timestamp();
                    out.verdicts.insert(
                        key,
                        Verdict {
                            severity: Some(spec.severity),
                            value: Some(before + f64::from(outcome.count)),
                            message: last.event.message.clone(),
                            event_at: Some(at),
                        },
                    );
                }
                (None, Some(clear)) if open.is_some() => {
                    let message = format!("cleared by {}", clear.event.message);
                    out.verdict(key, None, open.and_then(|a| a.value), message);
                }
                _ => {}
            }
        }
        for (key, alert) in cycle.open.iter().filter(|(k, _)| k.rule_id == rule.id) {
            if out.verdicts.contains_key(key) {
                continue;
            }
            let last = alert.last_event_at.unwrap_or(alert.started_at);
            if spec.expire_s == 0 || now - last < i64::from(spec.expire_s) {
                // The rule's severity was tuned: its open alerts take it now, not at their
                // next event.
                if alert.severity != spec.severity {
                    out.verdict(
                        key.clone(),
                        Some(spec.severity),
                        alert.value,
                        alert.message.clone(),
                    );
                }
            } else {
                let message = format!(
                    "expired: no further event for {} ({})",
                    duration_words(spec.expire_s),
                    alert.message
                );
                out.verdict(key.clone(), None, alert.value, message);
            }
        }
    }
}

/// Whether `event` satisfies every condition of `m`.
pub fn matches(m: &EventMatch, event: &CollectedEvent) -> bool {
    if m.kind.is_some_and(|k| k != event.kind) {
        return false;
    }
    if m.severity.is_some_and(|s| !event.severity.at_least(s)) {
        return false;
    }
    if !m.traps.is_empty() || !m.varbinds.is_empty() {
        let Some(trap) = &event.trap else {
            return false;
        };
        let named = |wanted: &String| {
            oid_of(wanted).is_some_and(|oid| oid == trap.oid)
                || trap
                    .name
                    .as_deref()
                    .is_some_and(|n| n.eq_ignore_ascii_case(wanted))
        };
        if !m.traps.is_empty() && !m.traps.iter().any(named) {
            return false;
        }
        for (varbind, pattern) in &m.varbinds {
            let Some(value) = varbind_value(event, varbind) else {
                return false;
            };
            if !glob_matches(pattern, value) {
                return false;
            }
        }
    }
    if m.facility.is_some() || m.program.is_some() {
        let Some(syslog) = &event.syslog else {
            return false;
        };
        if m.facility
            .as_ref()
            .is_some_and(|f| !f.eq_ignore_ascii_case(&syslog.facility))
        {
            return false;
        }
        if let Some(program) = &m.program {
            let actual = syslog.program.as_deref().unwrap_or_default();
            if !glob_matches(&program.to_lowercase(), &actual.to_lowercase()) {
                return false;
            }
        }
    }
    if let Some(text) = &m.text {
        let pattern = format!("*{}*", text.to_lowercase());
        if !glob_matches(&pattern, &event.message.to_lowercase()) {
            return false;
        }
    }
    true
}

/// The value of the varbind named `name` (a name or OID, the index left out: the first
/// varbind whose OID is it or under it).
fn varbind_value<'e>(event: &'e CollectedEvent, name: &str) -> Option<&'e str> {
    let oid = oid_of(name)?;
    event.trap.as_ref()?.varbinds.iter().find_map(|v| {
        let under = v.oid == oid
            || v.oid
                .strip_prefix(oid.as_str())
                .is_some_and(|rest| rest.starts_with('.'));
        under.then_some(v.value.as_str())
    })
}

/// The alert an event of `rule` is about: its node's (when the node is in the rule's
/// scope) or, from an unknown sender, the collector's with the sender in the series; the
/// series holds the rule's key fields. `None`: out of scope.
fn key_of(
    cycle: &Cycle<'_>,
    rule: &AlertRule,
    spec: &EventRuleSpec,
    event: &RuleEvent,
) -> Option<AlertKey> {
    let mut fields: Vec<(&str, String)> = Vec::new();
    let (node_id, collector_id) = match event.node_id {
        Some(node) => {
            cycle.in_scope(rule, node)?;
            (Some(node), None)
        }
        None if rule.spec.scope == RuleScope::All => {
            fields.push(("source", event.event.source.clone()));
            (None, Some(event.collector_id))
        }
        None => return None,
    };
    for key in &spec.key {
        let value = match (key.as_str(), &event.event.syslog) {
            ("program", Some(s)) => s.program.clone(),
            ("host", Some(s)) => s.hostname.clone(),
            ("facility", Some(s)) => Some(s.facility.clone()),
            ("msgid", Some(s)) => s.msgid.clone(),
            _ => varbind_value(&event.event, key).map(str::to_owned),
        };
        fields.push((key.as_str(), value.unwrap_or_default()));
    }
    let series = if fields.is_empty() {
        String::new()
    } else {
        format!(
            "event{{{}}}",
            canonical_tags(fields.iter().map(|(k, v)| (*k, v.as_str())))
        )
    };
    Some(AlertKey {
        rule_id: rule.id,
        node_id,
        collector_id,
        series,
    })
}

#[cfg(test)]
mod tests {
    use plantwatch_shared::api::{
        AlertState, BuiltinRule, EventKind, EventSeverity, RuleSpec, Severity, SyslogInfo,
        TrapInfo, Varbind,
    };
    use time::OffsetDateTime;

    use super::*;
    use crate::alerting::evaluate::{Evaluator, Inputs};
    use crate::alerting::rules::{self, NodeFacts};
    use crate::alerting::transitions::Write;
    use crate::metrics_store::HotWindow;

    const T0: i64 = 1_800_000_000;

    fn trap(id: i64, node: Option<i64>, name: &str, if_index: Option<u32>, at: i64) -> RuleEvent {
        let (oid, severity) = plantwatch_shared::api::trap_by_name(name).unwrap();
        let mut varbinds = vec![Varbind {
            oid: "1.3.6.1.6.3.1.1.4.1.0".into(),
            value_type: "oid".into(),
            value: oid.into(),
        }];
        if let Some(i) = if_index {
            varbinds.push(Varbind {
                oid: format!("1.3.6.1.2.1.2.2.1.1.{i}"),
                value_type: "integer".into(),
                value: i.to_string(),
            });
        }
        RuleEvent {
            id,
            node_id: node,
            collector_id: 1,
            event: CollectedEvent {
                uid: id.to_string(),
                kind: EventKind::Trap,
                source: "10.0.0.9".into(),
                severity,
                message: format!("{name} {if_index:?}"),
                received_at: OffsetDateTime::from_unix_timestamp(at).unwrap(),
                trap: Some(TrapInfo {
                    version: "v2c".into(),
                    inform: false,
                    oid: oid.into(),
                    name: Some(name.into()),
                    uptime: None,
                    agent_address: None,
                    varbinds,
                }),
                syslog: None,
            },
        }
    }

    fn syslog(id: i64, program: &str, severity: EventSeverity, text: &str, at: i64) -> RuleEvent {
        RuleEvent {
            id,
            node_id: Some(1),
            collector_id: 1,
            event: CollectedEvent {
                uid: id.to_string(),
                kind: EventKind::Syslog,
                source: "10.0.0.1".into(),
                severity,
                message: text.into(),
                received_at: OffsetDateTime::from_unix_timestamp(at).unwrap(),
                trap: None,
                syslog: Some(SyslogInfo {
                    format: "rfc5424".into(),
                    facility: "local4".into(),
                    hostname: None,
                    program: Some(program.into()),
                    procid: None,
                    msgid: None,
                    sent_at: None,
                }),
            },
        }
    }

    /// The built-in rules (ids 1..) and a plant: switch (1), ups (2, tagged `power`).
    fn inputs(now: i64, events: Vec<RuleEvent>) -> Inputs {
        let rules = rules::builtin_defaults()
            .into_iter()
            .enumerate()
            .map(|(i, (builtin, spec))| AlertRule {
                id: i as i64 + 1,
                spec,
                builtin: Some(builtin),
                created_at: OffsetDateTime::UNIX_EPOCH,
                updated_at: OffsetDateTime::UNIX_EPOCH,
            })
            .filter(|r| r.spec.enabled)
            .collect();
        let node = |id, name: &str, tags: &[&str]| NodeFacts {
            id,
            name: name.into(),
            tags: tags.iter().map(|t| (*t).to_owned()).collect(),
            collector_id: Some(1),
            health: "healthy".into(),
            ..NodeFacts::default()
        };
        Inputs {
            now,
            rules,
            nodes: vec![node(1, "switch", &[]), node(2, "ups", &["power"])],
            events,
            ..Inputs::default()
        }
    }

    fn rule_id(inputs: &Inputs, builtin: BuiltinRule) -> i64 {
        inputs
            .rules
            .iter()
            .find(|r| r.builtin == Some(builtin))
            .unwrap()
            .id
    }

    /// One cycle: the open alerts afterwards (rule, node, series, severity, value) and the
    /// resolve messages written.
    fn cycle(evaluator: &mut Evaluator, inputs: &Inputs) -> Vec<String> {
        let judgement = evaluator.judge(inputs, &HotWindow::default());
        let writes = evaluator.memory.transitions(inputs, &judgement);
        let mut resolved: Vec<String> = judgement
            .verdicts
            .iter()
            .filter(|(_, v)| v.severity.is_none())
            .filter(|(k, _)| {
                writes.iter().any(
                    |w| matches!(w, Write::Resolve { alert, .. } if AlertKey::of(alert) == **k),
                )
            })
            .map(|(k, v)| format!("{} {}", k.series, v.message))
            .collect();
        resolved.sort();
        resolved
    }

    /// An open alert: rule, node, series, severity, value.
    type Open = (i64, Option<i64>, String, Severity, Option<f64>);

    fn open(evaluator: &Evaluator) -> Vec<Open> {
        let mut open: Vec<_> = evaluator
            .memory
            .open
            .values()
            .map(|a| (a.rule_id, a.node_id, a.series.clone(), a.severity, a.value))
            .collect();
        open.sort_by(|a, b| (a.0, a.1, &a.2).cmp(&(b.0, b.1, &b.2)));
        open
    }

    #[test]
    fn link_down_opens_per_port_and_the_ports_link_up_clears_it() {
        let mut ev = Evaluator::default();
        let first = inputs(
            T0,
            vec![
                trap(1, Some(1), "linkDown", Some(3), T0 - 5),
                trap(2, Some(1), "linkDown", Some(7), T0 - 4),
                // Down and up again within one cycle: where the last event left it.
                trap(3, Some(1), "linkDown", Some(9), T0 - 3),
                trap(4, Some(1), "linkUp", Some(9), T0 - 2),
            ],
        );
        let link = rule_id(&first, BuiltinRule::TrapLinkDown);
        assert_eq!(cycle(&mut ev, &first), Vec::<String>::new());
        let w = Severity::Warning;
        assert_eq!(
            open(&ev),
            [
                (link, Some(1), "event{ifIndex=3}".into(), w, Some(1.0)),
                (link, Some(1), "event{ifIndex=7}".into(), w, Some(1.0)),
            ]
        );
        assert!(
            ev.memory
                .open
                .values()
                .all(|a| a.state == AlertState::Firing)
        );
        // Port 3 comes back; a linkUp of a port never down changes nothing; port 7 goes down
        // again: counted.
        let second = inputs(
            T0 + 10,
            vec![
                trap(5, Some(1), "linkUp", Some(3), T0 + 6),
                trap(6, Some(1), "linkUp", Some(12), T0 + 7),
                trap(7, Some(1), "linkDown", Some(7), T0 + 8),
            ],
        );
        assert_eq!(
            cycle(&mut ev, &second),
            ["event{ifIndex=3} cleared by linkUp Some(3)"]
        );
        assert_eq!(
            open(&ev),
            [(link, Some(1), "event{ifIndex=7}".into(), w, Some(2.0))]
        );
        let alert = ev.memory.open.values().next().unwrap();
        assert_eq!(alert.last_event_at, Some(T0 + 8));
        // The rule tuned to critical: the open alert takes it at the next cycle, its last
        // event kept.
        let mut tuned = inputs(T0 + 20, vec![]);
        for rule in &mut tuned.rules {
            if let Some(event) = rule.spec.event.as_mut().filter(|_| rule.id == link) {
                event.severity = Severity::Critical;
            }
        }
        cycle(&mut ev, &tuned);
        let alert = ev.memory.open.values().next().unwrap();
        assert_eq!(
            (alert.severity, alert.last_event_at, alert.value),
            (Severity::Critical, Some(T0 + 8), Some(2.0))
        );
        // Nothing for a day: it expires (linkUp may be lost on UDP).
        assert_eq!(
            cycle(&mut ev, &inputs(T0 + 86_000, vec![])),
            Vec::<String>::new()
        );
        let resolved = cycle(&mut ev, &inputs(T0 + 8 + 86_400, vec![]));
        assert_eq!(
            resolved,
            ["event{ifIndex=7} expired: no further event for 1 d (linkDown Some(7))"]
        );
        assert!(open(&ev).is_empty());
    }

    #[test]
    fn a_ups_on_battery_stays_while_its_traps_repeat_and_clears_after() {
        let mut ev = Evaluator::default();
        let at = |i: i64| T0 + 60 * i;
        let first = inputs(
            at(0),
            vec![trap(1, Some(2), "upsTrapOnBattery", None, at(0))],
        );
        let ups = rule_id(&first, BuiltinRule::TrapUpsOnBattery);
        cycle(&mut ev, &first);
        assert_eq!(
            open(&ev),
            [(ups, Some(2), String::new(), Severity::Critical, Some(1.0))]
        );
        // Resent every minute for 20 minutes: still one alert, never expired.
        for i in 1..=20 {
            let resolved = cycle(
                &mut ev,
                &inputs(
                    at(i),
                    vec![trap(i + 1, Some(2), "upsTrapOnBattery", None, at(i))],
                ),
            );
            assert!(resolved.is_empty(), "{i}: {resolved:?}");
        }
        assert_eq!(open(&ev)[0].4, Some(21.0));
        // Mains back: no more traps; 10 minutes after the last it clears.
        assert!(cycle(&mut ev, &inputs(at(29), vec![])).is_empty());
        assert_eq!(cycle(&mut ev, &inputs(at(30), vec![])).len(), 1);
        // APC: upsOnBattery until powerRestored.
        let apc = inputs(
            at(40),
            vec![trap(30, Some(2), "upsOnBattery", None, at(40))],
        );
        cycle(&mut ev, &apc);
        assert_eq!(open(&ev).len(), 1);
        let back = inputs(
            at(45),
            vec![trap(31, Some(2), "powerRestored", None, at(45))],
        );
        assert_eq!(cycle(&mut ev, &back), [" cleared by powerRestored None"]);
    }

    #[test]
    fn unknown_senders_syslog_scope_and_maintenance() {
        let mut ev = Evaluator::default();
        // A linkDown from an address no node has: the collector's alert, the sender named.
        let mut event = inputs(T0, vec![trap(1, None, "linkDown", Some(4), T0)]);
        let link = rule_id(&event, BuiltinRule::TrapLinkDown);
        cycle(&mut ev, &event);
        let alert = ev.memory.open.values().next().unwrap();
        assert_eq!(
            (
                alert.rule_id,
                alert.node_id,
                alert.collector_id,
                alert.series.as_str()
            ),
            (link, None, Some(1), "event{ifIndex=4,source=10.0.0.9}")
        );
        // Syslog: critical or worse, one alert per program; an error is no alert.
        event = inputs(
            T0 + 10,
            vec![
                syslog(
                    2,
                    "plcd",
                    EventSeverity::Critical,
                    "PLC watchdog expired",
                    T0 + 1,
                ),
                syslog(3, "plcd", EventSeverity::Emergency, "PLC halted", T0 + 2),
                syslog(4, "historian", EventSeverity::Alert, "disk lost", T0 + 3),
                syslog(5, "sshd", EventSeverity::Error, "bad login", T0 + 4),
            ],
        );
        let critical = rule_id(&event, BuiltinRule::SyslogCritical);
        cycle(&mut ev, &event);
        let mut by_program: Vec<_> = ev
            .memory
            .open
            .values()
            .filter(|a| a.rule_id == critical)
            .map(|a| (a.series.clone(), a.value, a.message.clone()))
            .collect();
        by_program.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(
            by_program,
            [
                (
                    "event{program=historian}".into(),
                    Some(1.0),
                    "disk lost".into()
                ),
                ("event{program=plcd}".into(), Some(2.0), "PLC halted".into()),
            ]
        );
        // A custom rule scoped to the tag `power` sees the UPS, not the switch; the UPS in a
        // maintenance window: the alert is held (shown, not notified).
        let mut scoped = inputs(
            T0 + 20,
            vec![
                syslog(
                    6,
                    "upsd",
                    EventSeverity::Notice,
                    "Self test FAILED",
                    T0 + 11,
                ),
                RuleEvent {
                    node_id: Some(2),
                    ..syslog(
                        7,
                        "upsd",
                        EventSeverity::Notice,
                        "self test failed",
                        T0 + 12,
                    )
                },
            ],
        );
        scoped.rules.push(AlertRule {
            id: 100,
            spec: RuleSpec {
                scope: plantwatch_shared::api::RuleScope::Tag,
                scope_value: Some("power".into()),
                event: Some(EventRuleSpec {
                    on: EventMatch {
                        kind: Some(EventKind::Syslog),
                        program: Some("UPS*".into()),
                        text: Some("test failed".into()),
                        ..EventMatch::default()
                    },
                    clear: None,
                    key: vec![],
                    severity: Severity::Critical,
                    expire_s: 3_600,
                }),
                ..RuleSpec::new("ups_self_test", "")
            },
            builtin: None,
            created_at: OffsetDateTime::UNIX_EPOCH,
            updated_at: OffsetDateTime::UNIX_EPOCH,
        });
        scoped.rules.last_mut().unwrap().spec.metric = None;
        scoped.maintenance.nodes.insert(2, "battery swap".into());
        cycle(&mut ev, &scoped);
        let custom: Vec<_> = ev
            .memory
            .open
            .values()
            .filter(|a| a.rule_id == 100)
            .collect();
        assert_eq!(custom.len(), 1, "{custom:?}");
        assert_eq!(
            (custom[0].node_id, custom[0].held, custom[0].notified_at),
            (Some(2), true, None)
        );
    }

    #[test]
    fn an_event_alert_of_a_node_cut_off_behind_a_down_parent_is_suppressed() {
        // The switch (1) is the UPS's (2) parent; both stop answering ping, the UPS's last
        // syslog line (sent before) opens an alert: suppressed, the switch's alert stands.
        let now = T0;
        let mut plant = inputs(
            now,
            vec![syslog(
                1,
                "upsd",
                EventSeverity::Critical,
                "output overload",
                now - 5,
            )],
        );
        plant.events[0].node_id = Some(2);
        plant.nodes[1].parent_id = Some(1);
        let hot = HotWindow::default();
        let samples: Vec<_> = [1, 2]
            .iter()
            .map(|&node| crate::metrics_store::Sample::of(node, "ping.up", (now - 10) * 1_000, 0.0))
            .collect();
        hot.record(&samples, &Default::default(), i64::MIN);
        let mut ev = Evaluator::default();
        let judgement = ev.judge(&plant, &hot);
        ev.memory.transitions(&plant, &judgement);
        let critical = rule_id(&plant, BuiltinRule::SyslogCritical);
        let alert = ev
            .memory
            .open
            .values()
            .find(|a| a.rule_id == critical)
            .unwrap();
        assert_eq!((alert.node_id, alert.suppressed), (Some(2), true));
        assert_eq!(alert.notified_at, None, "suppressed: not notified");
        // The switch answers again: the UPS's alert is no longer suppressed.
        let back = Inputs {
            nodes: plant.nodes.clone(),
            ..inputs(now + 10, vec![])
        };
        let hot = HotWindow::default();
        let samples: Vec<_> = [1, 2]
            .iter()
            .map(|&node| crate::metrics_store::Sample::of(node, "ping.up", now * 1_000, 1.0))
            .collect();
        hot.record(&samples, &Default::default(), i64::MIN);
        let judgement = ev.judge(&back, &hot);
        ev.memory.transitions(&back, &judgement);
        let alert = ev
            .memory
            .open
            .values()
            .find(|a| a.rule_id == critical)
            .unwrap();
        assert!(
            !alert.suppressed && alert.notified_at.is_some(),
            "{alert:?}"
        );
    }

    #[test]
    fn matching_by_varbind_value_text_and_severity() {
        let down = trap(1, Some(1), "linkDown", Some(3), T0).event;
        let m = |f: fn(&mut EventMatch)| {
            let mut m = EventMatch::default();
            f(&mut m);
            matches(&m, &down)
        };
        assert!(m(|m| m.traps = vec!["1.3.6.1.6.3.1.1.5.3".into()]));
        assert!(m(|m| m.traps = vec!["coldStart".into(), "LINKDOWN".into()]));
        assert!(!m(|m| m.traps = vec!["linkUp".into()]));
        assert!(m(|m| {
            m.varbinds.insert("ifIndex".into(), "3".into());
        }));
        assert!(!m(|m| {
            m.varbinds.insert("ifIndex".into(), "4".into());
        }));
        assert!(!m(|m| {
            m.varbinds.insert("ifDescr".into(), "*".into());
        }));
        assert!(m(|m| m.severity = Some(EventSeverity::Warning)));
        assert!(!m(|m| m.severity = Some(EventSeverity::Error)));
        assert!(m(|m| m.text = Some("LINKdown".into())));
        assert!(
            !m(|m| m.program = Some("*".into())),
            "a trap has no program"
        );
        assert!(!m(|m| m.kind = Some(EventKind::Syslog)));
    }
}
