//! What a judgement changes, decided without I/O: alerts opened, fired, escalated and
//! resolved, flags (held, suppressed, flapping), the notifications due and node health. The
//! evaluator's memory (its open alerts and recent transitions) moves to the new state here;
//! [`super::evaluate::Evaluator::apply`] only writes the [`Write`]s out, in order.

use std::collections::{HashMap, HashSet, VecDeque};

use plantwatch_shared::api::{AlertRule, AlertState, BuiltinRule, NodeStatus, Severity};

use super::evaluate::{AlertKey, Inputs, Judgement};
use super::kinds::kind_of;
use crate::db::alerts::OpenAlert;

/// Transitions (fire or resolve) of one (rule, node, series) within [`FLAP_WINDOW_S`] that
/// make a new alert of it "flapping": shown, not notified.
pub const FLAP_LIMIT: usize = 6;
pub const FLAP_WINDOW_S: i64 = 1_800;

/// The evaluator's memory between cycles: the open alerts and recent transitions.
#[derive(Debug, Default)]
pub struct Memory {
    pub open: HashMap<AlertKey, OpenAlert>,
    flaps: HashMap<AlertKey, VecDeque<i64>>,
}

/// One write a cycle calls for. Alerts are named by key: a new one is in the memory with id 0
/// until its [`Write::Insert`] stores it.
#[derive(Debug, Clone, PartialEq)]
pub enum Write {
    /// Resolve a stored alert; `checked`: only if its row still exists (a deleted rule or
    /// node takes its alerts with it).
    Resolve {
        alert: OpenAlert,
        value: Option<f64>,
        why: Option<String>,
        checked: bool,
    },
    /// Store the new alert under this key.
    Insert(AlertKey),
    /// An entry in an alert's history.
    Event {
        key: AlertKey,
        event: &'static str,
        severity: Option<Severity>,
        value: Option<f64>,
        reason: Option<String>,
    },
    /// Write the alert's row as the memory holds it.
    Update(AlertKey),
    /// Queue a notification on every channel that routes the first alert; the others go in
    /// the same message. `affected`: children the alert stands for.
    Queue {
        event: &'static str,
        alerts: Vec<OpenAlert>,
        affected: Option<u64>,
    },
    /// A critical, unacknowledged alert: repeat it on the channels whose repeat is due.
    Repeat(AlertKey),
    /// A node's health changed (or its reason did).
    Health {
        node_id: i64,
        from: NodeStatus,
        to: NodeStatus,
        reason: Option<String>,
    },
}

impl Write {
    fn event(
        key: &AlertKey,
        event: &'static str,
        severity: Option<Severity>,
        value: Option<f64>,
        reason: Option<String>,
    ) -> Write {
        Write::Event {
            key: key.clone(),
            event,
            severity,
            value,
            reason,
        }
    }
}

