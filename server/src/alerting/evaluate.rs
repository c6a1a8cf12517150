//! One evaluation cycle: gather (database reads), judge (one pass over the hot window with
//! every rule's [`RuleKind`](super::kinds::RuleKind), no I/O), transitions (pure: what the
//! judgement changes, in [`super::transitions`]) and apply (the writes, in one transaction).

use std::collections::{HashMap, HashSet};

use jiff::tz::TimeZone;
use plantwatch_shared::api::{
    AlertRule, Channel, ComponentKind, GroupedAlert, Notification, Severity,
};
use rusqlite::Transaction;
use rustc_hash::FxHashMap;

use super::kinds::events::RuleEvent;
use super::kinds::{Cycle, Findings, Judge, Series, kind_of};
use super::maintenance::{self, InMaintenance};
use super::notify::routes;
use super::rules::NodeFacts;
use super::suppression;
use super::transitions::{Memory, Write};
use crate::auth::api_keys::Presence;
use crate::db::alerts::{self as store, OpenAlert};
use crate::db::{self, components, notify};
use crate::metrics_store::HotWindow;

pub use super::messages::{threshold_text, value_text};
pub use super::transitions::{FLAP_LIMIT, FLAP_WINDOW_S};

/// Identity of an alert: one per (rule, node or collector, series).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AlertKey {
    pub rule_id: i64,
    pub node_id: Option<i64>,
    pub collector_id: Option<i64>,
    pub series: String,
}

impl AlertKey {
    pub fn of(alert: &OpenAlert) -> Self {
        AlertKey {
            rule_id: alert.rule_id,
            node_id: alert.node_id,
            collector_id: alert.collector_id,
            series: alert.series.clone(),
        }
    }
}

/// What the evaluator knows of a collector.
#[derive(Debug, Clone)]
pub struct CollectorFacts {
    pub id: i64,
    pub name: String,
    pub is_local: bool,
    pub last_seen: Option<i64>,
    pub outbox_lag_s: Option<u64>,
}

/// An agent watched for heartbeats.
#[derive(Debug, Clone)]
pub struct AgentFacts {
    pub name: String,
    pub node_id: i64,
    pub last_seen: Option<i64>,
}

/// Everything a cycle reads from the database.
#[derive(Debug, Default)]
pub struct Inputs {
    pub now: i64,
    pub rules: Vec<AlertRule>,
    pub nodes: Vec<NodeFacts>,
    pub collectors: Vec<CollectorFacts>,
    pub agents: Vec<AgentFacts>,
    pub maintenance: InMaintenance,
    pub channels: Vec<Channel>,
    /// Open alerts someone acknowledged (repeats stop for them).
    pub acked: HashSet<i64>,
    /// (rule, node, series) operators told the rules to leave alone.
    pub ignored: HashSet<(i64, i64, String)>,
    /// The service checks that exist: an alert on a series of another check (tag `check_id`)
    /// resolves, and none opens on it, once the check is removed.
    pub checks: HashSet<i64>,
    /// Judge every matching series, breaching or not (the rule editor's preview).
    pub preview: bool,
    /// Events stored since the last cycle, oldest first (read only when event rules exist).
    pub events: Vec<RuleEvent>,
    /// Where the next cycle's events begin, stored with this cycle's writes (`None`: as it
    /// is).
    pub events_cursor: Option<i64>,
}

/// Most events one cycle judges; more wait for the next cycle.
pub const MAX_EVENTS_PER_CYCLE: usize = 20_000;

