//! node_unreachable: no successful ping or SNMP poll for the rule's window. It also records
//! each node's newest ping and poll, which parent suppression reads.

use std::collections::HashMap;

use plantwatch_shared::api::{AlertRule, Severity};
use plantwatch_shared::metric_names::{PING_UP, SNMP_UP};

use super::{Cycle, Findings, Judge, Points, RuleKind, Series, node_key};
use crate::alerting::rules::NodeFacts;

pub struct NodeUnreachable;

impl RuleKind for NodeUnreachable {
    fn reads<'r>(&self, _rule: &'r AlertRule) -> Vec<&'r str> {
        vec![PING_UP.name, SNMP_UP.name]
    }

    fn judge<'a>(&self, rule: &'a AlertRule) -> Box<dyn Judge<'a> + 'a> {
        Box::new(UnreachableJudge {
            rule,
            probes: HashMap::new(),
        })
    }

    fn reachability(&self) -> bool {
        true
    }

    fn offline(&self) -> bool {
        true
    }
}

/// Reachability of a node seen in the hot window.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Probes {
    pub last_success_ms: Option<i64>,
    pub earliest_ms: i64,
    /// The newest ping and the newest SNMP poll: (timestamp, answered).
    pub ping: Option<(i64, bool)>,
    pub snmp: Option<(i64, bool)>,
}

impl Default for Probes {
    fn default() -> Self {
        Probes {
            last_success_ms: None,
            earliest_ms: i64::MAX,
            ping: None,
            snmp: None,
        }
    }
}

impl Probes {
    /// Down as a parent: every probe it has failed at its newest (ping and SNMP both, when
    /// both are polled). One answering probe keeps it up, whatever order they arrived in.
    pub fn down(&self) -> bool {
        let probes = [self.ping, self.snmp];
        probes.iter().any(Option::is_some) && probes.iter().flatten().all(|(_, ok)| !ok)
    }

    /// Takes in one probe's series.
    pub fn see(&mut self, metric: &str, points: &Points) {
        let Some(&(newest_ms, newest)) = points.back() else {
            return;
        };
        let success = points.iter().rev().find(|(_, v)| *v >= 1.0).map(|p| p.0);
        self.last_success_ms = self.last_success_ms.max(success);
        self.earliest_ms = self
            .earliest_ms
            .min(points.front().map_or(newest_ms, |p| p.0));
        let probe = if metric == PING_UP.name {
            &mut self.ping
        } else {
            &mut self.snmp
        };
        if probe.is_none_or(|(ts, _)| newest_ms >= ts) {
            *probe = Some((newest_ms, newest >= 1.0));
        }
    }
}

struct UnreachableJudge<'a> {
    rule: &'a AlertRule,
    probes: HashMap<i64, Probes>,
}

impl<'a> Judge<'a> for UnreachableJudge<'a> {
    fn series(
        &mut self,
        _cycle: &Cycle<'a>,
        _node: &'a NodeFacts,
        series: &mut Series<'_>,
        _out: &mut Findings,
    ) {
        self.probes
            .entry(series.key.node_id)
            .or_default()
            .see(&series.key.metric, series.points);
    }

    fn finish(self: Box<Self>, cycle: &Cycle<'a>, out: &mut Findings) {
        let rule = self.rule;
        let window_ms = i64::from(rule.spec.window_s) * 1_000;
        for (node_id, probes) in &self.probes {
            if cycle.in_scope(rule, *node_id).is_none() {
                continue;
            }
            let since = probes.last_success_ms.unwrap_or(probes.earliest_ms);
            let silent_s = (cycle.now_ms - since) / 1_000;
            let down = cycle.now_ms - since >= window_ms;
            let message = if probes.last_success_ms.is_some() {
                format!("no successful ping or poll for {silent_s} s")
            } else {
                format!("no successful ping or poll since {silent_s} s ago")
            };
            out.verdict(
                node_key(rule.id, *node_id),
                down.then_some(Severity::Critical),
                Some(silent_s as f64),
                message,
            );
        }
        out.probes.extend(self.probes);
    }
}