/// A notification waiting for the end of the cycle: the alert, its event, children affected.
type Outgoing = (OpenAlert, &'static str, Option<u64>);

impl Memory {
    /// Starts from the open alerts stored.
    pub fn new(open: Vec<OpenAlert>) -> Self {
        Memory {
            open: open.into_iter().map(|a| (AlertKey::of(&a), a)).collect(),
            flaps: HashMap::new(),
        }
    }

    /// Moves to the state `judgement` calls for at `inputs.now`; returns the writes that
    /// take the database there, in order.
    pub fn transitions(&mut self, inputs: &Inputs, judgement: &Judgement) -> Vec<Write> {
        let now = inputs.now;
        let mut writes = Vec::new();
        let mut outgoing: Vec<Outgoing> = Vec::new();
        let rules: HashMap<i64, &AlertRule> = inputs.rules.iter().map(|r| (r.id, r)).collect();
        let nodes: HashSet<i64> = inputs.nodes.iter().map(|n| n.id).collect();
        let collectors: HashSet<i64> = inputs.collectors.iter().map(|c| c.id).collect();

        // A series of a service check that was removed: nothing will come of it again.
        let check_gone =
            |k: &AlertKey| check_of(&k.series).is_some_and(|id| !inputs.checks.contains(&id));
        // Alerts whose rule was disabled or deleted, or whose node, collector or check is gone.
        let stale: Vec<AlertKey> = self
            .open
            .keys()
            .filter(|k| {
                !rules.contains_key(&k.rule_id)
                    || k.node_id.is_some_and(|id| !nodes.contains(&id))
                    || k.collector_id.is_some_and(|id| !collectors.contains(&id))
                    || check_gone(k)
            })
            .cloned()
            .collect();
        for key in stale {
            if let Some(alert) = self.open.remove(&key) {
                writes.push(Write::Resolve {
                    alert,
                    value: None,
                    why: Some("rule disabled or target removed".into()),
                    checked: true,
                });
            }
        }

        // Verdicts in a stable order, so that the same judgement always writes the same.
        let mut verdicts: Vec<_> = judgement.verdicts.iter().collect();
        verdicts.sort_unstable_by(|a, b| {
            (a.0.rule_id, a.0.node_id, a.0.collector_id, &a.0.series).cmp(&(
                b.0.rule_id,
                b.0.node_id,
                b.0.collector_id,
                &b.0.series,
            ))
        });
        for (key, verdict) in verdicts {
            let Some(rule) = rules.get(&key.rule_id) else {
                continue;
            };
            if check_gone(key) {
                // Its last samples are still in the window: they open nothing.
                continue;
            }
            match (self.open.get_mut(key), verdict.severity) {
                (Some(alert), Some(severity)) => {
                    let mut changed =
                        alert.value != verdict.value || alert.message != verdict.message;
                    alert.value = verdict.value;
                    alert.message.clone_from(&verdict.message);
                    if verdict.event_at.is_some() && verdict.event_at != alert.last_event_at {
                        alert.last_event_at = verdict.event_at;
                        changed = true;
                    }
                    if alert.state == AlertState::Pending
                        && now - alert.started_at >= i64::from(rule.spec.for_s)
                    {
                        alert.state = AlertState::Firing;
                        alert.fired_at = Some(now);
                        writes.push(Write::event(
                            key,
                            "firing",
                            Some(severity),
                            alert.value,
                            None,
                        ));
                        changed = true;
                    }
                    if alert.severity != severity {
                        let escalated = severity > alert.severity;
                        alert.severity = severity;
                        writes.push(Write::event(
                            key,
                            "severity",
                            Some(severity),
                            alert.value,
                            None,
                        ));
                        changed = true;
                        if escalated
                            && alert.notified_at.is_some()
                            && !alert.held
                            && !alert.suppressed
                            && !alert.flapping
                        {
                            writes.push(Write::Queue {
                                event: "escalated",
                                alerts: vec![alert.clone()],
                                affected: None,
                            });
                        }
                    }
                    if changed {
                        writes.push(Write::Update(key.clone()));
                    }
                }
                (Some(_), None) => {
                    let Some(alert) = self.open.remove(key) else {
                        continue;
                    };
                    if alert.state == AlertState::Firing {
                        self.flap(key, now);
                    }
                    if alert.notified_at.is_some() && !alert.flapping {
                        let resolved = OpenAlert {
                            value: verdict.value,
                            message: verdict.message.clone(),
                            ..alert.clone()
                        };
                        outgoing.push((resolved, "resolved", None));
                    }
                    writes.push(Write::Resolve {
                        alert,
                        value: verdict.value,
                        // An event rule's alert says what cleared it (the partner, the
                        // expiry) in its history.
                        why: rule.spec.event.is_some().then(|| verdict.message.clone()),
                        checked: false,
                    });
                }
                (None, Some(severity)) => {
                    let firing = rule.spec.for_s == 0;
                    let flapping = firing && self.flap(key, now) >= FLAP_LIMIT;
                    let alert = OpenAlert {
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
                        message: verdict.message.clone(),
                        flapping,
                        held: false,
                        suppressed: false,
                        acked: false,
                        started_at: now,
                        fired_at: firing.then_some(now),
                        notified_at: None,
                        last_event_at: verdict.event_at,
                    };
                    writes.push(Write::Insert(key.clone()));
                    let event = if firing { "firing" } else { "pending" };
                    writes.push(Write::event(key, event, Some(severity), alert.value, None));
                    if flapping {
                        writes.push(Write::event(key, "flapping", None, None, None));
                    }
                    self.open.insert(key.clone(), alert);
                }
                (None, None) => {}
            }
        }

        self.flags(inputs, judgement, &rules, &mut writes, &mut outgoing);

        // First notifications and resolves, one per (rule, node, event, severity): the
        // alerts of one rule on one node that changed in this cycle go out as one.
        for group in group_notifications(outgoing) {
            let (event, affected) = (group[0].1, group[0].2);
            writes.push(Write::Queue {
                event,
                alerts: group.into_iter().map(|(a, ..)| a).collect(),
                affected,
            });
        }

        // Forget transitions older than the flap window.
        self.flaps
            .retain(|_, times| times.back().is_some_and(|t| now - t <= FLAP_WINDOW_S));
        writes.extend(self.health(inputs, judgement, &rules));
        writes
    }

    /// Held and suppressed flags, first notifications and repeats.
    fn flags(
        &mut self,
        inputs: &Inputs,
        judgement: &Judgement,
        rules: &HashMap<i64, &AlertRule>,
        writes: &mut Vec<Write>,
        outgoing: &mut Vec<Outgoing>,
    ) {
        let now = inputs.now;
        let node_collector: HashMap<i64, Option<i64>> = inputs
            .nodes
            .iter()
            .map(|n| (n.id, n.collector_id))
            .collect();
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
        let mut keys: Vec<&AlertKey> = self.open.keys().collect();
        keys.sort_unstable_by_key(|k| (k.rule_id, k.node_id, k.collector_id, &k.series));
        let keys: Vec<AlertKey> = keys.into_iter().cloned().collect();
        for key in keys {
            let Some(alert) = self.open.get_mut(&key) else {
                continue;
            };
            let Some(rule) = rules.get(&alert.rule_id) else {
                continue;
            };
            let kind = kind_of(rule);
            let held = match (alert.node_id, alert.collector_id) {
                (Some(node), _) => inputs.maintenance.nodes.contains_key(&node),
                (None, Some(c)) => inputs.maintenance.collectors.contains_key(&c),
                _ => false,
            };
            let suppressed = kind.parent_suppressed()
                && alert
                    .node_id
                    .is_some_and(|n| judgement.suppressed.contains_key(&n))
                || alert.node_id.is_some_and(|n| {
                    node_collector
                        .get(&n)
                        .copied()
                        .flatten()
                        .is_some_and(|c| judgement.collectors_down.contains(&c))
                });
            let mut changed = false;
            if held != alert.held {
                alert.held = held;
                let event = if held { "held" } else { "released" };
                writes.push(Write::event(&key, event, None, None, None));
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
                    .cloned();
                writes.push(Write::event(&key, event, None, None, reason));
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
                    (Some(_), Some(n), _) if kind.offline() => children.get(&n).copied(),
                    _ => None,
                };
                outgoing.push((alert.clone(), "firing", affected));
                alert.notified_at = Some(now);
                changed = true;
            } else if notify_now
                && alert.severity == Severity::Critical
                && !inputs.acked.contains(&alert.id)
            {
                writes.push(Write::Repeat(key.clone()));
            }
            if changed {
                writes.push(Write::Update(key));
            }
        }
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

    /// Each node's health from its open alerts: the changes.
    fn health(
        &self,
        inputs: &Inputs,
        judgement: &Judgement,
        rules: &HashMap<i64, &AlertRule>,
    ) -> Vec<Write> {
        // Per node: the worst firing alert by (offline, severity), and any reachability alert.
        #[derive(Default)]
        struct Worst<'a> {
            offline: Option<&'a OpenAlert>,
            critical: Option<&'a OpenAlert>,
            warning: Option<&'a OpenAlert>,
            reachability: bool,
        }
        let mut worst: HashMap<i64, Worst<'_>> = HashMap::new();
        // In key order, so that the same alerts always give the same reason.
        let mut open: Vec<(&AlertKey, &OpenAlert)> = self.open.iter().collect();
        open.sort_unstable_by_key(|(k, _)| (k.rule_id, k.node_id, k.collector_id, &k.series));
        for (_, alert) in open {
            let (Some(node_id), Some(rule)) = (alert.node_id, rules.get(&alert.rule_id)) else {
                continue;
            };
            let kind = kind_of(rule);
            let w = worst.entry(node_id).or_default();
            if kind.reachability() {
                w.reachability = true;
            }
            if alert.state != AlertState::Firing {
                continue;
            }
            if kind.offline() {
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
        let collector_names: HashMap<i64, &str> = inputs
            .collectors
            .iter()
            .map(|c| (c.id, c.name.as_str()))
            .collect();
        let mut writes = Vec::new();
        for node in &inputs.nodes {
            let w = worst.get(&node.id);
            let collector_down = node
                .collector_id
                .filter(|c| judgement.collectors_down.contains(c))
                .and_then(|c| collector_names.get(&c));
            let (status, reason) = if let Some(window) = inputs.maintenance.nodes.get(&node.id) {
                (
                    NodeStatus::Maintenance,
                    Some(format!("maintenance window '{window}'")),
                )
            } else if let Some(name) = collector_down {
                (
                    NodeStatus::Offline,
                    Some(format!("collector {name} offline")),
                )
            } else if let Some(reason) = judgement
                .suppressed
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
            } else if judgement.with_data.contains(&node.id) {
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
            writes.push(Write::Health {
                node_id: node.id,
                from: current,
                to: status,
                reason,
            });
        }
        writes
    }
}

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

/// The service check a series belongs to: its `check_id` tag (`check.up{check_id=5,kind=dns}`).
fn check_of(series: &str) -> Option<i64> {
    let tags = series.split_once('{')?.1.strip_suffix('}')?;
    plantwatch_shared::api::tags_from_canonical(tags)
        .get("check_id")?
        .parse()
        .ok()
}