/// Reads what a cycle needs.
pub fn gather(
    conn: &rusqlite::Connection,
    presence: &Presence,
    tz: &TimeZone,
    now: i64,
) -> rusqlite::Result<Inputs> {
    let rules: Vec<AlertRule> = store::list_rules(conn)?
        .into_iter()
        .filter(|r| r.spec.enabled)
        .collect();
    let nodes = store::node_facts(conn)?;
    let mut collectors = Vec::new();
    let mut agents = Vec::new();
    for row in components::all(conn, None)? {
        if !row.approved || row.revoked {
            continue;
        }
        let last_seen = crate::components::last_seen(presence, &row).or(row.approved_at);
        match row.kind {
            ComponentKind::Collector => collectors.push(CollectorFacts {
                id: row.id,
                name: row.name,
                is_local: row.is_local,
                last_seen,
                outbox_lag_s: row.report.and_then(|r| r.outbox).map(|o| o.lag_s),
            }),
            ComponentKind::Agent => {
                if let Some(node_id) = row.node_id {
                    agents.push(AgentFacts {
                        name: row.name,
                        node_id,
                        last_seen,
                    });
                }
            }
        }
    }
    let windows = notify::live_windows(conn, now)?;
    let by_name: HashMap<String, i64> = collectors
        .iter()
        .map(|c| (c.name.to_lowercase(), c.id))
        .collect();
    let maintenance = maintenance::covered(&windows, &nodes, &by_name, now, tz);
    let channels = notify::list_channels(conn)?
        .into_iter()
        .map(|row| row.channel)
        .filter(|c| c.enabled)
        .collect();
    let acked = store::acked_open(conn)?;
    let ignored = store::ignored_series(conn)?;
    let checks = crate::db::checks::ids(conn)?;
    let event_rules = rules.iter().any(|r| r.spec.event.is_some());
    let (events, events_cursor) = db::events::for_rules(conn, event_rules, MAX_EVENTS_PER_CYCLE)?;
    Ok(Inputs {
        now,
        rules,
        nodes,
        collectors,
        agents,
        maintenance,
        channels,
        acked,
        ignored,
        checks,
        preview: false,
        events,
        events_cursor,
    })
}

/// The judgement of one key in this cycle.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    /// `None`: the condition no longer holds.
    pub severity: Option<Severity>,
    pub value: Option<f64>,
    pub message: String,
    /// An event rule's alert: when the event that opened or refreshed it came.
    pub event_at: Option<i64>,
}

/// What judging found.
#[derive(Debug, Default)]
pub struct Judgement {
    pub verdicts: HashMap<AlertKey, Verdict>,
    /// Nodes whose every parent is down, with the reason shown.
    pub suppressed: HashMap<i64, String>,
    /// Collectors whose `collector_offline` condition holds.
    pub collectors_down: HashSet<i64>,
    /// Nodes with any recent series.
    pub with_data: HashSet<i64>,
    /// Series looked at.
    pub series_seen: usize,
}

/// The evaluator: its memory between cycles (open alerts, recent transitions).
#[derive(Debug, Default)]
pub struct Evaluator {
    pub memory: Memory,
}

impl Evaluator {
    /// Starts from the open alerts stored.
    pub fn new(open: Vec<OpenAlert>) -> Self {
        Evaluator {
            memory: Memory::new(open),
        }
    }

