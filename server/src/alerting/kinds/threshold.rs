//! Threshold rules: an aggregate of each matching series over the window against warning and
//! critical thresholds, with hysteresis. Every user rule is one, and so are the built-in
//! cpu_high, memory_high, disk_high, ups_on_battery, snmp_unreachable and modbus_unreachable.

use plantwatch_shared::api::AlertRule;

use super::{Cycle, Findings, Judge, RuleKind, Series, series_key};
use crate::alerting::messages::{series_name, threshold_message};
use crate::alerting::rules::{self, NodeFacts, TagMatchers};

pub struct Threshold {
    reachability: bool,
}

/// A threshold rule.
pub static THRESHOLD: Threshold = Threshold {
    reachability: false,
};
/// snmp_unreachable and modbus_unreachable: thresholds on `snmp.up` and `modbus.up` whose
/// alerts say the node cannot be reached.
pub static UNREACHABLE: Threshold = Threshold { reachability: true };

impl RuleKind for Threshold {
    fn reads<'r>(&self, rule: &'r AlertRule) -> Vec<&'r str> {
        rule.spec
            .metric
            .as_deref()
            .unwrap_or_default()
            .split('|')
            .map(str::trim)
            .filter(|m| !m.is_empty())
            .collect()
    }

    fn judge<'a>(&self, rule: &'a AlertRule) -> Box<dyn Judge<'a> + 'a> {
        Box::new(ThresholdJudge {
            rule,
            matchers: TagMatchers::new(&rule.spec.tags),
        })
    }

    fn reachability(&self) -> bool {
        self.reachability
    }
}

struct ThresholdJudge<'a> {
    rule: &'a AlertRule,
    matchers: TagMatchers,
}

impl<'a> Judge<'a> for ThresholdJudge<'a> {
    fn series(
        &mut self,
        cycle: &Cycle<'a>,
        node: &'a NodeFacts,
        series: &mut Series<'_>,
        out: &mut Findings,
    ) {
        let (rule, spec, key) = (self.rule, &self.rule.spec, series.key);
        if !super::scoped(rule, node) || !self.matchers.matches(&key.tags) {
            return;
        }
        let from_ms = cycle.now_ms - i64::from(spec.window_s) * 1_000;
        let Some(value) = series.aggregate(spec.aggregation, from_ms) else {
            return;
        };
        let maybe_open = series.open_on_node(rule);
        if !cycle.inputs.ignored.is_empty() {
            let name = series_name(&key.metric, &key.tags);
            if cycle.ignored(rule, key.node_id, &name) {
                // Left alone: an alert open on it resolves, none opens.
                let k = series_key(rule.id, key.node_id, name);
                if cycle.open.contains_key(&k) {
                    let message = format!("{}: ignored by an operator", k.series);
                    out.verdict(k, None, Some(value), message);
                }
                return;
            }
        }
        let (alert_key, open) = if maybe_open {
            let k = series_key(rule.id, key.node_id, series_name(&key.metric, &key.tags));
            let open = cycle.open_severity(&k);
            (Some(k), open)
        } else {
            (None, None)
        };
        let severity = rules::severity_of(spec, value, open);
        if severity.is_none() && open.is_none() && !cycle.inputs.preview {
            // Nothing breaching, nothing open: the common case costs no allocation.
            return;
        }
        let alert_key = alert_key.unwrap_or_else(|| {
            series_key(rule.id, key.node_id, series_name(&key.metric, &key.tags))
        });
        let message = threshold_message(&alert_key.series, spec, value, severity);
        out.verdict(alert_key, severity, Some(value), message);
    }

    fn finish(self: Box<Self>, _cycle: &Cycle<'a>, _out: &mut Findings) {}
}
