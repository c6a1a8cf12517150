//! One evaluation cycle: gather (database reads), judge (one pass over the hot window, no
//! I/O), apply (one transaction: alert transitions, queued notifications, node health).

use std::collections::{HashMap, HashSet, VecDeque};

use jiff::tz::TimeZone;
use plantwatch_shared::api::{
    AlertRule, AlertState, BuiltinRule, Channel, ComponentKind, GroupedAlert, NodeStatus,
    Notification, Severity,
};
use rusqlite::Transaction;

use super::maintenance::{self, InMaintenance};
use super::notify::routes;
use super::rules::{self, NodeFacts, TagMatchers};
use crate::auth::api_keys::Presence;
use crate::db::alerts::{self as store, OpenAlert};
use crate::db::{self, components, notify};
use crate::metrics_store::HotWindow;

/// Transitions (fire or resolve) of one (rule, node, series) within [`FLAP_WINDOW_S`] that
/// make a new alert of it "flapping": shown, not notified.
pub const FLAP_LIMIT: usize = 6;
pub const FLAP_WINDOW_S: i64 = 1_800;
/// A remote collector not heard from for this long counts as down for its children's
/// suppression, before its own `collector_offline` alert fires.
const COLLECTOR_SILENT_S: i64 = 30;

/// Identity of an alert: one per (rule, node or collector, series).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AlertKey {
    pub rule_id: i64,
    pub node_id: Option<i64>,
    pub collector_id: Option<i64>,
    pub series: String,
}

impl AlertKey {
    fn of(alert: &OpenAlert) -> Self {
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
    /// Judge every matching series, breaching or not (the rule editor's preview).
    pub preview: bool,
}

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
        let last_seen = match (presence.last_seen(row.id), row.last_seen_at) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b).or(row.approved_at),
        };
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
        preview: false,
    })
}

/// The judgement of one key in this cycle.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    /// `None`: the condition no longer holds.
    pub severity: Option<Severity>,
    pub value: Option<f64>,
    pub message: String,
}

/// Reachability of a node seen in the hot window.
#[derive(Debug, Clone, Copy, Default)]
struct Reach {
    last_success_ms: Option<i64>,
    earliest_ms: i64,
    /// The newest ping and the newest SNMP poll: (timestamp, answered).
    ping: Option<(i64, bool)>,
    snmp: Option<(i64, bool)>,
}

impl Reach {
    /// Down as a parent: every probe it has failed at its newest (ping and SNMP both, when
    /// both are polled). One answering probe keeps it up, whatever order they arrived in.
    fn probes_down(&self) -> bool {
        let probes = [self.ping, self.snmp];
        probes.iter().any(Option::is_some) && probes.iter().flatten().all(|(_, ok)| !ok)
    }
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

/// The open alerts and recent transitions: the evaluator's memory between cycles.
#[derive(Debug, Default)]
pub struct Evaluator {
    pub open: HashMap<AlertKey, OpenAlert>,
    flaps: HashMap<AlertKey, VecDeque<i64>>,
}

impl Evaluator {
    /// Starts from the open alerts stored.
    pub fn new(open: Vec<OpenAlert>) -> Self {
        Evaluator {
            open: open.into_iter().map(|a| (AlertKey::of(&a), a)).collect(),
            flaps: HashMap::new(),
        }
    }

    fn open_severity(&self, key: &AlertKey) -> Option<Severity> {
        self.open.get(key).map(|a| a.severity)
    }