    /// Judges every enabled rule against the hot window and the gathered facts: one pass
    /// over the window, each series handed to the rules that read its metric.
    pub fn judge(&self, inputs: &Inputs, hot: &HotWindow) -> Judgement {
        let cycle = Cycle::new(inputs, &self.memory.open, hot);
        let mut judges: Vec<Box<dyn Judge<'_> + '_>> = Vec::with_capacity(inputs.rules.len());
        let mut by_metric: FxHashMap<&str, Vec<usize>> = FxHashMap::default();
        for rule in &inputs.rules {
            let kind = kind_of(rule);
            for metric in kind.reads(rule) {
                by_metric.entry(metric).or_default().push(judges.len());
            }
            judges.push(kind.judge(rule));
        }
        let mut findings = Findings::default();
        let mut with_data = HashSet::new();
        let mut series_seen = 0;
        let mut last_node = None;
        let mut scratch = Vec::new();
        hot.scan(|key, points| {
            series_seen += 1;
            if points.is_empty() {
                return;
            }
            if last_node != Some(key.node_id) {
                with_data.insert(key.node_id);
                last_node = Some(key.node_id);
            }
            let Some(readers) = by_metric.get(&*key.metric) else {
                return;
            };
            let Some(node) = cycle.nodes.get(&key.node_id).copied() else {
                return;
            };
            let open_rules = cycle.open_rules(key.node_id);
            let mut series = Series::new(key, points, open_rules, &mut scratch);
            for &index in readers {
                judges[index].series(&cycle, node, &mut series, &mut findings);
            }
        });
        for judge in judges {
            judge.finish(&cycle, &mut findings);
        }
        let suppressed = suppression::suppressed(&cycle, &findings);
        Judgement {
            verdicts: findings.verdicts,
            suppressed,
            collectors_down: findings.collectors_down,
            with_data,
            series_seen,
        }
    }

    /// Applies a judgement: the transitions it calls for, written in one transaction.
    pub fn apply(
        &mut self,
        tx: &Transaction<'_>,
        inputs: &Inputs,
        judgement: Judgement,
    ) -> rusqlite::Result<CycleStats> {
        let writes = self.memory.transitions(inputs, &judgement);
        let mut stats = CycleStats {
            series: judgement.series_seen,
            verdicts: judgement.verdicts.len(),
            ..CycleStats::default()
        };
        write(tx, &mut self.memory, inputs, writes, &mut stats)?;
        if let Some(cursor) = inputs.events_cursor {
            db::events::set_rules_cursor(tx, cursor, inputs.now)?;
        }
        Ok(stats)
    }
}

/// What a cycle did.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct CycleStats {
    pub series: usize,
    pub verdicts: usize,
    pub opened: usize,
    pub fired: usize,
    pub resolved: usize,
    pub queued: usize,
    pub health_changes: usize,
}

/// Writes a cycle's transitions out, in order.
fn write(
    tx: &Transaction<'_>,
    memory: &mut Memory,
    inputs: &Inputs,
    writes: Vec<Write>,
    stats: &mut CycleStats,
) -> rusqlite::Result<()> {
    let now = inputs.now;
    let nodes: HashMap<i64, &NodeFacts> = inputs.nodes.iter().map(|n| (n.id, n)).collect();
    let collectors: HashMap<i64, &CollectorFacts> =
        inputs.collectors.iter().map(|c| (c.id, c)).collect();
    let rules: HashMap<i64, &AlertRule> = inputs.rules.iter().map(|r| (r.id, r)).collect();
    let subject = |alert: &OpenAlert| {
        let node = alert.node_id.and_then(|id| nodes.get(&id).copied());
        let collector = alert
            .collector_id
            .or(node.and_then(|n| n.collector_id))
            .and_then(|id| collectors.get(&id).copied());
        Subject { node, collector }
    };
    let id_of = |memory: &Memory, key: &AlertKey| memory.open.get(key).map(|a| a.id);
    for write in writes {
        match write {
            Write::Resolve {
                alert,
                value,
                why,
                checked,
            } => {
                if !checked || store::exists(tx, alert.id)? {
                    store::resolve_alert(tx, alert.id, value, why.as_deref(), now)?;
                    stats.resolved += 1;
                }
            }
            Write::Insert(key) => {
                if let Some(alert) = memory.open.get_mut(&key) {
                    alert.id = store::insert_alert(tx, alert, now)?;
                    stats.opened += 1;
                }
            }
            Write::Event {
                key,
                event,
                severity,
                value,
                reason,
            } => {
                if let Some(id) = id_of(memory, &key) {
                    store::add_event(tx, id, now, event, severity, value, None, reason.as_deref())?;
                    stats.fired += usize::from(event == "firing");
                }
            }
            Write::Update(key) => {
                if let Some(alert) = memory.open.get(&key) {
                    store::update_alert(tx, alert, now)?;
                }
            }
            Write::Queue {
                event,
                mut alerts,
                affected,
            } => {
                for alert in &mut alerts {
                    if alert.id == 0 {
                        alert.id = id_of(memory, &AlertKey::of(alert)).unwrap_or(0);
                    }
                }
                let Some((first, rest)) = alerts.split_first() else {
                    continue;
                };
                let Some(rule) = rules.get(&first.rule_id) else {
                    continue;
                };
                let also = rest
                    .iter()
                    .map(|a| GroupedAlert {
                        alert_id: a.id,
                        series: a.series.clone(),
                        value: a.value,
                        message: a.message.clone(),
                    })
                    .collect();
                let s = subject(first);
                stats.queued += queue(tx, inputs, first, rule, &s, event, affected, also, now)?;
            }
            Write::Repeat(key) => {
                let Some(alert) = memory.open.get(&key) else {
                    continue;
                };
                let Some(rule) = rules.get(&alert.rule_id) else {
                    continue;
                };
                let s = subject(alert);
                for channel in inputs.channels.iter().filter(|c| c.repeat_s > 0) {
                    if !routes_to(channel, alert.severity, &s) {
                        continue;
                    }
                    let last = notify::last_queued(tx, alert.id, channel.id)?.unwrap_or(0);
                    if now - last >= i64::from(channel.repeat_s) {
                        let payload = payload(alert, rule, &s, "repeat", None, Vec::new(), now);
                        notify::enqueue(tx, channel.id, Some(alert.id), "repeat", &payload, now)?;
                        stats.queued += 1;
                    }
                }
            }
            Write::Health {
                node_id,
                from,
                to,
                reason,
            } => {
                store::set_health(tx, node_id, from, to, reason.as_deref(), now)?;
                stats.health_changes += usize::from(from != to);
            }
        }
    }
    Ok(())
}

