//! Rules on remote collectors: collector_offline (not heard from for the window) and
//! collector_outbox_lag (holding undelivered data older than the thresholds).

use plantwatch_shared::api::{AlertRule, Severity};

use super::{Cycle, Findings, Judge, RuleKind, collector_key};
use crate::alerting::evaluate::CollectorFacts;
use crate::alerting::rules;

/// A remote collector not heard from for this long counts as down for its children's
/// suppression, before its own `collector_offline` alert fires.
const COLLECTOR_SILENT_S: i64 = 30;

pub struct CollectorOffline;
pub struct OutboxLag;

/// The remote collectors (the server's own is never offline).
fn remote<'a>(cycle: &Cycle<'a>) -> impl Iterator<Item = &'a CollectorFacts> {
    cycle.inputs.collectors.iter().filter(|c| !c.is_local)
}

impl RuleKind for CollectorOffline {
    fn judge<'a>(&self, rule: &'a AlertRule) -> Box<dyn Judge<'a> + 'a> {
        Box::new(OfflineJudge(rule))
    }
}

struct OfflineJudge<'a>(&'a AlertRule);

impl<'a> Judge<'a> for OfflineJudge<'a> {
    fn finish(self: Box<Self>, cycle: &Cycle<'a>, out: &mut Findings) {
        let rule = self.0;
        let window_s = i64::from(rule.spec.window_s);
        for collector in remote(cycle) {
            let silent = collector
                .last_seen
                .map_or(i64::MAX, |t| cycle.inputs.now - t);
            let down = silent >= window_s;
            if down {
                out.collectors_down.insert(collector.id);
            }
            if silent >= COLLECTOR_SILENT_S.min(window_s) {
                out.collectors_silent.insert(collector.id);
            }
            let message = if silent == i64::MAX {
                format!("collector {} has never been heard from", collector.name)
            } else {
                format!("collector {} not heard from for {silent} s", collector.name)
            };
            out.verdict(
                collector_key(rule.id, collector.id),
                down.then_some(Severity::Critical),
                (silent != i64::MAX).then_some(silent as f64),
                message,
            );
        }
    }
}

impl RuleKind for OutboxLag {
    fn judge<'a>(&self, rule: &'a AlertRule) -> Box<dyn Judge<'a> + 'a> {
        Box::new(LagJudge(rule))
    }
}

struct LagJudge<'a>(&'a AlertRule);

impl<'a> Judge<'a> for LagJudge<'a> {
    fn finish(self: Box<Self>, cycle: &Cycle<'a>, out: &mut Findings) {
        let rule = self.0;
        for collector in remote(cycle) {
            let Some(lag) = collector.outbox_lag_s else {
                continue;
            };
            let key = collector_key(rule.id, collector.id);
            let severity = rules::severity_of(&rule.spec, lag as f64, cycle.open_severity(&key));
            let message = format!(
                "collector {} holds data {lag} s old in its outbox",
                collector.name
            );
            out.verdict(key, severity, Some(lag as f64), message);
        }
    }
}