    /// Judges every enabled rule against the hot window and the gathered facts.
    pub fn judge(&self, inputs: &Inputs, hot: &HotWindow) -> Judgement {
        let now_ms = inputs.now * 1_000;
        let nodes: HashMap<i64, &NodeFacts> = inputs.nodes.iter().map(|n| (n.id, n)).collect();
        let builtin = |b: BuiltinRule| inputs.rules.iter().find(|r| r.builtin == Some(b));

        // Threshold rules by each metric they read.
        let mut by_metric: HashMap<&str, Vec<(usize, TagMatchers)>> = HashMap::new();
        for (index, rule) in inputs.rules.iter().enumerate() {
            if !rules::reads_metric(rule.builtin)
                || rule.builtin == Some(BuiltinRule::InterfaceDown)
            {
                continue;
            }
            let matchers = TagMatchers::new(&rule.spec.tags);
            for metric in rule.spec.metric.as_deref().unwrap_or_default().split('|') {
                by_metric
                    .entry(metric.trim())
                    .or_default()
                    .push((index, matchers.clone()));
            }
        }
        let unreachable = builtin(BuiltinRule::NodeUnreachable);
        let interface_down = builtin(BuiltinRule::InterfaceDown);

        // (rule, node) pairs with an open alert: only for them is a series that no longer
        // breaches worth a verdict (and a key built).
        let open_pairs: HashSet<(i64, i64)> = self
            .open
            .keys()
            .filter_map(|k| Some((k.rule_id, k.node_id?)))
            .collect();
        let mut out = Judgement::default();
        let mut reach: HashMap<i64, Reach> = HashMap::new();
        // Interfaces to check against their admin status after the pass: (node, tags, oper,
        // seen up in the window).
        let mut interfaces: Vec<(i64, String, f64, bool)> = Vec::new();
        let mut last_node = None;
        hot.scan(|key, points| {
            out.series_seen += 1;
            let Some(&(newest_ms, newest)) = points.back() else {
                return;
            };
            if last_node != Some(key.node_id) {
                out.with_data.insert(key.node_id);
                last_node = Some(key.node_id);
            }
            let metric = key.metric.as_str();
            if unreachable.is_some() && (metric == "ping.up" || metric == "snmp.up") {
                let r = reach.entry(key.node_id).or_insert(Reach {
                    earliest_ms: i64::MAX,
                    ..Reach::default()
                });
                let success = points.iter().rev().find(|(_, v)| *v >= 1.0).map(|p| p.0);
                r.last_success_ms = r.last_success_ms.max(success);
                r.earliest_ms = r.earliest_ms.min(points.front().map_or(newest_ms, |p| p.0));
                let probe = if metric == "ping.up" {
                    &mut r.ping
                } else {
                    &mut r.snmp
                };
                if probe.is_none_or(|(ts, _)| newest_ms >= ts) {
                    *probe = Some((newest_ms, newest >= 1.0));
                }
            }
            // Only an interface seen up and then down in the window opens an alert (unused
            // ports, admin up and never connected, do not); an open one is judged while down.
            if let Some(rule) = interface_down
                && metric == "interface.oper_status"
                && (newest != 1.0 || open_pairs.contains(&(rule.id, key.node_id)))
            {
                // Up ports (the common case) cost nothing more; a down one is looked through.
                let seen_up = newest != 1.0 && points.iter().any(|(_, v)| *v == 1.0);
                if seen_up || open_pairs.contains(&(rule.id, key.node_id)) {
                    interfaces.push((key.node_id, key.tags.clone(), newest, seen_up));
                }
            }
            let Some(candidates) = by_metric.get(metric) else {
                return;
            };
            let Some(node) = nodes.get(&key.node_id) else {
                return;
            };
            for (index, matchers) in candidates {
                let rule = &inputs.rules[*index];
                let spec = &rule.spec;
                if !rules::in_scope(spec.scope, spec.scope_value.as_deref(), node)
                    || !matchers.matches(&key.tags)
                {
                    continue;
                }
                let from_ms = now_ms - i64::from(spec.window_s) * 1_000;
                let Some(value) = rules::aggregate(points, spec.aggregation, from_ms) else {
                    continue;
                };
                let maybe_open = open_pairs.contains(&(rule.id, key.node_id));
                if !inputs.ignored.is_empty() {
                    let series = series_name(metric, &key.tags);
                    if inputs
                        .ignored
                        .contains(&(rule.id, key.node_id, series.clone()))
                    {
                        // Left alone: an alert open on it resolves, none opens.
                        let k = AlertKey {
                            rule_id: rule.id,
                            node_id: Some(key.node_id),
                            collector_id: None,
                            series,
                        };
                        if self.open.contains_key(&k) {
                            let message = format!("{}: ignored by an operator", k.series);
                            out.verdicts.insert(
                                k,
                                Verdict {
                                    severity: None,
                                    value: Some(value),
                                    message,
                                },
                            );
                        }
                        continue;
                    }
                }
                let make_key = |series| AlertKey {
                    rule_id: rule.id,
                    node_id: Some(key.node_id),
                    collector_id: None,
                    series,
                };
                let (alert_key, open) = if maybe_open {
                    let k = make_key(series_name(metric, &key.tags));
                    let open = self.open_severity(&k);
                    (Some(k), open)
                } else {
                    (None, None)
                };
                let severity = rules::severity_of(spec, value, open);
                if severity.is_none() && open.is_none() && !inputs.preview {
                    // Nothing breaching, nothing open: the common case costs no allocation.
                    continue;
                }
                let alert_key =
                    alert_key.unwrap_or_else(|| make_key(series_name(metric, &key.tags)));
                let message = threshold_message(&alert_key.series, spec, value, severity);
                out.verdicts.insert(
                    alert_key,
                    Verdict {
                        severity,
                        value: Some(value),
                        message,
                    },
                );
            }
        });

        if let Some(rule) = interface_down {
            let severity = if rule.spec.critical.is_some() {
                Severity::Critical
            } else {
                Severity::Warning
            };
            let matchers = TagMatchers::new(&rule.spec.tags);
            for (node_id, tags, oper_status, seen_up) in interfaces {
                let Some(node) = nodes.get(&node_id) else {
                    continue;
                };
                if !rules::in_scope(rule.spec.scope, rule.spec.scope_value.as_deref(), node)
                    || !matchers.matches(&tags)
                {
                    continue;
                }
                let down = oper_status != 1.0
                    && hot
                        .latest_of(node_id, "interface.admin_status", &tags)
                        .is_some_and(|(_, admin)| admin == 1.0);
                let key = AlertKey {
                    rule_id: rule.id,
                    node_id: Some(node_id),
                    collector_id: None,
                    series: series_name("interface.oper_status", &tags),
                };
                let open = self.open.contains_key(&key);
                if inputs
                    .ignored
                    .contains(&(rule.id, node_id, key.series.clone()))
                {
                    if open {
                        let message = format!(
                            "interface {} ignored by an operator",
                            interface_label(&tags)
                        );
                        out.verdicts.insert(
                            key,
                            Verdict {
                                severity: None,
                                value: Some(oper_status),
                                message,
                            },
                        );
                    }
                    continue;
                }
                // A new alert needs the port seen up first; an open one holds while down.
                let down = down && (open || seen_up);
                if !down && !open {
                    continue;
                }
                let message = format!(
                    "interface {} administratively up, operational status {}",
                    interface_label(&tags),
                    oper_status as i64
                );
                out.verdicts.insert(
                    key,
                    Verdict {
                        severity: down.then_some(severity),
                        value: Some(oper_status),
                        message,
                    },
                );
            }
        }

        if let Some(rule) = unreachable {
            let window_ms = i64::from(rule.spec.window_s) * 1_000;
            for (node_id, r) in &reach {
                let Some(node) = nodes.get(node_id) else {
                    continue;
                };
                if !rules::in_scope(rule.spec.scope, rule.spec.scope_value.as_deref(), node) {
                    continue;
                }
                let since = r.last_success_ms.unwrap_or(r.earliest_ms);
                let silent_ms = now_ms - since;
                let down = silent_ms >= window_ms;
                out.verdicts.insert(
                    node_key(rule.id, *node_id),
                    Verdict {
                        severity: down.then_some(Severity::Critical),
                        value: Some((silent_ms / 1_000) as f64),
                        message: if r.last_success_ms.is_some() {
                            format!("no successful ping or poll for {} s", silent_ms / 1_000)
                        } else {
                            format!(
                                "no successful ping or poll since {} s ago",
                                silent_ms / 1_000
                            )
                        },
                    },
                );
            }
        }

        if let Some(rule) = builtin(BuiltinRule::AgentHeartbeat) {
            for agent in &inputs.agents {
                let Some(node) = nodes.get(&agent.node_id) else {
                    continue;
                };
                if !rules::in_scope(rule.spec.scope, rule.spec.scope_value.as_deref(), node) {
                    continue;
                }
                let silent = agent.last_seen.map(|t| inputs.now - t);
                let down = silent.is_none_or(|s| s >= i64::from(rule.spec.window_s));
                out.verdicts.insert(
                    node_key(rule.id, agent.node_id),
                    Verdict {
                        severity: down.then_some(Severity::Critical),
                        value: silent.map(|s| s as f64),
                        message: match silent {
                            Some(s) => format!("no heartbeat from agent {} for {s} s", agent.name),
                            None => format!("agent {} has never sent a heartbeat", agent.name),
                        },
                    },
                );
            }
        }

        let offline_rule = builtin(BuiltinRule::CollectorOffline);
        let lag_rule = builtin(BuiltinRule::CollectorOutboxLag);
        let mut collectors_silent: HashSet<i64> = HashSet::new();
        for collector in inputs.collectors.iter().filter(|c| !c.is_local) {
            let silent = collector.last_seen.map_or(i64::MAX, |t| inputs.now - t);
            if let Some(rule) = offline_rule {
                let down = silent >= i64::from(rule.spec.window_s);
                if down {
                    out.collectors_down.insert(collector.id);
                }
                if silent >= COLLECTOR_SILENT_S.min(i64::from(rule.spec.window_s)) {
                    collectors_silent.insert(collector.id);
                }
                out.verdicts.insert(
                    collector_key(rule.id, collector.id),
                    Verdict {
                        severity: down.then_some(Severity::Critical),
                        value: (silent != i64::MAX).then_some(silent as f64),
                        message: if silent == i64::MAX {
                            format!("collector {} has never been heard from", collector.name)
                        } else {
                            format!("collector {} not heard from for {silent} s", collector.name)
                        },
                    },
                );
            }
            if let (Some(rule), Some(lag)) = (lag_rule, collector.outbox_lag_s) {
                let key = collector_key(rule.id, collector.id);
                let severity = rules::severity_of(&rule.spec, lag as f64, self.open_severity(&key));
                out.verdicts.insert(
                    key,
                    Verdict {
                        severity,
                        value: Some(lag as f64),
                        message: format!(
                            "collector {} holds data {lag} s old in its outbox",
                            collector.name
                        ),
                    },
                );
            }
        }

        // Parent suppression: a node is suppressed when every parent is down. A parent node
        // is down only when its reachability is: its newest ping and SNMP poll both failed,
        // its node_unreachable or agent_heartbeat condition holds, or it is itself
        // suppressed — never for a metric alert (snmp_unreachable included). A collector is
        // down when it has been silent.
        let offline_rules: Vec<i64> = inputs
            .rules
            .iter()
            .filter(|r| rules::means_offline(r.builtin))
            .map(|r| r.id)
            .collect();
        // Some(true): down; Some(false): its probes answer (up, whatever is above it); None:
        // nothing known, so it is down when it is itself cut off.
        let own_down = |id: i64| {
            let offline = offline_rules.iter().any(|rule_id| {
                out.verdicts
                    .get(&node_key(*rule_id, id))
                    .is_some_and(|v| v.severity.is_some())
            });
            match reach.get(&id) {
                Some(r) => Some(offline || r.probes_down()),
                None => offline.then_some(true),
            }
        };
        let collector_names: HashMap<i64, &str> = inputs
            .collectors
            .iter()
            .map(|c| (c.id, c.name.as_str()))
            .collect();
        let remote: HashSet<i64> = inputs
            .collectors
            .iter()
            .filter(|c| !c.is_local)
            .map(|c| c.id)
            .collect();
        let mut memo: HashMap<i64, Option<String>> = HashMap::new();
        for node in &inputs.nodes {
            suppression(
                node.id,
                &nodes,
                &own_down,
                &collectors_silent,
                &remote,
                &collector_names,
                &mut memo,
                0,
            );
        }
        out.suppressed = memo
            .into_iter()
            .filter_map(|(id, reason)| reason.map(|r| (id, r)))
            .collect();
        out
    }
}

/// Why node `id` is suppressed (every parent down), memoised; `None` when it is not.
fn suppression(
    id: i64,
    nodes: &HashMap<i64, &NodeFacts>,
    own_down: &dyn Fn(i64) -> Option<bool>,
    collectors_silent: &HashSet<i64>,
    remote: &HashSet<i64>,
    collector_names: &HashMap<i64, &str>,
    memo: &mut HashMap<i64, Option<String>>,
    depth: usize,
) -> Option<String> {
    if let Some(known) = memo.get(&id) {
        return known.clone();
    }
    let node = nodes.get(&id)?;
    let reason = if depth > 64 || own_down(id) == Some(false) {
        // A node whose own probes answer is reachable, whatever is said of its parents.
        None
    } else if let Some(parent_id) = node.parent_id {
        // Every parent must be down: one working uplink keeps the node reachable.
        let parents: Vec<i64> = std::iter::once(parent_id)
            .chain(node.other_parents.iter().copied())
            .collect();
        let mut all_down = true;
        for parent in &parents {
            let down = match own_down(*parent) {
                Some(down) => down,
                None => suppression(
                    *parent,
                    nodes,
                    own_down,
                    collectors_silent,
                    remote,
                    collector_names,
                    memo,
                    depth + 1,
                )
                .is_some(),
            };
            if !down {
                all_down = false;
                break;
            }
        }
        all_down.then(|| {
            let names: Vec<&str> = parents
                .iter()
                .map(|p| nodes.get(p).map_or("?", |n| n.name.as_str()))
                .collect();
            if names.len() == 1 {
                format!("parent {} down", names[0])
            } else {
                format!("parents {} down", names.join(", "))
            }
        })
    } else {
        node.collector_id
            .filter(|c| remote.contains(c) && collectors_silent.contains(c))
            .map(|c| {
                format!(
                    "collector {} offline",
                    collector_names.get(&c).copied().unwrap_or("?")
                )
            })
    };
    memo.insert(id, reason.clone());
    reason
}

fn node_key(rule_id: i64, node_id: i64) -> AlertKey {
    AlertKey {
        rule_id,
        node_id: Some(node_id),
        collector_id: None,
        series: String::new(),
    }
}

fn collector_key(rule_id: i64, collector_id: i64) -> AlertKey {
    AlertKey {
        rule_id,
        node_id: None,
        collector_id: Some(collector_id),
        series: String::new(),
    }
}

/// `metric{tags}`, or the metric alone when it has no tags.
fn series_name(metric: &str, tags: &str) -> String {
    if tags.is_empty() {
        metric.to_owned()
    } else {
        format!("{metric}{{{tags}}}")
    }
}

fn interface_label(tags: &str) -> String {
    let map = plantwatch_shared::api::tags_from_canonical(tags);
    map.get("ifName")
        .or_else(|| map.get("ifIndex"))
        .cloned()
        .unwrap_or_else(|| tags.to_owned())
}

/// A threshold rule's message: `series: aggregation value comparison threshold` while it
/// breaches, and that the value is back once it does not.
fn threshold_message(
    series: &str,
    spec: &plantwatch_shared::api::RuleSpec,
    value: f64,
    severity: Option<Severity>,
) -> String {
    let threshold = match severity {
        Some(Severity::Critical) => spec.critical,
        _ => spec.warning.or(spec.critical),
    }
    .map(threshold_text)
    .unwrap_or_default();
    let value_text = value_text(value);
    match severity {
        Some(_) => format!(
            "{series}: {} {value_text} {} {threshold}",
            spec.aggregation, spec.comparison
        ),
        None => format!(
            "{series}: {} {value_text}, back to normal (no longer {} {threshold})",
            spec.aggregation,
            spec.comparison.words()
        ),
    }
}

/// A threshold as it was set: the shortest text that reads back as the same number, so
/// 0.001 is "0.001", not "0".
pub fn threshold_text(value: f64) -> String {
    format!("{value}")
}

/// A measured value for a person: two decimals from 1 up, three significant digits below
/// (0.000123 stays 0.000123), trailing zeros dropped.
pub fn value_text(value: f64) -> String {
    if !value.is_finite() {
        return format!("{value}");
    }
    let magnitude = value.abs();
    let decimals = if magnitude >= 1.0 || magnitude == 0.0 {
        2
    } else {
        // Digits after the point up to the third significant one.
        (2 - magnitude.log10().floor() as i32).clamp(2, 12) as usize
    };
    let text = format!("{value:.decimals$}");
    let text = if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.')
    } else {
        &text
    };
    if text == "-0" {
        "0".to_owned()
    } else {
        text.to_owned()
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

/// Notification routing facts of a node.
struct Subject<'a> {
    node: Option<&'a NodeFacts>,
    collector: Option<&'a CollectorFacts>,
}

impl Evaluator {
    /// Applies a judgement: alert transitions, flags, notifications and node health, in one
    /// transaction.
    pub fn apply(
        &mut self,
        tx: &Transaction<'_>,
        inputs: &Inputs,
        judgement: Judgement,
    ) -> rusqlite::Result<CycleStats> {
        let now = inputs.now;
        let mut outgoing: Vec<Outgoing> = Vec::new();
        let mut stats = CycleStats {
            series: judgement.series_seen,
            verdicts: judgement.verdicts.len(),
            ..CycleStats::default()
        };
        let rules: HashMap<i64, &AlertRule> = inputs.rules.iter().map(|r| (r.id, r)).collect();
        let nodes: HashMap<i64, &NodeFacts> = inputs.nodes.iter().map(|n| (n.id, n)).collect();
        let collectors: HashMap<i64, &CollectorFacts> =
            inputs.collectors.iter().map(|c| (c.id, c)).collect();
        let subject = |node_id: Option<i64>, collector_id: Option<i64>| {
            let node = node_id.and_then(|id| nodes.get(&id).copied());
            let collector = collector_id
                .or(node.and_then(|n| n.collector_id))
                .and_then(|id| collectors.get(&id).copied());
            Subject { node, collector }
        };
        // Children counts, for the one notification standing for a collector or a switch.
        let mut children: HashMap<i64, u64> = HashMap::new();
        let mut under_collector: HashMap<i64, u64> = HashMap::new();
        for node in &inputs.nodes {
            if let Some(parent) = node.parent_id {
                *children.entry(parent).or_default() += 1;
            }
            if let Some(c) = node.collector_id {
                *under_collector.entry(c).or_default() += 1;
            }
        }

        // Alerts whose rule was disabled or deleted, or whose node or collector is gone.
        let stale: Vec<AlertKey> = self
            .open
            .keys()
            .filter(|k| {
                !rules.contains_key(&k.rule_id)
                    || k.node_id.is_some_and(|id| !nodes.contains_key(&id))
                    || k.collector_id
                        .is_some_and(|id| !collectors.contains_key(&id))
            })
            .cloned()
            .collect();
        for key in stale {
            if let Some(alert) = self.open.remove(&key) {
                // A deleted rule or node took its alerts with it (ON DELETE CASCADE).
                if store::exists(tx, alert.id)? {
                    let why = Some("rule disabled or target removed");
                    store::resolve_alert(tx, alert.id, None, why, now)?;
                    stats.resolved += 1;
                }
            }
        }

        for (key, verdict) in judgement.verdicts {
            let Some(rule) = rules.get(&key.rule_id) else {
                continue;
            };
            match (self.open.get_mut(&key), verdict.severity) {
                (Some(alert), Some(severity)) => {
                    let mut changed =
                        alert.value != verdict.value || alert.message != verdict.message;
                    alert.value = verdict.value;
                    alert.message = verdict.message;
                    if alert.state == AlertState::Pending
                        && now - alert.started_at >= i64::from(rule.spec.for_s)
                    {
                        alert.state = AlertState::Firing;
                        alert.fired_at = Some(now);
                        store::add_event(
                            tx,
                            alert.id,
                            now,
                            "firing",
                            Some(severity),
                            alert.value,
                            None,
                            None,
                        )?;
                        stats.fired += 1;
                        changed = true;
                    }
                    if alert.severity != severity {
                        let escalated = severity > alert.severity;
                        alert.severity = severity;
                        store::add_event(
                            tx,
                            alert.id,
                            now,
                            "severity",
                            Some(severity),
                            alert.value,
                            None,
                            None,
                        )?;
                        changed = true;
                        if escalated
                            && alert.notified_at.is_some()
                            && !alert.held
                            && !alert.suppressed
                            && !alert.flapping
                        {
                            let s = subject(alert.node_id, alert.collector_id);
                            stats.queued += queue(
                                tx,
                                inputs,
                                alert,
                                rule,
                                &s,
                                "escalated",
                                None,
                                Vec::new(),
                                now,
                            )?;
                        }
                    }
                    if changed {
                        store::update_alert(tx, alert, now)?;
                    }
                }
                (Some(_), None) => {
                    let Some(alert) = self.open.remove(&key) else {
                        continue;
                    };
                    store::resolve_alert(tx, alert.id, verdict.value, None, now)?;
                    stats.resolved += 1;
                    if alert.state == AlertState::Firing {
                        self.flap(&key, now);
                    }
                    if alert.notified_at.is_some() && !alert.flapping {
                        let resolved = OpenAlert {
                            value: verdict.value,
                            message: verdict.message,
                            ..alert
                        };
                        outgoing.push((resolved, "resolved", None));
                    }
                }
                (None, Some(severity)) => {
                    let firing = rule.spec.for_s == 0;
                    let flapping = firing && self.flap(&key, now) >= FLAP_LIMIT;
                    let mut alert = OpenAlert {
                        id: 0,
                        rule_id: key.rule_id,
                        node_id: key.node_id,
                        collector_id: key.collector_id,
                        series: key.series.clone(),
                        state: if firing {
                            AlertState::Firing
                        } else {
                            AlertState::Pending
                        },
                        severity,
                        value: verdict.value,
                        message: verdict.message,
                        flapping,
                        held: false,
                        suppressed: false,
                        acked: false,
                        started_at: now,
                        fired_at: firing.then_some(now),
                        notified_at: None,
                    };
                    alert.id = store::insert_alert(tx, &alert, now)?;
                    let event = if firing { "firing" } else { "pending" };
                    store::add_event(
                        tx,
                        alert.id,
                        now,
                        event,
                        Some(severity),
                        alert.value,
                        None,
                        None,
                    )?;
                    if flapping {
                        store::add_event(tx, alert.id, now, "flapping", None, None, None, None)?;
                    }
                    stats.opened += 1;
                    stats.fired += usize::from(firing);
                    self.open.insert(key, alert);
                }
                (None, None) => {}
            }
        }

        // Flags, first notifications and repeats.
        for alert in self.open.values_mut() {
            let Some(rule) = rules.get(&alert.rule_id) else {
                continue;
            };
            let held = match (alert.node_id, alert.collector_id) {
                (Some(node), _) => inputs.maintenance.nodes.contains_key(&node),
                (None, Some(c)) => inputs.maintenance.collectors.contains_key(&c),
                _ => false,
            };
            let suppressed = rules::is_reachability(rule.builtin)
                && alert
                    .node_id
                    .is_some_and(|n| judgement.suppressed.contains_key(&n))
                || alert.node_id.is_some_and(|n| {
                    nodes
                        .get(&n)
                        .and_then(|node| node.collector_id)
                        .is_some_and(|c| judgement.collectors_down.contains(&c))
                });
            let mut changed = false;
            if held != alert.held {
                alert.held = held;
                store::add_event(
                    tx,
                    alert.id,
                    now,
                    if held { "held" } else { "released" },
                    None,
                    None,
                    None,
                    None,
                )?;
                changed = true;
            }
            if suppressed != alert.suppressed {
                alert.suppressed = suppressed;
                let event = if suppressed {
                    "suppressed"
                } else {
                    "unsuppressed"
                };
                let reason = alert
                    .node_id
                    .and_then(|n| judgement.suppressed.get(&n))
                    .map(String::as_str);
                store::add_event(tx, alert.id, now, event, None, None, None, reason)?;
                changed = true;
            }
            let notify_now = alert.state == AlertState::Firing
                && !alert.held
                && !alert.suppressed
                && !alert.flapping;
            if notify_now && alert.notified_at.is_none() {
                let affected = match (rule.builtin, alert.node_id, alert.collector_id) {
                    (Some(BuiltinRule::CollectorOffline), _, Some(c)) => {
                        under_collector.get(&c).copied()
                    }
                    (Some(b), Some(n), _) if rules::means_offline(Some(b)) => {
                        children.get(&n).copied()
                    }
                    _ => None,
                };
                outgoing.push((alert.clone(), "firing", affected));
                alert.notified_at = Some(now);
                changed = true;
            } else if notify_now
                && alert.severity == Severity::Critical
                && !inputs.acked.contains(&alert.id)
            {
                for channel in inputs.channels.iter().filter(|c| c.repeat_s > 0) {
                    let s = subject(alert.node_id, alert.collector_id);
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
            if changed {
                store::update_alert(tx, alert, now)?;
            }
        }

        // First notifications and resolves, one per (rule, node, event, severity): the
        // alerts of one rule on one node that changed in this cycle go out as one.
        for group in group_notifications(outgoing) {
            let (first, event, affected) = &group[0];
            let Some(rule) = rules.get(&first.rule_id) else {
                continue;
            };
            let s = subject(first.node_id, first.collector_id);
            let also = group[1..]
                .iter()
                .map(|(a, ..)| GroupedAlert {
                    alert_id: a.id,
                    series: a.series.clone(),
                    value: a.value,
                    message: a.message.clone(),
                })
                .collect();
            stats.queued += queue(tx, inputs, first, rule, &s, event, *affected, also, now)?;
        }

        // Forget transitions older than the flap window.
        self.flaps
            .retain(|_, times| times.back().is_some_and(|t| now - t <= FLAP_WINDOW_S));
        stats.health_changes = self.update_health(
            tx,
            inputs,
            &judgement.suppressed,
            &judgement.collectors_down,
            &judgement.with_data,
            &rules,
            &collectors,
        )?;
        Ok(stats)
    }

    /// Records a fire or resolve of `key`; returns how many happened within the flap window.
    pub fn flap(&mut self, key: &AlertKey, now: i64) -> usize {
        let times = self.flaps.entry(key.clone()).or_default();
        times.push_back(now);
        while times.front().is_some_and(|t| now - t > FLAP_WINDOW_S) {
            times.pop_front();
        }
        times.len()
    }

    /// Derives each node's health from its open alerts and writes the changes.
    fn update_health(
        &self,
        tx: &Transaction<'_>,
        inputs: &Inputs,
        suppressed: &HashMap<i64, String>,
        collectors_down: &HashSet<i64>,
        with_data: &HashSet<i64>,
        rules: &HashMap<i64, &AlertRule>,
        collectors: &HashMap<i64, &CollectorFacts>,
    ) -> rusqlite::Result<usize> {
        // Per node: the worst firing alert by (offline, severity), and any reachability alert.
        #[derive(Default)]
        struct Worst<'a> {
            offline: Option<&'a OpenAlert>,
            critical: Option<&'a OpenAlert>,
            warning: Option<&'a OpenAlert>,
            reachability: bool,
        }
        let mut worst: HashMap<i64, Worst<'_>> = HashMap::new();
        for alert in self.open.values() {
            let (Some(node_id), Some(rule)) = (alert.node_id, rules.get(&alert.rule_id)) else {
                continue;
            };
            let w = worst.entry(node_id).or_default();
            if rules::is_reachability(rule.builtin) {
                w.reachability = true;
            }
            if alert.state != AlertState::Firing {
                continue;
            }
            if rules::means_offline(rule.builtin) {
                w.offline.get_or_insert(alert);
            } else if alert.severity == Severity::Critical {
                w.critical.get_or_insert(alert);
            } else {
                w.warning.get_or_insert(alert);
            }
        }
        let rule_name = |a: &OpenAlert| {
            rules
                .get(&a.rule_id)
                .map_or("?", |r| r.spec.name.as_str())
                .to_owned()
        };
        let mut changes = 0;
        for node in &inputs.nodes {
            let w = worst.get(&node.id);
            let collector_down = node
                .collector_id
                .filter(|c| collectors_down.contains(c))
                .and_then(|c| collectors.get(&c));
            let (status, reason) = if let Some(window) = inputs.maintenance.nodes.get(&node.id) {
                (
                    NodeStatus::Maintenance,
                    Some(format!("maintenance window '{window}'")),
                )
            } else if let Some(c) = collector_down {
                (
                    NodeStatus::Offline,
                    Some(format!("collector {} offline", c.name)),
                )
            } else if let Some(reason) = suppressed
                .get(&node.id)
                .filter(|_| w.is_some_and(|w| w.reachability || w.offline.is_some()))
            {
                (NodeStatus::Offline, Some(reason.clone()))
            } else if let Some(a) = w.and_then(|w| w.offline) {
                (NodeStatus::Offline, Some(a.message.clone()))
            } else if let Some(a) = w.and_then(|w| w.critical) {
                (
                    NodeStatus::Critical,
                    Some(format!("{}: {}", rule_name(a), a.message)),
                )
            } else if let Some(a) = w.and_then(|w| w.warning) {
                (
                    NodeStatus::Warning,
                    Some(format!("{}: {}", rule_name(a), a.message)),
                )
            } else if with_data.contains(&node.id) {
                (NodeStatus::Healthy, None)
            } else if node.health == NodeStatus::Maintenance.as_str() {
                (NodeStatus::Discovering, None)
            } else {
                continue;
            };
            let current: NodeStatus = node.health.parse().unwrap_or(NodeStatus::Discovering);
            if current == status && node.health_reason == reason {
                continue;
            }
            store::set_health(tx, node.id, current, status, reason.as_deref(), inputs.now)?;
            changes += usize::from(current != status);
        }
        Ok(changes)
    }
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

/// A notification waiting for the end of the cycle: the alert, its event, children affected.
type Outgoing = (OpenAlert, &'static str, Option<u64>);

/// Groups the cycle's notifications by (rule, node or collector, event, severity), each group
/// in series order, groups in the order their first member came.
fn group_notifications(outgoing: Vec<Outgoing>) -> Vec<Vec<Outgoing>> {
    let mut groups: Vec<Vec<Outgoing>> = Vec::new();
    /// Rule, node, collector, event, severity.
    type GroupKey<'a> = (i64, Option<i64>, Option<i64>, &'a str, Severity);
    let mut index: HashMap<GroupKey<'_>, usize> = HashMap::new();
    for item in outgoing {
        let a = &item.0;
        // Alerts standing for their children (a switch down) stay alone.
        let key = (a.rule_id, a.node_id, a.collector_id, item.1, a.severity);
        match index.get(&key) {
            Some(&at) if item.2.is_none() && groups[at][0].2.is_none() => groups[at].push(item),
            _ => {
                index.insert(key, groups.len());
                groups.push(vec![item]);
            }
        }
    }
    for group in &mut groups {
        group.sort_by(|a, b| a.0.series.cmp(&b.0.series));
    }
    groups
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

    fn key() -> AlertKey {
        AlertKey {
            rule_id: 1,
            node_id: Some(2),
            collector_id: None,
            series: "ping.up".into(),
        }
    }

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
            .map(
                |&(node_id, metric, ago, value)| crate::metrics_store::Sample {
                    key: std::sync::Arc::new(crate::metrics_store::SeriesKey {
                        node_id,
                        metric: metric.split('{').next().unwrap_or_default().to_owned(),
                        tags: metric
                            .split_once('{')
                            .map(|(_, t)| t.trim_end_matches('}').to_owned())
                            .unwrap_or_default(),
                    }),
                    ts_ms: (now - ago) * 1_000,
                    value,
                },
            )
            .collect();
        hot.record(&samples, &HashMap::new());
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

    fn leak(text: &str) -> &'static str {
        Box::leak(text.to_owned().into_boxed_str())
    }

    #[test]
    fn thresholds_and_values_keep_their_precision() {
        assert_eq!(threshold_text(0.001), "0.001");
        assert_eq!(threshold_text(90.0), "90");
        assert_eq!(threshold_text(2.5), "2.5");
        assert_eq!(value_text(97.2345), "97.23");
        assert_eq!(value_text(1.0), "1");
        assert_eq!(value_text(0.0), "0");
        assert_eq!(value_text(0.000_123_4), "0.000123");
        assert_eq!(value_text(0.0015), "0.0015");
        assert_eq!(value_text(-0.0001), "-0.0001");
    }

    #[test]
    fn messages_name_the_series_and_say_when_the_value_is_back() {
        let spec = plantwatch_shared::api::RuleSpec {
            comparison: plantwatch_shared::api::Comparison::AtLeast,
            warning: Some(0.001),
            ..plantwatch_shared::api::RuleSpec::new("t", "x.err")
        };
        let firing = threshold_message("x.err{port=1}", &spec, 0.0042, Some(Severity::Warning));
        assert_eq!(firing, "x.err{port=1}: last 0.0042 >= 0.001");
        let back = threshold_message("x.err{port=1}", &spec, 0.0, None);
        assert_eq!(
            back,
            "x.err{port=1}: last 0, back to normal (no longer at or above 0.001)"
        );
    }

    #[test]
    fn transitions_count_within_the_flap_window_only() {
        let mut evaluator = Evaluator::default();
        for i in 0..5 {
            assert_eq!(evaluator.flap(&key(), i * 60), i as usize + 1);
        }
        assert_eq!(
            evaluator.flap(&key(), 300),
            FLAP_LIMIT,
            "the sixth within 30 min flaps"
        );
        // Half an hour after the last one, the count starts again.
        assert_eq!(evaluator.flap(&key(), 300 + FLAP_WINDOW_S + 1), 1);
    }

    #[test]
    fn suppression_needs_every_parent_down_and_follows_the_chain() {
        let node = |id, parent: Option<i64>, others: Vec<i64>| NodeFacts {
            id,
            name: format!("n{id}"),
            parent_id: parent,
            other_parents: others,
            collector_id: Some(9),
            ..NodeFacts::default()
        };
        let facts = [
            node(1, None, vec![]),
            node(2, None, vec![]),
            node(3, Some(1), vec![2]),
            node(4, Some(3), vec![]),
        ];
        let nodes: HashMap<i64, &NodeFacts> = facts.iter().map(|n| (n.id, n)).collect();
        let remote = HashSet::from([9]);
        let names = HashMap::from([(9, "north")]);
        let run = |down: &[i64], silent: &[i64]| {
            let down: HashSet<i64> = down.iter().copied().collect();
            let silent: HashSet<i64> = silent.iter().copied().collect();
            let mut memo = HashMap::new();
            (1..=4)
                .map(|id| {
                    suppression(
                        id,
                        &nodes,
                        &|n| down.contains(&n).then_some(true),
                        &silent,
                        &remote,
                        &names,
                        &mut memo,
                        0,
                    )
                })
                .collect::<Vec<_>>()
        };
        // One uplink down: nothing suppressed below it.
        assert_eq!(run(&[1], &[]), [None, None, None, None]);
        // Both down: node 3 is cut off, and node 4 behind it too.
        let both = run(&[1, 2], &[]);
        assert_eq!(both[2].as_deref(), Some("parents n1, n2 down"));
        assert_eq!(both[3].as_deref(), Some("parent n3 down"));
        // The collector silent: the top nodes, and through them everything.
        let silent = run(&[], &[9]);
        assert_eq!(silent[0].as_deref(), Some("collector north offline"));
        assert!(silent.iter().all(Option::is_some));
    }
}