/// Notification routing facts of a node.
struct Subject<'a> {
    node: Option<&'a NodeFacts>,
    collector: Option<&'a CollectorFacts>,
}

fn routes_to(channel: &Channel, severity: Severity, s: &Subject<'_>) -> bool {
    let tags = s.node.map(|n| n.tags.as_slice()).unwrap_or_default();
    routes(
        channel,
        severity,
        tags,
        s.collector.map(|c| c.name.as_str()),
    )
}

fn payload(
    alert: &OpenAlert,
    rule: &AlertRule,
    s: &Subject<'_>,
    event: &str,
    affected: Option<u64>,
    also: Vec<GroupedAlert>,
    now: i64,
) -> String {
    let notification = Notification {
        event: event.to_owned(),
        alert_id: Some(alert.id),
        rule: rule.spec.name.clone(),
        severity: alert.severity,
        node: s.node.map(|n| n.name.clone()),
        address: s.node.map(|n| n.address.clone()),
        collector: s.collector.map(|c| c.name.clone()),
        series: alert.series.clone(),
        value: alert.value,
        message: if also.is_empty() {
            alert.message.clone()
        } else {
            format!("{} (+{} more)", alert.message, also.len())
        },
        affected_nodes: affected.filter(|n| *n > 0),
        at: db::to_time(now),
        also,
    };
    serde_json::to_string(&notification).unwrap_or_default()
}

