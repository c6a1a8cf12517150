//! The built-in rule kinds, each in its own module behind [`RuleKind`]: what it reads from the
//! hot window, how it judges one series, and what it concludes once the pass is over.
//!
//! A new kind is a module here and a line in [`kind_of`]. User rules are threshold rules.

mod collectors;
pub mod events;
mod heartbeat;
mod interface;
mod services;
mod threshold;
mod unreachable;

use std::collections::{HashMap, HashSet, VecDeque};

use rustc_hash::FxHashMap;

use plantwatch_shared::api::{AlertRule, BuiltinRule, RuleAggregation, Severity};

use super::evaluate::{AlertKey, Inputs, Verdict};
use super::rules::{self, NodeFacts};
use crate::db::alerts::OpenAlert;
use crate::metrics_store::{HotWindow, SeriesKey};

pub use unreachable::Probes;

/// A series' points in the hot window, oldest first: (timestamp in ms, value).
pub type Points = VecDeque<(i64, f64)>;

/// One series of the pass, handed to every rule that reads its metric. Rules that reduce it
/// the same way over the same window share the work.
pub struct Series<'p> {
    pub key: &'p SeriesKey,
    pub points: &'p Points,
    /// Rules with an alert open on the series' node.
    open_rules: &'p [i64],
    /// (aggregation, from, value) already computed for this series.
    aggregates: &'p mut Vec<(RuleAggregation, i64, Option<f64>)>,
}

impl<'p> Series<'p> {
    pub fn new(
        key: &'p SeriesKey,
        points: &'p Points,
        open_rules: &'p [i64],
        scratch: &'p mut Vec<(RuleAggregation, i64, Option<f64>)>,
    ) -> Self {
        scratch.clear();
        Series {
            key,
            points,
            open_rules,
            aggregates: scratch,
        }
    }

    /// Whether `rule` has an alert open on this series' node (on any of its series).
    pub fn open_on_node(&self, rule: &AlertRule) -> bool {
        self.open_rules.contains(&rule.id)
    }

    /// The points from `from_ms` on reduced by `aggregation` (computed once per series).
    pub fn aggregate(&mut self, aggregation: RuleAggregation, from_ms: i64) -> Option<f64> {
        if let Some(&(.., value)) = self
            .aggregates
            .iter()
            .find(|(a, from, _)| *a == aggregation && *from == from_ms)
        {
            return value;
        }
        let value = rules::aggregate(self.points, aggregation, from_ms);
        self.aggregates.push((aggregation, from_ms, value));
        value
    }
}

/// A kind of rule.
pub trait RuleKind: Sync {
    /// The metrics `rule` reads from the hot window (none, the default: it judges facts, not
    /// series).
    fn reads<'r>(&self, _rule: &'r AlertRule) -> Vec<&'r str> {
        Vec::new()
    }

    /// A judge of `rule` for one cycle.
    fn judge<'a>(&self, rule: &'a AlertRule) -> Box<dyn Judge<'a> + 'a>;

    /// Its alerts say a node cannot be reached: suppressed when the node's parents are down.
    fn reachability(&self) -> bool {
        false
    }

    /// Its alerts make a node Offline rather than Critical (and stand for its children).
    fn offline(&self) -> bool {
        false
    }

    /// Its alerts are suppressed when the node is cut off behind parents that are down
    /// (reachability alerts, and those of events: what a cut-off node still sent is noise
    /// beside its parent's alert).
    fn parent_suppressed(&self) -> bool {
        self.reachability()
    }
}

/// One rule judged in one cycle.
pub trait Judge<'a> {
    /// One series of a metric the rule reads, on a known node.
    fn series(
        &mut self,
        _cycle: &Cycle<'a>,
        _node: &'a NodeFacts,
        _series: &mut Series<'_>,
        _out: &mut Findings,
    ) {
    }

    /// After the pass over the hot window.
    fn finish(self: Box<Self>, cycle: &Cycle<'a>, out: &mut Findings);
}

/// The kind of a rule: event rules judge events; other user rules and the threshold
/// built-ins are threshold rules.
pub fn kind_of(rule: &AlertRule) -> &'static dyn RuleKind {
    if rule.spec.event.is_some() {
        return &events::EventRule;
    }
    match rule.builtin {
        Some(BuiltinRule::NodeUnreachable) => &unreachable::NodeUnreachable,
        Some(BuiltinRule::AgentHeartbeat) => &heartbeat::AgentHeartbeat,
        Some(BuiltinRule::CollectorOffline) => &collectors::CollectorOffline,
        Some(BuiltinRule::CollectorOutboxLag) => &collectors::OutboxLag,
        Some(BuiltinRule::InterfaceDown) => &interface::InterfaceDown,
        Some(BuiltinRule::WindowsServiceStopped) => &services::ServiceStopped,
        Some(
            BuiltinRule::SnmpUnreachable
            | BuiltinRule::ModbusUnreachable
            | BuiltinRule::VsphereUnreachable,
        ) => &threshold::UNREACHABLE,
        Some(
            BuiltinRule::TrapLinkDown
            | BuiltinRule::TrapUpsOnBattery
            | BuiltinRule::TrapDeviceRestarted
            | BuiltinRule::TrapAuthFailure
            | BuiltinRule::SyslogCritical,
        ) => &events::EventRule,
        Some(
            BuiltinRule::CpuHigh
            | BuiltinRule::MemoryHigh
            | BuiltinRule::DiskHigh
            | BuiltinRule::UpsOnBattery
            | BuiltinRule::CertExpiring
            | BuiltinRule::CertInvalid
            | BuiltinRule::HttpDown
            | BuiltinRule::TcpDown
            | BuiltinRule::HttpSlow
            | BuiltinRule::DnsDown
            | BuiltinRule::VsphereHostDisconnected
            | BuiltinRule::DatastoreFull
            | BuiltinRule::VmPoweredOff
            | BuiltinRule::ProcessMissing,
        )
        | None => &threshold::THRESHOLD,
    }
}

