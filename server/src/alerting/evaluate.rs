//! One evaluation cycle: gather (database reads), judge (one pass over the hot window, no
//! I/O), apply (one transaction: alert transitions, queued notifications, node health).

use std::collections::{HashMap, HashSet, VecDeque};

use jiff::tz::TimeZone;
use plantwatch_shared::api::{
    AlertRule, AlertState, BuiltinRule, Channel, ComponentKind, NodeStatus, Notification, Severity,
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
    Ok(Inputs {
        now,
        rules,
        nodes,
        collectors,
        agents,
        maintenance,
        channels,
        acked,
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
    newest_ms: i64,
    newest_failed: bool,
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
        // Interfaces to check against their admin status after the pass: (node, tags, oper).
        let mut interfaces: Vec<(i64, String, f64)> = Vec::new();
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
                if newest_ms >= r.newest_ms {
                    r.newest_ms = newest_ms;
                    r.newest_failed = newest < 1.0;
                }
            }
            if let Some(rule) = interface_down
                && metric == "interface.oper_status"
                && (newest != 1.0 || open_pairs.contains(&(rule.id, key.node_id)))
            {
                interfaces.push((key.node_id, key.tags.clone(), newest));
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
                let threshold = match severity {
                    Some(Severity::Critical) => spec.critical,
                    _ => spec.warning.or(spec.critical),
                };
                let message = format!(
                    "{metric} {} {} {} {}",
                    spec.aggregation,
                    round(value),
                    spec.comparison,
                    threshold.map(round).unwrap_or_default()
                );
                out.verdicts.insert(
                    alert_key.unwrap_or_else(|| make_key(series_name(metric, &key.tags))),
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
            for (node_id, tags, oper_status) in interfaces {
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
                if !down && !self.open.contains_key(&key) {
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
        // is down when its latest probe failed, its own reachability alert holds, or it is
        // itself suppressed; a collector when it has been silent.
        let offline_rules: Vec<i64> = inputs
            .rules
            .iter()
            .filter(|r| rules::means_offline(r.builtin))
            .map(|r| r.id)
            .collect();
        let own_down = |id: i64| {
            reach.get(&id).is_some_and(|r| r.newest_failed)
                || offline_rules.iter().any(|rule_id| {
                    out.verdicts
                        .get(&node_key(*rule_id, id))
                        .is_some_and(|v| v.severity.is_some())
                })
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
    own_down: &dyn Fn(i64) -> bool,
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
    let reason = if depth > 64 {
        None
    } else if let Some(parent_id) = node.parent_id {
        // Every parent must be down: one working uplink keeps the node reachable.
        let parents: Vec<i64> = std::iter::once(parent_id)
            .chain(node.other_parents.iter().copied())
            .collect();
        let mut all_down = true;
        for parent in &parents {
            let down = own_down(*parent)
                || suppression(
                    *parent,
                    nodes,
                    own_down,
                    collectors_silent,
                    remote,
                    collector_names,
                    memo,
                    depth + 1,
                )
                .is_some();
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

fn round(value: f64) -> String {
    let rounded = (value * 100.0).round() / 100.0;
    format!("{rounded}")
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
                            stats.queued +=
                                queue(tx, inputs, alert, rule, &s, "escalated", None, now)?;
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
                        let s = subject(alert.node_id, alert.collector_id);
                        let resolved = OpenAlert {
                            value: verdict.value,
                            message: verdict.message,
                            ..alert
                        };
                        stats.queued +=
                            queue(tx, inputs, &resolved, rule, &s, "resolved", None, now)?;
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
                let s = subject(alert.node_id, alert.collector_id);
                let affected = match (rule.builtin, alert.node_id, alert.collector_id) {
                    (Some(BuiltinRule::CollectorOffline), _, Some(c)) => {
                        under_collector.get(&c).copied()
                    }
                    (Some(b), Some(n), _) if rules::means_offline(Some(b)) => {
                        children.get(&n).copied()
                    }
                    _ => None,
                };
                stats.queued += queue(tx, inputs, alert, rule, &s, "firing", affected, now)?;
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
                        let payload = payload(alert, rule, &s, "repeat", None, now);
                        notify::enqueue(tx, channel.id, Some(alert.id), "repeat", &payload, now)?;
                        stats.queued += 1;
                    }
                }
            }
            if changed {
                store::update_alert(tx, alert, now)?;
            }
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
        message: alert.message.clone(),
        affected_nodes: affected.filter(|n| *n > 0),
        at: db::to_time(now),
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
    now: i64,
) -> rusqlite::Result<usize> {
    let mut count = 0;
    let text = payload(alert, rule, s, event, affected, now);
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
                        &|n| down.contains(&n),
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