/// Queues `event` for `alert` on every channel that routes it; returns how many.
fn queue(
    tx: &Transaction<'_>,
    inputs: &Inputs,
    alert: &OpenAlert,
    rule: &AlertRule,
    s: &Subject<'_>,
    event: &str,
    affected: Option<u64>,
    also: Vec<GroupedAlert>,
    now: i64,
) -> rusqlite::Result<usize> {
    let mut count = 0;
    let text = payload(alert, rule, s, event, affected, also, now);
    for channel in &inputs.channels {
        if !routes_to(channel, alert.severity, s) || (event == "resolved" && !channel.send_resolved)
        {
            continue;
        }
        notify::enqueue(tx, channel.id, Some(alert.id), event, &text, now)?;
        count += 1;
    }
    Ok(count)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerting::rules;
    use plantwatch_shared::api::AlertState;

    /// The built-in rules with ids 1.., as stored at first start.
    fn builtin_rules() -> Vec<AlertRule> {
        rules::builtin_defaults()
            .into_iter()
            .enumerate()
            .map(|(i, (builtin, spec))| AlertRule {
                id: i as i64 + 1,
                spec,
                builtin: Some(builtin),
                created_at: time::OffsetDateTime::UNIX_EPOCH,
                updated_at: time::OffsetDateTime::UNIX_EPOCH,
            })
            .collect()
    }

    /// `samples`: (node, metric, seconds before now, value); `metric{tags}` gives tags.
    fn window(samples: &[(i64, &str, i64, f64)], now: i64) -> HotWindow {
        let hot = HotWindow::default();
        let samples: Vec<crate::metrics_store::Sample> = samples
            .iter()
            .map(|&(node_id, series, ago, value)| {
                crate::metrics_store::Sample::of(node_id, series, (now - ago) * 1_000, value)
            })
            .collect();
        hot.record(&samples, &Default::default(), i64::MIN);
        hot
    }

    /// A tree of parents: core (1) ← hall (2) ← plc-a (3), plc-b (4); hall-c (5) under core.
    fn tree() -> Vec<NodeFacts> {
        let node = |id, name: &str, parent| NodeFacts {
            id,
            name: name.to_owned(),
            parent_id: parent,
            collector_id: Some(1),
            health: "discovering".into(),
            ..NodeFacts::default()
        };
        vec![
            node(1, "core", None),
            node(2, "hall", Some(1)),
            node(3, "plc-a", Some(2)),
            node(4, "plc-b", Some(2)),
            node(5, "hall-c", Some(1)),
        ]
    }

    fn judge_tree(samples: &[(i64, &str, i64, f64)]) -> HashMap<i64, String> {
        let now = 1_000_000;
        let inputs = Inputs {
            now,
            rules: builtin_rules(),
            nodes: tree(),
            collectors: vec![CollectorFacts {
                id: 1,
                name: "local".into(),
                is_local: true,
                last_seen: Some(now),
                outbox_lag_s: None,
            }],
            ..Inputs::default()
        };
        let hot = window(samples, now);
        let first = Evaluator::default().judge(&inputs, &hot).suppressed;
        // Same input, same verdict.
        for _ in 0..5 {
            assert_eq!(Evaluator::default().judge(&inputs, &hot).suppressed, first);
        }
        first
    }

    #[test]
    fn a_parent_is_down_only_when_its_reachability_is() {
        // Every node answers ping; SNMP fails everywhere (no agent), its poll newer or older
        // than the ping in turn: nobody is suppressed.
        for snmp_ago in [1, 20] {
            let mut samples = Vec::new();
            for id in 1..=5 {
                samples.push((id, "ping.up", 10, 1.0));
                samples.push((id, "snmp.up", snmp_ago, 0.0));
            }
            assert_eq!(
                judge_tree(&samples),
                HashMap::new(),
                "snmp {snmp_ago} s ago"
            );
        }
        // A metric alert on the parent (CPU at 100 %) does not make it down either.
        let mut samples: Vec<_> = (1..=5).map(|id| (id, "ping.up", 10, 1.0)).collect();
        samples.push((2, "cpu.load_pct", 10, 100.0));
        assert_eq!(judge_tree(&samples), HashMap::new());
        // The hall switch stops answering ping and SNMP, and so do the PLCs behind it: they
        // are suppressed, its sibling is not.
        let mut samples = Vec::new();
        for id in 1..=5 {
            let up = if (2..=4).contains(&id) { 0.0 } else { 1.0 };
            samples.push((id, "ping.up", 10, up));
            samples.push((id, "snmp.up", 5, up));
        }
        let suppressed = judge_tree(&samples);
        assert_eq!(suppressed.len(), 2, "{suppressed:?}");
        assert_eq!(suppressed[&3], "parent hall down");
        assert_eq!(suppressed[&4], "parent hall down");
        // The hall's ping down but its SNMP answering: reachable, nothing behind it is
        // suppressed (the PLCs' own alerts stand).
        samples.retain(|(id, metric, ..)| !(*id == 2 && *metric == "snmp.up"));
        samples.push((2, "snmp.up", 5, 1.0));
        assert_eq!(judge_tree(&samples), HashMap::new());
        // A PLC that answers while its switch is down is not shown cut off.
        let mut samples: Vec<_> = [1, 5, 3]
            .iter()
            .map(|&id| (id, "ping.up", 10, 1.0))
            .collect();
        samples.extend([(2, "ping.up", 10, 0.0), (4, "ping.up", 10, 0.0)]);
        let suppressed = judge_tree(&samples);
        assert_eq!(suppressed.keys().collect::<Vec<_>>(), [&4]);
        // The core down: a node behind it that still answers is not cut off (hall); one
        // with nothing to say is (hall-c).
        let samples = [(1, "ping.up", 3, 0.0), (2, "ping.up", 3, 1.0)];
        let suppressed = judge_tree(&samples);
        assert_eq!(suppressed.len(), 1, "{suppressed:?}");
        assert_eq!(suppressed[&5], "parent core down");
        // Core and hall both silent: the hall is cut off by the core, its PLCs by the hall.
        let samples = [(1, "ping.up", 3, 0.0), (2, "ping.up", 3, 0.0)];
        let suppressed = judge_tree(&samples);
        assert_eq!(suppressed.len(), 4, "{suppressed:?}");
        assert_eq!(suppressed[&2], "parent core down");
        assert_eq!(suppressed[&3], "parent hall down");
    }

    #[test]
    fn only_an_interface_seen_up_then_down_alerts() {
        let now = 1_000_000;
        let inputs = Inputs {
            now,
            rules: builtin_rules(),
            nodes: tree(),
            ..Inputs::default()
        };
        let mut samples = Vec::new();
        for port in 1..=48 {
            let tags = format!("ifIndex={port},ifName=Gi0/{port}");
            let admin = format!("interface.admin_status{{{tags}}}");
            let oper = format!("interface.oper_status{{{tags}}}");
            for ago in [30, 20, 10] {
                samples.push((1, leak(&admin), ago, 1.0));
                // Port 7 was up and went down; every other port is an unused one.
                let up = port == 7 && ago > 10;
                samples.push((1, leak(&oper), ago, if up { 1.0 } else { 2.0 }));
            }
        }
        let hot = window(&samples, now);
        let evaluator = Evaluator::default();
        let verdicts = evaluator.judge(&inputs, &hot).verdicts;
        let down: Vec<_> = verdicts
            .iter()
            .filter(|(_, v)| v.severity.is_some())
            .collect();
        assert_eq!(down.len(), 1, "{down:?}");
        let (key, verdict) = down[0];
        assert_eq!(key.series, "interface.oper_status{ifIndex=7,ifName=Gi0/7}");
        assert!(verdict.message.contains("Gi0/7"), "{}", verdict.message);
        // With port 7's alert open, the unused ports of the same switch still do not alert.
        let open = OpenAlert {
            id: 1,
            rule_id: key.rule_id,
            node_id: key.node_id,
            collector_id: None,
            series: key.series.clone(),
            state: AlertState::Firing,
            severity: Severity::Warning,
            value: Some(2.0),
            message: verdict.message.clone(),
            flapping: false,
            held: false,
            suppressed: false,
            acked: false,
            started_at: now,
            fired_at: Some(now),
            notified_at: Some(now),
            last_event_at: None,
        };
        let evaluator = Evaluator::new(vec![open]);
        let verdicts = evaluator.judge(&inputs, &hot).verdicts;
        let down: Vec<_> = verdicts
            .iter()
            .filter(|(_, v)| v.severity.is_some())
            .map(|(k, _)| k.series.as_str())
            .collect();
        assert_eq!(down, ["interface.oper_status{ifIndex=7,ifName=Gi0/7}"]);
    }

    #[test]
    fn automatic_services_down_warn_required_ones_are_critical_and_missing_ones_too() {
        let now = 1_000_000;
        let mut nodes = tree();
        nodes[2].required_services = vec!["WinCC".into(), "OpcEnum".into()];
        let inputs = Inputs {
            now,
            rules: builtin_rules(),
            nodes,
            ..Inputs::default()
        };
        let line = |service: &str, start: &str| -> &'static str {
            leak(&format!(
                "windows_service.state{{service={service},start={start}}}"
            ))
        };
        let samples = [
            // A healthy automatic service, a stopped one, one stopped by design (updater),
            // a trigger-start one stopped (idle), a manual one stopped: one warning.
            (3, line("Spooler", "auto"), 10, 4.0),
            (3, line("Eventlog", "auto"), 10, 1.0),
            (3, line("gupdate", "auto"), 10, 1.0),
            (3, line("edgeupdatem", "auto-delayed"), 10, 1.0),
            (3, line("clr_optimization_v4.0.30319_64", "auto"), 10, 1.0),
            (3, line("WpnService", "auto-trigger"), 10, 1.0),
            (3, line("Fax", "manual"), 10, 1.0),
            // Required, manual start and stopped: critical. OpcEnum is not listed at all.
            (3, line("WinCC", "manual"), 10, 1.0),
            // Another node with the same stopped service, nothing required: a warning.
            (4, line("Eventlog", "auto"), 10, 1.0),
        ];
        let hot = window(&samples, now);
        let verdicts = Evaluator::default().judge(&inputs, &hot).verdicts;
        let mut firing: Vec<_> = verdicts
            .iter()
            .filter_map(|(k, v)| Some((k.node_id?, k.series.as_str(), v.severity?)))
            .collect();
        firing.sort_by_key(|f| (f.0, f.1.to_owned()));
        assert_eq!(
            firing,
            [
                (
                    3,
                    "windows_service.state{service=Eventlog}",
                    Severity::Warning
                ),
                (
                    3,
                    "windows_service.state{service=OpcEnum}",
                    Severity::Critical
                ),
                (
                    3,
                    "windows_service.state{service=WinCC}",
                    Severity::Critical
                ),
                (
                    4,
                    "windows_service.state{service=Eventlog}",
                    Severity::Warning
                ),
            ]
        );
        let message = |series: &str| {
            verdicts
                .iter()
                .find(|(k, _)| k.node_id == Some(3) && k.series == series)
                .map(|(_, v)| v.message.clone())
                .unwrap()
        };
        assert_eq!(
            message("windows_service.state{service=OpcEnum}"),
            "service OpcEnum required by the node is not installed"
        );
        assert_eq!(
            message("windows_service.state{service=WinCC}"),
            "service WinCC (manual) stopped, and the node requires it"
        );
        // A node whose agent reports no services at all gets no "not installed" alerts (its
        // agent may be down: agent_heartbeat's word).
        let hot = window(&[(4, line("Eventlog", "auto"), 10, 4.0)], now);
        let verdicts = Evaluator::default().judge(&inputs, &hot).verdicts;
        assert!(
            verdicts.values().all(|v| v.severity.is_none()),
            "{verdicts:?}"
        );
    }

    fn leak(text: &str) -> &'static str {
        Box::leak(text.to_owned().into_boxed_str())
    }
}