/// What every judge of a cycle may look at.
pub struct Cycle<'a> {
    pub inputs: &'a Inputs,
    pub now_ms: i64,
    pub nodes: FxHashMap<i64, &'a NodeFacts>,
    pub open: &'a HashMap<AlertKey, OpenAlert>,
    /// The rules with an open alert on each node: only for them is a series that no longer
    /// breaches worth a verdict (and a key built).
    pub open_by_node: FxHashMap<i64, Vec<i64>>,
    pub hot: &'a HotWindow,
}

impl<'a> Cycle<'a> {
    pub fn new(
        inputs: &'a Inputs,
        open: &'a HashMap<AlertKey, OpenAlert>,
        hot: &'a HotWindow,
    ) -> Self {
        Cycle {
            inputs,
            now_ms: inputs.now * 1_000,
            nodes: inputs.nodes.iter().map(|n| (n.id, n)).collect(),
            open,
            open_by_node: {
                let mut by_node: FxHashMap<i64, Vec<i64>> = FxHashMap::default();
                for key in open.keys() {
                    if let Some(node) = key.node_id {
                        by_node.entry(node).or_default().push(key.rule_id);
                    }
                }
                by_node
            },
            hot,
        }
    }

    pub fn open_severity(&self, key: &AlertKey) -> Option<Severity> {
        self.open.get(key).map(|a| a.severity)
    }

    /// The rules with an alert open on node `node_id`.
    pub fn open_rules(&self, node_id: i64) -> &[i64] {
        self.open_by_node.get(&node_id).map_or(&[], Vec::as_slice)
    }

    /// Node `id`, when it is known and in `rule`'s scope.
    pub fn in_scope(&self, rule: &AlertRule, id: i64) -> Option<&'a NodeFacts> {
        let node = *self.nodes.get(&id)?;
        scoped(rule, node).then_some(node)
    }

    /// Whether operators told `rule` to leave `series` of node `node_id` alone.
    pub fn ignored(&self, rule: &AlertRule, node_id: i64, series: &str) -> bool {
        !self.inputs.ignored.is_empty()
            && self
                .inputs
                .ignored
                .contains(&(rule.id, node_id, series.to_owned()))
    }
}

/// Whether `node` is in `rule`'s scope.
pub fn scoped(rule: &AlertRule, node: &NodeFacts) -> bool {
    rules::in_scope(rule.spec.scope, rule.spec.scope_value.as_deref(), node)
}

/// What the judges found.
#[derive(Debug, Default)]
pub struct Findings {
    pub verdicts: HashMap<AlertKey, Verdict>,
    /// The newest ping and SNMP poll of each node (from the node_unreachable rule).
    pub probes: HashMap<i64, Probes>,
    /// Collectors whose `collector_offline` condition holds.
    pub collectors_down: HashSet<i64>,
    /// Collectors silent long enough to count as down for their nodes' suppression.
    pub collectors_silent: HashSet<i64>,
}

impl Findings {
    pub fn verdict(
        &mut self,
        key: AlertKey,
        severity: Option<Severity>,
        value: Option<f64>,
        message: String,
    ) {
        self.verdicts.insert(
            key,
            Verdict {
                severity,
                value,
                message,
                event_at: None,
            },
        );
    }
}

/// The key of a rule's alert on a whole node.
pub fn node_key(rule_id: i64, node_id: i64) -> AlertKey {
    AlertKey {
        rule_id,
        node_id: Some(node_id),
        collector_id: None,
        series: String::new(),
    }
}

/// The key of a rule's alert on one series of a node.
pub fn series_key(rule_id: i64, node_id: i64, series: String) -> AlertKey {
    AlertKey {
        rule_id,
        node_id: Some(node_id),
        collector_id: None,
        series,
    }
}

/// The key of a rule's alert on a collector.
pub fn collector_key(rule_id: i64, collector_id: i64) -> AlertKey {
    AlertKey {
        rule_id,
        node_id: None,
        collector_id: Some(collector_id),
        series: String::new(),
    }
}
